//! Counters turned into per-second rates between polls, with server restarts detected.

use std::collections::HashMap;

/// The previous value of each counter, to turn the next one into a rate.
#[derive(Debug, Default)]
pub struct Counters {
    last: HashMap<String, (f64, u64)>,
}

impl Counters {
    /// The per-second rate of `name` since its previous value, or `None` on the first poll and
    /// when the counter went backwards (the server restarted or its statistics were reset: the
    /// new value becomes the baseline).
    pub fn rate(&mut self, name: &str, value: f64, at_ms: u64) -> Option<f64> {
        let previous = self.last.insert(name.to_owned(), (value, at_ms));
        let (before, then) = previous?;
        if value < before || at_ms <= then {
            return None;
        }
        Some((value - before) * 1000.0 / (at_ms - then) as f64)
    }

    /// The increase of `name` since its previous value (same rules as [`Counters::rate`]).
    pub fn delta(&mut self, name: &str, value: f64, at_ms: u64) -> Option<f64> {
        let previous = self.last.insert(name.to_owned(), (value, at_ms));
        let (before, _) = previous?;
        (value >= before).then_some(value - before)
    }
}

/// `part / (part + rest)` in percent, `None` when both are zero.
pub fn share(part: f64, rest: f64) -> Option<f64> {
    let total = part + rest;
    (total > 0.0).then(|| part * 100.0 / total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_between_polls() {
        let mut c = Counters::default();
        assert_eq!(c.rate("ops", 100.0, 1_000), None, "no rate from one poll");
        assert_eq!(c.rate("ops", 300.0, 3_000), Some(100.0));
        assert_eq!(c.rate("ops", 300.0, 4_000), Some(0.0));
    }

    #[test]
    fn counters_going_backwards_mean_a_restart() {
        let mut c = Counters::default();
        c.rate("ops", 5_000.0, 1_000);
        assert_eq!(
            c.rate("ops", 20.0, 2_000),
            None,
            "restart: no negative rate"
        );
        assert_eq!(
            c.rate("ops", 40.0, 3_000),
            Some(20.0),
            "the new value is the baseline"
        );
        assert_eq!(c.delta("hits", 10.0, 1), None);
        assert_eq!(c.delta("hits", 4.0, 2), None);
        assert_eq!(c.delta("hits", 9.0, 3), Some(5.0));
    }

    #[test]
    fn shares() {
        assert_eq!(share(3.0, 1.0), Some(75.0));
        assert_eq!(share(0.0, 0.0), None);
    }
}
