//! AuthPI's scope grammar: `parse_scope`, `has_access` (the reference) against the
//! precompiled `ScopeSet`, and `Memberships` from an arbitrary `organizations` JSON value.
//!
//! Input: `scopes (space separated) ‖ NUL ‖ action ‖ NUL ‖ resource ‖ NUL ‖ organizations JSON`.
#![no_main]

use authpi_idp::internal::org::{Memberships, parse_organizations};
use authpi_idp::scope::{ScopeSet, has_access, parse_scope};
use authpi_idp_fuzz::split_nul;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (scopes, rest) = split_nul(data);
    let (action, rest) = split_nul(rest);
    let (resource, orgs) = split_nul(rest);
    let (Ok(scopes), Ok(action), Ok(resource)) = (
        std::str::from_utf8(scopes),
        std::str::from_utf8(action),
        std::str::from_utf8(resource),
    ) else {
        return;
    };
    let list: Vec<&str> = scopes.split_whitespace().collect();
    for s in &list {
        if let Some(p) = parse_scope(s) {
            assert!(!p.resource.is_empty() && !p.action.is_empty());
            assert_eq!(format!("{}:{}", p.resource, p.action), *s);
            assert_eq!(
                p.grants(action, resource),
                has_access(&[*s], action, resource)
            );
        }
    }
    let set = ScopeSet::from_space_separated(scopes);
    assert_eq!(
        set.allows(action, resource),
        has_access(&list, action, resource),
        "ScopeSet disagrees with has_access"
    );
    for s in &list {
        assert!(set.contains(s));
    }
    assert_eq!(set.as_slice().len(), list.len());

    let Ok(value) = authpi_idp::internal::json::parse_value(orgs) else {
        return;
    };
    let parsed = parse_organizations(&value);
    let m = Memberships::new(parsed.clone());
    for org in &parsed {
        // The first entry with an id wins every lookup.
        let first = parsed.iter().find(|o| o.id == org.id).map(|o| &o.scopes);
        let expected = first.is_some_and(|s| has_access(s, action, resource));
        assert_eq!(m.has_access_in(&org.id, action, resource), expected);
        assert!(m.is_member_of(&org.id));
        assert_eq!(
            m.is_owner_of(&org.id),
            first.is_some_and(|s| s.iter().any(|x| x == "owner"))
        );
    }
    assert_eq!(
        m.has_access_any(action, resource),
        parsed
            .iter()
            .enumerate()
            .filter(|(i, o)| parsed.iter().position(|x| x.id == o.id) == Some(*i))
            .any(|(_, o)| has_access(&o.scopes, action, resource))
    );
    assert!(!m.is_member_of(resource) || parsed.iter().any(|o| o.id == resource));
});
