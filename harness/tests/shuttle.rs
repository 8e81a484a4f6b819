//! Systematic concurrency testing of the background flusher and compactor
//! with [shuttle](https://docs.rs/shuttle) (issues 11 and 18): fixed seeds
//! of the thread-schedule mode of `crashfuzz explore --threads`
//! (`harness::threads`).
//!
//! Inside a shuttle execution every lock, condition variable and thread of
//! the engine is shuttle's (`engine::sync` chooses at construction), so
//! shuttle's schedulers (random and PCT) choose every interleaving of
//! writers, flusher and compactor. Each schedule runs one scenario on the
//! simulated disk; then the oracle checks the store live and after a crash.
//! The properties, for every schedule:
//! - the oracle's check holds (no acknowledged flush lost, exactly one
//!   committed header, the switch is the identity on the state);
//! - no deadlock (shuttle fails a schedule in which every thread waits);
//! - with the compactor paused after every step of its unlocked phases
//!   until the flusher commits, the flusher commits while the copy runs;
//! - a compaction finishes in at most `max_unlocked_catchup_rounds + 1`
//!   catch-up rounds, and the queue drains to zero at shutdown.
//!
//! The seeded bugs must be caught: lock-through-copy and
//! flusher-lost-wakeup as hangs (shuttle reports the deadlock),
//! flusher-writes-old-file and flush-during-locked-switch as divergences.
//! Every failure carries its schedule, and the test replays it.
//!
//! `ci/shuttle.sh` runs this file with more schedules
//! (CRASHFUZZ_SHUTTLE_ITERATIONS).

use engine::mutants::Mutant;
use harness::threads::{self, SchedulerKind, ThreadScenario};
use harness::FailureKind;

/// Schedules per scenario for the correct engine under `cargo test`; each
/// takes about a millisecond. ci/shuttle.sh sets
/// CRASHFUZZ_SHUTTLE_ITERATIONS=1000.
const DEFAULT_ITERATIONS: usize = 200;

fn iterations() -> usize {
    std::env::var("CRASHFUZZ_SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS)
}

fn scenario(seed: u64, pause: bool, purge: bool, scheduler: SchedulerKind) -> ThreadScenario {
    ThreadScenario {
        seed,
        writers: 2,
        ops_per_writer: 6,
        compactions: 2,
        pause,
        purge,
        scheduler,
    }
}

fn must_pass(s: ThreadScenario, schedules: usize) {
    match threads::run(s, None, schedules) {
        Ok(outcome) => assert_eq!(outcome.schedules, schedules as u64),
        Err(found) => panic!("{}", found.to_failure()),
    }
}

#[test]
fn random_schedules_keep_every_invariant() {
    must_pass(
        scenario(1, false, false, SchedulerKind::Random),
        iterations(),
    );
}

#[test]
fn pct_schedules_keep_every_invariant() {
    must_pass(
        scenario(2, false, true, SchedulerKind::Pct(3)),
        iterations(),
    );
}

#[test]
fn the_flusher_commits_while_the_compactor_pauses_in_every_phase() {
    must_pass(
        scenario(3, true, false, SchedulerKind::Random),
        iterations() / 2,
    );
    must_pass(
        scenario(4, true, true, SchedulerKind::Pct(3)),
        iterations() / 2,
    );
}

#[test]
fn seeds_of_the_explorer_pass() {
    for seed in 0..iterations() as u64 / 10 {
        must_pass(ThreadScenario::from_seed(seed), 1);
    }
}

/// The seeded bug must be found as `kind`, and its schedule must replay to
/// the same failure.
fn seeded_bug_is_caught(mutant: Mutant, s: ThreadScenario, kind: FailureKind) {
    let found = match threads::run(s, Some(mutant), 300) {
        Ok(o) => panic!("seeded bug {mutant} escaped {} schedules", o.schedules),
        Err(found) => found,
    };
    let failure = found.to_failure();
    eprintln!("--- caught as expected ---\n{failure}");
    assert_eq!(found.broke.kind, kind, "{failure}");
    let replayed = threads::replay(s, Some(mutant), &found.schedule)
        .expect_err("the schedule replays the failure");
    assert_eq!(replayed.broke.kind, kind, "replayed as: {}", replayed.broke);
    assert_eq!(replayed.broke.check, found.broke.check);
    // The artifact replays it too.
    let again = threads::replay_artifact(&found.artifact(), Some(mutant))
        .expect("a valid artifact")
        .expect_err("the artifact replays the failure");
    assert_eq!(again.broke.check, found.broke.check);
}

#[test]
fn lock_through_copy_is_a_liveness_failure() {
    seeded_bug_is_caught(
        Mutant::LockThroughCopy,
        scenario(5, true, false, SchedulerKind::Random),
        FailureKind::Hang,
    );
}

#[test]
fn flusher_writing_the_old_file_is_a_divergence() {
    // One compaction: a second one could not even start, as the file the
    // store still writes was unlinked by the first.
    let s = ThreadScenario {
        compactions: 1,
        ..scenario(6, false, false, SchedulerKind::Random)
    };
    seeded_bug_is_caught(Mutant::FlusherWritesOldFile, s, FailureKind::Divergence);
}

#[test]
fn a_lost_wakeup_of_the_flusher_is_a_hang() {
    seeded_bug_is_caught(
        Mutant::FlusherLostWakeup,
        scenario(7, false, false, SchedulerKind::Random),
        FailureKind::Hang,
    );
}

#[test]
fn a_flush_during_the_locked_switch_is_a_divergence() {
    seeded_bug_is_caught(
        Mutant::FlushDuringLockedSwitch,
        scenario(8, false, false, SchedulerKind::Random),
        FailureKind::Divergence,
    );
}

/// Replays a schedule: CRASHFUZZ_SHUTTLE_SCENARIO and
/// CRASHFUZZ_SHUTTLE_SCHEDULE (and optionally CRASHFUZZ_SHUTTLE_MUTANT) as a
/// failure prints them. `crashfuzz repro <artifact>` does the same.
#[test]
#[ignore = "replays a schedule given in the environment"]
fn replay_schedule_from_env() {
    let s = std::env::var("CRASHFUZZ_SHUTTLE_SCENARIO")
        .ok()
        .and_then(|s| ThreadScenario::parse(&s))
        .expect("CRASHFUZZ_SHUTTLE_SCENARIO as printed");
    let schedule = std::env::var("CRASHFUZZ_SHUTTLE_SCHEDULE").expect("CRASHFUZZ_SHUTTLE_SCHEDULE");
    let mutant = std::env::var("CRASHFUZZ_SHUTTLE_MUTANT")
        .ok()
        .map(|m| Mutant::from_name(&m).expect("a seeded bug name"));
    match threads::replay(s, mutant, &schedule) {
        Ok(()) => eprintln!("the schedule passes"),
        Err(found) => panic!("{}", found.to_failure()),
    }
}
