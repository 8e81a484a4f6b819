//! `CRASHFUZZ_MUTANT=<seeded bug>`: how the fuzz targets, the regression
//! tests and `crashfuzz stress` children learn which seeded bug to switch on.

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
    if !cfg!(feature = "mutants") {
        panic!("{MUTANT_ENV}={name} needs the harness `mutants` feature");
    }
    let mutant = Mutant::from_name(name).unwrap_or_else(|| {
        panic!("{MUTANT_ENV}={name} is not a seeded bug (see `crashfuzz mutants --list`)")
    });
    Some(mutant)
}
