//! A Celery broker as Pitwall reaches it: its queues (configured and discovered from kombu's
//! binding sets) and a read-only peek at the messages its workers will take next.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{MAX_PEEK, Message, kombu};
use crate::config::Target;
use crate::link::RedisLink;
use crate::secret::SecretUrl;

/// Why a peek was refused or failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// No Celery broker of that name is configured.
    #[error("no Celery broker is named {0:?}")]
    UnknownBroker(String),
    /// The broker has no such queue (neither configured nor bound).
    #[error("broker {broker:?} has no queue named {queue:?}")]
    UnknownQueue {
        /// The broker.
        broker: String,
        /// The queue asked for.
        queue: String,
    },
    /// The count asked for is out of range.
    #[error("a peek shows 1 to {MAX_PEEK} messages, not {0}")]
    Count(usize),
    /// The broker did not answer or refused (no credentials in the text).
    #[error("broker {broker:?}: {reason}")]
    Broker {
        /// The broker.
        broker: String,
        /// Why.
        reason: String,
    },
}

/// This module's result.
pub type Result<T> = std::result::Result<T, Error>;

/// How to reach one broker and how its keys are laid out.
#[derive(Debug, Clone)]
pub struct Broker {
    /// The target's name.
    pub name: String,
    /// Where it is.
    pub url: SecretUrl,
    /// kombu's `global_keyprefix`.
    pub prefix: String,
    /// Queues named in the configuration.
    pub configured: Vec<String>,
}

impl Broker {
    /// The broker of a Celery target.
    pub fn of(target: &Target) -> Self {
        let settings = target.celery.clone().unwrap_or_default();
        Self {
            name: target.name.clone(),
            url: target.url.clone(),
            prefix: settings.global_keyprefix,
            configured: settings.queues,
        }
    }

    /// Configured queues and every queue bound on kombu's exchanges.
    pub async fn queues(
        &self,
        link: &mut RedisLink,
    ) -> std::result::Result<BTreeSet<String>, String> {
        let prefix = &self.prefix;
        let bindings: Vec<Vec<String>> = link
            .query(async |c| {
                let mut pipe = redis::pipe();
                for exchange in kombu::EXCHANGES {
                    pipe.smembers(kombu::binding_set(prefix, exchange));
                }
                pipe.query_async(c).await
            })
            .await?;
        Ok(self
            .configured
            .iter()
            .cloned()
            .chain(
                bindings
                    .iter()
                    .flatten()
                    .filter_map(|m| kombu::bound_queue(m).map(str::to_owned)),
            )
            .collect())
    }

    /// The next `count` messages workers will take from `queue`: highest priority first, oldest
    /// first within a priority. Read with `LRANGE` on each list's tail; nothing is removed.
    pub async fn peek(
        &self,
        link: &mut RedisLink,
        queue: &str,
        count: usize,
    ) -> Result<Vec<Message>> {
        if !(1..=MAX_PEEK).contains(&count) {
            return Err(Error::Count(count));
        }
        let failed = |reason: String| Error::Broker {
            broker: self.name.clone(),
            reason,
        };
        if !self.queues(link).await.map_err(failed)?.contains(queue) {
            return Err(Error::UnknownQueue {
                broker: self.name.clone(),
                queue: queue.to_owned(),
            });
        }
        let tails: Vec<Vec<String>> = link
            .query(async |c| {
                let mut pipe = redis::pipe();
                for list in kombu::lists(&self.prefix, queue) {
                    pipe.lrange(list, -(count as isize), -1);
                }
                pipe.query_async(c).await
            })
            .await
            .map_err(failed)?;
        Ok(kombu::PRIORITY_STEPS
            .iter()
            .zip(tails)
            .flat_map(|(step, tail)| {
                tail.into_iter()
                    .rev()
                    .map(move |raw| kombu::read_message(&raw, *step))
            })
            .take(count)
            .collect())
    }
}

/// Every configured Celery broker, for peeks from pages and the command line.
#[derive(Debug, Clone)]
pub struct Brokers {
    brokers: Vec<Broker>,
    timeout: Duration,
}

impl Brokers {
    /// The Celery brokers among `targets`; each peek is bounded by `timeout`.
    pub fn new(targets: &[Target], timeout: Duration) -> Self {
        Self {
            brokers: targets
                .iter()
                .filter(|t| t.celery.is_some())
                .map(Broker::of)
                .collect(),
            timeout,
        }
    }

    /// The next `count` messages of `queue` on `broker` (see [`Broker::peek`]).
    pub async fn peek(&self, broker: &str, queue: &str, count: usize) -> Result<Vec<Message>> {
        let b = self
            .brokers
            .iter()
            .find(|b| b.name == broker)
            .ok_or_else(|| Error::UnknownBroker(broker.to_owned()))?;
        let failed = |reason: String| Error::Broker {
            broker: b.name.clone(),
            reason,
        };
        let mut link = RedisLink::new(&b.url, self.timeout).map_err(failed)?;
        match tokio::time::timeout(self.timeout * 2, b.peek(&mut link, queue, count)).await {
            Ok(result) => result,
            Err(_) => Err(failed(crate::link::no_answer(self.timeout * 2))),
        }
    }
}
