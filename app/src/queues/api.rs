//! Server functions of the Queues page.

use leptos::prelude::*;
use pitwall::queues::Message;

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{fail, require, service};

/// The next `count` messages workers will take from `queue` on `broker`, read without removing
/// them. Only queues the broker has (configured or bound) can be read, so a peek never opens
/// other keys.
#[server(endpoint = "peek_queue", input = server_fn::codec::GetUrl)]
pub async fn peek_queue(
    broker: String,
    queue: String,
    count: usize,
) -> Result<Vec<Message>, AppError> {
    use pitwall::queues::{Brokers, Error};
    require(pitwall::access::Role::Viewer)?;
    service::<Brokers>()?
        .peek(&broker, &queue, count)
        .await
        .map_err(|e| {
            fail(match e {
                Error::Broker { .. } => AppError::Server(e.to_string()),
                _ => AppError::Invalid(e.to_string()),
            })
        })
}
