//! The development issuer: an [`Issuer`] built from a configuration file (TOML or JSON) and
//! served on a socket, as `authpi-idp issuer serve` runs it.
//!
//! ```toml
//! path = "/i_dev"              # issuer path (default "/i_dev"); the URL is http://HOST:PORT{path}
//! algorithm = "ES256"          # default signing algorithm of clients: ES256, EdDSA, RS256, PS256
//! current_user = "usr_alice"   # auto-approved user (default: the first user)
//!
//! [ttls]                       # seconds; every member optional
//! access = 1800
//! refresh = 604800
//! id = 3600
//! code = 60
//! agent = 300
//!
//! [[users]]
//! id = "usr_alice"
//! email = "alice@example.com"
//! email_verified = true
//! name = "Alice Example"
//!
//! [[organizations]]
//! id = "org_acme"
//! active = true                # default true
//! members = [{ user = "usr_alice", scopes = ["owner", "projects:**"], title = "Founder" }]
//!
//! [[clients]]
//! id = "client_web"
//! secret = "secret_web"        # absent: a public client
//! kind = "confidential"        # confidential | public | m2m | agent (default by secret)
//! redirect_uris = ["http://127.0.0.1/callback"]
//! post_logout_redirect_uris = ["http://127.0.0.1:3000/"]
//! backchannel_logout_uri = "http://127.0.0.1:3000/backchannel-logout"
//! algorithm = "EdDSA"          # overrides the default
//! scopes = ["reports:read"]    # what m2m / agent clients may get
//! ```
//!
//! Unknown keys are errors (a typo must not silently drop a setting). A file whose name ends
//! in `.json` is read as JSON with the same shape; anything else as TOML.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::issuer::{Issuer, IssuerBuilder, Ttls};
use crate::jwt::Alg;
use crate::model::{Client, Membership, User};
use crate::served::{ServeOptions, Served};

/// A dev-issuer configuration (see the [module docs](self) for the file format).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DevConfig {
    /// Issuer path (default `/i_dev`).
    #[serde(default)]
    pub path: Option<String>,
    /// Default signing algorithm of clients (default `ES256`).
    #[serde(default)]
    pub algorithm: Option<String>,
    /// The user `/authorize` auto-approves (default: the first user).
    #[serde(default)]
    pub current_user: Option<String>,
    /// Lifetimes.
    #[serde(default)]
    pub ttls: DevTtls,
    /// Users.
    #[serde(default)]
    pub users: Vec<DevUser>,
    /// Organizations and their members.
    #[serde(default)]
    pub organizations: Vec<DevOrganization>,
    /// Clients.
    #[serde(default)]
    pub clients: Vec<DevClient>,
}

/// Lifetimes in seconds; absent members keep the defaults of [`Ttls`].
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DevTtls {
    /// Access tokens.
    pub access: Option<u64>,
    /// Refresh tokens.
    pub refresh: Option<u64>,
    /// ID tokens.
    pub id: Option<u64>,
    /// Authorization codes.
    pub code: Option<u64>,
    /// Agent access tokens.
    pub agent: Option<u64>,
}

/// A user.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DevUser {
    /// Subject (`usr_…`).
    pub id: String,
    /// `email`.
    #[serde(default)]
    pub email: Option<String>,
    /// `email_verified` (default false).
    #[serde(default)]
    pub email_verified: bool,
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `given_name`.
    #[serde(default)]
    pub given_name: Option<String>,
    /// `family_name`.
    #[serde(default)]
    pub family_name: Option<String>,
    /// Blocked users cannot log in.
    #[serde(default)]
    pub blocked: bool,
    /// Extra userinfo claims.
    #[serde(default)]
    pub claims: Map<String, Value>,
}

/// An organization.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DevOrganization {
    /// `org_…`.
    pub id: String,
    /// Inactive organizations are left out of `organizations` (default true).
    #[serde(default = "yes")]
    pub active: bool,
    /// Its members.
    #[serde(default)]
    pub members: Vec<DevMember>,
}

fn yes() -> bool {
    true
}

/// A membership.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DevMember {
    /// The user's id.
    pub user: String,
    /// Scopes in the organization.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// `joined_at` (Unix seconds; default 1767312000).
    #[serde(default)]
    pub joined_at: Option<u64>,
}

/// A client.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DevClient {
    /// `client_id`.
    pub id: String,
    /// Secret (absent: a public client).
    #[serde(default)]
    pub secret: Option<String>,
    /// `confidential`, `public`, `m2m` or `agent` (default: confidential with a secret,
    /// public without).
    #[serde(default)]
    pub kind: Option<String>,
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Back-channel logout URI.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// Signing algorithm (default: the file's `algorithm`).
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Scopes an m2m or agent client may obtain.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Whether refresh responses carry an ID token (default true).
    #[serde(default = "yes")]
    pub id_token_on_refresh: bool,
}

impl fmt::Debug for DevClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevClient")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("kind", &self.kind)
            .field("redirect_uris", &self.redirect_uris)
            .field("backchannel_logout_uri", &self.backchannel_logout_uri)
            .finish_non_exhaustive()
    }
}

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

fn alg(name: &str) -> Result<Alg, ConfigError> {
    Alg::from_name(name).ok_or_else(|| {
        bad(format!(
            "unknown algorithm `{name}` (ES256, EdDSA, RS256 or PS256)"
        ))
    })
}

impl DevConfig {
    /// Parses TOML.
    pub fn from_toml(text: &str) -> Result<DevConfig, ConfigError> {
        toml::from_str(text).map_err(|e| bad(format!("TOML: {}", e.message())))
    }

    /// Parses JSON.
    pub fn from_json(text: &str) -> Result<DevConfig, ConfigError> {
        serde_json::from_str(text).map_err(|e| bad(format!("JSON: {e}")))
    }

    /// Reads a file: JSON when its name ends in `.json`, TOML otherwise.
    pub fn from_path(path: &Path) -> Result<DevConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            DevConfig::from_json(&text)
        } else {
            DevConfig::from_toml(&text)
        }
    }

    /// The issuer path (`/i_dev` by default), always starting with `/` and without a trailing
    /// one.
    pub fn issuer_path(&self) -> String {
        let p = self
            .path
            .as_deref()
            .unwrap_or("/i_dev")
            .trim_end_matches('/');
        if p.starts_with('/') || p.is_empty() {
            p.to_owned()
        } else {
            format!("/{p}")
        }
    }

    /// An issuer builder for `issuer_url` with everything the file says, after checking it:
    /// ids unique and non-empty, members are known users, algorithms and kinds known, the
    /// current user exists, back-channel logout URIs are absolute http(s) URLs.
    pub fn builder(&self, issuer_url: &str) -> Result<IssuerBuilder, ConfigError> {
        let default_alg = alg(self.algorithm.as_deref().unwrap_or("ES256"))?;
        let mut b = Issuer::builder(issuer_url);
        let d = Ttls::default();
        let t = &self.ttls;
        b = b.ttls(Ttls {
            access: t.access.unwrap_or(d.access),
            refresh: t.refresh.unwrap_or(d.refresh),
            id: t.id.unwrap_or(d.id),
            code: t.code.unwrap_or(d.code),
            agent: t.agent.unwrap_or(d.agent),
        });
        let mut user_ids = BTreeSet::new();
        for u in &self.users {
            if u.id.is_empty() || !user_ids.insert(u.id.clone()) {
                return Err(bad(format!("user id `{}` is empty or repeated", u.id)));
            }
            let mut user = User::new(&u.id);
            user.email = u.email.clone();
            user.email_verified = u.email_verified;
            user.name = u.name.clone();
            user.given_name = u.given_name.clone();
            user.family_name = u.family_name.clone();
            user.blocked = u.blocked;
            user.custom_claims = u.claims.clone();
            b = b.user(user);
        }
        let mut org_ids = BTreeSet::new();
        for o in &self.organizations {
            if o.id.is_empty() || !org_ids.insert(o.id.clone()) {
                return Err(bad(format!(
                    "organization id `{}` is empty or repeated",
                    o.id
                )));
            }
            if !o.active {
                b = b.inactive_org(&o.id);
            }
            for m in &o.members {
                if !user_ids.contains(&m.user) {
                    return Err(bad(format!(
                        "organization `{}` lists unknown user `{}`",
                        o.id, m.user
                    )));
                }
                let scopes: Vec<&str> = m.scopes.iter().map(String::as_str).collect();
                let mut membership = Membership::new(&o.id, &scopes);
                membership.title = m.title.clone();
                if let Some(j) = m.joined_at {
                    membership.joined_at = j;
                }
                b = b.membership(&m.user, membership);
            }
        }
        let mut client_ids = BTreeSet::new();
        for c in &self.clients {
            if c.id.is_empty() || !client_ids.insert(c.id.clone()) {
                return Err(bad(format!("client id `{}` is empty or repeated", c.id)));
            }
            b = b.client(dev_client(c, default_alg)?);
        }
        if let Some(u) = &self.current_user {
            if !user_ids.contains(u) {
                return Err(bad(format!("current_user `{u}` is not a user")));
            }
            b = b.current_user(u);
        }
        Ok(b)
    }
}

fn dev_client(c: &DevClient, default_alg: Alg) -> Result<Client, ConfigError> {
    let uris: Vec<&str> = c.redirect_uris.iter().map(String::as_str).collect();
    let scopes: Vec<&str> = c.scopes.iter().map(String::as_str).collect();
    let secret = c.secret.as_deref();
    let need_secret =
        || secret.ok_or_else(|| bad(format!("client `{}` of this kind needs a secret", c.id)));
    let kind = c.kind.as_deref().unwrap_or(if secret.is_some() {
        "confidential"
    } else {
        "public"
    });
    let mut client = match kind {
        "confidential" => Client::confidential(&c.id, need_secret()?, &uris),
        "public" => {
            if secret.is_some() {
                return Err(bad(format!(
                    "public client `{}` must not have a secret",
                    c.id
                )));
            }
            Client::public(&c.id, &uris)
        }
        "m2m" => Client::m2m(&c.id, need_secret()?, &scopes),
        "agent" => Client::agent(&c.id, need_secret()?, &scopes),
        other => {
            return Err(bad(format!(
                "client `{}`: unknown kind `{other}` (confidential, public, m2m, agent)",
                c.id
            )));
        }
    };
    client = client
        .alg(match &c.algorithm {
            Some(a) => alg(a)?,
            None => default_alg,
        })
        .id_token_on_refresh(c.id_token_on_refresh);
    for u in &c.post_logout_redirect_uris {
        client = client.post_logout_redirect_uri(u);
    }
    if let Some(u) = &c.backchannel_logout_uri {
        match url::Url::parse(u) {
            Ok(p) if matches!(p.scheme(), "http" | "https") => {}
            _ => {
                return Err(bad(format!(
                    "client `{}`: backchannel_logout_uri must be an absolute http(s) URL",
                    c.id
                )));
            }
        }
        client = client.backchannel_logout_uri(u);
    }
    Ok(client)
}

/// How [`serve`] runs the dev issuer.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct DevOptions {
    /// Socket options (bind address and port, request log).
    pub serve: ServeOptions,
    /// Show a login page where a user is chosen, instead of auto-approving.
    pub interactive: bool,
}

impl DevOptions {
    /// Options with these socket options.
    pub fn new(serve: ServeOptions) -> DevOptions {
        DevOptions {
            serve,
            interactive: false,
        }
    }

    /// Interactive login.
    pub fn interactive(mut self, on: bool) -> DevOptions {
        self.interactive = on;
        self
    }
}

/// Starts the dev issuer described by `config`: the issuer URL is
/// `http://{bound address}{config path}`; it stops when the returned value is dropped.
pub fn serve(config: &DevConfig, options: DevOptions) -> io::Result<Served> {
    let url = format!("http://127.0.0.1{}", config.issuer_path());
    let builder = config
        .builder(&url)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .interactive_login(options.interactive);
    Served::start_with(builder, options.serve)
}
