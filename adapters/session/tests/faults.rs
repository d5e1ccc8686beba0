//! The fault-injecting wrapper of `testing`: it forwards what is not armed, and faults exactly
//! what is.

use authpi_idp_session::testing::{Answer, FaultStore, StoreOp, check_store, record};
use authpi_idp_session::{Lease, MemoryStore, SessionStore, StoreError, unix_now};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn an_unarmed_fault_store_passes_the_store_suite_and_counts_every_call() {
    let store = FaultStore::new(Arc::new(MemoryStore::new()));
    check_store(&store).await;
    for op in StoreOp::ALL {
        assert!(store.calls(op) > 0, "{op:?} forwarded");
        let answered: usize = [Answer::Yes, Answer::No, Answer::Failed]
            .into_iter()
            .map(|a| store.answers(op, a))
            .sum();
        assert_eq!(
            answered,
            store.calls(op),
            "{op:?}: every call answered once"
        );
        assert_eq!(store.answers(op, Answer::Failed), 0, "{op:?}");
    }
    assert!(
        store.answers(StoreOp::Save, Answer::No) > 0,
        "conflicts counted"
    );
}

#[tokio::test]
async fn failures_are_armed_per_operation_and_counted_down() {
    let memory = MemoryStore::new();
    let store = FaultStore::new(Arc::new(memory.clone()));
    let r = record("s1", "usr_a", Some("sid1"), "rt", unix_now());
    store
        .fail_next(StoreOp::Save, 2)
        .fail_next(StoreOp::Delete, 1);
    for _ in 0..2 {
        assert!(matches!(
            store.save(&r, None).await,
            Err(StoreError::Unavailable(_))
        ));
    }
    assert_eq!(
        memory.load("s1").await,
        Ok(None),
        "a failed save wrote nothing"
    );
    assert_eq!(store.save(&r, None).await, Ok(true));
    assert!(store.delete("s1").await.is_err());
    assert_eq!(memory.load("s1").await, Ok(Some(r.clone())), "not deleted");
    assert_eq!(store.delete("s1").await, Ok(()));
    assert_eq!(memory.load("s1").await, Ok(None));
    assert_eq!(store.answers(StoreOp::Save, Answer::Failed), 2);
    assert_eq!(store.answers(StoreOp::Save, Answer::Yes), 1);
    assert_eq!(store.answers(StoreOp::Delete, Answer::Failed), 1);
    assert_eq!(
        store.calls(StoreOp::Load),
        0,
        "the inner store is not counted"
    );

    store.fail_until_healed(StoreOp::HasJti);
    for _ in 0..5 {
        assert!(store.has_jti("j").await.is_err());
    }
    store.heal(StoreOp::HasJti);
    assert_eq!(store.has_jti("j").await, Ok(false));
    store
        .fail_next(StoreOp::HasJti, 3)
        .fail_next(StoreOp::HasJti, 0);
    assert_eq!(store.has_jti("j").await, Ok(false), "0 disarms");
}

#[tokio::test]
async fn refusals_answer_the_negative_value_without_reaching_the_store() {
    let memory = MemoryStore::new();
    let store = FaultStore::new(Arc::new(memory.clone()));
    let r = record("s1", "usr_a", Some("sid1"), "rt", unix_now());
    store.refuse_next(StoreOp::Save, 1);
    assert_eq!(store.save(&r, None).await, Ok(false), "a conflict");
    assert_eq!(memory.load("s1").await, Ok(None), "nothing written");
    assert_eq!(store.save(&r, None).await, Ok(true));

    store
        .refuse_next(StoreOp::Load, 1)
        .refuse_next(StoreOp::FindBySid, 1)
        .refuse_next(StoreOp::TryLease, 1);
    assert_eq!(store.load("s1").await, Ok(None));
    assert_eq!(store.load("s1").await, Ok(Some(r.clone())));
    assert_eq!(store.find_by_sid("sid1").await, Ok(Vec::new()));
    assert_eq!(store.find_by_sid("sid1").await, Ok(vec!["s1".to_owned()]));
    let ttl = Duration::from_secs(30);
    assert_eq!(store.try_lease("k", "f1", ttl).await, Ok(false));
    assert_eq!(
        store.try_lease("k", "f1", ttl).await,
        Ok(true),
        "not taken before"
    );
    let lease = Lease {
        key: "k".to_owned(),
        fence: "f1".to_owned(),
    };
    assert_eq!(store.release_lease(&lease).await, Ok(true));

    // A failure is checked before a refusal, and a heal drops both.
    store
        .refuse_next(StoreOp::HasJti, 1)
        .fail_next(StoreOp::HasJti, 1);
    assert!(store.has_jti("j").await.is_err());
    assert_eq!(store.has_jti("j").await, Ok(false));
    assert_eq!(store.answers(StoreOp::HasJti, Answer::No), 1);
    store
        .refuse_next(StoreOp::RememberJti, 1)
        .heal(StoreOp::RememberJti);
    assert_eq!(
        store.remember_jti("j", ttl).await,
        Ok(true),
        "healed: recorded"
    );
}

#[test]
#[should_panic(expected = "Delete has no negative answer")]
fn a_delete_cannot_be_refused() {
    FaultStore::new(Arc::new(MemoryStore::new())).refuse_next(StoreOp::Delete, 1);
}

#[tokio::test]
async fn stale_loads_serve_the_old_record_of_that_id_only() {
    let memory = MemoryStore::new();
    let store = FaultStore::new(Arc::new(memory.clone()));
    let now = unix_now();
    let old = record("s1", "usr_a", None, "rt-old", now);
    let mut new = old.clone();
    new.version = 2;
    new.tokens.refresh_token = Some("rt-new".to_owned());
    let other = record("s2", "usr_b", None, "rt-b", now);
    assert_eq!(memory.save(&new, None).await, Ok(true));
    assert_eq!(memory.save(&other, None).await, Ok(true));
    store.stale_loads(old.clone(), 2);
    assert_eq!(store.load("s2").await, Ok(Some(other)), "another id");
    assert_eq!(store.load("s1").await, Ok(Some(old.clone())));
    assert_eq!(store.load("s1").await, Ok(Some(old.clone())));
    assert_eq!(store.load("s1").await, Ok(Some(new.clone())), "used up");
    store.stale_loads(old.clone(), 1).stale_loads(old, 0);
    assert_eq!(store.load("s1").await, Ok(Some(new)), "0 disarms");
}

#[tokio::test]
async fn wait_for_returns_once_the_answer_was_given_that_often() {
    let store = Arc::new(FaultStore::new(Arc::new(MemoryStore::new())));
    let ttl = Duration::from_secs(30);
    assert_eq!(store.try_lease("k", "f1", ttl).await, Ok(true));
    // Already given: at once.
    store.wait_for(StoreOp::TryLease, Answer::Yes, 1).await;
    let waiter = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.wait_for(StoreOp::TryLease, Answer::No, 3).await })
    };
    for _ in 0..2 {
        assert_eq!(store.try_lease("k", "f2", ttl).await, Ok(false));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "two refusals of three");
    assert_eq!(store.try_lease("k", "f2", ttl).await, Ok(false));
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
}
