//! The issuer's directory: users, organizations, memberships and clients.

use std::fmt;

use serde_json::{Map, Value};

use crate::jwt::Alg;

/// A user account (`usr_…`).
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// Subject, e.g. `usr_alice`.
    pub id: String,
    /// `email` claim.
    pub email: Option<String>,
    /// `email_verified` claim.
    pub email_verified: bool,
    /// `name` claim.
    pub name: Option<String>,
    /// `given_name` claim.
    pub given_name: Option<String>,
    /// `family_name` claim.
    pub family_name: Option<String>,
    /// `picture` claim.
    pub picture: Option<String>,
    /// `locale` claim.
    pub locale: Option<String>,
    /// `phone_number` claim (scope `phone`; `phone_number_verified` is always false).
    pub phone_number: Option<String>,
    /// `created_at` (Unix seconds), in userinfo.
    pub created_at: u64,
    /// `updated_at` (Unix seconds), in userinfo.
    pub updated_at: u64,
    /// Extra claims returned by userinfo (whatever the scope).
    pub custom_claims: Map<String, Value>,
    /// Blocked users cannot log in (`user_blocked`), refresh (`invalid_grant`) or use userinfo.
    pub blocked: bool,
}

impl User {
    /// A user with just an id; everything else empty, `created_at = updated_at = 1767225600`.
    pub fn new(id: &str) -> User {
        User {
            id: id.to_owned(),
            email: None,
            email_verified: false,
            name: None,
            given_name: None,
            family_name: None,
            picture: None,
            locale: None,
            phone_number: None,
            created_at: 1_767_225_600,
            updated_at: 1_767_225_600,
            custom_claims: Map::new(),
            blocked: false,
        }
    }

    /// Sets `email` and `email_verified`.
    pub fn email(mut self, email: &str, verified: bool) -> User {
        self.email = Some(email.to_owned());
        self.email_verified = verified;
        self
    }

    /// Sets `name`.
    pub fn name(mut self, name: &str) -> User {
        self.name = Some(name.to_owned());
        self
    }

    /// Adds a custom userinfo claim.
    pub fn custom_claim(mut self, name: &str, value: Value) -> User {
        self.custom_claims.insert(name.to_owned(), value);
        self
    }
}

/// A user's membership in an organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// Organization id (`org_…`).
    pub org_id: String,
    /// Title, e.g. `Founder`; serialized as `null` when absent.
    pub title: Option<String>,
    /// Scopes in this org (`owner`, `projects:**`, …).
    pub scopes: Vec<String>,
    /// `joined_at` (Unix seconds).
    pub joined_at: u64,
    /// Inactive memberships are left out of `organizations`.
    pub active: bool,
}

impl Membership {
    /// An active membership with no title, joined at 1767312000.
    pub fn new(org_id: &str, scopes: &[&str]) -> Membership {
        Membership {
            org_id: org_id.to_owned(),
            title: None,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            joined_at: 1_767_312_000,
            active: true,
        }
    }

    /// Sets the title.
    pub fn title(mut self, title: &str) -> Membership {
        self.title = Some(title.to_owned());
        self
    }
}

/// What a client is allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// Confidential web app: authorization code + refresh, authenticates with its secret.
    Confidential,
    /// Public native/SPA client: authorization code + refresh with PKCE only, no secret.
    Public,
    /// Machine-to-machine client (`c_…`): `client_credentials`, 30-minute (access TTL)
    /// tokens, `sub` = client id, `dat.type = "key"`, no refresh token.
    M2m,
    /// Agent client (`agt_…`): `client_credentials`, fixed 5-minute tokens, `sub` = client
    /// id, `dat.type = "agent"`, no refresh token.
    Agent,
}

/// A registered client. `Debug` redacts the secret.
#[derive(Clone, PartialEq)]
pub struct Client {
    /// `client_id`.
    pub id: String,
    /// Client secret (`None` for public clients).
    pub secret: Option<String>,
    /// Kind of client.
    pub kind: ClientKind,
    /// Registered redirect URIs (exact match; `http://127.0.0.1/...` matches any port).
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// Algorithm of every token issued to this client.
    pub alg: Alg,
    /// Scopes a `client_credentials` client may get (requesting others ⇒ `invalid_scope`).
    pub allowed_scopes: Vec<String>,
    /// Whether a refresh response carries a new ID token (default true).
    pub id_token_on_refresh: bool,
    /// OIDC Back-Channel Logout 1.0: where the issuer POSTs a `logout_token` when a session
    /// this client took part in ends (`None`: no back-channel logout).
    pub backchannel_logout_uri: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("kind", &self.kind)
            .field("redirect_uris", &self.redirect_uris)
            .field("post_logout_redirect_uris", &self.post_logout_redirect_uris)
            .field("alg", &self.alg)
            .field("allowed_scopes", &self.allowed_scopes)
            .field("id_token_on_refresh", &self.id_token_on_refresh)
            .field("backchannel_logout_uri", &self.backchannel_logout_uri)
            .finish()
    }
}

impl Client {
    fn base(id: &str, secret: Option<&str>, kind: ClientKind) -> Client {
        Client {
            id: id.to_owned(),
            secret: secret.map(str::to_owned),
            kind,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            alg: Alg::Es256,
            allowed_scopes: Vec::new(),
            id_token_on_refresh: true,
            backchannel_logout_uri: None,
        }
    }

    /// A confidential client with a secret and redirect URIs (ES256).
    pub fn confidential(id: &str, secret: &str, redirect_uris: &[&str]) -> Client {
        Client::base(id, Some(secret), ClientKind::Confidential).redirect_uris(redirect_uris)
    }

    /// A public client (no secret) with redirect URIs (ES256).
    pub fn public(id: &str, redirect_uris: &[&str]) -> Client {
        Client::base(id, None, ClientKind::Public).redirect_uris(redirect_uris)
    }

    /// A machine-to-machine client (`c_…`) with the scopes it may obtain.
    pub fn m2m(id: &str, secret: &str, scopes: &[&str]) -> Client {
        let mut c = Client::base(id, Some(secret), ClientKind::M2m);
        c.allowed_scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        c
    }

    /// An agent client (`agt_…`) with the scopes it may obtain.
    pub fn agent(id: &str, secret: &str, scopes: &[&str]) -> Client {
        let mut c = Client::base(id, Some(secret), ClientKind::Agent);
        c.allowed_scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        c
    }

    fn redirect_uris(mut self, uris: &[&str]) -> Client {
        self.redirect_uris = uris.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Sets the signing algorithm of this client's tokens.
    pub fn alg(mut self, alg: Alg) -> Client {
        self.alg = alg;
        self
    }

    /// Adds a post-logout redirect URI.
    pub fn post_logout_redirect_uri(mut self, uri: &str) -> Client {
        self.post_logout_redirect_uris.push(uri.to_owned());
        self
    }

    /// Whether refresh responses carry an ID token.
    pub fn id_token_on_refresh(mut self, on: bool) -> Client {
        self.id_token_on_refresh = on;
        self
    }

    /// Registers a back-channel logout URI (OIDC Back-Channel Logout 1.0).
    pub fn backchannel_logout_uri(mut self, uri: &str) -> Client {
        self.backchannel_logout_uri = Some(uri.to_owned());
        self
    }

    /// Does `uri` match a registered redirect URI (exact, or RFC 8252 §7.3 loopback with any
    /// port on `127.0.0.1` / `[::1]` when the registered one has no port)?
    pub fn redirect_uri_matches(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|reg| reg == uri || loopback_match(reg, uri))
    }
}

fn loopback_match(registered: &str, candidate: &str) -> bool {
    let (Ok(reg), Ok(cand)) = (url::Url::parse(registered), url::Url::parse(candidate)) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http"
            && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"))
            && u.username().is_empty()
            && u.password().is_none()
            && u.fragment().is_none()
    };
    // The registered URI must not name a port (not even the default one); the candidate may
    // use any.
    let authority = registered
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    let names_port = authority
        .rsplit_once(']')
        .map_or(authority, |(_, after)| after)
        .contains(':');
    loopback(&reg)
        && loopback(&cand)
        && !names_port
        && reg.host_str() == cand.host_str()
        && reg.path() == cand.path()
        && reg.query() == cand.query()
}

/// Request counters per endpoint. A request answered by a pushed fault response still counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `GET /.well-known/openid-configuration`.
    pub discovery_requests: u64,
    /// `GET /jwks.json`.
    pub jwks_requests: u64,
    /// `GET /authorize`.
    pub authorize_requests: u64,
    /// Every request to `/token`, whatever the grant.
    pub token_requests: u64,
    /// `/token` with `grant_type=authorization_code`.
    pub code_requests: u64,
    /// `/token` with `grant_type=refresh_token`.
    pub refresh_requests: u64,
    /// `/token` with `grant_type=client_credentials`.
    pub client_credentials_requests: u64,
    /// `/userinfo`.
    pub userinfo_requests: u64,
    /// `/revoke`.
    pub revoke_requests: u64,
    /// `/introspect`.
    pub introspect_requests: u64,
    /// `/logout`.
    pub logout_requests: u64,
    /// Back-channel logout tokens produced for delivery (one per client per ended session).
    pub backchannel_logouts: u64,
    /// Anything else (answered 404).
    pub other_requests: u64,
}
