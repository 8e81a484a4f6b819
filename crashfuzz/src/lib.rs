//! The `crashfuzz` command-line tool's library: everything that knows
//! JSON reports for people, Markdown, SVG plots, progress bars and command
//! lines. The fuzz targets never link it; they link `harness` only.
//!
//! - [`campaign`]: the nightly campaign (`crashfuzz campaign`, what
//!   `ci/nightly.sh` runs).
//! - [`report`]: the campaign report (Markdown, JSON, SVG plots).
//! - [`mutants`]: the seeded-bug benchmark.
//! - [`mutation`]: the cargo-mutants score (`crashfuzz mutation-score`).
//! - [`catalog`]: the failpoint catalog with coverage.
//! - [`exhaust`]: `crashfuzz exhaust`'s flags and seeded-bug table.
//! - [`progress`]: indicatif progress bars behind `harness::progress`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod campaign;
pub mod catalog;
pub mod exhaust;
pub mod mutants;
pub mod mutation;
pub mod progress;
pub mod report;
