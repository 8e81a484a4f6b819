//! The background threads' coordination state, kept inside the store's
//! memory lock (`State::bg`): which threads run, what they were asked to
//! do, and what they did. Plain state, so the store can hold it without
//! depending on the background threads.

use crate::types::{BackgroundEvent, BackgroundReport, ObserverHandle};

/// The background threads' state, inside the store's memory lock.
#[derive(Debug, Default)]
pub(crate) struct Control {
    pub flusher_alive: bool,
    pub compactor_alive: bool,
    pub stop_compactor: bool,
    pub stop_flusher: bool,
    pub record_events: bool,
    /// Compactions asked for and not yet started.
    pub requested: u64,
    pub compaction_running: bool,
    /// `stats.commits` when the last compaction began.
    pub commits_at_last_compaction: u64,
    /// Why the store is poisoned for good, if a thread panicked.
    pub panicked: Option<String>,
    pub report: BackgroundReport,
    pub observer: Option<ObserverHandle>,
    /// The flusher's last flush attempt met a held store lock (Busy) and
    /// it has not committed since.
    pub retrying_after_busy: bool,
}

impl Control {
    pub(crate) fn log(&mut self, event: BackgroundEvent) {
        if let Some(observer) = &self.observer {
            observer.0.event(&event);
        }
        if self.record_events {
            self.report.events.push(event);
        }
    }

    pub(crate) fn compactions_ended(&self) -> u64 {
        self.report.compactions + self.report.compactions_failed + self.report.compactions_skipped
    }
}
