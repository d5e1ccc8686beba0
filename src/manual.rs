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
//! | **JWKS flooding**: forged tokens with random `kid`s making the client hammer the provider | at most one refetch per operation; for a token anyone can present (an access token at an API) only when the last fetch *attempt*, failed ones included, is older than 60 s; cheap rejections (`alg`, signature length, `typ`, structure) before any request | [`crate::jwks::REFETCH_COOLDOWN`] |
//! | **Key rotation outages** (openidconnect-rs #232) | unknown `kid` in an ID token from the token endpoint ⇒ one refetch whatever the cooldown; cache age from `Cache-Control`, clamped to 5 min–24 h | [`crate::KeySet`] |
//! | **Lost sessions**: the refresh token is spent, then the new ID token cannot be checked (JWKS down, key not yet published) and the rotated tokens are dropped | the no-verdict rule below: the rotated tokens are persisted with the previous verified identity | [`crate::flow::Session`] |
//! | **Misfiled or foreign caches**: provider B's tokens verified with provider A's keys | an exported key set names its issuer and `jwks_uri` and is refused for any other; a fetch time in the future counts as never fetched | [`crate::jwks`] |
//! | **Small-order Ed25519 keys**: one fixed signature valid for every message | small-order and non-canonical Ed25519 keys are skipped when the JWKS is read; non-canonical signatures (`S >= L`) fail | [`crate::jose`] |
//! | **Refresh-rotation races**: two requests spend one refresh token, the second gets `invalid_grant` and the session dies | the rotated set is an event (`Persist`) handed out before anything else can fail; requests carry a single-flight key so drivers send one refresh per token | [`crate::flow::Session`], [`crate::RequestKind::Refresh`] |
//! | **Clock skew** between the provider and the service | 60 s leeway on `exp`, `nbf`, `iat` (configurable, at most 300 s) | [`crate::config::DEFAULT_LEEWAY`] |
//! | **Secret leakage into logs** | `Debug` of token sets, transactions, configs and requests redacts secrets; errors never echo response bodies or token values; provider texts are truncated to 256 characters | everywhere |
//! | **Forged or confused logout tokens**: anyone can POST to a back-channel logout endpoint; an ID or access token replayed there | signature, `iss`, `aud`, `iat`/`exp`, `jti`, the back-channel `events` member, `sid` or `sub`, no `nonce`, `typ` `logout+jwt` when present; an unknown `kid` refetches only outside the cooldown; `jti` replay is the caller's store's job | [`crate::backchannel`] |
//! | **Open redirects and SSRF**: redirects on back-channel requests | drivers send requests as built and follow no redirects | adapters |
//!
//! ## The no-verdict rule: rotated tokens are never dropped
//!
//! AuthPI rotates refresh tokens: once a refresh request is answered, the old refresh token is
//! dead. Two kinds of failure after that point are told apart (DESIGN §1.5):
//!
//! - **A verdict on the tokens** — a bad signature with fresh keys, a changed `iss`, `sub`, `aud`
//!   (as a set), `azp`, `nonce` or `auth_time`, an expired token, a disallowed `alg`, a wrong
//!   `typ`: the new tokens are refused and nothing is persisted. The session is over; this is what
//!   an attack or a broken provider looks like.
//! - **No verdict** — the new ID token names a key the SDK cannot get: the JWKS endpoint answers
//!   an error status or an unusable body, the JWKS request gets no response (the driver calls
//!   [`crate::Operation::handle_transport_error`]), or the `kid` is still unknown after the one
//!   refetch. Then the new ID token's claims are still decoded and checked without the signature
//!   (a claim that fails is a verdict, as above); if they pass, the operation emits
//!   `Persist(set)` with the new access and refresh tokens, `expires_at` and `scope`, and the
//!   *previous*, verified `id_token` in place of the unverifiable new one, then `Done(agent)` with
//!   the previous verified identity. [`crate::Agent::identity_reverified`] is `false` on that
//!   agent (and `true` everywhere else). Dropping the tokens instead would end the user's session
//!   at AuthPI for a JWKS hiccup.
//!
//! Why this is safe: the ID token came straight from the token endpoint over TLS, in answer to our
//! own authenticated request, so a third party cannot have forged it; the identity we keep is the
//! one a verified ID token established before; and the next refresh verifies a new ID token again.
//! An ID token from the token endpoint may always trigger one JWKS refetch per operation, whatever
//! the cooldown, so a key rotated between login and refresh just works.
//!
//! A transport error where nothing can be handed out (the refresh request itself, a UserInfo
//! request) is [`crate::Error::NoResponse`], which drivers replace with their own transport error.
//!
//! A stored set with a refresh token and neither an ID token nor a `subject_hint` is refused
//! ([`crate::Error::UnpinnedSubject`]): nothing would pin the subject UserInfo answers with. The
//! SDK never writes such a set (a refresh without an ID token writes `subject_hint`).
//!
//! ## Caches are bound to their provider
//!
//! [`crate::KeySet`] and [`crate::ProviderMetadata`] are cache values that serverless users
//! persist. A key set fetched by an operation names the issuer and `jwks_uri` it came from, its
//! serde form carries them (and is refused without them once fetched), and an operation of a
//! client for another issuer or `jwks_uri` refuses it with
//! [`crate::jwks::JwksError::ForeignProvider`] before sending anything. Provider metadata names
//! its issuer and is accepted by [`crate::Client::with_metadata`] only for the configured issuer
//! (which alone may differ by a trailing slash). A fetch time in the future counts as never
//! fetched (a wrong clock or a tampered file must not make a cache fresh forever). Within those
//! rules imported caches are trusted input: keys are re-validated, but nothing proves they are
//! the provider's, so keep them where you keep your sessions.
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
//! - **A refreshed ID token must keep `iss`, `sub` and `aud`** (`aud` compared as a set), and its
//!   `azp` and `nonce`, if present, must equal the original's, as must its `auth_time` when both
//!   have one (OIDC Core §12.2; some providers omit them, none may change them). It is compared
//!   with the original before the other rules, so the error names the claim that changed.
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
//! - **A logout token is accepted for at most 5 minutes after its `iat`** (plus leeway), even
//!   when its `exp` is later or absent: logout tokens are delivered at once, and the bound lets
//!   a replay cache forget a `jti` after [`crate::LogoutToken::accept_until`].
//! - **UserInfo `sub` must equal the session's subject**, or the answer is
//!   `subject_mismatch` (OIDC Core §5.3.2).
