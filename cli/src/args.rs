//! Command-line arguments (clap derive).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// What `--help` shows after the commands: exit codes, secrets, files, examples.
pub const AFTER_HELP: &str = "\
Exit codes:
  0  ok
  1  denied: `can` answered no, or the user or provider refused the login (access_denied)
  2  error (the provider answered something invalid, a file could not be used, ...)
  3  login required: no stored session, or the provider ended it (invalid_grant, expired)
  4  usage: missing or invalid arguments
  5  unavailable: the provider could not be reached, or asked to retry later (429/503);
     with --json the error object carries `status` and `retry_after` when the provider sent them

Secrets:
  Arguments are visible to other users (ps) and kept in shell history. Pass the client secret
  with AUTHPI_CLIENT_SECRET or --client-secret-file FILE (`-` reads stdin), and a token to
  `verify` as `-` (read from stdin); --client-secret and a token argument work but are unsafe.

Sessions:
  Tokens are kept in $XDG_STATE_HOME/authpi-idp/profiles/PROFILE.json (PROFILE from --profile or
  AUTHPI_PROFILE, default `default`; ~/.local/state when XDG_STATE_HOME is unset), or in
  --tokens FILE. A token file remembers the issuer and client it belongs to: later commands
  take them from it, and refuse a different --issuer or --client-id. Files are mode 0600 and
  refused when another user owns them or others may write them.

Examples:
  authpi-idp login --issuer https://idp.authpi.com/i_123 --client-id c_cli
  authpi-idp whoami
  authpi-idp can --org org_acme write projects.tasks && deploy
  curl -H \"$(authpi-idp token --header)\" https://api.example.com/projects
  authpi-idp login --device --issuer https://op.example --client-id cli --profile work
  authpi-idp logout
  printf %s \"$TOKEN\" | authpi-idp verify --issuer https://idp.authpi.com/i_123 --audience https://api.example.com -
  authpi-idp completions bash > /etc/bash_completion.d/authpi-idp

TLS and proxies:
  The built-in (webpki) roots by default; --system-roots for the OS store, --ca-file PEM for a
  private CA. Proxies from ALL_PROXY / HTTPS_PROXY / HTTP_PROXY, except NO_PROXY hosts.

Environment:
  AUTHPI_CA_FILE, AUTHPI_ISSUER_URL, AUTHPI_CLIENT_ID, AUTHPI_CLIENT_SECRET, AUTHPI_REDIRECT_URI, AUTHPI_PROFILE,
  AUTHPI_BROWSER (program that opens the login URL; default xdg-open / open / start),
  AUTHPI_LOG (any value but 0: like --verbose).";

/// `authpi-idp`: an OpenID Connect client for AuthPI (and any OpenID provider) on the command
/// line.
#[derive(Debug, Parser)]
#[command(name = "authpi-idp", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// Print the result as one JSON object on stdout (errors as one JSON object on stderr);
    /// `login` first prints JSON lines for the user's next step.
    #[arg(long, global = true)]
    pub json: bool,
    /// Include the tokens themselves (secrets) in the output.
    #[arg(long, global = true)]
    pub show_tokens: bool,
    /// Log every request to the provider (method, endpoint, status, time; never a secret) on
    /// stderr.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    /// Trust exactly the CA certificates of this PEM file (a provider behind a private CA)
    /// instead of the built-in (webpki) roots.
    #[arg(long, global = true, value_name = "PEM", env = "AUTHPI_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Trust the operating system's certificate store (corporate CAs, TLS-inspecting proxies)
    /// instead of the built-in (webpki) roots.
    #[arg(long, global = true, conflicts_with = "ca_file")]
    pub system_roots: bool,
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
    /// Client secret (confidential clients). Unsafe: visible in `ps`; prefer the environment
    /// variable or --client-secret-file.
    #[arg(
        long = "client-secret",
        env = "AUTHPI_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// Read the client secret from this file (`-`: stdin); surrounding whitespace is ignored.
    #[arg(
        long = "client-secret-file",
        value_name = "FILE",
        conflicts_with = "client_secret"
    )]
    pub client_secret_file: Option<PathBuf>,
    /// Redirect URI registered for the client.
    #[arg(long = "redirect-uri", env = "AUTHPI_REDIRECT_URI")]
    pub redirect_uri: Option<String>,
}

/// Where the session's tokens are kept.
#[derive(Debug, Args, Clone, Default)]
pub struct Where {
    /// Token file (written atomically, mode 0600; `FILE.lock` serializes concurrent use).
    /// Default: the profile's file in the XDG state directory.
    #[arg(long = "tokens", value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Named session (default `default`); --tokens wins when both are given.
    #[arg(long, env = "AUTHPI_PROFILE")]
    pub profile: Option<String>,
    /// Seconds to wait for another `authpi-idp` using the same token file.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub lock_timeout: u64,
    /// Where new tokens are kept: the file, or the OS keyring (cargo feature `keyring`; the
    /// file then holds only the issuer, client and entry name; without a keyring the file is
    /// used, with a warning).
    #[arg(long, value_enum, env = "AUTHPI_STORE", default_value = "file")]
    pub store: crate::store::Store,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an embedded AuthPI-compatible issuer on 127.0.0.1 and run a whole session against
    /// it over HTTP: login, identity, access decisions, refresh, API-side validation, revocation.
    Demo,
    /// Log in: opens the browser (native-app flow, RFC 8252: loopback redirect, PKCE, verified ID
    /// token), or the device flow (RFC 8628) with --device.
    Login(LoginArgs),
    /// Show the agent of the stored session, refreshing (and saving the rotated tokens) when due.
    Whoami {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file.
        #[command(flatten)]
        at: Where,
    },
    /// Print the access token, refreshing it first when due (for `curl -H`, scripts).
    Token {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file.
        #[command(flatten)]
        at: Where,
        /// Print `Authorization: Bearer TOKEN`.
        #[arg(long)]
        header: bool,
    },
    /// Refresh now and save the rotated tokens.
    Refresh {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file.
        #[command(flatten)]
        at: Where,
    },
    /// Check a permission locally: exit 0 when allowed, 1 when denied.
    Can {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file.
        #[command(flatten)]
        at: Where,
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
        at: Where,
    },
    /// Revoke the stored refresh token (default) or access token (RFC 7009), then delete the
    /// local tokens (the session is over).
    Revoke {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file.
        #[command(flatten)]
        at: Where,
        /// Revoke the refresh token (the default when there is one).
        #[arg(long, conflicts_with = "access")]
        refresh: bool,
        /// Revoke the access token.
        #[arg(long)]
        access: bool,
    },
    /// Log out: revoke the refresh and access tokens, delete the local tokens, and print the
    /// provider's logout URL (open it to end the browser session too).
    Logout {
        /// Issuer and client.
        #[command(flatten)]
        conn: Conn,
        /// Token file.
        #[command(flatten)]
        at: Where,
        /// Where the provider sends the user after logout.
        #[arg(long)]
        post_logout_redirect_uri: Option<String>,
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
    /// Validate an access token as an API would (RFC 9068) and print its claims and agent. No
    /// client id is needed.
    Verify {
        /// Issuer (and, optionally, client: none is needed).
        #[command(flatten)]
        conn: Conn,
        /// The audience the API expects.
        #[arg(long)]
        audience: String,
        /// The access token, or `-` to read it from stdin (safe: argv is visible in `ps`).
        token: String,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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
    /// Where to keep the tokens.
    #[command(flatten)]
    pub at: Where,
    /// Scopes, space separated (repeatable; default `openid profile email offline_access`).
    #[arg(long)]
    pub scope: Vec<String>,
    /// Log in to this organization.
    #[arg(long)]
    pub org: Option<String>,
    /// RFC 8707 resource (repeatable).
    #[arg(long)]
    pub resource: Vec<String>,
    /// Do not open a browser: print the login URL (open it yourself, on this machine).
    #[arg(long)]
    pub no_launch_browser: bool,
    /// No listener: print the authorization URL as the first line of stdout (with --json: a
    /// JSON line `{"authorization_url": …}`), then read the full callback URL the browser was
    /// sent to as one line from stdin (requires --redirect-uri). For machines without a browser.
    #[arg(long, alias = "no-browser", conflicts_with = "device")]
    pub paste_callback: bool,
    /// Device authorization grant (RFC 8628): print a code to enter on any device, poll until
    /// the user approved.
    #[arg(long)]
    pub device: bool,
    /// Seconds to wait for the browser's callback (or the device approval).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}
