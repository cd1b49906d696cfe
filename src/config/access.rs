//! The `[access]` section: session lifetimes, sign-in protection and trusted-proxy sign-in.

use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::access::AccessSettings;

/// The `[access]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccessSection {
    session_idle_minutes: Option<u64>,
    session_lifetime_hours: Option<u64>,
    lockout_after: Option<u32>,
    lockout_seconds: Option<u64>,
    backoff_after: Option<u32>,
    backoff_max_seconds: Option<u64>,
    attempts_per_minute: Option<u32>,
    trusted_proxy: Option<TrustedProxySection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedProxySection {
    header: Option<Spanned<String>>,
    proxies: Spanned<Vec<Spanned<String>>>,
}

/// The reverse proxies in front of the console. Only requests from their addresses may say the
/// client came over HTTPS (`X-Forwarded-Proto`) and, when `header` is set, name the signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxy {
    /// The header naming the user, lowercase (such as `x-forwarded-user`); without it, the proxy
    /// signs nobody in.
    pub header: Option<String>,
    /// The proxies' addresses or networks.
    pub proxies: Vec<IpNet>,
}

impl TrustedProxy {
    /// Whether a request from `peer` comes from one of the proxies, so its forwarded headers count.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.proxies.iter().any(|n| n.contains(peer))
    }

    /// The client's address of a request from `peer` carrying the `X-Forwarded-For` values
    /// `forwarded_for` (in header order): from a proxy, the rightmost hop that is not a proxy
    /// (each proxy appends the address it was reached from, and only the hops the proxies added
    /// are to be believed); else `peer` itself. A hop that is not an address ends the walk at
    /// the one after it.
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match hop.parse::<IpAddr>() {
                Ok(addr) => client = addr,
                Err(_) => break,
            }
        }
        client
    }

    /// The configured networks wider than a /24 (IPv4) or /64 (IPv6): every address in them may
    /// name any user.
    pub fn wide_networks(&self) -> impl Iterator<Item = &IpNet> {
        self.proxies.iter().filter(|n| n.is_wide())
    }
}

/// An address with a prefix length, such as `10.0.0.0/8`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `addr` or `addr/prefix`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid proxy address {s:?}: expected an IP address or network such as 10.0.0.0/8"
            )
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a.parse::<IpAddr>().map_err(|_| bad())?,
                Some(p.parse::<u8>().map_err(|_| bad())?),
            ),
            None => (s.parse::<IpAddr>().map_err(|_| bad())?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }

    /// Whether the network is wider than a /24 (IPv4) or /64 (IPv6).
    pub fn is_wide(&self) -> bool {
        self.prefix < if self.addr.is_ipv4() { 24 } else { 64 }
    }

    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The user header's name, lowercase; letters, digits and `-` only.
fn validate_header(header: Spanned<String>) -> Result<String, (Option<Range<usize>>, String)> {
    let name = header.get_ref().trim().to_ascii_lowercase();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        let message = format!(
            "invalid header name {:?}: expected letters, digits and `-`",
            header.get_ref()
        );
        return Err((Some(header.span()), message));
    }
    Ok(name)
}

fn mask(net: u128, ip: u128, prefix: u8, bits: u32) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = bits - u32::from(prefix);
    (net >> shift) == (ip >> shift)
}

/// The validated section.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// Session and sign-in settings.
    pub settings: AccessSettings,
    /// The trusted reverse proxies, when configured.
    pub trusted_proxy: Option<TrustedProxy>,
}

impl AccessSection {
    /// Validates the section; an error carries the span of the offending value when it has one.
    pub(super) fn validate(self) -> Result<AccessConfig, (Option<Range<usize>>, String)> {
        let d = AccessSettings::default();
        let positive = |name: &str, v: Option<u64>| match v {
            Some(0) => Err((None, format!("`access.{name}` must be at least 1"))),
            other => Ok(other),
        };
        let settings = AccessSettings {
            idle: positive("session_idle_minutes", self.session_idle_minutes)?
                .map_or(d.idle, |m| Duration::from_secs(m * 60)),
            lifetime: positive("session_lifetime_hours", self.session_lifetime_hours)?
                .map_or(d.lifetime, |h| Duration::from_secs(h * 3600)),
            lockout_after: positive("lockout_after", self.lockout_after.map(u64::from))?
                .map_or(d.lockout_after, |v| v as u32),
            lockout_for: positive("lockout_seconds", self.lockout_seconds)?
                .map_or(d.lockout_for, Duration::from_secs),
            backoff_after: positive("backoff_after", self.backoff_after.map(u64::from))?
                .map_or(d.backoff_after, |v| v as u32),
            backoff_max: positive("backoff_max_seconds", self.backoff_max_seconds)?
                .map_or(d.backoff_max, Duration::from_secs),
            attempts_per_minute: positive(
                "attempts_per_minute",
                self.attempts_per_minute.map(u64::from),
            )?
            .map_or(d.attempts_per_minute, |v| v as u32),
        };
        let trusted_proxy = match self.trusted_proxy {
            None => None,
            Some(p) => {
                let header = p.header.map(validate_header).transpose()?;
                if p.proxies.get_ref().is_empty() {
                    let message = "`proxies` must list at least one proxy address".to_owned();
                    return Err((Some(p.proxies.span()), message));
                }
                let proxies = p
                    .proxies
                    .into_inner()
                    .into_iter()
                    .map(|s| IpNet::parse(s.get_ref()).map_err(|m| (Some(s.span()), m)))
                    .collect::<Result<_, _>>()?;
                Some(TrustedProxy { header, proxies })
            }
        };
        Ok(AccessConfig {
            settings,
            trusted_proxy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_addresses() {
        let n = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = IpNet::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            IpNet::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("10.0.0.0/23").unwrap().is_wide());
        assert!(!IpNet::parse("10.0.0.0/24").unwrap().is_wide());
        assert!(!IpNet::parse("10.0.0.7").unwrap().is_wide());
        assert!(IpNet::parse("fd00::/48").unwrap().is_wide());
        assert!(!IpNet::parse("fd00::/64").unwrap().is_wide());
        assert_eq!(
            IpNet::parse("10.1.0.0/16").unwrap().to_string(),
            "10.1.0.0/16"
        );
        assert!(
            IpNet::parse("proxy.local")
                .unwrap_err()
                .contains("expected an IP address")
        );
    }

    #[test]
    fn backoff_settings_parse_and_must_be_positive() {
        let section: AccessSection =
            toml::from_str("backoff_after = 7\nbackoff_max_seconds = 30\n").unwrap();
        let settings = section.validate().unwrap().settings;
        assert_eq!(settings.backoff_after, 7);
        assert_eq!(settings.backoff_max, Duration::from_secs(30));
        let defaults = AccessSettings::default();
        assert_eq!(
            (defaults.backoff_after, defaults.backoff_max.as_secs()),
            (20, 60)
        );
        let section: AccessSection = toml::from_str("backoff_max_seconds = 0\n").unwrap();
        assert_eq!(
            section.validate().unwrap_err().1,
            "`access.backoff_max_seconds` must be at least 1"
        );
    }

    #[test]
    fn the_client_is_the_rightmost_hop_that_is_not_a_proxy() {
        let proxy = TrustedProxy {
            header: None,
            proxies: vec![
                IpNet::parse("10.0.0.5").unwrap(),
                IpNet::parse("10.0.0.6").unwrap(),
            ],
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (edge, inner, outside) = (ip("10.0.0.5"), ip("10.0.0.6"), ip("192.0.2.9"));
        assert_eq!(proxy.client(edge, ["203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(
            proxy.client(edge, ["198.51.100.1, 203.0.113.7"]),
            ip("203.0.113.7"),
            "what the client itself wrote to the left is not believed"
        );
        assert_eq!(
            proxy.client(inner, ["198.51.100.1", "203.0.113.7, 10.0.0.5"]),
            ip("203.0.113.7"),
            "through two proxies, over two header lines"
        );
        assert_eq!(proxy.client(edge, ["10.0.0.6"]), inner, "only proxies");
        assert_eq!(proxy.client(edge, ["nonsense"]), edge);
        assert_eq!(
            proxy.client(edge, ["203.0.113.7, nonsense, 10.0.0.6"]),
            ip("10.0.0.6")
        );
        assert_eq!(proxy.client(edge, std::iter::empty()), edge);
        assert_eq!(
            proxy.client(outside, ["203.0.113.7"]),
            outside,
            "a client that is not a proxy cannot choose its address"
        );
    }
}
