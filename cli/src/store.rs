//! Token files: the Python SDK's `TokenSet` JSON, written atomically (a temporary file in the
//! same directory, then `rename`) with mode 0600, and an advisory lock on `FILE.lock` so that
//! concurrent invocations refresh once.
//!
//! Next to a token file the CLI also keeps `FILE.provider.json`: the discovered metadata and
//! key set (public data), so that commands on a token file need no network unless a refresh is
//! due.

use crate::error::CliError;
use authpi_idp::{KeySet, ProviderMetadata, TokenSet, UnixTime};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A token file on disk.
#[derive(Clone, Debug)]
pub struct TokenFile {
    path: PathBuf,
}

/// Held while a token file is being read, used and rewritten; unlocks on drop.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl TokenFile {
    /// The token file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TokenFile { path: path.into() }
    }

    /// Takes the exclusive advisory lock on `FILE.lock` (blocking).
    pub fn lock(&self) -> Result<FileLock, CliError> {
        let lock_path = with_suffix(&self.path, ".lock");
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io_err("cannot open", &lock_path, &e))?;
        file.lock()
            .map_err(|e| io_err("cannot lock", &lock_path, &e))?;
        Ok(FileLock { _file: file })
    }

    /// Reads and parses the token set.
    pub fn read(&self) -> Result<TokenSet, CliError> {
        let bytes = fs::read(&self.path).map_err(|e| io_err("cannot read", &self.path, &e))?;
        TokenSet::from_json(&bytes).map_err(|e| {
            CliError::TokenFile(format!("{} is not a token set: {e}", self.path.display()))
        })
    }

    /// Replaces the file's content atomically, mode 0600.
    pub fn write(&self, tokens: &TokenSet) -> Result<(), CliError> {
        write_atomic(&self.path, tokens.to_json().as_bytes())
    }

    fn provider_path(&self) -> PathBuf {
        with_suffix(&self.path, ".provider.json")
    }

    /// The cached provider metadata and keys, when present, for `issuer`, and not stale.
    pub fn read_provider(&self, issuer: &str, now: UnixTime) -> Option<(ProviderMetadata, KeySet)> {
        let bytes = fs::read(self.provider_path()).ok()?;
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let metadata: ProviderMetadata =
            serde_json::from_value(value.get_mut("metadata")?.take()).ok()?;
        let keys: KeySet = serde_json::from_value(value.get_mut("keys")?.take()).ok()?;
        let same = |a: &str| a.trim_end_matches('/') == issuer.trim_end_matches('/');
        (same(metadata.issuer()) && !metadata.is_stale(now)).then_some((metadata, keys))
    }

    /// Caches provider metadata and keys next to the token file (best effort: a failure only
    /// costs a discovery next time).
    pub fn write_provider(&self, metadata: &ProviderMetadata, keys: &KeySet) {
        let value = serde_json::json!({"metadata": metadata, "keys": keys});
        if let Ok(bytes) = serde_json::to_vec(&value) {
            let _ = write_atomic(&self.provider_path(), &bytes);
        }
    }
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> CliError {
    CliError::TokenFile(format!("{what} {}: {e}", path.display()))
}

fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Writes `bytes` to a fresh temporary file in `path`'s directory (mode 0600), syncs it and
/// renames it over `path`. On failure `path` is untouched and the temporary file removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| CliError::TokenFile(format!("{} is not a file path", path.display())))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = private_options().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok::<(), std::io::Error>(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("cannot write", path, &e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> TokenSet {
        TokenSet::from_json(br#"{"access_token":"at","token_type":"Bearer","expires_at":5}"#)
            .unwrap()
    }

    #[test]
    fn write_then_read_round_trips_with_private_mode() {
        let dir = std::env::temp_dir().join(format!("authpi-cli-store-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.json");
        let file = TokenFile::new(&path);
        file.write(&tokens()).unwrap();
        assert_eq!(file.read().unwrap(), tokens());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("t.json")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_into_a_missing_directory_fails_cleanly() {
        let path = std::env::temp_dir().join("authpi-cli-no-such-dir/x/t.json");
        assert!(matches!(
            write_atomic(&path, b"{}"),
            Err(CliError::TokenFile(_))
        ));
    }

    #[test]
    fn a_garbage_file_is_a_token_file_error_without_its_content() {
        let dir = std::env::temp_dir().join(format!("authpi-cli-garbage-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.json");
        fs::write(
            &path,
            br#"{"access_token":"SECRET_AT","expires_at":"soon"}"#,
        )
        .unwrap();
        let err = TokenFile::new(&path).read().unwrap_err();
        assert_eq!(err.code(), "token_file_error");
        assert!(!err.to_string().contains("SECRET_AT"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
