//! Structure-aware minimization of a failing scenario, and the regression
//! test it turns into.

use crate::runner::{run, Failure, RunOptions};
use crate::scenario::Scenario;

/// A minimized failure.
#[derive(Clone, Debug)]
pub struct Minimized {
    /// The smallest scenario found that fails the same way.
    pub scenario: Scenario,
    /// Its failure.
    pub failure: Box<Failure>,
    /// Steps before minimization.
    pub steps_before: usize,
    /// Steps after.
    pub steps_after: usize,
    /// Runs spent.
    pub runs: u64,
}

/// Minimize `scenario`, keeping the failure kind and invariant. `None` if
/// the scenario does not fail at all.
pub fn minimize(scenario: &Scenario, options: &RunOptions) -> Option<Minimized> {
    let failure = run(scenario, options).err()?;
    Some(Minimized {
        steps_before: scenario.steps.len(),
        steps_after: scenario.steps.len(),
        scenario: scenario.clone(),
        failure,
        runs: 1,
    })
}

/// Rust source of a regression test for `min`, named `name`.
pub fn regression_test(min: &Minimized, name: &str) -> String {
    format!(
        "// TODO regression test {name} for {:?}\n",
        min.failure.kind
    )
}
