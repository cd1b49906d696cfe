//! A Celery broker's queues, counted the way kombu lays them out on Redis: each queue is a list
//! per priority step (`<queue>`, `<queue>\x06\x163`, `…6`, `…9`), every key carries the
//! `global_keyprefix`, queues are discovered from the `_kombu.binding.*` sets as well as the
//! configuration, and reserved messages wait in `unacked`. Per queue: depth, messages in and out
//! per second and how long the oldest has waited ([`crate::queues::flow`]); per worker: its
//! heartbeat figures ([`crate::queues::events`]). One transaction of bounded commands a round.

use std::collections::HashMap;
use std::time::Duration;

use redis::Value;

use super::{Collector, Values};
use crate::config::Target;
use crate::link::RedisLink;
use crate::queues::events::{self, Heartbeats};
use crate::queues::flow::{ListFlow, SCAN, Seen};
use crate::queues::{Broker, kombu};
use crate::telemetry::{Family, metric};

/// Depth, flow and age per queue, unacknowledged messages and workers of one broker.
pub struct QueuesCollector {
    broker: Broker,
    link: RedisLink,
    client: redis::Client,
    timeout: Duration,
    /// Each watched list's account, by list key.
    flows: HashMap<String, ListFlow>,
    last_ms: Option<u64>,
    heartbeats: Option<Heartbeats>,
}

impl QueuesCollector {
    /// A collector for `target` (a Celery broker).
    pub fn new(target: &Target, timeout: Duration) -> Result<Self, String> {
        let client = redis::Client::open(target.url.expose())
            .map_err(|e| format!("{}: {}", target.url, crate::link::redact(&e.to_string())))?;
        Ok(Self {
            broker: Broker::of(target),
            link: RedisLink::new(&target.url, timeout)?,
            client,
            timeout,
            flows: HashMap::new(),
            last_ms: None,
            heartbeats: None,
        })
    }
}

/// What one round read, besides the lists.
struct Round {
    seen: Vec<Seen>,
    unacked: u64,
    oldest_reserved: Option<f64>,
}

impl QueuesCollector {
    /// Reads every list of `queues` and the reservations in one transaction.
    async fn read(&mut self, lists: &[String]) -> Result<Round, String> {
        let prefix = self.broker.prefix.clone();
        let anchors: Vec<Option<String>> = lists
            .iter()
            .map(|l| {
                self.flows
                    .get(l)
                    .and_then(|f| f.anchor().map(str::to_owned))
            })
            .collect();
        let replies: Vec<Value> = self
            .link
            .query(async |c| {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for (list, anchor) in lists.iter().zip(&anchors) {
                    pipe.llen(list).lindex(list, 0);
                    if let Some(anchor) = anchor {
                        let scan = || redis::LposOptions::default().maxlen(SCAN as usize);
                        pipe.lpos(list, anchor, scan())
                            .lpos(list, anchor, scan().rank(-1));
                    }
                }
                pipe.hlen(format!("{prefix}unacked")).zrange_withscores(
                    format!("{prefix}unacked_index"),
                    0,
                    0,
                );
                pipe.query_async(c).await
            })
            .await?;
        let mut replies = replies.into_iter();
        let mut next = || replies.next().ok_or("the broker answered too little");
        let as_u64 = |v: Value| redis::from_redis_value::<Option<u64>>(v).ok().flatten();
        let mut seen = Vec::with_capacity(lists.len());
        for anchor in &anchors {
            let depth = as_u64(next()?).unwrap_or(0);
            let head = redis::from_redis_value::<Option<String>>(next()?)
                .ok()
                .flatten();
            let anchor_at = if anchor.is_some() {
                let from_head = as_u64(next()?);
                let from_tail = as_u64(next()?);
                from_head.or(from_tail)
            } else {
                None
            };
            seen.push(Seen {
                depth,
                head,
                anchor_at,
            });
        }
        let unacked = as_u64(next()?).unwrap_or(0);
        let oldest_reserved = redis::from_redis_value::<Vec<(String, f64)>>(next()?)
            .ok()
            .and_then(|v| v.first().map(|(_, score)| *score));
        Ok(Round {
            seen,
            unacked,
            oldest_reserved,
        })
    }
}

#[async_trait::async_trait]
impl Collector for QueuesCollector {
    fn target(&self) -> &str {
        &self.broker.name
    }

    fn family(&self) -> Family {
        Family::Queues
    }

    async fn collect(&mut self, now_ms: u64) -> Result<Values, String> {
        if self.heartbeats.is_none() {
            let db = self.client.get_connection_info().redis_settings().db();
            self.heartbeats = Some(Heartbeats::spawn(
                self.client.clone(),
                events::pattern(&self.broker.prefix, db),
                self.timeout,
            ));
        }
        let queues = self.broker.queues(&mut self.link).await?;
        let lists: Vec<String> = queues
            .iter()
            .flat_map(|q| kombu::lists(&self.broker.prefix, q))
            .collect();
        let round = self.read(&lists).await?;
        self.flows.retain(|list, _| lists.contains(list));
        let seconds = self
            .last_ms
            .map(|then| now_ms.saturating_sub(then) as f64 / 1000.0)
            .filter(|s| *s > 0.0);
        self.last_ms = Some(now_ms);

        let mut out = Values::new();
        let (mut depth_all, mut in_all, mut out_all) = (0u64, 0u64, 0u64);
        let mut stepped = false;
        let per_queue = kombu::PRIORITY_STEPS.len();
        for (queue, (lists, seen)) in queues
            .iter()
            .zip(lists.chunks(per_queue).zip(round.seen.chunks(per_queue)))
        {
            let (mut depth, mut pushed, mut popped, mut exact, mut stepped_here) =
                (0u64, 0u64, 0u64, true, false);
            let (mut arrived, mut left) = (0u64, 0u64);
            let mut oldest: Option<u64> = None;
            for (list, seen) in lists.iter().zip(seen) {
                depth += seen.depth;
                let flow = self.flows.entry(list.clone()).or_default();
                if let Some(step) = flow.observe(seen.clone(), now_ms) {
                    stepped_here = true;
                    pushed += step.pushed;
                    popped += step.popped;
                    exact &= step.exact;
                }
                let (a, l) = flow.totals();
                arrived += a;
                left += l;
                if let Some(seen_ms) = flow.oldest_seen_ms() {
                    oldest = Some(oldest.map_or(seen_ms, |o| o.min(seen_ms)));
                }
            }
            depth_all += depth;
            out.push((metric::queue_depth(queue), depth as f64));
            out.push((metric::queue_arrived(queue), arrived as f64));
            out.push((metric::queue_left(queue), left as f64));
            if let Some(age) = oldest {
                out.push((
                    metric::queue_oldest(queue),
                    now_ms.saturating_sub(age) as f64 / 1000.0,
                ));
            }
            if let (true, Some(s)) = (stepped_here, seconds) {
                stepped = true;
                in_all += pushed;
                out_all += popped;
                out.push((metric::queue_in(queue), pushed as f64 / s));
                out.push((metric::queue_out(queue), popped as f64 / s));
                out.push((metric::queue_exact(queue), if exact { 1.0 } else { 0.0 }));
            }
        }
        out.push((metric::QUEUE_DEPTH.into(), depth_all as f64));
        if let (true, Some(s)) = (stepped, seconds) {
            out.push((metric::IN_PER_SEC.into(), in_all as f64 / s));
            out.push((metric::OUT_PER_SEC.into(), out_all as f64 / s));
        }
        out.push((metric::UNACKED.into(), round.unacked as f64));
        if let Some(at) = round.oldest_reserved {
            let age = (now_ms as f64 / 1000.0 - at).max(0.0);
            out.push((metric::UNACKED_OLDEST.into(), age));
        }
        let workers = self
            .heartbeats
            .as_ref()
            .map_or_else(Vec::new, |h| h.workers(now_ms));
        out.push((
            metric::WORKERS_ONLINE.into(),
            workers.iter().filter(|w| w.online).count() as f64,
        ));
        for w in workers {
            let h = &w.hostname;
            out.push((metric::worker_online(h), if w.online { 1.0 } else { 0.0 }));
            out.push((metric::worker_active(h), w.active as f64));
            out.push((
                metric::worker_silent(h),
                now_ms.saturating_sub(w.seen_ms) as f64 / 1000.0,
            ));
            if let Some(rate) = w.processed_per_sec {
                out.push((metric::worker_rate(h), rate));
            }
            if let Some(load) = w.load1 {
                out.push((metric::worker_load(h), load));
            }
        }
        Ok(out)
    }

    fn abandon(&mut self) {
        self.link.reset();
    }
}
