//! Commands and pipelines left in flight on one server, so Redis never waits for Pitwall between
//! batches: the next batch goes out while the server still works on the ones before.

use std::collections::VecDeque;

use redis::aio::MultiplexedConnection;
use tokio::task::JoinHandle;

use crate::link::RedisLink;

/// A command or pipeline sent on a link's connection and not yet answered.
pub(super) struct Sent<T>(JoinHandle<redis::RedisResult<T>>);

impl<T: Send + 'static> Sent<T> {
    /// Sends what `request` sends on `link`'s connection (connecting first), without waiting for
    /// the answer.
    pub async fn send<F>(
        link: &mut RedisLink,
        request: impl FnOnce(MultiplexedConnection) -> F,
    ) -> Result<Self, String>
    where
        F: Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        Ok(Self(tokio::spawn(request(link.connection().await?))))
    }

    /// The answer; a failure is described by `link`, whose next command reconnects.
    pub async fn answer(self, link: &mut RedisLink) -> Result<T, String> {
        match self.0.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(link.failed(&e)),
            Err(e) => Err(format!("a request's task stopped: {e}")),
        }
    }
}

/// Pipelines sent on one link and not yet answered, oldest first, at most `most` at once.
pub(super) struct InFlight<T> {
    most: usize,
    sent: VecDeque<Sent<T>>,
}

impl<T: redis::FromRedisValue + Send + 'static> InFlight<T> {
    /// None in flight yet; at most `most` at once.
    pub fn new(most: usize) -> Self {
        Self {
            most,
            sent: VecDeque::new(),
        }
    }

    /// Sends `pipe` once fewer than `most` pipelines wait for their answer: the answers waited
    /// for, oldest first.
    pub async fn send(
        &mut self,
        link: &mut RedisLink,
        pipe: redis::Pipeline,
    ) -> Result<Vec<T>, String> {
        let mut answers = Vec::new();
        while self.sent.len() >= self.most {
            let oldest = self.sent.pop_front().expect("the queue is not empty");
            answers.push(oldest.answer(link).await?);
        }
        self.sent.push_back(
            Sent::send(
                link,
                move |mut c| async move { pipe.query_async(&mut c).await },
            )
            .await?,
        );
        Ok(answers)
    }

    /// Waits for every answer, oldest first.
    pub async fn settle(&mut self, link: &mut RedisLink) -> Result<Vec<T>, String> {
        let mut answers = Vec::with_capacity(self.sent.len());
        while let Some(oldest) = self.sent.pop_front() {
            answers.push(oldest.answer(link).await?);
        }
        Ok(answers)
    }
}
