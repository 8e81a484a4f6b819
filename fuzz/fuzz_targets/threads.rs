//! `threads`: the real background flusher and compactor with writers under
//! shuttle's random or PCT scheduler (`harness::threads`, the thread mode of
//! `crashfuzz explore --threads`). The input picks the scenario and its
//! schedule seed; the oracle checks the store live and after a final crash.
//! A failure writes a thread artifact that `crashfuzz repro` replays,
//! schedule and all. `CRASHFUZZ_MUTANT=<name>` switches a seeded bug on.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The same allocator as the crashfuzz binary (fuzz/Cargo.toml says why).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fuzz_target!(|data: &[u8]| harness::threads::run_fuzz_input(data));
