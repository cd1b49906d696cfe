//! An alert rule, checked once at start: a condition over one collected series, how long it must
//! hold, how long firing outlasts it, and what to tell people.
//!
//! The condition is written `aggregation(family/metric[window]) op threshold`:
//!
//! - `family` is where the metric comes from: `host`, `console`, `redis`, `database`,
//!   `statements` or `queues` (see [`Family`]); `metric` one the family publishes
//!   ([`crate::telemetry::metric`]), or a per-item prefix with `*` (`queues/depth:*`: one instance
//!   per queue);
//! - `aggregation` over the `window` (`30s`, `5m`, `1h`; at most the live window of an hour):
//!   `last`, `avg`, `min`, `max`, or for counters `increase` (counter resets counted from zero)
//!   and `rate` (increase per second);
//! - a bare selector (`redis/memory_of_max_pct > 90`) is `last` over one minute;
//! - `op` is `<`, `<=`, `>` or `>=`, the threshold a number;
//! - `up < 1` is the target's own check: 1 while it answers, 0 while it does not.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;

use super::Severity;
use crate::telemetry::Family;

/// The window of a bare selector.
pub const LAST_WINDOW: Duration = Duration::from_secs(60);
/// The longest window: what the rings keep at full resolution.
pub const MAX_WINDOW: Duration = Duration::from_secs(3_600);
/// The longest `for` and `keep_firing_for`.
pub const MAX_HOLD: Duration = Duration::from_secs(7 * 86_400);

/// A rule that does not make sense, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The rule's name is not a plain name.
    #[error(
        "invalid alert rule name {0:?}: expected 1 to 63 lowercase letters, digits, `-` or `_`, starting with a letter"
    )]
    Name(String),
    /// The condition does not parse or names what is not collected.
    #[error("alert rule `{rule}`: `expr` column {column}: {message}")]
    Expr {
        /// The rule.
        rule: String,
        /// 1-based column in the expression.
        column: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// Another field is wrong.
    #[error("alert rule `{rule}`: `{field}`: {message}")]
    Field {
        /// The rule.
        rule: String,
        /// The field.
        field: &'static str,
        /// What is wrong and what was expected.
        message: String,
    },
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// A rule as written in `[[alerts.rules]]`, not checked yet.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique name.
    pub name: String,
    /// The condition (see the module documentation).
    pub expr: String,
    /// How long the condition must hold before firing (`5m`; default `0s`: at once).
    #[serde(rename = "for")]
    pub pending_for: Option<String>,
    /// How long firing outlasts the condition (default `0s`).
    pub keep_firing_for: Option<String>,
    /// `info`, `warning` (the default) or `critical`.
    pub severity: Option<String>,
    /// What to tell people; `{target}`, `{metric}`, `{value}` and `{threshold}` are filled in.
    pub summary: String,
    /// Where to read what to do: an `http(s)://` URL or a console path such as `/tables`.
    pub runbook_url: Option<String>,
    /// Only these targets (default: every target with the family).
    #[serde(default)]
    pub targets: Vec<String>,
}

/// How the window's points become one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// The newest point.
    Last,
    /// The mean of the points.
    Avg,
    /// The smallest point.
    Min,
    /// The largest point.
    Max,
    /// How much a counter grew (a drop is a reset: counted from zero).
    Increase,
    /// [`Aggregation::Increase`] per second between the first and last point.
    Rate,
}

impl Aggregation {
    const ALL: [(&'static str, Aggregation); 6] = [
        ("last", Aggregation::Last),
        ("avg", Aggregation::Avg),
        ("min", Aggregation::Min),
        ("max", Aggregation::Max),
        ("increase", Aggregation::Increase),
        ("rate", Aggregation::Rate),
    ];
}

/// Which metrics of the family a rule reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// One metric.
    Exact(String),
    /// Every metric with this prefix (`depth:`): one instance each.
    Prefix(&'static str),
}

/// What a rule compares with its threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// The target's own check: 1 up, 0 down.
    Up,
    /// An aggregation of a collected series over a window.
    Series {
        /// Where the metric comes from.
        family: Family,
        /// Which metric or metrics.
        metric: Metric,
        /// How the window becomes a figure.
        aggregation: Aggregation,
        /// How far back.
        window: Duration,
    },
}

/// The comparison of the figure with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Below,
    /// `<=`
    AtMost,
    /// `>`
    Above,
    /// `>=`
    AtLeast,
}

impl Op {
    /// Whether `value op threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Below => value < threshold,
            Op::AtMost => value <= threshold,
            Op::Above => value > threshold,
            Op::AtLeast => value >= threshold,
        }
    }
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub(super) name: String,
    pub(super) expr: String,
    pub(super) query: Query,
    pub(super) op: Op,
    pub(super) threshold: f64,
    pub(super) pending_for: Duration,
    pub(super) keep_firing_for: Duration,
    pub(super) severity: Severity,
    pub(super) summary: String,
    pub(super) runbook_url: Option<String>,
    pub(super) targets: Vec<String>,
}

/// The placeholders a summary may hold.
const PLACEHOLDERS: [&str; 4] = ["target", "metric", "value", "threshold"];

impl Rule {
    /// Checks a rule as written.
    pub fn parse(spec: RuleSpec) -> Result<Self> {
        let name = spec.name;
        let ok = (1..=63).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            return Err(Error::Name(name));
        }
        let field = |field: &'static str, message: String| Error::Field {
            rule: name.clone(),
            field,
            message,
        };
        let (query, op, threshold) =
            parse_expr(&spec.expr).map_err(|(column, message)| Error::Expr {
                rule: name.clone(),
                column,
                message,
            })?;
        let hold = |f: &'static str, v: Option<&str>| match v {
            None => Ok(Duration::ZERO),
            Some(v) => match parse_duration(v) {
                Some(d) if d <= MAX_HOLD => Ok(d),
                Some(_) => Err(field(f, "must be at most 7 days".into())),
                None => Err(field(f, bad_duration(v))),
            },
        };
        let pending_for = hold("for", spec.pending_for.as_deref())?;
        let keep_firing_for = hold("keep_firing_for", spec.keep_firing_for.as_deref())?;
        let severity = match spec.severity.as_deref() {
            None => Severity::Warning,
            Some(s) => s.parse().map_err(|m| field("severity", m))?,
        };
        check_summary(&spec.summary).map_err(|m| field("summary", m))?;
        if let Some(url) = &spec.runbook_url {
            let absolute = url::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            let path = url.starts_with('/') && !url.starts_with("//");
            if !(absolute || path) || url.chars().any(char::is_whitespace) {
                return Err(field(
                    "runbook_url",
                    format!("{url:?} is neither an http(s) URL nor a console path such as /tables"),
                ));
            }
        }
        if let Some(dup) = spec
            .targets
            .iter()
            .enumerate()
            .find_map(|(i, t)| spec.targets[..i].contains(t).then_some(t))
        {
            return Err(field("targets", format!("`{dup}` is listed twice")));
        }
        Ok(Rule {
            expr: spec.expr,
            query,
            op,
            threshold,
            pending_for,
            keep_firing_for,
            severity,
            summary: spec.summary,
            runbook_url: spec.runbook_url,
            targets: spec.targets,
            name,
        })
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The condition as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The family the rule reads (none for `up`, which reads the target's check).
    pub fn family(&self) -> Option<Family> {
        match &self.query {
            Query::Up => None,
            Query::Series { family, .. } => Some(*family),
        }
    }

    /// The targets it is limited to (empty: every target).
    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    /// The summary with `{target}`, `{metric}`, `{value}` and `{threshold}` filled in.
    pub fn summary(&self, target: &str, metric: &str, value: Option<f64>) -> String {
        let mut out = String::with_capacity(self.summary.len() + 16);
        let mut rest = self.summary.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
            match &rest[open + 1..close] {
                "target" => out.push_str(target),
                "metric" => out.push_str(metric),
                "value" => match value {
                    Some(v) => write_figure(&mut out, v),
                    None => out.push('–'),
                },
                _ => write_figure(&mut out, self.threshold),
            }
            rest = &rest[(close + 1).min(rest.len())..];
        }
        out.push_str(rest);
        out
    }
}

/// A figure as a summary shows it: whole from 100 up, else with at most two decimals. Written
/// from integers: this runs for every shown alert on every evaluation.
fn write_figure(out: &mut String, v: f64) {
    if v.abs() >= 1e15 {
        let _ = write!(out, "{v:.0}");
    } else if v.abs() >= 100.0 {
        let _ = write!(out, "{}", v.round() as i64);
    } else {
        let hundredths = (v * 100.0).round() as i64;
        if hundredths < 0 {
            out.push('-');
        }
        let h = hundredths.unsigned_abs();
        let _ = write!(out, "{}", h / 100);
        let (tenths, last) = ((h % 100) / 10, h % 10);
        if tenths + last > 0 {
            out.push('.');
            out.push(char::from(b'0' + tenths as u8));
            if last > 0 {
                out.push(char::from(b'0' + last as u8));
            }
        }
    }
}

fn check_summary(summary: &str) -> std::result::Result<(), String> {
    if summary.trim().is_empty() {
        return Err("must not be empty".into());
    }
    let mut rest = summary;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err("a `{` is not closed".into());
        };
        let name = &rest[open + 1..open + close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{name}}}`: use {{target}}, {{metric}}, {{value}} or {{threshold}}"
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

/// A duration in the one written form (`500ms`, `30s`, `5m`, `1h`, `7d`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    crate::format::parse_duration(s).map(Duration::from_millis)
}

fn bad_duration(s: &str) -> String {
    format!("`{s}` is not a duration: write a whole number and a unit, such as 30s, 5m or 1h")
}

/// The parser's position in an expression: errors carry the 1-based column.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

type Parsed<T> = std::result::Result<T, (usize, String)>;

impl<'a> Cursor<'a> {
    fn column(&self) -> usize {
        self.text[..self.at].chars().count() + 1
    }

    fn fail<T>(&self, message: impl Into<String>) -> Parsed<T> {
        Err((self.column(), message.into()))
    }

    fn skip_space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.peek() == Some(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Characters up to the first of `stop` (or a space, or the end).
    fn take_until(&mut self, stop: &[char]) -> &'a str {
        let rest = &self.text[self.at..];
        let len = rest
            .find(|c: char| c.is_whitespace() || stop.contains(&c))
            .unwrap_or(rest.len());
        self.at += len;
        &rest[..len]
    }

    fn word(&mut self) -> &'a str {
        self.skip_space();
        let rest = &self.text[self.at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(rest.len());
        self.at += len;
        &rest[..len]
    }
}

/// `(query, op, threshold)` of an expression, or the column and what is wrong.
fn parse_expr(text: &str) -> Parsed<(Query, Op, f64)> {
    let mut c = Cursor { text, at: 0 };
    c.skip_space();
    let start = c.at;
    let word = c.word();
    if word.is_empty() {
        return c.fail("expected an aggregation such as avg(…), a family such as redis/…, or up");
    }
    let query = if c.eat('(') {
        let Some(aggregation) = Aggregation::ALL
            .iter()
            .find_map(|(n, a)| (*n == word).then_some(*a))
        else {
            c.at = start;
            return c.fail(format!(
                "unknown aggregation `{word}`: use last, avg, min, max, increase or rate"
            ));
        };
        c.skip_space();
        let inner_at = c.at;
        let inner = c.word();
        if inner == "up" {
            c.at = inner_at;
            return c.fail("`up` takes no aggregation or window: write `up < 1`");
        }
        let (family, metric, window) = selector(&mut c, inner, inner_at)?;
        let window = match (window, aggregation) {
            (Some(w), _) => w,
            (None, Aggregation::Last) => LAST_WINDOW,
            (None, _) => {
                return c.fail(format!(
                    "`{word}` needs a window, such as {word}({family}/…[5m])"
                ));
            }
        };
        if !c.eat(')') {
            return c.fail("expected `)`");
        }
        Query::Series {
            family,
            metric,
            aggregation,
            window,
        }
    } else if word == "up" && c.peek() != Some('/') {
        Query::Up
    } else {
        let (family, metric, window) = selector(&mut c, word, start)?;
        if window.is_some() {
            c.at = start;
            return c.fail("a window needs an aggregation, such as avg(…[5m])");
        }
        Query::Series {
            family,
            metric,
            aggregation: Aggregation::Last,
            window: LAST_WINDOW,
        }
    };
    c.skip_space();
    let op = if c.text[c.at..].starts_with("<=") {
        Op::AtMost
    } else if c.text[c.at..].starts_with(">=") {
        Op::AtLeast
    } else if c.eat('<') {
        Op::Below
    } else if c.eat('>') {
        Op::Above
    } else if c.peek().is_none() {
        return c.fail("expected a comparison (<, <=, > or >=) and a threshold");
    } else {
        return c.fail("expected a comparison: <, <=, > or >=");
    };
    if matches!(op, Op::AtMost | Op::AtLeast) {
        c.at += 2;
    }
    c.skip_space();
    let number = c.take_until(&[]);
    let threshold = match number.replace('_', "").parse::<f64>() {
        Ok(t) if t.is_finite() => t,
        _ if number.is_empty() => return c.fail("expected a threshold"),
        _ => {
            c.at -= number.len();
            return c.fail(format!("`{number}` is not a number"));
        }
    };
    c.skip_space();
    if c.peek().is_some() {
        return c.fail("unexpected text after the threshold");
    }
    Ok((query, op, threshold))
}

/// `family/metric[window]` after the family's name `word`, read at `family_at`.
fn selector(
    c: &mut Cursor,
    word: &str,
    family_at: usize,
) -> Parsed<(Family, Metric, Option<Duration>)> {
    let Some(family) = Family::parse(word) else {
        c.at = family_at;
        let known: Vec<&str> = Family::ALL.iter().map(|f| f.as_str()).collect();
        return c.fail(format!("unknown family `{word}`: use {}", known.join(", ")));
    };
    if c.peek() != Some('/') {
        return c.fail(format!("expected `/` and a metric after `{word}`"));
    }
    c.at += 1;
    let metric_at = c.at;
    let name = c.take_until(&['[', ')', '<', '>']);
    let metric = if let Some(prefix) = name.strip_suffix('*') {
        family
            .prefixes()
            .iter()
            .copied()
            .find(|p| *p == prefix)
            .map(Metric::Prefix)
    } else {
        let known = family.metrics().contains(&name)
            || family
                .prefixes()
                .iter()
                .any(|p| name.len() > p.len() && name.starts_with(p));
        known.then(|| Metric::Exact(name.to_owned()))
    };
    let Some(metric) = metric else {
        c.at = metric_at;
        let mut known: Vec<String> = family.metrics().iter().map(|m| m.to_string()).collect();
        known.extend(family.prefixes().iter().map(|p| format!("{p}*")));
        return c.fail(if name.is_empty() {
            format!("expected a metric after `{word}/`")
        } else {
            format!(
                "`{family}` publishes no metric `{name}`; it publishes {}",
                known.join(", ")
            )
        });
    };
    let window = if c.peek() == Some('[') {
        c.at += 1;
        let window_at = c.at;
        let w = c.take_until(&[']']);
        let window = match parse_duration(w) {
            Some(d) if d >= Duration::from_secs(1) && d <= MAX_WINDOW => d,
            Some(_) => {
                c.at = window_at;
                return c.fail("the window must be between 1s and 1h (the live window)");
            }
            None => {
                c.at = window_at;
                return c.fail(bad_duration(w));
            }
        };
        if c.peek() != Some(']') {
            return c.fail("expected `]`");
        }
        c.at += 1;
        Some(window)
    } else {
        None
    };
    Ok((family, metric, window))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(expr: &str) -> RuleSpec {
        RuleSpec {
            name: "r".into(),
            expr: expr.into(),
            summary: "{target}: {metric} at {value} (limit {threshold})".into(),
            ..Default::default()
        }
    }

    fn expr_error(expr: &str) -> String {
        Rule::parse(spec(expr)).unwrap_err().to_string()
    }

    #[test]
    fn parses_good_rules() {
        let r = Rule::parse(RuleSpec {
            pending_for: Some("5m".into()),
            keep_firing_for: Some("90s".into()),
            severity: Some("critical".into()),
            runbook_url: Some("/cache".into()),
            targets: vec!["cache".into()],
            ..spec("avg(redis/hit_rate[5m]) < 80")
        })
        .unwrap();
        assert_eq!(
            r.query,
            Query::Series {
                family: Family::Redis,
                metric: Metric::Exact("hit_rate".into()),
                aggregation: Aggregation::Avg,
                window: Duration::from_secs(300),
            }
        );
        assert_eq!((r.op, r.threshold), (Op::Below, 80.0));
        assert_eq!(r.pending_for, Duration::from_secs(300));
        assert_eq!(r.keep_firing_for, Duration::from_secs(90));
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(r.family(), Some(Family::Redis));

        let bare = Rule::parse(spec("redis/memory_of_max_pct>=90.5")).unwrap();
        assert_eq!(
            bare.query,
            Query::Series {
                family: Family::Redis,
                metric: Metric::Exact("memory_of_max_pct".into()),
                aggregation: Aggregation::Last,
                window: LAST_WINDOW,
            }
        );
        assert_eq!((bare.op, bare.threshold), (Op::AtLeast, 90.5));
        assert_eq!(bare.severity, Severity::Warning);
        assert_eq!(bare.pending_for, Duration::ZERO);

        let up = Rule::parse(spec("up < 1")).unwrap();
        assert_eq!((&up.query, up.family()), (&Query::Up, None));

        let per_queue = Rule::parse(spec(" max( queues/depth:*[2m] ) > 1_000 ")).unwrap();
        assert!(matches!(
            per_queue.query,
            Query::Series {
                metric: Metric::Prefix("depth:"),
                aggregation: Aggregation::Max,
                ..
            }
        ));
        assert_eq!(per_queue.threshold, 1000.0);
        let one_queue = Rule::parse(spec("rate(queues/arrived:emails[10m]) <= 0")).unwrap();
        assert!(matches!(
            one_queue.query,
            Query::Series { metric: Metric::Exact(ref m), aggregation: Aggregation::Rate, .. } if m == "arrived:emails"
        ));
        assert!(Rule::parse(spec("last(host/cpu_pct) > 70")).is_ok());
    }

    #[test]
    fn bad_expressions_say_where_and_why() {
        assert_eq!(
            expr_error("avg(redis/hit_rat[5m]) < 80"),
            "alert rule `r`: `expr` column 11: `redis` publishes no metric `hit_rat`; it publishes \
             hit_rate, ops_per_sec, used_memory_bytes, max_memory_bytes, memory_of_max_pct, \
             fragmentation_ratio, evictions_per_sec, expirations_per_sec, clients, \
             rejected_per_sec, keys, app_hit_rate:*, app_hits_per_sec:*, app_misses_per_sec:*"
        );
        assert_eq!(
            expr_error("avg(mysql/qps[5m]) > 1"),
            "alert rule `r`: `expr` column 5: unknown family `mysql`: use host, console, redis, \
             database, statements, queues"
        );
        assert_eq!(
            expr_error("median(redis/hit_rate[5m]) < 80"),
            "alert rule `r`: `expr` column 1: unknown aggregation `median`: use last, avg, min, \
             max, increase or rate"
        );
        assert_eq!(
            expr_error("avg(redis/hit_rate) < 80"),
            "alert rule `r`: `expr` column 19: `avg` needs a window, such as avg(redis/…[5m])"
        );
        assert_eq!(
            expr_error("redis/hit_rate[5m] < 80"),
            "alert rule `r`: `expr` column 1: a window needs an aggregation, such as avg(…[5m])"
        );
        assert_eq!(
            expr_error("avg(redis/hit_rate[5 m]) < 80"),
            "alert rule `r`: `expr` column 20: `5` is not a duration: write a whole number and a \
             unit, such as 30s, 5m or 1h"
        );
        assert_eq!(
            expr_error("avg(redis/hit_rate[2h]) < 80"),
            "alert rule `r`: `expr` column 20: the window must be between 1s and 1h (the live window)"
        );
        assert_eq!(
            expr_error("avg(redis/hit_rate[5m] < 80"),
            "alert rule `r`: `expr` column 24: expected `)`"
        );
        assert_eq!(
            expr_error("redis/hit_rate = 80"),
            "alert rule `r`: `expr` column 16: expected a comparison: <, <=, > or >="
        );
        assert_eq!(
            expr_error("redis/hit_rate"),
            "alert rule `r`: `expr` column 15: expected a comparison (<, <=, > or >=) and a threshold"
        );
        assert_eq!(
            expr_error("redis/hit_rate < eighty"),
            "alert rule `r`: `expr` column 18: `eighty` is not a number"
        );
        assert_eq!(
            expr_error("redis/hit_rate < 80 for 5m"),
            "alert rule `r`: `expr` column 21: unexpected text after the threshold"
        );
        assert_eq!(
            expr_error("max(up) < 1"),
            "alert rule `r`: `expr` column 5: `up` takes no aggregation or window: write `up < 1`"
        );
        assert_eq!(
            expr_error("queues/worker_*[5m] > 1"),
            "alert rule `r`: `expr` column 8: `queues` publishes no metric `worker_*`; it \
             publishes depth, in_per_sec, out_per_sec, unacked, unacked_oldest_s, \
             workers_online, depth:*, in_per_sec:*, out_per_sec:*, flow_exact:*, arrived:*, \
             left:*, oldest_s:*, worker_online:*, worker_active:*, \
             worker_processed_per_sec:*, worker_silent_s:*, worker_load1:*"
        );
        assert_eq!(
            expr_error(""),
            "alert rule `r`: `expr` column 1: expected an aggregation such as avg(…), a family \
             such as redis/…, or up"
        );
    }

    #[test]
    fn bad_fields_name_the_rule_and_the_field() {
        let err = |s: RuleSpec| Rule::parse(s).unwrap_err().to_string();
        assert_eq!(
            err(RuleSpec {
                name: "Cache hit".into(),
                ..spec("up < 1")
            }),
            "invalid alert rule name \"Cache hit\": expected 1 to 63 lowercase letters, digits, \
             `-` or `_`, starting with a letter"
        );
        assert_eq!(
            err(RuleSpec {
                pending_for: Some("5 minutes".into()),
                ..spec("up < 1")
            }),
            "alert rule `r`: `for`: `5 minutes` is not a duration: write a whole number and a \
             unit, such as 30s, 5m or 1h"
        );
        assert_eq!(
            err(RuleSpec {
                keep_firing_for: Some("8d".into()),
                ..spec("up < 1")
            }),
            "alert rule `r`: `keep_firing_for`: must be at most 7 days"
        );
        assert_eq!(
            err(RuleSpec {
                severity: Some("page".into()),
                ..spec("up < 1")
            }),
            "alert rule `r`: `severity`: unknown severity `page`: use info, warning or critical"
        );
        assert_eq!(
            err(RuleSpec {
                summary: "{target} at {val}".into(),
                ..spec("up < 1")
            }),
            "alert rule `r`: `summary`: unknown placeholder `{val}`: use {target}, {metric}, \
             {value} or {threshold}"
        );
        assert_eq!(
            err(RuleSpec {
                runbook_url: Some("wiki/redis".into()),
                ..spec("up < 1")
            }),
            "alert rule `r`: `runbook_url`: \"wiki/redis\" is neither an http(s) URL nor a \
             console path such as /tables"
        );
        assert_eq!(
            err(RuleSpec {
                targets: vec!["a".into(), "b".into(), "a".into()],
                ..spec("up < 1")
            }),
            "alert rule `r`: `targets`: `a` is listed twice"
        );
    }

    #[test]
    fn summaries_fill_in_the_instance() {
        let r = Rule::parse(spec("max(queues/depth:*[5m]) > 1000")).unwrap();
        assert_eq!(
            r.summary("broker", "depth:emails", Some(1234.4)),
            "broker: depth:emails at 1234 (limit 1000)"
        );
        assert_eq!(
            r.summary("broker", "depth:emails", Some(12.5)),
            "broker: depth:emails at 12.5 (limit 1000)"
        );
        assert_eq!(
            r.summary("broker", "depth:emails", None),
            "broker: depth:emails at – (limit 1000)"
        );
        let figure = |v: f64| {
            let mut out = String::new();
            write_figure(&mut out, v);
            out
        };
        for (v, shown) in [
            (0.0, "0"),
            (0.05, "0.05"),
            (0.1, "0.1"),
            (-0.5, "-0.5"),
            (-0.001, "0"),
            (42.0, "42"),
            (99.999, "100"),
            (-250.6, "-251"),
            (2.5e15, "2500000000000000"),
        ] {
            assert_eq!(figure(v), shown, "{v}");
        }
    }
}
