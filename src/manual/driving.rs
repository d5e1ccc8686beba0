//! # Chapter 3: driving an operation over your own HTTP stack
//!
//! Every operation is an [`Operation`](crate::Operation): the adapters (reqwest, ureq, hyper)
//! only run this loop, and so can any HTTP client of yours, or a test with no network at all.
//!
//! ```no_run
//! use authpi_idp::{Error, Operation, Step, TokenSet, UnixTime};
//!
//! # struct MyHttp;
//! # impl MyHttp {
//! #     fn send(&self, _: http::Request<Vec<u8>>) -> std::io::Result<http::Response<Vec<u8>>> { unimplemented!() }
//! # }
//! # fn store(_: &TokenSet) {}
//! # fn clock() -> UnixTime { UnixTime(0) }
//! fn drive<O: Operation>(http: &MyHttp, mut op: O) -> Result<O::Output, Error> {
//!     loop {
//!         // Read the clock for every poll: each check uses the `now` of the poll that makes it.
//!         match op.poll(clock())? {
//!             Step::Send(out) => match http.send(out.request) {
//!                 Ok(response) => op.handle_response(response),
//!                 // Then keep polling: the operation decides what a lost response means.
//!                 Err(_) => op.handle_transport_error(),
//!             },
//!             Step::Persist(tokens) => store(&tokens), // before polling again
//!             Step::KeysRefreshed(_keys) => { /* replace your cached KeySet */ }
//!             Step::Done(output) => return Ok(output),
//!         }
//!     }
//! }
//! ```
//!
//! [`Step`](crate::Step) is exhaustive: write no `_` arm. A new obligation (as
//! [`Step::Persist`](crate::Step::Persist) once was) must fail your build, not be ignored.
//!
//! What the transport must do:
//!
//! - send [`Outgoing::request`](crate::Outgoing::request) as built, and **follow no
//!   redirects** (a back-channel redirect is an SSRF and mix-up vector);
//! - cap the response size and time out; report either as
//!   [`handle_transport_error`](crate::Operation::handle_transport_error), never as a made-up
//!   response;
//! - never retry a token request ([`RequestKind::is_token_request`](crate::RequestKind::is_token_request)):
//!   a code or refresh token is single use.
//!
//! ## Single-flight in a custom driver
//!
//! A web service runs many operations at once, and several may want the same request:
//!
//! - [`RequestKind::Refresh`](crate::RequestKind::Refresh) carries `token_hash`, the SHA-256 of
//!   the refresh token. Concurrent operations with the same hash must share **one** request:
//!   AuthPI rotates refresh tokens, so a second request with the spent token answers
//!   `invalid_grant` and ends the session. Let the first caller send it; hand its response to
//!   the others' [`handle_response`](crate::Operation::handle_response), and poll them with the
//!   `now` at which the response arrived.
//! - [`RequestKind::Jwks`](crate::RequestKind::Jwks): one JWKS request at a time is enough;
//!   share its response the same way, and keep the newest [`KeySet`](crate::KeySet) that
//!   [`Step::KeysRefreshed`](crate::Step::KeysRefreshed) hands out (compare
//!   [`KeySet::fetched_at`](crate::KeySet::fetched_at)).
//! - The leader's [`Step::Persist`](crate::Step::Persist) is the one to store; followers get
//!   the same token set and must not store it twice.
//!
//! ## Lower level: one request, one processor
//!
//! The one-request operations ([`OneRequest`](crate::flow::OneRequest)) are also a plain pair:
//! [`OneRequest::request`](crate::flow::OneRequest::request), then
//! [`OneRequest::process`](crate::flow::OneRequest::process) with the response, which runs the
//! named processor ([`process_userinfo_response`](crate::flow::process_userinfo_response),
//! [`process_revocation_response`](crate::flow::process_revocation_response),
//! [`process_introspection_response`](crate::flow::process_introspection_response),
//! [`process_client_credentials_response`](crate::flow::process_client_credentials_response)).
