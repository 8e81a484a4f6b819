//! The reference model and the checker.
//!
//! A [`Model`] is fed the same events as the engine, in the order the engine
//! linearizes them: `set` and `delete` (queued, each given the next seqno),
//! `flush_started` / `flush_acked` / `flush_failed`, `compaction_started` /
//! `compaction_switched` / `compaction_aborted`, and `crash`. It never sees
//! the engine itself: after a reopen the harness extracts every header of the
//! store as plain data ([`RecoveredStore`]) and [`Model::check`] decides it.
//!
//! # What the model keeps
//! - **History**: every committed state (key -> newest [`Doc`], tombstones
//!   included) by update_seq, from the empty state at 0. A flush commits its
//!   whole queue as one state whose update_seq is the seqno of its last
//!   mutation; a later mutation of a key in the same batch replaces the
//!   earlier.
//! - **Durability**: the last acknowledged commit. At most one commit is in
//!   flight (started, not acknowledged): a crash or a failed flush leaves it
//!   so, and recovery may show it or not.
//! - **The file's header list**: each acknowledged flush appends one header;
//!   a compaction's switch replaces the list with what the compaction writes
//!   (H0, catch-up rounds and the tip with PiTR off; the PiTR policy's list
//!   with PiTR on); some headers are optional (an in-flight flush, a PiTR-off
//!   catch-up round) until a check sees the list.
//! - **purge_seq**: a range, exact after a check, widened by the purge
//!   policy of each compaction that switched since.
//!
//! # Allowed ambiguity
//! Explicit and small: the in-flight commit may or may not be the recovered
//! tip; a compaction cut by the crash may have left the old file or its own
//! (when the harness lists the directory, the revision says which);
//! tombstones at or below a header's purge_seq may be absent; PiTR-off
//! catch-up rounds may or may not have written a header. [`CheckReport`]
//! says which outcome a check saw; the model then adopts it (the recovered
//! tip becomes the durable state, newer history is dropped, seqnos restart
//! after it) so the next crash is decided against what really happened.
//!
//! # What it checks
//! Each invariant of SPEC section 2 that header-visible state can show, one
//! function per invariant in `checks`, each named by an [`Invariant`] whose
//! short name is the de-duplication signature of a [`Divergence`].
//! Liveness (section 2, item 10) is the harness's: the model sees no time.
#![forbid(unsafe_code)]
// A Divergence is a few hundred bytes, and it is returned once per failed
// run: boxing it would make every caller's matching uglier for no gain.
#![allow(clippy::result_large_err)]

mod checks;
mod divergence;
mod expect;
mod model;
mod types;

pub use divergence::{DiffLine, Divergence, HeaderRef, Invariant, MAX_DIFF_LINES};
pub use model::{CheckReport, CompactionOutcome, InFlight, Model};
pub use types::{
    BySeqEntry, CompactionParams, Counters, Doc, Locals, Pitr, RecoveredHeader, RecoveredStore,
    State,
};
