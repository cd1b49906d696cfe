//! Redis Sentinel: a target written `redis+sentinel://[[user]:password@]host:port/master[/db]`
//! (more sentinels as `?sentinel=host:port&sentinel=host:port`) is the master its sentinels
//! name. The credentials and the database are the master's; the sentinels are asked without.

use std::time::Duration;

use crate::link::{no_answer, redact};
use crate::secret::SecretUrl;

/// The URL scheme of a Sentinel-resolved Redis.
pub const SCHEME: &str = "redis+sentinel";

/// Where to ask for the master, and how to log in to it.
#[derive(Clone)]
pub struct Sentinels {
    /// `host:port` of each sentinel, asked in order.
    addrs: Vec<String>,
    /// The master's name in the sentinels' configuration.
    pub master: String,
    db: i64,
    /// `user:password@` as written (percent-encoded), or empty.
    userinfo: String,
}

impl Sentinels {
    /// The sentinels of `url`, or `None` when it is not a sentinel URL; the error names what is
    /// missing (never echoing the password).
    pub fn of(url: &SecretUrl) -> Result<Option<Self>, String> {
        let parsed = url::Url::parse(url.expose()).map_err(|e| e.to_string())?;
        if parsed.scheme() != SCHEME {
            return Ok(None);
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("a redis+sentinel:// URL names a sentinel host")?;
        let mut addrs = vec![format!("{host}:{}", parsed.port().unwrap_or(26379))];
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "sentinel" if value.contains(':') => addrs.push(value.into_owned()),
                "sentinel" => addrs.push(format!("{value}:26379")),
                other => {
                    return Err(format!(
                        "unknown redis+sentinel:// parameter `{other}`: only `sentinel=host:port`"
                    ));
                }
            }
        }
        let mut path = parsed.path().trim_matches('/').split('/');
        let master = path.next().filter(|m| !m.is_empty()).ok_or(
            "a redis+sentinel:// URL names the master after the host: redis+sentinel://host:26379/mymaster",
        )?;
        let db = match path.next() {
            None | Some("") => 0,
            Some(db) => db
                .parse()
                .map_err(|_| format!("`{db}` after the master name is not a database number"))?,
        };
        let userinfo = match (parsed.username(), parsed.password()) {
            ("", None) => String::new(),
            (user, None) => format!("{user}@"),
            (user, Some(password)) => format!("{user}:{password}@"),
        };
        Ok(Some(Self {
            addrs,
            master: master.to_owned(),
            db,
            userinfo,
        }))
    }

    /// The master's `host:port` as the first sentinel that answers within `timeout` says.
    pub async fn resolve(&self, timeout: Duration) -> Result<String, String> {
        let mut failures = Vec::new();
        for addr in &self.addrs {
            match ask(addr, &self.master, timeout).await {
                Ok(master) => return Ok(master),
                Err(e) => failures.push(format!("sentinel {addr}: {e}")),
            }
        }
        Err(failures.join("; "))
    }

    /// A client of the master at `addr`, with the URL's credentials and database.
    pub fn master_client(&self, addr: &str) -> Result<redis::Client, String> {
        let (host, port) = addr
            .rsplit_once(':')
            .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            .ok_or_else(|| format!("the sentinels gave `{addr}` as the master's address"))?;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let url = format!("redis://{}{host}:{port}/{}", self.userinfo, self.db);
        redis::Client::open(url).map_err(|e| redact(&e.to_string()))
    }
}

/// Asks the sentinel at `addr` where master `name` is.
async fn ask(addr: &str, name: &str, timeout: Duration) -> Result<String, String> {
    let client = redis::Client::open(format!("redis://{addr}")).map_err(|e| e.to_string())?;
    let question = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(name)
            .query_async::<Option<(String, u16)>>(&mut conn)
            .await
    };
    match tokio::time::timeout(timeout, question).await {
        Err(_) => Err(no_answer(timeout)),
        Ok(Err(e)) => Err(redact(&e.to_string())),
        Ok(Ok(None)) => Err(format!("it monitors no master named `{name}`")),
        Ok(Ok(Some((host, port)))) => Ok(format!("{host}:{port}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(url: &str) -> Result<Option<Sentinels>, String> {
        Sentinels::of(&SecretUrl::parse(url).unwrap())
    }

    #[test]
    fn sentinel_urls_name_sentinels_master_database_and_credentials() {
        assert!(of("redis://cache:6379/0").unwrap().is_none());
        let s = of("redis+sentinel://:pw@s1:5000/cache/2?sentinel=s2:5001&sentinel=s3")
            .unwrap()
            .unwrap();
        assert_eq!(s.addrs, ["s1:5000", "s2:5001", "s3:26379"]);
        assert_eq!((s.master.as_str(), s.db), ("cache", 2));
        let client = s.master_client("10.0.0.7:6380").unwrap();
        let info = client.get_connection_info();
        assert_eq!(info.addr().to_string(), "10.0.0.7:6380");
        assert_eq!(info.redis_settings().db(), 2);
        assert_eq!(info.redis_settings().password(), Some("pw"));
        assert!(s.master_client("nowhere").is_err());
        assert_eq!(
            of("redis+sentinel://s1/m").unwrap().unwrap().addrs,
            ["s1:26379"]
        );

        for (url, why) in [
            ("redis+sentinel://s1:26379", "names the master"),
            ("redis+sentinel://s1:26379/m/x", "not a database number"),
            (
                "redis+sentinel://s1:26379/m?db=2",
                "unknown redis+sentinel:// parameter `db`",
            ),
        ] {
            let e = of(url).err().unwrap();
            assert!(e.contains(why), "{url}: {e}");
        }
        assert!(
            !of("redis+sentinel://:secret@s1:26379")
                .err()
                .unwrap()
                .contains("secret")
        );
    }
}
