//! Reach: the rare states where real engines break, named, so that every
//! run can say which it reached and a campaign can say which it never did.
//!
//! A state the generator never reaches is a bug the suite can never find.
//! Each run marks the states it reached (once per run, from the runner's
//! event stream: see `events::Journal`); the counts travel in
//! [`failpoints::Coverage::reach`], so `explore --json`, the coverage file,
//! `crashfuzz catalog --coverage` and the campaign report show each state's
//! share of runs, and flag the ones never reached.

use engine::Phase;
use failpoints::CrashMode;

/// One rare state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// An acknowledged commit's data ended exactly on a block boundary (its
    /// header needed no padding).
    CommitOnBlockBoundary,
    /// ... one byte before a block boundary.
    CommitOneByteBeforeBoundary,
    /// ... one data byte into a block (just past its marker).
    CommitOneByteIntoBlock,
    /// An acknowledged commit held a value of at least two blocks: its chunk
    /// spans two or more block boundaries.
    ChunkSpansTwoBoundaries,
    /// A file grew past recovery's first scan window (64 blocks) before a
    /// crash.
    FileBeyondFirstScanWindow,
    /// A crash cut a compaction and recovery chose the compaction's file.
    CompactionNewFileWon,
    /// The store reached file revision 3 or higher.
    RevisionThreePlus,
    /// Two compactions switched files with no crash between them.
    TwoSwitchesWithoutCrash,
    /// The flush in flight at a crash landed (it is the recovered tip).
    InFlightCommitLanded,
    /// Windows semantics refused a rename or unlink of an open file.
    WindowsBusy,
    /// A compaction deferred the old file's unlink (a reader held it).
    DeferredUnlink,
    /// Recovery skipped a damaged header and fell back to an older one.
    RecoveryFellBack,
    /// A compaction purged tombstones with PiTR on.
    PurgeWithPitr,
    /// A compaction ran two or more catch-up rounds.
    CatchupTwoRounds,
    /// `get` was checked against the model.
    ReadGet,
    /// `scan` over a range was checked against the model.
    ReadScan,
    /// `changes_since` was checked against the model.
    ReadChangesSince,
    /// `snapshot_at_seqno` found a header, checked against the history.
    ReadSnapshotAtSeqno,
    /// A snapshot was held across a compaction's switch and read after it.
    HeldSnapshotAcrossSwitch,
    /// Deletions deferred by a reader were retried and done.
    DeferredUnlinkRetried,
    /// Local documents were read (by name or all) and checked.
    ReadLocal,
    /// A flush that changed local documents was acknowledged while a
    /// compaction ran, and the compaction then switched: its catch-up had
    /// to carry the change.
    LocalChangeCaughtUp,
    /// Steps ran while a compaction step was paused inside (preemption).
    CompactorPaused,
    /// A flush was refused (`Busy`) while the paused compactor held the
    /// store lock for its final round or switch.
    BusyWhilePaused,
    /// A thread schedule ran: the real background flusher and compactor
    /// with writers under shuttle (`explore --threads`, harness::threads).
    ThreadsSchedule,
    /// ... and the flusher found the store lock held by the compactor
    /// (Busy) and came back for it.
    ThreadsBusyRetry,
    /// A crash struck with crash mode `mode` while the compactor was in
    /// `phase` (indices into [`CrashMode::ALL`] and [`PHASES`]).
    CrashIn {
        /// Index into [`CrashMode::ALL`].
        mode: u8,
        /// Index into [`PHASES`].
        phase: u8,
    },
}

/// The compactor's situation at a crash, as the reach list names it.
pub const PHASES: [&str; 4] = ["idle", "copy", "catch-up", "after-switch"];

/// The index into [`PHASES`] of a compaction in `phase` (`None`: idle).
pub fn phase_index(phase: Option<Phase>) -> u8 {
    match phase {
        None | Some(Phase::Done | Phase::Aborted) => 0,
        Some(Phase::Copy) => 1,
        Some(Phase::CatchUp) => 2,
        Some(Phase::Unlink) => 3,
    }
}

impl State {
    /// Every state, in report order.
    pub fn all() -> Vec<State> {
        let mut out = vec![
            State::CommitOnBlockBoundary,
            State::CommitOneByteBeforeBoundary,
            State::CommitOneByteIntoBlock,
            State::ChunkSpansTwoBoundaries,
            State::FileBeyondFirstScanWindow,
            State::CompactionNewFileWon,
            State::RevisionThreePlus,
            State::TwoSwitchesWithoutCrash,
            State::InFlightCommitLanded,
            State::WindowsBusy,
            State::DeferredUnlink,
            State::RecoveryFellBack,
            State::PurgeWithPitr,
            State::CatchupTwoRounds,
            State::ReadGet,
            State::ReadScan,
            State::ReadChangesSince,
            State::ReadSnapshotAtSeqno,
            State::HeldSnapshotAcrossSwitch,
            State::DeferredUnlinkRetried,
            State::ReadLocal,
            State::LocalChangeCaughtUp,
            State::CompactorPaused,
            State::BusyWhilePaused,
            State::ThreadsSchedule,
            State::ThreadsBusyRetry,
        ];
        for mode in 0..CrashMode::ALL.len() as u8 {
            for phase in 0..PHASES.len() as u8 {
                out.push(State::CrashIn { mode, phase });
            }
        }
        out
    }

    /// The stable name (the key in coverage files and reports).
    pub fn name(self) -> String {
        match self {
            State::CommitOnBlockBoundary => "commit-on-block-boundary".into(),
            State::CommitOneByteBeforeBoundary => "commit-one-byte-before-boundary".into(),
            State::CommitOneByteIntoBlock => "commit-one-byte-into-block".into(),
            State::ChunkSpansTwoBoundaries => "chunk-spans-two-boundaries".into(),
            State::FileBeyondFirstScanWindow => "file-beyond-first-scan-window".into(),
            State::CompactionNewFileWon => "compaction-new-file-won".into(),
            State::RevisionThreePlus => "revision-3-plus".into(),
            State::TwoSwitchesWithoutCrash => "two-switches-without-crash".into(),
            State::InFlightCommitLanded => "in-flight-commit-landed".into(),
            State::WindowsBusy => "windows-busy".into(),
            State::DeferredUnlink => "deferred-unlink".into(),
            State::RecoveryFellBack => "recovery-fell-back".into(),
            State::PurgeWithPitr => "purge-with-pitr".into(),
            State::CatchupTwoRounds => "catchup-two-rounds".into(),
            State::ReadGet => "read-get".into(),
            State::ReadScan => "read-scan".into(),
            State::ReadChangesSince => "read-changes-since".into(),
            State::ReadSnapshotAtSeqno => "read-snapshot-at-seqno".into(),
            State::HeldSnapshotAcrossSwitch => "held-snapshot-across-switch".into(),
            State::DeferredUnlinkRetried => "deferred-unlink-retried".into(),
            State::ReadLocal => "read-local".into(),
            State::LocalChangeCaughtUp => "local-change-caught-up".into(),
            State::CompactorPaused => "compactor-paused".into(),
            State::BusyWhilePaused => "busy-while-paused".into(),
            State::ThreadsSchedule => "threads-schedule".into(),
            State::ThreadsBusyRetry => "threads-busy-retry".into(),
            State::CrashIn { mode, phase } => format!(
                "crash:{}@{}",
                CrashMode::ALL[usize::from(mode) % CrashMode::ALL.len()],
                PHASES[usize::from(phase) % PHASES.len()]
            ),
        }
    }
}

/// Every state's name, in report order.
pub fn names() -> Vec<String> {
    State::all().into_iter().map(State::name).collect()
}

/// The states of `names()` that `coverage` never saw reached.
pub fn never_reached(coverage: &failpoints::Coverage) -> Vec<String> {
    names()
        .into_iter()
        .filter(|n| !coverage.reach.contains_key(n))
        .collect()
}

/// The states one run reached (a bit per state, in [`State::all`] order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    bits: u64,
}

/// States before the crash-mode x phase grid.
const FIXED_STATES: u8 = 26;

impl State {
    /// The state's index in [`State::all`].
    fn index(self) -> u8 {
        match self {
            State::CrashIn { mode, phase } => {
                FIXED_STATES
                    + (mode % CrashMode::ALL.len() as u8) * PHASES.len() as u8
                    + phase % PHASES.len() as u8
            }
            other => State::all()
                .iter()
                .position(|s| *s == other)
                .map_or(0, |i| i as u8),
        }
    }
}

impl Reached {
    /// Mark `state` reached.
    pub fn mark(&mut self, state: State) {
        self.bits |= 1 << state.index();
    }

    /// Whether `state` was reached.
    pub fn has(&self, state: State) -> bool {
        self.bits & (1 << state.index()) != 0
    }

    /// Count this run in `coverage`: one run, each reached state once.
    pub fn count_into(&self, coverage: &mut failpoints::Coverage) {
        coverage.runs += 1;
        if self.bits == 0 {
            return;
        }
        for state in State::all() {
            if self.has(state) {
                coverage.reached(&state.name());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_stable() {
        let names = names();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.contains(&"commit-on-block-boundary".to_string()));
        assert_eq!(
            names.len(),
            usize::from(FIXED_STATES) + CrashMode::ALL.len() * PHASES.len()
        );
        assert!(names.len() <= 64, "a run's reached states are a u64");
        for (i, state) in State::all().into_iter().enumerate() {
            assert_eq!(usize::from(state.index()), i, "{}", state.name());
        }
    }

    #[test]
    fn a_run_counts_each_state_once() {
        let mut r = Reached::default();
        r.mark(State::WindowsBusy);
        r.mark(State::WindowsBusy);
        let mut cov = failpoints::Coverage::default();
        r.count_into(&mut cov);
        Reached::default().count_into(&mut cov);
        assert_eq!(cov.runs, 2);
        assert_eq!(cov.reach["windows-busy"], 1);
        assert!((cov.reach_share("windows-busy") - 0.5).abs() < 1e-9);
        assert!(never_reached(&cov).contains(&"deferred-unlink".to_string()));
        assert!(!never_reached(&cov).contains(&"windows-busy".to_string()));
    }
}
