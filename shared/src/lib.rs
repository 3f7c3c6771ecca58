//! Common crate of the sync functions: the domain (changes, write commands, ledger, jobs and
//! mapping), the ports the functions depend on, and their AWS / HTTP adapters.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod enqueue;
pub mod lambda;
pub mod ports;
pub mod resolve;
pub mod secret;
pub mod signature;
pub mod telemetry;
pub mod time;

#[cfg(feature = "fakes")]
pub mod fakes;
