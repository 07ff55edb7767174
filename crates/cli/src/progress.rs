//! A progress bar on standard error while a book is read (hidden when not a terminal).

use expansa_import::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;

/// One bar per file, replaced as files are read.
pub struct Bar {
    current: Mutex<Option<ProgressBar>>,
}

impl Bar {
    pub fn new() -> Bar {
        Bar {
            current: Mutex::new(None),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        if let Ok(mut guard) = self.current.lock() {
            f(&mut guard);
        }
    }
}

/// Files smaller than this read too fast for a bar to help.
const MIN_BYTES: u64 = 8 << 20;

impl Progress for Bar {
    fn start(&self, file: &str, bytes: u64) {
        if bytes < MIN_BYTES {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>20} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(file.to_string());
        self.with(|c| *c = Some(bar));
    }

    fn advance(&self, bytes: u64) {
        self.with(|c| {
            if let Some(bar) = c {
                bar.inc(bytes);
            }
        });
    }

    fn finish(&self) {
        self.with(|c| {
            if let Some(bar) = c.take() {
                bar.finish_and_clear();
            }
        });
    }
}
