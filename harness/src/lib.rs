//! Scenarios, the deterministic scheduler and the runner.
#![forbid(unsafe_code)]
