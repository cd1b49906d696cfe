//! The `pitwall.toml` format and its validation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use std::time::Duration;

use super::access::AccessSection;
use super::{CeleryBroker, Config, EmbedPolicy, Error, JobsConfig, MetricsConfig, Result, Target};
use crate::TargetKind;
use crate::alerts::notify::{Settings, Webhook};
use crate::alerts::{Rule, RuleSpec, defaults, parse_duration};
use crate::cache::HitCounter;
use crate::cache::keyspace::TtlPolicy;
use crate::cache::recipe::{Recipe, Template, WarmValue};
use crate::jobs::Backoff;
use crate::postgres::workload::SlowQuery;
use crate::secret::{self, SecretUrl};
use crate::telemetry::Family;
use crate::telemetry::collect::{CONSOLE, HOST};
use crate::telemetry::{HistorySettings, Intervals, Thresholds};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    site_dir: Option<PathBuf>,
    #[serde(default)]
    postgres: Vec<TargetEntry>,
    #[serde(default)]
    redis: Vec<RedisEntry>,
    #[serde(default)]
    celery: Vec<CeleryEntry>,
    access: Option<Spanned<AccessSection>>,
    telemetry: Option<Spanned<TelemetrySection>>,
    resources: Option<Spanned<ResourcesSection>>,
    embed: Option<Spanned<EmbedSection>>,
    jobs: Option<Spanned<JobsSection>>,
    queries: Option<Spanned<QueriesSection>>,
    metrics: Option<Spanned<MetricsSection>>,
    http: Option<Spanned<super::http::HttpSection>>,
    alerts: Option<Spanned<AlertsSection>>,
}

/// The `[alerts]` table: the default rules (all switched off with `defaults = false`, some with
/// `disable`) and the rules of `[[alerts.rules]]`, where one named like a default replaces it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsSection {
    #[serde(default = "enabled")]
    defaults: bool,
    #[serde(default)]
    disable: Vec<Spanned<String>>,
    #[serde(default)]
    rules: Vec<Spanned<RuleSpec>>,
    #[serde(default)]
    webhooks: Vec<Spanned<WebhookSpec>>,
    external_url: Option<Spanned<String>>,
}

/// One `[[alerts.webhooks]]` receiver as written.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSpec {
    name: String,
    url: String,
    secret: String,
    min_severity: Option<String>,
    timeout: Option<String>,
}

impl WebhookSpec {
    fn validate(self) -> std::result::Result<Webhook, String> {
        let name = self.name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "webhook `{name}`: a name is 1 to 64 letters, digits, `_` or `-`"
            ));
        }
        let url = url::Url::parse(&self.url)
            .map_err(|e| format!("webhook `{name}`: `url` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "webhook `{name}`: `url` must be an http:// or https:// address with a host"
            ));
        }
        let secret_len = self.secret.chars().count();
        if !(16..=256).contains(&secret_len) {
            return Err(format!(
                "webhook `{name}`: `secret` must be 16 to 256 characters (it has {secret_len})"
            ));
        }
        let min_severity = match self.min_severity {
            Some(s) => s
                .parse()
                .map_err(|e| format!("webhook `{name}`: `min_severity`: {e}"))?,
            None => crate::alerts::Severity::Warning,
        };
        let timeout = match self.timeout {
            Some(t) => parse_duration(&t)
                .filter(|d| (Duration::from_secs(1)..=Duration::from_secs(60)).contains(d))
                .ok_or_else(|| {
                    format!("webhook `{name}`: `timeout` must be from 1s to 60s, such as \"10s\"")
                })?,
            None => Duration::from_secs(10),
        };
        Ok(Webhook {
            name,
            url: url.to_string(),
            secret: self.secret,
            min_severity,
            timeout,
        })
    }
}

fn enabled() -> bool {
    true
}

/// The webhooks and the console's external address of `[alerts]`: names unique, each checked.
/// Without `external_url` the console fills in the address it listens on.
fn notify_settings(
    section: Option<&AlertsSection>,
    at: impl Fn(Option<Range<usize>>, String) -> Error,
) -> Result<Settings> {
    let mut settings = Settings::default();
    let Some(section) = section else {
        return Ok(settings);
    };
    if let Some(url) = &section.external_url {
        match url::Url::parse(url.get_ref()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                settings.external_url = url.get_ref().trim_end_matches('/').to_owned();
            }
            _ => {
                return Err(at(
                    Some(url.span()),
                    "`alerts.external_url` must be the console's http:// or https:// address"
                        .into(),
                ));
            }
        }
    }
    for spec in &section.webhooks {
        let span = spec.span();
        let webhook = spec
            .get_ref()
            .clone()
            .validate()
            .map_err(|m| at(Some(span.clone()), m))?;
        if settings.webhooks.iter().any(|w| w.name == webhook.name) {
            return Err(at(
                Some(span),
                format!("duplicate webhook name `{}`", webhook.name),
            ));
        }
        settings.webhooks.push(webhook);
    }
    Ok(settings)
}

/// The rules in force: the defaults left on, replaced by name, then the others in file order.
fn alert_rules(
    section: Option<Spanned<AlertsSection>>,
    targets: &[Target],
    at: impl Fn(Option<Range<usize>>, String) -> Error,
) -> Result<Vec<Rule>> {
    let Some(section) = section else {
        return Ok(defaults::rules());
    };
    let section = section.into_inner();
    let mut rules = if section.defaults {
        defaults::rules()
    } else {
        Vec::new()
    };
    for name in section.disable {
        if !defaults::names().any(|d| d == name.get_ref()) {
            let known: Vec<&str> = defaults::names().collect();
            let message = format!(
                "`alerts.disable`: `{}` is not a default rule; the defaults are {}",
                name.get_ref(),
                known.join(", ")
            );
            return Err(at(Some(name.span()), message));
        }
        rules.retain(|r| r.name() != name.get_ref());
    }
    let mut own: Vec<String> = Vec::new();
    for spec in section.rules {
        let span = spec.span();
        let rule =
            Rule::parse(spec.into_inner()).map_err(|e| at(Some(span.clone()), e.to_string()))?;
        check_rule_targets(&rule, targets).map_err(|m| at(Some(span.clone()), m))?;
        if own.iter().any(|n| n == rule.name()) {
            return Err(at(
                Some(span),
                format!("duplicate alert rule name `{}`", rule.name()),
            ));
        }
        own.push(rule.name().to_owned());
        match rules.iter_mut().find(|r| r.name() == rule.name()) {
            Some(default) => *default = rule,
            None => rules.push(rule),
        }
    }
    Ok(rules)
}

/// Checks that every target a rule is limited to exists and publishes what the rule reads.
fn check_rule_targets(rule: &Rule, targets: &[Target]) -> std::result::Result<(), String> {
    for name in rule.targets() {
        let kind = match targets.iter().find(|t| &t.name == name) {
            Some(t) => Some(t.kind),
            None if name == HOST || name == CONSOLE => None,
            None => {
                return Err(format!(
                    "alert rule `{}`: `targets`: no target named `{name}`",
                    rule.name()
                ));
            }
        };
        let fits = match (rule.family(), kind) {
            (None, kind) => kind.is_some(),
            (Some(Family::Host), None) => name == HOST,
            (Some(Family::Console), None) => name == CONSOLE,
            (Some(Family::Redis), Some(TargetKind::Redis))
            | (Some(Family::Database | Family::Statements), Some(TargetKind::Postgres))
            | (Some(Family::Queues), Some(TargetKind::Celery)) => true,
            _ => false,
        };
        if !fits {
            let reads = rule
                .family()
                .map_or("checks".to_owned(), |f| format!("`{f}` metrics"));
            return Err(format!(
                "alert rule `{}`: `targets`: `{name}` has no {reads}",
                rule.name()
            ));
        }
    }
    Ok(())
}

/// The `[metrics]` table: who may scrape `/metrics`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    token: Option<String>,
}

impl MetricsSection {
    fn validate(self) -> std::result::Result<MetricsConfig, String> {
        Ok(MetricsConfig {
            token: self.token.as_deref().map(check_token).transpose()?,
        })
    }
}

/// Checks a bearer token: 16 to 256 visible ASCII characters.
pub(super) fn check_token(token: &str) -> std::result::Result<String, String> {
    if (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(token.to_owned())
    } else {
        Err(format!(
            "the metrics token must be 16 to 256 visible ASCII characters (it has {})",
            token.len()
        ))
    }
}

/// The `[queries]` table: when a statement counts as slow.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueriesSection {
    slow_query_ms: Option<f64>,
    slow_query_calls: Option<u64>,
}

impl QueriesSection {
    fn validate(self) -> std::result::Result<SlowQuery, String> {
        let d = SlowQuery::default();
        let mean_ms = self.slow_query_ms.unwrap_or(d.mean_ms);
        if !(0.0..=3_600_000.0).contains(&mean_ms) {
            return Err("`queries.slow_query_ms` must be between 0 and 3600000".into());
        }
        let calls = self.slow_query_calls.unwrap_or(d.calls as u64);
        if calls > 1_000_000_000 {
            return Err("`queries.slow_query_calls` must be at most 1000000000".into());
        }
        Ok(SlowQuery {
            mean_ms,
            calls: calls as f64,
        })
    }
}

/// The `[jobs]` table: how this console runs maintenance jobs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsSection {
    workers: Option<u32>,
    lease_ms: Option<u64>,
    per_target: Option<u32>,
    backoff_base_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    retention_days: Option<u64>,
    noop: Option<bool>,
}

impl JobsSection {
    fn validate(self) -> std::result::Result<JobsConfig, String> {
        let d = JobsConfig::default();
        let within = |name: &str, v: Option<u64>, lo: u64, hi: u64, default: u64| match v {
            Some(v) if !(lo..=hi).contains(&v) => {
                Err(format!("`jobs.{name}` must be between {lo} and {hi}"))
            }
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let ms = |d: Duration| d.as_millis() as u64;
        let base = within(
            "backoff_base_ms",
            self.backoff_base_ms,
            100,
            3_600_000,
            ms(d.backoff.base),
        )?;
        let max = within(
            "backoff_max_ms",
            self.backoff_max_ms,
            100,
            86_400_000,
            ms(d.backoff.max),
        )?;
        if max < base {
            return Err(
                "`jobs.backoff_max_ms` must not be less than `jobs.backoff_base_ms`".into(),
            );
        }
        Ok(JobsConfig {
            workers: within(
                "workers",
                self.workers.map(u64::from),
                1,
                64,
                d.workers as u64,
            )? as usize,
            lease: Duration::from_millis(within(
                "lease_ms",
                self.lease_ms,
                300,
                3_600_000,
                ms(d.lease),
            )?),
            per_target: within(
                "per_target",
                self.per_target.map(u64::from),
                1,
                64,
                u64::from(d.per_target),
            )? as u32,
            backoff: Backoff {
                base: Duration::from_millis(base),
                max: Duration::from_millis(max),
            },
            retention: Duration::from_secs(
                within(
                    "retention_days",
                    self.retention_days,
                    1,
                    3_650,
                    d.retention.as_secs() / 86_400,
                )? * 86_400,
            ),
            noop: self.noop.unwrap_or(d.noop),
        })
    }
}

/// The `[embed]` table: which origins may frame the console's `/embed/...` panels.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedSection {
    #[serde(default)]
    frame_ancestors: Vec<String>,
}

impl EmbedSection {
    fn validate(self) -> std::result::Result<EmbedPolicy, String> {
        let frame_ancestors = self
            .frame_ancestors
            .iter()
            .map(|o| origin(o).ok_or_else(|| format!(
                "`embed.frame_ancestors`: `{o}` is not an origin; write it as scheme://host[:port], such as https://portal.example.com"
            )))
            .collect::<std::result::Result<_, _>>()?;
        Ok(EmbedPolicy { frame_ancestors })
    }
}

/// `s` as a bare origin (`scheme://host[:port]`, http or https), if it is one.
fn origin(s: &str) -> Option<String> {
    let url = url::Url::parse(s).ok()?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    bare.then(|| url.origin().ascii_serialization())
}

/// The `[resources]` table: recommendation thresholds in percent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcesSection {
    cpu_pct: Option<f64>,
    memory_pct: Option<f64>,
    disk_pct: Option<f64>,
}

impl ResourcesSection {
    fn validate(self) -> std::result::Result<Thresholds, String> {
        let d = Thresholds::default();
        let pct = |name: &str, v: Option<f64>, default: f64| match v {
            Some(v) if !(0.0..=100.0).contains(&v) => {
                Err(format!("`resources.{name}` must be between 0 and 100"))
            }
            Some(v) => Ok(v),
            None => Ok(default),
        };
        Ok(Thresholds {
            cpu_pct: pct("cpu_pct", self.cpu_pct, d.cpu_pct)?,
            memory_pct: pct("memory_pct", self.memory_pct, d.memory_pct)?,
            disk_pct: pct("disk_pct", self.disk_pct, d.disk_pct)?,
        })
    }
}

/// The `[telemetry]` table: collection intervals and the limit of one round, in milliseconds;
/// the width of stored history buckets and how many days they are kept.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TelemetrySection {
    interval_ms: Option<u64>,
    slow_interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    history_bucket_ms: Option<u64>,
    history_days: Option<u64>,
}

impl TelemetrySection {
    fn validate(self) -> std::result::Result<(Intervals, HistorySettings), String> {
        let d = Intervals::default();
        let ms = |name: &str, v: Option<u64>, default: Duration| match v {
            Some(v) if v < 100 => Err(format!("`telemetry.{name}` must be at least 100 ms")),
            Some(v) => Ok(Duration::from_millis(v)),
            None => Ok(default),
        };
        let intervals = Intervals {
            live: ms("interval_ms", self.interval_ms, d.live)?,
            slow: ms("slow_interval_ms", self.slow_interval_ms, d.slow)?,
            timeout: ms("timeout_ms", self.timeout_ms, d.timeout)?,
        };
        if intervals.timeout > intervals.live {
            return Err("`telemetry.timeout_ms` must not exceed `telemetry.interval_ms`".into());
        }
        let h = HistorySettings::default();
        let history = HistorySettings {
            bucket: ms("history_bucket_ms", self.history_bucket_ms, h.bucket)?,
            retention: match self.history_days {
                Some(0) => return Err("`telemetry.history_days` must be at least 1".into()),
                Some(days) => Duration::from_secs(days * 24 * 3600),
                None => h.retention,
            },
        };
        Ok((intervals, history))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    name: Spanned<String>,
    url: Spanned<SecretUrl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisEntry {
    name: Spanned<String>,
    url: Spanned<SecretUrl>,
    #[serde(default)]
    counters: Vec<Spanned<CounterEntry>>,
    #[serde(default)]
    recipes: Vec<Spanned<RecipeEntry>>,
    #[serde(default)]
    ttl_policies: Vec<Spanned<TtlPolicyEntry>>,
}

/// `[[redis.ttl_policies]]`: the longest TTL keys under a prefix should have.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TtlPolicyEntry {
    prefix: String,
    max_ttl_secs: u64,
}

impl TtlPolicyEntry {
    fn validate(self) -> std::result::Result<TtlPolicy, String> {
        if self.prefix.is_empty()
            || self.prefix.len() > 256
            || self
                .prefix
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(format!(
                "invalid TTL policy prefix {:?}: expected 1 to 256 bytes without spaces or control characters",
                self.prefix
            ));
        }
        if self.max_ttl_secs == 0 {
            return Err(format!(
                "TTL policy `{}`: `max_ttl_secs` must be at least 1",
                self.prefix
            ));
        }
        Ok(TtlPolicy {
            prefix: self.prefix,
            max_ttl_secs: self.max_ttl_secs,
        })
    }
}

/// `[[redis.recipes]]`: a cache-warming recipe writing into this target.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipeEntry {
    name: String,
    postgres: String,
    sql: String,
    key: String,
    value_column: Option<String>,
    ttl_secs: u64,
    #[serde(default = "default_jitter")]
    jitter: f64,
    #[serde(default)]
    tags: Vec<String>,
    refresh_ahead: Option<f64>,
    every_secs: Option<u64>,
    #[serde(default = "default_recipe_batch")]
    batch: usize,
    #[serde(default = "default_recipe_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_recipe_max_rows")]
    max_rows: u64,
}

fn default_jitter() -> f64 {
    0.1
}

fn default_recipe_batch() -> usize {
    500
}

fn default_recipe_timeout() -> u64 {
    60
}

fn default_recipe_max_rows() -> u64 {
    crate::cache::recipe::DEFAULT_MAX_ROWS
}

impl RecipeEntry {
    fn validate(self) -> std::result::Result<Recipe, String> {
        validate_name("recipe", &self.name)?;
        let within = |what: &str, e: String| format!("recipe `{}`: {what}{e}", self.name);
        let key = Template::parse(&self.key).map_err(|e| within("`key` ", e))?;
        let tags = self
            .tags
            .iter()
            .map(|t| Template::parse(t).map_err(|e| within("`tags` ", e)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        crate::cache::warm::check_sql(&self.sql).map_err(|e| within("`sql` ", e))?;
        let value = match self.value_column {
            None => WarmValue::Row,
            Some(c) => WarmValue::Column(c),
        };
        let recipe = Recipe {
            name: self.name.clone(),
            postgres: self.postgres.clone(),
            sql: self.sql.trim().trim_end_matches(';').trim_end().to_owned(),
            key,
            value,
            ttl_secs: self.ttl_secs,
            jitter: self.jitter,
            tags,
            refresh_ahead: self.refresh_ahead,
            every_secs: self.every_secs,
            batch: self.batch,
            timeout_secs: self.timeout_secs,
            max_rows: self.max_rows,
        };
        recipe.check().map_err(|e| within("", e))?;
        Ok(recipe)
    }
}

/// `[[redis.counters]]`: an application's hit and miss counters for one of its caches.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CounterEntry {
    name: String,
    hits: String,
    misses: String,
    cost_per_miss: Option<f64>,
}

impl CounterEntry {
    fn validate(self) -> std::result::Result<HitCounter, String> {
        validate_name("counter", &self.name)?;
        for (field, key) in [("hits", &self.hits), ("misses", &self.misses)] {
            if key.is_empty() || key.chars().any(char::is_control) || key.len() > 512 {
                return Err(format!(
                    "invalid `{field}` key {key:?}: expected a non-empty key of at most 512 bytes without control characters"
                ));
            }
        }
        if self.hits == self.misses {
            return Err(format!(
                "`hits` and `misses` are the same key {:?}: each needs its own counter",
                self.hits
            ));
        }
        if let Some(c) = self.cost_per_miss
            && !(c.is_finite() && c >= 0.0)
        {
            return Err(format!(
                "invalid `cost_per_miss` {c}: expected a number of 0 or more"
            ));
        }
        Ok(HitCounter {
            name: self.name,
            hits_key: self.hits,
            misses_key: self.misses,
            cost_per_miss: self.cost_per_miss,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CeleryEntry {
    name: Spanned<String>,
    url: Spanned<SecretUrl>,
    #[serde(default = "default_queues")]
    queues: Vec<Spanned<String>>,
    #[serde(default)]
    global_keyprefix: String,
}

fn default_queues() -> Vec<Spanned<String>> {
    vec![Spanned::new(0..0, "celery".to_owned())]
}

/// A `[table]` of the file checked as a whole: its value, or the default when it is absent;
/// a mistake is reported at the table.
fn section<S, T: Default>(
    section: Option<Spanned<S>>,
    validate: impl FnOnce(S) -> std::result::Result<T, String>,
    at: impl Fn(Option<Range<usize>>, String) -> Error,
) -> Result<T> {
    match section {
        Some(section) => {
            let span = section.span();
            validate(section.into_inner()).map_err(|m| at(Some(span), m))
        }
        None => Ok(T::default()),
    }
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Config> {
    let at = |span: Option<Range<usize>>, message: String| {
        let (line, column) = line_column(text, span.map_or(0, |s| s.start));
        Error::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let file: File = toml::from_str(text).map_err(|e| at(e.span(), e.message().to_owned()))?;

    let defaults = Config::default();
    let (telemetry, history) = section(file.telemetry, |s| s.validate(), at)?;
    let mut config = Config {
        listen: file.listen.unwrap_or(defaults.listen),
        data_dir: file.data_dir.unwrap_or(defaults.data_dir),
        site_dir: file.site_dir,
        targets: Vec::new(),
        access: match file.access {
            Some(section) => {
                let span = section.span();
                section
                    .into_inner()
                    .validate()
                    .map_err(|(at_span, m)| at(at_span.or(Some(span)), m))?
            }
            None => Default::default(),
        },
        telemetry,
        history,
        thresholds: section(file.resources, |s| s.validate(), at)?,
        jobs: section(file.jobs, |s| s.validate(), at)?,
        queries: section(file.queries, |s| s.validate(), at)?,
        metrics: section(file.metrics, |s| s.validate(), at)?,
        http: section(file.http, |s| s.validate(), at)?,
        embed: section(file.embed, |s| s.validate(), at)?,
        alerts: Vec::new(),
        notify: Settings::default(),
    };
    let entries = file
        .postgres
        .into_iter()
        .map(|t| {
            (
                TargetKind::Postgres,
                t.name,
                t.url,
                None,
                Default::default(),
            )
        })
        .chain(file.redis.into_iter().map(|t| {
            (
                TargetKind::Redis,
                t.name,
                t.url,
                None,
                (t.counters, t.recipes, t.ttl_policies),
            )
        }))
        .chain(file.celery.into_iter().map(|c| {
            (
                TargetKind::Celery,
                c.name,
                c.url,
                Some((c.queues, c.global_keyprefix)),
                Default::default(),
            )
        }));

    let mut seen: HashMap<String, usize> = HashMap::new();
    // Recipes are checked against the PostgreSQL targets once every target is known.
    let mut sources: Vec<RecipeSource> = Vec::new();
    for (kind, name, url, celery, (counter_entries, recipe_entries, policy_entries)) in entries {
        let name_span = name.span();
        let name = name.into_inner();
        validate_name("target", &name).map_err(|m| at(Some(name_span.clone()), m))?;
        if let Some(first) = seen.get(&name) {
            let (line, _) = line_column(text, *first);
            return Err(at(
                Some(name_span),
                format!(
                    "duplicate target name `{name}` (first defined on line {line}); names must be unique across all kinds"
                ),
            ));
        }
        seen.insert(name.clone(), name_span.start);
        let url_span = url.span();
        let url = url.into_inner();
        check_scheme(kind, &url).map_err(|e| at(Some(url_span), e.to_string()))?;
        let celery = match celery {
            Some((queues, global_keyprefix)) => {
                let mut names = Vec::with_capacity(queues.len());
                for q in queues {
                    let span = q.span();
                    let q = q.into_inner();
                    if q.is_empty() || q.chars().any(char::is_control) {
                        return Err(at(
                            Some(span),
                            format!(
                                "invalid queue name {q:?}: expected a non-empty name without control characters"
                            ),
                        ));
                    }
                    names.push(q);
                }
                Some(CeleryBroker {
                    queues: names,
                    global_keyprefix,
                })
            }
            None => None,
        };
        let mut counters: Vec<HitCounter> = Vec::with_capacity(counter_entries.len());
        for entry in counter_entries {
            let span = entry.span();
            let counter = entry
                .into_inner()
                .validate()
                .map_err(|m| at(Some(span.clone()), m))?;
            if counters.iter().any(|c| c.name == counter.name) {
                return Err(at(
                    Some(span),
                    format!(
                        "duplicate counter name `{}` on target `{name}`",
                        counter.name
                    ),
                ));
            }
            counters.push(counter);
        }
        let mut recipes: Vec<Recipe> = Vec::with_capacity(recipe_entries.len());
        for entry in recipe_entries {
            let span = entry.span();
            let recipe = entry
                .into_inner()
                .validate()
                .map_err(|m| at(Some(span.clone()), m))?;
            if let Some(first) = sources.iter().find(|s| s.recipe == recipe.name) {
                return Err(at(
                    Some(span),
                    format!(
                        "duplicate recipe name `{}` (also on target `{}`); recipe names are unique across targets",
                        recipe.name, first.target
                    ),
                ));
            }
            sources.push(RecipeSource {
                span,
                recipe: recipe.name.clone(),
                target: name.clone(),
                postgres: recipe.postgres.clone(),
            });
            recipes.push(recipe);
        }
        let mut ttl_policies: Vec<TtlPolicy> = Vec::with_capacity(policy_entries.len());
        for entry in policy_entries {
            let span = entry.span();
            let policy = entry
                .into_inner()
                .validate()
                .map_err(|m| at(Some(span.clone()), m))?;
            if ttl_policies.iter().any(|p| p.prefix == policy.prefix) {
                return Err(at(
                    Some(span),
                    format!(
                        "duplicate TTL policy for prefix `{}` on target `{name}`",
                        policy.prefix
                    ),
                ));
            }
            ttl_policies.push(policy);
        }
        config.targets.push(Target {
            name,
            kind,
            url,
            celery,
            counters,
            recipes,
            ttl_policies,
        });
    }
    for RecipeSource {
        span,
        recipe,
        postgres: source,
        ..
    } in &sources
    {
        match config.target(source) {
            Some(t) if t.kind == TargetKind::Postgres => {}
            Some(t) => {
                return Err(at(
                    Some(span.clone()),
                    format!(
                        "recipe `{recipe}`: `postgres` names `{source}`, a {} target, not PostgreSQL",
                        t.kind.label()
                    ),
                ));
            }
            None => {
                return Err(at(
                    Some(span.clone()),
                    format!(
                        "recipe `{recipe}`: `postgres` names `{source}`, which is not a target"
                    ),
                ));
            }
        }
    }
    config.notify = notify_settings(file.alerts.as_ref().map(|s| s.get_ref()), at)?;
    config.alerts = alert_rules(file.alerts, &config.targets, at)?;
    Ok(config)
}

/// Where a recipe was declared and what it reads, to check its source once all targets are known.
struct RecipeSource {
    span: Range<usize>,
    recipe: String,
    target: String,
    postgres: String,
}

/// Checks that `url` has a scheme the target kind connects with.
pub(super) fn check_scheme(kind: TargetKind, url: &SecretUrl) -> secret::Result<()> {
    match kind {
        TargetKind::Postgres => {
            url.require_scheme(&["postgres", "postgresql"], "postgres:// or postgresql://")
        }
        TargetKind::Redis => {
            url.require_scheme(
                &["redis", "rediss", crate::sentinel::SCHEME],
                "redis://, rediss:// or redis+sentinel://",
            )?;
            crate::sentinel::Sentinels::of(url)
                .map(|_| ())
                .map_err(secret::Error::Parse)
        }
        TargetKind::Celery => url.require_scheme(&["redis", "rediss"], "redis:// or rediss://"),
    }
}

/// Checks the name of a `what` (target, counter): a plain lower-case name.
fn validate_name(what: &str, name: &str) -> std::result::Result<(), String> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} name {name:?}: expected 1 to 63 lowercase letters, digits, `-` or `_`, starting with a letter"
        ))
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
