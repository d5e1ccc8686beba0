//! The issuer: directory, keys, grants, and the admin API tests drive.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use ring::rand::SystemRandom;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::Error;
use crate::jwt::{Alg, TestKey, b64url, random_bytes};
use crate::model::{Client, Membership, Stats, User};

/// Token and code lifetimes, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttls {
    /// User and M2M access tokens (default 1800).
    pub access: u64,
    /// Refresh tokens (default 7 days).
    pub refresh: u64,
    /// ID tokens (default 3600).
    pub id: u64,
    /// Authorization codes (default 60).
    pub code: u64,
    /// Agent (`agt_…`) access tokens (default 300).
    pub agent: u64,
}

impl Default for Ttls {
    fn default() -> Self {
        Ttls {
            access: 1800,
            refresh: 7 * 24 * 3600,
            id: 3600,
            code: 60,
            agent: 300,
        }
    }
}

/// Configures an [`Issuer`]. Obtain one from [`Issuer::builder`] or [`Issuer::authpi_demo`].
#[derive(Clone, Debug)]
pub struct IssuerBuilder {
    pub(crate) url: String,
    users: Vec<User>,
    memberships: Vec<(String, Membership)>,
    clients: Vec<Client>,
    inactive_orgs: BTreeSet<String>,
    current_user: Option<String>,
    ttls: Ttls,
    authorization_response_iss: bool,
    interactive_login: bool,
    replay_revokes_grant: bool,
}

impl IssuerBuilder {
    /// Adds a user. The first user added is the current user unless [`Self::current_user`]
    /// says otherwise.
    pub fn user(mut self, user: User) -> Self {
        self.users.push(user);
        self
    }

    /// Adds (or replaces) `user_id`'s membership in `membership.org_id`.
    pub fn membership(mut self, user_id: &str, membership: Membership) -> Self {
        self.memberships.push((user_id.to_owned(), membership));
        self
    }

    /// Registers a client.
    pub fn client(mut self, client: Client) -> Self {
        self.clients.retain(|c| c.id != client.id);
        self.clients.push(client);
        self
    }

    /// Marks an organization inactive: its memberships are left out of `organizations`.
    pub fn inactive_org(mut self, org_id: &str) -> Self {
        self.inactive_orgs.insert(org_id.to_owned());
        self
    }

    /// The user `/authorize` auto-approves.
    pub fn current_user(mut self, user_id: &str) -> Self {
        self.current_user = Some(user_id.to_owned());
        self
    }

    /// All lifetimes at once.
    pub fn ttls(mut self, ttls: Ttls) -> Self {
        self.ttls = ttls;
        self
    }

    /// Access-token lifetime (seconds).
    pub fn access_token_ttl(mut self, secs: u64) -> Self {
        self.ttls.access = secs;
        self
    }

    /// Refresh-token lifetime (seconds).
    pub fn refresh_token_ttl(mut self, secs: u64) -> Self {
        self.ttls.refresh = secs;
        self
    }

    /// ID-token lifetime (seconds).
    pub fn id_token_ttl(mut self, secs: u64) -> Self {
        self.ttls.id = secs;
        self
    }

    /// RFC 9207: advertise `authorization_response_iss_parameter_supported` and add `iss` to
    /// authorization redirects (AuthPI does not; default false).
    pub fn authorization_response_iss(mut self, on: bool) -> Self {
        self.authorization_response_iss = on;
        self
    }

    /// Interactive login: `/authorize` answers with a page where a user is chosen (and
    /// submitted back to `/authorize` by POST) instead of auto-approving the current user
    /// (default false). For the dev issuer; tests normally auto-approve.
    pub fn interactive_login(mut self, on: bool) -> Self {
        self.interactive_login = on;
        self
    }

    /// Whether replaying a spent refresh token revokes its whole grant, the rotated tokens
    /// included (default true). AuthPI itself answers a replay with `invalid_grant` and keeps
    /// the grant (`spec/authpi.md`, "Refresh"); revoking it is what stricter providers do
    /// (oidc-provider, the interop suite's), so by default the SDK's tests prove that no
    /// replay happens. `false` is AuthPI's exact behaviour.
    pub fn replay_revokes_grant(mut self, on: bool) -> Self {
        self.replay_revokes_grant = on;
        self
    }

    /// Replaces the issuer URL (used by [`crate::Served`] once it knows its port).
    pub fn issuer_url(mut self, url: &str) -> Self {
        self.url = url.trim_end_matches('/').to_owned();
        self
    }

    /// The issuer URL configured so far.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Builds the issuer and generates its first two key generations.
    pub fn build(self) -> Result<Issuer, Error> {
        let parsed = url::Url::parse(&self.url).map_err(|_| Error::InvalidIssuerUrl)?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(Error::InvalidIssuerUrl);
        }
        let path = parsed.path().trim_end_matches('/').to_owned();
        let mut users = BTreeMap::new();
        let mut first = None;
        for u in self.users {
            first.get_or_insert_with(|| u.id.clone());
            users.insert(u.id.clone(), u);
        }
        let mut memberships: BTreeMap<String, Vec<Membership>> = BTreeMap::new();
        for (user, m) in self.memberships {
            let list = memberships.entry(user).or_default();
            list.retain(|x| x.org_id != m.org_id);
            list.push(m);
        }
        let mut issuer = Issuer {
            url: self.url,
            path,
            users,
            memberships,
            inactive_orgs: self.inactive_orgs,
            clients: self
                .clients
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect(),
            current_user: self.current_user.or(first),
            session: None,
            ttls: self.ttls,
            authorization_response_iss: self.authorization_response_iss,
            interactive_login: self.interactive_login,
            replay_revokes_grant: self.replay_revokes_grant,
            pending_logouts: Vec::new(),
            ended_sessions: BTreeSet::new(),
            keys: VecDeque::new(),
            rsa_next: 0,
            codes: HashMap::new(),
            families: HashMap::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            faults: Vec::new(),
            stalls: Vec::new(),
            stats: Stats::default(),
            rng: SystemRandom::new(),
        };
        issuer.add_generation()?;
        issuer.add_generation()?;
        Ok(issuer)
    }
}

/// One key per algorithm, created together.
pub(crate) struct Generation {
    pub(crate) es: TestKey,
    pub(crate) ed: TestKey,
    pub(crate) rsa: TestKey,
}

impl Generation {
    fn for_alg(&self, alg: Alg) -> &TestKey {
        match alg {
            Alg::Es256 => &self.es,
            Alg::EdDsa => &self.ed,
            Alg::Rs256 | Alg::Ps256 => &self.rsa,
        }
    }
}

/// The login session of the current user (one browser, so one session).
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) user: String,
    pub(crate) sid: String,
    pub(crate) login_time: u64,
}

/// What a grant (a code, then a refresh-token family) carries.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) user_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) org: Option<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) sid: String,
    pub(crate) auth_time: u64,
    pub(crate) nonce: String,
}

pub(crate) struct CodeRecord {
    pub(crate) grant: Grant,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: String,
    pub(crate) expires_at: u64,
    /// Set once redeemed: the family the code produced.
    pub(crate) redeemed: Option<String>,
}

pub(crate) struct Family {
    pub(crate) grant: Grant,
    pub(crate) revoked: bool,
}

pub(crate) struct RefreshRecord {
    pub(crate) family: String,
    pub(crate) used: bool,
    pub(crate) exp: u64,
}

pub(crate) struct AccessRecord {
    pub(crate) client_id: String,
    pub(crate) family: Option<String>,
    pub(crate) revoked: bool,
    pub(crate) exp: u64,
}

/// An AuthPI-compatible issuer as a sans-IO handler. See the crate docs.
pub struct Issuer {
    pub(crate) url: String,
    pub(crate) path: String,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) memberships: BTreeMap<String, Vec<Membership>>,
    pub(crate) inactive_orgs: BTreeSet<String>,
    pub(crate) clients: BTreeMap<String, Client>,
    pub(crate) current_user: Option<String>,
    pub(crate) session: Option<Session>,
    pub(crate) ttls: Ttls,
    pub(crate) authorization_response_iss: bool,
    pub(crate) interactive_login: bool,
    /// See [`IssuerBuilder::replay_revokes_grant`].
    pub(crate) replay_revokes_grant: bool,
    /// Back-channel logout deliveries produced by `/logout`, not yet taken.
    pub(crate) pending_logouts: Vec<crate::backchannel::LogoutDelivery>,
    /// Sessions already ended (each is ended, and announced, once).
    pub(crate) ended_sessions: BTreeSet<String>,
    /// Oldest first; the last one signs.
    pub(crate) keys: VecDeque<Generation>,
    rsa_next: usize,
    pub(crate) codes: HashMap<String, CodeRecord>,
    pub(crate) families: HashMap<String, Family>,
    pub(crate) refresh: HashMap<String, RefreshRecord>,
    pub(crate) access: HashMap<String, AccessRecord>,
    pub(crate) faults: Vec<(String, http::Response<Vec<u8>>)>,
    pub(crate) stalls: Vec<(String, Duration)>,
    pub(crate) stats: Stats,
    pub(crate) rng: SystemRandom,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("url", &self.url)
            .field("current_user", &self.current_user)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Starts configuring an issuer whose URL (and `iss`) is `issuer_url` (one trailing `/`
    /// is stripped). Endpoints live under its path: `{issuer_url}/token`, ….
    pub fn builder(issuer_url: &str) -> IssuerBuilder {
        IssuerBuilder {
            url: issuer_url.trim_end_matches('/').to_owned(),
            users: Vec::new(),
            memberships: Vec::new(),
            clients: Vec::new(),
            inactive_orgs: BTreeSet::new(),
            current_user: None,
            ttls: Ttls::default(),
            authorization_response_iss: false,
            interactive_login: false,
            replay_revokes_grant: true,
        }
    }

    /// The demo fixture described in the crate docs, as a builder (add to it freely).
    pub fn authpi_demo(issuer_url: &str) -> IssuerBuilder {
        Issuer::builder(issuer_url)
            .user(
                User::new("usr_alice")
                    .email("alice@example.com", true)
                    .name("Alice Example"),
            )
            .membership(
                "usr_alice",
                Membership::new("org_acme", &["owner", "projects:**", "users:read"])
                    .title("Founder"),
            )
            .membership(
                "usr_alice",
                Membership::new("org_globex", &["billing:read"]),
            )
            .client(
                Client::confidential(
                    "client_web",
                    "secret_web",
                    &[
                        "http://127.0.0.1/callback",
                        "https://app.example.com/callback",
                    ],
                )
                .post_logout_redirect_uri("https://app.example.com/logged-out")
                .post_logout_redirect_uri("http://127.0.0.1/logged-out"),
            )
            .client(
                Client::public(
                    "client_native",
                    &["http://127.0.0.1/callback", "com.example.app:/callback"],
                )
                .alg(Alg::EdDsa),
            )
            .client(Client::m2m("c_m2m", "secret_m2m", &["reports:read"]).alg(Alg::Rs256))
            .client(Client::agent(
                "agt_bot",
                "secret_bot",
                &["projects:read", "tasks:write"],
            ))
    }

    /// The issuer URL (also the `iss` of every token).
    pub fn issuer_url(&self) -> &str {
        &self.url
    }

    /// Request counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Resets the request counters to zero.
    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
    }

    /// The user `/authorize` auto-approves from now on. A different user means a new session.
    pub fn set_current_user(&mut self, user_id: &str) {
        self.current_user = Some(user_id.to_owned());
    }

    /// Nobody is logged in: `/authorize` answers `login_required`.
    pub fn clear_current_user(&mut self) {
        self.current_user = None;
        self.session = None;
    }

    /// Adds or replaces a user.
    pub fn add_user(&mut self, user: User) {
        self.users.insert(user.id.clone(), user);
    }

    /// Registers or replaces a client.
    pub fn add_client(&mut self, client: Client) {
        self.clients.insert(client.id.clone(), client);
    }

    /// Adds or replaces `user_id`'s membership in `membership.org_id`; shows up at the next
    /// login, refresh or userinfo call.
    pub fn set_membership(&mut self, user_id: &str, membership: Membership) {
        let list = self.memberships.entry(user_id.to_owned()).or_default();
        list.retain(|m| m.org_id != membership.org_id);
        list.push(membership);
    }

    /// Removes `user_id`'s membership in `org_id` (no-op when absent).
    pub fn remove_membership(&mut self, user_id: &str, org_id: &str) {
        if let Some(list) = self.memberships.get_mut(user_id) {
            list.retain(|m| m.org_id != org_id);
        }
    }

    /// Activates or deactivates an organization.
    pub fn set_org_active(&mut self, org_id: &str, active: bool) {
        if active {
            self.inactive_orgs.remove(org_id);
        } else {
            self.inactive_orgs.insert(org_id.to_owned());
        }
    }

    /// Blocks a user: `/authorize` ⇒ `user_blocked`, refresh ⇒ `user_blocked`, userinfo ⇒
    /// `invalid_token`.
    pub fn block_user(&mut self, user_id: &str) {
        if let Some(u) = self.users.get_mut(user_id) {
            u.blocked = true;
        }
    }

    /// Unblocks a user.
    pub fn unblock_user(&mut self, user_id: &str) {
        if let Some(u) = self.users.get_mut(user_id) {
            u.blocked = false;
        }
    }

    /// Adds a key generation (one key per algorithm), signs with it from now on, and drops
    /// the oldest generation so that two remain. Tokens signed by dropped keys stop
    /// verifying here too.
    pub fn rotate_keys(&mut self) -> Result<(), Error> {
        self.add_generation()?;
        while self.keys.len() > 2 {
            self.keys.pop_front();
        }
        Ok(())
    }

    /// The next request whose path ends with `path_suffix` (e.g. `"/token"`) gets `response`
    /// instead of a real answer, once. Several pushes are served in order.
    pub fn push_response(&mut self, path_suffix: &str, response: http::Response<Vec<u8>>) {
        self.faults.push((path_suffix.to_owned(), response));
    }

    /// In served mode, wait `delay` before answering any request whose path ends with
    /// `path_suffix` (until changed; `Duration::ZERO` removes it). Ignored by [`Self::handle`].
    pub fn set_stall(&mut self, path_suffix: &str, delay: Duration) {
        self.stalls.retain(|(s, _)| s != path_suffix);
        if !delay.is_zero() {
            self.stalls.push((path_suffix.to_owned(), delay));
        }
    }

    /// The stall configured for `path` (longest matching suffix wins), if any.
    pub fn stall_for(&self, path: &str) -> Option<Duration> {
        self.stalls
            .iter()
            .filter(|(s, _)| path.ends_with(s.as_str()))
            .max_by_key(|(s, _)| s.len())
            .map(|(_, d)| *d)
    }

    /// The current signing key for `alg` (handy to forge look-alike tokens in tests).
    pub fn signing_key(&self, alg: Alg) -> Option<&TestKey> {
        self.keys.back().map(|g| g.for_alg(alg))
    }

    /// The public JWKS document (`{"keys": [...]}`), newest generation first.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .rev()
            .flat_map(|g| [g.es.jwk(), g.ed.jwk(), g.rsa.jwk()])
            .collect();
        json!({ "keys": keys })
    }

    /// Signs `claims` as this issuer would, with the current key for `alg`.
    pub fn sign(&self, alg: Alg, typ: Option<&str>, claims: &Value) -> Result<String, Error> {
        self.signing_key(alg)
            .ok_or(Error::Crypto)?
            .sign_claims(typ, claims)
    }

    /// Marks the code grant identified by `code` as expired by moving its deadline to 0
    /// (test shortcut; codes also expire 60 s after issue with the virtual clock).
    pub fn expire_code(&mut self, code: &str) {
        if let Some(c) = self.codes.get_mut(code) {
            c.expires_at = 0;
        }
    }

    fn add_generation(&mut self) -> Result<(), Error> {
        let rsa_index = self.rsa_next;
        self.rsa_next = self.rsa_next.wrapping_add(1);
        let generation = Generation {
            es: TestKey::generate(Alg::Es256, &self.kid()?)?,
            ed: TestKey::generate(Alg::EdDsa, &self.kid()?)?,
            rsa: TestKey::from_rsa_pool(Alg::Rs256, rsa_index, &self.kid()?)?,
        };
        self.keys.push_back(generation);
        Ok(())
    }

    fn kid(&self) -> Result<String, Error> {
        let mut b: [u8; 16] = random_bytes(&self.rng)?;
        if let Some(x) = b.get_mut(6) {
            *x = (*x & 0x0f) | 0x40;
        }
        if let Some(x) = b.get_mut(8) {
            *x = (*x & 0x3f) | 0x80;
        }
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Ok(format!(
            "{}-{}-{}-{}-{}",
            hex.get(0..8).unwrap_or_default(),
            hex.get(8..12).unwrap_or_default(),
            hex.get(12..16).unwrap_or_default(),
            hex.get(16..20).unwrap_or_default(),
            hex.get(20..32).unwrap_or_default()
        ))
    }

    /// A random base64url string of `N` random bytes.
    pub(crate) fn random_token<const N: usize>(&self) -> Result<String, Error> {
        Ok(b64url(&random_bytes::<N>(&self.rng)?))
    }

    /// An 18-character `jti`.
    pub(crate) fn jti(&self) -> Result<String, Error> {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let raw: [u8; 18] = random_bytes(&self.rng)?;
        Ok(raw
            .iter()
            .map(|b| char::from(ALPHABET.get(usize::from(b & 63)).copied().unwrap_or(b'A')))
            .collect())
    }

    /// The verified payload of a token signed by any published key, with its header.
    pub(crate) fn verify_own(&self, token: &str) -> Option<(Value, Value)> {
        let header = crate::jwt::decode_header(token)?;
        let kid = header.get("kid")?.as_str()?;
        let key = self
            .keys
            .iter()
            .flat_map(|g| [&g.es, &g.ed, &g.rsa])
            .find(|k| k.kid() == kid)?;
        let payload = key.verify(token)?;
        let claims: Value = serde_json::from_slice(&payload).ok()?;
        if claims.get("iss")?.as_str()? != self.url {
            return None;
        }
        Some((header, claims))
    }

    /// The `organizations` claim for `user_id`, restricted to `org` when given.
    pub(crate) fn organizations(&self, user_id: &str, org: Option<&str>) -> Vec<Value> {
        self.memberships
            .get(user_id)
            .map(|list| {
                list.iter()
                    .filter(|m| m.active && !self.inactive_orgs.contains(&m.org_id))
                    .filter(|m| org.is_none_or(|o| o == m.org_id))
                    .map(|m| {
                        json!({"id": m.org_id, "title": m.title, "scopes": m.scopes, "joined_at": m.joined_at})
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Is `user_id` an active member of active `org_id`?
    pub(crate) fn is_member(&self, user_id: &str, org_id: &str) -> bool {
        !self.organizations(user_id, Some(org_id)).is_empty()
    }

    /// Revokes a refresh-token family and every access token issued from it.
    pub(crate) fn revoke_family(&mut self, family: &str) {
        if let Some(f) = self.families.get_mut(family) {
            f.revoked = true;
        }
        for rec in self.access.values_mut() {
            if rec.family.as_deref() == Some(family) {
                rec.revoked = true;
            }
        }
    }
}

/// `at_hash`: left half of the hash of the access token, SHA-256 for ES256/RS256/PS256 and
/// SHA-512 for EdDSA (Ed25519), base64url.
pub fn at_hash(alg: Alg, access_token: &str) -> String {
    match alg {
        Alg::EdDsa => {
            let h = Sha512::digest(access_token.as_bytes());
            b64url(h.get(..32).unwrap_or_default())
        }
        _ => {
            let h = Sha256::digest(access_token.as_bytes());
            b64url(h.get(..16).unwrap_or_default())
        }
    }
}

/// The S256 PKCE challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    b64url(&Sha256::digest(verifier.as_bytes()))
}
