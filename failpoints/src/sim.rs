//! `SimVfs`: an in-memory disk that knows exactly what is durable.
//!
//! # The fault model
//! The disk keeps, per file, the bytes as of the last successful `sync`
//! (*durable*), the ordered log of writes and `set_len`s since then
//! (*pending*), and the bytes the engine sees (*visible* = durable + pending).
//! Per directory it keeps the entries (name -> file) as of the last
//! successful `sync_dir`, the log of creates, renames and unlinks since, and
//! the visible entries. A file's bytes and its directory entry are durable
//! independently, as on Linux: a synced file whose create was never
//! dir-synced vanishes at a crash, and an unlink that was never dir-synced is
//! undone.
//!
//! Faults it injects, and what the engine must do about each:
//!
//! | fault | how it is triggered | the engine must |
//! |---|---|---|
//! | crash, [`CrashMode::DropUnsynced`]: only synced bytes and entries survive | [`SimVfs::crash`], an armed [`CrashTrigger`] (Nth hit of a failpoint, Nth I/O call of a kind, before or after it takes effect) | survive: recover the last acknowledged state or a later attempted one |
//! | crash, [`CrashMode::KeepAll`]: everything survives (a process crash) | same | survive |
//! | crash, [`CrashMode::KeepSubset`]: any subset of unsynced writes/`set_len`s, applied in any order; a prefix of each directory's unsynced entry changes | same | survive |
//! | crash, [`CrashMode::Torn`]: as `KeepSubset`, and surviving writes torn at 512-byte sectors, lost sectors old, zeroed or garbage | same | survive: checksums reject torn records, recovery falls back |
//! | crash, [`CrashMode::LoseSetLen`]: every unsynced write survives but no unsynced growth or truncation | same | survive: a truncation is durable only once synced |
//! | crash, enumerated: image `#i` of every image the model allows under [`crate::ImageBounds`] (every subset of each file's unsynced operations, every order where they overlap, at most one torn sector per file from a fill alphabet, every prefix of each directory's unsynced changes); image #0 is the `DropUnsynced` image. [`SimVfs::crash_image_count`], [`SimVfs::crash_image_digest`] | [`SimVfs::reboot_into`], or [`SimVfs::set_image_choice`] for the next power-loss reboots (`crashfuzz exhaust`) | survive every one of them |
//! | a crash while recovering from a crash | arm a new trigger after [`SimVfs::reboot`] | survive, any number of times (`recovery-crash-repeated`) |
//! | a crash undoes a directory's own creation: [`Vfs::create_dir_all`] makes each new directory an unsynced entry of its parent | any crash before the parent's `sync_dir` | fsync every created directory's parent before relying on it (`lost-dir-entry`) |
//! | no power-safe overwrite: a torn write damages its whole sector or 4 KiB page, synced bytes sharing it included | [`FaultConfig::no_power_safe_overwrite`] with a [`CrashMode::Torn`] crash | never share a sector or page between an acknowledged record and a later write (`tear-whole-sector`, `tear-whole-page`) |
//! | a sub-sector tear of never-synced bytes: one bit of one surviving unsynced byte flips, in the newest header block if any | [`SimVfs::reboot_with_bitflip_unsynced`] | reject it by checksum and fall back (`tear-unsynced-bitflip`) |
//! | EIO on `write_all_at`: nothing written | [`FaultConfig`] `eio_write_*` | report it, poison the store, never acknowledge (`eio-write`) |
//! | EIO on `sync`, Linux style ([`FsyncFailure::KeepPages`], the default): the failed dirty 4 KiB pages stay readable and *clean*; a later successful `sync` does not write them, a write into one dirties the whole page again, a process restart keeps them, a power loss drops them | [`FaultConfig`] `eio_sync_*` | report it, poison the store, never acknowledge; after a restart never accept a header that only the page cache holds without writing it afresh (`fsync-eio-kept-pages`) |
//! | EIO on `sync`, revert style ([`FsyncFailure::Revert`]): the file's unsynced changes are dropped at once | [`FaultConfig::fsync_failure`] | as above (`fsync-eio-revert`) |
//! | EIO on read, transient | [`FaultConfig`] `eio_read_*` | fail the operation or the open with a typed I/O error; never take it as the end of the data (`read-eio`) |
//! | latent sector error: a 512-byte sector reads EIO until a write covers it; survives crashes | [`FaultConfig`] `latent_error_*`, [`SimVfs::add_latent_sector_error`] | as above; keep every revision an operator could salvage from (`latent-sector-error`) |
//! | ENOSPC past [`FaultConfig::capacity_bytes`] (the sum of file lengths), after a seed-chosen part of the write landed | a write or `set_len` that would grow past it | fail the flush, poison, never acknowledge (`enospc`) |
//! | short write: a proper prefix lands, then "failed to write whole buffer" (`WriteZero`) | [`FaultConfig`] `short_write_*` | never take it as complete (`short-write`) |
//! | EIO on `open`, `set_len`, `rename`, `remove`, `sync_dir`: the call does nothing (a failed `sync_dir` leaves the directory's changes pending) | [`FaultConfig`] `eio_*_nth`, `eio_meta_per_million` | fail the operation cleanly; a compaction before its rename aborts, after it poisons (`eio-open`, `eio-set-len`, `eio-rename`, `eio-remove`, `eio-sync-dir`) |
//! | Windows mode: `rename`/`remove` of a file with a live handle fails with "device or resource busy" | [`FaultConfig::windows_mode`] | fail the compaction switch (or retry after closing) without losing data; the old revision stays authoritative |
//!
//! Every injected fault is counted in [`Coverage::faults`] under its
//! [`crate::FaultKind`] name (in parentheses above); crashes are counted too
//! (`crash-before-io`, `crash-after-io`, and `recovery-crash-repeated` for a
//! triggered crash on a disk that already crashed once). Errors are
//! recognised with [`is_simulated_eio`], [`is_simulated_enospc`],
//! [`is_simulated_short_write`], [`is_busy`] and [`is_injected_fault`]
//! (any of them); the crash error with [`is_simulated_crash`].
//!
//! From the crash instant on the disk is *frozen*: every call, on the
//! [`Vfs`] or on any handle, fails with an error saying "simulated crash", so
//! nothing the engine does afterwards (even in `Drop`) reaches the disk.
//! [`SimVfs::reboot`] computes the post-crash image (durable = visible =
//! image, nothing pending), unfreezes, and invalidates every handle opened
//! before: they keep failing, and only new opens see the image.
//! A crash can strike before or after any call of any [`IoKind`] (`len` and
//! `create_dir_all` included), during recovery as well.
//!
//! What it deliberately does not model: renames across directories are
//! refused. Overlapping unsynced writes may land in any order (the older one
//! winning), which is harsher than a page cache; the append-only engine never
//! overlaps writes within one sync barrier. A failed directory fsync is not
//! given the page-cache semantics of a failed file fsync (ext4 aborts its
//! journal instead).
//!
//! All randomness comes from the disk's seed through ChaCha8: stream 0 for
//! fault rates, stream `1 + k` for the image of the `k`-th crash. The same
//! seed and the same sequence of calls give byte-identical images.
//!
//! # Change tracking
//! Each file also notes every change to bytes it already held (a write
//! that changes one, a truncation, a failed fsync that reverts pages, every
//! crash image, a bit flip; appends are not changes), so that
//! `VfsFile::version` and `unchanged_prefix` tell a cache exactly how far a
//! file is unchanged since it read it (`harness::extract`). Noting is not an
//! I/O call: it draws no fault and counts nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use engine::vfs::{FileVersion, OpenMode, Vfs, VfsFile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::crash::{self, CrashMode, FileOp, TearStats, PAGE_BYTES, SECTOR_BYTES};
use crate::fault::{FaultConfig, FaultCounters, FaultKind, FsyncFailure};
use crate::images::{self, ImageBounds, ImageChoice, ImageCount, SimEvent};
use crate::trigger::{ArmError, Armed, CrashCause, CrashRecord, CrashTrigger, IoCounts, IoKind};
use crate::Coverage;

/// The largest file the simulator holds. Writes and `set_len`s past it fail
/// (with "File too large") instead of exhausting memory.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

type FileId = u64;

const CRASH_TAG: &str = "simulated crash";
const EIO_TAG: &str = "simulated EIO";
const ENOSPC_TAG: &str = "simulated ENOSPC";
const SHORT_TAG: &str = "simulated short write";
const BUSY_TAG: &str = "device or resource busy";

/// Whether `err` (or an error whose message wraps it) is the error every
/// call returns once the disk crashed.
pub fn is_simulated_crash(err: &io::Error) -> bool {
    err.to_string().contains(CRASH_TAG)
}

/// Whether `err` is an EIO injected by [`FaultConfig`], of any kind: on
/// read (transient or a latent bad sector), write, fsync, open, `set_len`,
/// rename, remove or directory fsync.
pub fn is_simulated_eio(err: &io::Error) -> bool {
    err.to_string().contains(EIO_TAG)
}

/// Whether `err` is an EIO injected on a read (transient, or a latent bad
/// sector): the data under it could not be read, so nothing about it is
/// known.
pub fn is_simulated_read_error(err: &io::Error) -> bool {
    let msg = err.to_string();
    msg.contains(EIO_TAG) && msg.contains(": read")
}

/// Whether `err` is an ENOSPC injected by [`FaultConfig::capacity_bytes`]
/// (its kind is `StorageFull` where the toolchain has it; its message says
/// "No space left on device (os error 28)" either way).
pub fn is_simulated_enospc(err: &io::Error) -> bool {
    let msg = err.to_string();
    msg.contains(ENOSPC_TAG) || err.raw_os_error() == Some(28) || msg.contains("(os error 28)")
}

/// Whether `err` is a short write injected by [`FaultConfig`] (part of the
/// bytes landed, then the call failed).
pub fn is_simulated_short_write(err: &io::Error) -> bool {
    err.to_string().contains(SHORT_TAG)
}

/// Whether `err` is any fault [`FaultConfig`] injects: EIO of any kind,
/// ENOSPC, a short write, or Windows mode's "device or resource busy".
/// A crash is not a fault in this sense; see [`is_simulated_crash`].
pub fn is_injected_fault(err: &io::Error) -> bool {
    is_simulated_eio(err)
        || is_simulated_enospc(err)
        || is_simulated_short_write(err)
        || is_busy(err)
}

/// Whether `err` is Windows mode's "device or resource busy".
pub fn is_busy(err: &io::Error) -> bool {
    err.to_string().contains(BUSY_TAG)
}

fn crash_error() -> io::Error {
    io::Error::other(format!("{CRASH_TAG}: the disk is frozen until reboot"))
}

fn stale_handle_error() -> io::Error {
    io::Error::other(format!(
        "{CRASH_TAG}: this handle was opened before the last crash"
    ))
}

fn eio_error(what: &str, path: &Path) -> io::Error {
    io::Error::other(format!(
        "{EIO_TAG}: {what} of {} failed: Input/output error (os error 5)",
        path.display()
    ))
}

fn enospc_error(path: &Path, landed: usize) -> io::Error {
    io::Error::other(format!(
        "{ENOSPC_TAG}: write to {} failed after {landed} bytes: No space left on device (os error 28)",
        path.display()
    ))
}

fn short_write_error(path: &Path, landed: usize, len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::WriteZero,
        format!(
            "{SHORT_TAG}: {landed} of {len} bytes written to {}: failed to write whole buffer",
            path.display()
        ),
    )
}

/// The aligned units of `unit` bytes that `start..end` touches.
fn units(start: u64, end: u64, unit: u64) -> std::ops::Range<u64> {
    if end <= start {
        return 0..0;
    }
    start / unit..end.div_ceil(unit)
}

fn busy_error(what: &str, path: &Path) -> io::Error {
    // The kind is what the engine tests (`engine::vfs::is_file_busy`); the
    // text is what `is_busy` tells a simulated one by.
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        format!(
            "{BUSY_TAG} (os error 16): {what} {} while it is open (simulated Windows)",
            path.display()
        ),
    )
}

fn not_found(what: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{what} {}: No such file or directory", path.display()),
    )
}

fn too_large(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{}: File too large (the simulator holds at most {MAX_FILE_BYTES} bytes)",
        path.display()
    ))
}

/// Split a file path into its directory and its name.
fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => Ok((dir.to_path_buf(), name.to_string_lossy().into_owned())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )),
    }
}

/// The end of an operation, checked against [`MAX_FILE_BYTES`].
fn checked_end(offset: u64, len: usize, path: &Path) -> io::Result<u64> {
    u64::try_from(len)
        .ok()
        .and_then(|len| offset.checked_add(len))
        .filter(|end| *end <= MAX_FILE_BYTES)
        .ok_or_else(|| too_large(path))
}

#[derive(Clone, Debug, Default)]
struct FileState {
    durable: Vec<u8>,
    pending: Vec<FileOp>,
    visible: Vec<u8>,
    /// Pages ([`PAGE_BYTES`]) whose writeback failed and that the page cache
    /// keeps *clean*: their visible bytes are not durable and no later
    /// successful `sync` writes them, until a write dirties them again.
    failed_pages: BTreeSet<u64>,
    /// Latent bad sectors ([`SECTOR_BYTES`]): reads touching them fail.
    bad_sectors: BTreeSet<u64>,
    /// Every change to bytes `visible` already held, oldest first: the
    /// lowest offset it changed (a truncation counts at the new length).
    /// Its length is the file's generation ([`VfsFile::version`]); appends
    /// are not changes.
    changes: Vec<u64>,
}

/// The first index where two slices of the same length differ: compared a
/// page at a time (a `memcmp` each), then byte by byte in the page that
/// differs.
fn first_mismatch(a: &[u8], b: &[u8]) -> Option<usize> {
    const STEP: usize = 4096;
    let mut at = 0;
    while at < a.len() {
        let end = (at + STEP).min(a.len());
        if a[at..end] != b[at..end] {
            return (at..end).find(|i| a[*i] != b[*i]);
        }
        at = end;
    }
    None
}

/// The capacity a new file's byte vectors start with.
const INITIAL_FILE_ROOM: usize = 128 * 1024;

/// Where `new` stops extending `old`: the first byte that differs, or the
/// new length if it is shorter; `None` when `old` is a prefix of `new`.
fn difference(old: &[u8], new: &[u8]) -> Option<u64> {
    let common = old.len().min(new.len());
    first_mismatch(&old[..common], &new[..common])
        .or((old.len() > new.len()).then_some(common))
        .map(|at| at as u64)
}

impl FileState {
    /// Replace the visible and the durable bytes with a crash image (built
    /// in the old durable bytes' allocation), noting a change unless the old
    /// visible bytes are a prefix of it.
    fn set_image(&mut self, image: Vec<u8>) {
        // Only the bytes past the first difference are copied.
        let keep = match difference(&self.visible, &image) {
            Some(at) => {
                self.changes.push(at);
                at as usize
            }
            None => self.visible.len(),
        };
        self.visible.truncate(keep);
        self.visible.extend_from_slice(&image[keep..]);
        self.durable = image;
    }

    /// The visible bytes become the durable ones (a failed fsync that drops
    /// the dirty pages).
    fn revert_to_durable(&mut self) {
        let keep = match difference(&self.visible, &self.durable) {
            Some(at) => {
                self.changes.push(at);
                at as usize
            }
            None => self.visible.len(),
        };
        self.visible.truncate(keep);
        self.visible.extend_from_slice(&self.durable[keep..]);
    }

    /// Note a write of `bytes` at `offset` before it is applied.
    fn note_write(&mut self, offset: u64, bytes: &[u8]) {
        let len = self.visible.len() as u64;
        if offset >= len || bytes.is_empty() {
            return;
        }
        let start = offset as usize;
        let overlap = (self.visible.len() - start).min(bytes.len());
        if let Some(i) = first_mismatch(&self.visible[start..start + overlap], &bytes[..overlap]) {
            self.changes.push(offset + i as u64);
        }
    }

    /// Note a truncation to `len`.
    fn note_set_len(&mut self, len: u64) {
        if len < self.visible.len() as u64 {
            self.changes.push(len);
        }
    }

    /// The length of the prefix of `visible` unchanged since `generation`.
    fn unchanged_prefix(&self, generation: u64) -> u64 {
        let from = usize::try_from(generation)
            .unwrap_or(usize::MAX)
            .min(self.changes.len());
        self.changes[from..]
            .iter()
            .copied()
            .fold(self.visible.len() as u64, u64::min)
    }
}

/// One unsynced change to a directory's entries.
#[derive(Clone, Debug)]
enum DirOp {
    Create {
        name: String,
        id: FileId,
    },
    Rename {
        from: String,
        to: String,
        id: FileId,
        replaced: Option<FileId>,
    },
    Unlink {
        name: String,
        id: FileId,
    },
    /// A subdirectory `name` was created.
    MkDir {
        name: String,
    },
}

impl DirOp {
    fn apply(&self, entries: &mut BTreeMap<String, FileId>) {
        match self {
            DirOp::Create { name, id } => {
                entries.insert(name.clone(), *id);
            }
            DirOp::Rename { from, to, id, .. } => {
                entries.remove(from);
                entries.insert(to.clone(), *id);
            }
            DirOp::Unlink { name, .. } => {
                entries.remove(name);
            }
            DirOp::MkDir { .. } => {}
        }
    }

    fn ids(&self) -> impl Iterator<Item = FileId> {
        let (a, b) = match self {
            DirOp::Create { id, .. } | DirOp::Unlink { id, .. } => (Some(*id), None),
            DirOp::Rename { id, replaced, .. } => (Some(*id), *replaced),
            DirOp::MkDir { .. } => (None, None),
        };
        a.into_iter().chain(b)
    }
}

#[derive(Clone, Debug, Default)]
struct DirState {
    durable: BTreeMap<String, FileId>,
    pending: Vec<DirOp>,
    visible: BTreeMap<String, FileId>,
}

#[derive(Debug)]
struct State {
    seed: u64,
    fault_rng: ChaCha8Rng,
    faults: FaultConfig,
    fault_counters: FaultCounters,
    forced_mode: Option<CrashMode>,
    /// Some from the crash instant until reboot.
    frozen: Option<CrashRecord>,
    /// Crashes already rebooted from, oldest first.
    crashes: Vec<CrashRecord>,
    /// Bumped at every reboot; handles of an older epoch are dead.
    epoch: u64,
    next_id: FileId,
    files: BTreeMap<FileId, FileState>,
    dirs: BTreeMap<PathBuf, DirState>,
    /// Live handles per file, this epoch.
    open_handles: BTreeMap<FileId, u64>,
    io_counts: IoCounts,
    armed: Option<Armed>,
    coverage: Coverage,
    last_failpoint: Option<&'static str>,
    /// Crash images picked from the enumeration, and the log it keeps.
    image_choice: Option<ImageChoice>,
    /// Power-loss reboots since the image choice was set.
    image_reboots: usize,
    /// An armed pause (see [`SimVfs::arm_pause`]).
    pause: Option<PauseArm>,
}

/// Where [`SimVfs::arm_pause`] may pause the calling thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PausePoint {
    /// At a hit of this failpoint.
    Failpoint(&'static str),
    /// Before a call of this kind takes effect.
    Io(IoKind),
}

impl fmt::Display for PausePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PausePoint::Failpoint(name) => f.write_str(name),
            PausePoint::Io(kind) => write!(f, "a {kind:?} call"),
        }
    }
}

/// Called, with the sim's lock released, when an armed pause is reached.
pub type PauseHook = Arc<dyn Fn(PausePoint) + Send + Sync>;

struct PauseArm {
    at: PausePoint,
    nth: u64,
    seen: u64,
    hook: PauseHook,
}

impl fmt::Debug for PauseArm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PauseArm")
            .field("at", &self.at)
            .field("nth", &self.nth)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl PauseArm {
    /// Count one occurrence of `point`; true when it is the nth.
    fn count(&mut self, point: PausePoint) -> bool {
        if self.at != point {
            return false;
        }
        self.seen += 1;
        self.seen == self.nth
    }
}

/// The components of a pending crash's image space: directories with
/// unsynced changes (and how many), files with unsynced operations (and
/// their choices).
struct ImagePlan {
    dirs: Vec<(PathBuf, usize)>,
    files: Vec<(FileId, Vec<images::FileChoice>)>,
    count: ImageCount,
}

impl ImagePlan {
    fn radices(&self) -> Vec<u64> {
        self.dirs
            .iter()
            .map(|(_, n)| *n as u64 + 1)
            .chain(self.files.iter().map(|(_, c)| c.len() as u64))
            .collect()
    }
}

/// The simulated disk. Cheap to clone: clones share one disk. See the
/// module documentation for the fault model.
#[derive(Clone)]
pub struct SimVfs {
    shared: Arc<Mutex<State>>,
}

impl fmt::Debug for SimVfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shared.try_lock() {
            Ok(st) => f
                .debug_struct("SimVfs")
                .field("seed", &st.seed)
                .field("crashed", &st.frozen.is_some())
                .field("crashes", &st.crashes.len())
                .field("files", &st.files.len())
                .finish_non_exhaustive(),
            Err(_) => f.debug_struct("SimVfs").finish_non_exhaustive(),
        }
    }
}

impl SimVfs {
    /// An empty disk (no directories) driven by `seed`, with no faults.
    pub fn new(seed: u64) -> SimVfs {
        SimVfs::with_faults(seed, FaultConfig::default())
    }

    /// An empty disk driven by `seed`, injecting `faults`.
    pub fn with_faults(seed: u64, faults: FaultConfig) -> SimVfs {
        let mut fault_rng = ChaCha8Rng::seed_from_u64(seed);
        fault_rng.set_stream(0);
        SimVfs {
            shared: Arc::new(Mutex::new(State {
                seed,
                fault_rng,
                faults,
                fault_counters: FaultCounters::default(),
                forced_mode: None,
                frozen: None,
                crashes: Vec::new(),
                epoch: 0,
                next_id: 0,
                files: BTreeMap::new(),
                dirs: BTreeMap::new(),
                open_handles: BTreeMap::new(),
                io_counts: IoCounts::default(),
                armed: None,
                coverage: Coverage::default(),
                last_failpoint: None,
                image_choice: None,
                image_reboots: 0,
                pause: None,
            })),
        }
    }

    /// This disk as the engine's `Arc<dyn Vfs>`.
    pub fn as_vfs(&self) -> Arc<dyn Vfs> {
        Arc::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (every
        // mutation is completed under it before anything can panic).
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The seed everything random on this disk comes from.
    pub fn seed(&self) -> u64 {
        self.lock().seed
    }

    /// Replace the fault config; its `*_nth` counters restart from zero.
    pub fn set_faults(&self, faults: FaultConfig) {
        let mut st = self.lock();
        st.faults = faults;
        st.fault_counters = FaultCounters::default();
    }

    /// The fault config in force.
    pub fn faults(&self) -> FaultConfig {
        self.lock().faults.clone()
    }

    /// Force the mode of every later crash image (`None`: choose per crash
    /// from the seed, the default).
    pub fn set_crash_mode(&self, mode: Option<CrashMode>) {
        self.lock().forced_mode = mode;
    }

    /// Arm `trigger`, replacing any armed one. Counting starts now. A crash,
    /// whatever its cause, disarms; arm again after [`SimVfs::reboot`] to
    /// crash during recovery.
    pub fn arm(&self, trigger: CrashTrigger) -> Result<(), ArmError> {
        // An image choice's substitution ([`ImageChoice::retarget`]).
        let trigger = {
            let st = self.lock();
            st.image_choice
                .as_ref()
                .and_then(|c| c.retarget.iter().find(|(from, _)| *from == trigger))
                .map_or(trigger, |(_, to)| to.clone())
        };
        if trigger.nth() == 0 {
            return Err(ArmError::ZeroNth);
        }
        if let CrashTrigger::AtFailpoint { name, .. } = &trigger {
            if !engine::failpoints::all().any(|n| n == name) {
                return Err(ArmError::UnknownFailpoint(name.clone()));
            }
        }
        let remaining = trigger.nth();
        let mut st = self.lock();
        st.armed = Some(Armed { trigger, remaining });
        st.log(|st| SimEvent::Armed {
            io: st.io_counts,
            hits: st.coverage.hits.clone(),
        });
        Ok(())
    }

    /// Disarm; returns the trigger that was armed, if any.
    pub fn disarm(&self) -> Option<CrashTrigger> {
        let mut st = self.lock();
        st.log(|st| SimEvent::Disarm {
            io: st.io_counts,
            hits: st.coverage.hits.clone(),
        });
        st.armed.take().map(|a| a.trigger)
    }

    /// Take the next power-loss reboots' images from the enumeration
    /// ([`ImageChoice::picks`]) and log to [`ImageChoice::log`] from now on;
    /// `None` goes back to crash modes.
    pub fn set_image_choice(&self, choice: Option<ImageChoice>) {
        let mut st = self.lock();
        st.image_choice = choice;
        st.image_reboots = 0;
    }

    /// How many crash images the pending crash (or, on a live disk, a crash
    /// now) allows under `bounds`; see [`crate::images`].
    pub fn crash_image_count(&self, bounds: &ImageBounds) -> ImageCount {
        self.lock().image_plan(bounds).count
    }

    /// The [`SimVfs::image_digest`] image `index` of the pending crash would
    /// have, without rebooting; `None` past the enumeration.
    pub fn crash_image_digest(&self, bounds: &ImageBounds, index: u64) -> Option<String> {
        let st = self.lock();
        let plan = st.image_plan(bounds);
        (index < plan.count.enumerated).then(|| st.preview_digest(&plan, index))
    }

    /// Reboot into crash image `index` of the enumeration under `bounds`
    /// (a live disk is crashed first); `None`, changing nothing, past the
    /// enumeration.
    pub fn reboot_into(&self, bounds: &ImageBounds, index: u64) -> Option<CrashRecord> {
        let mut st = self.lock();
        if st.frozen.is_none() {
            st.crash_now(CrashCause::Manual);
        }
        let plan = st.image_plan(bounds);
        if index >= plan.count.enumerated {
            return None;
        }
        let Some(mut record) = st.frozen.take() else {
            unreachable!("crash_now freezes the disk");
        };
        record.mode = Some(st.apply_plan(&plan, index));
        st.crashes.push(record.clone());
        st.epoch += 1;
        st.open_handles.clear();
        st.last_failpoint = None;
        st.collect_garbage();
        Some(record)
    }

    /// The armed trigger and how many more hits or calls until it fires.
    pub fn armed(&self) -> Option<(CrashTrigger, u64)> {
        self.lock()
            .armed
            .as_ref()
            .map(|a| (a.trigger.clone(), a.remaining))
    }

    /// Crash now (a no-op if already crashed): the disk freezes.
    pub fn crash(&self) {
        let mut st = self.lock();
        if st.frozen.is_none() {
            st.crash_now(CrashCause::Manual);
        }
    }

    /// Whether the disk is frozen by a crash not yet rebooted from.
    pub fn is_crashed(&self) -> bool {
        self.lock().frozen.is_some()
    }

    /// The crash the disk is frozen in, if any.
    pub fn pending_crash(&self) -> Option<CrashRecord> {
        self.lock().frozen.clone()
    }

    /// Turn the disk into its post-crash image and unfreeze it. A live disk
    /// is crashed first (a power cut now). The image keeps everything synced
    /// and, per the [`CrashMode`] (forced, or chosen from the seed), some of
    /// what was not. Every handle opened before stays dead.
    pub fn reboot(&self) -> CrashRecord {
        self.reboot_inner(false)
    }

    /// [`SimVfs::reboot`], then a sub-sector tear of never-synced bytes: in
    /// each file whose post-crash image kept bytes past its durable length,
    /// one bit of one such byte flips. The byte is chosen from the seed, in
    /// the newest header block among those bytes when there is one (a
    /// block at a 4096-aligned offset whose first byte is
    /// `engine::layout::MARKER_HEADER`: inside its length, checksum or
    /// first fields), else anywhere among them. Counted as
    /// `tear-unsynced-bitflip`. This is what a harness used to do by hand
    /// after a reboot; the sim does it from the crash's own PRNG stream.
    pub fn reboot_with_bitflip_unsynced(&self) -> CrashRecord {
        self.reboot_inner(true)
    }

    fn reboot_inner(&self, bitflip: bool) -> CrashRecord {
        let mut st = self.lock();
        if st.frozen.is_none() {
            st.crash_now(CrashCause::Manual);
        }
        let unsynced_from: BTreeMap<FileId, usize> = st
            .files
            .iter()
            .map(|(id, f)| (*id, f.durable.len()))
            .collect();
        let Some(mut record) = st.frozen.take() else {
            unreachable!("crash_now freezes the disk");
        };
        let mut rng = ChaCha8Rng::seed_from_u64(st.seed);
        rng.set_stream(1 + st.crashes.len() as u64);
        let pick = st.pick_image();
        let mode = match &pick {
            Some((plan, Some(index), _)) => st.apply_plan(plan, *index),
            _ => {
                let mode = st
                    .forced_mode
                    .unwrap_or_else(|| CrashMode::choose(&mut rng));
                st.apply_crash_image(mode, &mut rng);
                mode
            }
        };
        if let Some((plan, picked, digests)) = pick {
            st.log(|st| SimEvent::Reboot {
                images: plan.count,
                picked,
                digests,
                mode,
                io: st.io_counts,
            });
        }
        if bitflip {
            st.bitflip_unsynced(&unsynced_from, &mut rng);
        }
        record.mode = Some(mode);
        st.crashes.push(record.clone());
        st.epoch += 1;
        st.open_handles.clear();
        st.last_failpoint = None;
        st.collect_garbage();
        record
    }

    /// Restart the *process* after a crash, not the machine: the disk
    /// unfreezes with everything the kernel had, synced or not, still in the
    /// same state (unsynced writes and directory changes stay unsynced, so a
    /// later power loss can still drop them). Old handles stay dead, as a
    /// dead process's file descriptors do. A live disk is crashed first.
    pub fn restart_process(&self) -> CrashRecord {
        let mut st = self.lock();
        if st.frozen.is_none() {
            st.crash_now(CrashCause::Manual);
        }
        let Some(record) = st.frozen.take() else {
            unreachable!("crash_now freezes the disk");
        };
        st.crashes.push(record.clone());
        st.epoch += 1;
        st.open_handles.clear();
        st.last_failpoint = None;
        record
    }

    /// Every crash rebooted from, oldest first.
    pub fn crashes(&self) -> Vec<CrashRecord> {
        self.lock().crashes.clone()
    }

    /// I/O calls per kind since the disk was made.
    pub fn io_counts(&self) -> IoCounts {
        self.lock().io_counts
    }

    /// Failpoint coverage since the disk was made (or the last take).
    pub fn coverage(&self) -> Coverage {
        self.lock().coverage.clone()
    }

    /// Faults of `kind` injected so far (see [`Coverage::injected`]),
    /// without copying the coverage.
    pub fn injected(&self, kind: crate::FaultKind) -> u64 {
        self.lock().coverage.injected(kind)
    }

    /// Hits of failpoint `name` so far (see [`Coverage::hits`]).
    pub fn failpoint_hits(&self, name: &str) -> u64 {
        self.lock().coverage.hits.get(name).copied().unwrap_or(0)
    }

    /// Failpoint coverage, resetting it.
    pub fn take_coverage(&self) -> Coverage {
        std::mem::take(&mut self.lock().coverage)
    }

    /// Count a hit of failpoint `name`; crash if the armed trigger says so.
    /// Called by the `fail` callbacks (see [`crate::bind_thread`]); public so
    /// a harness can mark boundaries of its own.
    pub fn failpoint_hit(&self, name: &'static str) {
        let mut st = self.lock();
        if st.frozen.is_some() {
            return;
        }
        st.coverage.hit(name);
        st.last_failpoint = Some(name);
        if st.armed.as_mut().is_some_and(|a| a.count_failpoint(name)) {
            st.crash_fired();
            return;
        }
        let pause = take_pause(&mut st, PausePoint::Failpoint(name));
        drop(st);
        if let Some(hook) = pause {
            hook(PausePoint::Failpoint(name));
        }
    }

    /// Arm a pause: at the `nth` occurrence of `at` from now (a failpoint
    /// hit, or a call of a kind before it takes effect), whichever thread
    /// reaches it calls `hook` with no lock of the disk held, and goes on
    /// when the hook returns. It fires once. The deterministic runner uses
    /// it to preempt a compaction step (run on a thread of its own) and run
    /// other actors' steps meanwhile: a scheduling point, not a fault.
    pub fn arm_pause(&self, at: PausePoint, nth: u64, hook: PauseHook) {
        self.lock().pause = Some(PauseArm {
            at,
            nth: nth.max(1),
            seen: 0,
            hook,
        });
    }

    /// Disarm the pause; true if it was still armed (it never fired).
    pub fn disarm_pause(&self) -> bool {
        self.lock().pause.take().is_some()
    }

    /// Every visible file (what the engine sees now), by path.
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let st = self.lock();
        st.image(|d| &d.visible, |f| &f.visible)
    }

    /// The bytes of every visible file, summed: the length of what
    /// [`SimVfs::files`] holds, without copying it.
    pub fn visible_bytes(&self) -> u64 {
        let st = self.lock();
        st.dirs
            .values()
            .flat_map(|d| d.visible.values())
            .filter_map(|id| st.files.get(id))
            .map(|f| f.visible.len() as u64)
            .sum()
    }

    /// What [`CrashMode::DropUnsynced`] would leave: durable entries with
    /// their durable bytes.
    pub fn durable_files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let st = self.lock();
        st.image(|d| &d.durable, |f| &f.durable)
    }

    /// The visible bytes of one file.
    pub fn file(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.lock();
        let (dir, name) = split(path).ok()?;
        let id = st.dirs.get(&dir)?.visible.get(&name)?;
        st.files.get(id).map(|f| f.visible.clone())
    }

    /// Per visible file: its bytes, what of it is durable, and whether its
    /// directory entry is; for tests and `crashfuzz inspect`.
    pub fn snapshot(&self) -> Vec<FileInfo> {
        let st = self.lock();
        let mut out = Vec::new();
        for (dir, d) in &st.dirs {
            for (name, id) in &d.visible {
                let Some(f) = st.files.get(id) else { continue };
                out.push(FileInfo {
                    path: dir.join(name),
                    visible: f.visible.clone(),
                    durable: f.durable.clone(),
                    pending_ops: f.pending.len(),
                    entry_durable: d.durable.get(name) == Some(id),
                });
            }
        }
        out
    }

    /// SHA-256 (hex) of every visible file, by path. After a reboot the
    /// visible state is the post-crash image.
    pub fn image_digest(&self) -> String {
        digest(&self.files())
    }

    /// SHA-256 (hex) of [`SimVfs::durable_files`].
    pub fn durable_digest(&self) -> String {
        digest(&self.durable_files())
    }

    /// Create `path` with `bytes`, durable along with its directory entry
    /// (and the directory), replacing any file there; for setting up a test
    /// or loading a saved image. Not an I/O call: not counted, no faults.
    pub fn put_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.lock();
        st.check_live(None)?;
        let (dir, name) = split(path)?;
        st.record_dir(&dir);
        let id = st.new_file(bytes.to_vec());
        let Some(d) = st.dirs.get_mut(&dir) else {
            unreachable!("record_dir inserted it");
        };
        d.durable.insert(name.clone(), id);
        d.visible.insert(name, id);
        st.collect_garbage();
        Ok(())
    }

    /// Plant a latent sector error: the 512-byte sector holding `offset` of
    /// the file at `path` goes bad. Reads touching it fail with EIO (counted
    /// as `latent-sector-error`) until a write covers the whole sector or a
    /// truncation drops it; it survives crashes. Not an I/O call.
    pub fn add_latent_sector_error(&self, path: &Path, offset: u64) -> io::Result<()> {
        let mut st = self.lock();
        let (dir, name) = split(path)?;
        let id = *st
            .dirs
            .get(&dir)
            .and_then(|d| d.visible.get(&name))
            .ok_or_else(|| not_found("add_latent_sector_error", path))?;
        st.file_mut(id).bad_sectors.insert(offset / SECTOR_BYTES);
        Ok(())
    }

    /// Clear every latent bad sector of every file, the bytes under them
    /// intact: the operator's remedy (the drive remapped the sectors, or
    /// the image was copied to a healthy disk) after an open failed on one.
    /// Not an I/O call.
    pub fn clear_latent_sector_errors(&self) {
        let mut st = self.lock();
        for f in st.files.values_mut() {
            f.bad_sectors.clear();
        }
    }

    /// The file's latent bad sectors, as sector indices (offset / 512).
    pub fn latent_sector_errors(&self, path: &Path) -> Vec<u64> {
        self.with_file(path, |f| f.bad_sectors.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The file's pages (offset / 4096) that a failed fsync left in the page
    /// cache marked clean: visible, not durable, and no successful fsync
    /// will write them until a write dirties them again.
    pub fn kept_failed_pages(&self, path: &Path) -> Vec<u64> {
        self.with_file(path, |f| f.failed_pages.iter().copied().collect())
            .unwrap_or_default()
    }

    fn with_file<T>(&self, path: &Path, read: impl FnOnce(&FileState) -> T) -> Option<T> {
        let st = self.lock();
        let (dir, name) = split(path).ok()?;
        let id = st.dirs.get(&dir)?.visible.get(&name)?;
        st.files.get(id).map(read)
    }

    /// Whether directory `dir` exists, and whether its own entry in its
    /// parent is durable (a root always is).
    pub fn dir_state(&self, dir: &Path) -> Option<bool> {
        let st = self.lock();
        st.dirs.get(dir)?;
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            return Some(true);
        };
        let name = name.to_string_lossy();
        Some(st.dirs.get(parent).is_none_or(|p| {
            !p.pending
                .iter()
                .any(|op| matches!(op, DirOp::MkDir { name: n } if *n == name))
        }))
    }

    /// Check that every visible state equals its durable state plus its log
    /// and that every entry names a file. Tests call it; it is O(disk size).
    pub fn verify(&self) -> Result<(), String> {
        let st = self.lock();
        for (id, f) in &st.files {
            let mut replay = f.durable.clone();
            f.pending
                .iter()
                .for_each(|op| crash::apply_op(&mut replay, op));
            // Pages kept clean after a failed fsync are the one place the
            // page cache may differ from durable + pending (and the length,
            // when such pages grew or shrank the file).
            let kept = |at: usize| f.failed_pages.contains(&(at as u64 / PAGE_BYTES));
            let longest = replay.len().max(f.visible.len());
            let differs = (0..longest).any(|at| replay.get(at) != f.visible.get(at) && !kept(at));
            if differs {
                return Err(format!("file {id}: durable + pending != visible"));
            }
        }
        for (dir, d) in &st.dirs {
            let mut replay = d.durable.clone();
            d.pending.iter().for_each(|op| op.apply(&mut replay));
            if replay != d.visible {
                return Err(format!(
                    "dir {}: durable + pending != visible",
                    dir.display()
                ));
            }
            for id in d.durable.values().chain(d.visible.values()) {
                if !st.files.contains_key(id) {
                    return Err(format!(
                        "dir {}: entry names missing file {id}",
                        dir.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Run one counted I/O call: refused if frozen (or `epoch` is a dead
    /// handle's), counted, and crashed before or after per the armed trigger.
    fn io<T>(
        &self,
        kind: IoKind,
        epoch: Option<u64>,
        op: impl FnOnce(&mut State) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut st = self.lock();
        st.check_live(epoch)?;
        if let Some(hook) = take_pause(&mut st, PausePoint::Io(kind)) {
            drop(st);
            hook(PausePoint::Io(kind));
            st = self.lock();
            st.check_live(epoch)?;
        }
        st.io_counts.bump(kind);
        let fire = st.armed.as_mut().and_then(|a| a.count_io(kind));
        if fire == Some(false) {
            st.crash_fired();
            return Err(crash_error());
        }
        let result = op(&mut st);
        if fire == Some(true) {
            st.crash_fired();
            return Err(crash_error());
        }
        result
    }

    fn handle_dropped(&self, id: FileId, epoch: u64) {
        let mut st = self.lock();
        if st.epoch != epoch {
            return;
        }
        if let Some(n) = st.open_handles.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                st.open_handles.remove(&id);
            }
        }
        if st.frozen.is_none() {
            st.collect_garbage();
        }
    }
}

/// The armed pause's hook if `point` is its nth occurrence (disarming it).
fn take_pause(st: &mut State, point: PausePoint) -> Option<PauseHook> {
    if st.pause.as_mut().is_some_and(|p| p.count(point)) {
        st.pause.take().map(|p| p.hook)
    } else {
        None
    }
}

/// Install a crash image: each directory keeps the first `keeps[dir]` of
/// its unsynced changes (none if absent), directories whose creation was
/// lost vanish, each file of `bytes` gets those bytes (the others their
/// durable bytes); nothing stays pending. Returns the lost entry changes.
fn install_image(
    dirs: &mut BTreeMap<PathBuf, DirState>,
    files: &mut BTreeMap<FileId, FileState>,
    keeps: &BTreeMap<PathBuf, usize>,
    mut bytes: BTreeMap<FileId, Vec<u8>>,
) -> u64 {
    let mut lost_dirs: Vec<PathBuf> = Vec::new();
    let mut lost_entries = 0u64;
    for (path, d) in dirs.iter_mut() {
        let keep = keeps.get(path).copied().unwrap_or(0).min(d.pending.len());
        let mut entries = std::mem::take(&mut d.durable);
        d.pending[..keep]
            .iter()
            .for_each(|op| op.apply(&mut entries));
        for op in &d.pending[keep..] {
            lost_entries += 1;
            if let DirOp::MkDir { name } = op {
                lost_dirs.push(path.join(name));
            }
        }
        d.pending.clear();
        d.visible = entries.clone();
        d.durable = entries;
    }
    if !lost_dirs.is_empty() {
        dirs.retain(|path, _| !lost_dirs.iter().any(|lost| path.starts_with(lost)));
    }
    for (id, f) in files.iter_mut() {
        let image = bytes.remove(id).unwrap_or_else(|| f.durable.clone());
        f.pending.clear();
        // A power loss empties the page cache: kept failed pages are gone.
        f.failed_pages.clear();
        let sectors = (image.len() as u64).div_ceil(SECTOR_BYTES);
        f.bad_sectors.retain(|s| *s < sectors);
        // Only the bytes past the first difference are copied, and the
        // change is recorded (the extract cache's exactness rests on it).
        f.set_image(image);
    }
    lost_entries
}

/// Every durable entry's durable bytes, by path.
fn image_of(
    dirs: &BTreeMap<PathBuf, DirState>,
    files: &BTreeMap<FileId, FileState>,
) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (dir, d) in dirs {
        for (name, id) in &d.durable {
            if let Some(f) = files.get(id) {
                out.insert(dir.join(name), f.durable.clone());
            }
        }
    }
    out
}

fn digest(files: &BTreeMap<PathBuf, Vec<u8>>) -> String {
    let mut h = Sha256::new();
    for (path, bytes) in files {
        h.update(path.to_string_lossy().as_bytes());
        h.update([0u8]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex::encode(h.finalize())
}

/// One visible file, as [`SimVfs::snapshot`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Its path.
    pub path: PathBuf,
    /// Its bytes as the engine sees them.
    pub visible: Vec<u8>,
    /// Its bytes as of its last successful sync.
    pub durable: Vec<u8>,
    /// Writes and `set_len`s since then.
    pub pending_ops: usize,
    /// Whether its directory entry (this name for this file) is durable.
    pub entry_durable: bool,
}

impl State {
    fn check_live(&self, epoch: Option<u64>) -> io::Result<()> {
        if self.frozen.is_some() {
            return Err(crash_error());
        }
        match epoch {
            Some(e) if e != self.epoch => Err(stale_handle_error()),
            _ => Ok(()),
        }
    }

    /// Log an event, if an image choice asks for a log.
    fn log(&self, event: impl FnOnce(&State) -> SimEvent) {
        if let Some(c) = &self.image_choice {
            c.log.push(event(self));
        }
    }

    /// At a power-loss reboot with an image choice: the crash's images
    /// (with their digests, if asked for) and the image picked for this
    /// reboot, if any.
    fn pick_image(&mut self) -> Option<(ImagePlan, Option<u64>, Vec<String>)> {
        let choice = self.image_choice.clone()?;
        let reboot = self.image_reboots;
        self.image_reboots += 1;
        let plan = self.image_plan(&choice.bounds);
        let digests = if choice.digests {
            (0..plan.count.enumerated)
                .map(|i| self.preview_digest(&plan, i))
                .collect()
        } else {
            Vec::new()
        };
        let picked = choice
            .picks
            .get(reboot)
            .copied()
            .filter(|i| *i < plan.count.enumerated);
        Some((plan, picked, digests))
    }

    /// The components of the pending crash's images under `bounds`.
    fn image_plan(&self, bounds: &ImageBounds) -> ImagePlan {
        let dirs: Vec<(PathBuf, usize)> = self
            .dirs
            .iter()
            .filter(|(_, d)| !d.pending.is_empty())
            .map(|(p, d)| (p.clone(), d.pending.len()))
            .collect();
        let mut bounded_files = 0;
        let files: Vec<(FileId, Vec<images::FileChoice>)> = self
            .files
            .iter()
            .filter(|(_, f)| !f.pending.is_empty())
            .map(|(id, f)| {
                let (choices, bounded) = images::file_choices(&f.pending, bounds);
                bounded_files += u64::from(bounded);
                (*id, choices)
            })
            .collect();
        let mut plan = ImagePlan {
            dirs,
            files,
            count: ImageCount::default(),
        };
        let allowed = plan
            .radices()
            .iter()
            .fold(1u64, |acc, r| acc.saturating_mul(*r));
        plan.count = ImageCount {
            allowed,
            enumerated: allowed.min(bounds.max_images),
            bounded_files,
        };
        plan
    }

    /// The crash mode image `index` of `plan` amounts to.
    fn plan_mode(&self, plan: &ImagePlan, index: u64) -> CrashMode {
        let digits = images::decompose(index, &plan.radices());
        let dir_classes = plan.dirs.iter().zip(&digits).map(|((_, n), d)| {
            if *d == 0 {
                images::Class::Drop
            } else if *d as usize == *n {
                images::Class::All
            } else {
                images::Class::Partial
            }
        });
        let file_classes =
            plan.files
                .iter()
                .zip(&digits[plan.dirs.len()..])
                .map(|((id, choices), d)| {
                    let pending = self.files.get(id).map_or(0, |f| f.pending.len());
                    choices[*d as usize].class(pending)
                });
        images::mode_of(dir_classes.chain(file_classes))
    }

    /// Directory keeps and file bytes of image `index` of `plan`.
    fn plan_image(
        &self,
        plan: &ImagePlan,
        index: u64,
    ) -> (BTreeMap<PathBuf, usize>, BTreeMap<FileId, Vec<u8>>) {
        let digits = images::decompose(index, &plan.radices());
        let keeps = plan
            .dirs
            .iter()
            .zip(&digits)
            .map(|((p, _), d)| (p.clone(), *d as usize))
            .collect();
        let garbage_seed = self.seed ^ (self.crashes.len() as u64).rotate_left(32);
        let bytes = plan
            .files
            .iter()
            .zip(&digits[plan.dirs.len()..])
            .filter_map(|((id, choices), d)| {
                let f = self.files.get(id)?;
                let seed = garbage_seed ^ id.wrapping_mul(0xD6E8_FEB8_6659_FD93);
                Some((
                    *id,
                    choices[*d as usize].apply(&f.durable, &f.pending, seed),
                ))
            })
            .collect();
        (keeps, bytes)
    }

    /// The digest of image `index` of `plan`, computed on a copy.
    fn preview_digest(&self, plan: &ImagePlan, index: u64) -> String {
        let (keeps, bytes) = self.plan_image(plan, index);
        let mut dirs = self.dirs.clone();
        let mut files = self.files.clone();
        install_image(&mut dirs, &mut files, &keeps, bytes);
        // Directories count too: an empty directory that survived is not
        // the same image as one whose creation was lost.
        let mut h = Sha256::new();
        for dir in dirs.keys() {
            h.update(dir.to_string_lossy().as_bytes());
            h.update([1u8]);
        }
        h.update(digest(&image_of(&dirs, &files)).as_bytes());
        hex::encode(h.finalize())
    }

    /// Turn the disk into image `index` of `plan`; the mode it amounts to.
    fn apply_plan(&mut self, plan: &ImagePlan, index: u64) -> CrashMode {
        let mode = self.plan_mode(plan, index);
        let (keeps, bytes) = self.plan_image(plan, index);
        let lost = install_image(&mut self.dirs, &mut self.files, &keeps, bytes);
        for _ in 0..lost {
            self.coverage.injected_fault(FaultKind::LostDirEntry);
        }
        mode
    }

    fn crash_now(&mut self, cause: CrashCause) {
        debug_assert!(self.frozen.is_none(), "crashing a frozen disk");
        self.log(|st| SimEvent::Crash {
            triggered: matches!(cause, CrashCause::Trigger(_)),
            io: st.io_counts,
            hits: st.coverage.hits.clone(),
        });
        self.armed = None;
        self.frozen = Some(CrashRecord {
            cause,
            last_failpoint: self.last_failpoint,
            io_calls: self.io_counts.total(),
            mode: None,
        });
    }

    /// The armed trigger fired: crash, and count it in the coverage.
    fn crash_fired(&mut self) {
        let Some(armed) = self.armed.take() else {
            unreachable!("a trigger fired while none was armed");
        };
        match &armed.trigger {
            CrashTrigger::AtFailpoint { name, .. } => self.coverage.crashed_at(name),
            CrashTrigger::AtIo { kind, .. } => {
                self.coverage.crashed_at_io(format!("before::{kind}"));
                self.coverage.injected_fault(FaultKind::CrashBeforeIo);
            }
            CrashTrigger::AfterIo { kind, .. } => {
                self.coverage.crashed_at_io(format!("after::{kind}"));
                self.coverage.injected_fault(FaultKind::CrashAfterIo);
            }
        }
        if !self.crashes.is_empty() {
            self.coverage
                .injected_fault(FaultKind::RecoveryCrashRepeated);
        }
        self.crash_now(CrashCause::Trigger(armed.trigger));
    }

    fn apply_crash_image(&mut self, mode: CrashMode, rng: &mut ChaCha8Rng) {
        // Directories first: which unsynced entry changes survive, and which
        // directories whose own creation was never synced in their parent
        // vanish (with everything in them). Then each file's bytes.
        let keeps: BTreeMap<PathBuf, usize> = self
            .dirs
            .iter()
            .map(|(path, d)| {
                (
                    path.clone(),
                    crash::dir_ops_kept(d.pending.len(), mode, rng),
                )
            })
            .collect();
        let whole = self.faults.no_power_safe_overwrite;
        let mut stats = TearStats::default();
        let bytes: BTreeMap<FileId, Vec<u8>> = self
            .files
            .iter_mut()
            .map(|(id, f)| {
                // The durable bytes are the image's start: built in place.
                let durable = std::mem::take(&mut f.durable);
                let image = crash::file_image(durable, &f.pending, mode, whole, &mut stats, rng);
                (*id, image)
            })
            .collect();
        let lost_entries = install_image(&mut self.dirs, &mut self.files, &keeps, bytes);
        for _ in 0..lost_entries {
            self.coverage.injected_fault(FaultKind::LostDirEntry);
        }
        for _ in 0..stats.whole_sectors {
            self.coverage.injected_fault(FaultKind::TearWholeSector);
        }
        for _ in 0..stats.whole_pages {
            self.coverage.injected_fault(FaultKind::TearWholePage);
        }
    }

    /// Flip one bit of one byte past each file's pre-crash durable length
    /// that survived into the image (see
    /// [`SimVfs::reboot_with_bitflip_unsynced`]).
    fn bitflip_unsynced(&mut self, unsynced_from: &BTreeMap<FileId, usize>, rng: &mut ChaCha8Rng) {
        let block = PAGE_BYTES as usize;
        let mut flips = 0u64;
        for (id, f) in self.files.iter_mut() {
            let Some(&from) = unsynced_from.get(id) else {
                continue;
            };
            let len = f.visible.len();
            if len <= from {
                continue;
            }
            let newest_header = (from..len)
                .rev()
                .find(|at| at % block == 0 && f.visible[*at] == engine::layout::MARKER_HEADER);
            let at = match newest_header {
                Some(h) => (h + 1 + rng.gen_range(0..40usize)).min(len - 1),
                None => rng.gen_range(from..len),
            };
            let bit = rng.gen_range(0..8u32);
            f.changes.push(at as u64);
            f.visible[at] ^= 1 << bit;
            f.durable[at] ^= 1 << bit;
            flips += 1;
        }
        for _ in 0..flips {
            self.coverage.injected_fault(FaultKind::TearUnsyncedBitflip);
        }
    }

    fn image(
        &self,
        entries: impl Fn(&DirState) -> &BTreeMap<String, FileId>,
        bytes: impl Fn(&FileState) -> &Vec<u8>,
    ) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for (dir, d) in &self.dirs {
            for (name, id) in entries(d) {
                if let Some(f) = self.files.get(id) {
                    out.insert(dir.join(name), bytes(f).clone());
                }
            }
        }
        out
    }

    /// Drop files nothing can reach any more: no entry (durable or visible),
    /// no unsynced directory change and no live handle names them.
    fn collect_garbage(&mut self) {
        let mut live: BTreeSet<FileId> = self.open_handles.keys().copied().collect();
        for d in self.dirs.values() {
            live.extend(d.durable.values().copied());
            live.extend(d.visible.values().copied());
            live.extend(d.pending.iter().flat_map(DirOp::ids));
        }
        self.files.retain(|id, _| live.contains(id));
    }

    /// Create `dir` and its ancestors, durably (for [`SimVfs::put_file`]).
    fn record_dir(&mut self, dir: &Path) {
        for a in dir.ancestors() {
            if !a.as_os_str().is_empty() {
                self.dirs.entry(a.to_path_buf()).or_default();
            }
        }
    }

    /// `create_dir_all`: each missing directory becomes an unsynced entry of
    /// its parent; a root (a path without a parent) always exists.
    fn create_dirs(&mut self, dir: &Path) {
        let mut missing: Vec<&Path> = dir
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .take_while(|a| !self.dirs.contains_key(*a))
            .collect();
        missing.reverse();
        for a in missing {
            let parent = a.parent().filter(|p| !p.as_os_str().is_empty());
            if let (Some(parent), Some(name)) = (parent, a.file_name()) {
                if let Some(p) = self.dirs.get_mut(parent) {
                    p.pending.push(DirOp::MkDir {
                        name: name.to_string_lossy().into_owned(),
                    });
                }
            }
            self.dirs.insert(a.to_path_buf(), DirState::default());
        }
    }

    fn new_file(&mut self, bytes: Vec<u8>) -> FileId {
        let id = self.next_id;
        self.next_id += 1;
        // Room to grow by appends without reallocating each time (a store
        // file of a scenario is tens of KiB, written a block or more at a
        // time: doubling from a few KiB would copy it at nearly every write).
        let room = bytes.len().max(INITIAL_FILE_ROOM);
        let mut durable = Vec::with_capacity(room);
        durable.extend_from_slice(&bytes);
        let mut visible = Vec::with_capacity(room);
        visible.extend_from_slice(&bytes);
        self.files.insert(
            id,
            FileState {
                durable,
                visible,
                ..FileState::default()
            },
        );
        id
    }

    fn file_mut(&mut self, id: FileId) -> &mut FileState {
        // A live handle keeps its file out of garbage collection.
        self.files
            .get_mut(&id)
            .unwrap_or_else(|| unreachable!("file {id} of a live handle was collected"))
    }

    fn roll(&mut self, per_million: u32) -> bool {
        per_million > 0 && self.fault_rng.gen_range(0..1_000_000) < per_million
    }

    /// Whether this call (the `count`-th of its kind) fails: its `nth`, or
    /// a draw at `rate`.
    fn fails(&mut self, count: u64, nth: Option<u64>, rate: u32) -> bool {
        self.roll(rate) || nth == Some(count)
    }

    fn eio_on_write(&mut self) -> bool {
        self.fault_counters.writes += 1;
        let n = self.fault_counters.writes;
        self.fails(
            n,
            self.faults.eio_write_nth,
            self.faults.eio_write_per_million,
        )
    }

    fn eio_on_sync(&mut self) -> bool {
        self.fault_counters.syncs += 1;
        let n = self.fault_counters.syncs;
        self.fails(
            n,
            self.faults.eio_sync_nth,
            self.faults.eio_sync_per_million,
        )
    }

    /// EIO on a metadata call: `kind`'s counter, its `nth`, the shared rate.
    fn eio_on_meta(&mut self, kind: IoKind) -> bool {
        let c = &mut self.fault_counters;
        let (count, nth, fault) = match kind {
            IoKind::Open => {
                c.opens += 1;
                (c.opens, self.faults.eio_open_nth, FaultKind::EioOpen)
            }
            IoKind::SetLen => {
                c.set_lens += 1;
                (
                    c.set_lens,
                    self.faults.eio_set_len_nth,
                    FaultKind::EioSetLen,
                )
            }
            IoKind::Rename => {
                c.renames += 1;
                (c.renames, self.faults.eio_rename_nth, FaultKind::EioRename)
            }
            IoKind::Remove => {
                c.removes += 1;
                (c.removes, self.faults.eio_remove_nth, FaultKind::EioRemove)
            }
            IoKind::SyncDir => {
                c.sync_dirs += 1;
                (
                    c.sync_dirs,
                    self.faults.eio_sync_dir_nth,
                    FaultKind::EioSyncDir,
                )
            }
            _ => return false,
        };
        let failed = self.fails(count, nth, self.faults.eio_meta_per_million);
        if failed {
            self.coverage.injected_fault(fault);
        }
        failed
    }

    fn busy(&self, id: FileId) -> bool {
        self.faults.windows_mode && self.open_handles.contains_key(&id)
    }

    /// Bytes on the disk: every file's length.
    fn used_bytes(&self) -> u64 {
        self.files.values().map(|f| f.visible.len() as u64).sum()
    }

    fn open(&mut self, path: &Path, mode: OpenMode) -> io::Result<(u64, FileId)> {
        let (dir, name) = split(path)?;
        let existing = self
            .dirs
            .get(&dir)
            .ok_or_else(|| not_found("open: no directory for", path))?
            .visible
            .get(&name)
            .copied();
        if existing.is_none() && mode != OpenMode::Create {
            return Err(not_found("open", path));
        }
        if self.eio_on_meta(IoKind::Open) {
            return Err(eio_error("open", path));
        }
        let id = match existing {
            Some(id) => id,
            None => {
                let id = self.new_file(Vec::new());
                let Some(d) = self.dirs.get_mut(&dir) else {
                    unreachable!("looked up above");
                };
                d.visible.insert(name.clone(), id);
                d.pending.push(DirOp::Create { name, id });
                id
            }
        };
        *self.open_handles.entry(id).or_insert(0) += 1;
        Ok((self.epoch, id))
    }

    fn read(&mut self, id: FileId, path: &Path, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let visible_len = self.file_mut(id).visible.len();
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .filter(|r| r.end <= visible_len)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer")
            })?;
        self.fault_counters.reads += 1;
        let n = self.fault_counters.reads;
        let sectors = units(range.start as u64, range.end as u64, SECTOR_BYTES);
        if self.fails(
            n,
            self.faults.latent_error_read_nth,
            self.faults.latent_error_per_million,
        ) {
            // One seed-chosen sector under the read goes bad.
            let sector = self.fault_rng.gen_range(sectors.clone());
            self.file_mut(id).bad_sectors.insert(sector);
        }
        if self
            .file_mut(id)
            .bad_sectors
            .range(sectors.clone())
            .next()
            .is_some()
        {
            self.coverage.injected_fault(FaultKind::LatentSectorError);
            return Err(eio_error("read (latent sector error)", path));
        }
        if self.fails(
            n,
            self.faults.eio_read_nth,
            self.faults.eio_read_per_million,
        ) {
            self.coverage.injected_fault(FaultKind::ReadEio);
            return Err(eio_error("read", path));
        }
        let f = self.file_mut(id);
        buf.copy_from_slice(&f.visible[range]);
        Ok(())
    }

    /// Log and apply one write the engine made: bytes over latent bad
    /// sectors remap them; a write into a page kept clean after a failed
    /// fsync dirties the whole page again (it is logged whole after the
    /// write, so the next successful sync persists all of it).
    fn apply_write(&mut self, id: FileId, buf: &[u8], offset: u64) {
        let end = offset + buf.len() as u64;
        let f = self.file_mut(id);
        f.note_write(offset, buf);
        let op = FileOp::Write {
            offset,
            bytes: buf.to_vec(),
        };
        crash::apply_op(&mut f.visible, &op);
        f.pending.push(op);
        // A sector wholly rewritten is remapped by the drive.
        let (first, past) = (offset.div_ceil(SECTOR_BYTES), end / SECTOR_BYTES);
        let remapped: Vec<u64> = if first < past {
            f.bad_sectors.range(first..past).copied().collect()
        } else {
            Vec::new()
        };
        remapped.iter().for_each(|s| {
            f.bad_sectors.remove(s);
        });
        let pages: Vec<u64> = f
            .failed_pages
            .range(units(offset, end, PAGE_BYTES))
            .copied()
            .collect();
        for page in pages {
            f.failed_pages.remove(&page);
            let lo = (page * PAGE_BYTES) as usize;
            let hi = ((page + 1) * PAGE_BYTES).min(f.visible.len() as u64) as usize;
            if lo < hi {
                f.pending.push(FileOp::Write {
                    offset: lo as u64,
                    bytes: f.visible[lo..hi].to_vec(),
                });
            }
        }
    }

    fn write(&mut self, id: FileId, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        let end = checked_end(offset, buf.len(), path)?;
        if self.eio_on_write() {
            self.coverage.injected_fault(FaultKind::EioWrite);
            return Err(eio_error("write", path));
        }
        if let Some(capacity) = self.faults.capacity_bytes {
            let len = self.file_mut(id).visible.len() as u64;
            let growth = end.saturating_sub(len);
            let used = self.used_bytes();
            if growth > 0 && used + growth > capacity {
                // Room for part of the growth: a seed-chosen part of it may
                // land before the error (a short write, then ENOSPC).
                let room = capacity.saturating_sub(used);
                let fits = (len + room).saturating_sub(offset).min(buf.len() as u64) as usize;
                let landed = if fits > 0 {
                    self.fault_rng.gen_range(0..=fits)
                } else {
                    0
                };
                if landed > 0 {
                    self.apply_write(id, &buf[..landed], offset);
                }
                self.coverage.injected_fault(FaultKind::Enospc);
                return Err(enospc_error(path, landed));
            }
        }
        if !buf.is_empty() {
            let n = self.fault_counters.writes;
            if self.fails(
                n,
                self.faults.short_write_nth,
                self.faults.short_write_per_million,
            ) {
                let landed = self.fault_rng.gen_range(0..buf.len());
                if landed > 0 {
                    self.apply_write(id, &buf[..landed], offset);
                }
                self.coverage.injected_fault(FaultKind::ShortWrite);
                return Err(short_write_error(path, landed, buf.len()));
            }
        }
        self.apply_write(id, buf, offset);
        Ok(())
    }

    fn set_len(&mut self, id: FileId, path: &Path, len: u64) -> io::Result<()> {
        checked_end(len, 0, path)?;
        if self.eio_on_meta(IoKind::SetLen) {
            return Err(eio_error("set_len", path));
        }
        if let Some(capacity) = self.faults.capacity_bytes {
            let growth = len.saturating_sub(self.file_mut(id).visible.len() as u64);
            if growth > 0 && self.used_bytes() + growth > capacity {
                self.coverage.injected_fault(FaultKind::Enospc);
                return Err(enospc_error(path, 0));
            }
        }
        let op = FileOp::SetLen { len };
        let f = self.file_mut(id);
        f.note_set_len(len);
        crash::apply_op(&mut f.visible, &op);
        f.pending.push(op);
        f.failed_pages.retain(|p| p * PAGE_BYTES < len);
        f.bad_sectors.retain(|s| s * SECTOR_BYTES < len);
        Ok(())
    }

    fn sync(&mut self, id: FileId, path: &Path) -> io::Result<()> {
        let failed = self.eio_on_sync();
        let mode = self.faults.fsync_failure;
        let f = self.file_mut(id);
        if failed {
            match mode {
                FsyncFailure::Revert => {
                    // The dirty pages are dropped at once: the old bytes
                    // come back.
                    f.pending.clear();
                    f.revert_to_durable();
                    f.failed_pages.clear();
                    self.coverage.injected_fault(FaultKind::FsyncEioRevert);
                }
                FsyncFailure::KeepPages => {
                    // Linux: the pages stay cached, marked clean although
                    // they never reached the disk.
                    let durable_len = f.durable.len() as u64;
                    for op in std::mem::take(&mut f.pending) {
                        let (lo, hi) = match op {
                            FileOp::Write { offset, bytes } => {
                                (offset, offset + bytes.len() as u64)
                            }
                            FileOp::SetLen { len } => (len.min(durable_len), len.max(durable_len)),
                        };
                        f.failed_pages.extend(units(lo, hi, PAGE_BYTES));
                    }
                    let pages = (f.visible.len() as u64).div_ceil(PAGE_BYTES);
                    f.failed_pages.retain(|p| *p < pages);
                    self.coverage.injected_fault(FaultKind::FsyncEioKeptPages);
                }
            }
            return Err(eio_error("fsync", path));
        }
        for op in f.pending.drain(..) {
            crash::apply_op(&mut f.durable, &op);
        }
        // The inode's size is written whatever the pages: bytes of failed
        // pages past the old end read as zeroes after a power loss.
        let visible_len = f.visible.len();
        f.durable.resize(visible_len, 0);
        Ok(())
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        if dir != to_dir {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "rename {} -> {}: the simulator models renames within one directory only",
                    from.display(),
                    to.display()
                ),
            ));
        }
        let d = self
            .dirs
            .get(&dir)
            .ok_or_else(|| not_found("rename: no directory for", from))?;
        let id = *d
            .visible
            .get(&from_name)
            .ok_or_else(|| not_found("rename", from))?;
        if from_name == to_name {
            return Ok(());
        }
        let replaced = d.visible.get(&to_name).copied();
        if self.busy(id) {
            return Err(busy_error("rename", from));
        }
        if replaced.is_some_and(|r| self.busy(r)) {
            return Err(busy_error("replace", to));
        }
        if self.eio_on_meta(IoKind::Rename) {
            return Err(eio_error("rename", from));
        }
        let Some(d) = self.dirs.get_mut(&dir) else {
            unreachable!("looked up above");
        };
        d.visible.remove(&from_name);
        d.visible.insert(to_name.clone(), id);
        d.pending.push(DirOp::Rename {
            from: from_name,
            to: to_name,
            id,
            replaced,
        });
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        let (dir, name) = split(path)?;
        let id = *self
            .dirs
            .get(&dir)
            .and_then(|d| d.visible.get(&name))
            .ok_or_else(|| not_found("remove", path))?;
        if self.busy(id) {
            return Err(busy_error("remove", path));
        }
        if self.eio_on_meta(IoKind::Remove) {
            return Err(eio_error("remove", path));
        }
        let Some(d) = self.dirs.get_mut(&dir) else {
            unreachable!("looked up above");
        };
        d.visible.remove(&name);
        d.pending.push(DirOp::Unlink { name, id });
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let d = self.dirs.get(dir).ok_or_else(|| not_found("list", dir))?;
        Ok(d.visible.keys().cloned().collect())
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        if !self.dirs.contains_key(dir) {
            return Err(not_found("sync_dir", dir));
        }
        if self.eio_on_meta(IoKind::SyncDir) {
            return Err(eio_error("fsync of directory", dir));
        }
        let Some(d) = self.dirs.get_mut(dir) else {
            unreachable!("looked up above");
        };
        d.durable = d.visible.clone();
        d.pending.clear();
        self.collect_garbage();
        Ok(())
    }
}

/// A handle from [`SimVfs`]'s `open`.
struct SimFile {
    sim: SimVfs,
    id: FileId,
    epoch: u64,
    writable: bool,
    path: PathBuf,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("path", &self.path)
            .field("id", &self.id)
            .field("epoch", &self.epoch)
            .field("writable", &self.writable)
            .finish()
    }
}

impl SimFile {
    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{}: Bad file descriptor (opened read-only)",
                    self.path.display()
                ),
            ))
        }
    }
}

impl VfsFile for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.sim.io(IoKind::Read, Some(self.epoch), |st| {
            st.read(self.id, &self.path, buf, offset)
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.sim.io(IoKind::Write, Some(self.epoch), |st| {
            self.check_writable()?;
            st.write(self.id, &self.path, buf, offset)
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.sim.io(IoKind::Len, Some(self.epoch), |st| {
            Ok(st.file_mut(self.id).visible.len() as u64)
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.sim.io(IoKind::SetLen, Some(self.epoch), |st| {
            self.check_writable()?;
            st.set_len(self.id, &self.path, len)
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.sim.io(IoKind::Sync, Some(self.epoch), |st| {
            st.sync(self.id, &self.path)
        })
    }

    /// Exact: every change to bytes the file held is noted (see
    /// `FileState::changes`). Not an I/O call; works on a dead handle too,
    /// as long as the file exists.
    fn version(&self) -> Option<FileVersion> {
        let st = self.sim.lock();
        st.files.get(&self.id).map(|f| FileVersion {
            file: self.id,
            generation: f.changes.len() as u64,
        })
    }

    fn unchanged_prefix(&self, generation: u64) -> Option<u64> {
        let st = self.sim.lock();
        st.files
            .get(&self.id)
            .map(|f| f.unchanged_prefix(generation))
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        self.sim.handle_dropped(self.id, self.epoch);
    }
}

impl Vfs for SimVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let (epoch, id) = self.io(IoKind::Open, None, |st| st.open(path, mode))?;
        Ok(Arc::new(SimFile {
            sim: self.clone(),
            id,
            epoch,
            writable: mode != OpenMode::Read,
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.io(IoKind::Rename, None, |st| st.rename(from, to))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.io(IoKind::Remove, None, |st| st.remove(path))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.io(IoKind::List, None, |st| st.list(dir))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.io(IoKind::SyncDir, None, |st| st.sync_dir(dir))
    }

    /// Counted as a `List`; a missing directory means the file does not
    /// exist (as with `StdVfs`), rather than an error.
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.io(IoKind::List, None, |st| {
            let (dir, name) = split(path)?;
            Ok(st
                .dirs
                .get(&dir)
                .is_some_and(|d| d.visible.contains_key(&name)))
        })
    }

    /// Counted as a `CreateDir`. Each directory it creates is an entry of
    /// its parent that only the parent's `sync_dir` makes durable: a crash
    /// before that loses the directory and everything in it.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.io(IoKind::CreateDir, None, |st| {
            st.create_dirs(dir);
            Ok(())
        })
    }
}
