//! `recover_corrupt`: a valid store image, damaged; open, verify and read must
//! not panic or hang and show only committed states. The input is a scenario,
//! decoded exactly as `crashfuzz repro --target recover_corrupt` decodes it
//! (`harness::targets`). `CRASHFUZZ_MUTANT=<name>` switches a seeded bug on.
#![no_main]

use harness::targets::RecoverCorruptInput;
use libfuzzer_sys::fuzz_target;

// The same allocator as the crashfuzz binary (fuzz/Cargo.toml says why).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fuzz_target!(|input: RecoverCorruptInput| input.run());
