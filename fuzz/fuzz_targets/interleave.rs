//! `interleave`: flusher and compactor steps interleaved, crashes anywhere,
//! PiTR on and off. The input is a scenario, decoded exactly as `crashfuzz
//! repro --target interleave` decodes it (`harness::targets`).
//! `CRASHFUZZ_MUTANT=<name>` switches a seeded bug on.
#![no_main]

use harness::targets::InterleaveInput;
use libfuzzer_sys::fuzz_target;

// The same allocator as the crashfuzz binary (fuzz/Cargo.toml says why).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fuzz_target!(|input: InterleaveInput| input.run());
