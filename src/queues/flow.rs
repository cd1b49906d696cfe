//! Messages in and out of one Redis list between polls, and how long its oldest message has
//! waited, from what each poll sees atomically: the depth, the newest message, and where the
//! previous poll's newest message sits now.
//!
//! Producers push at the head and workers pop at the tail, so the previous newest message (the
//! anchor) found at index `i` means exactly `i` messages arrived since. Every arrival gets a
//! sequence number; the poll that first saw a number is remembered, so the message at the tail
//! has waited at least since that poll. Without an anchor (an empty list, an anchor already
//! consumed, or one beyond the scanned ends) the counts are lower bounds and say so.

use std::collections::VecDeque;

/// How far `LPOS` looks for the anchor from each end of a list.
pub const SCAN: u64 = 1_000;
/// Newest messages larger than this are not kept as an anchor.
pub const MAX_ANCHOR: usize = 64 * 1024;
/// Polls remembered for ages; older arrivals count from the oldest one kept.
const MARKS: usize = 4_096;

/// What one poll saw of a list, read in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// Messages on the list.
    pub depth: u64,
    /// The newest message (`LINDEX list 0`).
    pub head: Option<String>,
    /// Where the anchor ([`ListFlow::anchor`]) is now, counted from the head, if found.
    pub anchor_at: Option<u64>,
}

/// The change since the previous poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Messages that arrived.
    pub pushed: u64,
    /// Messages that left (taken by workers, or deleted).
    pub popped: u64,
    /// Whether both are exact; otherwise they are lower bounds.
    pub exact: bool,
}

/// The running account of one list.
#[derive(Debug, Default)]
pub struct ListFlow {
    polled: bool,
    anchor: Option<String>,
    depth: u64,
    arrived: u64,
    left: u64,
    /// `(arrivals counted, at_ms)`: arrivals up to that count were first seen at that time.
    marks: VecDeque<(u64, u64)>,
}

impl ListFlow {
    /// The previous poll's newest message, to look for in the next one.
    pub fn anchor(&self) -> Option<&str> {
        self.anchor.as_deref()
    }

    /// Messages that arrived and left since watching began (the depth at the first poll counts
    /// as arrived).
    pub fn totals(&self) -> (u64, u64) {
        (self.arrived, self.left)
    }

    /// Takes one poll's view; the change since the previous one (`None` at the first).
    pub fn observe(&mut self, seen: Seen, at_ms: u64) -> Option<Step> {
        let Seen {
            depth,
            head,
            anchor_at,
        } = seen;
        let first = !self.polled;
        let step = if first {
            self.polled = true;
            self.arrived = depth;
            None
        } else {
            let previous = self.depth;
            let (pushed, exact) = match anchor_at {
                Some(i) => (i, true),
                // Nothing to anchor to: whatever is there now arrived since.
                None if previous == 0 => (depth, false),
                // The anchor was too large to keep: the growth at least.
                None if self.anchor.is_none() => (depth.saturating_sub(previous), false),
                // Both ends scanned: the anchor was taken, so every message there is new.
                None if depth <= 2 * SCAN => (depth, false),
                None => (depth.saturating_sub(previous).max(SCAN + 1), false),
            };
            let popped = (previous + pushed).saturating_sub(depth);
            self.arrived += pushed;
            self.left += popped;
            Some(Step {
                pushed,
                popped,
                exact,
            })
        };
        if first || step.is_some_and(|s| s.pushed > 0) {
            self.marks.push_back((self.arrived, at_ms));
        }
        self.depth = depth;
        self.anchor = head.filter(|h| h.len() <= MAX_ANCHOR);
        let oldest = self.arrived + 1 - depth;
        while self.marks.front().is_some_and(|m| m.0 < oldest) || self.marks.len() > MARKS {
            self.marks.pop_front();
        }
        step
    }

    /// When the message at the tail (the next to be taken) was first seen; `None` when empty.
    pub fn oldest_seen_ms(&self) -> Option<u64> {
        if self.depth == 0 {
            return None;
        }
        let oldest = self.arrived + 1 - self.depth;
        self.marks
            .iter()
            .find(|m| m.0 >= oldest)
            .or(self.marks.back())
            .map(|m| m.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(depth: u64, head: &str, anchor_at: Option<u64>) -> Seen {
        Seen {
            depth,
            head: (depth > 0).then(|| head.to_owned()),
            anchor_at,
        }
    }

    #[test]
    fn an_anchor_splits_arrivals_from_departures() {
        let mut f = ListFlow::default();
        assert_eq!(f.observe(seen(5, "m5", None), 1_000), None);
        assert_eq!(f.anchor(), Some("m5"));
        // m6..m8 pushed, two of the oldest taken: m5 now at index 3.
        let s = f.observe(seen(6, "m8", Some(3)), 3_000).unwrap();
        assert_eq!(
            s,
            Step {
                pushed: 3,
                popped: 2,
                exact: true
            }
        );
        assert_eq!(f.totals(), (8, 2));
        // Nothing new, one taken.
        let s = f.observe(seen(5, "m8", Some(0)), 5_000).unwrap();
        assert_eq!((s.pushed, s.popped, s.exact), (0, 1, true));
        assert_eq!(f.totals(), (8, 3));
    }

    #[test]
    fn the_oldest_message_waited_since_the_poll_that_first_saw_it() {
        let mut f = ListFlow::default();
        f.observe(seen(2, "m2", None), 1_000);
        assert_eq!(
            f.oldest_seen_ms(),
            Some(1_000),
            "there before watching: at least since"
        );
        f.observe(seen(4, "m4", Some(2)), 3_000); // m3, m4 arrive
        assert_eq!(f.oldest_seen_ms(), Some(1_000));
        f.observe(seen(2, "m4", Some(0)), 5_000); // m1, m2 taken
        assert_eq!(f.oldest_seen_ms(), Some(3_000), "m3 was first seen at 3 s");
        f.observe(seen(0, "", None), 7_000);
        assert_eq!(f.oldest_seen_ms(), None);
        assert!(f.marks.is_empty(), "marks go with the messages");
        let s = f.observe(seen(1, "m9", None), 9_000).unwrap();
        assert_eq!((s.pushed, s.popped, s.exact), (1, 0, false));
        assert_eq!(f.oldest_seen_ms(), Some(9_000));
    }

    #[test]
    fn without_an_anchor_the_counts_are_lower_bounds() {
        let mut f = ListFlow::default();
        f.observe(seen(3, "a", None), 0);
        // The anchor was taken with everything before it: all three now are new.
        let s = f.observe(seen(3, "b", None), 1_000).unwrap();
        assert_eq!((s.pushed, s.popped, s.exact), (3, 3, false));
        // A long list whose anchor is beyond both scanned ends.
        let mut f = ListFlow::default();
        f.observe(seen(5_000, "a", None), 0);
        let s = f.observe(seen(5_200, "b", None), 1_000).unwrap();
        assert_eq!((s.pushed, s.popped), (SCAN + 1, SCAN + 1 - 200));
        // An anchor too large to keep: the growth only.
        let mut f = ListFlow::default();
        f.observe(seen(4, &"x".repeat(MAX_ANCHOR + 1), None), 0);
        assert_eq!(f.anchor(), None);
        let s = f.observe(seen(6, "y", None), 1_000).unwrap();
        assert_eq!((s.pushed, s.popped, s.exact), (2, 0, false));
    }

    #[test]
    fn marks_stay_bounded() {
        let mut f = ListFlow::default();
        f.observe(seen(1, "m0", None), 0);
        for i in 1..=(MARKS as u64 + 10) {
            // One arrives each poll, nothing leaves: every poll adds a mark.
            f.observe(seen(1 + i, &format!("m{i}"), Some(1)), i * 1_000);
        }
        assert!(f.marks.len() <= MARKS);
        assert_eq!(
            f.oldest_seen_ms(),
            Some(f.marks[0].1),
            "older than the marks kept: at least since the oldest"
        );
    }
}
