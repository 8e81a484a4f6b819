//! Support for the regression tests `crashfuzz minimize` writes (see
//! [`crate::minimize::regression_test`]): each spells its scenario out as
//! code and calls [`assert_passes`].
//!
//! Set `CRASHFUZZ_MUTANT=<seeded bug>` to run such a test with that bug
//! switched on: a test made from a seeded bug's failure then fails, which
//! shows it still catches the bug.

use crate::runner::{run, RunOptions};
use crate::scenario::Scenario;
use engine::mutants::Mutant;

/// The environment variable naming a seeded bug to switch on.
pub const MUTANT_ENV: &str = "CRASHFUZZ_MUTANT";

/// The seeded bug named by [`MUTANT_ENV`], if set. Panics on an unknown name
/// or when the `mutants` feature is off (a silent no-op would make the test
/// pass for the wrong reason).
pub fn mutant_from_env() -> Option<Mutant> {
    let name = std::env::var(MUTANT_ENV).ok()?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    assert!(
        cfg!(feature = "mutants"),
        "{MUTANT_ENV}={name} needs the harness `mutants` feature"
    );
    let mutant = Mutant::from_name(name);
    assert!(
        mutant.is_some(),
        "{MUTANT_ENV}={name} is not a seeded bug (see `crashfuzz mutants --list`)"
    );
    mutant
}

/// The catalog index of the failpoint named `name`, for
/// [`crate::Step::CrashAtFailpoint`]. Panics if there is no such failpoint.
pub fn failpoint(name: &str) -> u8 {
    let index = engine::failpoints::all().position(|n| n == name);
    assert!(
        index.is_some(),
        "no failpoint {name:?} in the catalog (see `crashfuzz catalog`)"
    );
    index.unwrap_or(0) as u8
}

/// Run `scenario` (with the seeded bug named by [`MUTANT_ENV`], if any) and
/// panic with the full failure report, the trace tail and the replay command
/// if it fails.
pub fn assert_passes(scenario: &Scenario) {
    // The replay command holds the scenario's bytes: they must read back
    // to this very scenario.
    assert_eq!(
        &scenario.normalized(),
        scenario,
        "the scenario has fields out of range"
    );
    let options = RunOptions {
        keep_trace: true,
        mutant: mutant_from_env(),
        echo: false,
    };
    if let Err(failure) = run(scenario, &options) {
        let tail = &failure.trace[failure.trace.len().saturating_sub(40)..];
        panic!(
            "{failure}\ntrace (last {} lines):\n{}",
            tail.len(),
            tail.join("\n")
        );
    }
}
