//! Seeded bugs: the suite's own test. Each [`Mutant`] is a real bug class from
//! SPEC.md section 4. With the `mutants` feature one of them can be switched on
//! at run time, per thread, so parallel explorer workers can each test a
//! different one; without the feature [`active`] is always false and the
//! checks compile away.

use std::fmt;

/// One seeded bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Mutant {
    /// The header is written before the data fsync (data fsync skipped).
    HeaderBeforeDataSync,
    /// The header fsync is skipped; the flush is acknowledged anyway.
    HeaderSyncSkipped,
    /// The directory is not fsynced after the compaction rename.
    NoDirSyncAfterRename,
    /// A header is accepted without checking its checksum.
    TornHeaderAccepted,
    /// Recovery gives up instead of falling back to an older header.
    NoHeaderFallback,
    /// Truncating a bad tail is not made durable.
    TruncateNotDurable,
    /// Catch-up skips the newest header of the old file.
    CatchupSkipsNewest,
    /// Catch-up replays only up to H0: mutations during the copy are lost.
    CatchupOnlyToH0,
    /// After the switch the flusher keeps writing to the old file.
    FlusherWritesOldFile,
    /// PiTR keeps only the tip header.
    PitrOnlyTip,
    /// PiTR keeps two headers in one window.
    PitrTwoPerWindow,
    /// Tombstones above the purge bound are purged (delete resurrected).
    PurgeAboveBound,
    /// Local-doc counters are not recomputed after catch-up.
    StaleCountersAfterCatchup,
    /// A failed fsync is ignored and the flush acknowledged.
    FsyncErrorIgnored,
    /// After recovery seqnos restart below the recovered update_seq.
    SeqnoReused,
    /// Compaction holds the store lock through the copy (flusher starves).
    LockThroughCopy,
    /// A stale `.compact` file is taken as authoritative on open.
    CompactFileAuthoritative,
    /// The flusher refuses a batch that holds two versions of one key (it
    /// assumes the queue was de-duplicated upstream): a spurious flush error
    /// with no fault behind it.
    FlushRejectsDuplicateKey,
    /// Once its unlocked catch-up rounds are used up and the flusher has
    /// committed again, compaction gives up (`Busy`) instead of taking the
    /// lock for the final round: it never finishes while the flusher writes.
    CatchupGivesUp,
    /// The backward header scan does not step past a damaged header: recovery
    /// loops forever re-reading it.
    RecoveryScanStuck,
    /// Strict recovery refuses any bytes after the newest header, such as the
    /// synced bodies of a commit whose header never made it: a clean tail.
    StrictRefusesCleanTail,
    /// Recovery trusts a header it finds in the page cache once its own
    /// fsync succeeds (it does not re-append it), although a failed fsync of
    /// a crashed process may have left that page clean and never written.
    TrustPageCacheAfterFsyncFailure,
    /// A commit's first write starts right after the previous header, in
    /// the header's sector and page, instead of at the next block.
    CommitSharesHeaderSector,
    /// Opening a store creates its directory without fsyncing the parent.
    StoreDirNotSynced,
    /// Open removes lower revisions before the chosen one has recovered.
    LowerRevDeletedEarly,
    /// A write that failed "to write whole buffer" is taken as complete.
    ShortWriteTakenComplete,
    /// A read error during recovery's backward scan is taken as the end of
    /// the readable file: the scan skips the window as if it were garbage.
    ReadErrorAsEof,
    /// Catch-up copies the newest header's local documents but not their
    /// removals: a local document removed after the copy started is back
    /// after the switch.
    LocalRemovalsNotCarried,
    /// The final catch-up round replays up to the tip read before the store
    /// lock was taken (check-then-act): a commit the flusher made in
    /// between is in no round and lost at the switch.
    CatchupTipReadBeforeLock,
    /// Measuring a chunk steps over the marker of the block it lands on as
    /// soon as it lands there, also when its last byte was the block's last:
    /// a chunk ending exactly on a block boundary is read one byte long,
    /// into the header block (or the end of the file) that follows it.
    MarkerCountedAtChunkEnd,
    /// The backward header scan steps back a whole window from the start of
    /// the window it just read instead of one block: the blocks just below
    /// every window are never looked at, so a newest valid header more than
    /// a window from the end can be missed.
    ScanWindowGap,
    /// A range scan prunes the children that end at or below its lower
    /// bound, inclusive or not: with an inclusive bound equal to a
    /// separator key, the child holding the bound key is skipped.
    ScanSkipsSeparatorChild,
    /// A deferred unlink records the old file's bare name instead of its
    /// path: the retry does not find it (not found counts as already gone)
    /// and the old revision stays on disk, forgotten, until the next open.
    DeferredUnlinkBareName,
    /// The background flusher, finding the queue empty, retries deferred
    /// unlinks before it sleeps, with the memory lock released, and then
    /// sleeps without looking at the queue again: a mutation queued in
    /// between (its wake-up sent to nobody) waits for a wake-up that may
    /// never come, and a writer in `wait_durable` hangs.
    FlusherLostWakeup,
    /// The background flusher takes any wake-up after a `Busy` as "the
    /// compactor released the store lock" and commits without checking
    /// it: a writer's wake-up during the locked final round lets a commit
    /// land in the old file after the final tip was fixed, lost at the
    /// switch.
    FlushDuringLockedSwitch,
}

impl Mutant {
    /// Every seeded bug, in SPEC order.
    pub const ALL: [Mutant; 35] = [
        Mutant::HeaderBeforeDataSync,
        Mutant::HeaderSyncSkipped,
        Mutant::NoDirSyncAfterRename,
        Mutant::TornHeaderAccepted,
        Mutant::NoHeaderFallback,
        Mutant::TruncateNotDurable,
        Mutant::CatchupSkipsNewest,
        Mutant::CatchupOnlyToH0,
        Mutant::FlusherWritesOldFile,
        Mutant::PitrOnlyTip,
        Mutant::PitrTwoPerWindow,
        Mutant::PurgeAboveBound,
        Mutant::StaleCountersAfterCatchup,
        Mutant::FsyncErrorIgnored,
        Mutant::SeqnoReused,
        Mutant::LockThroughCopy,
        Mutant::CompactFileAuthoritative,
        Mutant::FlushRejectsDuplicateKey,
        Mutant::CatchupGivesUp,
        Mutant::RecoveryScanStuck,
        Mutant::StrictRefusesCleanTail,
        Mutant::TrustPageCacheAfterFsyncFailure,
        Mutant::CommitSharesHeaderSector,
        Mutant::StoreDirNotSynced,
        Mutant::LowerRevDeletedEarly,
        Mutant::ShortWriteTakenComplete,
        Mutant::ReadErrorAsEof,
        Mutant::LocalRemovalsNotCarried,
        Mutant::CatchupTipReadBeforeLock,
        Mutant::MarkerCountedAtChunkEnd,
        Mutant::ScanWindowGap,
        Mutant::ScanSkipsSeparatorChild,
        Mutant::DeferredUnlinkBareName,
        Mutant::FlusherLostWakeup,
        Mutant::FlushDuringLockedSwitch,
    ];

    /// A short kebab-case name for command lines and reports.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::HeaderBeforeDataSync => "header-before-data-sync",
            Mutant::HeaderSyncSkipped => "header-sync-skipped",
            Mutant::NoDirSyncAfterRename => "no-dir-sync-after-rename",
            Mutant::TornHeaderAccepted => "torn-header-accepted",
            Mutant::NoHeaderFallback => "no-header-fallback",
            Mutant::TruncateNotDurable => "truncate-not-durable",
            Mutant::CatchupSkipsNewest => "catchup-skips-newest",
            Mutant::CatchupOnlyToH0 => "catchup-only-to-h0",
            Mutant::FlusherWritesOldFile => "flusher-writes-old-file",
            Mutant::PitrOnlyTip => "pitr-only-tip",
            Mutant::PitrTwoPerWindow => "pitr-two-per-window",
            Mutant::PurgeAboveBound => "purge-above-bound",
            Mutant::StaleCountersAfterCatchup => "stale-counters-after-catchup",
            Mutant::FsyncErrorIgnored => "fsync-error-ignored",
            Mutant::SeqnoReused => "seqno-reused",
            Mutant::LockThroughCopy => "lock-through-copy",
            Mutant::CompactFileAuthoritative => "compact-file-authoritative",
            Mutant::FlushRejectsDuplicateKey => "flush-rejects-duplicate-key",
            Mutant::CatchupGivesUp => "catchup-gives-up",
            Mutant::RecoveryScanStuck => "recovery-scan-stuck",
            Mutant::StrictRefusesCleanTail => "strict-refuses-clean-tail",
            Mutant::TrustPageCacheAfterFsyncFailure => "trust-page-cache-after-fsync-eio",
            Mutant::CommitSharesHeaderSector => "commit-shares-header-sector",
            Mutant::StoreDirNotSynced => "store-dir-not-synced",
            Mutant::LowerRevDeletedEarly => "lower-rev-deleted-early",
            Mutant::ShortWriteTakenComplete => "short-write-taken-complete",
            Mutant::ReadErrorAsEof => "read-error-as-eof",
            Mutant::LocalRemovalsNotCarried => "local-removals-not-carried",
            Mutant::CatchupTipReadBeforeLock => "catchup-tip-read-before-lock",
            Mutant::MarkerCountedAtChunkEnd => "marker-counted-at-chunk-end",
            Mutant::ScanWindowGap => "scan-window-gap",
            Mutant::ScanSkipsSeparatorChild => "scan-skips-separator-child",
            Mutant::DeferredUnlinkBareName => "deferred-unlink-bare-name",
            Mutant::FlusherLostWakeup => "flusher-lost-wakeup",
            Mutant::FlushDuringLockedSwitch => "flush-during-locked-switch",
        }
    }

    /// Parse a [`Mutant::name`].
    pub fn from_name(name: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(feature = "mutants")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<Mutant>> = const { std::cell::Cell::new(None) };
}

/// Switch one seeded bug on for this thread (None: the correct engine).
/// Without the `mutants` feature this does nothing.
pub fn set(mutant: Option<Mutant>) {
    #[cfg(feature = "mutants")]
    ACTIVE.with(|a| a.set(mutant));
    #[cfg(not(feature = "mutants"))]
    let _ = mutant;
}

/// The seeded bug switched on for this thread, if any.
pub fn current() -> Option<Mutant> {
    #[cfg(feature = "mutants")]
    return ACTIVE.with(|a| a.get());
    #[cfg(not(feature = "mutants"))]
    None
}

/// Whether `mutant` is switched on for this thread.
#[inline]
pub fn active(mutant: Mutant) -> bool {
    #[cfg(feature = "mutants")]
    return current() == Some(mutant);
    #[cfg(not(feature = "mutants"))]
    {
        let _ = mutant;
        false
    }
}
