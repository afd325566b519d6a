//! # nullgate-protocol: what client and gateway say to each other
//!
//! This crate will hold the wire formats of PROTOCOL §11 (credential and receipt layouts,
//! versioned by their first byte, with test vectors), the deployment parameters both sides
//! read from the chain (§2), price classes, and the error types both sides share. It builds
//! on [`nullgate_zk`] for every cryptographic value and stays free of tokio and web
//! frameworks so that it is easy to fuzz.
//!
//! It is deliberately empty until the gateway and client issues define those formats: the
//! cryptographic building blocks live in `nullgate-zk` today.

pub use nullgate_zk;
