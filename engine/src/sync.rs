//! Every synchronisation primitive the engine uses, in one place.
//!
//! Normally these are `std::sync` and `std::thread`. With the `shuttle`
//! feature they are the [shuttle](https://docs.rs/shuttle) crate's, so the
//! same engine code (the store's memory lock, the background flusher and
//! compactor, their condition variable) runs under shuttle's schedulers,
//! which pick every interleaving at these primitives and print the failing
//! schedule for replay.
//!
//! With the feature on, the engine works *only* inside a shuttle execution
//! (`shuttle::check_random`, `shuttle::check_pct`, a `shuttle::Runner`):
//! shuttle's locks panic anywhere else. So the feature is for the shuttle
//! test target alone, never for a build that runs anything else.
//!
//! What deliberately does not come from here: `Arc` is the same type either
//! way (shuttle re-exports std's), and [`ManualClock`](crate::ManualClock)'s
//! counter is a test clock, not a synchronisation point between engine
//! threads.

#[cfg(not(shuttle))]
pub use std::sync::{atomic, Arc, Condvar, Mutex, MutexGuard, PoisonError};
#[cfg(not(shuttle))]
pub use std::thread;

#[cfg(shuttle)]
pub use shuttle::sync::{atomic, Arc, Condvar, Mutex, MutexGuard, PoisonError};
#[cfg(shuttle)]
pub use shuttle::thread;

/// The shuttle crate itself, for tests that drive its schedulers (they need
/// the very version the engine's primitives come from).
#[cfg(shuttle)]
pub use shuttle;
