//! The `analyze_keyspace` job: samples the keyspace with a paced `SCAN … COUNT` (never `KEYS`),
//! reads each key's type, remaining TTL and, where allowed, `MEMORY USAGE` (pipelined, one key
//! per command; on a cluster every primary in turn, each with its share of the sample), and
//! reports keys, memory and TTLs per prefix, the largest keys, and the keys
//! that break the target's TTL policies. It changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::inspect::refusable;
use super::invalidate::{TIMEOUT, check_pause, default_pause_ms};
use super::keyspace::{
    KeyStats, KeyspaceReport, PolicyCheck, PrefixStats, TTL_BUCKETS, TtlPolicy, prefix_of,
};
use super::pattern::dbsize;
use crate::config::Target;
use crate::jobs::kinds::TargetUrls;
use crate::jobs::{Checkpoint, JobContext, JobError, JobKind, Plan};
use crate::link::RedisLink;

/// Prefixes kept in the report.
const PREFIXES: usize = 50;
/// Largest keys kept in the report.
const TOP_KEYS: usize = 20;
/// Offending keys kept per policy.
const POLICY_SAMPLES: usize = 5;

/// The `analyze_keyspace` kind: `{"separator": ":", "depth": 2, "sample": 100000}`.
pub struct AnalyzeKeyspace {
    targets: TargetUrls,
    policies: Arc<HashMap<String, Vec<TtlPolicy>>>,
}

impl AnalyzeKeyspace {
    /// The kind, for `targets` and their TTL policies.
    pub fn new(targets: &[Target]) -> Self {
        Self {
            targets: TargetUrls::new(targets),
            policies: Arc::new(
                targets
                    .iter()
                    .map(|t| (t.name.clone(), t.ttl_policies.clone()))
                    .collect(),
            ),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default = "default_separator")]
    separator: String,
    #[serde(default = "default_depth")]
    depth: usize,
    #[serde(default = "default_sample")]
    sample: u64,
    #[serde(default = "default_count")]
    count: usize,
    #[serde(default = "default_pause_ms")]
    pause_ms: u64,
}

fn default_separator() -> String {
    ":".into()
}
fn default_depth() -> usize {
    2
}
fn default_sample() -> u64 {
    100_000
}
fn default_count() -> usize {
    500
}
/// Checked parameters.
struct Spec {
    separator: String,
    depth: usize,
    sample: u64,
    count: usize,
    pause: Duration,
}

fn spec(parameters: &serde_json::Value) -> Result<Spec, String> {
    let raw: Raw = serde_json::from_value(parameters.clone())
        .map_err(|e| format!("analyze_keyspace parameters: {e}"))?;
    if raw.separator.is_empty()
        || raw.separator.len() > 4
        || raw.separator.chars().any(char::is_control)
    {
        return Err(format!(
            "`separator` must be 1 to 4 bytes without control characters, not {:?}",
            raw.separator
        ));
    }
    if !(1..=5).contains(&raw.depth) {
        return Err(format!(
            "`depth` must be between 1 and 5, not {}",
            raw.depth
        ));
    }
    if !(1..=1_000_000).contains(&raw.sample) {
        return Err(format!(
            "`sample` must be between 1 and 1000000, not {}",
            raw.sample
        ));
    }
    if !(10..=5_000).contains(&raw.count) {
        return Err(format!(
            "`count` must be between 10 and 5000, not {}",
            raw.count
        ));
    }
    Ok(Spec {
        separator: raw.separator,
        depth: raw.depth,
        sample: raw.sample,
        count: raw.count,
        pause: check_pause(raw.pause_ms)?,
    })
}

/// What one key is.
struct Seen {
    key: String,
    kind: String,
    /// Remaining TTL, ms; negative without one (-1) or when gone (-2).
    pttl: i64,
    memory: u64,
}

/// Type, TTL and (when `memory`) size of each key, pipelined.
async fn describe(
    link: &mut RedisLink,
    keys: Vec<String>,
    memory: bool,
) -> Result<Vec<Seen>, String> {
    let replies: Vec<redis::Value> = link
        .query(async |c| {
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("TYPE").arg(k).cmd("PTTL").arg(k);
                if memory {
                    pipe.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
                }
            }
            pipe.query_async(c).await
        })
        .await?;
    let per_key = if memory { 3 } else { 2 };
    let mut replies = replies.into_iter();
    let mut seen = Vec::with_capacity(keys.len());
    for key in keys {
        let mut next = || replies.next().unwrap_or(redis::Value::Nil);
        let kind: String = redis::from_redis_value(next()).unwrap_or_default();
        let pttl: i64 = redis::from_redis_value(next()).unwrap_or(-2);
        let memory: Option<u64> = if per_key == 3 {
            redis::from_redis_value(next()).unwrap_or(None)
        } else {
            None
        };
        if kind != "none" {
            seen.push(Seen {
                key,
                kind,
                pttl,
                memory: memory.unwrap_or(0),
            });
        }
    }
    Ok(seen)
}

/// The report's tallies as keys arrive.
struct Tally {
    prefixes: HashMap<String, (PrefixStats, BTreeMap<String, u64>)>,
    top: Vec<KeyStats>,
    policies: Vec<PolicyCheck>,
    sampled: u64,
}

impl Tally {
    fn new(policies: &[TtlPolicy]) -> Self {
        Self {
            prefixes: HashMap::new(),
            top: Vec::new(),
            policies: policies
                .iter()
                .map(|p| PolicyCheck {
                    policy: p.clone(),
                    keys: 0,
                    no_ttl: 0,
                    too_long: 0,
                    samples: Vec::new(),
                })
                .collect(),
            sampled: 0,
        }
    }

    fn add(&mut self, spec: &Spec, s: Seen) {
        self.sampled += 1;
        let ttl_secs = (s.pttl >= 0).then(|| (s.pttl as u64).div_ceil(1000));
        let (stats, types) = self
            .prefixes
            .entry(prefix_of(&s.key, &spec.separator, spec.depth))
            .or_default();
        stats.keys += 1;
        stats.memory_bytes += s.memory;
        match ttl_secs {
            None => stats.no_ttl += 1,
            Some(t) => {
                let bucket = TTL_BUCKETS
                    .iter()
                    .position(|(max, _)| t < *max)
                    .unwrap_or(TTL_BUCKETS.len());
                stats.ttl_buckets[bucket] += 1;
            }
        }
        *types.entry(s.kind.clone()).or_default() += 1;
        for check in &mut self.policies {
            if !s.key.starts_with(&check.policy.prefix) {
                continue;
            }
            check.keys += 1;
            let offends = match ttl_secs {
                None => {
                    check.no_ttl += 1;
                    true
                }
                Some(t) if t > check.policy.max_ttl_secs => {
                    check.too_long += 1;
                    true
                }
                Some(_) => false,
            };
            if offends && check.samples.len() < POLICY_SAMPLES {
                check.samples.push(s.key.clone());
            }
        }
        if s.memory > 0
            && (self.top.len() < TOP_KEYS
                || self.top.last().is_some_and(|k| k.memory_bytes < s.memory))
        {
            self.top.push(KeyStats {
                key: s.key,
                memory_bytes: s.memory,
                kind: s.kind,
                ttl_secs,
            });
            self.top.sort_by_key(|k| std::cmp::Reverse(k.memory_bytes));
            self.top.truncate(TOP_KEYS);
        }
    }

    fn report(self, spec: &Spec, keys: u64, complete: bool, memory_known: bool) -> KeyspaceReport {
        let mut prefixes: Vec<PrefixStats> = self
            .prefixes
            .into_iter()
            .map(|(prefix, (mut stats, types))| {
                stats.prefix = prefix;
                stats.types = types.into_iter().collect();
                stats.types.sort_by_key(|t| std::cmp::Reverse(t.1));
                stats
            })
            .collect();
        prefixes.sort_by(|a, b| {
            (b.memory_bytes, b.keys, &a.prefix).cmp(&(a.memory_bytes, a.keys, &b.prefix))
        });
        prefixes.truncate(PREFIXES);
        KeyspaceReport {
            separator: spec.separator.clone(),
            depth: spec.depth,
            sampled: self.sampled,
            keys,
            complete,
            memory_known,
            prefixes,
            top_keys: self.top,
            policies: self.policies,
        }
    }
}

#[async_trait::async_trait]
impl JobKind for AnalyzeKeyspace {
    fn name(&self) -> &'static str {
        "analyze_keyspace"
    }

    fn key(&self, target: Option<&str>, _parameters: &serde_json::Value) -> Option<String> {
        Some(format!("keyspace:{}", target.unwrap_or("-")))
    }

    async fn plan(
        &self,
        target: Option<&str>,
        parameters: &serde_json::Value,
    ) -> Result<Plan, String> {
        let spec = spec(parameters)?;
        let mut ks = self.targets.keyspace(target, TIMEOUT).await?;
        let keys = dbsize(&mut ks).await?;
        let looked = keys.min(spec.sample);
        let policies = self
            .policies
            .get(target.unwrap_or_default())
            .map_or(0, Vec::len);
        Ok(Plan {
            summary: format!(
                "Looks at {looked} of the {keys} keys with a paced SCAN (COUNT {}, {} ms apart; \
                 never KEYS), reading each key's TYPE, PTTL and MEMORY USAGE (pipelined), and \
                 reports keys, memory and TTLs per prefix (cut at `{}`, {} segments), the largest \
                 keys, and the keys breaking the target's {policies} TTL policies. Nothing is \
                 changed.",
                spec.count,
                spec.pause.as_millis(),
                spec.separator,
                spec.depth
            ),
            statements: vec![
                format!("SCAN <cursor> COUNT {}", spec.count),
                "TYPE <key>; PTTL <key>; MEMORY USAGE <key> SAMPLES 0 (per key, pipelined)".into(),
            ],
            total: Some(looked),
            destructive: false,
        })
    }

    async fn run(
        &self,
        ctx: &mut JobContext,
        parameters: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        let spec = spec(parameters).map_err(JobError::Failed)?;
        let target = ctx.job().target.clone().unwrap_or_default();
        let mut ks = self
            .targets
            .keyspace(Some(&target), TIMEOUT)
            .await
            .map_err(JobError::Failed)?;
        let keys = dbsize(&mut ks).await.map_err(JobError::Failed)?;
        let total = keys.min(spec.sample);
        let mut tally = Tally::new(self.policies.get(&target).map_or(&[], Vec::as_slice));
        // Known at the first key: a managed Redis may refuse MEMORY USAGE, and the analysis
        // then goes on without sizes.
        let mut memory: Option<bool> = None;
        let mut complete = true;
        let nodes = ks.nodes() as u64;
        // Every node in turn, each with its share of the sample (what one leaves, the next takes).
        for node in 0..nodes {
            let share = spec.sample * (node + 1) / nodes;
            let link = ks.node(node as usize);
            let mut cursor = 0u64;
            loop {
                ctx.checkpoint(Checkpoint {
                    done: tally.sampled,
                    total: Some(total.max(tally.sampled)),
                    phase: "scanning".into(),
                })
                .await?;
                let (next, found): (u64, Vec<String>) = link
                    .query(async |c| {
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("COUNT")
                            .arg(spec.count)
                            .query_async(c)
                            .await
                    })
                    .await
                    .map_err(JobError::Failed)?;
                let room = share.saturating_sub(tally.sampled) as usize;
                let found: Vec<String> = found.into_iter().take(room).collect();
                if memory.is_none()
                    && let Some(first) = found.first()
                {
                    let mut probe = redis::cmd("MEMORY");
                    probe.arg("USAGE").arg(first);
                    let allowed = refusable::<Option<u64>>(link, probe)
                        .await
                        .map_err(JobError::Failed)?;
                    memory = Some(allowed.is_ok());
                }
                for seen in describe(link, found, memory == Some(true))
                    .await
                    .map_err(JobError::Failed)?
                {
                    tally.add(&spec, seen);
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
                if tally.sampled >= share {
                    complete = false;
                    break;
                }
                tokio::time::sleep(spec.pause).await;
            }
        }
        let report = tally.report(&spec, keys, complete, memory.unwrap_or(true));
        ctx.checkpoint(Checkpoint {
            done: report.sampled,
            total: Some(report.sampled),
            phase: "done".into(),
        })
        .await?;
        serde_json::to_value(&report).map_err(|e| JobError::Failed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_are_bounded() {
        let bad = |v: serde_json::Value| spec(&v).err().unwrap();
        assert!(bad(json!({"separator": ""})).contains("`separator`"));
        assert!(bad(json!({"depth": 0})).contains("`depth` must be between 1 and 5"));
        assert!(bad(json!({"sample": 0})).contains("`sample`"));
        assert!(bad(json!({"count": 1})).contains("`count`"));
        assert!(bad(json!({"what": 1})).contains("unknown field `what`"));
        let ok = spec(&json!({})).unwrap();
        assert_eq!(
            (ok.separator.as_str(), ok.depth, ok.sample),
            (":", 2, 100_000)
        );
    }

    #[test]
    fn keys_are_tallied_per_prefix_and_against_policies() {
        let spec = spec(&json!({})).unwrap();
        let mut tally = Tally::new(&[TtlPolicy {
            prefix: "resp:".into(),
            max_ttl_secs: 3_600,
        }]);
        let seen = |key: &str, pttl: i64, memory: u64| Seen {
            key: key.into(),
            kind: "string".into(),
            pttl,
            memory,
        };
        tally.add(&spec, seen("resp:a", 30_000, 100));
        tally.add(&spec, seen("resp:b", -1, 300));
        tally.add(&spec, seen("resp:c", 7_200_000, 50));
        tally.add(&spec, seen("other", -1, 10));
        let r = tally.report(&spec, 4, true, true);
        let resp = &r.prefixes[0];
        assert_eq!(
            (resp.prefix.as_str(), resp.keys, resp.memory_bytes),
            ("resp:", 3, 450)
        );
        assert_eq!((resp.no_ttl, resp.ttl_buckets), (1, [1, 0, 1, 0, 0]));
        assert_eq!(r.prefixes[1].prefix, "(no prefix)");
        assert_eq!(r.top_keys[0].key, "resp:b");
        let p = &r.policies[0];
        assert_eq!((p.keys, p.no_ttl, p.too_long, p.kept()), (3, 1, 1, false));
        assert_eq!(p.samples, ["resp:b", "resp:c"]);
    }
}
