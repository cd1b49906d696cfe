//! Whether the console's own store takes writes. A failed write (disk full, store busy) marks it
//! not writable with the reason and since when; the next write that succeeds clears the mark.
//! Pages show a banner meanwhile, and the HTTP edge refuses changes with the reason.

use serde::{Deserialize, Serialize};

/// Why the console's store does not take writes, and since when (shared with the browser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotWritable {
    /// The store's error for the last write that failed.
    pub reason: String,
    /// When writes began to fail, in milliseconds since the Unix epoch.
    pub since_ms: u64,
}

#[cfg(feature = "services")]
pub use services::Writable;

#[cfg(feature = "services")]
mod services {
    use std::sync::{Arc, Mutex};

    use super::NotWritable;
    use crate::status::now_ms;

    /// The store's write health, shared by everything that writes (clones share one mark).
    #[derive(Debug, Clone, Default)]
    pub struct Writable(Arc<Mutex<Option<NotWritable>>>);

    impl Writable {
        /// Records a failed write: the mark keeps the time of the first failure and the newest
        /// reason.
        pub fn failed(&self, reason: &impl std::fmt::Display) {
            let mut mark = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let since_ms = mark.as_ref().map_or_else(now_ms, |m| m.since_ms);
            if mark.is_none() {
                tracing::error!("the console's store does not take writes: {reason}");
            }
            *mark = Some(NotWritable {
                reason: reason.to_string(),
                since_ms,
            });
        }

        /// Records a write that succeeded: the mark goes.
        pub fn succeeded(&self) {
            let mut mark = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if mark.take().is_some() {
                tracing::info!("the console's store takes writes again");
            }
        }

        /// Why writes fail, while they do.
        pub fn state(&self) -> Option<NotWritable> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_failure_marks_until_a_write_succeeds() {
            let w = Writable::default();
            assert_eq!(w.state(), None);
            w.failed(&"disk full");
            let first = w.state().expect("marked");
            assert_eq!(first.reason, "disk full");
            w.failed(&"database is locked");
            let second = w.state().expect("still marked");
            assert_eq!(second.reason, "database is locked");
            assert_eq!(second.since_ms, first.since_ms, "since the first failure");
            w.clone().succeeded();
            assert_eq!(w.state(), None, "clones share the mark");
        }
    }
}
