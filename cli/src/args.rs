//! Command-line arguments (clap derive).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// `authpi-idp`: an OpenID Connect client for AuthPI (and any OpenID provider) on the command
/// line.
///
/// Exit codes: 0 ok, 1 denied (`can` only), 2 any error.
#[derive(Debug, Parser)]
#[command(name = "authpi-idp", version, about, long_about = None)]
pub struct Cli {
    /// Print the result as one JSON object on stdout (errors as one JSON object on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Include the tokens themselves (secrets) in the output.
    #[arg(long, global = true)]
    pub show_tokens: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The issuer and client to talk to (flags or environment).
#[derive(Debug, Args, Clone, Default)]
pub struct Conn {
    /// Issuer URL (discovered with OpenID Connect Discovery).
    #[arg(long = "issuer", env = "AUTHPI_ISSUER_URL")]
    pub issuer: Option<String>,
    /// Client id.
    #[arg(long = "client-id", env = "AUTHPI_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Client secret (confidential clients).
    #[arg(
        long = "client-secret",
        env = "AUTHPI_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// Redirect URI registered for the client.
    #[arg(long = "redirect-uri", env = "AUTHPI_REDIRECT_URI")]
    pub redirect_uri: Option<String>,
}

/// A stored token set (the Python SDK's `TokenSet` JSON).
#[derive(Debug, Args, Clone)]
pub struct TokensArg {
    /// Token file (written atomically, mode 0600; `FILE.lock` serializes concurrent use).
    #[arg(long = "tokens", value_name = "FILE")]
    pub tokens: PathBuf,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an embedded AuthPI-compatible issuer on 127.0.0.1 and run a whole session against
    /// it over HTTP: login, identity, access decisions, refresh, API-side validation, revocation.
    Demo,
    /// Log in with the native-app flow (RFC 8252): loopback redirect, PKCE, verified ID token.
    Login(LoginArgs),
    /// Show the agent of a token file, refreshing (and saving the rotated tokens) when due.
    Whoami {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file.
        #[command(flatten)]
        tokens: TokensArg,
    },
    /// Refresh now and save the rotated tokens.
    Refresh {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file.
        #[command(flatten)]
        tokens: TokensArg,
    },
    /// Check a permission locally: exit 0 when allowed, 1 when denied.
    Can {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file.
        #[command(flatten)]
        tokens: TokensArg,
        /// Check within this organization (otherwise: in any organization; a principal without
        /// organizations is judged by its token's scope).
        #[arg(long)]
        org: Option<String>,
        /// The action, e.g. `read`.
        action: String,
        /// The resource, e.g. `projects.tasks`.
        resource: String,
    },
    /// Fetch the UserInfo claims for the stored session.
    Userinfo {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file.
        #[command(flatten)]
        tokens: TokensArg,
    },
    /// Revoke the stored refresh token (default) or access token (RFC 7009).
    Revoke {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file.
        #[command(flatten)]
        tokens: TokensArg,
        /// Revoke the refresh token (the default when there is one).
        #[arg(long, conflicts_with = "access")]
        refresh: bool,
        /// Revoke the access token.
        #[arg(long)]
        access: bool,
    },
    /// Print the RP-initiated logout URL.
    LogoutUrl {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file: its ID token becomes `id_token_hint`.
        #[arg(long = "tokens", value_name = "FILE")]
        tokens: Option<PathBuf>,
        /// Where the provider sends the user after logout.
        #[arg(long)]
        post_logout_redirect_uri: Option<String>,
        /// Opaque `state` echoed back to the post-logout URI.
        #[arg(long)]
        state: Option<String>,
    },
    /// Get a machine-to-machine token (client credentials grant).
    ClientCredentials {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Scopes, space separated (repeatable).
        #[arg(long)]
        scope: Vec<String>,
        /// Save the token set to this file.
        #[arg(long = "tokens", value_name = "FILE")]
        tokens: Option<PathBuf>,
    },
    /// Validate an access token as an API would (RFC 9068) and print its claims and agent.
    Verify {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// The audience the API expects.
        #[arg(long)]
        audience: String,
        /// The access token.
        token: String,
    },
    /// Run a local AuthPI-compatible issuer for development (`issuer serve`).
    #[command(subcommand)]
    Issuer(crate::issuer::IssuerCommand),
}

/// `login` arguments.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Issuer and client.
    #[command(flatten)]
    pub conn: Conn,
    /// Scopes, space separated (repeatable; default `openid profile email offline_access`).
    #[arg(long)]
    pub scope: Vec<String>,
    /// Log in to this organization.
    #[arg(long)]
    pub org: Option<String>,
    /// RFC 8707 resource (repeatable).
    #[arg(long)]
    pub resource: Vec<String>,
    /// Save the token set to this file.
    #[arg(long = "tokens", value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Do not listen: print the authorization URL as the first line of stdout, then read the
    /// full callback URL as one line from stdin (requires `--redirect-uri`).
    #[arg(long)]
    pub no_browser: bool,
    /// Seconds to wait for the browser's callback.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}
