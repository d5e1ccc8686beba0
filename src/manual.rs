//! # The manual: threat model, defaults, and why
//!
//! This module has no code. It explains what the SDK defends against and why each default is
//! what it is, so that a reader can judge a change before making it.
//!
//! ## Threats and the check that answers each
//!
//! | threat | defence | where |
//! |---|---|---|
//! | **CSRF / login fixation**: an attacker makes the victim's browser complete the attacker's login | `state` from 32 CSPRNG bytes, compared first and in constant time | [`crate::Client::exchange_callback`] |
//! | **Code injection**: a stolen code replayed into another session | PKCE S256 always (the verifier never leaves the server); `nonce` bound into the ID token | [`crate::AuthorizationUrl`] |
//! | **Mix-up**: a response from one provider fed to the client of another | RFC 9207 `iss` compared when present, required when advertised; `iss` of every token compared exactly | callback, [`crate::ProviderMetadata`] |
//! | **Token substitution**: an ID token for another client or user | signature always verified; `aud` must contain our client id and nothing untrusted; `azp` must be ours; `at_hash` binds the access token | `flow::Exchange` |
//! | **Algorithm confusion**: `alg: none`, HMAC keyed with a public key, `jwk`/`jku` headers | fixed allowlist (ES256, EdDSA, RS256, PS256) ∩ provider ∩ pin; `none` and `HS*` refused by name; embedded keys and key URLs never read; key type implied by `alg` | [`crate::jose`] |
//! | **Parser differentials**: duplicate JSON members (`{"sub":"a","sub":"b"}`), duplicate query parameters | both are errors everywhere | [`crate::json`], [`crate::CallbackParams`] |
//! | **JWKS flooding**: forged tokens with random `kid`s making the client hammer the provider | at most one refetch per operation, and only when the cached set is older than 60 s | [`crate::jwks::REFETCH_COOLDOWN`] |
//! | **Key rotation outages** (openidconnect-rs #232) | unknown `kid` ⇒ one refetch; cache age from `Cache-Control`, clamped to 5 min–24 h | [`crate::KeySet`] |
//! | **Refresh-rotation races**: two requests spend one refresh token, the second gets `invalid_grant` and the session dies | the rotated set is an event (`Persist`) handed out before anything else can fail; requests carry a single-flight key so drivers send one refresh per token | [`crate::flow::Session`], [`crate::RequestKind::Refresh`] |
//! | **Clock skew** between the provider and the service | 60 s leeway on `exp`, `nbf`, `iat` (configurable, at most 300 s) | [`crate::config::DEFAULT_LEEWAY`] |
//! | **Secret leakage into logs** | `Debug` of token sets, transactions, configs and requests redacts secrets; errors never echo response bodies or token values; provider texts are truncated to 256 characters | everywhere |
//! | **Forged or confused logout tokens**: anyone can POST to a back-channel logout endpoint; an ID or access token replayed there | signature, `iss`, `aud`, `iat`/`exp`, `jti`, the back-channel `events` member, `sid` or `sub`, no `nonce`, `typ` `logout+jwt` when present; an unknown `kid` refetches only outside the cooldown; `jti` replay is the caller's store's job | [`crate::backchannel`] |
//! | **Open redirects and SSRF**: redirects on back-channel requests | drivers send requests as built and follow no redirects | adapters |
//!
//! ## Defaults and the reason for each
//!
//! - **PKCE S256, `state`, `nonce` cannot be switched off.** They cost nothing and the
//!   attacks they stop are common. A caller may supply its own `state`/`nonce` values (the
//!   Python SDK allows it), never omit them.
//! - **Leeway 60 s, maximum 300 s.** Enough for ordinary NTP drift; more would let an
//!   expired token live noticeably longer.
//! - **Refresh buffer 60 s** (the Python SDK's): a token about to expire is refreshed before it
//!   is sent, so an API never sees it expire in flight.
//! - **`expires_in` absent ⇒ 3600 s**, as the Python SDK assumes; `expires_in` as a numeric
//!   string is accepted (several providers send one), negative or fractional values are not.
//! - **A 200 response carrying `error` is an error**: some providers do this.
//! - **Extra ID-token audiences are refused** unless configured as trusted: an ID token minted
//!   for several parties is a token another party can replay at us.
//! - **A refreshed ID token must keep `iss`, `sub` and `aud`**, and its `nonce` if it has one
//!   must equal the original's (OIDC Core §12.2; some providers omit it, none may change it).
//! - **`invalid_grant` on refresh ends the session**: [`crate::Error::is_session_over`]. It is
//!   never retried: AuthPI rotates refresh tokens and a replay is itself `invalid_grant`.
//! - **Token requests are never retried automatically**: a code or refresh token is single use;
//!   a retry after a lost response would spend it twice.
//! - **Stored token sets are trusted.** `create_agent` runs on every request of a web app; it
//!   decodes the stored ID token (checking `iss` and `aud`) without verifying the signature
//!   again, because the token was verified when it entered the store. If your session store
//!   is not under your control, it is not a session store.
//! - **JWKS max age 1 h when the provider says nothing**, clamped to [5 min, 24 h] when it does.
//!   AuthPI keeps a key published for 45 days and tokens live at most 21 days, so an unknown
//!   `kid` means the cache is old, not that the token is new.
//! - **ES256 signatures are exactly 64 bytes (r‖s)** as JWS requires; a DER signature is refused
//!   before the verifier runs.
//! - **RSA keys below 2048 bits are ignored** when the JWKS is read.
//! - **A logout token is accepted for at most 5 minutes after its `iat`** (plus leeway), even
//!   when its `exp` is later or absent: logout tokens are delivered at once, and the bound lets
//!   a replay cache forget a `jti` after [`crate::LogoutToken::accept_until`].
//! - **UserInfo `sub` must equal the session's subject**, or the answer is
//!   `subject_mismatch` (OIDC Core §5.3.2).
