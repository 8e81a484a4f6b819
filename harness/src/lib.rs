//! Scenarios, the deterministic scheduler and the runner: engine, simulated
//! disk and oracle tied together. The `crashfuzz` binary and the cargo-fuzz
//! targets are thin layers over this library.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod generate;
pub mod runner;
pub mod scenario;

pub use runner::{run, Failure, FailureKind, Outcome, RunOptions};
pub use scenario::{Scenario, Step, SwarmConfig};
