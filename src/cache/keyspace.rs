//! What a keyspace analysis found (the `analyze_keyspace` job's report, shown on the Cache page):
//! keys, memory, types and TTLs per prefix, the largest keys, and each configured TTL policy's
//! offenders. Shared with the browser; the job itself is in `analyze.rs`.

use serde::{Deserialize, Serialize};

/// The longest TTL keys under a prefix should have (`analysis:` 24 h, `embedding:` 7 d): keys
/// without a TTL, or with a longer one, are flagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtlPolicy {
    /// The key prefix (`ai_cache:response:`).
    pub prefix: String,
    /// The longest TTL allowed, seconds.
    pub max_ttl_secs: u64,
}

/// The upper bounds of the TTL buckets, seconds: under a minute, an hour, a day, a week; the last
/// bucket holds the rest.
pub const TTL_BUCKETS: [(u64, &str); 4] = [
    (60, "< 1 min"),
    (3_600, "< 1 h"),
    (86_400, "< 1 d"),
    (7 * 86_400, "< 7 d"),
];

/// One keyspace analysis of one Redis target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyspaceReport {
    /// The separator prefixes were cut at.
    pub separator: String,
    /// Segments kept in a prefix.
    pub depth: usize,
    /// Keys looked at.
    pub sampled: u64,
    /// Keys in the database (`DBSIZE`) when it started.
    pub keys: u64,
    /// Whether the scan saw the whole keyspace (otherwise it stopped at its sample size).
    pub complete: bool,
    /// Whether `MEMORY USAGE` was allowed (managed Redis may refuse it).
    pub memory_known: bool,
    /// Per prefix, the most memory first (then the most keys).
    pub prefixes: Vec<PrefixStats>,
    /// The largest keys seen.
    pub top_keys: Vec<KeyStats>,
    /// Each configured TTL policy against the keys seen.
    pub policies: Vec<PolicyCheck>,
}

/// The keys seen under one prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrefixStats {
    /// The prefix, with its trailing separator, or `(no prefix)`.
    pub prefix: String,
    /// Keys.
    pub keys: u64,
    /// Their memory, bytes (0 when unknown).
    pub memory_bytes: u64,
    /// Keys without a TTL.
    pub no_ttl: u64,
    /// Keys with a TTL, per [`TTL_BUCKETS`] bucket, then the rest.
    pub ttl_buckets: [u64; 5],
    /// Keys per type (`string`, `set`, …), most first.
    pub types: Vec<(String, u64)>,
}

/// One large key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyStats {
    /// The key.
    pub key: String,
    /// Its memory, bytes.
    pub memory_bytes: u64,
    /// Its type.
    pub kind: String,
    /// Its remaining TTL, seconds; `None` without one.
    pub ttl_secs: Option<u64>,
}

/// A TTL policy against the keys seen under its prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyCheck {
    /// The policy.
    pub policy: TtlPolicy,
    /// Keys seen under its prefix.
    pub keys: u64,
    /// Of those, keys without a TTL.
    pub no_ttl: u64,
    /// Of those, keys whose TTL is longer than the policy's.
    pub too_long: u64,
    /// A few offending keys.
    pub samples: Vec<String>,
}

impl PolicyCheck {
    /// Whether every key seen keeps the policy.
    pub fn kept(&self) -> bool {
        self.no_ttl == 0 && self.too_long == 0
    }
}

/// The prefix of `key`: its first `depth` segments cut at `separator`, with the separator; the
/// last segment (the key's own part) never counts. `(no prefix)` for a key without a separator.
pub fn prefix_of(key: &str, separator: &str, depth: usize) -> String {
    let mut end = 0;
    for _ in 0..depth {
        match key[end..].find(separator) {
            Some(i) if end + i + separator.len() < key.len() => end += i + separator.len(),
            _ => break,
        }
    }
    if end == 0 {
        "(no prefix)".to_owned()
    } else {
        key[..end].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_keep_at_most_depth_segments_and_never_the_last() {
        assert_eq!(
            prefix_of("cache:project:7:summary", ":", 2),
            "cache:project:"
        );
        assert_eq!(prefix_of("cache:project:7:summary", ":", 1), "cache:");
        assert_eq!(prefix_of("item:123", ":", 2), "item:");
        assert_eq!(prefix_of("ai_cache:hits", ":", 3), "ai_cache:");
        assert_eq!(prefix_of("plain", ":", 2), "(no prefix)");
        assert_eq!(prefix_of("trailing:", ":", 2), "(no prefix)");
        assert_eq!(prefix_of("a/b/c", "/", 2), "a/b/");
    }
}
