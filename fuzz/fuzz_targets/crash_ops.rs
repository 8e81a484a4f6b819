//! `crash_ops`: flushes, crashes and recovery; no compaction. The input is a
//! scenario, decoded exactly as `crashfuzz repro --target crash_ops` decodes it
//! (`harness::targets`). `CRASHFUZZ_MUTANT=<name>` switches a seeded bug on.
#![no_main]

use harness::targets::CrashOpsInput;
use libfuzzer_sys::fuzz_target;

// The same allocator as the crashfuzz binary (fuzz/Cargo.toml says why).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fuzz_target!(|input: CrashOpsInput| input.run());
