//! The CLI's error: the SDK's errors plus local ones (usage, token file, I/O). Messages never
//! contain a token or secret.

use authpi_idp_ureq::Error as SdkError;
use std::fmt;

/// Everything a command can fail with (exit code 2).
#[derive(Debug)]
pub enum CliError {
    /// The SDK (core or transport) failed.
    Sdk(SdkError),
    /// Missing or contradictory arguments.
    Usage(String),
    /// The token file could not be read, parsed, locked or written.
    TokenFile(String),
    /// Local I/O (the loopback listener, stdin, stdout).
    Io(String),
}

impl CliError {
    /// The error code as the Python SDK names it (`Error::code()`), or a local code.
    pub fn code(&self) -> &str {
        match self {
            CliError::Sdk(e) => e.code(),
            CliError::Usage(_) => "usage_error",
            CliError::TokenFile(_) => "token_file_error",
            CliError::Io(_) => "io_error",
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
            CliError::Usage(_) => "usage",
            CliError::TokenFile(_) => "token_file",
            CliError::Io(_) => "io",
        }
    }

    /// The JSON form printed on stderr with `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.code(),
            "kind": self.kind(),
            "message": self.to_string(),
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Sdk(SdkError::Callback { source: e, .. }) => {
                write!(f, "the rotated tokens could not be saved: {e}")
            }
            CliError::Sdk(e) => {
                fmt::Display::fmt(e, f)?;
                // Transport errors keep the library's reason as their source (URLs at most).
                if let SdkError::Transport(t) = e
                    && let Some(src) = std::error::Error::source(t)
                {
                    write!(f, " ({src})")?;
                }
                Ok(())
            }
            CliError::Usage(m) | CliError::TokenFile(m) | CliError::Io(m) => f.write_str(m),
        }
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
