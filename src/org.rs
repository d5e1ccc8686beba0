//! Organization memberships: the `organizations` claim and precompiled per-organization checks.
//!
//! The claim has the same shape in access tokens, ID tokens and userinfo:
//! `[{"id":"org_…","title":"Founder"|null,"scopes":["owner","billing:write"],"joined_at":1767312000}]`.
//! [`parse_organizations`] reads it leniently, as the official SDK does; [`Memberships`] indexes
//! it so that every check costs the same whether the principal belongs to 1 or 1000 orgs.
//!
//! Roles: [`Memberships::is_owner_of`] and [`Memberships::is_admin_of`] check the exact role
//! scopes `owner` and `admin`. AuthPI's documentation does not say that `owner` implies `admin`,
//! so it does not here: an org with only `owner` is not reported as admin. Callers that want
//! "owner or admin" ask both. No wildcard (not even `*:**`) implies a role.

use crate::json::Members;
use crate::scope::{FastHasher, ScopeSet};
use serde_json::Value;
use std::hash::Hasher;
use std::sync::OnceLock;

/// One organization membership, as in the `organizations` claim.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Organization {
    /// Organization id (`org_…`), compared exactly.
    pub id: String,
    /// The member's title in this organization, if any.
    pub title: Option<String>,
    /// Role scopes (`owner`, `admin`, `member`) and `resource:action` scopes, in claim order.
    pub scopes: Vec<String>,
    /// When the membership started, Unix seconds (0 when the claim did not say).
    pub joined_at: u64,
}

/// Lenient parsing of a claim value: skip entries that are not objects or lack a string `id`;
/// missing/ill-typed `scopes` ⇒ empty (skip non-string items); missing `joined_at` ⇒ 0 (accept
/// integer or integral float; anything else ⇒ 0); `title` string or None. Non-array ⇒ empty Vec.
pub fn parse_organizations(value: &Value) -> Vec<Organization> {
    into_organizations(value.clone())
}

/// [`parse_organizations`] on an owned claim value: the same rules, moving the strings out
/// instead of copying them.
pub(crate) fn into_organizations(value: Value) -> Vec<Organization> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items.into_iter().filter_map(into_one).collect()
}

fn into_one(item: Value) -> Option<Organization> {
    let Value::Object(mut obj) = item else {
        return None;
    };
    let Some(Value::String(id)) = obj.remove("id") else {
        return None;
    };
    let title = match obj.remove("title") {
        Some(Value::String(t)) => Some(t),
        _ => None,
    };
    let scopes = match obj.remove("scopes") {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let joined_at = obj.opt_u64("joined_at").ok().flatten().unwrap_or(0);
    Some(Organization {
        id,
        title,
        scopes,
        joined_at,
    })
}

/// Memberships with per-org [`ScopeSet`]s: lookups O(1) in the number of orgs.
///
/// Keeps every entry in claim order ([`as_slice`](Self::as_slice)); when two entries share an
/// id, the first one wins for every lookup and the later ones are ignored by all checks.
///
/// Building is cheap because a web app rebuilds the agent on every request and then asks about
/// one or two organizations: the index is one flat table of positions (no copy of any id), and
/// an organization's scopes are compiled into a [`ScopeSet`] the first time it is asked about.
#[derive(Clone, Debug, Default)]
pub struct Memberships {
    /// All entries, claim order.
    orgs: Vec<Organization>,
    /// Open-addressing table: `position + 1` of the first entry with each id (0 = empty slot).
    /// Its length is a power of two at least twice the number of entries.
    slots: Vec<u32>,
    /// Compiled scopes, parallel to `orgs`, filled on first use.
    compiled: Vec<OnceLock<ScopeSet>>,
    /// Union of the scopes of every indexed entry (granting "in any org" is granting in the
    /// union), compiled on first use.
    any: OnceLock<ScopeSet>,
}

fn hash_id(id: &str) -> u64 {
    let mut h = FastHasher::default();
    h.write(id.as_bytes());
    h.finish()
}

impl Memberships {
    /// Indexes `orgs`; their scopes are compiled when first checked.
    pub fn new(orgs: Vec<Organization>) -> Self {
        // An `organizations` claim larger than u32::MAX entries cannot come in a 1 MiB token;
        // entries past that bound would simply not be indexed.
        let capacity = (orgs.len().max(1) * 2).next_power_of_two();
        let mut slots = vec![0u32; capacity];
        let mask = capacity - 1;
        for (i, org) in orgs.iter().enumerate() {
            let Ok(position) = u32::try_from(i + 1) else {
                break;
            };
            #[allow(clippy::cast_possible_truncation)] // masking keeps the low bits on purpose
            let mut slot = (hash_id(&org.id) as usize) & mask;
            loop {
                match slots.get(slot).copied() {
                    Some(0) => {
                        if let Some(s) = slots.get_mut(slot) {
                            *s = position;
                        }
                        break;
                    }
                    Some(taken) if Self::id_at(&orgs, taken) == Some(org.id.as_str()) => break,
                    Some(_) => slot = (slot + 1) & mask,
                    None => break,
                }
            }
        }
        let compiled = std::iter::repeat_with(OnceLock::new)
            .take(orgs.len())
            .collect();
        Memberships {
            orgs,
            slots,
            compiled,
            any: OnceLock::new(),
        }
    }

    fn id_at(orgs: &[Organization], position: u32) -> Option<&str> {
        let i = usize::try_from(position).ok()?.checked_sub(1)?;
        orgs.get(i).map(|o| o.id.as_str())
    }

    /// Position in `orgs` of the first entry with this id.
    fn position(&self, org_id: &str) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        #[allow(clippy::cast_possible_truncation)] // masking keeps the low bits on purpose
        let mut slot = (hash_id(org_id) as usize) & mask;
        // The table is at most half full, so an empty slot ends every probe.
        loop {
            match self.slots.get(slot).copied()? {
                0 => return None,
                p if Self::id_at(&self.orgs, p) == Some(org_id) => {
                    return usize::try_from(p).ok()?.checked_sub(1);
                }
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// Every membership, in claim order (duplicates included).
    pub fn as_slice(&self) -> &[Organization] {
        &self.orgs
    }

    /// Whether there is no membership at all.
    pub fn is_empty(&self) -> bool {
        self.orgs.is_empty()
    }

    /// The membership in `org_id` (the first one if the claim repeated the id).
    pub fn get(&self, org_id: &str) -> Option<&Organization> {
        self.orgs.get(self.position(org_id)?)
    }

    /// The compiled scopes of the membership in `org_id` (the SDK's `get_scopes_for`).
    pub fn scopes_for(&self, org_id: &str) -> Option<&ScopeSet> {
        let i = self.position(org_id)?;
        let org = self.orgs.get(i)?;
        Some(
            self.compiled
                .get(i)?
                .get_or_init(|| ScopeSet::new(org.scopes.iter().cloned())),
        )
    }

    /// Whether the membership in `org_id` grants `action` on `resource`; false for an unknown org.
    pub fn has_access_in(&self, org_id: &str, action: &str, resource: &str) -> bool {
        self.scopes_for(org_id)
            .is_some_and(|set| set.allows(action, resource))
    }

    /// Whether any membership grants `action` on `resource`. O(1) in the number of orgs once
    /// the union is compiled (on the first call).
    ///
    /// This does not fall back to a token's `scope` string when there are no memberships; that
    /// rule belongs to the agent.
    pub fn has_access_any(&self, action: &str, resource: &str) -> bool {
        self.any
            .get_or_init(|| {
                let first = self
                    .orgs
                    .iter()
                    .enumerate()
                    .filter(|(i, o)| self.position(&o.id) == Some(*i));
                ScopeSet::new(first.flat_map(|(_, o)| o.scopes.iter().cloned()))
            })
            .allows(action, resource)
    }

    /// Whether the membership in `org_id` has the role scope `owner`.
    pub fn is_owner_of(&self, org_id: &str) -> bool {
        self.has_role(org_id, "owner")
    }

    /// Whether the membership in `org_id` has the role scope `admin` (`owner` does not imply it).
    pub fn is_admin_of(&self, org_id: &str) -> bool {
        self.has_role(org_id, "admin")
    }

    /// Whether there is a membership in `org_id`, whatever its scopes (even none).
    pub fn is_member_of(&self, org_id: &str) -> bool {
        self.position(org_id).is_some()
    }

    /// Roles are exact presence in the org's own list: no need to compile anything.
    fn has_role(&self, org_id: &str, role: &str) -> bool {
        self.get(org_id)
            .is_some_and(|org| org.scopes.iter().any(|s| s == role))
    }
}

impl From<Vec<Organization>> for Memberships {
    fn from(orgs: Vec<Organization>) -> Self {
        Self::new(orgs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn org(id: &str, title: Option<&str>, scopes: &[&str], joined_at: u64) -> Organization {
        Organization {
            id: id.into(),
            title: title.map(Into::into),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            joined_at,
        }
    }

    #[test]
    fn lenient_parsing_table() {
        let cases: Vec<(&str, Value, Vec<Organization>)> = vec![
            (
                "spec example",
                json!([{"id":"org_1","title":"Founder","scopes":["owner","billing:write"],"joined_at":1767312000}]),
                vec![org(
                    "org_1",
                    Some("Founder"),
                    &["owner", "billing:write"],
                    1767312000,
                )],
            ),
            ("not an array", json!({"id": "org_1"}), vec![]),
            ("null", Value::Null, vec![]),
            ("string", json!("org_1"), vec![]),
            (
                "non-object entries skipped",
                json!([1, "org_x", null, ["org_y"], {"id":"org_1"}]),
                vec![org("org_1", None, &[], 0)],
            ),
            (
                "missing id",
                json!([{"title":"x","scopes":["owner"]}]),
                vec![],
            ),
            ("numeric id", json!([{"id": 7, "scopes":["owner"]}]), vec![]),
            ("null id", json!([{"id": null}]), vec![]),
            (
                "missing scopes, title, joined_at",
                json!([{"id":"org_1"}]),
                vec![org("org_1", None, &[], 0)],
            ),
            (
                "null title, scopes not an array",
                json!([{"id":"org_1","title":null,"scopes":"owner"}]),
                vec![org("org_1", None, &[], 0)],
            ),
            (
                "non-string title",
                json!([{"id":"org_1","title":5}]),
                vec![org("org_1", None, &[], 0)],
            ),
            (
                "non-string scope items skipped",
                json!([{"id":"org_1","scopes":["a:b", 1, null, {"x":1}, "owner"]}]),
                vec![org("org_1", None, &["a:b", "owner"], 0)],
            ),
            (
                "integral float joined_at",
                json!([{"id":"org_1","joined_at":1767312000.0}]),
                vec![org("org_1", None, &[], 1767312000)],
            ),
            (
                "fractional float joined_at",
                json!([{"id":"org_1","joined_at":1.5}]),
                vec![org("org_1", None, &[], 0)],
            ),
            (
                "negative joined_at",
                json!([{"id":"org_1","joined_at":-5}]),
                vec![org("org_1", None, &[], 0)],
            ),
            (
                "negative float joined_at",
                json!([{"id":"org_1","joined_at":-5.0}]),
                vec![org("org_1", None, &[], 0)],
            ),
            (
                "huge float joined_at",
                json!([{"id":"org_1","joined_at":1e30}]),
                vec![org("org_1", None, &[], 0)],
            ),
            (
                "string joined_at",
                json!([{"id":"org_1","joined_at":"1767312000"}]),
                vec![org("org_1", None, &[], 0)],
            ),
            (
                "u64::MAX joined_at",
                json!([{"id":"org_1","joined_at":u64::MAX}]),
                vec![org("org_1", None, &[], u64::MAX)],
            ),
            (
                "order kept, duplicates kept",
                json!([{"id":"org_2"},{"id":"org_1"},{"id":"org_2","title":"again"}]),
                vec![
                    org("org_2", None, &[], 0),
                    org("org_1", None, &[], 0),
                    org("org_2", Some("again"), &[], 0),
                ],
            ),
        ];
        for (name, value, expected) in cases {
            assert_eq!(parse_organizations(&value), expected, "{name}");
        }
    }

    #[test]
    fn parses_through_strict_json() {
        let doc = br#"{"organizations":[{"id":"org_1","title":null,"scopes":["projects:**"],"joined_at":1}]}"#;
        let map = crate::json::parse_object(doc).unwrap();
        let orgs = parse_organizations(map.get("organizations").unwrap());
        assert_eq!(orgs, vec![org("org_1", None, &["projects:**"], 1)]);
    }

    #[test]
    fn serde_round_trip_uses_claim_names() {
        let o = org("org_1", None, &["owner"], 3);
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(
            v,
            json!({"id":"org_1","title":null,"scopes":["owner"],"joined_at":3})
        );
        let back: Organization = serde_json::from_value(v).unwrap();
        assert_eq!(back, o);
    }

    fn sample() -> Memberships {
        Memberships::new(vec![
            org(
                "org_a",
                Some("Founder"),
                &["owner", "projects:**", "users:read"],
                1,
            ),
            org("org_b", None, &["admin", "billing:write"], 2),
            org("org_c", None, &[], 3),
            org("org_a", None, &["admin", "*:**"], 4),
        ])
    }

    #[test]
    fn has_access_in_table() {
        let m = sample();
        // (org, action, resource, expected)
        let cases: &[(&str, &str, &str, bool)] = &[
            ("org_a", "read", "projects", true),
            ("org_a", "write", "projects", true),
            ("org_a", "delete", "projects.tasks", true),
            ("org_a", "read", "projects.tasks.comments", true),
            ("org_a", "read", "users", true),
            ("org_a", "write", "users", false),
            ("org_a", "read", "billing", false),
            // The duplicate org_a (with *:**) is ignored.
            ("org_a", "write", "billing", false),
            ("org_b", "write", "billing", true),
            ("org_b", "read", "projects", false),
            ("org_c", "read", "projects", false),
            ("org_unknown", "read", "projects", false),
            ("", "read", "projects", false),
            ("ORG_A", "read", "projects", false),
        ];
        for &(o, action, resource, expected) in cases {
            assert_eq!(
                m.has_access_in(o, action, resource),
                expected,
                "{o} {action} {resource}"
            );
        }
    }

    #[test]
    fn has_access_any_table() {
        let m = sample();
        let cases: &[(&str, &str, bool)] = &[
            ("read", "projects.tasks", true),
            ("write", "billing", true),
            ("read", "billing", false),
            ("write", "users", false),
            // Only the ignored duplicate entry has *:**.
            ("read", "anything", false),
        ];
        for &(action, resource, expected) in cases {
            assert_eq!(
                m.has_access_any(action, resource),
                expected,
                "{action} {resource}"
            );
        }
        assert!(!Memberships::default().has_access_any("read", "projects"));
    }

    #[test]
    fn roles_and_membership() {
        let m = sample();
        assert!(m.is_owner_of("org_a"));
        assert!(
            !m.is_admin_of("org_a"),
            "owner does not imply admin; duplicate ignored"
        );
        assert!(m.is_admin_of("org_b"));
        assert!(!m.is_owner_of("org_b"));
        assert!(m.is_member_of("org_c"));
        assert!(!m.is_owner_of("org_c"));
        assert!(!m.is_member_of("org_d"));
        assert!(!m.is_owner_of("org_d"));
        let everything = Memberships::new(vec![org("org_x", None, &["*:**", "*:*"], 0)]);
        assert!(!everything.is_owner_of("org_x"));
        assert!(!everything.is_admin_of("org_x"));
        assert!(everything.has_access_in("org_x", "read", "a.b.c"));
    }

    #[test]
    fn duplicate_ids_first_wins() {
        let m = sample();
        assert_eq!(m.as_slice().len(), 4);
        assert_eq!(
            m.get("org_a").and_then(|o| o.title.as_deref()),
            Some("Founder")
        );
        assert_eq!(m.get("org_a").map(|o| o.joined_at), Some(1));
        assert_eq!(
            m.scopes_for("org_a").map(ScopeSet::as_slice),
            Some(
                &[
                    "owner".to_string(),
                    "projects:**".into(),
                    "users:read".into()
                ][..]
            )
        );
        assert!(m.scopes_for("org_c").is_some_and(ScopeSet::is_empty));
        assert!(m.scopes_for("nope").is_none());
        assert!(m.get("nope").is_none());
        assert!(!m.is_empty());
        assert!(Memberships::default().is_empty());
    }

    #[test]
    fn many_orgs_index_every_one() {
        let orgs: Vec<Organization> = (0..1000)
            .map(|i| Organization {
                id: format!("org_{i}"),
                title: None,
                scopes: vec![format!("r{i}:read")],
                joined_at: i,
            })
            .collect();
        let m = Memberships::from(orgs);
        for i in 0..1000 {
            let id = format!("org_{i}");
            assert!(m.has_access_in(&id, "read", &format!("r{i}")));
            assert!(!m.has_access_in(&id, "read", &format!("r{}", i + 1)));
        }
        assert!(m.has_access_any("read", "r999"));
        assert!(!m.has_access_any("read", "r1000"));
    }

    proptest::proptest! {
        /// `has_access_any` (one precompiled union) equals "some org, first occurrence of
        /// each id, grants it" computed with the linear free function.
        #[test]
        fn any_equals_some_org(
            orgs in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["o1", "o2", "o3"]),
                    proptest::collection::vec(
                        proptest::sample::select(vec![
                            "a:read", "a:**", "a.b:write", "*:read", "*:*", "*:**", "owner", "b:*",
                        ]),
                        0..4,
                    ),
                ),
                0..5,
            ),
            action in proptest::sample::select(vec!["read", "write", "x"]),
            resource in proptest::sample::select(vec!["a", "a.b", "a.b.c", "b", "b.c", "c"]),
        ) {
            let orgs: Vec<Organization> =
                orgs.iter().map(|(id, scopes)| org(id, None, scopes, 0)).collect();
            let m = Memberships::new(orgs.clone());
            let mut seen = Vec::new();
            let mut expected = false;
            for o in &orgs {
                if seen.contains(&o.id) {
                    continue;
                }
                seen.push(o.id.clone());
                let granted = crate::scope::has_access(&o.scopes, action, resource);
                proptest::prop_assert_eq!(m.has_access_in(&o.id, action, resource), granted);
                expected |= granted;
            }
            proptest::prop_assert_eq!(m.has_access_any(action, resource), expected);
        }
    }

    #[test]
    fn is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Memberships>();
        check::<Organization>();
    }
}
