//! The store suite on the in-memory store.

#[tokio::test]
async fn memory_store_passes_the_store_suite() {
    authpi_idp_session::testing::check_store(&authpi_idp_session::MemoryStore::new()).await;
}

#[test]
fn record_json_keeps_the_python_token_set_and_redacts_debug() {
    let r = authpi_idp_session::testing::record(
        "sess-secret-id",
        "usr_a",
        Some("sid-secret-42"),
        "rt-secret",
        1_000,
    );
    let json = r.to_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["tokens"]["refresh_token"], "rt-secret");
    assert_eq!(v["tokens"]["token_type"], "Bearer");
    assert_eq!(v["version"], 1);
    assert_eq!(
        authpi_idp_session::SessionRecord::from_json(json.as_bytes()).unwrap(),
        r
    );
    let dbg = format!("{r:?}");
    assert!(
        !dbg.contains("rt-secret")
            && !dbg.contains("sess-secret-id")
            && !dbg.contains("sid-secret-42"),
        "{dbg}"
    );
    assert!(authpi_idp_session::SessionRecord::from_json(b"{\"id\":1}").is_err());
    // A token member named twice inside the stored record is refused, not last-wins.
    let doubled = json.replacen(
        "\"access_token\":",
        "\"access_token\":\"at-planted\",\"access_token\":",
        1,
    );
    assert_ne!(doubled, json);
    assert!(authpi_idp_session::SessionRecord::from_json(doubled.as_bytes()).is_err());
}

#[tokio::test]
async fn a_huge_ttl_is_far_future_not_a_panic() {
    // Review #5: Instant + Duration::MAX used to panic in the memory store.
    use authpi_idp_session::SessionStore as _;
    let store = authpi_idp_session::MemoryStore::new();
    let max = std::time::Duration::MAX;
    assert!(store.remember_jti("jti-1", max).await.unwrap());
    assert!(store.has_jti("jti-1").await.unwrap());
    assert!(store.try_lease("lease-1", "fence", max).await.unwrap());
    assert!(!store.try_lease("lease-1", "other", max).await.unwrap());
    store.put_transaction("tx-1", "data", max).await.unwrap();
}
