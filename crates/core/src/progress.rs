//! Progress of long work, without a terminal crate: libraries report progress here and
//! a binary decides how to show it (`kiln-runtime` installs terminal bars; a server or
//! a test installs nothing, and every call is a no-op).

use std::sync::OnceLock;

/// Something that shows one piece of work's progress.
pub trait ProgressSink: Send + Sync {
    /// Sets how much is done.
    fn set_position(&self, position: u64);
    /// Adds to how much is done.
    fn inc(&self, delta: u64);
    /// Ends the display (it may be called more than once).
    fn finish(&self);
}

/// Makes a sink for work of `len` units (unknown when `None`) described by `message`.
pub type ProgressFactory = fn(len: Option<u64>, message: &str) -> Box<dyn ProgressSink>;

static FACTORY: OnceLock<ProgressFactory> = OnceLock::new();

/// Chooses how progress is shown for the rest of the process. The first call wins;
/// returns whether this one did.
pub fn install(factory: ProgressFactory) -> bool {
    FACTORY.set(factory).is_ok()
}

/// One piece of work's progress; hidden unless a binary installed a display.
pub struct Progress {
    sink: Option<Box<dyn ProgressSink>>,
}

impl Progress {
    /// Starts showing progress of `len` units (a spinner with a count when `None`).
    pub fn start(len: Option<u64>, message: &str) -> Self {
        Progress {
            sink: FACTORY.get().map(|make| make(len, message)),
        }
    }

    /// Sets how much is done.
    pub fn set_position(&self, position: u64) {
        if let Some(sink) = &self.sink {
            sink.set_position(position);
        }
    }

    /// Adds to how much is done.
    pub fn inc(&self, delta: u64) {
        if let Some(sink) = &self.sink {
            sink.inc(delta);
        }
    }

    /// Ends the display.
    pub fn finish(&self) {
        if let Some(sink) = &self.sink {
            sink.finish();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_display_every_call_is_a_no_op() {
        let progress = Progress::start(Some(3), "work");
        progress.set_position(1);
        progress.inc(2);
        progress.finish();
    }
}
