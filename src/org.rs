//! Organization memberships: the `organizations` claim and precompiled per-organization checks.
//!
//! The claim has the same shape in access tokens, ID tokens and userinfo:
//! `[{"id":"org_…","title":"Founder"|null,"scopes":["owner","billing:write"],"joined_at":1767312000}]`.
//! It is read leniently, as the official SDK does ([`parse_organizations`] states the rules), and
//! straight into [`Memberships`], which indexes it so that every check costs the same whether the
//! principal belongs to 1 or 1000 orgs.
//!
//! Roles: [`Memberships::is_owner_of`] and [`Memberships::is_admin_of`] check the exact role
//! scopes `owner` and `admin`. AuthPI's documentation does not say that `owner` implies `admin`,
//! so it does not here: an org with only `owner` is not reported as admin. Callers that want
//! "owner or admin" ask both. No wildcard (not even `*:**`) implies a role.

use crate::json::{Lenient, Leniently, Member as _, Object, ObjectOf, Scalar, ScalarSeed, once};
use crate::scope::{FastHasher, ScopeSet};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;
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
    Memberships::from_claim(value).into_vec()
}

/// Memberships with per-org [`ScopeSet`]s: lookups O(1) in the number of orgs.
///
/// Keeps every entry in claim order ([`as_slice`](Self::as_slice)); when two entries share an
/// id, the first one wins for every lookup and the later ones are ignored by all checks.
///
/// Building is cheap because a web app rebuilds the agent on every request and then asks about
/// one or two organizations. The claim is read straight into this form: every string of it in
/// one buffer, one flat record per membership, and one flat table of positions for the ids, so
/// building costs the same handful of allocations for 1 or 1000 memberships. An organization's
/// scopes are compiled into a [`ScopeSet`] the first time it is asked about, and the
/// [`Organization`] values of [`as_slice`](Self::as_slice) are only made when asked for.
#[derive(Clone, Default)]
pub struct Memberships {
    /// Every id, title and scope of the claim, back to back.
    text: String,
    /// One record per membership, claim order.
    entries: Vec<Entry>,
    /// The scopes of every membership, each membership's a contiguous run, claim order.
    scopes: Vec<Span>,
    /// Open-addressing table: `position + 1` of the first entry with each id (0 = empty slot).
    /// Its length is a power of two at least twice the number of entries.
    slots: Vec<u32>,
    /// Compiled scopes, parallel to `entries`: the table on the first check (one pointer-sized
    /// cell per membership: 16 bytes, not a whole `ScopeSet`), each set on the first check of
    /// its membership.
    compiled: OnceLock<Box<[OnceLock<Box<ScopeSet>>]>>,
    /// Union of the scopes of every indexed entry (granting "in any org" is granting in the
    /// union), compiled on first use.
    any: OnceLock<ScopeSet>,
    /// The memberships as [`Organization`]s, made on first use.
    organizations: OnceLock<Vec<Organization>>,
}

/// A string of [`Memberships::text`], by byte offsets.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    end: u32,
}

/// One membership, its strings as spans.
#[derive(Clone, Copy, Debug)]
struct Entry {
    id: Span,
    title: Option<Span>,
    /// Its scopes: `Memberships::scopes[first..end]`.
    scopes: (u32, u32),
    joined_at: u64,
}

fn hash_id(id: &str) -> u64 {
    let mut h = FastHasher::default();
    h.write(id.as_bytes());
    h.finish()
}

impl Memberships {
    /// Indexes `orgs`; their scopes are compiled when first checked.
    pub fn new(orgs: Vec<Organization>) -> Self {
        let mut b = Builder::default();
        for org in &orgs {
            let mark = b.mark();
            let id = b.push_str(&org.id);
            let title = org.title.as_deref().and_then(|t| b.push_str(t));
            for scope in &org.scopes {
                if let Some(span) = b.push_str(scope) {
                    b.scopes.push(span);
                }
            }
            // Offsets past u32 cannot come from a 1 MiB token; such entries are not indexed.
            match id {
                Some(id) => b.push_entry(mark, id, title, org.joined_at),
                None => b.rewind(mark),
            }
        }
        let m = b.finish();
        if m.entries.len() == orgs.len() {
            // The given values are the claim-order list already: keep them for `as_slice`.
            let _ = m.organizations.set(orgs);
        }
        m
    }

    /// Reads an `organizations` claim value leniently (see [`parse_organizations`]).
    pub(crate) fn from_claim(value: &Value) -> Memberships {
        // A `Value` tree cannot hold a duplicate member, so reading it cannot fail.
        Leniently(Claim).deserialize(value).unwrap_or_default()
    }

    fn str(&self, span: Span) -> &str {
        let (start, end) = (span.start as usize, span.end as usize);
        self.text.get(start..end).unwrap_or_default()
    }

    /// The id of the entry at table `position` (1-based), as bytes: comparing bytes skips the
    /// char-boundary checks of slicing a `str` (`has_access_in` is a hot path).
    fn id_at(&self, position: u32) -> Option<&[u8]> {
        let i = usize::try_from(position).ok()?.checked_sub(1)?;
        let id = self.entries.get(i)?.id;
        self.text.as_bytes().get(id.start as usize..id.end as usize)
    }

    /// The scopes of entry `i`, claim order.
    fn scopes_of(&self, i: usize) -> impl Iterator<Item = &str> + '_ {
        let spans = self.entries.get(i).and_then(|e| {
            let (first, end) = (e.scopes.0 as usize, e.scopes.1 as usize);
            self.scopes.get(first..end)
        });
        spans.unwrap_or_default().iter().map(|s| self.str(*s))
    }

    /// Position in `entries` of the first entry with this id.
    fn position(&self, org_id: &str) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        #[allow(clippy::cast_possible_truncation)] // masking keeps the low bits on purpose
        let mut slot = (hash_id(org_id) as usize) & mask;
        // The table is at most half full, so an empty slot ends every probe.
        loop {
            match self.slots.get(slot).copied()? {
                0 => return None,
                p if self.id_at(p) == Some(org_id.as_bytes()) => {
                    return usize::try_from(p).ok()?.checked_sub(1);
                }
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// Every membership, in claim order (duplicates included). Made on the first call.
    pub fn as_slice(&self) -> &[Organization] {
        self.organizations.get_or_init(|| {
            (0..self.entries.len())
                .filter_map(|i| self.organization(i))
                .collect()
        })
    }

    /// Every membership, in claim order (duplicates included), as owned values.
    pub fn into_vec(self) -> Vec<Organization> {
        match self.organizations.get() {
            Some(_) => self.organizations.into_inner().unwrap_or_default(),
            None => (0..self.entries.len())
                .filter_map(|i| self.organization(i))
                .collect(),
        }
    }

    fn organization(&self, i: usize) -> Option<Organization> {
        let e = self.entries.get(i)?;
        Some(Organization {
            id: self.str(e.id).to_owned(),
            title: e.title.map(|t| self.str(t).to_owned()),
            scopes: self.scopes_of(i).map(str::to_owned).collect(),
            joined_at: e.joined_at,
        })
    }

    /// How many memberships there are (duplicates included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no membership at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The membership in `org_id` (the first one if the claim repeated the id). The lookup is
    /// O(1), but the first call makes the `Organization` values of [`as_slice`](Self::as_slice);
    /// the checks below never need them.
    pub fn get(&self, org_id: &str) -> Option<&Organization> {
        self.as_slice().get(self.position(org_id)?)
    }

    /// The compiled scopes of the membership in `org_id` (the SDK's `get_scopes_for`).
    pub fn scopes_for(&self, org_id: &str) -> Option<&ScopeSet> {
        let i = self.position(org_id)?;
        let compiled = self.compiled.get_or_init(|| {
            std::iter::repeat_with(OnceLock::new)
                .take(self.entries.len())
                .collect()
        });
        Some(
            compiled
                .get(i)?
                .get_or_init(|| Box::new(ScopeSet::new(self.scopes_of(i)))),
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
                    .entries
                    .iter()
                    .enumerate()
                    .filter(|(i, e)| self.position(self.str(e.id)) == Some(*i));
                ScopeSet::new(first.flat_map(|(i, _)| self.scopes_of(i)))
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
        self.position(org_id)
            .is_some_and(|i| self.scopes_of(i).any(|s| s == role))
    }
}

impl fmt::Debug for Memberships {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Scopes<'a>(&'a Memberships, usize);
        impl fmt::Debug for Scopes<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.scopes_of(self.1)).finish()
            }
        }
        struct One<'a>(&'a Memberships, usize, &'a Entry);
        impl fmt::Debug for One<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let (m, e) = (self.0, self.2);
                f.debug_struct("Organization")
                    .field("id", &m.str(e.id))
                    .field("title", &e.title.map(|t| m.str(t)))
                    .field("scopes", &Scopes(m, self.1))
                    .field("joined_at", &e.joined_at)
                    .finish()
            }
        }
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| One(self, i, e)),
            )
            .finish()
    }
}

/// Equal when they hold the same memberships in the same order (compiled state aside).
impl PartialEq for Memberships {
    fn eq(&self, other: &Self) -> bool {
        let same = |(i, a): (usize, &Entry), (j, b): (usize, &Entry)| {
            self.str(a.id) == other.str(b.id)
                && a.title.map(|t| self.str(t)) == b.title.map(|t| other.str(t))
                && a.joined_at == b.joined_at
                && self.scopes_of(i).eq(other.scopes_of(j))
        };
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .enumerate()
                .zip(other.entries.iter().enumerate())
                .all(|(a, b)| same(a, b))
    }
}

impl Eq for Memberships {}

impl From<Vec<Organization>> for Memberships {
    fn from(orgs: Vec<Organization>) -> Self {
        Self::new(orgs)
    }
}

/// [`Memberships`] under construction.
#[derive(Default)]
struct Builder {
    text: String,
    entries: Vec<Entry>,
    scopes: Vec<Span>,
}

/// Where an entry under construction started, to drop it.
#[derive(Clone, Copy)]
struct Mark {
    text: usize,
    scopes: usize,
}

impl Builder {
    fn mark(&self) -> Mark {
        Mark {
            text: self.text.len(),
            scopes: self.scopes.len(),
        }
    }

    fn rewind(&mut self, mark: Mark) {
        self.text.truncate(mark.text);
        self.scopes.truncate(mark.scopes);
    }

    /// Appends `s` to the text; `None` past u32 offsets.
    fn push_str(&mut self, s: &str) -> Option<Span> {
        push_str(&mut self.text, s)
    }

    fn push_entry(&mut self, mark: Mark, id: Span, title: Option<Span>, joined_at: u64) {
        match (u32::try_from(mark.scopes), u32::try_from(self.scopes.len())) {
            (Ok(first), Ok(end)) => self.entries.push(Entry {
                id,
                title,
                scopes: (first, end),
                joined_at,
            }),
            _ => self.rewind(mark),
        }
    }

    /// Builds the id table. Entries past u32 positions (impossible in a 1 MiB token) would
    /// simply not be indexed.
    fn finish(self) -> Memberships {
        let mut m = Memberships {
            text: self.text,
            entries: self.entries,
            scopes: self.scopes,
            ..Memberships::default()
        };
        let capacity = (m.entries.len().max(1) * 2).next_power_of_two();
        let mut slots = vec![0u32; capacity];
        let mask = capacity - 1;
        for (i, entry) in m.entries.iter().enumerate() {
            let Ok(position) = u32::try_from(i + 1) else {
                break;
            };
            let id = m.str(entry.id);
            #[allow(clippy::cast_possible_truncation)] // masking keeps the low bits on purpose
            let mut slot = (hash_id(id) as usize) & mask;
            loop {
                match slots.get(slot).copied() {
                    Some(0) => {
                        if let Some(s) = slots.get_mut(slot) {
                            *s = position;
                        }
                        break;
                    }
                    Some(taken) if m.id_at(taken) == Some(id.as_bytes()) => break,
                    Some(_) => slot = (slot + 1) & mask,
                    None => break,
                }
            }
        }
        m.slots = slots;
        m
    }
}

fn push_str(text: &mut String, s: &str) -> Option<Span> {
    let start = u32::try_from(text.len()).ok()?;
    let end = u32::try_from(text.len().checked_add(s.len())?).ok()?;
    text.push_str(s);
    Some(Span { start, end })
}

/// Reads an `organizations` claim value into [`Memberships`] with the lenient rules of
/// [`parse_organizations`], from a JSON document (strict: duplicate member names are refused at
/// any depth) or from a `Value`. Anything but an array is no membership.
pub(crate) struct Claim;

impl<'de> Lenient<'de> for Claim {
    type Value = Memberships;
    fn otherwise(self) -> Memberships {
        Memberships::default()
    }
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Memberships, A::Error> {
        let mut b = Builder::default();
        while seq
            .next_element_seed(Leniently(EntrySeed(&mut b)))?
            .is_some()
        {}
        Ok(b.finish())
    }
}

/// One item of the claim array: a membership when it is an object with a string `id`.
struct EntrySeed<'b>(&'b mut Builder);

impl<'de> Lenient<'de> for EntrySeed<'_> {
    type Value = ();
    fn otherwise(self) {}
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let mark = self.0.mark();
        let entry = ObjectOf(EntryReader {
            b: self.0,
            id: None,
            title: None,
            scopes: None,
            joined_at: None,
        })
        .visit_map(map)?;
        match entry.id.flatten() {
            Some(id) => {
                let joined_at = entry.joined_at.seconds("joined_at").ok().flatten();
                let title = entry.title.flatten();
                entry.b.push_entry(mark, id, title, joined_at.unwrap_or(0));
            }
            None => entry.b.rewind(mark),
        }
        Ok(())
    }
}

/// The members of one membership object. Outer `Option`s: seen (a second one is a duplicate);
/// inner: of the right type.
struct EntryReader<'b, 'de> {
    b: &'b mut Builder,
    id: Option<Option<Span>>,
    title: Option<Option<Span>>,
    scopes: Option<()>,
    joined_at: Option<Scalar<'de>>,
}

impl<'de> Object<'de> for EntryReader<'_, 'de> {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let text = &mut self.b.text;
        match key {
            "id" => once(map, &mut self.id, Leniently(StrSeed(text)), key)?,
            "title" => once(map, &mut self.title, Leniently(StrSeed(text)), key)?,
            "scopes" => once(map, &mut self.scopes, Leniently(ScopesSeed(self.b)), key)?,
            "joined_at" => once(map, &mut self.joined_at, ScalarSeed, key)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A string appended to the text (`Some(span)`); anything else is `None`.
struct StrSeed<'b>(&'b mut String);

impl<'de> Lenient<'de> for StrSeed<'_> {
    type Value = Option<Span>;
    fn otherwise(self) -> Option<Span> {
        None
    }
    fn string(self, v: &str) -> Option<Span> {
        push_str(self.0, v)
    }
}

/// A membership's `scopes`: its string items appended to the builder (other items skipped);
/// anything but an array adds nothing.
struct ScopesSeed<'b>(&'b mut Builder);

impl<'de> Lenient<'de> for ScopesSeed<'_> {
    type Value = ();
    fn otherwise(self) {}
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let b = self.0;
        while let Some(item) = seq.next_element_seed(Leniently(StrSeed(&mut b.text)))? {
            b.scopes.extend(item);
        }
        Ok(())
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
            // The same rules when the claim is read straight from the token's JSON.
            let doc = serde_json::to_vec(&value).unwrap();
            let mut de = serde_json::Deserializer::from_slice(&doc);
            let read = Leniently(Claim).deserialize(&mut de).unwrap();
            assert_eq!(read.as_slice(), expected, "{name} (from JSON)");
            assert_eq!(read, Memberships::new(expected), "{name} (equality)");
        }
    }

    #[test]
    fn checks_build_nothing_they_do_not_need() {
        let m = Memberships::from_claim(&json!([
            {"id": "org_a", "scopes": ["owner", "projects:read"]},
            {"id": "org_b", "title": "CFO", "scopes": ["billing:**"]},
            {"id": "org_c"},
        ]));
        assert!(m.compiled.get().is_none() && m.organizations.get().is_none());
        assert!(m.is_owner_of("org_a") && m.is_member_of("org_c"));
        assert!(
            m.compiled.get().is_none(),
            "roles and membership compile nothing"
        );
        assert!(m.has_access_in("org_b", "write", "billing.invoices"));
        let compiled = m.compiled.get().unwrap();
        let sets: Vec<bool> = compiled.iter().map(|c| c.get().is_some()).collect();
        assert_eq!(
            sets,
            [false, true, false],
            "only the org asked about is compiled"
        );
        assert!(
            m.organizations.get().is_none(),
            "no Organization value was made"
        );
        assert_eq!(m.get("org_b").and_then(|o| o.title.as_deref()), Some("CFO"));
        assert_eq!(m.len(), 3);
        assert_eq!(
            format!("{m:?}"),
            format!("{:?}", m.as_slice()),
            "Debug shows the memberships as Organizations"
        );
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
