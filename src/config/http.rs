//! The `[http]` section: the names the console answers to, and the limits of its connections.

use std::time::Duration;

use serde::Deserialize;

use crate::access::STREAMS_PER_SESSION;

/// How the console serves HTTP (`[http]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// The host names the console answers to, lowercase, besides IP addresses and `localhost`
    /// (a request naming any other host is refused: DNS rebinding).
    pub hosts: Vec<String>,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// A connection that has not sent a request's headers within this long is closed.
    pub header_timeout: Duration,
    /// Live streams (`/api/stream`) one session may have open at once.
    pub streams_per_session: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            streams_per_session: STREAMS_PER_SESSION,
        }
    }
}

/// The `[http]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpSection {
    #[serde(default)]
    hosts: Vec<String>,
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    streams_per_session: Option<usize>,
}

impl HttpSection {
    pub(super) fn validate(self) -> Result<HttpConfig, String> {
        let d = HttpConfig::default();
        let hosts = self
            .hosts
            .iter()
            .map(|h| host_name(h))
            .collect::<Result<_, _>>()?;
        let max_connections = self.max_connections.unwrap_or(d.max_connections);
        if !(1..=1_000_000).contains(&max_connections) {
            return Err("`http.max_connections` must be from 1 to 1000000".into());
        }
        let header_timeout = match self.header_timeout_secs {
            Some(s @ 1..=300) => Duration::from_secs(s),
            Some(_) => return Err("`http.header_timeout_secs` must be from 1 to 300".into()),
            None => d.header_timeout,
        };
        let streams_per_session = self.streams_per_session.unwrap_or(d.streams_per_session);
        if !(1..=10_000).contains(&streams_per_session) {
            return Err("`http.streams_per_session` must be from 1 to 10000".into());
        }
        Ok(HttpConfig {
            hosts,
            max_connections,
            header_timeout,
            streams_per_session,
        })
    }
}

/// A host name as `http.hosts` takes it: letters, digits, `-` and `.`, no scheme, port or path.
fn host_name(name: &str) -> Result<String, String> {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let fits = !lower.is_empty()
        && lower.len() <= 253
        && lower
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if fits {
        Ok(lower)
    } else {
        Err(format!(
            "`http.hosts`: `{name}` is not a host name: write the name alone, such as \"pitwall.example.com\" (no scheme, port or path)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(hosts: &[&str]) -> HttpSection {
        HttpSection {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            max_connections: None,
            header_timeout_secs: None,
            streams_per_session: None,
        }
    }

    #[test]
    fn hosts_are_bare_names() {
        let config = section(&["Pitwall.Example.com", "ops."])
            .validate()
            .unwrap();
        assert_eq!(config.hosts, ["pitwall.example.com", "ops"]);
        for bad in [
            "https://pitwall.example.com",
            "pitwall.example.com:3000",
            "a/b",
            "",
        ] {
            let err = section(&[bad]).validate().unwrap_err();
            assert!(
                err.contains(&format!("`{bad}` is not a host name")),
                "{err}"
            );
        }
    }

    #[test]
    fn limits_are_checked() {
        let mut s = section(&[]);
        s.max_connections = Some(0);
        assert!(s.validate().unwrap_err().contains("max_connections"));
        let mut s = section(&[]);
        s.header_timeout_secs = Some(0);
        assert!(s.validate().unwrap_err().contains("header_timeout_secs"));
        let d = section(&[]).validate().unwrap();
        assert_eq!(d, HttpConfig::default());
    }
}
