use harness::generate::{scenario, Size};
use harness::{run, RunOptions};

#[test]
fn random_scenarios_pass_on_the_correct_engine() {
    let mut failures = 0;
    for i in 0..300 {
        let s = scenario(1, i, Size::Default);
        if let Err(f) = run(&s, &RunOptions::default()) {
            failures += 1;
            if failures <= 3 {
                eprintln!(
                    "scenario {i}:\n{f}\n--- trace tail:\n{}",
                    f.trace[f.trace.len().saturating_sub(25)..].join("\n")
                );
            }
        }
    }
    assert_eq!(failures, 0);
}
