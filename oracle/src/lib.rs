//! The reference model and the checker.
#![forbid(unsafe_code)]
