//! When a crash strikes: at the Nth hit of a named failpoint, or at the Nth
//! I/O call of a kind. Also the record a crash leaves behind.

use std::fmt;

use crate::crash::CrashMode;

/// The kinds of I/O call the simulated disk counts. [`CrashTrigger`]s count
/// calls of one kind, so a crash can strike before or after any call of any
/// kind, during recovery too. `Vfs::exists` is a `List`. Kinds are appended,
/// never renumbered: an index into [`IoKind::ALL`] stays what it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IoKind {
    /// `Vfs::open`, any mode.
    Open,
    /// `VfsFile::read_exact_at`.
    Read,
    /// `VfsFile::write_all_at`.
    Write,
    /// `VfsFile::set_len`.
    SetLen,
    /// `VfsFile::sync` (fsync of a file).
    Sync,
    /// `Vfs::rename`.
    Rename,
    /// `Vfs::remove` (unlink).
    Remove,
    /// `Vfs::list` (and `Vfs::exists`).
    List,
    /// `Vfs::sync_dir` (fsync of a directory).
    SyncDir,
    /// `VfsFile::len` (an fstat).
    Len,
    /// `Vfs::create_dir_all`: each directory it creates is an entry in its
    /// parent, durable only after the parent's `sync_dir`.
    CreateDir,
}

impl IoKind {
    /// Every kind.
    pub const ALL: [IoKind; 11] = [
        IoKind::Open,
        IoKind::Read,
        IoKind::Write,
        IoKind::SetLen,
        IoKind::Sync,
        IoKind::Rename,
        IoKind::Remove,
        IoKind::List,
        IoKind::SyncDir,
        IoKind::Len,
        IoKind::CreateDir,
    ];

    /// A short snake_case name for command lines and reports.
    pub fn name(self) -> &'static str {
        match self {
            IoKind::Open => "open",
            IoKind::Read => "read",
            IoKind::Write => "write",
            IoKind::SetLen => "set_len",
            IoKind::Sync => "sync",
            IoKind::Rename => "rename",
            IoKind::Remove => "remove",
            IoKind::List => "list",
            IoKind::SyncDir => "sync_dir",
            IoKind::Len => "len",
            IoKind::CreateDir => "create_dir",
        }
    }

    /// Parse an [`IoKind::name`].
    pub fn from_name(name: &str) -> Option<IoKind> {
        IoKind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for IoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many I/O calls of each kind a simulated disk has seen since it was
/// made (across crashes). Calls refused because the disk is frozen are not
/// counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounts {
    counts: [u64; IoKind::ALL.len()],
}

impl IoCounts {
    /// Calls of `kind`.
    pub fn get(&self, kind: IoKind) -> u64 {
        self.counts[kind.index()]
    }

    /// Calls of every kind.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub(crate) fn bump(&mut self, kind: IoKind) {
        self.counts[kind.index()] += 1;
    }
}

/// When to crash. Counting starts when the trigger is armed
/// ([`crate::SimVfs::arm`]); `nth` is 1-based, so `nth: 1` is the next one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CrashTrigger {
    /// At the `nth` hit of the named failpoint (a name from
    /// `engine::failpoints::all()`), on a thread bound to the disk
    /// ([`crate::bind_thread`]). The failpoint's caller goes on running, but
    /// all its I/O fails from then on.
    AtFailpoint {
        /// The failpoint's catalog name.
        name: String,
        /// Which hit crashes, counted from arming.
        nth: u64,
    },
    /// At the `nth` I/O call of `kind`, before it takes effect: the call
    /// returns the crash error and changes nothing.
    AtIo {
        /// The kind of call counted.
        kind: IoKind,
        /// Which call crashes, counted from arming.
        nth: u64,
    },
    /// At the `nth` I/O call of `kind`, after it took effect (a write is in
    /// the page cache, an fsync reached the disk) but before it returns: the
    /// call returns the crash error anyway.
    AfterIo {
        /// The kind of call counted.
        kind: IoKind,
        /// Which call crashes, counted from arming.
        nth: u64,
    },
}

impl CrashTrigger {
    /// Which hit or call crashes.
    pub fn nth(&self) -> u64 {
        match self {
            CrashTrigger::AtFailpoint { nth, .. }
            | CrashTrigger::AtIo { nth, .. }
            | CrashTrigger::AfterIo { nth, .. } => *nth,
        }
    }
}

impl fmt::Display for CrashTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashTrigger::AtFailpoint { name, nth } => write!(f, "failpoint {name} hit #{nth}"),
            CrashTrigger::AtIo { kind, nth } => write!(f, "before {kind} call #{nth}"),
            CrashTrigger::AfterIo { kind, nth } => write!(f, "after {kind} call #{nth}"),
        }
    }
}

/// Why [`crate::SimVfs::arm`] refused a trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArmError {
    /// The failpoint name is not in `engine::failpoints::all()`, so it could
    /// never be hit.
    UnknownFailpoint(String),
    /// `nth` must be at least 1.
    ZeroNth,
}

impl fmt::Display for ArmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArmError::UnknownFailpoint(name) => {
                write!(f, "failpoint {name:?} is not in the engine's catalog")
            }
            ArmError::ZeroNth => f.write_str("a crash trigger's nth is 1-based; 0 never fires"),
        }
    }
}

impl std::error::Error for ArmError {}

/// What made the disk crash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CrashCause {
    /// [`crate::SimVfs::crash`], or [`crate::SimVfs::reboot`] of a live disk.
    Manual,
    /// An armed trigger fired.
    Trigger(CrashTrigger),
}

impl fmt::Display for CrashCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashCause::Manual => f.write_str("manual"),
            CrashCause::Trigger(t) => t.fmt(f),
        }
    }
}

/// One crash, as the disk saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashRecord {
    /// What made it crash.
    pub cause: CrashCause,
    /// The last failpoint hit on this disk before the crash (the boundary
    /// the crash came after), if any since the previous reboot.
    pub last_failpoint: Option<&'static str>,
    /// I/O calls counted before the crash, since the disk was made.
    pub io_calls: u64,
    /// The mode the post-crash image was computed with; `None` until
    /// [`crate::SimVfs::reboot`].
    pub mode: Option<CrashMode>,
}

impl fmt::Display for CrashRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crash ({}) after {} I/O calls",
            self.cause, self.io_calls
        )?;
        if let Some(fp) = self.last_failpoint {
            write!(f, ", last failpoint {fp}")?;
        }
        if let Some(mode) = self.mode {
            write!(f, ", mode {mode}")?;
        }
        Ok(())
    }
}

/// An armed trigger and how many more hits or calls until it fires.
#[derive(Clone, Debug)]
pub(crate) struct Armed {
    pub(crate) trigger: CrashTrigger,
    pub(crate) remaining: u64,
}

impl Armed {
    /// Count one I/O call of `kind`; `Some(after)` when this call fires the
    /// trigger (`after`: crash once the call took effect).
    pub(crate) fn count_io(&mut self, kind: IoKind) -> Option<bool> {
        let after = match &self.trigger {
            CrashTrigger::AtIo { kind: k, .. } if *k == kind => false,
            CrashTrigger::AfterIo { kind: k, .. } if *k == kind => true,
            _ => return None,
        };
        self.count().then_some(after)
    }

    /// Count one hit of failpoint `name`; true when it fires the trigger.
    pub(crate) fn count_failpoint(&mut self, name: &str) -> bool {
        match &self.trigger {
            CrashTrigger::AtFailpoint { name: n, .. } if n == name => self.count(),
            _ => false,
        }
    }

    fn count(&mut self) -> bool {
        debug_assert!(self.remaining > 0, "a fired trigger stays armed");
        self.remaining -= 1;
        self.remaining == 0
    }
}
