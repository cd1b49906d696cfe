//! `GET /metrics`: the console's figures for Prometheus, in the OpenMetrics text format.
//!
//! At each scrape: every collected figure of the latest snapshot (current readings only, in base
//! units, one family per figure, labelled by target and, for per-queue, per-worker and per-cache
//! figures, by that name), `pitwall_target_up`, the active jobs by state, the alerts that are not
//! inactive or resolved (`pitwall_alert`), plus the console's own
//! HTTP requests (a counter and a latency histogram per method and route, counted by a layer
//! around every request). With `[metrics] token`, a scrape needs `Authorization: Bearer <token>`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use pitwall::alerts::{AlertState, Alerts, OnCall};
use pitwall::jobs::{ActiveJobs, JobState};
use pitwall::status::StatusBoard;
use pitwall::target::TargetState;
use pitwall::telemetry::{Family as Group, Health, Telemetry};

/// A label set: a request's method, route and status, or a figure's target and item.
type Labels = Vec<(&'static str, String)>;

/// The console's metrics: its registry and the request families the layer fills.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<Labels, Counter>,
    durations: Family<Labels, Histogram>,
    token: Option<Arc<str>>,
}

impl Metrics {
    /// The registry over these services; `token` guards the endpoint when set.
    pub fn new(
        telemetry: Telemetry,
        board: StatusBoard,
        jobs: ActiveJobs,
        alerts: Alerts,
        oncall: OnCall,
        token: Option<String>,
    ) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "pitwall_http_requests",
            "HTTP requests the console answered, by method, route and status",
            requests.clone(),
        );
        let durations = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.5, 12))
        });
        registry.register(
            "pitwall_http_request_duration_seconds",
            "Time to answer an HTTP request (until its headers), by method and route",
            durations.clone(),
        );
        registry.register_collector(Box::new(Figures {
            telemetry,
            board,
            jobs,
            alerts,
            oncall,
        }));
        Self {
            registry: Arc::new(registry),
            requests,
            durations,
            token: token.map(Arc::from),
        }
    }
}

/// The layer that counts and times every request.
pub async fn record(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| route_of(req.uri().path()), |m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics
        .durations
        .get_or_create(&vec![("method", method.clone()), ("route", route.clone())])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&vec![
            ("method", method),
            ("route", route),
            ("status", status),
        ])
        .inc();
    response
}

/// A route label for a request no route matched, kept to a few values (never the raw path).
fn route_of(path: &str) -> String {
    if path.starts_with("/pkg/") {
        "/pkg/*".into()
    } else if path.contains('.') {
        "static".into()
    } else {
        "other".into()
    }
}

impl Metrics {
    /// Whether a token is configured and the request carries it as `Authorization: Bearer`.
    pub fn bearer_matches(&self, headers: &HeaderMap) -> bool {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        self.token
            .as_ref()
            .zip(given)
            .is_some_and(|(token, given)| same(given.as_bytes(), token.as_bytes()))
    }
}

/// `GET /metrics`.
pub async fn metrics(State(metrics): State<Metrics>, headers: HeaderMap) -> Response {
    if metrics.token.is_some() && !metrics.bearer_matches(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is needed: Authorization: Bearer <[metrics] token>\n",
        )
            .into_response();
    }
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &metrics.registry) {
        tracing::error!("encoding /metrics: {e}");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Equal bytes, compared in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The figures read at each scrape.
struct Figures {
    telemetry: Telemetry,
    board: StatusBoard,
    jobs: ActiveJobs,
    alerts: Alerts,
    oncall: OnCall,
}

impl std::fmt::Debug for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Figures")
    }
}

/// How one collected figure is exported.
#[derive(Debug, PartialEq)]
struct Exported {
    name: String,
    /// The per-item label (`queue`, `worker`, `cache`, `endpoint`) and its value.
    item: Option<(&'static str, String)>,
    /// What the collected value is multiplied by (percent to ratio, ms to seconds).
    scale: f64,
}

/// The Prometheus family of figure `metric` of `family`: base units (ratios, seconds, bytes),
/// `_per_second` for rates, and a label for the name after `:` in per-item figures.
fn exported(family: Group, metric: &str) -> Exported {
    let (base, item) = match metric.split_once(':') {
        Some((base, item)) => (base, Some(item)),
        None => (metric, None),
    };
    let (prefix, stem, label) = match item {
        None => (family.as_str(), base, None),
        Some(_) => {
            if let Some(rest) = base.strip_prefix("worker_") {
                ("worker", rest, Some("worker"))
            } else if let Some(rest) = base.strip_prefix("app_") {
                ("app_cache", rest, Some("cache"))
            } else if base == "connections_to" {
                ("endpoint", "connections", Some("endpoint"))
            } else {
                ("queue", base, Some("queue"))
            }
        }
    };
    let (stem, scale) = if stem == "hit_rate" {
        ("hit_ratio".to_owned(), 0.01)
    } else if stem == "tps" {
        ("transactions_per_second".to_owned(), 1.0)
    } else if let Some(s) = stem.strip_suffix("_pct") {
        (format!("{s}_ratio"), 0.01)
    } else if let Some(s) = stem.strip_suffix("_ms") {
        (format!("{s}_seconds"), 0.001)
    } else if let Some(s) = stem.strip_suffix("_s") {
        (format!("{s}_seconds"), 1.0)
    } else if let Some(s) = stem.strip_suffix("_per_sec") {
        (format!("{s}_per_second"), 1.0)
    } else {
        (stem.to_owned(), 1.0)
    };
    let name: String = format!("pitwall_{prefix}_{stem}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Exported {
        name,
        item: label.zip(item.map(str::to_owned)),
        scale,
    }
}

impl Collector for Figures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Group the current figures by family name: each family is described once.
        let snapshot = self.telemetry.snapshot();
        let mut families: std::collections::BTreeMap<String, Vec<(Labels, f64)>> =
            Default::default();
        for reading in &snapshot.readings {
            if reading.health != Health::Ok {
                continue;
            }
            for (metric, value) in &reading.values {
                let e = exported(reading.family, metric);
                let mut labels = vec![("target", reading.target.clone())];
                labels.extend(e.item);
                families
                    .entry(e.name)
                    .or_default()
                    .push((labels, value * e.scale));
            }
        }
        for (name, points) in families {
            let mut family = encoder.encode_descriptor(
                &name,
                "A figure Pitwall collected (see the README's metrics table)",
                None,
                MetricType::Gauge,
            )?;
            for (labels, value) in points {
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut up = encoder.encode_descriptor(
            "pitwall_target_up",
            "1 when the target answered its last check, 0 when it did not or was not checked yet",
            None,
            MetricType::Gauge,
        )?;
        for status in self.board.snapshot().iter() {
            let labels = [
                ("target", status.name.clone()),
                ("kind", status.kind.as_str().to_owned()),
            ];
            let value = i64::from(status.state == TargetState::Up);
            ConstGauge::new(value).encode(up.encode_family(&labels)?)?;
        }
        let active = self.jobs.snapshot();
        let mut jobs = encoder.encode_descriptor(
            "pitwall_jobs_active",
            "Maintenance jobs queued or running, by state",
            None,
            MetricType::Gauge,
        )?;
        for state in [JobState::Pending, JobState::Running] {
            let n = active.iter().filter(|j| j.state == state).count() as i64;
            ConstGauge::new(n).encode(jobs.encode_family(&[("state", state.as_str())])?)?;
        }
        let mut alerts = encoder.encode_descriptor(
            "pitwall_alert",
            "1 for each alert instance pending, firing, without data or in error, by rule, target, state, severity and whether a silence holds it",
            None,
            MetricType::Gauge,
        )?;
        let silenced = self.oncall.silenced();
        for a in self.alerts.snapshot().iter() {
            if matches!(a.state, AlertState::Inactive | AlertState::Resolved) {
                continue;
            }
            let held = silenced.contains(&a.key());
            let mut labels: Labels = vec![
                ("rule", a.rule.clone()),
                ("target", a.target.clone()),
                ("state", a.state.as_str().to_owned()),
                ("severity", a.severity.as_str().to_owned()),
                ("silenced", held.to_string()),
            ];
            labels.extend(
                a.labels
                    .iter()
                    .filter(|(k, _)| k == "metric")
                    .map(|(_, v)| ("metric", v.clone())),
            );
            ConstGauge::new(1i64).encode(alerts.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_exported_in_base_units_with_item_labels() {
        let e = |f, m| exported(f, m);
        assert_eq!(
            e(Group::Redis, "hit_rate"),
            Exported {
                name: "pitwall_redis_hit_ratio".into(),
                item: None,
                scale: 0.01
            }
        );
        assert_eq!(
            e(Group::Statements, "p95_ms").name,
            "pitwall_statements_p95_seconds"
        );
        assert_eq!(e(Group::Statements, "p95_ms").scale, 0.001);
        assert_eq!(e(Group::Host, "cpu_pct").name, "pitwall_host_cpu_ratio");
        assert_eq!(
            e(Group::Redis, "ops_per_sec").name,
            "pitwall_redis_ops_per_second"
        );
        assert_eq!(
            e(Group::Database, "tps").name,
            "pitwall_database_transactions_per_second"
        );
        assert_eq!(
            e(Group::Redis, "used_memory_bytes").name,
            "pitwall_redis_used_memory_bytes"
        );
        let q = e(Group::Queues, "depth:emails");
        assert_eq!(
            (q.name.as_str(), q.item),
            ("pitwall_queue_depth", Some(("queue", "emails".into())))
        );
        assert_eq!(
            e(Group::Queues, "oldest_s:emails").name,
            "pitwall_queue_oldest_seconds"
        );
        let w = e(Group::Queues, "worker_online:w1@host");
        assert_eq!(
            (w.name.as_str(), w.item),
            ("pitwall_worker_online", Some(("worker", "w1@host".into())))
        );
        let a = e(Group::Redis, "app_hit_rate:ai");
        assert_eq!(
            (a.name.as_str(), a.scale),
            ("pitwall_app_cache_hit_ratio", 0.01)
        );
        let c = e(Group::Console, "connections_to:db.internal:5432");
        assert_eq!(
            (c.name.as_str(), c.item),
            (
                "pitwall_endpoint_connections",
                Some(("endpoint", "db.internal:5432".into()))
            )
        );
        assert_eq!(route_of("/pkg/pitwall.wasm"), "/pkg/*");
        assert_eq!(route_of("/favicon.ico"), "static");
        assert!(same(b"token", b"token") && !same(b"token", b"tokeN") && !same(b"t", b"to"));
    }
}
