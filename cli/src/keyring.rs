//! The OS keyring for `--store keyring` (cargo feature `keyring`): one entry per token file,
//! service `authpi-idp`, account the token file's absolute path, secret the token set JSON.

/// The keyring service name.
#[cfg(feature = "keyring")]
const SERVICE: &str = "authpi-idp";

/// Why the keyring cannot be used in this build.
#[cfg(not(feature = "keyring"))]
const UNAVAILABLE: &str =
    "this authpi-idp was built without OS keyring support (cargo feature `keyring`)";

/// Stores `secret` for `account`.
#[cfg(feature = "keyring")]
pub fn put(account: &str, secret: &str) -> Result<(), String> {
    keyring::Entry::new(SERVICE, account)
        .and_then(|e| e.set_password(secret))
        .map_err(|e| e.to_string())
}

/// The secret stored for `account`.
#[cfg(feature = "keyring")]
pub fn get(account: &str) -> Result<String, String> {
    keyring::Entry::new(SERVICE, account)
        .and_then(|e| e.get_password())
        .map_err(|e| e.to_string())
}

/// Deletes the entry of `account` (absent is fine).
#[cfg(feature = "keyring")]
pub fn delete(account: &str) -> Result<(), String> {
    match keyring::Entry::new(SERVICE, account).and_then(|e| e.delete_credential()) {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Stores `secret` for `account`.
#[cfg(not(feature = "keyring"))]
pub fn put(_account: &str, _secret: &str) -> Result<(), String> {
    Err(UNAVAILABLE.into())
}

/// The secret stored for `account`.
#[cfg(not(feature = "keyring"))]
pub fn get(_account: &str) -> Result<String, String> {
    Err(UNAVAILABLE.into())
}

/// Deletes the entry of `account` (absent is fine).
#[cfg(not(feature = "keyring"))]
pub fn delete(_account: &str) -> Result<(), String> {
    Ok(())
}
