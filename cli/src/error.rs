//! The CLI's error: the SDK's errors plus local ones (usage, token file, I/O). Messages never
//! contain a token or secret, and provider text in them is sanitized before printing.

use crate::output::clean;
use authpi_idp_ureq::Error as SdkError;
use std::fmt;

/// Exit code: `can` denied, or the login was refused (`access_denied`).
pub const EXIT_DENIED: u8 = 1;
/// Exit code: any other error.
pub const EXIT_ERROR: u8 = 2;
/// Exit code: no stored session, or the provider ended it: log in again.
pub const EXIT_LOGIN_REQUIRED: u8 = 3;
/// Exit code: invalid arguments.
pub const EXIT_USAGE: u8 = 4;
/// Exit code: the provider could not be reached or asked to retry later.
pub const EXIT_UNAVAILABLE: u8 = 5;

/// Everything a command can fail with.
#[derive(Debug)]
pub enum CliError {
    /// The SDK (core or transport) failed.
    Sdk(SdkError),
    /// Missing or contradictory arguments; the argument concerned when known.
    Usage {
        /// What is wrong.
        message: String,
        /// The argument (e.g. `--issuer`).
        argument: Option<String>,
    },
    /// The token file could not be read, parsed, locked or written, or is unsafe to use.
    TokenFile(String),
    /// No stored session: log in first.
    LoginRequired(String),
    /// The token file belongs to another issuer or client than the one asked for.
    Binding(String),
    /// Another process held the token file's lock past the timeout.
    LockTimeout(String),
    /// A configuration file (e.g. `issuer serve --config`) is invalid.
    Config(String),
    /// Local I/O (the loopback listener, stdin, stdout, the browser).
    Io(String),
}

impl CliError {
    /// A usage error about `argument`.
    pub fn usage(message: impl Into<String>, argument: Option<&str>) -> Self {
        CliError::Usage {
            message: message.into(),
            argument: argument.map(str::to_owned),
        }
    }

    /// The error code as the Python SDK names it (`Error::code()`), or a local code.
    pub fn code(&self) -> &str {
        match self {
            CliError::Sdk(e) => e.code(),
            CliError::Usage { .. } => "usage_error",
            CliError::TokenFile(_) => "token_file_error",
            CliError::LoginRequired(_) => "login_required",
            CliError::Binding(_) => "token_file_mismatch",
            CliError::LockTimeout(_) => "lock_timeout",
            CliError::Config(_) => "configuration_error",
            CliError::Io(_) => "io_error",
        }
    }

    /// The process exit code (documented in `--help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage { .. } => EXIT_USAGE,
            CliError::LoginRequired(_) => EXIT_LOGIN_REQUIRED,
            CliError::Sdk(e) if e.is_session_over() => EXIT_LOGIN_REQUIRED,
            CliError::Sdk(SdkError::Transport(_)) => EXIT_UNAVAILABLE,
            CliError::Sdk(e) if matches!(e.status(), Some(429 | 503)) => EXIT_UNAVAILABLE,
            CliError::Sdk(e) if e.code() == "access_denied" => EXIT_DENIED,
            _ => EXIT_ERROR,
        }
    }

    /// A coarse, stable classification of the failure.
    pub fn kind(&self) -> &'static str {
        use authpi_idp::Error as E;
        match self {
            CliError::Sdk(SdkError::Idp(e)) => match e {
                E::Config(_) => "configuration",
                E::OAuth(_) => "oauth",
                E::Status { .. } => "http_status",
                E::Callback(_) => "callback",
                E::Response { .. } => "response",
                E::IdToken(_) => "id_token",
                E::AccessToken(_) => "access_token",
                E::Jwks(_) => "jwks",
                E::Discovery(_) => "discovery",
                E::TokenExpired => "token_expired",
                E::SubjectMismatch { .. } => "subject_mismatch",
                E::Unsupported(_) => "unsupported",
                E::ApiMisuse(_) | E::Request(_) => "usage",
                _ => "sdk",
            },
            CliError::Sdk(SdkError::Transport(_)) => "transport",
            CliError::Sdk(SdkError::Callback { .. }) => "persist",
            CliError::Sdk(SdkError::Rng) => "rng",
            CliError::Sdk(_) => "sdk",
            CliError::Usage { .. } => "usage",
            CliError::TokenFile(_) => "token_file",
            CliError::LoginRequired(_) => "login_required",
            CliError::Binding(_) => "token_file",
            CliError::LockTimeout(_) => "lock",
            CliError::Config(_) => "configuration",
            CliError::Io(_) => "io",
        }
    }

    /// The JSON form printed on stderr with `--json`: `error`, `kind`, `message`, `exit_code`,
    /// and when known `argument`, `status` (the provider's HTTP status) and `retry_after`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "error": self.code(),
            "kind": self.kind(),
            "message": self.to_string(),
            "exit_code": self.exit_code(),
        });
        if let (
            CliError::Usage {
                argument: Some(a), ..
            },
            Some(map),
        ) = (self, v.as_object_mut())
        {
            map.insert("argument".into(), a.as_str().into());
        }
        if let (CliError::Sdk(e), Some(map)) = (self, v.as_object_mut()) {
            if let Some(s) = e.status() {
                map.insert("status".into(), s.into());
            }
            if let Some(r) = e.retry_after() {
                map.insert("retry_after".into(), r.into());
            }
        }
        v
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            CliError::Sdk(SdkError::Callback { source: e, .. }) => {
                format!("the rotated tokens could not be saved: {e}")
            }
            CliError::Sdk(e) => {
                let mut s = e.to_string();
                // Transport errors keep the library's reason as their source (URLs at most).
                if let SdkError::Transport(t) = e
                    && let Some(src) = std::error::Error::source(t)
                {
                    s.push_str(&format!(" ({src})"));
                }
                s
            }
            CliError::Usage { message, .. } => message.clone(),
            CliError::TokenFile(m)
            | CliError::LoginRequired(m)
            | CliError::Binding(m)
            | CliError::LockTimeout(m)
            | CliError::Config(m)
            | CliError::Io(m) => m.clone(),
        };
        f.write_str(&clean(&text))
    }
}

impl std::error::Error for CliError {}

impl From<SdkError> for CliError {
    fn from(e: SdkError) -> Self {
        CliError::Sdk(e)
    }
}

impl From<authpi_idp::Error> for CliError {
    fn from(e: authpi_idp::Error) -> Self {
        CliError::Sdk(SdkError::Idp(e))
    }
}

impl From<authpi_idp_ureq::TransportError> for CliError {
    fn from(e: authpi_idp_ureq::TransportError) -> Self {
        CliError::Sdk(SdkError::Transport(e))
    }
}
