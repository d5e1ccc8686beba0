//! The authenticated agent: who is calling, their organizations, and local authorization.

use crate::org::{Memberships, Organization};
use crate::scope::ScopeSet;
use crate::time::UnixTime;
use crate::token::TokenSet;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// Default buffer of [`Agent::is_expired`] in the Python SDK (30 s).
pub const DEFAULT_EXPIRY_BUFFER: u64 = 30;

/// What kind of principal a subject is, from its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PrincipalType {
    /// Anything else (normally `usr_…`). As in the official SDK this includes `c_…` clients.
    User,
    /// `agt_…`.
    Agent,
    /// `key_…`.
    ApiKey,
    /// `tok_…`.
    PersonalToken,
}

impl PrincipalType {
    /// The type of a subject identifier.
    #[must_use]
    pub fn of(subject: &str) -> Self {
        if subject.starts_with("agt_") {
            PrincipalType::Agent
        } else if subject.starts_with("key_") {
            PrincipalType::ApiKey
        } else if subject.starts_with("tok_") {
            PrincipalType::PersonalToken
        } else {
            PrincipalType::User
        }
    }

    /// The official SDK's name: `user`, `agent`, `api_key`, `personal_token`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::User => "user",
            PrincipalType::Agent => "agent",
            PrincipalType::ApiKey => "api_key",
            PrincipalType::PersonalToken => "personal_token",
        }
    }
}

/// An authenticated principal with its tokens and organization memberships.
///
/// Built by the SDK's operations (login, `create_agent`, client credentials, access-token
/// validation), never from unchecked input. Authorization is local and precompiled: every
/// check is a few hash lookups, independent of how many organizations and scopes there are.
#[derive(Clone, Debug)]
pub struct Agent {
    pub(crate) id: String,
    pub(crate) email: Option<String>,
    pub(crate) email_verified: Option<bool>,
    pub(crate) org_id: Option<String>,
    pub(crate) memberships: Memberships,
    /// The compiled `scope` of `tokens`, on first use.
    pub(crate) token_scopes: OnceLock<ScopeSet>,
    pub(crate) tokens: TokenSet,
    pub(crate) reverified: bool,
    /// The claims the SDK does not model, from the ID token, UserInfo or access token the
    /// identity came from.
    pub(crate) custom: Map<String, Value>,
}

impl Agent {
    pub(crate) fn new(
        id: String,
        email: Option<String>,
        email_verified: Option<bool>,
        org_id: Option<String>,
        memberships: Memberships,
        tokens: TokenSet,
    ) -> Agent {
        Agent {
            id,
            email,
            email_verified,
            org_id,
            memberships,
            token_scopes: OnceLock::new(),
            tokens,
            reverified: true,
            custom: Map::new(),
        }
    }

    /// The same agent, with these custom claims.
    pub(crate) fn with_custom(mut self, custom: Map<String, Value>) -> Agent {
        self.custom = custom;
        self
    }

    /// The claims of the ID token (or UserInfo answer, or access token) the identity came from
    /// that this crate does not model, as sent: every member except the registered ones it
    /// reads (`iss`, `sub`, `aud`, `exp`, `iat`, `nonce`, `email`, `org_id`, `organizations`,
    /// …). Empty for a client-credentials agent.
    #[must_use]
    pub fn custom_claims(&self) -> &Map<String, Value> {
        &self.custom
    }

    /// A custom claim (see [`custom_claims`](Self::custom_claims)) as a `T`: `Ok(None)` when
    /// absent, as openid-client's `claims()`.
    ///
    /// ```
    /// # fn f(agent: &authpi_idp::Agent) -> Result<(), serde_json::Error> {
    /// let tier: Option<String> = agent.claim("tenant_tier")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The claim is present but is not a `T`.
    pub fn claim<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, serde_json::Error> {
        self.custom.get(name).map(T::deserialize).transpose()
    }

    /// The same agent, with [`Agent::identity_reverified`] set to `reverified`.
    pub(crate) fn reverified(mut self, reverified: bool) -> Agent {
        self.reverified = reverified;
        self
    }

    /// Whether the identity was verified by this operation's tokens: `true` everywhere except
    /// after a refresh whose new ID token could not be checked for lack of keys (JWKS
    /// unreachable, or the new key not yet published). Then the refresh still succeeded (the
    /// rotated tokens were persisted, never dropped), the new ID token's claims were checked
    /// without its signature, and the identity (subject, e-mail, organizations) is the one of
    /// the previous, verified ID token. See the no-verdict rule on [`crate::flow::CreateAgent`].
    #[must_use]
    pub fn identity_reverified(&self) -> bool {
        self.reverified
    }

    /// The subject (`usr_…`, `agt_…`, …), or the client id for a client-credentials agent.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The principal type, from the subject's prefix.
    #[must_use]
    pub fn principal_type(&self) -> PrincipalType {
        PrincipalType::of(&self.id)
    }

    /// The e-mail address, if granted.
    #[must_use]
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// Whether the e-mail address is verified, if granted.
    #[must_use]
    pub fn email_verified(&self) -> Option<bool> {
        self.email_verified
    }

    /// The selected organization of an `org=` login.
    #[must_use]
    pub fn org_id(&self) -> Option<&str> {
        self.org_id.as_deref()
    }

    /// The organization memberships, in the provider's order. The agent keeps the claim in a
    /// compact form that the checks below read directly; these `Organization` values are made
    /// on the first call.
    #[must_use]
    pub fn organizations(&self) -> &[Organization] {
        self.memberships.as_slice()
    }

    /// The tokens of this session.
    #[must_use]
    pub fn tokens(&self) -> &TokenSet {
        &self.tokens
    }

    /// Gives the tokens back (to store them).
    #[must_use]
    pub fn into_tokens(self) -> TokenSet {
        self.tokens
    }

    /// When the access token expires (Unix seconds).
    #[must_use]
    pub fn expires_at(&self) -> u64 {
        self.tokens.expires_at
    }

    /// Seconds until the access token expires (negative once expired).
    #[must_use]
    pub fn expires_in(&self, now: UnixTime) -> i64 {
        self.tokens.expires_in(now)
    }

    /// Whether the access token expires within `buffer` seconds (the Python SDK's default is
    /// [`DEFAULT_EXPIRY_BUFFER`]).
    #[must_use]
    pub fn is_expired(&self, now: UnixTime, buffer: u64) -> bool {
        self.tokens.is_expired(now, buffer)
    }

    /// Whether any organization grants `action` on `resource`. A principal without any
    /// organization (a client-credentials agent) is judged by its token's `scope` instead.
    #[must_use]
    pub fn has_access(&self, action: &str, resource: &str) -> bool {
        if self.memberships.is_empty() {
            self.token_scopes().allows(action, resource)
        } else {
            self.memberships.has_access_any(action, resource)
        }
    }

    /// Whether organization `org_id` grants `action` on `resource`.
    #[must_use]
    pub fn has_access_in(&self, org_id: &str, action: &str, resource: &str) -> bool {
        self.memberships.has_access_in(org_id, action, resource)
    }

    /// The scopes granted in `org_id` (None when not a member).
    #[must_use]
    pub fn scopes_for(&self, org_id: &str) -> Option<&ScopeSet> {
        self.memberships.scopes_for(org_id)
    }

    /// The token-level scopes (the `scope` of the token response), compiled on the first call.
    #[must_use]
    pub fn token_scopes(&self) -> &ScopeSet {
        self.token_scopes.get_or_init(|| {
            self.tokens
                .scope
                .as_deref()
                .map(ScopeSet::from_space_separated)
                .unwrap_or_default()
        })
    }

    /// Whether the principal has the `owner` role in `org_id`.
    #[must_use]
    pub fn is_owner_of(&self, org_id: &str) -> bool {
        self.memberships.is_owner_of(org_id)
    }

    /// Whether the principal has the `admin` role in `org_id`.
    #[must_use]
    pub fn is_admin_of(&self, org_id: &str) -> bool {
        self.memberships.is_admin_of(org_id)
    }

    /// Whether the principal is a member of `org_id`, whatever its scopes.
    #[must_use]
    pub fn is_member_of(&self, org_id: &str) -> bool {
        self.memberships.is_member_of(org_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_type_from_prefix() {
        let table = [
            ("usr_1", PrincipalType::User, "user"),
            ("agt_1", PrincipalType::Agent, "agent"),
            ("key_1", PrincipalType::ApiKey, "api_key"),
            ("tok_1", PrincipalType::PersonalToken, "personal_token"),
            ("c_1", PrincipalType::User, "user"),
            ("", PrincipalType::User, "user"),
        ];
        for (sub, t, name) in table {
            assert_eq!(
                (PrincipalType::of(sub), PrincipalType::of(sub).as_str()),
                (t, name),
                "{sub}"
            );
        }
    }

    fn tokens(scope: Option<&str>) -> TokenSet {
        TokenSet {
            access_token: "at".into(),
            token_type: "Bearer".into(),
            expires_at: 1000,
            refresh_token: None,
            id_token: None,
            subject_hint: None,
            scope: scope.map(Into::into),
        }
    }

    #[test]
    fn has_access_falls_back_to_token_scopes_only_without_organizations() {
        let cc = Agent::new(
            "c_1".into(),
            None,
            None,
            None,
            Memberships::default(),
            tokens(Some("reports:read billing:**")),
        );
        assert!(cc.has_access("read", "reports"));
        assert!(cc.has_access("write", "billing.invoices"));
        assert!(!cc.has_access("write", "reports"));
        let org = Organization {
            id: "org_1".into(),
            title: None,
            scopes: vec!["users:read".into()],
            joined_at: 0,
        };
        let user = Agent::new(
            "usr_1".into(),
            None,
            None,
            None,
            Memberships::new(vec![org]),
            tokens(Some("reports:read")),
        );
        assert!(
            !user.has_access("read", "reports"),
            "token scopes must not apply when orgs exist"
        );
        assert!(user.has_access("read", "users"));
        assert!(user.has_access_in("org_1", "read", "users"));
        assert!(!user.has_access_in("org_2", "read", "users"));
        assert!(
            user.is_member_of("org_1") && !user.is_owner_of("org_1") && !user.is_admin_of("org_1")
        );
    }

    #[test]
    fn expiry_helpers() {
        let a = Agent::new(
            "usr_1".into(),
            None,
            None,
            None,
            Memberships::default(),
            tokens(None),
        );
        assert_eq!(a.expires_at(), 1000);
        assert_eq!(a.expires_in(UnixTime(900)), 100);
        assert!(!a.is_expired(UnixTime(900), DEFAULT_EXPIRY_BUFFER));
        assert!(a.is_expired(UnixTime(970), DEFAULT_EXPIRY_BUFFER));
    }
}
