//! The alert service: runs the evaluator on the telemetry snapshots as they come and publishes the
//! current alerts through a `watch` channel, so every later reader (the page, notifications,
//! `/metrics`) shares one evaluation.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Alert, Evaluator, Rule};
use crate::status::{StatusBoard, now_ms};
use crate::telemetry::Telemetry;

/// At most one evaluation per this long: a burst of snapshots is judged once, at its newest.
pub const PACE: Duration = Duration::from_secs(1);

/// The current alerts. Cloning is cheap.
#[derive(Clone)]
pub struct Alerts {
    rx: watch::Receiver<Arc<Vec<Alert>>>,
}

impl Alerts {
    /// Judges `rules` on every new snapshot of `telemetry`, with the targets' checks from
    /// `board`. The task stops when every clone of the handle is dropped.
    pub fn spawn(rules: Vec<Rule>, telemetry: Telemetry, board: StatusBoard) -> Self {
        let (tx, rx) = watch::channel(Arc::new(Vec::new()));
        tokio::spawn(run(Evaluator::new(rules), telemetry, board, tx));
        Self { rx }
    }

    /// Every alert that is not inactive, most pressing first.
    pub fn snapshot(&self) -> Arc<Vec<Alert>> {
        self.rx.borrow().clone()
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Vec<Alert>>> {
        self.rx.clone()
    }
}

async fn run(
    mut evaluator: Evaluator,
    telemetry: Telemetry,
    board: StatusBoard,
    tx: watch::Sender<Arc<Vec<Alert>>>,
) {
    let mut snapshots = telemetry.subscribe();
    tracing::info!(rules = evaluator.rules().len(), "alert rules running");
    while snapshots.changed().await.is_ok() && !tx.is_closed() {
        let snapshot = snapshots.borrow_and_update().clone();
        let statuses = board.snapshot();
        let alerts =
            telemetry.read_rings(|rings| evaluator.evaluate(now_ms(), &snapshot, &statuses, rings));
        tx.send_if_modified(|current| {
            let changed = **current != alerts;
            if changed {
                *current = Arc::new(alerts);
            }
            changed
        });
        tokio::time::sleep(PACE).await;
    }
}
