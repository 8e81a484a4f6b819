//! What the model expects a recovered store to show: its committed states
//! and the header slots of each file recovery may open. Plain data, shared by
//! the model (which builds it) and the checks (which decide against it).

use crate::types::{Locals, State};

/// One committed state: what a header at `update_seq` must show.
#[derive(Clone, Debug)]
pub(crate) struct Commit {
    pub(crate) update_seq: u64,
    /// `None` only for the empty state of a store created without a header.
    pub(crate) timestamp_secs: Option<u64>,
    pub(crate) docs: State,
    /// The user local documents.
    pub(crate) locals: Locals,
}

/// Who wrote a header, which decides the invariant a problem with it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Flush,
    Compaction,
    PitrCompaction,
}

/// One header the model expects in a file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    pub(crate) update_seq: u64,
    /// `None`: any timestamp (the empty state of a store created without one).
    pub(crate) timestamp_secs: Option<u64>,
    /// False for a header that may or may not be there.
    pub(crate) required: bool,
    pub(crate) origin: Origin,
}

/// One file recovery may open, as the model expects it.
#[derive(Clone, Debug)]
pub(crate) struct Expectation {
    /// Oldest first, strictly rising update_seq, ending with the tip's.
    pub(crate) slots: Vec<Slot>,
    pub(crate) purge_low: u64,
    pub(crate) purge_high: u64,
    /// The output of a compaction cut by the crash.
    pub(crate) new_file: bool,
}
