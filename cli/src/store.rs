//! Token files: the Python SDK's `TokenSet` JSON plus a `bound_to` member naming the issuer and
//! client the tokens belong to, written atomically (a temporary file in the same directory, then
//! `rename`) with mode 0600, and an advisory lock on `FILE.lock`: shared for commands that only
//! read, exclusive for anything that writes (a refresh, a login, a revoke), so that concurrent
//! invocations refresh once.
//!
//! Next to a token file the CLI also keeps `FILE.provider.json`: the discovered metadata and
//! key set (public data), bound to the same issuer and client, so that commands on a token file
//! need no network unless a refresh is due. Its `token_endpoint` receives the refresh token and
//! the client secret, so it is trusted only when the current user owns it and nobody else may
//! write it (the same rule as for the token file).

use crate::error::CliError;
use crate::net::Log;
use authpi_idp::{KeySet, ProviderMetadata, TokenSet, UnixTime};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The issuer and client a token file belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The issuer URL (as configured, without a trailing `/`).
    pub issuer: String,
    /// The client id.
    pub client_id: String,
}

impl Binding {
    /// A binding, the issuer normalized (one trailing `/` removed).
    pub fn new(issuer: &str, client_id: &str) -> Self {
        Binding {
            issuer: issuer.strip_suffix('/').unwrap_or(issuer).to_owned(),
            client_id: client_id.to_owned(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"issuer": self.issuer, "client_id": self.client_id})
    }

    fn from_json(v: &Value) -> Option<Self> {
        Some(Binding::new(
            v.get("issuer")?.as_str()?,
            v.get("client_id")?.as_str()?,
        ))
    }
}

/// Where the tokens themselves are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Store {
    /// In the token file (mode 0600).
    #[default]
    File,
    /// In the OS keyring; the token file keeps only its binding and the keyring entry's name.
    /// Falls back to the file (with a warning) when there is no keyring.
    Keyring,
}

/// A token file on disk.
#[derive(Clone, Debug)]
pub struct TokenFile {
    path: PathBuf,
    store: Store,
    log: Log,
}

/// Held while a token file is being read, used and rewritten; unlocks on drop.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    /// Whether the lock is exclusive.
    pub exclusive: bool,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The directory for default token files: `$XDG_STATE_HOME/authpi-idp`, else
/// `$HOME/.local/state/authpi-idp`.
pub fn state_dir() -> Result<PathBuf, CliError> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(x) if Path::new(&x).is_absolute() => PathBuf::from(x),
        _ => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".local").join("state"))
            .ok_or_else(|| {
                CliError::usage(
                    "no default token location (neither XDG_STATE_HOME nor HOME is set): pass --tokens FILE",
                    Some("--tokens"),
                )
            })?,
    };
    Ok(base.join("authpi-idp"))
}

/// The token file of `--tokens`, or of the profile (default `default`), creating the profile
/// directory (mode 0700) when needed.
pub fn resolve(tokens: Option<&Path>, profile: Option<&str>) -> Result<PathBuf, CliError> {
    if let Some(t) = tokens {
        return Ok(t.to_path_buf());
    }
    let name = profile.unwrap_or("default");
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(CliError::usage(
            "a profile name is 1 to 64 letters, digits, `-`, `_` or `.` (not starting with `.`)",
            Some("--profile"),
        ));
    }
    let dir = state_dir()?.join("profiles");
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(&dir)
        .map_err(|e| io_err("cannot create", &dir, &e))?;
    Ok(dir.join(format!("{name}.json")))
}

impl TokenFile {
    /// The token file at `path`, tokens kept in the file itself, warnings not shown.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TokenFile {
            path: path.into(),
            store: Store::File,
            log: Log {
                verbose: false,
                json: true,
            },
        }
    }

    /// Where new tokens go, and where warnings go.
    pub fn with_store(mut self, store: Store, log: Log) -> Self {
        self.store = store;
        self.log = log;
        self
    }

    /// The keyring account of this file: its absolute path.
    fn account(&self) -> String {
        std::path::absolute(&self.path)
            .unwrap_or_else(|_| self.path.clone())
            .display()
            .to_string()
    }

    /// The keyring account named by a marker file's content, if it is one.
    fn keyring_marker(value: &Value) -> Option<String> {
        if value.get("access_token").is_some() {
            return None;
        }
        value
            .get("keyring")?
            .get("account")?
            .as_str()
            .map(str::to_owned)
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the advisory lock on `FILE.lock`: shared or exclusive, waiting at most `timeout`
    /// (saying so on stderr after a second). Under the exclusive lock, temporary files a killed
    /// writer left behind are removed.
    pub fn lock(&self, exclusive: bool, timeout: Duration, log: Log) -> Result<FileLock, CliError> {
        let lock_path = with_suffix(&self.path, ".lock");
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io_err("cannot open", &lock_path, &e))?;
        check_private(&lock_path)?;
        let start = Instant::now();
        let mut told = false;
        loop {
            let attempt = if exclusive {
                file.try_lock()
            } else {
                file.try_lock_shared()
            };
            match attempt {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    let waited = start.elapsed();
                    if waited >= timeout {
                        return Err(CliError::LockTimeout(format!(
                            "another authpi-idp process has held {} for {} s (a suspended or \
                             hung process?); try again, or raise --lock-timeout",
                            lock_path.display(),
                            waited.as_secs()
                        )));
                    }
                    if !told && waited >= Duration::from_secs(1) {
                        told = true;
                        log.note(&format!(
                            "waiting for another authpi-idp process using {} (up to {} s) …",
                            self.path.display(),
                            timeout.as_secs()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(io_err("cannot lock", &lock_path, &e));
                }
            }
        }
        if exclusive {
            self.remove_stale_temporaries();
        }
        Ok(FileLock {
            _file: file,
            exclusive,
        })
    }

    /// Removes `.NAME.*.tmp` files of this token file and its provider cache (only called under
    /// the exclusive lock, when no writer can be active).
    fn remove_stale_temporaries(&self) {
        let dir = parent_dir(&self.path);
        let names: Vec<OsString> = [self.path.clone(), self.provider_path()]
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_owned()))
            .collect();
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let stale = names.iter().filter_map(|n| n.to_str()).any(|n| {
                name.strip_prefix('.')
                    .and_then(|rest| rest.strip_prefix(n))
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|rest| rest.ends_with(".tmp") && !rest.contains('/'))
            });
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Whether the token file exists.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Reads and parses the token set and its binding (absent in files written by other tools).
    ///
    /// Rotated tokens left in the recovery file `FILE.rotated` by a failed write
    /// ([`Self::write_rotated`]) are newer than the file: they are returned (see
    /// [`Self::read_locked`] for promoting them to the file).
    pub fn read(&self) -> Result<(TokenSet, Option<Binding>), CliError> {
        if let Some(found) = self.read_rotated()? {
            return Ok(found);
        }
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::LoginRequired(format!(
                    "not logged in: no token file {} (run `authpi-idp login`)",
                    self.path.display()
                )));
            }
            Err(e) => return Err(io_err("cannot read", &self.path, &e)),
        };
        check_private(&self.path)?;
        let value = serde_json::from_slice::<Value>(&bytes).ok();
        let binding = value
            .as_ref()
            .and_then(|v| v.get("bound_to").and_then(Binding::from_json));
        let secret;
        let token_bytes = match value.as_ref().and_then(Self::keyring_marker) {
            Some(account) => {
                secret = crate::keyring::get(&account).map_err(|why| {
                    CliError::TokenFile(format!(
                        "the tokens of {} are in the OS keyring, which cannot be read: {why}",
                        self.path.display()
                    ))
                })?;
                secret.as_bytes()
            }
            None => &bytes[..],
        };
        let tokens = TokenSet::from_json(token_bytes).map_err(|e| {
            CliError::TokenFile(format!("{} is not a token set: {e}", self.path.display()))
        })?;
        Ok((tokens, binding))
    }

    /// [`Self::read`] under `lock`; under an exclusive lock (no other writer, no reader that
    /// could be promoting too) rotated tokens of the recovery file are also promoted to the file.
    pub fn read_locked(&self, lock: &FileLock) -> Result<(TokenSet, Option<Binding>), CliError> {
        let (tokens, binding) = self.read()?;
        if lock.exclusive
            && let Some(b) = &binding
            && self.rotated_path().exists()
        {
            match self.write(&tokens, b) {
                Ok(()) => self.log.note(&format!(
                    "recovered the rotated tokens of an earlier failed write into {}",
                    self.path.display()
                )),
                Err(e) => self.log.note(&format!(
                    "warning: still using the rotated tokens of {} ({e})",
                    self.rotated_path().display()
                )),
            }
        }
        Ok((tokens, binding))
    }

    /// Where rotated tokens go when the token file cannot be written.
    fn rotated_path(&self) -> PathBuf {
        with_suffix(&self.path, ".rotated")
    }

    /// The recovery file's tokens and binding, if there is one (private, like the file).
    fn read_rotated(&self) -> Result<Option<(TokenSet, Option<Binding>)>, CliError> {
        let path = self.rotated_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("cannot read", &path, &e)),
        };
        check_private(&path)?;
        let tokens = TokenSet::from_json(&bytes).map_err(|e| {
            CliError::TokenFile(format!("{} is not a token set: {e}", path.display()))
        })?;
        let binding = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("bound_to").and_then(Binding::from_json));
        Ok(Some((tokens, binding)))
    }

    /// Writes tokens that replace spent ones (a refresh rotated them): [`Self::write`], retried
    /// once; when that fails too, into the recovery file `FILE.rotated` (mode 0600) that the next
    /// [`Self::read`] picks up, with a warning. Only when even that fails are they lost (the
    /// error says so); they are never printed.
    pub fn write_rotated(&self, tokens: &TokenSet, binding: &Binding) -> Result<(), CliError> {
        let first = match self.write(tokens, binding) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        self.log.debug(&format!(
            "writing the rotated tokens failed ({first}); retrying"
        ));
        let again = match self.write(tokens, binding) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let path = self.rotated_path();
        let saved = (|| {
            let mut v = serde_json::to_value(tokens).map_err(std::io::Error::other)?;
            if let Some(map) = v.as_object_mut() {
                map.insert("bound_to".into(), binding.to_json());
            }
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let mut file = private_options().write(true).create_new(true).open(&path)?;
            file.write_all(v.to_string().as_bytes())?;
            file.sync_all()
        })();
        match saved {
            Ok(()) => {
                self.log.note(&format!(
                    "warning: {again}; the rotated tokens are kept in {} (mode 0600) and will be \
                     used from there next time",
                    path.display()
                ));
                Ok(())
            }
            Err(e) => Err(CliError::TokenFile(format!(
                "{again}; the rotated tokens could not be kept in {} either ({e}): the session \
                 is lost, log in again",
                path.display()
            ))),
        }
    }

    /// The keyring account of the current file, when it is a keyring marker.
    fn current_marker(&self) -> Option<String> {
        let bytes = fs::read(&self.path).ok()?;
        Self::keyring_marker(&serde_json::from_slice(&bytes).ok()?)
    }

    /// Replaces the tokens atomically: the file (mode 0600), or with `--store keyring` the
    /// keyring entry plus a marker file (the binding and the entry's name). When the keyring
    /// cannot be used the tokens go to the file, with a warning.
    pub fn write(&self, tokens: &TokenSet, binding: &Binding) -> Result<(), CliError> {
        // Fault injection for the process-level tests (root ignores file permissions): debug
        // builds only.
        if cfg!(debug_assertions) && std::env::var_os("AUTHPI_IDP_TEST_FAIL_TOKEN_WRITE").is_some()
        {
            return Err(CliError::TokenFile(format!(
                "cannot write {}: injected failure",
                self.path.display()
            )));
        }
        self.write_inner(tokens, binding)?;
        // These tokens are the newest: an older recovery file must not override them.
        let _ = fs::remove_file(self.rotated_path());
        Ok(())
    }

    fn write_inner(&self, tokens: &TokenSet, binding: &Binding) -> Result<(), CliError> {
        let previous = self.current_marker();
        // A session kept in the keyring stays there (a later `whoami` without --store must not
        // move rotated tokens to the file); log out and in again to change where it lives.
        if self.store == Store::Keyring || previous.is_some() {
            let account = previous.clone().unwrap_or_else(|| self.account());
            match crate::keyring::put(&account, &tokens.to_json()) {
                Ok(()) => {
                    let marker = json!({
                        "bound_to": binding.to_json(),
                        "keyring": {"service": "authpi-idp", "account": account},
                    });
                    return write_atomic(&self.path, marker.to_string().as_bytes());
                }
                Err(why) => self.log.note(&format!(
                    "warning: the OS keyring cannot be used ({why}); the tokens are kept in {} \
                     (mode 0600)",
                    self.path.display()
                )),
            }
        }
        let mut v = serde_json::to_value(tokens).map_err(|_| {
            CliError::TokenFile("internal: the token set does not serialize".into())
        })?;
        if let Some(map) = v.as_object_mut() {
            map.insert("bound_to".into(), binding.to_json());
        }
        write_atomic(&self.path, v.to_string().as_bytes())?;
        if let Some(account) = previous {
            // The tokens moved to the file: the keyring copy is stale (best effort).
            let _ = crate::keyring::delete(&account);
        }
        Ok(())
    }

    /// Deletes the token file (and its keyring entry) and its provider cache (the lock file
    /// stays: others may hold it).
    pub fn delete(&self) -> Result<(), CliError> {
        if let Some(account) = self.current_marker() {
            crate::keyring::delete(&account).map_err(|why| {
                CliError::TokenFile(format!("cannot delete the OS keyring entry: {why}"))
            })?;
        }
        for p in [self.path.clone(), self.provider_path(), self.rotated_path()] {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("cannot delete", &p, &e)),
            }
        }
        Ok(())
    }

    fn provider_path(&self) -> PathBuf {
        with_suffix(&self.path, ".provider.json")
    }

    /// The cached provider metadata and keys, when present, bound to `binding`, and not stale.
    /// A cache that another user owns or may write is an error, not a cache miss.
    pub fn read_provider(
        &self,
        binding: &Binding,
        now: UnixTime,
    ) -> Result<Option<(ProviderMetadata, KeySet)>, CliError> {
        let path = self.provider_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("cannot read", &path, &e)),
        };
        check_private(&path)?;
        let parsed = (|| {
            let mut value: Value = serde_json::from_slice(&bytes).ok()?;
            let bound = value.get("bound_to").and_then(Binding::from_json)?;
            let metadata: ProviderMetadata =
                serde_json::from_value(value.get_mut("metadata")?.take()).ok()?;
            let keys: KeySet = serde_json::from_value(value.get_mut("keys")?.take()).ok()?;
            Some((bound, metadata, keys))
        })();
        Ok(parsed.and_then(|(bound, metadata, keys)| {
            let same = bound == *binding
                && metadata.issuer().trim_end_matches('/') == binding.issuer.trim_end_matches('/');
            (same && !metadata.is_stale(now)).then_some((metadata, keys))
        }))
    }

    /// Caches provider metadata and keys next to the token file (call under the exclusive
    /// lock). A failure is reported: the caller decides whether it matters.
    pub fn write_provider(
        &self,
        binding: &Binding,
        metadata: &ProviderMetadata,
        keys: &KeySet,
    ) -> Result<(), CliError> {
        let value = json!({"bound_to": binding.to_json(), "metadata": metadata, "keys": keys});
        let bytes = serde_json::to_vec(&value)
            .map_err(|_| CliError::TokenFile("internal: the cache does not serialize".into()))?;
        write_atomic(&self.provider_path(), &bytes)
    }
}

/// Refuses a file that another user owns, or that others may write (a planted cache could send
/// the refresh token and client secret anywhere; a planted token file could make the user act
/// as someone else).
pub fn check_private(path: &Path) -> Result<(), CliError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = fs::symlink_metadata(path).map_err(|e| io_err("cannot inspect", path, &e))?;
        if meta.file_type().is_symlink() {
            return Err(CliError::TokenFile(format!(
                "{} is a symbolic link: refusing to use it",
                path.display()
            )));
        }
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(CliError::TokenFile(format!(
                "{} belongs to another user (uid {}, you are {me}): refusing to use it; remove \
                 it or use another --tokens/--profile",
                path.display(),
                meta.uid()
            )));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(CliError::TokenFile(format!(
                "{} may be written by other users (mode {mode:o}): refusing to use it; \
                 `chmod 600` it or remove it",
                path.display()
            )));
        }
    }
    Ok(())
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

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to a fresh temporary file in `path`'s directory (mode 0600), syncs it and
/// renames it over `path`. On failure `path` is untouched and the temporary file removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = parent_dir(path);
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

    fn binding() -> Binding {
        Binding::new("http://127.0.0.1:9/i_x/", "client_web")
    }

    #[test]
    fn write_then_read_round_trips_with_private_mode_and_binding() {
        let dir = std::env::temp_dir().join(format!("authpi-cli-store-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.json");
        let file = TokenFile::new(&path);
        file.write(&tokens(), &binding()).unwrap();
        let (read, bound) = file.read().unwrap();
        assert_eq!(read, tokens());
        assert_eq!(bound.unwrap().issuer, "http://127.0.0.1:9/i_x");
        // Still the Python SDK's token set for any reader.
        assert_eq!(
            TokenSet::from_json(&fs::read(&path).unwrap()).unwrap(),
            tokens()
        );
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
        write_atomic(
            &path,
            br#"{"access_token":"SECRET_AT","expires_at":"soon"}"#,
        )
        .unwrap();
        let err = TokenFile::new(&path).read().unwrap_err();
        assert_eq!(err.code(), "token_file_error");
        assert!(!err.to_string().contains("SECRET_AT"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn profile_names_are_restricted() {
        for bad in ["", "../x", ".hidden", "a/b", "a b"] {
            assert!(
                matches!(resolve(None, Some(bad)), Err(CliError::Usage { .. })),
                "{bad:?}"
            );
        }
        let explicit = resolve(Some(Path::new("/tmp/x.json")), Some("../bad")).unwrap();
        assert_eq!(explicit, PathBuf::from("/tmp/x.json"));
    }
}
