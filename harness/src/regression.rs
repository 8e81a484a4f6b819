//! Support for the regression tests `crashfuzz minimize` writes (see
//! [`crate::minimize::regression_test`]): each spells its scenario out as
//! code and calls [`assert_passes`].
//!
//! Set `CRASHFUZZ_MUTANT=<seeded bug>` to run such a test with that bug
//! switched on: a test made from a seeded bug's failure then fails, which
//! shows it still catches the bug.

use crate::runner::RunOptions;
use crate::scenario::Scenario;
use crate::targets::{run_target, Target};

pub use crate::mutant_env::{mutant_from_env, MUTANT_ENV};

/// The catalog index of the failpoint named `name`, for
/// [`crate::Step::CrashAtFailpoint`]. Panics if there is no such failpoint.
pub fn failpoint(name: &str) -> u8 {
    let index = engine::failpoints::all()
        .position(|n| n == name)
        .unwrap_or_else(|| {
            panic!("no failpoint {name:?} in the catalog (see `crashfuzz catalog`)")
        });
    u8::try_from(index).expect("fewer than 256 failpoints")
}

/// Run `scenario` (with the seeded bug named by [`MUTANT_ENV`], if any) and
/// panic with the full failure report, the trace tail and the replay command
/// if it fails.
pub fn assert_passes(scenario: &Scenario) {
    assert_target_passes(Target::Interleave, scenario);
}

/// [`assert_passes`] for a scenario of the fuzz target `target`, run as
/// that target runs its bytes.
pub fn assert_target_passes(target: Target, scenario: &Scenario) {
    let bytes = scenario.to_bytes();
    // The replay command holds the scenario's bytes: they must read back
    // to this very scenario.
    assert_eq!(
        &target.scenario(&bytes),
        scenario,
        "the scenario does not read back from its bytes as {target} reads them"
    );
    let options = RunOptions {
        keep_trace: true,
        mutant: mutant_from_env(),
        echo: false,
        ..RunOptions::default()
    };
    if let Err(failure) = run_target(target, &bytes, &options) {
        let tail = &failure.trace[failure.trace.len().saturating_sub(40)..];
        let target_flag = match target {
            Target::Interleave => String::new(),
            t => format!(" (add --target {t})"),
        };
        panic!(
            "{failure}{target_flag}\ntrace (last {} lines):\n{}",
            tail.len(),
            tail.join("\n")
        );
    }
}
