//! The `invalidate_pattern` job: unlinks the keys matching a glob pattern, found with a paced
//! `SCAN MATCH` (never `KEYS`), one `UNLINK` per key pipelined, at most `cap` keys. Its plan is
//! the dry run: a bounded scan counts and samples the matches and estimates the rest from
//! `DBSIZE`. A pattern needs a literal prefix, so `*` can never empty a cache by mistake. On a
//! cluster every primary is scanned in turn.
//! Unlinked keys stay named by their tags until `prune_tag` removes them. The report's
//! `already_gone` may count a key twice, as `SCAN` may return it twice while the keyspace
//! shrinks; `unlinked` is exact.

use std::time::Duration;

use serde::Deserialize;

use super::cluster::Keyspace;
use super::invalidate::{TIMEOUT, check_pause, default_pause_ms};
use crate::jobs::kinds::TargetUrls;
use crate::jobs::{Checkpoint, JobContext, JobError, JobKind, Plan};
use crate::link::RedisLink;

/// Literal characters a pattern must start with.
pub const MIN_PREFIX: usize = 3;
/// `SCAN` calls of the dry run at most.
const DRY_RUN_CALLS: usize = 200;
/// Keys shown in the plan.
const SAMPLE: usize = 10;

/// The `invalidate_pattern` kind: `{"pattern": "cache:project:*", "cap": 100000}`.
pub struct InvalidatePattern {
    targets: TargetUrls,
}

impl InvalidatePattern {
    /// The kind, for these targets.
    pub fn new(targets: TargetUrls) -> Self {
        Self { targets }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    pattern: String,
    #[serde(default = "default_cap")]
    cap: u64,
    #[serde(default = "default_count")]
    count: usize,
    #[serde(default = "default_pause_ms")]
    pause_ms: u64,
}

fn default_cap() -> u64 {
    100_000
}

fn default_count() -> usize {
    1_000
}

/// Checked parameters.
struct Spec {
    pattern: String,
    cap: u64,
    count: usize,
    pause: Duration,
}

/// Checks a key pattern: a glob with at least [`MIN_PREFIX`] literal characters first.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.len() > 256 {
        return Err(format!(
            "`pattern` must be 1 to 256 bytes, not {}",
            pattern.len()
        ));
    }
    if let Some(c) = pattern
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "`pattern` {pattern:?} contains {c:?}: keys matched by a pattern have no spaces or control characters"
        ));
    }
    let literal = pattern.find(['*', '?', '[', '\\']).unwrap_or(pattern.len());
    if literal < MIN_PREFIX {
        return Err(format!(
            "`pattern` {pattern:?} matches too much: it must start with at least {MIN_PREFIX} \
             literal characters before any `*`, `?` or `[` (such as `cache:project:*`)"
        ));
    }
    Ok(())
}

fn spec(parameters: &serde_json::Value) -> Result<Spec, String> {
    let raw: Raw = serde_json::from_value(parameters.clone())
        .map_err(|e| format!("invalidate_pattern parameters: {e}"))?;
    check_pattern(&raw.pattern)?;
    if !(1..=10_000_000).contains(&raw.cap) {
        return Err(format!(
            "`cap` must be between 1 and 10000000, not {}",
            raw.cap
        ));
    }
    if !(10..=10_000).contains(&raw.count) {
        return Err(format!(
            "`count` must be between 10 and 10000, not {}",
            raw.count
        ));
    }
    Ok(Spec {
        pattern: raw.pattern,
        cap: raw.cap,
        count: raw.count,
        pause: check_pause(raw.pause_ms)?,
    })
}

/// Keys on every node (`DBSIZE` summed).
pub(super) async fn dbsize(ks: &mut Keyspace) -> Result<u64, String> {
    let mut keys = 0u64;
    for node in 0..ks.nodes() {
        keys += ks
            .node(node)
            .query(async |c| redis::cmd("DBSIZE").query_async::<u64>(c).await)
            .await?;
    }
    Ok(keys)
}

/// One `SCAN MATCH` call from `cursor`: the next cursor and the keys it matched.
async fn scan(
    link: &mut RedisLink,
    spec: &Spec,
    cursor: u64,
) -> Result<(u64, Vec<String>), String> {
    link.query(async |c| {
        redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&spec.pattern)
            .arg("COUNT")
            .arg(spec.count)
            .query_async(c)
            .await
    })
    .await
}

#[async_trait::async_trait]
impl JobKind for InvalidatePattern {
    fn name(&self) -> &'static str {
        "invalidate_pattern"
    }

    fn key(&self, target: Option<&str>, parameters: &serde_json::Value) -> Option<String> {
        let pattern = spec(parameters).ok()?.pattern;
        Some(format!("pattern:{}:{pattern}", target.unwrap_or("-")))
    }

    async fn plan(
        &self,
        target: Option<&str>,
        parameters: &serde_json::Value,
    ) -> Result<Plan, String> {
        let spec = spec(parameters)?;
        let mut ks = self.targets.keyspace(target, TIMEOUT).await?;
        let keys = dbsize(&mut ks).await?;
        let (mut calls, mut matched, mut complete) = (0usize, 0u64, true);
        let mut sample: Vec<String> = Vec::new();
        // Every node in turn (one on a single server), within one budget of calls.
        'nodes: for node in 0..ks.nodes() {
            let mut cursor = 0u64;
            loop {
                if calls == DRY_RUN_CALLS {
                    complete = false;
                    break 'nodes;
                }
                let (next, found) = scan(ks.node(node), &spec, cursor).await?;
                calls += 1;
                matched += found.len() as u64;
                let room = SAMPLE.saturating_sub(sample.len());
                sample.extend(found.into_iter().take(room));
                cursor = next;
                if cursor == 0 {
                    break;
                }
                tokio::time::sleep(spec.pause).await;
            }
        }
        let estimate = if complete {
            matched
        } else {
            let looked = (calls * spec.count) as f64;
            ((matched as f64 / looked) * keys as f64).round() as u64
        };
        let found = if complete {
            format!("{matched} of the {keys} keys match")
        } else {
            format!(
                "{matched} keys match among the first ~{} of {keys} looked at (about {estimate} in all)",
                calls * spec.count
            )
        };
        let mut statements = vec![format!(
            "SCAN <cursor> MATCH {} COUNT {} ({} ms apart)",
            spec.pattern,
            spec.count,
            spec.pause.as_millis()
        )];
        statements.extend(sample.iter().map(|k| format!("UNLINK {k}")));
        if estimate > sample.len() as u64 {
            statements.push(format!(
                "… and UNLINK for each other match, {} keys at most",
                spec.cap
            ));
        }
        Ok(Plan {
            summary: format!(
                "Dry run: {found}. Unlinks the keys matching `{}`, one UNLINK per key, found with \
                 a paced SCAN (never KEYS), and stops after {} keys (the cap). Keys added while it \
                 runs may be missed; tags naming the keys keep them until pruned.",
                spec.pattern, spec.cap
            ),
            statements,
            total: Some(estimate.min(spec.cap)),
            destructive: true,
        })
    }

    async fn run(
        &self,
        ctx: &mut JobContext,
        parameters: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        let spec = spec(parameters).map_err(JobError::Failed)?;
        let target = ctx.job().target.clone();
        let mut ks = self
            .targets
            .keyspace(target.as_deref(), TIMEOUT)
            .await
            .map_err(JobError::Failed)?;
        let (mut unlinked, mut gone, mut calls, mut capped) = (0u64, 0u64, 0u64, false);
        // Every node in turn: the keys a node's SCAN finds live on that node.
        let nodes = ks.nodes();
        'nodes: for node in 0..nodes {
            let link = ks.node(node);
            let mut cursor = 0u64;
            loop {
                ctx.checkpoint(Checkpoint {
                    done: unlinked,
                    total: None,
                    phase: format!("scanning ({calls} calls)"),
                })
                .await?;
                let (next, mut found) =
                    scan(link, &spec, cursor).await.map_err(JobError::Failed)?;
                calls += 1;
                found.truncate((spec.cap - unlinked) as usize);
                if !found.is_empty() {
                    let existed: Vec<u64> = link
                        .query(async |c| {
                            let mut pipe = redis::pipe();
                            for k in &found {
                                pipe.cmd("UNLINK").arg(k);
                            }
                            pipe.query_async(c).await
                        })
                        .await
                        .map_err(JobError::Failed)?;
                    let n = existed.iter().filter(|e| **e > 0).count() as u64;
                    unlinked += n;
                    gone += existed.len() as u64 - n;
                }
                cursor = next;
                if unlinked >= spec.cap {
                    capped = cursor != 0 || node + 1 < nodes;
                    break 'nodes;
                }
                if cursor == 0 {
                    break;
                }
                tokio::time::sleep(spec.pause).await;
            }
        }
        ctx.checkpoint(Checkpoint {
            done: unlinked,
            total: Some(unlinked),
            phase: "done".into(),
        })
        .await?;
        Ok(serde_json::json!({
            "pattern": spec.pattern,
            "unlinked": unlinked,
            "already_gone": gone,
            "scan_calls": calls,
            "capped": capped,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_need_a_literal_prefix_and_settings_are_bounded() {
        let bad = |v: serde_json::Value| spec(&v).err().unwrap();
        assert!(bad(json!({"pattern": "*"})).contains("matches too much"));
        assert!(bad(json!({"pattern": "ab*"})).contains("at least 3 literal characters"));
        assert!(bad(json!({"pattern": "[a]bcd"})).contains("matches too much"));
        assert!(bad(json!({"pattern": "a b*"})).contains("contains ' '"));
        assert!(bad(json!({"pattern": ""})).contains("1 to 256 bytes"));
        assert!(bad(json!({"pattern": "abc*", "cap": 0})).contains("`cap` must be between"));
        assert!(bad(json!({"pattern": "abc*", "count": 1})).contains("`count` must be between"));
        assert!(bad(json!({"pattern": "abc*", "pause_ms": 99999})).contains("`pause_ms`"));
        let ok = spec(&json!({"pattern": "cache:project:*"})).unwrap();
        assert_eq!((ok.cap, ok.count), (100_000, 1_000));
        assert!(spec(&json!({"pattern": "exact:key"})).is_ok());
    }
}
