//! Faults short of a crash: errors on every kind of call (EIO, ENOSPC, short
//! writes, latent sector errors), how a failed fsync behaves, whether a torn
//! write spares its neighbours, and Windows' refusal to rename or unlink an
//! open file. Also [`FaultKind`], the names every injected fault is counted
//! under in [`crate::Coverage::faults`].

use std::fmt;

/// What a failed file `sync` does to the dirty data it was writing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FsyncFailure {
    /// Linux ("fsyncgate"): the dirty 4 KiB pages that failed stay in the
    /// page cache *marked clean*. Reads still return the new bytes, a later
    /// `sync` returns Ok without writing them, a process restart
    /// ([`crate::SimVfs::restart_process`]) keeps them, a power loss drops
    /// them. A later write into such a page dirties the whole page again,
    /// so the next successful `sync` persists it.
    #[default]
    KeepPages,
    /// The failed dirty data is dropped at once: the visible bytes revert to
    /// the durable ones (a kernel that invalidates the pages).
    Revert,
}

/// The unit a torn write damages when the device has no power-safe
/// overwrite ([`FaultConfig::no_power_safe_overwrite`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TearUnit {
    /// A 512-byte sector ([`crate::SECTOR_BYTES`]).
    Sector,
    /// A 4 KiB page ([`crate::PAGE_BYTES`]), as a device with 4 KiB
    /// physical sectors or an FTL that rewrites whole pages.
    Page,
}

impl TearUnit {
    /// Bytes per unit.
    pub fn bytes(self) -> u64 {
        match self {
            TearUnit::Sector => crate::SECTOR_BYTES,
            TearUnit::Page => crate::PAGE_BYTES,
        }
    }
}

/// Which non-crash faults a simulated disk injects. The default injects none
/// (and a failed fsync, if one is injected, behaves as Linux does).
///
/// `*_nth` counters start when the config is set
/// ([`crate::SimVfs::set_faults`]) and fail exactly that one call of their
/// kind (1-based). Rates are in millionths per call, drawn from the disk's
/// seeded PRNG (never from the `fail` crate), so the same seed and the same
/// sequence of calls fail the same calls. A rate of 0 draws nothing, so
/// adding a fault never shifts the draws of the others when it is off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// Fail the Nth `write_all_at` (1-based) with EIO; nothing is written.
    pub eio_write_nth: Option<u64>,
    /// Fail the Nth file `sync` (1-based) with EIO; what that does to the
    /// dirty data is [`FaultConfig::fsync_failure`].
    pub eio_sync_nth: Option<u64>,
    /// Probability, in millionths, that any one `write_all_at` fails with EIO.
    pub eio_write_per_million: u32,
    /// Probability, in millionths, that any one file `sync` fails with EIO.
    pub eio_sync_per_million: u32,
    /// Windows mode: `rename` or `remove` of a file that has a live handle
    /// (from either path of a rename) fails with "device or resource busy".
    pub windows_mode: bool,

    /// What a failed fsync does (default: Linux's kept clean pages).
    pub fsync_failure: FsyncFailure,
    /// No power-safe overwrite: when a crash tears a write, each lost unit
    /// is damaged *whole* (zeroes, garbage or old contents, per the crash
    /// mode's [`crate::TornFill`]), bytes synced earlier that share the
    /// unit included. `None`: a tear damages only the bytes the write
    /// covered (a device with power-safe overwrite).
    pub no_power_safe_overwrite: Option<TearUnit>,

    /// Fail the Nth `read_exact_at` with EIO, once (a transient error).
    pub eio_read_nth: Option<u64>,
    /// Probability that any one read fails with a transient EIO.
    pub eio_read_per_million: u32,
    /// At the Nth read, a 512-byte sector under it goes bad (a latent
    /// sector error): this and every later read touching it fail with EIO
    /// until a write covers the sector (the drive remaps it), or a
    /// truncation drops it. Bad sectors survive crashes.
    pub latent_error_read_nth: Option<u64>,
    /// Probability that any one read plants a latent sector error.
    pub latent_error_per_million: u32,
    /// Fail the Nth `open` with EIO; nothing is created.
    pub eio_open_nth: Option<u64>,
    /// Fail the Nth `set_len` with EIO; the length does not change.
    pub eio_set_len_nth: Option<u64>,
    /// Fail the Nth `rename` with EIO; nothing is renamed.
    pub eio_rename_nth: Option<u64>,
    /// Fail the Nth `remove` with EIO; nothing is unlinked.
    pub eio_remove_nth: Option<u64>,
    /// Fail the Nth `sync_dir` with EIO; nothing becomes durable (the
    /// directory's changes stay pending, as a failed journal commit).
    pub eio_sync_dir_nth: Option<u64>,
    /// Probability that any one `open`, `set_len`, `rename`, `remove` or
    /// `sync_dir` fails with EIO.
    pub eio_meta_per_million: u32,
    /// The disk's capacity in bytes (the sum of every file's length). A
    /// write or `set_len` that would grow past it fails with ENOSPC; a
    /// write may first land in part (a short write, seed-chosen).
    pub capacity_bytes: Option<u64>,
    /// The Nth `write_all_at` is short: a seed-chosen proper prefix of it
    /// lands, then the call fails ("failed to write whole buffer", as
    /// `write_all` reports a write that made no progress).
    pub short_write_nth: Option<u64>,
    /// Probability that any one `write_all_at` is short.
    pub short_write_per_million: u32,
}

/// Calls seen since the fault config was set, for the `*_nth` counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FaultCounters {
    pub(crate) writes: u64,
    pub(crate) syncs: u64,
    pub(crate) reads: u64,
    pub(crate) opens: u64,
    pub(crate) set_lens: u64,
    pub(crate) renames: u64,
    pub(crate) removes: u64,
    pub(crate) sync_dirs: u64,
}

/// Every kind of fault the simulated disk injects, as counted in
/// [`crate::Coverage::faults`] under [`FaultKind::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FaultKind {
    /// A failed fsync left its pages in the page cache, clean.
    FsyncEioKeptPages,
    /// A failed fsync dropped its dirty data (visible bytes reverted).
    FsyncEioRevert,
    /// A torn write damaged a whole sector, bytes outside the write included.
    TearWholeSector,
    /// A torn write damaged a whole 4 KiB page, bytes outside it included.
    TearWholePage,
    /// One bit of an unsynced surviving byte flipped after a power loss.
    TearUnsyncedBitflip,
    /// A transient EIO on read.
    ReadEio,
    /// A read failed on a latent bad sector.
    LatentSectorError,
    /// A write or `set_len` failed with ENOSPC (maybe after a short write).
    Enospc,
    /// A write landed in part and failed.
    ShortWrite,
    /// EIO on open.
    EioOpen,
    /// EIO on `set_len`.
    EioSetLen,
    /// EIO on rename.
    EioRename,
    /// EIO on remove.
    EioRemove,
    /// EIO on a directory fsync.
    EioSyncDir,
    /// EIO on write.
    EioWrite,
    /// A crash undid an unsynced directory change (create, rename, unlink,
    /// or a directory's own creation in its parent).
    LostDirEntry,
    /// A crash struck a disk that had already crashed and been rebooted or
    /// restarted (a crash during or after recovery).
    RecoveryCrashRepeated,
    /// A crash struck before an I/O call took effect.
    CrashBeforeIo,
    /// A crash struck after an I/O call took effect, before it returned.
    CrashAfterIo,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 19] = [
        FaultKind::FsyncEioKeptPages,
        FaultKind::FsyncEioRevert,
        FaultKind::TearWholeSector,
        FaultKind::TearWholePage,
        FaultKind::TearUnsyncedBitflip,
        FaultKind::ReadEio,
        FaultKind::LatentSectorError,
        FaultKind::Enospc,
        FaultKind::ShortWrite,
        FaultKind::EioOpen,
        FaultKind::EioSetLen,
        FaultKind::EioRename,
        FaultKind::EioRemove,
        FaultKind::EioSyncDir,
        FaultKind::EioWrite,
        FaultKind::LostDirEntry,
        FaultKind::RecoveryCrashRepeated,
        FaultKind::CrashBeforeIo,
        FaultKind::CrashAfterIo,
    ];

    /// A stable kebab-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::FsyncEioKeptPages => "fsync-eio-kept-pages",
            FaultKind::FsyncEioRevert => "fsync-eio-revert",
            FaultKind::TearWholeSector => "tear-whole-sector",
            FaultKind::TearWholePage => "tear-whole-page",
            FaultKind::TearUnsyncedBitflip => "tear-unsynced-bitflip",
            FaultKind::ReadEio => "read-eio",
            FaultKind::LatentSectorError => "latent-sector-error",
            FaultKind::Enospc => "enospc",
            FaultKind::ShortWrite => "short-write",
            FaultKind::EioOpen => "eio-open",
            FaultKind::EioSetLen => "eio-set-len",
            FaultKind::EioRename => "eio-rename",
            FaultKind::EioRemove => "eio-remove",
            FaultKind::EioSyncDir => "eio-sync-dir",
            FaultKind::EioWrite => "eio-write",
            FaultKind::LostDirEntry => "lost-dir-entry",
            FaultKind::RecoveryCrashRepeated => "recovery-crash-repeated",
            FaultKind::CrashBeforeIo => "crash-before-io",
            FaultKind::CrashAfterIo => "crash-after-io",
        }
    }

    /// Parse a [`FaultKind::name`].
    pub fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
