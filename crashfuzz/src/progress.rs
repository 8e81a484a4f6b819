//! indicatif progress bars behind [`harness::progress::Progress`].

use harness::progress::{Progress, ProgressSink};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// A progress bar on stderr (a spinner until a length is set).
pub struct Bar {
    bar: ProgressBar,
    unit: &'static str,
}

impl Bar {
    /// A bar counting `unit`s ("scenarios", "rounds", "images").
    pub fn new(unit: &'static str) -> Bar {
        let bar = ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(200));
        let b = Bar { bar, unit };
        b.style(None);
        b
    }

    /// A [`ProgressSink`] drawing a bar, or `None` when `enabled` is false.
    pub fn sink(enabled: bool, unit: &'static str) -> Option<ProgressSink> {
        enabled.then(|| ProgressSink::new(Bar::new(unit)))
    }

    fn style(&self, len: Option<u64>) {
        let template = match len {
            Some(_) => format!(
                "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {} {{msg}}",
                self.unit
            ),
            None => format!(
                "{{elapsed_precise}} {{spinner}} {{pos}} {}, {{msg}}",
                self.unit
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
    }
}

impl Progress for Bar {
    fn set_length(&self, len: Option<u64>) {
        if let Some(n) = len {
            self.bar.set_length(n);
        }
        self.style(len);
    }
    fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }
    fn inc(&self, n: u64) {
        self.bar.inc(n);
    }
    fn set_message(&self, msg: String) {
        self.bar.set_message(msg);
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
