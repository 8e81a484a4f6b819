//! `pitr`: long histories with PiTR compaction and snapshot checks. The input
//! is a scenario, decoded exactly as `crashfuzz repro --target pitr` decodes it
//! (`harness::targets`). `CRASHFUZZ_MUTANT=<name>` switches a seeded bug on.
#![no_main]

use harness::targets::PitrInput;
use libfuzzer_sys::fuzz_target;

// The same allocator as the crashfuzz binary (fuzz/Cargo.toml says why).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fuzz_target!(|input: PitrInput| input.run());
