//! Where long runs report how far they are. The library draws nothing: the
//! `crashfuzz` tool plugs a progress bar in (its `progress` module), so the
//! fuzz targets, which link this crate, link no terminal code.

use std::fmt;
use std::sync::Arc;

/// A progress display. Every method has a do-nothing default.
pub trait Progress: Send + Sync {
    /// The total, if known (`None`: a spinner).
    fn set_length(&self, _len: Option<u64>) {}
    /// Work done so far.
    fn set_position(&self, _pos: u64) {}
    /// Add to the work done.
    fn inc(&self, _n: u64) {}
    /// The line after the bar.
    fn set_message(&self, _msg: String) {}
    /// Done: clear the display.
    fn finish(&self) {}
}

/// A shared [`Progress`], as options carry it.
#[derive(Clone)]
pub struct ProgressSink(pub Arc<dyn Progress>);

impl ProgressSink {
    /// Wrap a display.
    pub fn new(p: impl Progress + 'static) -> ProgressSink {
        ProgressSink(Arc::new(p))
    }
}

impl fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressSink")
    }
}

/// Draw nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
