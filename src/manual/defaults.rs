//! # Chapter 2: defaults, and the reason for each
//!
//! - **PKCE S256, `state`, `nonce` cannot be switched off.** They cost nothing and the
//!   attacks they stop are common. A caller may supply its own `state`/`nonce` values (the
//!   Python SDK allows it), never omit them.
//! - **Leeway 60 s, maximum 300 s** ([`DEFAULT_LEEWAY`](crate::config::DEFAULT_LEEWAY)). Enough for ordinary NTP drift; more would let an
//!   expired token live noticeably longer.
//! - **Refresh buffer 60 s** (the Python SDK's): a token about to expire is refreshed before it
//!   is sent, so an API never sees it expire in flight.
//! - **`expires_in` absent ⇒ 3600 s** ([`DEFAULT_EXPIRES_IN`](crate::token::DEFAULT_EXPIRES_IN)), as the Python SDK assumes; `expires_in` as a numeric
//!   string is accepted (several providers send one), negative or fractional values are not.
//! - **A 200 response carrying `error` is an error**: some providers do this.
//! - **Extra ID-token audiences are refused** unless configured as trusted: an ID token minted
//!   for several parties is a token another party can replay at us.
//! - **A refreshed ID token must keep `iss`, `sub` and `aud`** (`aud` compared as a set), and its
//!   `azp` and `nonce`, if present, must equal the original's, as must its `auth_time` when both
//!   have one (OIDC Core §12.2; some providers omit them, none may change them). It is compared
//!   with the original before the other rules, so the error names the claim that changed.
//! - **`invalid_grant` on refresh ends the session**: [`Error::is_session_over`](crate::Error::is_session_over). It is
//!   never retried: AuthPI rotates refresh tokens and a replay is itself `invalid_grant`.
//! - **Token requests are never retried automatically**: a code or refresh token is single use;
//!   a retry after a lost response would spend it twice.
//! - **Stored token sets are trusted.** [`Client::create_agent`](crate::Client::create_agent) runs on every request of a web app; it
//!   decodes the stored ID token (checking `iss` and `aud`) without verifying the signature
//!   again, because the token was verified when it entered the store. If your session store
//!   is not under your control, it is not a session store.
//! - **JWKS max age 1 h when the provider says nothing** ([`DEFAULT_MAX_AGE`](crate::provider::DEFAULT_MAX_AGE)), clamped to [5 min, 24 h] when it does.
//!   AuthPI keeps a key published for 45 days and tokens live at most 21 days, so an unknown
//!   `kid` means the cache is old, not that the token is new.
//! - **ES256 signatures are exactly 64 bytes (r‖s)** as JWS requires; a DER signature is refused
//!   before the verifier runs.
//! - **Ed25519 is strict** (RFC 8032 §5.1.7): small-order and non-canonical public keys are
//!   skipped when the JWKS is read, and ring refuses non-canonical signatures.
//! - **Media types compare case-insensitively**, with or without `application/`: `typ`
//!   `Application/AT+JWT` is an access token, never an ID token.
//! - **NumericDates may be non-integer** (RFC 7519 §2; the fraction is dropped); negative values
//!   are errors. A mistyped optional claim no check uses (`auth_time` without `max_age`) does not
//!   refuse a token; a mistyped claim a check uses does.
//! - **Several audiences need `azp`** (OIDC Core §3.1.3.7 step 4), and `azp` must be our client id.
//! - **Discovery**: the discovered `issuer` must be the configured one exactly; only the
//!   configuration may carry an extra trailing slash.
//! - **RSA keys below 2048 bits are ignored** when the JWKS is read.
//! - **A logout token is accepted for at most 5 minutes after its `iat`**
//!   ([`LOGOUT_TOKEN_MAX_AGE`](crate::flow::backchannel::LOGOUT_TOKEN_MAX_AGE), plus leeway), even
//!   when its `exp` is later or absent: logout tokens are delivered at once, and the bound lets
//!   a replay cache forget a `jti` after [`LogoutToken::accept_until`](crate::LogoutToken::accept_until).
//! - **UserInfo `sub` must equal the session's subject**, or the answer is
//!   [`Error::SubjectMismatch`](crate::Error::SubjectMismatch) (OIDC Core §5.3.2).
//! - **Access-token claims are strict** (RFC 9068 §2.2): `scope`, `sid`, `org_id` and `dat` of the
//!   wrong JSON type refuse the token ([`ClaimError::Missing`](crate::error::ClaimError::Missing)),
//!   as ID-token claims do; claims the SDK does not model are kept as sent
//!   ([`AccessTokenInfo::claim`](crate::AccessTokenInfo::claim),
//!   [`Agent::claim`](crate::Agent::claim)).
