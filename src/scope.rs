//! AuthPI's scope grammar: `resource:action` scopes, dotted resources, wildcards and roles.
//!
//! # Grammar
//! A scope is parsed at its **last** `:` into a resource and an action ([`parse_scope`]); if
//! either side is empty the scope is invalid and grants nothing. Comparison is exact and
//! case-sensitive. A scope `R:A` grants the request (`action`, `resource`) when:
//!
//! | scope | grants |
//! |---|---|
//! | `R:act` | `act` on `R` exactly |
//! | `R:*` | every action on `R` exactly (not on `R.x`) |
//! | `R:**` | every action on `R` and on every `R.…` below it |
//! | `*:act` | `act` on any top-level resource (one without `.`) |
//! | `*:*` | every action on any top-level resource |
//! | `*:**` | everything |
//!
//! `owner`, `admin` and `member` are **roles**: scopes without a colon, checked by exact presence
//! ([`ScopeSet::contains`]) and never implied by any wildcard.
//!
//! # Edge cases (decided here)
//! - A requested `action` or `resource` that is empty never matches anything, not even `*:**`.
//! - The requested action and resource are taken literally: a request for action `*` is granted
//!   only by the wildcard actions `*` and `**` (not by `read`); a request for resource `*` is a
//!   request about a top-level resource named `*`.
//! - Only a scope resource that is exactly `*` is a wildcard. `**:read`, `projects.*:read` and
//!   `projects.**:read` name literal resources (`**`, `projects.*`, `projects.**`).
//! - An action is a wildcard only when it is exactly `*` or `**`; `read*` is literal.
//! - Colons before the last one belong to the resource: `a:b:c` is resource `a:b`, action `c`.
//! - "Below `R`" means the requested resource starts with `R.`; dotted paths are not normalised,
//!   so `projects:**` also grants on a (malformed) request for `projects.` or `projects..x`.
//! - A requested resource longer than [`MAX_RESOURCE_LEN`] bytes is denied, even by `*:**`:
//!   resource names often come from requests, and no real one is that long.
//!
//! # Performance
//! [`has_access`] is the straightforward scan (linear in the number of scopes, parses each time).
//! [`ScopeSet`] precompiles a list once; [`ScopeSet::allows`] then costs time linear in the
//! length of the requested resource, whatever the number of scopes, and never allocates: one
//! hash of the whole resource (exact grants), then a walk down a trie of the `R:**` resources,
//! one hash per dotted segment (each byte of the request is hashed at most twice), stopping
//! where the trie ends. The resource is bounded by [`MAX_RESOURCE_LEN`]. Its hasher (a
//! folded-multiply hash, written here) is not resistant to hash flooding; this is fine because
//! the table keys (scopes, organization ids) come from verified tokens.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// The longest requested resource (in bytes) that can be granted; a longer one is denied by
/// [`ScopeSet::allows`], [`has_access`] and [`ScopeRef::grants`] alike.
pub const MAX_RESOURCE_LEN: usize = 1024;

/// A scope split into its resource and action (see [`parse_scope`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeRef<'a> {
    /// Everything before the last `:`, e.g. `projects.tasks`; `*` is the top-level wildcard.
    pub resource: &'a str,
    /// Everything after the last `:`, e.g. `read`; `*` and `**` are wildcards.
    pub action: &'a str,
}

impl ScopeRef<'_> {
    /// Whether this one scope grants `action` on `resource`, under the rules of this module.
    pub fn grants(&self, action: &str, resource: &str) -> bool {
        if action.is_empty() || resource.is_empty() || resource.len() > MAX_RESOURCE_LEN {
            return false;
        }
        let any_action = self.action == "*" || self.action == "**";
        let action_ok = any_action || self.action == action;
        if self.resource == "*" {
            if self.action == "**" {
                return true;
            }
            return action_ok && !has_dot(resource);
        }
        if self.resource == resource {
            return action_ok;
        }
        self.action == "**"
            && resource
                .strip_prefix(self.resource)
                .is_some_and(|rest| rest.starts_with('.'))
    }
}

/// Splits `scope` at its last `:`; `None` when there is no colon or either side is empty.
///
/// ```
/// use authpi_idp::scope::{parse_scope, ScopeRef};
/// assert_eq!(parse_scope("a:b:c"), Some(ScopeRef { resource: "a:b", action: "c" }));
/// assert_eq!(parse_scope("owner"), None);
/// assert_eq!(parse_scope("projects:"), None);
/// ```
pub fn parse_scope(scope: &str) -> Option<ScopeRef<'_>> {
    let (resource, action) = scope.rsplit_once(':')?;
    if resource.is_empty() || action.is_empty() {
        return None;
    }
    Some(ScopeRef { resource, action })
}

/// Whether any of `scopes` grants `action` on `resource` (invalid scopes and roles are ignored).
///
/// Linear in `scopes`; use a [`ScopeSet`] when the same list is checked more than once.
pub fn has_access<S: AsRef<str>>(scopes: &[S], action: &str, resource: &str) -> bool {
    scopes
        .iter()
        .filter_map(|s| parse_scope(s.as_ref()))
        .any(|s| s.grants(action, resource))
}

/// A small, fast, non-cryptographic hasher for the lookup tables of [`ScopeSet`] and
/// [`crate::org::Memberships`]: eight bytes per step, each mixed with a folded 64×64→128-bit
/// multiply (the construction of foldhash/wyhash, written here from that description).
///
/// Fixed seed, so not resistant to hash flooding: use it only on keys from verified tokens.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0x243f_6a88_85a3_08d3; // digits of pi
const MUL: u64 = 0x9e37_79b9_7f4a_7c15; // 2^64 / golden ratio
const MUL2: u64 = 0xa076_1d64_78bd_642f;

/// Multiplies to 128 bits and folds the halves together: every input bit reaches every output
/// bit, high and low (hashbrown uses both ends of the hash).
fn fold_mul(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    #[allow(clippy::cast_possible_truncation)]
    let (lo, hi) = (full as u64, (full >> 64) as u64);
    lo ^ hi
}

impl Default for FastHasher {
    fn default() -> Self {
        FastHasher(SEED)
    }
}

#[cfg(test)]
thread_local! {
    /// Bytes hashed by [`FastHasher::write`] on this thread (tests bound the work of lookups).
    static HASHED_BYTES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        #[cfg(test)]
        HASHED_BYTES.with(|n| n.set(n.get() + bytes.len()));
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = fold_mul(h ^ u64::from_le_bytes(word), MUL);
        }
        let rest = chunks.remainder();
        // The length tag keeps `"a"` and `"a\0"` apart; it sits above the at most 7 tail bytes.
        let mut tail = (rest.len() as u64) << 56;
        for (i, &b) in rest.iter().enumerate() {
            tail |= u64::from(b) << (8 * i);
        }
        self.0 = fold_mul(h ^ tail, MUL2);
    }

    fn write_u8(&mut self, i: u8) {
        self.0 = fold_mul(self.0 ^ u64::from(i), MUL2);
    }

    fn write_usize(&mut self, i: usize) {
        self.0 = fold_mul(self.0 ^ i as u64, MUL2);
    }

    fn finish(&self) -> u64 {
        fold_mul(self.0, MUL)
    }
}

/// [`std::hash::BuildHasher`] of [`FastHasher`].
pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;
pub(crate) type FastMap<K, V> = HashMap<K, V, FastBuild>;
pub(crate) type FastSet<K> = HashSet<K, FastBuild>;

/// Whether `resource` has a `.` (a byte search: `str::contains(char)` goes through the generic
/// pattern machinery, a third of a denied check's cost on short resources).
fn has_dot(resource: &str) -> bool {
    resource.as_bytes().contains(&b'.')
}

/// `resource` split at its first `.`, as `str::split_once('.')` but with a byte search.
fn split_dot(resource: &str) -> Option<(&str, &str)> {
    let at = resource.bytes().position(|b| b == b'.')?;
    Some((resource.get(..at)?, resource.get(at + 1..)?))
}

/// What the scopes say about one exact resource.
#[derive(Clone, Debug, Default)]
struct ResourceGrants {
    /// `R:*` or `R:**` is present.
    any_action: bool,
    /// Literal actions from `R:act`.
    actions: FastSet<Box<str>>,
}

/// The resources `R` of the `R:**` scopes as a trie of dotted segments: `projects.tasks:**` is
/// the path `projects` → `tasks` with `deep` set at its end.
#[derive(Clone, Debug, Default)]
struct DeepTrie {
    /// A scope `R:**` ends here (everything strictly below this path is granted).
    deep: bool,
    children: FastMap<Box<str>, DeepTrie>,
}

impl DeepTrie {
    fn insert(&mut self, resource: &str) {
        let mut node = self;
        for segment in resource.split('.') {
            node = node.children.entry(segment.into()).or_default();
        }
        node.deep = true;
    }

    /// Whether some proper dotted ancestor of `resource` (a prefix followed by `.`) is a `R:**`
    /// resource. One lookup per segment, stopping where the trie ends: linear in `resource`.
    fn covers(&self, resource: &str) -> bool {
        let mut node = self;
        let mut rest = resource;
        // The last segment is never looked up: an ancestor is always followed by a `.`.
        while let Some((segment, tail)) = split_dot(rest) {
            match node.children.get(segment) {
                Some(child) if child.deep => return true,
                Some(child) => node = child,
                None => return false,
            }
            rest = tail;
        }
        false
    }
}

/// A precompiled list of scopes: [`ScopeSet::allows`] answers in time independent of the
/// number of scopes (see the module docs for the grammar and the cost).
///
/// Keeps the original strings in their original order ([`ScopeSet::as_slice`]).
#[derive(Clone, Default)]
pub struct ScopeSet {
    /// The scopes as given, in order, duplicates and invalid ones included.
    raw: Vec<String>,
    /// Every string of `raw`, for exact presence (roles).
    present: FastSet<Box<str>>,
    /// `R:act`, `R:*`, `R:**` keyed by `R` (never `*`).
    exact: FastMap<Box<str>, ResourceGrants>,
    /// Resources `R` with `R:**` (grant everything strictly below `R`).
    deep: DeepTrie,
    /// Actions `act` with `*:act` (literal actions only).
    top_actions: FastSet<Box<str>>,
    /// `*:*` is present.
    top_any: bool,
    /// `*:**` is present.
    all: bool,
}

impl ScopeSet {
    /// Compiles `scopes`; invalid scopes are kept (for [`as_slice`](Self::as_slice) and
    /// [`contains`](Self::contains)) but grant nothing.
    pub fn new<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = ScopeSet::default();
        for scope in scopes {
            set.push(scope.into());
        }
        set
    }

    /// Compiles an OAuth `scope` string: tokens separated by whitespace, empty tokens skipped.
    pub fn from_space_separated(s: &str) -> Self {
        Self::new(s.split_whitespace())
    }

    fn push(&mut self, scope: String) {
        if let Some(ScopeRef { resource, action }) = parse_scope(&scope) {
            let any_action = action == "*" || action == "**";
            if resource == "*" {
                match action {
                    "**" => self.all = true,
                    "*" => self.top_any = true,
                    _ => {
                        self.top_actions.insert(action.into());
                    }
                }
            } else {
                if action == "**" {
                    self.deep.insert(resource);
                }
                let entry = self.exact.entry(resource.into()).or_default();
                if any_action {
                    entry.any_action = true;
                } else {
                    entry.actions.insert(action.into());
                }
            }
        }
        self.present.insert(scope.as_str().into());
        self.raw.push(scope);
    }

    /// Whether the set grants `action` on `resource`. Never allocates; linear in the length
    /// of `resource`, which is denied beyond [`MAX_RESOURCE_LEN`] bytes.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        if action.is_empty() || resource.is_empty() || resource.len() > MAX_RESOURCE_LEN {
            return false;
        }
        if self.all {
            return true;
        }
        if let Some(grants) = self.exact.get(resource) {
            if grants.any_action || (!grants.actions.is_empty() && grants.actions.contains(action))
            {
                return true;
            }
        }
        if !self.deep.children.is_empty() && self.deep.covers(resource) {
            return true;
        }
        self.top_any_or(action, resource)
    }

    /// The `*:*` / `*:act` rule: top-level resources only.
    fn top_any_or(&self, action: &str, resource: &str) -> bool {
        if self.top_any {
            return !has_dot(resource);
        }
        !self.top_actions.is_empty() && self.top_actions.contains(action) && !has_dot(resource)
    }

    /// Whether `scope` is present exactly as given (how roles such as `owner` are checked).
    pub fn contains(&self, scope: &str) -> bool {
        self.present.contains(scope)
    }

    /// The scopes as given, in their original order.
    pub fn as_slice(&self) -> &[String] {
        &self.raw
    }

    /// Whether the set holds no scope at all (not even an invalid one).
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ScopeSet").field(&self.raw).finish()
    }
}

impl<S: Into<String>> FromIterator<S> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self::new(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WORKED: [&str; 2] = ["projects:**", "users:read"];

    /// (scopes, action, resource, expected)
    const CASES: &[(&[&str], &str, &str, bool)] = &[
        // The worked table of the spec.
        (&WORKED, "read", "projects", true),
        (&WORKED, "write", "projects", true),
        (&WORKED, "delete", "projects.tasks", true),
        (&WORKED, "read", "projects.tasks.comments", true),
        (&WORKED, "read", "users", true),
        (&WORKED, "write", "users", false),
        (&WORKED, "read", "billing", false),
        // "More" cases.
        (&["projects:*"], "read", "projects", true),
        (&["projects:*"], "write", "projects", true),
        (&["projects:*"], "delete", "projects", true),
        (&["projects:*"], "read", "projects.tasks", false),
        (&["*:read"], "read", "users", true),
        (&["*:read"], "read", "users.verifiers", false),
        (&["*:read"], "write", "users", false),
        (&["*:*"], "write", "users", true),
        (&["*:*"], "write", "users.verifiers", false),
        (&["*:**"], "write", "users.verifiers.x", true),
        (&["*:**"], "anything", "billing", true),
        // `**` covers below, but only at a dot boundary.
        (&["projects:**"], "read", "projectsx", false),
        (&["projects:**"], "read", "project", false),
        (&["projects.tasks:**"], "read", "projects", false),
        (&["projects.tasks:**"], "read", "projects.tasks.x", true),
        // A literal action does not cover descendants.
        (&["projects:read"], "read", "projects.tasks", false),
        // Case-sensitive.
        (&["Projects:read"], "read", "projects", false),
        (&["projects:Read"], "read", "projects", false),
        // Roles and wildcards never grant each other.
        (&["owner"], "read", "owner", false),
        (&["owner"], "owner", "projects", false),
        // Invalid scopes grant nothing.
        (&[":read"], "read", "projects", false),
        (&[":read"], "read", "", false),
        (&["projects:"], "read", "projects", false),
        (&[""], "read", "projects", false),
        (&["nocolon"], "read", "nocolon", false),
        (&[":"], "read", "projects", false),
        // Last-colon parsing.
        (&["a:b:c"], "c", "a:b", true),
        (&["a:b:c"], "b:c", "a", false),
        // Literal resource names, not wildcards.
        (&["projects.**:read"], "read", "projects.tasks", false),
        (&["projects.**:read"], "read", "projects.**", true),
        (&["**:read"], "read", "users", false),
        (&["**:read"], "read", "**", true),
        (&["read*:x"], "x", "read", false),
        // Empty requests never match.
        (&["*:**"], "", "projects", false),
        (&["*:**"], "read", "", false),
        (&["projects:*"], "", "projects", false),
        // Literal request wildcards.
        (&["projects:read"], "*", "projects", false),
        (&["projects:*"], "*", "projects", true),
        (&["*:read"], "read", "*", true),
        // Several scopes combine.
        (&["a:read", "b:write", "*:list"], "list", "c", true),
        (&["a:read", "b:write", "*:list"], "write", "a", false),
        (&[], "read", "projects", false),
    ];

    #[test]
    fn grammar_table() {
        for &(scopes, action, resource, expected) in CASES {
            let set = ScopeSet::new(scopes.iter().copied());
            assert_eq!(
                set.allows(action, resource),
                expected,
                "ScopeSet {scopes:?} {action} {resource}"
            );
            assert_eq!(
                has_access(scopes, action, resource),
                expected,
                "has_access {scopes:?} {action} {resource}"
            );
        }
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("projects:read", Some(("projects", "read"))),
            ("projects.tasks:**", Some(("projects.tasks", "**"))),
            ("a:b:c", Some(("a:b", "c"))),
            ("*:*", Some(("*", "*"))),
            (":read", None),
            ("projects:", None),
            ("", None),
            (":", None),
            ("nocolon", None),
            ("owner", None),
            ("a:b:", None),
            ("::c", Some((":", "c"))),
        ];
        for &(input, expected) in cases {
            let got = parse_scope(input).map(|s| (s.resource, s.action));
            assert_eq!(got, expected, "{input:?}");
        }
    }

    #[test]
    fn overlong_resources_are_denied_even_by_everything() {
        let longest = "a".repeat(MAX_RESOURCE_LEN);
        let over = "a".repeat(MAX_RESOURCE_LEN + 1);
        let deep_over = format!("a.{}", "b".repeat(MAX_RESOURCE_LEN));
        for scopes in [&["*:**"][..], &["a:**", "*:*"], &["*:read"]] {
            let set = ScopeSet::new(scopes.iter().copied());
            assert!(set.allows("read", &longest), "{scopes:?}");
            assert!(has_access(scopes, "read", &longest), "{scopes:?}");
            assert!(!set.allows("read", &over), "{scopes:?}");
            assert!(!has_access(scopes, "read", &over), "{scopes:?}");
        }
        assert!(ScopeSet::new(["a:**"]).allows("read", "a.b"));
        assert!(!ScopeSet::new(["a:**"]).allows("read", &deep_over));
        assert!(!has_access(&["a:**"], "read", &deep_over));
    }

    /// Bytes hashed by one `allows` call on this thread.
    fn hashed_by(set: &ScopeSet, action: &str, resource: &str) -> (bool, usize) {
        let before = HASHED_BYTES.with(std::cell::Cell::get);
        let granted = set.allows(action, resource);
        (granted, HASHED_BYTES.with(std::cell::Cell::get) - before)
    }

    /// The cost bound of the module docs: each byte of the requested resource is hashed at most
    /// twice (whole resource once, each segment once), whatever the scopes; hashing every dotted
    /// prefix (quadratic: ~130 000 bytes here) fails this.
    #[test]
    fn allows_hashes_each_requested_byte_at_most_twice() {
        let resource = format!("{}a", "a.".repeat(MAX_RESOURCE_LEN / 2 - 1));
        assert_eq!(resource.len(), MAX_RESOURCE_LEN - 1);
        let deep_miss = format!("{}b:**", "a.".repeat(40));
        let deep_hit = format!("{}:**", "a.".repeat(300).trim_end_matches('.'));
        let cases: [(&[&str], bool); 6] = [
            (&["x:**"], false),
            (&["a:read"], false),
            (&[deep_miss.as_str(), "a.a.a:read"], false),
            (&[deep_hit.as_str()], true),
            (&["x:**", "*:read", "a.a:write"], false),
            (&["a.a.a.a:**"], true),
        ];
        for (scopes, expected) in cases {
            let set = ScopeSet::new(scopes.iter().copied());
            let (granted, hashed) = hashed_by(&set, "read", &resource);
            assert_eq!(granted, expected, "{scopes:?}");
            assert_eq!(granted, has_access(scopes, "read", &resource), "{scopes:?}");
            assert!(
                hashed <= 2 * resource.len() + 64,
                "{scopes:?}: {hashed} bytes hashed for a {}-byte resource",
                resource.len()
            );
        }
        // Refused before any hashing.
        let set = ScopeSet::new(["x:**"]);
        let huge = "a.".repeat(32 * 1024);
        assert_eq!(hashed_by(&set, "read", &huge), (false, 0));
    }

    #[test]
    fn roles_are_exact_presence() {
        let set = ScopeSet::new(["*:**", "admin"]);
        assert!(set.contains("admin"));
        assert!(!set.contains("owner"));
        assert!(!set.contains("member"));
        assert!(!set.contains("Admin"));
        assert!(set.contains("*:**"));
        // Presence, not grammar: an invalid scope is still present as written.
        let set = ScopeSet::new(["projects:"]);
        assert!(set.contains("projects:"));
        assert!(!set.allows("read", "projects"));
    }

    #[test]
    fn keeps_original_order_and_duplicates() {
        let set = ScopeSet::from_space_separated("  b:read a:write\tb:read owner ");
        assert_eq!(set.as_slice(), ["b:read", "a:write", "b:read", "owner"]);
        assert!(!set.is_empty());
        assert!(set.allows("write", "a"));
        assert!(ScopeSet::from_space_separated(" \t ").is_empty());
        assert!(ScopeSet::default().is_empty());
        assert_eq!(
            format!("{set:?}"),
            r#"ScopeSet(["b:read", "a:write", "b:read", "owner"])"#
        );
    }

    #[test]
    fn is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<ScopeSet>();
        let a = ScopeSet::new(["x:y"]);
        let b = a.clone();
        assert!(b.allows("y", "x"));
    }

    #[test]
    fn hasher_spreads_similar_keys() {
        use std::hash::BuildHasher;
        let build = FastBuild::default();
        let mut seen = FastSet::default();
        let mut low_buckets = [0u32; 1024];
        let mut high_buckets = [0u32; 128];
        let n = 50_000u64;
        for i in 0..n {
            // Keys differing only in a few bytes, of lengths around the 8-byte boundaries.
            let key = format!("org_{i:0width$}", width = (i % 13) as usize);
            let h = build.hash_one(key.as_str());
            assert!(seen.insert(h), "hash collision on {key}");
            low_buckets[(h & 1023) as usize] += 1;
            high_buckets[(h >> 57) as usize] += 1;
        }
        // Expected 48.8 per low bucket and 390 per 7-bit tag; allow wide margins.
        assert!(
            low_buckets.iter().all(|&c| (15..=100).contains(&c)),
            "{low_buckets:?}"
        );
        assert!(
            high_buckets.iter().all(|&c| (250..=550).contains(&c)),
            "{high_buckets:?}"
        );
        assert_ne!(build.hash_one("a"), build.hash_one("a\0"));
        assert_ne!(build.hash_one(""), build.hash_one("\0"));
    }

    /// Reference model, written independently of the implementation: compares dotted segment
    /// lists instead of string prefixes.
    fn model(scopes: &[String], action: &str, resource: &str) -> bool {
        if action.is_empty() || resource.is_empty() {
            return false;
        }
        let req: Vec<&str> = resource.split('.').collect();
        scopes.iter().any(|scope| {
            let Some(pos) = scope.rfind(':') else {
                return false;
            };
            let (res, act) = (&scope[..pos], &scope[pos + 1..]);
            if res.is_empty() || act.is_empty() {
                return false;
            }
            let wild_act = matches!(act, "*" | "**");
            let act_ok = wild_act || act == action;
            if res == "*" {
                return act == "**" || (act_ok && req.len() == 1);
            }
            let have: Vec<&str> = res.split('.').collect();
            if have == req {
                act_ok
            } else {
                act == "**" && req.len() > have.len() && req[..have.len()] == have[..]
            }
        })
    }

    fn piece() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "ab", "*", "**", "", ":"]).prop_map(String::from)
    }

    /// Dotted paths over a tiny alphabet (including empty segments) so collisions happen.
    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(piece(), 1..4).prop_map(|v| v.join("."))
    }

    fn scope() -> impl Strategy<Value = String> {
        prop_oneof![
            (path(), piece()).prop_map(|(r, a)| format!("{r}:{a}")),
            Just("owner".to_string()),
            path(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn matches_reference_model(
            scopes in prop::collection::vec(scope(), 0..6),
            action in piece(),
            resource in path(),
        ) {
            let expected = model(&scopes, &action, &resource);
            let set = ScopeSet::new(scopes.iter().cloned());
            prop_assert_eq!(set.allows(&action, &resource), expected);
            prop_assert_eq!(has_access(&scopes, &action, &resource), expected);
            for s in &scopes {
                prop_assert!(set.contains(s));
            }
        }
    }
}
