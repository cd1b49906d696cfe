//! A database's workload from `pg_stat_statements`, as deltas between polls: the view is never
//! reset (other tools read it too). Each poll's change per statement is added to the bucket of
//! its minute; a window's figures are the sum of its buckets. A statement whose calls went down
//! was reset, and its totals since then count as its change. Buckets stay in memory for a day,
//! as do samples of the table sizes (for growth, see [`super::health`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::PgPool;

use super::health::read::Sizes;
use super::{QueryPoint, QueryStats, Sort, WorkloadPage};
use crate::TargetKind;
use crate::config::Target;
use crate::link::{pg_error, pg_pool};

/// How long buckets are kept.
pub const KEEP_MS: u64 = 24 * 3_600_000;
/// One bucket's width.
pub const BUCKET_MS: u64 = 60_000;
/// How long an EXPLAIN (ANALYZE) may take.
const EXPLAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often table sizes are sampled for growth in the background, ms.
const SIZE_EVERY_MS: u64 = 5 * 60_000;
/// Statements shown in one list at most.
const LIMIT: usize = 100;

const STATEMENTS_SQL: &str =
    "/* pitwall:collector */ SELECT queryid, min(left(query, 10000)) AS query,
    sum(calls)::float8 AS calls, sum(total_exec_time + total_plan_time)::float8 AS total_ms,
    sum(rows)::float8 AS rows, sum(shared_blks_hit)::float8 AS hit,
    sum(shared_blks_read)::float8 AS read
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND queryid IS NOT NULL AND calls > 0 AND query NOT LIKE '/* pitwall:%'
    GROUP BY queryid ORDER BY total_ms DESC LIMIT 1000";

/// When a statement counts as slow: mean time and calls over the window (pghero's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowQuery {
    /// Mean time at or above this, ms.
    pub mean_ms: f64,
    /// Calls at or above this.
    pub calls: f64,
}

impl Default for SlowQuery {
    fn default() -> Self {
        Self {
            mean_ms: 20.0,
            calls: 100.0,
        }
    }
}

/// Cumulative or changed figures of one statement.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Executions.
    pub calls: f64,
    /// Planning and execution time, ms.
    pub total_ms: f64,
    /// Rows returned or affected.
    pub rows: f64,
    /// Shared blocks found in the buffer cache.
    pub hit: f64,
    /// Shared blocks read.
    pub read: f64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.calls += o.calls;
        self.total_ms += o.total_ms;
        self.rows += o.rows;
        self.hit += o.hit;
        self.read += o.read;
    }

    /// The change from `before` to `self`; a statement whose calls went down was reset, so all
    /// of `self` is new.
    fn since(&self, before: &Totals) -> Totals {
        if self.calls < before.calls || self.total_ms < before.total_ms {
            return *self;
        }
        Totals {
            calls: self.calls - before.calls,
            total_ms: self.total_ms - before.total_ms,
            rows: (self.rows - before.rows).max(0.0),
            hit: (self.hit - before.hit).max(0.0),
            read: (self.read - before.read).max(0.0),
        }
    }
}

/// The minute buckets of one database.
#[derive(Debug, Default)]
pub struct History {
    baseline: Option<HashMap<i64, Totals>>,
    buckets: VecDeque<(u64, HashMap<i64, Totals>)>,
    texts: HashMap<i64, String>,
    since_ms: Option<u64>,
    problem: Option<String>,
}

impl History {
    /// Takes one poll's cumulative figures (and texts) at `now_ms`.
    pub fn record(&mut self, now_ms: u64, rows: Vec<(i64, String, Totals)>) {
        self.problem = None;
        let Some(baseline) = &mut self.baseline else {
            self.baseline = Some(rows.iter().map(|(id, _, t)| (*id, *t)).collect());
            self.texts = rows.into_iter().map(|(id, q, _)| (id, q)).collect();
            self.since_ms = Some(now_ms);
            return;
        };
        let start = now_ms - now_ms % BUCKET_MS;
        if self.buckets.back().is_none_or(|(s, _)| *s < start) {
            self.buckets.push_back((start, HashMap::new()));
        }
        let bucket = &mut self.buckets.back_mut().expect("pushed above").1;
        for (id, text, now) in rows {
            let change = baseline.get(&id).map_or(now, |before| now.since(before));
            baseline.insert(id, now);
            if change.calls > 0.0 {
                bucket.entry(id).or_default().add(&change);
                self.texts.insert(id, text);
            }
        }
        let oldest = now_ms.saturating_sub(KEEP_MS);
        while self.buckets.front().is_some_and(|(s, _)| *s < oldest) {
            self.buckets.pop_front();
        }
    }

    /// Remembers why the last poll failed (shown instead of figures while nothing is known).
    pub fn failed(&mut self, reason: String) {
        self.problem = Some(reason);
    }

    fn window(
        &self,
        now_ms: u64,
        window_ms: u64,
    ) -> impl Iterator<Item = &(u64, HashMap<i64, Totals>)> {
        let from = now_ms.saturating_sub(window_ms);
        self.buckets
            .iter()
            .filter(move |(s, _)| s + BUCKET_MS > from)
    }

    /// The statements of the last `window_ms`, sorted by `sort`, the slow ones marked.
    pub fn page(
        &self,
        target: &str,
        now_ms: u64,
        window_ms: u64,
        sort: Sort,
        slow: SlowQuery,
    ) -> WorkloadPage {
        let mut sums: HashMap<i64, Totals> = HashMap::new();
        for (_, bucket) in self.window(now_ms, window_ms) {
            for (id, t) in bucket {
                sums.entry(*id).or_default().add(t);
            }
        }
        let total_ms: f64 = sums.values().map(|t| t.total_ms).sum();
        let mut statements: Vec<QueryStats> = sums
            .into_iter()
            .map(|(id, t)| self.stats(id, &t, total_ms, slow))
            .collect();
        let key = |s: &QueryStats| match sort {
            Sort::Total => s.total_ms,
            Sort::Mean => s.mean_ms,
            Sort::Calls => s.calls,
            Sort::Rows => s.rows,
            // Worst hit rate first.
            Sort::Hit => -s.hit_pct.unwrap_or(100.0),
        };
        statements.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.queryid.cmp(&b.queryid)));
        statements.truncate(LIMIT);
        WorkloadPage {
            target: target.to_owned(),
            window_ms,
            since_ms: self.since_ms,
            total_ms,
            statements,
            problem: self.problem.clone(),
            slow_mean_ms: slow.mean_ms,
            slow_calls: slow.calls,
        }
    }

    /// One statement over the last `window_ms`: its figures and one point per minute.
    pub fn statement(
        &self,
        queryid: i64,
        now_ms: u64,
        window_ms: u64,
        slow: SlowQuery,
    ) -> Option<(QueryStats, Vec<QueryPoint>)> {
        let mut sum = Totals::default();
        let mut all_ms = 0.0;
        let mut points = Vec::new();
        for (start, bucket) in self.window(now_ms, window_ms) {
            all_ms += bucket.values().map(|t| t.total_ms).sum::<f64>();
            if let Some(t) = bucket.get(&queryid) {
                sum.add(t);
                points.push(QueryPoint {
                    at_ms: *start,
                    calls: t.calls,
                    mean_ms: t.total_ms / t.calls,
                });
            }
        }
        if sum.calls == 0.0 && !self.texts.contains_key(&queryid) {
            return None;
        }
        Some((self.stats(queryid, &sum, all_ms, slow), points))
    }

    fn stats(&self, id: i64, t: &Totals, all_ms: f64, slow: SlowQuery) -> QueryStats {
        let mean_ms = if t.calls > 0.0 {
            t.total_ms / t.calls
        } else {
            0.0
        };
        QueryStats {
            queryid: id,
            query: self.texts.get(&id).cloned().unwrap_or_default(),
            calls: t.calls,
            total_ms: t.total_ms,
            mean_ms,
            rows: t.rows,
            hit_pct: (t.hit + t.read > 0.0).then(|| t.hit * 100.0 / (t.hit + t.read)),
            share_pct: if all_ms > 0.0 {
                t.total_ms * 100.0 / all_ms
            } else {
                0.0
            },
            slow: mean_ms >= slow.mean_ms && t.calls >= slow.calls,
        }
    }
}

/// Why reading `pg_stat_statements` failed, with the exact fix when the extension is missing.
pub fn explain_failure(message: &str, database: &str) -> String {
    if message.contains("shared_preload_libraries") {
        format!(
            "pg_stat_statements is installed but not loaded: add shared_preload_libraries = 'pg_stat_statements' to postgresql.conf and restart PostgreSQL ({message})"
        )
    } else if message.contains("pg_stat_statements") && message.contains("does not exist") {
        format!(
            "pg_stat_statements is not installed in {database}: run CREATE EXTENSION pg_stat_statements; there (with shared_preload_libraries = 'pg_stat_statements' in postgresql.conf) ({message})"
        )
    } else {
        message.to_owned()
    }
}

struct Watched {
    name: String,
    history: Arc<RwLock<History>>,
    sizes: Arc<Mutex<Sizes>>,
    pool: Option<PgPool>,
}

/// The workload of every PostgreSQL target, polled in the background. Cloning is cheap; the
/// polling tasks end when the last clone is dropped.
#[derive(Clone)]
pub struct Workloads {
    watched: Arc<Vec<Watched>>,
    slow: SlowQuery,
    timeout: Duration,
    explain_timeout: Duration,
    _stop: Arc<tokio::sync::watch::Sender<()>>,
}

impl Workloads {
    /// Polls each PostgreSQL target among `targets` every `interval`, each poll bounded by
    /// `timeout`.
    pub fn spawn(
        targets: &[Target],
        interval: Duration,
        timeout: Duration,
        slow: SlowQuery,
    ) -> Self {
        let (stop, _) = tokio::sync::watch::channel(());
        let mut watched = Vec::new();
        for t in targets.iter().filter(|t| t.kind == TargetKind::Postgres) {
            let history = Arc::new(RwLock::new(History::default()));
            let sizes = Arc::new(Mutex::new(Sizes::default()));
            let pool = match pg_pool(&t.url, timeout) {
                Ok(pool) => {
                    let database = t.url.to_string();
                    tokio::spawn(poll(
                        pool.clone(),
                        database,
                        history.clone(),
                        sizes.clone(),
                        interval,
                        timeout,
                        stop.subscribe(),
                    ));
                    Some(pool)
                }
                Err(e) => {
                    history.write().unwrap_or_else(|p| p.into_inner()).failed(e);
                    None
                }
            };
            watched.push(Watched {
                name: t.name.clone(),
                history,
                sizes,
                pool,
            });
        }
        Self {
            watched: Arc::new(watched),
            slow,
            timeout,
            explain_timeout: EXPLAIN_TIMEOUT,
            _stop: Arc::new(stop),
        }
    }

    fn history(&self, target: &str) -> Option<&Arc<RwLock<History>>> {
        self.watched
            .iter()
            .find(|w| w.name == target)
            .map(|w| &w.history)
    }

    fn watched(&self, target: &str) -> Result<(&Watched, &PgPool), String> {
        let w = self
            .watched
            .iter()
            .find(|w| w.name == target)
            .ok_or_else(|| format!("no PostgreSQL target is named {target:?}"))?;
        let pool = w
            .pool
            .as_ref()
            .ok_or("this target's address is not usable")?;
        Ok((w, pool))
    }

    /// Index suggestions for the slow statements of `target` over the last `window_ms` (slow by
    /// the same thresholds as the list).
    pub async fn advice(&self, target: &str, window_ms: u64) -> Result<super::Advice, String> {
        let (w, pool) = self.watched(target)?;
        let statements: Vec<super::catalog::TopStatement> = {
            let h = w.history.read().unwrap_or_else(|p| p.into_inner());
            let page = h.page(
                target,
                crate::status::now_ms(),
                window_ms,
                Sort::Total,
                self.slow,
            );
            page.statements.iter().map(Into::into).collect()
        };
        let settings = super::AdvisorSettings {
            min_mean_ms: self.slow.mean_ms,
            min_calls: self.slow.calls,
            ..Default::default()
        };
        super::advisor::advise(pool, &statements, &settings, self.timeout)
            .await
            .map_err(|e| e.to_string())
    }

    /// Unused, duplicate and invalid indexes of `target`, each with its fix.
    pub async fn index_health(&self, target: &str) -> Result<Vec<super::IndexFinding>, String> {
        let (_, pool) = self.watched(target)?;
        super::indexes::health(pool, &super::IndexHealthSettings::default(), self.timeout)
            .await
            .map_err(|e| e.to_string())
    }

    /// Tables and maintenance of `target`, panel by panel (see [`super::health`]).
    pub async fn health(
        &self,
        target: &str,
        settings: super::health::HealthSettings,
    ) -> Result<super::health::DatabaseHealth, String> {
        let (w, pool) = self.watched(target)?;
        Ok(super::health::read::health(pool, target, settings, &w.sizes, self.timeout).await)
    }

    /// The plan of statement `queryid` of `target` (see [`super::explain::explain`]).
    pub async fn explain(
        &self,
        target: &str,
        queryid: i64,
        analyze: bool,
    ) -> Result<super::Explained, String> {
        let (w, pool) = self.watched(target)?;
        let query = w
            .history
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .texts
            .get(&queryid)
            .cloned()
            .ok_or_else(|| format!("{target} has no statement {queryid} in the last day"))?;
        super::explain::explain(pool, &query, analyze, self.explain_timeout).await
    }

    /// The PostgreSQL targets watched.
    pub fn targets(&self) -> Vec<String> {
        self.watched.iter().map(|w| w.name.clone()).collect()
    }

    /// The statements of `target` over the last `window_ms`; `None` for an unknown target.
    pub fn page(&self, target: &str, window_ms: u64, sort: Sort) -> Option<WorkloadPage> {
        let h = self
            .history(target)?
            .read()
            .unwrap_or_else(|p| p.into_inner());
        Some(h.page(target, crate::status::now_ms(), window_ms, sort, self.slow))
    }

    /// One statement of `target` over the last `window_ms`, with a point per minute.
    pub fn statement(
        &self,
        target: &str,
        queryid: i64,
        window_ms: u64,
    ) -> Option<(QueryStats, Vec<QueryPoint>)> {
        let h = self
            .history(target)?
            .read()
            .unwrap_or_else(|p| p.into_inner());
        h.statement(queryid, crate::status::now_ms(), window_ms, self.slow)
    }
}

async fn poll(
    pool: PgPool,
    database: String,
    history: Arc<RwLock<History>>,
    sizes: Arc<Mutex<Sizes>>,
    interval: Duration,
    timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sized_ms = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        // Table sizes for growth, whether or not anyone looks; a failure shows on the page.
        let now_ms = crate::status::now_ms();
        if now_ms.saturating_sub(sized_ms) >= SIZE_EVERY_MS {
            sized_ms = now_ms;
            let _ = super::health::read::sample(&pool, &sizes, timeout).await;
        }
        let read =
            tokio::time::timeout(timeout, sqlx::query(STATEMENTS_SQL).fetch_all(&pool)).await;
        let mut h = history.write().unwrap_or_else(|p| p.into_inner());
        match read {
            Ok(Ok(rows)) => {
                let rows = rows
                    .iter()
                    .filter_map(|r| {
                        Some((
                            r.try_get::<i64, _>("queryid").ok()?,
                            r.try_get::<String, _>("query").ok()?,
                            Totals {
                                calls: r.try_get("calls").ok()?,
                                total_ms: r.try_get("total_ms").ok()?,
                                rows: r.try_get("rows").ok()?,
                                hit: r.try_get("hit").ok()?,
                                read: r.try_get("read").ok()?,
                            },
                        ))
                    })
                    .collect();
                h.record(crate::status::now_ms(), rows);
            }
            Ok(Err(e)) => h.failed(explain_failure(&pg_error(&e, timeout), &database)),
            Err(_) => h.failed(crate::link::no_answer(timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(calls: f64, total_ms: f64) -> Totals {
        Totals {
            calls,
            total_ms,
            rows: calls,
            hit: calls * 9.0,
            read: calls,
        }
    }

    #[test]
    fn deltas_go_to_their_minute_and_windows_sum_them() {
        let mut h = History::default();
        let base = 10 * BUCKET_MS;
        h.record(base, vec![(1, "select 1".into(), t(100.0, 100.0))]);
        assert!(
            h.page("db", base, BUCKET_MS, Sort::Total, SlowQuery::default())
                .statements
                .is_empty(),
            "a baseline only"
        );
        h.record(
            base + 10_000,
            vec![
                (1, "select 1".into(), t(110.0, 120.0)),
                (2, "select 2".into(), t(5.0, 500.0)),
            ],
        );
        h.record(
            base + BUCKET_MS + 5_000,
            vec![
                (1, "select 1".into(), t(130.0, 160.0)),
                (2, "select 2".into(), t(5.0, 500.0)),
            ],
        );
        let now = base + BUCKET_MS + 5_000;
        let page = h.page("db", now, 2 * BUCKET_MS, Sort::Total, SlowQuery::default());
        assert_eq!(page.statements.len(), 2);
        let two = &page.statements[0];
        assert_eq!(
            (two.queryid, two.calls, two.total_ms, two.mean_ms),
            (2, 5.0, 500.0, 100.0),
            "new since the baseline: all of it"
        );
        let one = &page.statements[1];
        assert_eq!((one.calls, one.total_ms, one.mean_ms), (30.0, 60.0, 2.0));
        assert_eq!(one.hit_pct, Some(90.0));
        assert!((page.total_ms - 560.0).abs() < 1e-9);
        assert!((two.share_pct - 500.0 * 100.0 / 560.0).abs() < 1e-9);
        // The last minute only holds statement 1's second change.
        let last = h.page("db", now, 1, Sort::Calls, SlowQuery::default());
        assert_eq!(
            last.statements.iter().map(|s| s.calls).collect::<Vec<_>>(),
            [20.0]
        );
        let (stats, points) = h
            .statement(1, now, 2 * BUCKET_MS, SlowQuery::default())
            .unwrap();
        assert_eq!(stats.calls, 30.0);
        assert_eq!(
            points
                .iter()
                .map(|p| (p.at_ms, p.calls, p.mean_ms))
                .collect::<Vec<_>>(),
            [(base, 10.0, 2.0), (base + BUCKET_MS, 20.0, 2.0)]
        );
    }

    #[test]
    fn resets_count_from_zero_and_slow_queries_are_marked() {
        let mut h = History::default();
        h.record(0, vec![(7, "q".into(), t(1_000.0, 50_000.0))]);
        h.record(1_000, vec![(7, "q".into(), t(150.0, 4_500.0))]);
        let slow = SlowQuery {
            mean_ms: 20.0,
            calls: 100.0,
        };
        let page = h.page("db", 1_000, 60_000, Sort::Mean, slow);
        let s = &page.statements[0];
        assert_eq!((s.calls, s.mean_ms, s.slow), (150.0, 30.0, true));
        let fast = h.page(
            "db",
            1_000,
            60_000,
            Sort::Mean,
            SlowQuery {
                mean_ms: 31.0,
                calls: 1.0,
            },
        );
        assert!(!fast.statements[0].slow);
    }

    #[test]
    fn old_buckets_go_and_missing_extensions_say_how_to_fix() {
        let mut h = History::default();
        h.record(0, vec![]);
        h.record(1_000, vec![(1, "q".into(), t(1.0, 1.0))]);
        h.record(KEEP_MS + 2 * BUCKET_MS, vec![(1, "q".into(), t(2.0, 2.0))]);
        assert_eq!(h.buckets.len(), 1);
        let fix = explain_failure(
            "relation \"pg_stat_statements\" does not exist",
            "db:5432/shop",
        );
        assert!(fix.contains("CREATE EXTENSION pg_stat_statements"), "{fix}");
        let fix = explain_failure(
            "pg_stat_statements must be loaded via shared_preload_libraries",
            "x",
        );
        assert!(fix.contains("restart PostgreSQL"), "{fix}");
    }
}
