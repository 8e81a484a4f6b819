//! Plain data the store, compaction and the background threads report and
//! take: no behaviour, so every module can use them without depending on
//! the others.

use crate::doc::DocInfo;
use crate::format::Header;
use std::fmt;

/// What a successful flush committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The header's update_seq (seqno of the batch's last mutation).
    pub update_seq: u64,
    /// The header's timestamp.
    pub timestamp: u64,
    /// The header's offset in the file.
    pub header_pos: u64,
    /// Where the commit's data (documents and tree nodes) ended: the header
    /// went to the first block boundary at or after it.
    pub data_end: u64,
    /// Mutations in the batch (before de-duplication by key).
    pub mutations: usize,
    /// Local-document changes in the batch.
    pub local_changes: usize,
    /// The file revision it went to.
    pub rev: u64,
}

/// A queued change of a local document ([`Store::set_local`]).
///
/// [`Store::set_local`]: crate::Store::set_local
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalChange {
    /// The document's name (`_local/...`).
    pub name: Vec<u8>,
    /// The new value; `None` removes the document.
    pub value: Option<Vec<u8>>,
    /// The seqno the change took (see `Store::set_local`).
    pub seqno: u64,
}

/// A header in a store's header chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Offset of the header block.
    pub pos: u64,
    /// The header.
    pub header: Header,
}

/// How an open went.
#[derive(Clone, Debug, Default)]
pub struct OpenReport {
    /// The revision chosen.
    pub rev: u64,
    /// Files removed (lower revisions, `.compact` leftovers).
    pub removed: Vec<String>,
    /// Bytes of damaged tail truncated.
    pub truncated_bytes: u64,
    /// Damaged header blocks skipped.
    pub damaged_headers: Vec<u64>,
}

/// Counters of what the store did, for reports and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Flush commits.
    pub commits: u64,
    /// Flushes refused with [`Error::Busy`](crate::Error::Busy).
    pub busy_flushes: u64,
    /// Compactions that switched files.
    pub compactions: u64,
    /// Mutations replayed by the last compaction's locked catch-up round.
    pub last_locked_replay: u64,
    /// Catch-up rounds of the last compaction (locked one included).
    pub last_catchup_rounds: u64,
}

/// What a compaction may purge, and how it locks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionOptions {
    /// Purge tombstones with seqno <= this (clamped to H0's update_seq).
    pub purge_upto: Option<u64>,
    /// A baseline for benchmarks, not a mode to run: hold the store's memory
    /// lock through copy, catch-up and switch, as a compactor without
    /// MB-38428 does, so every flush waits for the whole compaction. The
    /// first [`Compaction::step`](crate::Compaction::step) does all of that; the unlink of the old
    /// file follows in the next step, unlocked as usual (the flusher no
    /// longer uses that file).
    pub stop_the_world: bool,
}

/// Where a compaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Copying the state as of H0.
    Copy,
    /// Replaying what the flusher committed since.
    CatchUp,
    /// Switched; the old file is still to be removed.
    Unlink,
    /// Finished.
    Done,
    /// Aborted; the old file stays authoritative.
    Aborted,
}

/// The result of one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More steps are needed; the compaction is in this phase now.
    Running(Phase),
    /// Finished.
    Done(CompactionReport),
}

/// What a finished compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// The new revision.
    pub new_rev: u64,
    /// H0's update_seq.
    pub h0_update_seq: u64,
    /// The update_seq at the switch.
    pub final_update_seq: u64,
    /// Documents copied or replayed in all.
    pub docs_written: u64,
    /// Headers written to the new file.
    pub headers_written: u64,
    /// Catch-up rounds, the locked one included.
    pub catchup_rounds: u64,
    /// Documents replayed in the locked round.
    pub locked_replay_docs: u64,
    /// The purge_seq of the new file.
    pub purge_seq: u64,
    /// Steps taken.
    pub steps: u64,
    /// The old file could not be removed yet (Windows: it is still open).
    pub unlink_deferred: bool,
}

/// A flush the background flusher is about to commit, as
/// [`BackgroundObserver::flush_starting`] sees it.
#[derive(Debug)]
pub struct FlushStart<'a> {
    /// The whole batch, in seqno order (the flusher takes the whole queue).
    pub batch: &'a [DocInfo],
    /// The local-document changes it commits, in queue order.
    pub locals: &'a [LocalChange],
    /// The timestamp the commit's header will carry.
    pub timestamp: u64,
    /// The file revision the flusher writes to.
    pub rev: u64,
    /// The update_seq of the tip before this flush.
    pub tip_update_seq: u64,
}

/// Sees what the background threads do *before* anyone can act on it: a
/// process that streams it elsewhere (the `crashfuzz stress` child streams
/// it to its driver) then knows every acknowledgment a writer was told of,
/// and every batch that may have reached the disk. Both calls run on a
/// background thread with the store's memory lock held: they must not call
/// the store, and should be quick.
pub trait BackgroundObserver: Send + Sync {
    /// The flusher is about to commit `flush`; nothing of it is written yet.
    fn flush_starting(&self, flush: &FlushStart<'_>);
    /// `event` happened; called before any waiter is woken for it (for a
    /// flush: before [`Store::wait_durable`](crate::Store::wait_durable) can return it). Called whether
    /// or not [`BackgroundConfig::record_events`](crate::BackgroundConfig::record_events) is on.
    fn event(&self, event: &BackgroundEvent);
}

/// A shared [`BackgroundObserver`].
#[derive(Clone)]
pub struct ObserverHandle(pub std::sync::Arc<dyn BackgroundObserver>);

impl fmt::Debug for ObserverHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ObserverHandle")
    }
}

/// Something the background threads did. Flushes are logged in commit
/// order; a compaction's events carry the tip they happened at
/// (`h0_update_seq`, `update_seq`), since a flush may be logged between a
/// compaction's start and its log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackgroundEvent {
    /// The flusher committed.
    Flushed(CommitInfo),
    /// A compaction started with H0 at `h0_update_seq`.
    CompactionStarted {
        /// H0's update_seq.
        h0_update_seq: u64,
        /// The purge bound in force.
        purge_upto: Option<u64>,
        /// The clock reading at the start (PiTR's `now`).
        started_at_secs: u64,
    },
    /// The compaction switched files when the tip was `update_seq`.
    CompactionSwitched {
        /// The update_seq of the tip at the switch.
        update_seq: u64,
        /// The new revision.
        new_rev: u64,
    },
    /// The compaction finished.
    CompactionFinished(CompactionReport),
    /// The compaction failed (`switched`: after its switch).
    CompactionFailed {
        /// Whether it had switched files already.
        switched: bool,
        /// What went wrong.
        error: String,
    },
}

/// What the background threads did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackgroundReport {
    /// Flush commits.
    pub commits: u64,
    /// Commits made while a compaction was running.
    pub commits_while_compacting: u64,
    /// Flushes that found the store lock held and came back later.
    pub busy_retries: u64,
    /// Compactions that finished.
    pub compactions: u64,
    /// Compactions that failed (aborted, or failed after the switch).
    pub compactions_failed: u64,
    /// Compactions not started as there was nothing committed to compact.
    pub compactions_skipped: u64,
    /// The most catch-up rounds one compaction took (the locked one
    /// included).
    pub max_catchup_rounds: u64,
    /// The most steps one compaction took.
    pub max_compaction_steps: u64,
    /// Deferred unlinks retried successfully.
    pub deferred_unlinks_done: u64,
    /// The event log, if [`BackgroundConfig::record_events`](crate::BackgroundConfig::record_events).
    pub events: Vec<BackgroundEvent>,
}
