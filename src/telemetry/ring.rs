//! A fixed-size ring of points per series: the live window at full resolution.

use std::collections::VecDeque;

use super::Point;

/// The newest `capacity` points of one series.
#[derive(Debug, Clone)]
pub struct Ring {
    capacity: usize,
    points: VecDeque<Point>,
}

impl Ring {
    /// An empty ring keeping at most `capacity` points.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            points: VecDeque::with_capacity(capacity.min(4096)),
        }
    }

    /// Adds a point, dropping the oldest when full.
    pub fn push(&mut self, point: Point) {
        if self.points.len() == self.capacity {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    /// The points at or after `since_ms`, oldest first.
    pub fn since(&self, since_ms: u64) -> Vec<Point> {
        self.iter_since(since_ms).copied().collect()
    }

    /// The points at or after `since_ms`, oldest first, without copying them.
    pub fn iter_since(&self, since_ms: u64) -> impl DoubleEndedIterator<Item = &Point> {
        let start = self.points.partition_point(|(t, _)| *t < since_ms);
        self.points.range(start..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_points() {
        let mut r = Ring::new(3);
        for t in 1..=5 {
            r.push((t * 1000, t as f64));
        }
        assert_eq!(r.since(0), vec![(3000, 3.0), (4000, 4.0), (5000, 5.0)]);
        assert_eq!(r.since(4000), vec![(4000, 4.0), (5000, 5.0)]);
        assert_eq!(r.since(6000), vec![]);
    }
}
