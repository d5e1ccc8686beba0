//! The adapters' behaviour suite: every case is written once against [`Api`] and instantiated
//! per adapter in `tests/suite.rs`, over real loopback HTTP to the testkit's `Served` issuer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity,
    missing_docs
)]

pub mod api;
pub mod cases;

pub use api::Api;
