//! One interface over the three adapters (the blocking one runs on `spawn_blocking`).

use authpi_idp::{
    AccessTokenInfo, Agent, AuthorizationRequest, AuthorizationUrl, Config, Introspection,
    LogoutRequest, TokenSet, TokenTypeHint, UserInfo,
};
use authpi_idp_async::{BoxError, Error, TransportError, TransportOptions};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type Fut<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// Callbacks as the suite sees them (synchronous, so the blocking adapter can take them too).
#[derive(Clone, Default)]
pub struct Hooks {
    pub on_refresh: Option<Arc<dyn Fn(TokenSet) -> Result<(), BoxError> + Send + Sync>>,
    pub on_refresh_error: Option<Arc<dyn Fn(&Error) + Send + Sync>>,
}

pub trait Api: Clone + std::fmt::Debug + Send + Sync + Sized + 'static {
    const NAME: &'static str;
    fn build(config: Config, options: TransportOptions) -> Result<Self, Error>;
    fn discover(config: Config) -> Fut<Self>;
    fn create_authorization_url(&self, r: &AuthorizationRequest)
    -> Result<AuthorizationUrl, Error>;
    fn exchange_callback(&self, callback: String, tx: AuthorizationUrl) -> Fut<Agent>;
    fn exchange_code(&self, code: String, verifier: String) -> Fut<Agent>;
    fn create_agent(&self, tokens: TokenSet, hooks: Hooks) -> Fut<Agent>;
    fn refresh(&self, tokens: TokenSet, hooks: Hooks) -> Fut<Agent>;
    /// `refresh` asking for RFC 8707 resources.
    fn refresh_for(&self, tokens: TokenSet, hooks: Hooks, resources: Vec<String>) -> Fut<Agent>;
    fn get_user_info(&self, agent: Agent) -> Fut<UserInfo>;
    fn revoke_token(&self, token: String, hint: Option<TokenTypeHint>) -> Fut<()>;
    fn introspect(&self, token: String, hint: Option<TokenTypeHint>) -> Fut<Introspection>;
    fn create_logout_url(&self, r: &LogoutRequest) -> Result<String, Error>;
    fn client_credentials(&self, scopes: Vec<String>) -> Fut<Agent>;
    fn validate_access_token(&self, token: String, audience: String) -> Fut<AccessTokenInfo>;
}

fn async_options(hooks: Hooks) -> authpi_idp_async::CreateAgentOptions {
    async_options_for(hooks, Vec::new())
}

fn async_options_for(hooks: Hooks, resources: Vec<String>) -> authpi_idp_async::CreateAgentOptions {
    let mut o = authpi_idp_async::CreateAgentOptions::new();
    if let Some(f) = hooks.on_refresh {
        o = o.on_refresh(move |t| {
            let r = f(t);
            async move { r }
        });
    }
    if let Some(f) = hooks.on_refresh_error {
        o = o.on_refresh_error(move |e| f(e));
    }
    for r in resources {
        o = o.resource(r);
    }
    o
}

/// Implements [`Api`] for an `AsyncClient<T>` alias.
macro_rules! async_api {
    ($ty:ty, $name:literal) => {
        impl Api for $ty {
            const NAME: &'static str = $name;
            fn build(config: Config, options: TransportOptions) -> Result<Self, Error> {
                <$ty>::with_options(config, options)
            }
            fn discover(config: Config) -> Fut<Self> {
                Box::pin(<$ty>::discover(config))
            }
            fn create_authorization_url(
                &self,
                r: &AuthorizationRequest,
            ) -> Result<AuthorizationUrl, Error> {
                <$ty>::create_authorization_url(self, r)
            }
            fn exchange_callback(&self, callback: String, tx: AuthorizationUrl) -> Fut<Agent> {
                let c = self.clone();
                Box::pin(async move { c.exchange_callback(&callback, &tx).await })
            }
            fn exchange_code(&self, code: String, verifier: String) -> Fut<Agent> {
                let c = self.clone();
                Box::pin(async move { c.exchange_code(&code, &verifier, None).await })
            }
            fn create_agent(&self, tokens: TokenSet, hooks: Hooks) -> Fut<Agent> {
                let c = self.clone();
                Box::pin(async move { c.create_agent(tokens, async_options(hooks)).await })
            }
            fn refresh(&self, tokens: TokenSet, hooks: Hooks) -> Fut<Agent> {
                let c = self.clone();
                Box::pin(async move { c.refresh(tokens, async_options(hooks)).await })
            }
            fn refresh_for(
                &self,
                tokens: TokenSet,
                hooks: Hooks,
                resources: Vec<String>,
            ) -> Fut<Agent> {
                let c = self.clone();
                let options = async_options_for(hooks, resources);
                Box::pin(async move { c.refresh(tokens, options).await })
            }
            fn get_user_info(&self, agent: Agent) -> Fut<UserInfo> {
                let c = self.clone();
                Box::pin(async move { c.get_user_info(&agent).await })
            }
            fn revoke_token(&self, token: String, hint: Option<TokenTypeHint>) -> Fut<()> {
                let c = self.clone();
                Box::pin(async move { c.revoke_token(&token, hint).await })
            }
            fn introspect(&self, token: String, hint: Option<TokenTypeHint>) -> Fut<Introspection> {
                let c = self.clone();
                Box::pin(async move { c.introspect(&token, hint).await })
            }
            fn create_logout_url(&self, r: &LogoutRequest) -> Result<String, Error> {
                <$ty>::create_logout_url(self, r).map(String::from)
            }
            fn client_credentials(&self, scopes: Vec<String>) -> Fut<Agent> {
                let c = self.clone();
                Box::pin(async move { c.client_credentials(scopes).await })
            }
            fn validate_access_token(
                &self,
                token: String,
                audience: String,
            ) -> Fut<AccessTokenInfo> {
                let c = self.clone();
                Box::pin(async move { c.validate_access_token(&token, &audience).await })
            }
        }
    };
}

async_api!(authpi_idp_reqwest::IdpClient, "reqwest");
async_api!(authpi_idp_hyper::IdpClient, "hyper");

fn sync_options(hooks: Hooks) -> authpi_idp_ureq::CreateAgentOptions {
    sync_options_for(hooks, Vec::new())
}

fn sync_options_for(hooks: Hooks, resources: Vec<String>) -> authpi_idp_ureq::CreateAgentOptions {
    let mut o = authpi_idp_ureq::CreateAgentOptions::new();
    if let Some(f) = hooks.on_refresh {
        o = o.on_refresh(move |t| f(t));
    }
    if let Some(f) = hooks.on_refresh_error {
        o = o.on_refresh_error(move |e| f(e));
    }
    for r in resources {
        o = o.resource(r);
    }
    o
}

/// Runs a blocking call on tokio's blocking pool. A call that panicked (a panicking callback)
/// is reported as `Abandoned`, as the async clients report a detached task that panicked.
fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Fut<T> {
    Box::pin(async move {
        tokio::task::spawn_blocking(f)
            .await
            .unwrap_or(Err(Error::Transport(TransportError::Abandoned)))
    })
}

impl Api for authpi_idp_ureq::IdpClientSync {
    const NAME: &'static str = "ureq";
    fn build(config: Config, options: TransportOptions) -> Result<Self, Error> {
        Self::with_options(config, options)
    }
    fn discover(config: Config) -> Fut<Self> {
        blocking(move || Self::discover(config))
    }
    fn create_authorization_url(
        &self,
        r: &AuthorizationRequest,
    ) -> Result<AuthorizationUrl, Error> {
        Self::create_authorization_url(self, r)
    }
    fn exchange_callback(&self, callback: String, tx: AuthorizationUrl) -> Fut<Agent> {
        let c = self.clone();
        blocking(move || c.exchange_callback(&callback, &tx))
    }
    fn exchange_code(&self, code: String, verifier: String) -> Fut<Agent> {
        let c = self.clone();
        blocking(move || c.exchange_code(&code, &verifier, None))
    }
    fn create_agent(&self, tokens: TokenSet, hooks: Hooks) -> Fut<Agent> {
        let c = self.clone();
        blocking(move || c.create_agent(tokens, sync_options(hooks)))
    }
    fn refresh(&self, tokens: TokenSet, hooks: Hooks) -> Fut<Agent> {
        let c = self.clone();
        blocking(move || c.refresh(tokens, sync_options(hooks)))
    }
    fn refresh_for(&self, tokens: TokenSet, hooks: Hooks, resources: Vec<String>) -> Fut<Agent> {
        let c = self.clone();
        blocking(move || c.refresh(tokens, sync_options_for(hooks, resources)))
    }
    fn get_user_info(&self, agent: Agent) -> Fut<UserInfo> {
        let c = self.clone();
        blocking(move || c.get_user_info(&agent))
    }
    fn revoke_token(&self, token: String, hint: Option<TokenTypeHint>) -> Fut<()> {
        let c = self.clone();
        blocking(move || c.revoke_token(&token, hint))
    }
    fn introspect(&self, token: String, hint: Option<TokenTypeHint>) -> Fut<Introspection> {
        let c = self.clone();
        blocking(move || c.introspect(&token, hint))
    }
    fn create_logout_url(&self, r: &LogoutRequest) -> Result<String, Error> {
        Self::create_logout_url(self, r).map(String::from)
    }
    fn client_credentials(&self, scopes: Vec<String>) -> Fut<Agent> {
        let c = self.clone();
        blocking(move || c.client_credentials(scopes))
    }
    fn validate_access_token(&self, token: String, audience: String) -> Fut<AccessTokenInfo> {
        let c = self.clone();
        blocking(move || c.validate_access_token(&token, &audience))
    }
}
