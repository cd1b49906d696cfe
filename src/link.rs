//! Connections to targets, each bounded by timeouts, whose errors never carry credentials.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::secret::SecretUrl;
use crate::sentinel::Sentinels;

/// A small lazily connected pool for a PostgreSQL target: one connection, every statement bounded
/// by `statement_timeout`, and a short `lock_timeout` so Pitwall never queues behind a lock.
pub fn pg_pool(url: &SecretUrl, timeout: Duration) -> Result<PgPool, String> {
    let options: PgConnectOptions = url
        .expose()
        .parse()
        .map_err(|e: sqlx::Error| format!("{url}: {}", redact(&e.to_string())))?;
    let options = options.application_name("pitwall").options([
        ("statement_timeout", format!("{}", timeout.as_millis())),
        ("lock_timeout", "500".to_owned()),
    ]);
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(timeout)
        .connect_lazy_with(options))
}

/// A PostgreSQL driver error as people should read it: a pool that could not hand out its
/// connection in time means the server did not answer.
pub fn pg_error(e: &sqlx::Error, timeout: Duration) -> String {
    match e {
        sqlx::Error::PoolTimedOut => no_answer(timeout),
        other => redact(&other.to_string()),
    }
}

/// How often a Sentinel-resolved link asks its sentinels again where the master is (a failover
/// moves it; the link follows at its next command after this).
pub const SENTINEL_RECHECK: Duration = Duration::from_secs(5);

/// One multiplexed connection to a Redis target, opened on first use and again after a failure.
/// For a `redis+sentinel://` target it goes to the master the sentinels name, asked again every
/// [`SENTINEL_RECHECK`].
pub struct RedisLink {
    endpoint: Endpoint,
    conn: Option<redis::aio::MultiplexedConnection>,
    timeout: Duration,
}

#[derive(Clone)]
enum Endpoint {
    Direct(redis::Client),
    Sentinel(Box<ViaSentinels>),
}

/// A master found through sentinels.
#[derive(Clone)]
struct ViaSentinels {
    sentinels: Sentinels,
    /// The master's address and client, and when the sentinels last named it.
    master: Option<(String, redis::Client, Instant)>,
}

impl RedisLink {
    /// A link to `url`; nothing connects until the first command.
    pub fn new(url: &SecretUrl, timeout: Duration) -> Result<Self, String> {
        let endpoint = match Sentinels::of(url).map_err(|e| format!("{url}: {e}"))? {
            Some(sentinels) => Endpoint::Sentinel(Box::new(ViaSentinels {
                sentinels,
                master: None,
            })),
            None => Endpoint::Direct(
                redis::Client::open(url.expose())
                    .map_err(|e| format!("{url}: {}", redact(&e.to_string())))?,
            ),
        };
        Ok(Self {
            endpoint,
            conn: None,
            timeout,
        })
    }

    /// A second link to the same server, with a connection of its own: commands on one never
    /// wait behind the other's.
    pub fn twin(&self) -> Self {
        Self {
            endpoint: self.endpoint.clone(),
            conn: None,
            timeout: self.timeout,
        }
    }

    /// The master's address a Sentinel-resolved link last connected to.
    pub fn master(&self) -> Option<&str> {
        match &self.endpoint {
            Endpoint::Sentinel(via) => via.master.as_ref().map(|(addr, ..)| addr.as_str()),
            Endpoint::Direct(_) => None,
        }
    }

    /// Runs one command or pipeline; a failure drops the connection so the next call reconnects.
    pub async fn query<T>(
        &mut self,
        run: impl AsyncFnOnce(&mut redis::aio::MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        let client = match &mut self.endpoint {
            Endpoint::Direct(client) => client.clone(),
            Endpoint::Sentinel(via) => {
                let ViaSentinels { sentinels, master } = &mut **via;
                match master {
                    Some((_, client, at)) if at.elapsed() < SENTINEL_RECHECK => client.clone(),
                    _ => match sentinels.resolve(self.timeout).await {
                        Ok(addr) => match master {
                            Some((known, client, at)) if *known == addr => {
                                *at = Instant::now();
                                client.clone()
                            }
                            _ => {
                                if master.is_some() {
                                    tracing::warn!(master = sentinels.master, %addr, "the sentinels name a new master");
                                }
                                let client = sentinels.master_client(&addr)?;
                                *master = Some((addr, client.clone(), Instant::now()));
                                self.conn = None;
                                client
                            }
                        },
                        // No sentinel answers: go on with the master they named last; ask again later.
                        Err(e) => match master {
                            Some((known, client, at)) => {
                                tracing::warn!(
                                    master = sentinels.master,
                                    "no sentinel answers, keeping {known}: {e}"
                                );
                                *at = Instant::now();
                                client.clone()
                            }
                            None => return Err(e),
                        },
                    },
                }
            }
        };
        if self.conn.is_none() {
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout));
            let conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|e| self.describe(&e))?;
            self.conn = Some(conn);
        }
        let conn = self.conn.as_mut().expect("connected above");
        match run(conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let message = self.describe(&e);
                self.conn = None;
                Err(message)
            }
        }
    }

    /// A handle on the connection (connecting first), for several pipelines in flight at once;
    /// report its errors through [`Self::failed`].
    pub async fn connection(&mut self) -> Result<redis::aio::MultiplexedConnection, String> {
        self.query(async |c| Ok(c.clone())).await
    }

    /// The message for an error met on a [`Self::connection`] handle; the next call reconnects.
    pub fn failed(&mut self, e: &redis::RedisError) -> String {
        self.conn = None;
        self.describe(e)
    }

    /// Forgets the connection (after a timeout the caller imposed).
    pub fn reset(&mut self) {
        self.conn = None;
    }

    fn describe(&self, e: &redis::RedisError) -> String {
        if e.is_timeout() {
            no_answer(self.timeout)
        } else {
            redact(&e.to_string())
        }
    }
}

/// The message for a target that did not answer in time.
pub fn no_answer(timeout: Duration) -> String {
    format!("no answer within {} ms", timeout.as_millis())
}

/// Drops anything that looks like a URL with credentials from a driver's message.
pub fn redact(message: &str) -> String {
    message
        .split_whitespace()
        .map(|word| {
            if word.contains("://") && word.contains('@') {
                "<url>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value of `field` in an `INFO` reply.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_info_fields() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n";
        assert_eq!(info_field(info, "redis_version"), Some("7.0.15"));
        assert_eq!(info_field(info, "redis_mode"), Some("standalone"));
        assert_eq!(info_field(info, "missing"), None);
    }

    #[test]
    fn redacts_urls_in_errors() {
        assert_eq!(redact("bad postgres://u:pw@h/db here"), "bad <url> here");
    }
}
