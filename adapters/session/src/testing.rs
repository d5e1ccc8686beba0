//! Test support, not for production use:
//!
//! - [`check_store`]: a behaviour suite every [`SessionStore`] must pass (run by this crate on
//!   [`MemoryStore`] and by `authpi-idp-redis` on Redis). It panics with a message on the first
//!   violation.
//! - [`FaultStore`]: a wrapper around any store that fails, refuses or answers stale for the
//!   calls a test arms, and counts what every call answered — one wrapper for every store
//!   fault test.
//! - [`record`]: a session record to store.
//!
//! [`MemoryStore`]: crate::MemoryStore
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod faults;

pub use faults::{Answer, FaultStore, StoreOp};

use crate::store::{Lease, SessionRecord, SessionStore};
use authpi_idp::TokenSet;
use std::time::Duration;

/// A record for tests: `id`, user `sub`, provider session `sid`, refresh token `rt`.
#[must_use]
pub fn record(id: &str, sub: &str, sid: Option<&str>, rt: &str, now: u64) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        sub: sub.to_owned(),
        sid: sid.map(str::to_owned),
        created_at: now,
        expires_at: now + 3600,
        version: 1,
        tokens: TokenSet {
            access_token: format!("at-{rt}"),
            token_type: "Bearer".to_owned(),
            expires_at: now + 300,
            refresh_token: Some(rt.to_owned()),
            id_token: None,
            subject_hint: Some(sub.to_owned()),
            scope: Some("openid".to_owned()),
        },
    }
}

/// Runs the whole suite against `store`.
pub async fn check_store(store: &dyn SessionStore) {
    let now = crate::unix_now();
    let u = crate::random_token(8).unwrap();
    let (a, b, c) = (format!("a{u}"), format!("b{u}"), format!("c{u}"));
    let (sub, sid) = (format!("usr_{u}"), format!("sid_{u}"));

    // Create: only when absent.
    let ra = record(&a, &sub, Some(&sid), "rt1", now);
    assert!(store.load(&a).await.unwrap().is_none(), "empty store");
    assert!(store.save(&ra, None).await.unwrap(), "create");
    assert!(!store.save(&ra, None).await.unwrap(), "create twice");
    assert_eq!(
        store.load(&a).await.unwrap().as_ref(),
        Some(&ra),
        "round trip"
    );

    // Compare-and-set.
    let mut next = ra.clone();
    next.version = 2;
    next.tokens.refresh_token = Some("rt2".to_owned());
    assert!(!store.save(&next, Some(7)).await.unwrap(), "wrong version");
    assert_eq!(
        store.load(&a).await.unwrap().unwrap().version,
        1,
        "unchanged"
    );
    assert!(store.save(&next, Some(1)).await.unwrap(), "right version");
    assert!(!store.save(&next, Some(1)).await.unwrap(), "stale version");
    assert_eq!(store.load(&a).await.unwrap().as_ref(), Some(&next));

    // Indexes.
    let rb = record(&b, &sub, None, "rt-b", now);
    let rc = record(&c, "usr_other", Some(&sid), "rt-c", now);
    assert!(store.save(&rb, None).await.unwrap());
    assert!(store.save(&rc, None).await.unwrap());
    let mut by_sid = store.find_by_sid(&sid).await.unwrap();
    by_sid.sort();
    let mut want = vec![a.clone(), c.clone()];
    want.sort();
    assert_eq!(by_sid, want, "find_by_sid");
    let mut by_sub = store.find_by_sub(&sub).await.unwrap();
    by_sub.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(by_sub, want, "find_by_sub");

    // Delete drops the record and its index entries.
    store.delete(&a).await.unwrap();
    store.delete(&a).await.unwrap();
    assert!(store.load(&a).await.unwrap().is_none(), "deleted");
    assert_eq!(store.find_by_sid(&sid).await.unwrap(), vec![c.clone()]);
    assert_eq!(store.find_by_sub(&sub).await.unwrap(), vec![b.clone()]);
    assert!(
        !store.save(&next, Some(2)).await.unwrap(),
        "CAS on a deleted record"
    );

    // An expired record is gone.
    let mut old = record(&format!("d{u}"), &sub, None, "rt-d", now);
    old.expires_at = now.saturating_sub(1);
    store.save(&old, None).await.unwrap();
    assert!(store.load(&old.id).await.unwrap().is_none(), "expired");
    store.delete(&b).await.unwrap();
    store.delete(&c).await.unwrap();

    // jti replay cache.
    let jti = format!("jti-{u}");
    assert!(!store.has_jti(&jti).await.unwrap());
    assert!(
        store
            .remember_jti(&jti, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(store.has_jti(&jti).await.unwrap());
    assert!(
        !store
            .remember_jti(&jti, Duration::from_secs(60))
            .await
            .unwrap(),
        "replay"
    );

    // Leases: exclusive, released only by the fence holder, expire by themselves.
    let key = format!("lease:{u}");
    assert!(
        store
            .try_lease(&key, "f1", Duration::from_secs(30))
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lease(&key, "f2", Duration::from_secs(30))
            .await
            .unwrap(),
        "held"
    );
    let foreign = Lease {
        key: key.clone(),
        fence: "f2".to_owned(),
    };
    assert!(!store.release_lease(&foreign).await.unwrap(), "not ours");
    let ours = Lease {
        key: key.clone(),
        fence: "f1".to_owned(),
    };
    assert!(
        store
            .renew_lease(&ours, Duration::from_secs(30))
            .await
            .unwrap(),
        "renew ours"
    );
    assert!(
        !store
            .renew_lease(&foreign, Duration::from_secs(30))
            .await
            .unwrap(),
        "renew not ours"
    );
    assert!(store.release_lease(&ours).await.unwrap(), "ours");
    assert!(
        !store
            .renew_lease(&ours, Duration::from_secs(30))
            .await
            .unwrap(),
        "renew a released lease"
    );
    assert!(
        !store.release_lease(&ours).await.unwrap(),
        "already released"
    );
    assert!(
        store
            .try_lease(&key, "f3", Duration::from_millis(150))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        store
            .try_lease(&key, "f4", Duration::from_secs(30))
            .await
            .unwrap(),
        "expired"
    );
    let stale = Lease {
        key: key.clone(),
        fence: "f3".to_owned(),
    };
    assert!(
        !store.release_lease(&stale).await.unwrap(),
        "an expired holder frees nothing"
    );
    assert!(
        !store
            .renew_lease(&stale, Duration::from_secs(30))
            .await
            .unwrap(),
        "an expired holder renews nothing"
    );
    assert!(
        !store
            .try_lease(&key, "f5", Duration::from_secs(30))
            .await
            .unwrap()
    );
    let f4 = Lease {
        key,
        fence: "f4".to_owned(),
    };
    assert!(store.release_lease(&f4).await.unwrap());

    // A renewed lease outlives its first TTL.
    let key = format!("lease2:{u}");
    let held = Lease {
        key: key.clone(),
        fence: "g1".to_owned(),
    };
    assert!(
        store
            .try_lease(&key, "g1", Duration::from_millis(150))
            .await
            .unwrap()
    );
    assert!(
        store
            .renew_lease(&held, Duration::from_secs(30))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !store
            .try_lease(&key, "g2", Duration::from_secs(30))
            .await
            .unwrap(),
        "renewed: still held"
    );
    assert!(store.release_lease(&held).await.unwrap());

    // Transactions are single-use.
    let tx = format!("tx-{u}");
    store
        .put_transaction(&tx, "data", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.take_transaction(&tx).await.unwrap().as_deref(),
        Some("data")
    );
    assert_eq!(
        store.take_transaction(&tx).await.unwrap(),
        None,
        "single use"
    );
}
