//! # authpi-idp-session
//!
//! Browser sessions for web services built on [`authpi_idp`], shared by every instance of the
//! service (DESIGN §9):
//!
//! - [`SessionStore`]: load, save with compare-and-set on a version, delete, find by `sid` and
//!   by `sub`, a `jti` replay cache (back-channel logout), refresh leases and single-use
//!   authorization transactions. [`MemoryStore`] here, Redis in `authpi-idp-redis`.
//! - [`SessionRecord`]: the Python SDK's `TokenSet` JSON plus the session metadata.
//! - [`Sessions`]: the **distributed single-flight refresh**. AuthPI rotates refresh tokens and
//!   the old one dies on first use, so when several instances see one expired session at once,
//!   exactly one of them may refresh:
//!   1. in this process, one task per refresh token goes on (the others wait for it, then read
//!      the store);
//!   2. across processes, a lease per refresh-token hash (`SET NX PX` with a random fencing
//!      value) elects the holder; the others poll the store (bounded) until the rotated set
//!      appears, or the lease disappears (a holder that died releases by expiry) and they try
//!      to take it themselves;
//!   3. the holder renews its lease (fenced: only while the stored value is still its own)
//!      every third of [`SessionsConfig::lease_ttl`] for as long as it works, so a slow
//!      provider, a JWKS refetch or a slow store never lets the lease expire under a live
//!      holder: only a holder that stopped renewing (died) loses it;
//!   4. the holder refreshes through the async client and, inside `on_refresh` — before
//!      anything else sees the new tokens — compare-and-sets the rotated set (version + 1);
//!      then it releases the lease only if it still holds it. If that save fails (retried for
//!      [`SessionsConfig::persist_for`], then the request gets 503), the lease is **not**
//!      released: a detached task keeps renewing it and retrying the save for
//!      [`SessionsConfig::keep_saving_for`], so no instance spends the dead refresh token and
//!      ends the session, and the rotated set is saved as soon as the store takes writes;
//!   5. on `invalid_grant` the store is re-read before the session is declared over, and
//!      while it still holds the refused set, re-read again (polling like a waiter) for
//!      [`SessionsConfig::confirm_over_for`]: another instance may have rotated it, or may
//!      still be retrying the save of the set it rotated.
//!
//!   The refresh runs in a spawned task, so a request cancelled by its client (axum drops the
//!   handler future) cannot drop a rotation half-way.
//!
//! A store that fails makes every call fail with [`SessionError::Unavailable`] (the web layer
//! answers 503): nothing is decided without the store, and each save is one atomic step.
//!
//! ## What the lease survives
//!
//! - **A slow holder** (provider, JWKS refetch, store latency: any length of time): survived;
//!   the lease is renewed while the holder works, and the others wait for its result (up to
//!   [`SessionsConfig::wait`], then 503 — never a second refresh with the spent token).
//! - **A store that fails the save of the rotated set**: survived while this process lives and
//!   the store is back within [`SessionsConfig::keep_saving_for`] (default 60 s); the lease is
//!   kept and renewed meanwhile, and requests for that session wait or get 503. Past that, the
//!   detached task gives up and releases the lease: the rotated set is then only in the client's
//!   refresh grace period of this instance, and a refresh elsewhere ends the session.
//! - **A store outage that also fails the renewals** for longer than the lease TTL: the lease
//!   expires in the store, and once the store answers again another instance may take it and
//!   refresh with the spent token before the holder's next save (50 ms retries). That refresh
//!   gets `invalid_grant`; the new holder then keeps re-reading the store for
//!   [`SessionsConfig::confirm_over_for`] (default 500 ms) and, when the first holder's rotated
//!   set is saved meanwhile, answers with it: the user is not logged out and the store keeps
//!   that set (tested, with the first holder's store back 150 ms after the other's
//!   `invalid_grant`). Not guaranteed:
//!   - a first holder whose save lands later than that (its store back more than
//!     `confirm_over_for` after the other's `invalid_grant`) or never (it died during the
//!     outage, or [`SessionsConfig::keep_saving_for`] ran out): the session ends;
//!   - the provider's side of the kept session: the spent refresh token did reach the provider
//!     twice. AuthPI answers such a replay with `invalid_grant` and keeps the grant, so the
//!     adopted set goes on refreshing (tested). A provider that revokes the whole grant on a
//!     replay (oidc-provider; the testkit issuer's default, so that the suite proves no replay
//!     happens elsewhere) has revoked the adopted set too: its access token still passes local
//!     validation until it expires, a resource server that introspects it refuses it, and the
//!     next refresh ends the session (tested). Keeping the second refresh from being sent at
//!     all is what would prevent that, and an expired lease cannot tell a dead holder from one
//!     cut off from the store.
//!
//!   Choose a lease TTL well above the store's usual blips.
//!
//! ## When the lease holder dies
//!
//! A dead holder no longer renews, so its lease expires within [`SessionsConfig::lease_ttl`].
//!
//! - **Before it sent the refresh request**: the old refresh token is still valid. The others
//!   keep polling; when the lease expires ([`SessionsConfig::lease_ttl`]) one of them takes it
//!   and refreshes. Users wait at most the lease TTL (tested).
//! - **After the store write** (the rotated set is compare-and-set, the lease not yet
//!   released): nothing is lost. Waiters poll the *record*, not the lease, so they see the
//!   rotated set at their next poll; the lease frees itself at expiry.
//! - **Between the provider's answer and the store write** (a window of one store round trip):
//!   the rotated tokens existed only in the dead process, and the old refresh token is spent.
//!   After the lease expires the next holder refreshes with the old token, gets
//!   `invalid_grant`, re-reads the store for [`SessionsConfig::confirm_over_for`] (still the
//!   old set) and ends the session: that user logs in again. No protocol can close this
//!   window — the provider has already rotated — but it is as short as it can be: the write
//!   happens inside `on_refresh`, before the agent is even built, and it runs in a spawned
//!   task, so a cancelled request (client gone, timeout layer) does not open it; only a
//!   process crash does. A store write that fails
//!   is retried for [`SessionsConfig::persist_for`] (2 s) before the error is returned (503),
//!   then in the background while the lease is kept (see above).
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod coordinator;
mod store;
pub mod testing;

pub use coordinator::{SessionError, Sessions, SessionsConfig, lease_key};
pub use store::{BoxFuture, Lease, MemoryStore, SessionRecord, SessionStore, StoreError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::time::{SystemTime, UNIX_EPOCH};

/// `now + d`, or a far-future instant when a configured duration is too large for the clock
/// (an overflowing `std::time::Instant + std::time::Duration` panics).
pub(crate) fn instant_after(now: std::time::Instant, d: std::time::Duration) -> std::time::Instant {
    const FAR: std::time::Duration = std::time::Duration::from_secs(30 * 365 * 24 * 3600);
    now.checked_add(d)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// The system clock in Unix seconds.
#[must_use]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `bytes` random bytes from the operating system's CSPRNG, base64url without padding.
///
/// # Errors
/// [`StoreError::Unavailable`] is not involved: a failing OS RNG gives `None`.
#[must_use]
pub fn random_token(bytes: usize) -> Option<String> {
    use rand_core::TryRngCore;
    let mut buf = vec![0u8; bytes];
    rand_core::OsRng.try_fill_bytes(&mut buf).ok()?;
    Some(URL_SAFE_NO_PAD.encode(&buf))
}

/// A new session id: 256 bits from the OS CSPRNG (43 base64url characters).
#[must_use]
pub fn new_session_id() -> Option<String> {
    random_token(32)
}
