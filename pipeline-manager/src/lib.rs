//! A pipeline execution manager built on otp-core (work in progress: see the project's issues).
//!
//! This crate will hold the seed's pipeline manager rebuilt on otp-core: one supervised worker
//! process per execution, a registry to find it, a cleaner, and a public API.
