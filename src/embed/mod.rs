//! Embeddable panels: the catalogue of chart panels an internal portal can frame, the parameters
//! of an embed URL (`/embed/{target}/{panel}?theme=&from=&to=&refresh=&token=`), and what is known
//! about an embed token.
//!
//! The types here are shared with the browser. Minting, signing and checking tokens sits behind
//! the `services` feature.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Unit;
use crate::format::{format_duration, parse_duration};
use crate::target::TargetKind;
use crate::telemetry::{Family, Thresholds, metric};

#[cfg(feature = "services")]
mod tokens;

#[cfg(feature = "services")]
pub use tokens::{EmbedToken, Embeds, Error, Grant, Refusal};

/// One chart panel with a stable address: `/embed/{id}`, where `id` is `{target}/{panel}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Panel {
    /// `{target}/{panel}`, such as `host/cpu` or `cache/hit-rate`.
    pub id: String,
    /// What it shows.
    pub title: String,
    /// Whose series.
    pub target: String,
    /// Which family.
    pub family: Family,
    /// Which metric.
    pub metric: String,
    /// How its values are written.
    pub unit: Unit,
    /// The line drawn across, if any.
    pub threshold: Option<f64>,
}

/// The panels of one kind of target: the last part of the id, title, family, metric and unit.
type Spec = (&'static str, &'static str, Family, &'static str, Unit);

const REDIS: [Spec; 3] = [
    (
        "hit-rate",
        "Cache hit rate",
        Family::Redis,
        metric::HIT_RATE,
        Unit::Percent,
    ),
    (
        "ops",
        "Commands per second",
        Family::Redis,
        metric::OPS,
        Unit::Plain,
    ),
    (
        "memory",
        "Memory used",
        Family::Redis,
        metric::USED_MEMORY,
        Unit::Bytes,
    ),
];
const POSTGRES: [Spec; 3] = [
    (
        "p95",
        "Query latency p95",
        Family::Statements,
        metric::P95_MS,
        Unit::Millis,
    ),
    (
        "tps",
        "Transactions per second",
        Family::Database,
        metric::TPS,
        Unit::Plain,
    ),
    (
        "connections",
        "Connections",
        Family::Database,
        metric::CONNECTIONS,
        Unit::Count,
    ),
];
const CELERY: [Spec; 1] = [(
    "depth",
    "Queue depth",
    Family::Queues,
    metric::QUEUE_DEPTH,
    Unit::Count,
)];

/// Every panel for the configured targets, the console's machine first.
pub fn catalogue(targets: &[(String, TargetKind)], thresholds: &Thresholds) -> Vec<Panel> {
    let host = |part: &str, title: &str, m: &str, threshold: f64| Panel {
        id: format!("host/{part}"),
        title: title.to_owned(),
        target: "host".into(),
        family: Family::Host,
        metric: m.to_owned(),
        unit: Unit::Percent,
        threshold: Some(threshold),
    };
    let mut panels = vec![
        host("cpu", "CPU", metric::CPU, thresholds.cpu_pct),
        host("memory", "Memory", metric::MEMORY, thresholds.memory_pct),
        host("disk", "Disk space", metric::DISK, thresholds.disk_pct),
    ];
    for (name, kind) in targets {
        let specs: &[Spec] = match kind {
            TargetKind::Redis => &REDIS,
            TargetKind::Postgres => &POSTGRES,
            TargetKind::Celery => &CELERY,
        };
        panels.extend(specs.iter().map(|(part, title, family, m, unit)| Panel {
            id: format!("{name}/{part}"),
            title: format!("{title} · {name}"),
            target: name.clone(),
            family: *family,
            metric: (*m).to_owned(),
            unit: *unit,
            threshold: None,
        }));
    }
    panels
}

/// The embed address of panel `panel_id` opened with `token`: `/embed/{panel}?token=…`.
pub fn token_path(panel_id: &str, token: &str) -> String {
    format!("/embed/{panel_id}?token={}", crate::percent_encode(token))
}

/// The colours an embedded panel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// Follow the viewer's system setting.
    #[default]
    Auto,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

impl Theme {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Auto => "auto",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

/// A point in time in an embed URL: `now`, `now-15m` (units s, m, h, d), or Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Moment {
    /// This long before the moment the panel is drawn.
    Ago(u64),
    /// A fixed time, Unix milliseconds.
    At(u64),
}

impl Moment {
    /// The time in Unix milliseconds when it is `now_ms`.
    pub fn resolve(self, now_ms: u64) -> u64 {
        match self {
            Moment::Ago(ms) => now_ms.saturating_sub(ms),
            Moment::At(ms) => ms,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        if s == "now" {
            return Some(Moment::Ago(0));
        }
        if let Some(ago) = s.strip_prefix("now-") {
            return parse_duration(ago).map(Moment::Ago);
        }
        s.parse().ok().map(Moment::At)
    }
}

impl fmt::Display for Moment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Moment::Ago(0) => f.write_str("now"),
            Moment::Ago(ms) => write!(f, "now-{}", format_duration(*ms)),
            Moment::At(ms) => write!(f, "{ms}"),
        }
    }
}

/// The longest range a panel shows (the store keeps at most this much history by default).
pub const MAX_RANGE_MS: u64 = 31 * 86_400_000;
/// The shortest refresh period: one collection interval at the default.
pub const MIN_REFRESH_MS: u64 = 2_000;

/// What an embed URL asks for, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedQuery {
    /// Colours.
    pub theme: Theme,
    /// Start of the range (default `now-1h`).
    pub from: Moment,
    /// End of the range (default `now`).
    pub to: Moment,
    /// Redraw this often, in ms; `None` draws once.
    pub refresh_ms: Option<u64>,
    /// The embed token, when the viewer has no session.
    pub token: Option<String>,
}

impl Default for EmbedQuery {
    fn default() -> Self {
        Self {
            theme: Theme::Auto,
            from: Moment::Ago(3_600_000),
            to: Moment::Ago(0),
            refresh_ms: None,
            token: None,
        }
    }
}

impl EmbedQuery {
    /// Reads the query parameters through `get`; the error names the parameter that is wrong and
    /// what it takes.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, String> {
        let mut q = Self::default();
        if let Some(v) = get("theme") {
            q.theme = match v {
                "auto" => Theme::Auto,
                "light" => Theme::Light,
                "dark" => Theme::Dark,
                _ => return Err(format!("`theme` must be light, dark or auto, not `{v}`")),
            };
        }
        for (name, slot) in [("from", &mut q.from), ("to", &mut q.to)] {
            if let Some(v) = get(name) {
                *slot = Moment::parse(v).ok_or_else(|| {
                    format!(
                        "`{name}` must be `now`, `now-` and a duration such as `now-6h`, or Unix milliseconds, not `{v}`"
                    )
                })?;
            }
        }
        if let Some(v) = get("refresh") {
            q.refresh_ms = match v {
                "" | "off" => None,
                _ => match parse_duration(v) {
                    Some(ms) if ms >= MIN_REFRESH_MS => Some(ms),
                    Some(_) => {
                        return Err(format!(
                            "`refresh` must be at least {}, not `{v}`",
                            format_duration(MIN_REFRESH_MS)
                        ));
                    }
                    None => {
                        return Err(format!(
                            "`refresh` must be `off` or a duration such as `30s` or `5m`, not `{v}`"
                        ));
                    }
                },
            };
        }
        q.token = get("token").filter(|t| !t.is_empty()).map(str::to_owned);
        // Check the range against one moment; relative ends move together, so any moment does.
        let now = 100 * MAX_RANGE_MS;
        let (from, to) = (q.from.resolve(now), q.to.resolve(now));
        if from >= to {
            return Err(format!(
                "`from` ({}) must be before `to` ({})",
                q.from, q.to
            ));
        }
        if matches!((q.from, q.to), (Moment::Ago(_), Moment::Ago(_))) && to - from > MAX_RANGE_MS {
            return Err(format!(
                "the range from `{}` to `{}` is longer than {}",
                q.from,
                q.to,
                format_duration(MAX_RANGE_MS)
            ));
        }
        Ok(q)
    }

    /// The query string that asks for this again (token included), starting with `?`.
    pub fn to_query(&self) -> String {
        let mut s = format!(
            "?theme={}&from={}&to={}&refresh={}",
            self.theme.as_str(),
            self.from,
            self.to,
            self.refresh_ms.map_or("off".into(), format_duration)
        );
        if let Some(t) = &self.token {
            s.push_str("&token=");
            s.push_str(&crate::percent_encode(t));
        }
        s
    }
}

/// Which panels a token opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every panel.
    All,
    /// One panel, by id.
    Panel(String),
}

impl Scope {
    /// Whether the token opens `panel_id`.
    pub fn opens(&self, panel_id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Panel(id) => id == panel_id,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("every panel"),
            Scope::Panel(id) => f.write_str(id),
        }
    }
}

/// What the console keeps of a minted embed token (never the token itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenSummary {
    /// Its id, printed in lists and the audit log.
    pub id: String,
    /// What it is for, such as the portal that uses it.
    pub label: String,
    /// The panels it opens.
    pub scope: Scope,
    /// Who minted it.
    pub created_by: String,
    /// Unix ms.
    pub created_at_ms: u64,
    /// It stops working then (Unix ms).
    pub expires_at_ms: u64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<u64>,
}

impl TokenSummary {
    /// `active`, `expired` or `revoked`, at `now_ms`.
    pub fn state(&self, now_ms: u64) -> &'static str {
        if self.revoked_at_ms.is_some() {
            "revoked"
        } else if self.expires_at_ms <= now_ms {
            "expired"
        } else {
            "active"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<EmbedQuery, String> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        EmbedQuery::parse(|k| map.get(k).copied())
    }

    #[test]
    fn defaults_to_the_last_hour_drawn_once() {
        let q = parse(&[]).unwrap();
        assert_eq!(q, EmbedQuery::default());
        assert_eq!(q.from.resolve(10_000_000), 10_000_000 - 3_600_000);
        assert_eq!(q.to_query(), "?theme=auto&from=now-1h&to=now&refresh=off");
    }

    #[test]
    fn reads_every_parameter() {
        let q = parse(&[
            ("theme", "dark"),
            ("from", "now-6h"),
            ("to", "now-5m"),
            ("refresh", "30s"),
            ("token", "pwe1.a.b"),
        ])
        .unwrap();
        assert_eq!(q.theme, Theme::Dark);
        assert_eq!(q.from, Moment::Ago(6 * 3_600_000));
        assert_eq!(q.to, Moment::Ago(300_000));
        assert_eq!(q.refresh_ms, Some(30_000));
        assert_eq!(
            q.to_query(),
            "?theme=dark&from=now-6h&to=now-5m&refresh=30s&token=pwe1.a.b"
        );
        let fixed = parse(&[("from", "1700000000000"), ("to", "1700003600000")]).unwrap();
        assert_eq!(fixed.from, Moment::At(1_700_000_000_000));
    }

    #[test]
    fn names_the_parameter_that_is_wrong() {
        for (pairs, expected) in [
            (
                vec![("theme", "pink")],
                "`theme` must be light, dark or auto",
            ),
            (vec![("from", "yesterday")], "`from` must be `now`"),
            (vec![("to", "now-3w")], "`to` must be `now`"),
            (vec![("refresh", "1s")], "`refresh` must be at least 2s"),
            (
                vec![("refresh", "often")],
                "`refresh` must be `off` or a duration",
            ),
            (
                vec![("from", "now"), ("to", "now-1h")],
                "`from` (now) must be before `to` (now-1h)",
            ),
            (vec![("from", "now-90d")], "longer than 31d"),
        ] {
            let err = parse(&pairs).unwrap_err();
            assert!(err.starts_with(expected) || err.contains(expected), "{err}");
        }
    }

    #[test]
    fn catalogue_has_panels_per_target_kind() {
        let panels = catalogue(
            &[
                ("app-db".into(), TargetKind::Postgres),
                ("cache".into(), TargetKind::Redis),
                ("tasks".into(), TargetKind::Celery),
            ],
            &Thresholds::default(),
        );
        let ids: Vec<&str> = panels.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "host/cpu",
                "host/memory",
                "host/disk",
                "app-db/p95",
                "app-db/tps",
                "app-db/connections",
                "cache/hit-rate",
                "cache/ops",
                "cache/memory",
                "tasks/depth"
            ]
        );
        assert_eq!(panels[0].threshold, Some(70.0));
        assert!(Scope::All.opens("cache/ops"));
        assert!(!Scope::Panel("host/cpu".into()).opens("host/memory"));
    }
}
