//! `io_errors`: EIO on writes and fsyncs; no unsynced flush acknowledged, the
//! store refuses work after the error. The input is a scenario, decoded exactly
//! as `crashfuzz repro --target io_errors` decodes it (`harness::targets`).
//! `CRASHFUZZ_MUTANT=<name>` switches a seeded bug on.
#![no_main]

use harness::targets::IoErrorsInput;
use libfuzzer_sys::fuzz_target;

// The same allocator as the crashfuzz binary (fuzz/Cargo.toml says why).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fuzz_target!(|input: IoErrorsInput| input.run());
