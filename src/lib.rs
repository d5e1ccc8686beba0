//! authpi-idp: sans-IO OpenID Connect client for AuthPI (work in progress).
#![forbid(unsafe_code)]
pub mod json;
pub mod org;
pub mod scope;
pub mod time;
