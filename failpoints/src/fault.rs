//! Faults short of a crash: EIO on write or fsync, and Windows' refusal to
//! rename or unlink an open file.

/// Which non-crash faults a simulated disk injects. The default injects none.
///
/// `*_nth` counters start when the config is set
/// ([`crate::SimVfs::set_faults`]) and fail exactly that one call. Rates are
/// drawn from the disk's seeded PRNG (never from the `fail` crate), so the
/// same seed and the same sequence of calls fail the same calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// Fail the Nth `write_all_at` (1-based) with EIO; nothing is written.
    pub eio_write_nth: Option<u64>,
    /// Fail the Nth file `sync` (1-based) with EIO, Linux style: the file's
    /// unsynced writes and `set_len`s are dropped (its contents revert to
    /// what was last synced) and a later `sync` that succeeds proves nothing.
    pub eio_sync_nth: Option<u64>,
    /// Probability, in millionths, that any one `write_all_at` fails with EIO.
    pub eio_write_per_million: u32,
    /// Probability, in millionths, that any one file `sync` fails with EIO.
    pub eio_sync_per_million: u32,
    /// Windows mode: `rename` or `remove` of a file that has a live handle
    /// (from either path of a rename) fails with "device or resource busy".
    pub windows_mode: bool,
}

/// Calls seen since the fault config was set, for the `*_nth` counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FaultCounters {
    pub(crate) writes: u64,
    pub(crate) syncs: u64,
}
