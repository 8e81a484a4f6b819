//! The one door between the engine and the disk.
//!
//! Every byte the engine reads or writes, every fsync, rename and unlink, goes
//! through [`Vfs`] and [`VfsFile`]. [`StdVfs`] implements them over `std::fs`
//! (the only place in the engine that touches `std::fs`); the `failpoints`
//! crate's `SimVfs` implements them in memory with exact crash semantics.
//!
//! # What the engine assumes of the disk
//! - A write that returned Ok is *not* durable; only a later `sync` of the same
//!   file that returned Ok makes it so (and makes the file's length durable).
//! - A failed `sync` may have dropped the dirty data it was syncing, or (as
//!   Linux does) left it readable in the page cache marked clean, so that a
//!   later `sync` returns Ok without writing it and only a power loss shows
//!   it gone, even to a restarted process. A later successful `sync` proves
//!   nothing about it, so the engine never retries an fsync: it poisons
//!   itself and asks to be reopened; and recovery writes afresh the header
//!   it accepts before its own fsync (see [`crate::recovery`]).
//! - Creating, renaming and unlinking a file are durable only after
//!   [`Vfs::sync_dir`] of its directory returned Ok; creating a directory is
//!   durable only after `sync_dir` of its parent.
//! - Writes are atomic at no granularity: a crash may tear a write at any
//!   512-byte sector, and unsynced writes may reach the disk in any order. A
//!   device without power-safe overwrite may lose the whole sector or 4 KiB
//!   page a torn write touched, bytes synced before included: the engine
//!   never appends into the block of an acknowledged header.
//! - Any call may fail: a read with EIO (once, or for as long as a sector
//!   is bad), a write with ENOSPC or after landing only in part
//!   (`write_all_at` then returns an error, and the engine takes nothing
//!   of it as written), and every metadata call with EIO.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to open a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; create the file if it does not exist (never truncates).
    Create,
}

/// An open file. Positional I/O only, so one handle can be shared between
/// the flusher (appending) and readers (snapshots) without a cursor.
pub trait VfsFile: Send + Sync + fmt::Debug {
    /// Fill `buf` from `offset`; reading past the end is an `UnexpectedEof` error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Write all of `buf` at `offset`, growing the file if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// The current length in bytes (including unsynced writes).
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Truncate or extend (with zeroes) to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Make every write and length change of this file durable (fsync).
    fn sync(&self) -> io::Result<()>;
    /// The file's identity and change generation, for a cache of what was
    /// read from it; `None` (the default, and [`StdVfs`]'s answer) when the
    /// file system cannot tell. Not an I/O call: no fault, no count.
    fn version(&self) -> Option<FileVersion> {
        None
    }
    /// How many leading bytes of the file are the same now as they were at
    /// `generation` (of [`VfsFile::version`]); `None` when unknown. Not an
    /// I/O call.
    fn unchanged_prefix(&self, generation: u64) -> Option<u64> {
        let _ = generation;
        None
    }
}

/// A file's identity and change generation ([`VfsFile::version`]). Whatever
/// was read from the first [`VfsFile::unchanged_prefix`]`(generation)` bytes
/// of the file `file` at `generation` reads the same now: a cache of
/// decoded bytes keyed by it is exact, not a heuristic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileVersion {
    /// The file itself (not its name): the same across renames and crashes,
    /// never reused for another file.
    pub file: u64,
    /// Bumped by every change to bytes the file already held: a write that
    /// changes one, a truncation, a crash image or a failed fsync that
    /// drops or alters some. Appends leave it as it is.
    pub generation: u64,
}

/// A file system: files by path plus the directory operations the engine needs.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Open a file. See [`OpenMode`].
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>>;
    /// Rename `from` to `to`, replacing `to` if it exists. Durable only after
    /// [`Vfs::sync_dir`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Unlink a file. Durable only after [`Vfs::sync_dir`].
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// The names (not paths) of the files in `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Make the directory's entries (creates, renames, unlinks) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Create `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Whether `path` names an existing file.
    fn exists(&self, path: &Path) -> io::Result<bool> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(false);
        };
        let name = name.to_string_lossy();
        Ok(self.list(dir)?.iter().any(|n| *n == name))
    }
}

/// The real file system, through `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdVfs;

#[derive(Debug)]
struct StdFile {
    file: std::fs::File,
    path: PathBuf,
}

/// Whether `e` is the platform refusing to rename or remove a file because
/// it is in use: [`io::ErrorKind::ResourceBusy`] (the simulator's Windows
/// mode, `EBUSY`), and on Windows the raw `ERROR_SHARING_VIOLATION` (32) and
/// `ERROR_LOCK_VIOLATION` (33), which std maps to no dedicated kind. Decided
/// by kind and code, never by the message's text.
pub fn is_file_busy(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::ResourceBusy {
        return true;
    }
    #[cfg(windows)]
    {
        const ERROR_SHARING_VIOLATION: i32 = 32;
        const ERROR_LOCK_VIOLATION: i32 = 33;
        if matches!(
            e.raw_os_error(),
            Some(ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION)
        ) {
            return true;
        }
    }
    false
}

#[cfg(unix)]
impl StdFile {
    fn pread(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }

    fn pwrite(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, buf, offset)
    }
}

/// Windows has no `read_exact_at`/`write_all_at`: `seek_read`/`seek_write`
/// may transfer less than asked (and move the handle's cursor, which no
/// caller relies on: all I/O here is positional), so loop as std's unix
/// versions do.
#[cfg(windows)]
impl StdFile {
    fn pread(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.file.seek_read(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "failed to fill whole buffer",
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn pwrite(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.file.seek_write(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "failed to write whole buffer",
                    ))
                }
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl VfsFile for StdFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.pread(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.pwrite(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync(&self) -> io::Result<()> {
        self.file
            .sync_all()
            .map_err(|e| io::Error::new(e.kind(), format!("fsync {}: {e}", self.path.display())))
    }
}

impl Vfs for StdVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let mut opts = std::fs::OpenOptions::new();
        match mode {
            OpenMode::Read => opts.read(true),
            OpenMode::ReadWrite => opts.read(true).write(true),
            OpenMode::Create => opts.read(true).write(true).create(true),
        };
        let file = opts.open(path)?;
        Ok(Arc::new(StdFile {
            file,
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    /// Creates the missing directories and makes each new entry durable by
    /// fsyncing its parent: a directory's own entry is durable only after
    /// its parent is fsynced, and without this a power loss right after a
    /// store was created in a new directory could lose the directory, and
    /// with it every acknowledged flush (the simulator models exactly this).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        // The missing directories, deepest first.
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(d) = at {
            if d.as_os_str().is_empty() || d.is_dir() {
                break;
            }
            missing.push(d.to_path_buf());
            at = d.parent();
        }
        std::fs::create_dir_all(dir)?;
        for created in missing.iter().rev() {
            let parent = match created.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            self.sync_dir(parent)?;
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(path.is_file())
    }
}

#[cfg(test)]
mod tests {
    use super::is_file_busy;
    use std::io;

    #[test]
    fn busy_is_told_by_kind_not_text() {
        assert!(is_file_busy(&io::Error::new(
            io::ErrorKind::ResourceBusy,
            "anything"
        )));
        assert!(!is_file_busy(&io::Error::other("device or resource busy")));
        assert!(!is_file_busy(&io::Error::from(io::ErrorKind::NotFound)));
    }
}
