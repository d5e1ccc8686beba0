//! # The manual: threat model, defaults, how-tos
//!
//! This module has no code. It explains what the SDK defends against, why each default is
//! what it is, and how to do the things a driver or a service must get right, so that a reader
//! can judge a change before making it. Read the chapters in order:
//!
//! 1. [The threat model](_01_threat_model): each threat and the check that answers it.
//! 2. [Defaults](_02_defaults), with the reason for each.
//! 3. [Driving an operation over your own HTTP stack](_03_driving), and single-flight.
//! 4. [Persisting caches](_04_caches): token sets, key sets, metadata, and their binding.
//! 5. [The no-verdict rule](_05_no_verdict): why rotated tokens are never dropped.

#[path = "threat_model.rs"]
pub mod _01_threat_model;

#[path = "defaults.rs"]
pub mod _02_defaults;

#[path = "driving.rs"]
pub mod _03_driving;

#[path = "caches.rs"]
pub mod _04_caches;

#[path = "no_verdict.rs"]
pub mod _05_no_verdict;
