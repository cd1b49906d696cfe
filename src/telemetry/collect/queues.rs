//! A Celery broker's queue depths, counted the way kombu lays queues out on Redis: each queue is
//! a list per priority step (`<queue>`, `<queue>\x06\x163`, `…6`, `…9`), every key carries the
//! `global_keyprefix`, queues are discovered from the `_kombu.binding.*` sets as well as the
//! configuration, and reserved messages wait in `unacked`. Only O(1) commands, one pipeline.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Collector, Values};
use crate::config::Target;
use crate::link::RedisLink;
use crate::telemetry::{Family, metric};

/// kombu's separator between a queue's name and its priority step.
pub const SEP: &str = "\x06\x16";
/// kombu's default priority steps on Redis.
pub const PRIORITY_STEPS: [u8; 4] = [0, 3, 6, 9];
/// The exchanges whose binding sets name the queues.
const EXCHANGES: [&str; 1] = ["celery"];

/// Depth per queue, total depth and unacknowledged messages of one broker.
pub struct QueuesCollector {
    target: String,
    link: RedisLink,
    prefix: String,
    configured: Vec<String>,
}

impl QueuesCollector {
    /// A collector for `target` (a Celery broker).
    pub fn new(target: &Target, timeout: Duration) -> Result<Self, String> {
        let broker = target.celery.clone().unwrap_or_default();
        Ok(Self {
            target: target.name.clone(),
            link: RedisLink::new(&target.url, timeout)?,
            prefix: broker.global_keyprefix,
            configured: broker.queues,
        })
    }
}

/// The Redis lists that hold `queue`'s messages.
pub fn lists(prefix: &str, queue: &str) -> Vec<String> {
    PRIORITY_STEPS
        .iter()
        .map(|p| {
            if *p == 0 {
                format!("{prefix}{queue}")
            } else {
                format!("{prefix}{queue}{SEP}{p}")
            }
        })
        .collect()
}

/// The queue named by a binding-set member `routing_key SEP pattern SEP queue`.
fn bound_queue(member: &str) -> Option<&str> {
    member.rsplit(SEP).next().filter(|q| !q.is_empty())
}

#[async_trait::async_trait]
impl Collector for QueuesCollector {
    fn target(&self) -> &str {
        &self.target
    }

    fn family(&self) -> Family {
        Family::Queues
    }

    async fn collect(&mut self, _now_ms: u64) -> Result<Values, String> {
        let prefix = self.prefix.clone();
        let bindings: Vec<Vec<String>> = self
            .link
            .query(async |c| {
                let mut pipe = redis::pipe();
                for exchange in EXCHANGES {
                    pipe.smembers(format!("{prefix}_kombu.binding.{exchange}"));
                }
                pipe.query_async(c).await
            })
            .await?;
        let queues: BTreeSet<String> = self
            .configured
            .iter()
            .cloned()
            .chain(
                bindings
                    .iter()
                    .flatten()
                    .filter_map(|m| bound_queue(m).map(str::to_owned)),
            )
            .collect();
        let (depths, unacked): (Vec<u64>, u64) = {
            let queues = queues.clone();
            self.link
                .query(async |c| {
                    let mut pipe = redis::pipe();
                    for q in &queues {
                        for list in lists(&prefix, q) {
                            pipe.llen(list);
                        }
                    }
                    let depths: Vec<u64> = pipe.query_async(c).await?;
                    let unacked: u64 = redis::cmd("HLEN")
                        .arg(format!("{prefix}unacked"))
                        .query_async(c)
                        .await?;
                    Ok((depths, unacked))
                })
                .await?
        };
        let mut out = Values::new();
        let mut total = 0u64;
        for (q, chunk) in queues.iter().zip(depths.chunks(PRIORITY_STEPS.len())) {
            let depth: u64 = chunk.iter().sum();
            total += depth;
            out.push((metric::queue_depth(q), depth as f64));
        }
        out.push((metric::QUEUE_DEPTH.into(), total as f64));
        out.push((metric::UNACKED.into(), unacked as f64));
        Ok(out)
    }

    fn abandon(&mut self) {
        self.link.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kombu_lists_and_bindings() {
        assert_eq!(
            lists("p:", "emails"),
            [
                "p:emails",
                "p:emails\x06\x163",
                "p:emails\x06\x166",
                "p:emails\x06\x169"
            ]
        );
        assert_eq!(bound_queue("emails\x06\x16\x06\x16emails"), Some("emails"));
        assert_eq!(bound_queue(""), None);
    }
}
