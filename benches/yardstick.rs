//! The yardstick of issue 16's rebuild target ("≤ 1.5 × serde_json parsing the same bytes into a
//! typed struct"): a stored session parsed by serde_json into plain derived structs — the
//! session JSON, then the base64url-decoded ID-token payload — with no check, no signature and no
//! scope compilation. Shared by `benches/core.rs` (criterion, wall clock) and `benches/gate`
//! (callgrind, instructions) through `#[path]`, so both measure the same thing.
#![allow(dead_code, clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The stored session, typed.
#[derive(serde::Deserialize)]
struct StoredSession {
    access_token: String,
    token_type: String,
    expires_at: u64,
    refresh_token: Option<String>,
    id_token: Option<String>,
    scope: Option<String>,
}

/// The ID-token payload of the stored session, typed.
#[derive(serde::Deserialize)]
pub struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    auth_time: u64,
    nonce: String,
    email: String,
    email_verified: bool,
    /// The memberships.
    pub organizations: Vec<Org>,
}

/// One membership, typed.
#[derive(serde::Deserialize)]
pub struct Org {
    id: String,
    title: Option<String>,
    scopes: Vec<String>,
    joined_at: u64,
}

/// The same bytes a rebuild reads, parsed by serde_json into typed structs.
pub fn typed_parse(stored: &str) -> Claims {
    let session: StoredSession = serde_json::from_str(stored).unwrap();
    let id_token = session.id_token.unwrap();
    let payload = id_token.split('.').nth(1).unwrap();
    let payload = URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&payload).unwrap()
}
