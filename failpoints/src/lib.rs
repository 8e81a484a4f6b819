//! The simulated disk, crash injection and failpoint coverage.
//!
//! - [`SimVfs`] implements the engine's `Vfs` in memory and knows exactly
//!   what is durable; its [module doc](sim) is the fault model.
//! - [`CrashMode`] says what of the unsynced state a crash keeps;
//!   [`CrashTrigger`] says when a crash strikes (Nth failpoint hit, Nth I/O
//!   call of an [`IoKind`]); [`SimVfs::reboot`] turns the disk into its
//!   post-crash image, and a new trigger can crash the recovery too.
//! - [`FaultConfig`]: errors on every call (EIO on read, write, fsync, open,
//!   `set_len`, rename, remove and directory fsync; latent sector errors;
//!   ENOSPC; short writes), Linux's fsync-failure semantics, no power-safe
//!   overwrite, and Windows' busy rename/unlink. Every injected fault is
//!   counted per [`FaultKind`] in [`Coverage::faults`].
//! - [`bind_thread`] routes the engine's `failpoint!`s (through
//!   `fail::cfg_callback`) to the disk bound to the calling thread, which
//!   counts them in its [`Coverage`].
//!
//! One `u64` seed drives every random choice (ChaCha8); the `fail` crate's
//! own random actions are never used.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bind;
mod coverage;
mod crash;
mod fault;
pub mod images;
pub mod sim;
mod trigger;

pub use bind::{
    bind_process, bind_thread, bound_sim, install_failpoint_callbacks, ProcessBinding,
    ThreadBinding,
};
pub use coverage::Coverage;
pub use crash::{CrashMode, TornFill, PAGE_BYTES, SECTOR_BYTES};
pub use fault::{FaultConfig, FaultKind, FsyncFailure, TearUnit};
pub use images::{ImageBounds, ImageChoice, ImageCount, ImageLog, SimEvent};
pub use sim::{
    is_busy, is_injected_fault, is_simulated_crash, is_simulated_eio, is_simulated_enospc,
    is_simulated_read_error, is_simulated_short_write, FileInfo, PauseHook, PausePoint, SimVfs,
    MAX_FILE_BYTES,
};
pub use trigger::{ArmError, CrashCause, CrashRecord, CrashTrigger, IoCounts, IoKind};
