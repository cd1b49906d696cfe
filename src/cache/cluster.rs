//! Redis Cluster. A Redis target is a [`Keyspace`]: one server, or a cluster's primaries (from
//! `CLUSTER NODES`) with the slot each key hashes to, so the cache jobs treat both alike: a
//! command per key goes to the primary holding the key, pipelined per primary, and a `SCAN`
//! runs on every primary in turn. The slot map is read when the keyspace is opened; a key
//! moved since (resharding) fails its batch with Redis' `MOVED`, and the job's retry reads the
//! map again.

use std::time::Duration;

use super::inspect::refusable;
use crate::link::{RedisLink, info_field};
use crate::secret::SecretUrl;

/// Hash slots in a cluster.
pub const SLOTS: u16 = 16_384;

/// The hash slot of `key`: CRC16 (XMODEM) of the key, or of its `{hash tag}` when it has a
/// non-empty one, modulo 16,384.
pub fn slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|b| *b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|b| *b == b'}')
                .filter(|len| *len > 0)
                .map(|len| &rest[..len])
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS
}

fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, b| {
        crc ^= u16::from(*b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// One primary of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primary {
    /// Its node id.
    pub id: String,
    /// `host:port`.
    pub addr: String,
    /// The slot ranges it serves, inclusive.
    pub slots: Vec<(u16, u16)>,
}

impl Primary {
    /// Slots it serves.
    pub fn slot_count(&self) -> u32 {
        self.slots.iter().map(|(a, b)| u32::from(b - a) + 1).sum()
    }
}

/// The primaries in a `CLUSTER NODES` reply that are connected and not failing, with their
/// slots (slots being migrated, `[…]`, are left to their current owner's line).
pub fn primaries(nodes: &str) -> Vec<Primary> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [id, addr, flags, _, _, _, _, link, slots @ ..] = fields.as_slice() else {
                return None;
            };
            let flags: Vec<&str> = flags.split(',').collect();
            let usable = flags.contains(&"master")
                && !flags
                    .iter()
                    .any(|f| matches!(*f, "fail" | "fail?" | "handshake" | "noaddr"))
                && *link == "connected";
            if !usable {
                return None;
            }
            let addr = addr.split(['@', ',']).next().unwrap_or(*addr);
            let slots = slots
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|one| (one, one)),
                })
                .collect();
            Some(Primary {
                id: id.to_string(),
                addr: addr.to_string(),
                slots,
            })
        })
        .collect()
}

/// `url` pointing at `addr` (`host:port`) instead, with the same credentials and options.
fn url_at(url: &SecretUrl, addr: &str) -> Result<SecretUrl, String> {
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("the cluster names a node at `{addr}`, not host:port"))?;
    let mut u = url::Url::parse(url.expose()).map_err(|e| format!("{url}: {e}"))?;
    u.set_host(Some(host))
        .map_err(|e| format!("the cluster names a node at `{addr}`: {e}"))?;
    u.set_port(Some(port))
        .map_err(|()| format!("the cluster names a node at `{addr}`"))?;
    SecretUrl::parse(u.as_str()).map_err(|e| e.to_string())
}

/// A cluster: a link per primary and which primary serves each slot.
pub struct Cluster {
    primaries: Vec<(Primary, RedisLink)>,
    owner: Vec<u8>,
}

impl Cluster {
    /// The node index that serves `key`.
    pub fn node_of(&self, key: &str) -> usize {
        usize::from(self.owner[usize::from(slot(key.as_bytes()))])
    }

    /// The primaries, in the order of `CLUSTER NODES`.
    pub fn primaries(&self) -> impl Iterator<Item = &Primary> {
        self.primaries.iter().map(|(p, _)| p)
    }
}

/// A Redis target as the cache jobs and pages use it.
pub enum Keyspace {
    /// One server.
    Single(RedisLink),
    /// A cluster's primaries.
    Cluster(Cluster),
}

impl Keyspace {
    /// Opens the target at `url`: asks it whether it is a cluster (`INFO cluster`) and, if so,
    /// reads its primaries and slots (`CLUSTER NODES`) and links to each.
    pub async fn open(url: &SecretUrl, timeout: Duration) -> Result<Self, String> {
        let mut link = RedisLink::new(url, timeout)?;
        let mut ask = redis::cmd("INFO");
        ask.arg("cluster");
        // A server that refuses INFO (an ACL) is taken for one server; its panels say why.
        let info = refusable::<String>(&mut link, ask)
            .await?
            .unwrap_or_default();
        if info_field(&info, "cluster_enabled") != Some("1") {
            return Ok(Self::Single(link));
        }
        let nodes: String = link
            .query(async |c| redis::cmd("CLUSTER").arg("NODES").query_async(c).await)
            .await?;
        let found = primaries(&nodes);
        if found.len() > usize::from(u8::MAX) {
            return Err(format!(
                "a cluster of {} primaries is too large",
                found.len()
            ));
        }
        let mut owner = vec![u8::MAX; usize::from(SLOTS)];
        for (i, p) in found.iter().enumerate() {
            for (a, b) in &p.slots {
                for s in *a..=(*b).min(SLOTS - 1) {
                    owner[usize::from(s)] = i as u8;
                }
            }
        }
        if let Some(unserved) = owner.iter().position(|o| *o == u8::MAX) {
            return Err(format!(
                "slot {unserved} is served by no reachable primary: the cluster is not ok"
            ));
        }
        let primaries = found
            .into_iter()
            .map(|p| {
                let link = RedisLink::new(&url_at(url, &p.addr)?, timeout)?;
                Ok((p, link))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self::Cluster(Cluster { primaries, owner }))
    }

    /// The cluster's topology, if it is one.
    pub fn cluster(&self) -> Option<&Cluster> {
        match self {
            Self::Single(_) => None,
            Self::Cluster(c) => Some(c),
        }
    }

    /// How many servers hold keys (1, or the primaries).
    pub fn nodes(&self) -> usize {
        match self {
            Self::Single(_) => 1,
            Self::Cluster(c) => c.primaries.len(),
        }
    }

    /// The link to node `i` (`0..nodes()`), to scan it.
    pub fn node(&mut self, i: usize) -> &mut RedisLink {
        match self {
            Self::Single(link) => link,
            Self::Cluster(c) => &mut c.primaries[i].1,
        }
    }

    /// The node (`0..nodes()`) holding `key`.
    pub fn node_of(&self, key: &str) -> usize {
        match self {
            Self::Single(_) => 0,
            Self::Cluster(c) => c.node_of(key),
        }
    }

    /// The link to the node holding `key`.
    pub fn link_for(&mut self, key: &str) -> &mut RedisLink {
        let i = self.node_of(key);
        self.node(i)
    }

    /// The node holding each of `keys`.
    fn route(&self, keys: &[String]) -> Vec<usize> {
        keys.iter().map(|k| self.node_of(k)).collect()
    }

    /// One command per key, made by `build(pipe, i)` for `keys[i]`, pipelined per node; the
    /// answers in the keys' order.
    pub async fn per_key<T: redis::FromRedisValue>(
        &mut self,
        keys: &[String],
        build: impl Fn(&mut redis::Pipeline, usize),
    ) -> Result<Vec<T>, String> {
        let route = self.route(keys);
        let mut answers: Vec<Option<T>> = (0..keys.len()).map(|_| None).collect();
        for node in 0..self.nodes() {
            let mine: Vec<usize> = (0..keys.len()).filter(|i| route[*i] == node).collect();
            if mine.is_empty() {
                continue;
            }
            let got: Vec<T> = self
                .node(node)
                .query(async |c| {
                    let mut pipe = redis::pipe();
                    for i in &mine {
                        build(&mut pipe, *i);
                    }
                    pipe.query_async(c).await
                })
                .await?;
            for (i, answer) in mine.into_iter().zip(got) {
                answers[i] = Some(answer);
            }
        }
        answers
            .into_iter()
            .map(|a| a.ok_or_else(|| "a node answered fewer commands than it was sent".into()))
            .collect()
    }

    /// `command key` for each of `keys` (`EXISTS`, `UNLINK`, `PTTL`), pipelined per node.
    pub async fn each<T: redis::FromRedisValue>(
        &mut self,
        command: &str,
        keys: &[String],
    ) -> Result<Vec<T>, String> {
        self.per_key(keys, |pipe, i| {
            pipe.cmd(command).arg(&keys[i]);
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_redis_including_hash_tags() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_ne!(
            slot(b"foo{}{bar}"),
            slot(b"bar"),
            "an empty tag hashes the whole key"
        );
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
    }

    #[test]
    fn primaries_are_read_from_cluster_nodes() {
        let nodes = "\
07c3 127.0.0.1:30004@31004,host1 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 [5460->-67ed]
e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
9999 127.0.0.1:30009@31009 master,fail - 0 0 1 disconnected 7
";
        let p = primaries(nodes);
        assert_eq!(
            p.iter().map(|p| p.addr.as_str()).collect::<Vec<_>>(),
            ["127.0.0.1:30002", "127.0.0.1:30003", "127.0.0.1:30001"]
        );
        assert_eq!(p[1].slots, [(10923, 16383)]);
        assert_eq!(p[2].slot_count(), 5461);
        let url = SecretUrl::parse("redis://:pw@10.0.0.1:7000/0").unwrap();
        let moved = url_at(&url, "10.0.0.2:7001").unwrap();
        assert_eq!(moved.expose(), "redis://:pw@10.0.0.2:7001/0");
        assert!(
            url_at(&url, "nowhere")
                .unwrap_err()
                .contains("not host:port")
        );
    }
}
