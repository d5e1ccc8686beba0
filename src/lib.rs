//! authpi-idp: sans-IO OpenID Connect client for AuthPI (work in progress).
#![forbid(unsafe_code)]
pub mod jose;
pub mod json;
pub mod jwks;
pub mod time;
