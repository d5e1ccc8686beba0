//! RP-initiated logout: a URL, no request of ours.

use crate::client::Client;
use crate::config::validate_redirect_uri;
use crate::error::{ConfigError, Endpoint, Error};
use std::fmt;
use url::Url;

/// Parameters of an RP-initiated logout URL.
#[derive(Clone, Default)]
#[must_use]
pub struct LogoutRequest {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

impl fmt::Debug for LogoutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutRequest")
            .field("post_logout_redirect_uri", &self.post_logout_redirect_uri)
            .finish_non_exhaustive()
    }
}

impl LogoutRequest {
    /// An empty request.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ID token of the session (AuthPI requires it).
    pub fn id_token_hint(mut self, id_token: impl Into<String>) -> Self {
        self.id_token_hint = Some(id_token.into());
        self
    }

    /// Where the provider sends the user afterwards (registered, matched exactly).
    pub fn post_logout_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.post_logout_redirect_uri = Some(uri.into());
        self
    }

    /// Opaque value echoed back to the post-logout redirect URI.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }
}

impl Client {
    /// The RP-initiated logout URL: the discovered `end_session_endpoint`, or `{issuer}/logout`
    /// in the AuthPI layout.
    pub fn logout_url(&self, request: &LogoutRequest) -> Result<Url, Error> {
        let mut url = self
            .metadata()
            .end_session_endpoint()
            .cloned()
            .ok_or(Error::Unsupported(Endpoint::EndSession))?;
        if let Some(uri) = &request.post_logout_redirect_uri {
            validate_redirect_uri(uri).map_err(ConfigError::PostLogoutRedirectUri)?;
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = &request.id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
            q.append_pair("client_id", &self.config().client_id);
            if let Some(uri) = &request.post_logout_redirect_uri {
                q.append_pair("post_logout_redirect_uri", uri);
            }
            if let Some(state) = &request.state {
                q.append_pair("state", state);
            }
        }
        Ok(url)
    }
}
