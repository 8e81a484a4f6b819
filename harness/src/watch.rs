//! `WatchVfs`: the runner's view of every call the engine makes to the disk.
//!
//! It wraps the simulated disk and does two things for the judge:
//!
//! - **Fault accounting.** Every error the disk returns that is an injected
//!   fault (a simulated crash, an injected EIO, Windows' busy rename/unlink)
//!   is counted. An engine error is *explained* only if the disk injected a
//!   fault during the engine call that returned it (or an earlier explained
//!   fault poisoned the store): the runner compares [`Watch::injected`]
//!   before and after each call. An engine that fails on its own, with no
//!   fault injected, cannot hide behind the fault model.
//! - **The watchdog.** A budget of disk calls per scenario step and a ceiling
//!   on the bytes the disk may hold. Exceeding either panics with a
//!   [`WatchdogExpired`] payload, which the runner turns into a
//!   [`crate::FailureKind::Hang`] failure with the step and the trace. The
//!   budget counts calls, not time, so a hang is found at the same call on
//!   every machine and every replay. A loop that makes no disk call at all
//!   is caught by the explorer's wall-clock backstop instead
//!   (`explore --hang-secs`).

use engine::vfs::{OpenMode, Vfs, VfsFile};
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Disk calls one scenario step may make before it counts as a hang. A
/// default scenario's busiest step makes well under a thousand (see
/// `Sanity::max_calls_per_step`); a hundred thousand is far above any
/// legitimate step and still found in a fraction of a second.
pub const DEFAULT_CALL_BUDGET: u64 = 100_000;

/// The most bytes the disk may hold at once (the sum of the file lengths the
/// engine writes to). Default scenarios stay under a megabyte.
pub const DEFAULT_DISK_CEILING: u64 = 256 << 20;

/// The panic payload of an expired watchdog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchdogExpired {
    /// What ran out: "disk calls in one step" or "bytes on disk".
    pub what: &'static str,
    /// How much was used.
    pub used: u64,
    /// The limit.
    pub limit: u64,
}

impl fmt::Display for WatchdogExpired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "watchdog: {} exceeded {} (used {})",
            self.what, self.limit, self.used
        )
    }
}

/// Counters shared by a [`WatchVfs`] and every file it opened.
#[derive(Debug)]
pub struct Watch {
    calls: AtomicU64,
    step_start: AtomicU64,
    max_step_calls: AtomicU64,
    injected: AtomicU64,
    busy: AtomicU64,
    max_end: AtomicU64,
    /// Calls the current step may make beyond the budget (the harness's
    /// own reads, see [`Watch::allow`]).
    allowance: AtomicU64,
    /// Where the oracle's reads began in this step (`u64::MAX`: not yet).
    harness_since: AtomicU64,
    budget: u64,
    ceiling: u64,
    predicate: fn(&io::Error) -> bool,
}

impl Watch {
    /// A watch with a per-step call budget and a disk ceiling, counting the
    /// errors `predicate` says were injected.
    pub fn new(budget: u64, ceiling: u64, predicate: fn(&io::Error) -> bool) -> Arc<Watch> {
        Arc::new(Watch {
            calls: AtomicU64::new(0),
            step_start: AtomicU64::new(0),
            max_step_calls: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            max_end: AtomicU64::new(0),
            allowance: AtomicU64::new(0),
            harness_since: AtomicU64::new(u64::MAX),
            budget,
            ceiling,
            predicate,
        })
    }

    /// Injected faults the disk returned so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// Windows "busy" refusals (rename or unlink of an open file) so far.
    pub fn busy(&self) -> u64 {
        self.busy.load(Ordering::Relaxed)
    }

    /// The largest file end any write or `set_len` reached so far.
    pub fn max_file_end(&self) -> u64 {
        self.max_end.load(Ordering::Relaxed)
    }

    /// Disk calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// A new step starts: its budget is counted from here.
    pub fn start_step(&self) {
        self.allowance.store(0, Ordering::Relaxed);
        let now = self.calls();
        let start = self.step_start.swap(now, Ordering::Relaxed);
        // The engine's share: the calls before the oracle's first read.
        let end = self
            .harness_since
            .swap(u64::MAX, Ordering::Relaxed)
            .min(now);
        self.max_step_calls
            .fetch_max(end.saturating_sub(start), Ordering::Relaxed);
    }

    /// Let the current step make `calls` more disk calls than the budget:
    /// the oracle's check reads every header's trees, work that grows with
    /// the store (headers x nodes) and is the harness's, not the engine's.
    pub fn allow(&self, calls: u64) {
        self.allowance.fetch_add(calls, Ordering::Relaxed);
        self.harness_since
            .fetch_min(self.calls(), Ordering::Relaxed);
    }

    /// The most disk calls the engine made in any finished step (up to the
    /// oracle's first read in it).
    pub fn max_step_calls(&self) -> u64 {
        self.max_step_calls.load(Ordering::Relaxed)
    }

    fn call(&self) {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let used = n - self.step_start.load(Ordering::Relaxed);
        // Never panic while unwinding (a `Drop` that touches the disk after
        // the watchdog fired): that would abort the process.
        if used
            > self
                .budget
                .saturating_add(self.allowance.load(Ordering::Relaxed))
            && !std::thread::panicking()
        {
            std::panic::panic_any(WatchdogExpired {
                what: "disk calls in one step",
                used,
                limit: self.budget,
            });
        }
    }

    fn size(&self, end: u64) {
        self.max_end.fetch_max(end, Ordering::Relaxed);
        if end > self.ceiling && !std::thread::panicking() {
            std::panic::panic_any(WatchdogExpired {
                what: "bytes in one file",
                used: end,
                limit: self.ceiling,
            });
        }
    }

    fn seen<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            if (self.predicate)(e) {
                self.injected.fetch_add(1, Ordering::Relaxed);
            }
            if failpoints::is_busy(e) {
                self.busy.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }
}

/// A [`Vfs`] that counts and judges every call to the one it wraps.
#[derive(Debug, Clone)]
pub struct WatchVfs {
    inner: Arc<dyn Vfs>,
    watch: Arc<Watch>,
}

impl WatchVfs {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Vfs>, watch: Arc<Watch>) -> WatchVfs {
        WatchVfs { inner, watch }
    }
}

impl Vfs for WatchVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        self.watch.call();
        let file = self.watch.seen(self.inner.open(path, mode))?;
        Ok(Arc::new(WatchFile {
            inner: file,
            watch: self.watch.clone(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.watch.call();
        self.watch.seen(self.inner.rename(from, to))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.watch.call();
        self.watch.seen(self.inner.remove(path))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.watch.call();
        self.watch.seen(self.inner.list(dir))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.watch.call();
        self.watch.seen(self.inner.sync_dir(dir))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.watch.call();
        self.watch.seen(self.inner.create_dir_all(dir))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.watch.call();
        self.watch.seen(self.inner.exists(path))
    }
}

#[derive(Debug)]
struct WatchFile {
    inner: Arc<dyn VfsFile>,
    watch: Arc<Watch>,
}

impl VfsFile for WatchFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.watch.call();
        self.watch.seen(self.inner.read_exact_at(buf, offset))
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.watch.call();
        self.watch.size(offset.saturating_add(buf.len() as u64));
        self.watch.seen(self.inner.write_all_at(buf, offset))
    }

    fn len(&self) -> io::Result<u64> {
        self.watch.call();
        self.watch.seen(self.inner.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.watch.call();
        self.watch.size(len);
        self.watch.seen(self.inner.set_len(len))
    }

    fn sync(&self) -> io::Result<()> {
        self.watch.call();
        self.watch.seen(self.inner.sync())
    }

    fn version(&self) -> Option<engine::FileVersion> {
        self.inner.version()
    }

    fn unchanged_prefix(&self, generation: u64) -> Option<u64> {
        self.inner.unchanged_prefix(generation)
    }
}
