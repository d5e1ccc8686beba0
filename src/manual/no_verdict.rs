//! # Chapter 5: the no-verdict rule — rotated tokens are never dropped
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
//!   [`Operation::handle_transport_error`](crate::Operation::handle_transport_error)), or the `kid` is still unknown after the one
//!   refetch. Then the new ID token's claims are still decoded and checked without the signature
//!   (a claim that fails is a verdict, as above); if they pass, the operation emits
//!   `Persist(set)` with the new access and refresh tokens, `expires_at` and `scope`, and the
//!   *previous*, verified `id_token` in place of the unverifiable new one, then `Done(agent)` with
//!   the previous verified identity. [`Agent::identity_reverified`](crate::Agent::identity_reverified) is `false` on that
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
//! request) is [`Error::NoResponse`](crate::Error::NoResponse), which drivers replace with their own transport error.
//!
//! A stored set with a refresh token and neither an ID token nor a `subject_hint` is refused
//! ([`Error::UnpinnedSubject`](crate::Error::UnpinnedSubject)): nothing would pin the subject UserInfo answers with. The
//! SDK never writes such a set (a refresh without an ID token writes `subject_hint`).
//!
//! ## In a driver
//!
//! Nothing special: keep polling after
//! [`handle_transport_error`](crate::Operation::handle_transport_error), store what
//! [`Step::Persist`](crate::Step::Persist) hands out, and read
//! [`Agent::identity_reverified`](crate::Agent::identity_reverified) if you want to log that the
//! identity is the previous one. [`CreateAgent::refreshed`](crate::flow::CreateAgent::refreshed)
//! tells whether the rotated set was handed out before a later failure (e.g. UserInfo), which is
//! when a driver must not report "refresh failed".
