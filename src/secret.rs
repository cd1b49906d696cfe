//! Connection URLs are secrets: [`SecretUrl`] only ever prints `host:port/db`.

use std::fmt;

use serde::{Deserialize, Deserializer};
use url::Url;

/// A connection URL whose `Display` and `Debug` show `host:port/db` only, never the user name,
/// password or query parameters. Use [`SecretUrl::expose`] solely to open a connection.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl {
    url: Url,
    redacted: String,
}

/// Why a string is not a usable connection URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The string does not parse as a URL.
    #[error("invalid URL: {0}")]
    Parse(String),
    /// The URL's scheme is not one the target kind accepts.
    #[error("unsupported scheme `{found}`, expected {expected}")]
    Scheme {
        /// The scheme found in the URL.
        found: String,
        /// The schemes that would be accepted.
        expected: &'static str,
    },
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

impl SecretUrl {
    /// Parses a URL. Parse errors never echo the input, since it may hold a password.
    pub fn parse(s: &str) -> Result<Self> {
        let url = Url::parse(s.trim()).map_err(|e| Error::Parse(e.to_string()))?;
        let redacted = redact(&url);
        Ok(Self { url, redacted })
    }

    /// Checks that the scheme is one of `schemes` (named in the error as `expected`).
    pub fn require_scheme(&self, schemes: &[&str], expected: &'static str) -> Result<()> {
        if schemes.contains(&self.url.scheme()) {
            Ok(())
        } else {
            Err(Error::Scheme {
                found: self.url.scheme().to_owned(),
                expected,
            })
        }
    }

    /// The full URL, credentials included. Only for opening connections.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }

    /// `host:port/db`, safe to show anywhere.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The TCP host and port it connects to (`None` for a Unix socket).
    pub fn endpoint(&self) -> Option<(String, u16)> {
        let host = self.url.host_str().filter(|h| !h.is_empty())?;
        let port = self
            .url
            .port()
            .or_else(|| default_port(self.url.scheme()))?;
        Some((host.trim_matches(['[', ']']).to_owned(), port))
    }
}

fn redact(url: &Url) -> String {
    let host = match url.host_str() {
        Some(h) if !h.is_empty() => h.to_owned(),
        // `postgres:///db?host=/run/postgresql` style: the socket directory is the host.
        _ => url
            .query_pairs()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| "localhost".to_owned()),
    };
    let port = url.port().or_else(|| default_port(url.scheme()));
    let db = url.path().trim_start_matches('/');
    let mut out = host;
    if let Some(port) = port {
        out.push_str(&format!(":{port}"));
    }
    if !db.is_empty() {
        out.push('/');
        out.push_str(db);
    }
    out
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" | "postgresql" => Some(5432),
        "redis" | "rediss" => Some(6379),
        "redis+sentinel" => Some(26379),
        _ => None,
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", self.redacted)
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SecretUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_debug_hide_credentials() {
        let u = SecretUrl::parse("postgres://app:hunter2@db.internal:6543/shop?sslmode=require")
            .unwrap();
        assert_eq!(u.to_string(), "db.internal:6543/shop");
        assert_eq!(format!("{u:?}"), "SecretUrl(db.internal:6543/shop)");
        assert!(!format!("{u} {u:?}").contains("hunter2"));
        assert!(u.expose().contains("hunter2"));
    }

    #[test]
    fn default_ports_and_socket_hosts() {
        assert_eq!(
            SecretUrl::parse("redis://:pw@cache/2").unwrap().redacted(),
            "cache:6379/2"
        );
        assert_eq!(
            SecretUrl::parse("postgres:///app?host=/run/postgresql")
                .unwrap()
                .redacted(),
            "/run/postgresql:5432/app"
        );
    }

    #[test]
    fn parse_errors_do_not_echo_the_input() {
        let err = SecretUrl::parse("not a url with secret-pw").unwrap_err();
        assert!(!err.to_string().contains("secret-pw"), "{err}");
    }

    #[test]
    fn scheme_check_names_what_was_expected() {
        let u = SecretUrl::parse("http://x/1").unwrap();
        let err = u
            .require_scheme(&["redis", "rediss"], "redis:// or rediss://")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported scheme `http`, expected redis:// or rediss://"
        );
    }
}
