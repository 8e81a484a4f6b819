//! Scenarios, the deterministic scheduler and the runner: engine, simulated
//! disk and oracle tied together. The `crashfuzz` binary and the cargo-fuzz
//! targets are thin layers over this library.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod catalog;
pub mod corrupt;
pub mod crash_images;
pub mod events;
pub mod exhaust;
pub mod explore;
pub mod extract;
pub mod failure;
pub mod fixture;
pub mod generate;
pub mod minimize;
pub mod mutant_env;
pub mod progress;
pub mod reach;
pub mod realfs;
pub mod regression;
pub mod runner;
pub mod scenario;
pub mod stress;
pub mod target;
pub mod targets;
pub mod templates;
pub mod threads;
pub mod watch;

pub use runner::{run, Failure, FailureKind, Outcome, RunOptions, Sanity};
pub use scenario::{Scenario, Step, SwarmConfig};
