//! The `warm_cache` job: runs a recipe's query on its PostgreSQL target in a read-only
//! transaction (each row turned into JSON by PostgreSQL itself, `row_to_json`), and writes each
//! row's key in pipelined batches: `SET key value EX ttl` with the TTL jittered per key, then the
//! key's tags (`SADD tag:{tag} key…`), so a tag never names a key that was not written. With
//! refresh-ahead, one `PTTL` per key first and keys with enough TTL left are not rewritten. A
//! task of its own reads and parses the rows, a bounded channel ahead of the writer; on one
//! server the writer sends each batch's pipeline while the one before is still in flight. A
//! checkpoint per batch reports progress and takes a cancel; at most one job per recipe is queued
//! or running at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use serde::Deserialize;
use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlx::{Executor, PgPool, Postgres, Transaction};

use super::TagLayout;
use super::cluster::Keyspace;
use super::inflight::InFlight;
use super::recipe::{Recipe, WarmValue};
use super::tags::tag_key;
use crate::config::Target;
use crate::jobs::kinds::{TargetUrls, pg_message};
use crate::jobs::schedule::Scheduled;
use crate::jobs::{Checkpoint, JobContext, JobError, JobKind, NewJob, Plan};
use crate::link::pg_pool;

/// How long one Redis command or pipeline of the job may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Rows shown in the plan.
const SAMPLE: usize = 5;
/// Pipelines in flight at once on one server: the next batch is sent while Redis still works on
/// the one before, so it never waits for the writer between batches.
const IN_FLIGHT: usize = 4;

/// Checks that `sql` is one query (`SELECT`, `WITH … SELECT`, `VALUES`); the refusal says why.
/// It also runs in a read-only transaction, so a query that would write fails there too.
pub fn check_sql(sql: &str) -> Result<(), String> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| format!("could not be parsed ({e})"))?;
    match statements.as_slice() {
        [Statement::Query(_)] => Ok(()),
        [] => Err("holds no statement".into()),
        [_] => Err("must be one SELECT query: recipes only read".into()),
        _ => Err("holds several statements; a recipe runs one query".into()),
    }
}

/// The `warm_cache` kind: `{"recipe": "project_summaries"}` on the recipe's Redis target.
pub struct WarmCache {
    targets: TargetUrls,
    recipes: Arc<Vec<(String, Recipe)>>,
}

impl WarmCache {
    /// The kind, for the recipes of `targets`.
    pub fn new(targets: &[Target]) -> Self {
        let recipes = targets
            .iter()
            .flat_map(|t| t.recipes.iter().map(|r| (t.name.clone(), r.clone())))
            .collect();
        Self {
            targets: TargetUrls::new(targets),
            recipes: Arc::new(recipes),
        }
    }

    /// The recipe named in `parameters`, checked against the job's target.
    fn recipe(
        &self,
        target: Option<&str>,
        parameters: &serde_json::Value,
    ) -> Result<&Recipe, String> {
        let name = recipe_name(parameters)?;
        let (owner, recipe) = self
            .recipes
            .iter()
            .find(|(_, r)| r.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.recipes.iter().map(|(_, r)| r.name.as_str()).collect();
                if known.is_empty() {
                    format!("no recipe is named `{name}`: the config declares none")
                } else {
                    format!(
                        "no recipe is named `{name}`; the config declares {}",
                        known.join(", ")
                    )
                }
            })?;
        match target {
            Some(t) if t == owner => Ok(recipe),
            Some(t) => Err(format!(
                "recipe `{name}` writes into target `{owner}`, not `{t}`"
            )),
            None => Err(format!(
                "recipe `{name}` writes into target `{owner}`: name it as the job's target"
            )),
        }
    }

    /// The pool of the recipe's source, its statements bounded by the recipe's timeout.
    fn source(&self, recipe: &Recipe) -> Result<PgPool, String> {
        let pg = self.targets.url(Some(&recipe.postgres))?;
        pg_pool(&pg, Duration::from_secs(recipe.timeout_secs))
    }
}

/// The recipes of `targets` that run on a schedule, as scheduled `warm_cache` jobs.
pub fn schedules(targets: &[Target]) -> Vec<Scheduled> {
    targets
        .iter()
        .flat_map(|t| t.recipes.iter().map(move |r| (t, r)))
        .filter_map(|(t, r)| {
            Some(Scheduled {
                every: Duration::from_secs(r.every_secs?),
                job: NewJob {
                    target: Some(t.name.clone()),
                    ..NewJob::new("warm_cache", serde_json::json!({ "recipe": r.name }))
                },
            })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    recipe: String,
}

fn recipe_name(parameters: &serde_json::Value) -> Result<String, String> {
    let raw: Raw = serde_json::from_value(parameters.clone())
        .map_err(|e| format!("warm_cache parameters: {e}"))?;
    Ok(raw.recipe)
}

/// A read-only transaction on the recipe's source.
async fn read_only(pool: &PgPool) -> Result<Transaction<'static, Postgres>, String> {
    let mut tx = pool.begin().await.map_err(|e| pg_message(&e))?;
    tx.execute("SET TRANSACTION READ ONLY")
        .await
        .map_err(|e| pg_message(&e))?;
    Ok(tx)
}

/// The planner's estimate of the recipe's rows (`EXPLAIN`, which runs nothing): what the plan
/// shows and caps, and the progress total (counting them would run the query twice); the total
/// grows if the query returns more.
async fn estimate(tx: &mut Transaction<'static, Postgres>, recipe: &Recipe) -> Result<u64, String> {
    let plan: serde_json::Value =
        sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) {}", recipe.sql))
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| pg_message(&e))?;
    Ok(plan[0]["Plan"]["Plan Rows"]
        .as_f64()
        .unwrap_or(0.0)
        .max(0.0) as u64)
}

/// The room left under `maxmemory` on the target's primaries together, bytes; `None` when one of
/// them has no limit (`INFO memory`, which managed servers answer where `CONFIG` is refused).
async fn free_memory(ks: &mut Keyspace) -> Result<Option<u64>, String> {
    let mut free = 0u64;
    for i in 0..ks.nodes() {
        let info: String = ks
            .node(i)
            .query(async |c| redis::cmd("INFO").arg("memory").query_async(c).await)
            .await?;
        let field = |name| {
            crate::link::info_field(&info, name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let max = field("maxmemory");
        if max == 0 {
            return Ok(None);
        }
        free += max.saturating_sub(field("used_memory"));
    }
    Ok(Some(free))
}

/// The recipe's rows as JSON objects, in the query's order.
fn rows_sql(recipe: &Recipe) -> String {
    format!("SELECT row_to_json(q)::text FROM ({}) AS q", recipe.sql)
}

/// What one row writes.
#[derive(Debug)]
struct Write {
    key: String,
    value: String,
    tags: Vec<String>,
}

/// A row's key, value and tags; the refusal names the column at fault.
fn write_of(recipe: &Recipe, json: String) -> Result<Write, String> {
    let row: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&json).map_err(|e| format!("row is not a JSON object: {e}"))?;
    let key = recipe.key.render(&row)?;
    let tags = recipe
        .tags
        .iter()
        .map(|t| t.render(&row).map(|tag| tag_key(&tag, TagLayout::Set)))
        .collect::<Result<_, _>>()?;
    let value = match &recipe.value {
        WarmValue::Row => json,
        WarmValue::Column(c) => match row.get(c) {
            None => return Err(format!("the query returns no column `{c}`")),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        },
    };
    Ok(Write { key, value, tags })
}

/// A key's TTL, seconds: the recipe's, moved at random by up to its jitter either way.
fn jittered(recipe: &Recipe) -> u64 {
    let factor = if recipe.jitter > 0.0 {
        1.0 + rand::random_range(-recipe.jitter..=recipe.jitter)
    } else {
        1.0
    };
    ((recipe.ttl_secs as f64 * factor).round() as u64).max(1)
}

/// What a run has read.
#[derive(Default)]
struct Read {
    rows: u64,
    bad: u64,
    first_error: Option<String>,
}

/// What a run has written.
#[derive(Default)]
struct Written {
    keys: u64,
    fresh: u64,
    tags: std::collections::BTreeSet<String>,
}

/// The next batch of rows as writes (rows that make no key are counted and skipped), and
/// whether the query has more.
async fn read_batch(
    rows: &mut (impl futures_util::Stream<Item = Result<String, sqlx::Error>> + Unpin),
    recipe: &Recipe,
    read: &mut Read,
) -> Result<(Vec<Write>, bool), String> {
    let mut batch = Vec::with_capacity(recipe.batch);
    for _ in 0..recipe.batch {
        let Some(json) = rows.try_next().await.map_err(|e| pg_message(&e))? else {
            return Ok((batch, false));
        };
        read.rows += 1;
        match write_of(recipe, json) {
            Ok(w) => batch.push(w),
            Err(e) => {
                read.bad += 1;
                read.first_error
                    .get_or_insert_with(|| format!("row {}: {e}", read.rows));
            }
        }
    }
    Ok((batch, true))
}

/// Streams the recipe's rows through `tx` and sends them to `batches` as writes, each batch with
/// the rows read so far, until the query ends or the writer stops taking them; then ends the
/// read-only transaction and returns what it read.
async fn read_rows(
    mut tx: Transaction<'static, Postgres>,
    recipe: Recipe,
    batches: tokio::sync::mpsc::Sender<(Vec<Write>, u64)>,
) -> Result<Read, String> {
    let mut read = Read::default();
    {
        let sql = rows_sql(&recipe);
        let mut rows = sqlx::query_scalar::<_, String>(&sql).fetch(&mut *tx);
        loop {
            let (batch, more) = read_batch(&mut rows, &recipe, &mut read).await?;
            // A writer that failed or was cancelled has dropped its end: stop reading.
            if !batch.is_empty() && batches.send((batch, read.rows)).await.is_err() {
                break;
            }
            if !more {
                break;
            }
        }
    }
    tx.rollback().await.map_err(|e| pg_message(&e))?;
    Ok(read)
}

/// Writes one batch: refresh-ahead check first when asked, then the values, then the tags. On
/// one server the batch's pipeline is left in flight.
async fn write_batch(
    ks: &mut Keyspace,
    recipe: &Recipe,
    batch: Vec<Write>,
    tally: &mut Written,
    inflight: &mut InFlight<()>,
) -> Result<(), String> {
    let batch = match recipe.refresh_ahead {
        Some(fraction) if !batch.is_empty() => {
            let keys: Vec<String> = batch.iter().map(|w| w.key.clone()).collect();
            let left: Vec<i64> = ks.each("PTTL", &keys).await?;
            // Missing (-2) and persistent (-1) keys are written; so are keys near expiry.
            let fresh_ms = (recipe.ttl_secs as f64 * 1000.0 * fraction) as i64;
            let (stale, fresh): (Vec<_>, Vec<_>) = batch
                .into_iter()
                .zip(left)
                .partition(|(_, ms)| *ms < 0 || *ms <= fresh_ms);
            tally.fresh += fresh.len() as u64;
            stale.into_iter().map(|(w, _)| w).collect()
        }
        _ => batch,
    };
    if batch.is_empty() {
        return Ok(());
    }
    let mut by_tag: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for w in &batch {
        for t in &w.tags {
            by_tag.entry(t).or_default().push(&w.key);
        }
    }
    let ttls: Vec<u64> = batch.iter().map(|_| jittered(recipe)).collect();
    let set = |w: &Write, ttl: u64| {
        let mut cmd = redis::cmd("SET");
        cmd.arg(&w.key).arg(&w.value).arg("EX").arg(ttl);
        cmd
    };
    match ks {
        // One pipeline: the values, then the tags (a tag never names a key not yet written).
        Keyspace::Single(link) => {
            let mut pipe = redis::pipe();
            for (w, ttl) in batch.iter().zip(&ttls) {
                pipe.add_command(set(w, *ttl)).ignore();
            }
            for (tag, keys) in &by_tag {
                pipe.cmd("SADD").arg(*tag).arg(keys).ignore();
            }
            inflight.send(link, pipe).await?;
        }
        // The values on their primaries first, then each tag on its own.
        Keyspace::Cluster(_) => {
            let keys: Vec<String> = batch.iter().map(|w| w.key.clone()).collect();
            ks.per_key::<redis::Value>(&keys, |pipe, i| {
                pipe.add_command(set(&batch[i], ttls[i]));
            })
            .await?;
            let tags: Vec<String> = by_tag.keys().map(|t| t.to_string()).collect();
            ks.per_key::<redis::Value>(&tags, |pipe, i| {
                pipe.cmd("SADD")
                    .arg(&tags[i])
                    .arg(&by_tag[tags[i].as_str()]);
            })
            .await?;
        }
    }
    tally.keys += batch.len() as u64;
    tally.tags.extend(by_tag.keys().map(|t| t.to_string()));
    Ok(())
}

#[async_trait::async_trait]
impl JobKind for WarmCache {
    fn name(&self) -> &'static str {
        "warm_cache"
    }

    fn key(&self, _target: Option<&str>, parameters: &serde_json::Value) -> Option<String> {
        Some(format!("warm:{}", recipe_name(parameters).ok()?))
    }

    async fn plan(
        &self,
        target: Option<&str>,
        parameters: &serde_json::Value,
    ) -> Result<Plan, String> {
        let recipe = self.recipe(target, parameters)?;
        let owner = target.unwrap_or_default();
        let failed = |e: String| format!("recipe `{}`: {e}", recipe.name);
        let pool = self.source(recipe)?;
        let mut tx = read_only(&pool).await?;
        let rows = estimate(&mut tx, recipe).await.map_err(failed)?;
        if rows > recipe.max_rows {
            return Err(failed(format!(
                "the planner estimates {rows} rows, more than its `max_rows` of {}: narrow the \
                 query or raise `max_rows`",
                recipe.max_rows
            )));
        }
        let sample: Vec<String> =
            sqlx::query_scalar(&format!("{} LIMIT {SAMPLE}", rows_sql(recipe)))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| failed(pg_message(&e)))?;
        let _ = tx.rollback().await;
        let writes = sample
            .into_iter()
            .enumerate()
            .map(|(i, json)| {
                write_of(recipe, json)
                    .map_err(|e| format!("recipe `{}`, row {}: {e}", recipe.name, i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !writes.is_empty() {
            let mean = writes
                .iter()
                .map(|w| (w.key.len() + w.value.len()) as u64)
                .sum::<u64>()
                / writes.len() as u64;
            let bytes = rows.saturating_mul(mean);
            let mut ks = self.targets.keyspace(Some(owner), TIMEOUT).await?;
            if let Some(free) = free_memory(&mut ks).await.map_err(failed)?
                && bytes > free
            {
                return Err(failed(format!(
                    "about {bytes} bytes ({rows} rows × {mean} bytes of key and value, the mean of \
                     the first {}) do not fit in the {free} bytes `{owner}` has free under \
                     maxmemory",
                    writes.len()
                )));
            }
        }
        let mut statements = vec![format!(
            "SELECT … FROM ({}) on `{}`, read-only, streamed",
            crate::format::truncate(&recipe.sql, 200),
            recipe.postgres
        )];
        for w in &writes {
            statements.push(format!(
                "SET {} <{} bytes> EX {}",
                w.key,
                w.value.len(),
                recipe.ttl_label()
            ));
            for t in &w.tags {
                statements.push(format!("SADD {t} {}", w.key));
            }
        }
        if rows as usize > writes.len() {
            statements.push(format!(
                "… and the same for the other {} rows (the planner's estimate)",
                rows as usize - writes.len()
            ));
        }
        let refresh = match recipe.refresh_ahead {
            Some(f) => format!(
                " Refresh-ahead: keys with more than {:.0} % of their TTL left are kept (one PTTL each first).",
                f * 100.0
            ),
            None => String::new(),
        };
        let tags: Vec<String> = recipe.tags.iter().map(|t| t.to_string()).collect();
        Ok(Plan {
            summary: format!(
                "Warms recipe `{}`: about {rows} rows from `{}` become keys `{}` on `{owner}`, TTL {}, \
                 written in pipelined batches of {}{}.{refresh}",
                recipe.name,
                recipe.postgres,
                recipe.key,
                recipe.ttl_label(),
                recipe.batch,
                if tags.is_empty() {
                    String::new()
                } else {
                    format!(", each then added to tags {}", tags.join(", "))
                },
            ),
            statements,
            total: Some(rows),
            destructive: false,
        })
    }

    async fn run(
        &self,
        ctx: &mut JobContext,
        parameters: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        let target = ctx.job().target.clone();
        let recipe = self
            .recipe(target.as_deref(), parameters)
            .map_err(JobError::Failed)?;
        let owner = target.unwrap_or_default();
        let failed = |e: String| JobError::Failed(format!("recipe `{}`: {e}", recipe.name));
        let pool = self.source(recipe).map_err(failed)?;
        let mut ks = self
            .targets
            .keyspace(Some(&owner), TIMEOUT)
            .await
            .map_err(failed)?;
        let started = Instant::now();
        let mut tx = read_only(&pool).await.map_err(failed)?;
        let total = estimate(&mut tx, recipe).await.map_err(failed)?;
        // Two stages overlap on two tasks: while one batch is written to Redis, the reader
        // streams and parses the next ones (on another core when there is one).
        let (sender, mut batches) = tokio::sync::mpsc::channel(2);
        let reader = tokio::spawn(read_rows(tx, recipe.clone(), sender));
        let mut written = Written::default();
        let mut inflight = InFlight::new(IN_FLIGHT);
        while let Some((batch, rows_so_far)) = batches.recv().await {
            ctx.checkpoint(Checkpoint {
                done: rows_so_far,
                total: Some(total.max(rows_so_far)),
                phase: "writing".into(),
            })
            .await?;
            write_batch(&mut ks, recipe, batch, &mut written, &mut inflight)
                .await
                .map_err(failed)?;
        }
        // Pipelines are left in flight on one server only.
        if let Keyspace::Single(link) = &mut ks {
            inflight.settle(link).await.map_err(failed)?;
        }
        let read = reader
            .await
            .map_err(|e| failed(format!("the row reader stopped: {e}")))?
            .map_err(failed)?;
        if read.bad > 0 && read.bad == read.rows {
            return Err(failed(format!(
                "no row made a key ({})",
                read.first_error.unwrap_or_default()
            )));
        }
        ctx.checkpoint(Checkpoint {
            done: read.rows,
            total: Some(read.rows),
            phase: "done".into(),
        })
        .await?;
        let secs = started.elapsed().as_secs_f64();
        Ok(serde_json::json!({
            "recipe": recipe.name,
            "rows": read.rows,
            "written": written.keys,
            "fresh_kept": written.fresh,
            "bad_rows": read.bad,
            "first_error": read.first_error,
            "tags": written.tags.len(),
            "keys_per_sec": if secs > 0.0 { (written.keys as f64 / secs).round() } else { 0.0 },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::recipe::Template;

    #[test]
    fn only_one_query_is_a_recipe() {
        assert_eq!(check_sql("SELECT id FROM projects"), Ok(()));
        assert_eq!(
            check_sql("WITH p AS (SELECT 1 AS id) SELECT id FROM p;"),
            Ok(())
        );
        assert!(
            check_sql("DELETE FROM projects")
                .unwrap_err()
                .contains("one SELECT")
        );
        assert!(
            check_sql("SELECT 1; SELECT 2")
                .unwrap_err()
                .contains("several")
        );
        assert!(
            check_sql("SELEC 1")
                .unwrap_err()
                .contains("could not be parsed")
        );
    }

    #[test]
    fn a_row_makes_its_key_value_and_tags() {
        let mut recipe = Recipe {
            name: "projects".into(),
            postgres: "db".into(),
            sql: "SELECT 1".into(),
            key: Template::parse("cache:project:{id}").unwrap(),
            value: WarmValue::Row,
            ttl_secs: 100,
            jitter: 0.2,
            tags: vec![Template::parse("project:{id}").unwrap()],
            refresh_ahead: None,
            every_secs: None,
            batch: 10,
            timeout_secs: 5,
            max_rows: crate::cache::recipe::DEFAULT_MAX_ROWS,
        };
        let json = r#"{"id":7,"name":"x","meta":{"a":1}}"#.to_owned();
        let w = write_of(&recipe, json.clone()).unwrap();
        assert_eq!(
            (w.key.as_str(), w.value.as_str()),
            ("cache:project:7", json.as_str())
        );
        assert_eq!(w.tags, ["tag:project:7"]);
        recipe.value = WarmValue::Column("name".into());
        assert_eq!(write_of(&recipe, json.clone()).unwrap().value, "x");
        recipe.value = WarmValue::Column("meta".into());
        assert_eq!(write_of(&recipe, json.clone()).unwrap().value, r#"{"a":1}"#);
        recipe.value = WarmValue::Column("nope".into());
        assert!(write_of(&recipe, json).unwrap_err().contains("`nope`"));
        for _ in 0..200 {
            assert!((80..=120).contains(&jittered(&recipe)));
        }
    }
}
