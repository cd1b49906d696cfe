//! The tag registry: the tags of one Redis target, found with a paced `SCAN MATCH {prefix}*`
//! (never `KEYS`; on a cluster on every primary), each with its members, its stale members and
//! its memory. A set's stale members are estimated from a random sample (`SRANDMEMBER`, then one
//! `EXISTS` per member, sent to the member's primary on a cluster); a sorted set scored by
//! expiry tells them exactly (`ZCOUNT` of the scores in the past).

use std::time::Duration;

use super::cluster::Keyspace;
use super::inspect::refusable;
use super::{TAG_SAMPLE as SAMPLE, TagInfo, TagLayout, TagRegistry};

/// The prefix tags are found under (the layout of the backends Pitwall serves).
pub const PREFIX: &str = "tag:";
/// `SCAN` calls at most per read, each with [`SCAN_COUNT`]: a budget, so a huge keyspace costs a
/// bounded number of short commands.
pub const SCAN_CALLS: usize = 50;
/// The `COUNT` hint of each `SCAN`.
pub const SCAN_COUNT: usize = 1_000;
/// Tags described at most.
pub const TAG_LIMIT: usize = 200;
/// A pause between `SCAN` calls, so the scan never holds the server for long.
const PACE: Duration = Duration::from_millis(2);

/// The tags of the target (every primary of a cluster) whose names start with `start` (every
/// tag when it is empty; see [`check_start`]), most members first. A tag named `start` itself is
/// looked up directly, so it is found however large the keyspace.
pub async fn registry(ks: &mut Keyspace, now_s: u64, start: &str) -> Result<TagRegistry, String> {
    let mut keys: Vec<(usize, String, String)> = Vec::new();
    if !start.is_empty() {
        let exact = [
            tag_key(start, TagLayout::Set),
            tag_key(start, TagLayout::SortedSet),
        ];
        let types: Vec<String> = ks.each("TYPE", &exact).await?;
        for (key, kind) in exact.into_iter().zip(types) {
            keys.push((ks.node_of(&key), key, kind));
        }
    }
    let pattern = format!("{PREFIX}{}*", start.replace('\\', "\\\\"));
    let mut complete = true;
    'nodes: for node in 0..ks.nodes() {
        let link = ks.node(node);
        let mut cursor: u64 = 0;
        for call in 0..SCAN_CALLS {
            if call > 0 {
                tokio::time::sleep(PACE).await;
            }
            let (next, batch): (u64, Vec<(String, String)>) = link
                .query(async |c| {
                    let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .query_async(c)
                        .await?;
                    let mut pipe = redis::pipe();
                    for k in &found {
                        pipe.cmd("TYPE").arg(k);
                    }
                    let types: Vec<String> = if found.is_empty() {
                        Vec::new()
                    } else {
                        pipe.query_async(c).await?
                    };
                    Ok((next, found.into_iter().zip(types).collect()))
                })
                .await?;
            keys.extend(batch.into_iter().map(|(k, t)| (node, k, t)));
            cursor = next;
            if cursor == 0 {
                break;
            }
            if keys.len() >= TAG_LIMIT * 4 {
                complete = false;
                break 'nodes;
            }
        }
        complete &= cursor == 0;
    }
    let mut tags: Vec<TagInfo> = Vec::new();
    for (node, key, kind) in keys {
        let layout = match kind.as_str() {
            "set" => TagLayout::Set,
            "zset" => TagLayout::SortedSet,
            _ => continue,
        };
        if tags.iter().any(|t| t.key == key) {
            continue;
        }
        if tags.len() >= TAG_LIMIT {
            complete = false;
            break;
        }
        tags.push(describe(ks, node, key, layout, now_s).await?);
    }
    tags.sort_by(|a, b| b.members.cmp(&a.members).then(a.name.cmp(&b.name)));
    Ok(TagRegistry {
        prefix: PREFIX.to_owned(),
        start: start.to_owned(),
        tags,
        complete,
    })
}

/// Checks the start of tag names to look for: at most 256 bytes, no whitespace, control or glob
/// character, and without the prefix; empty for every tag.
pub fn check_start(start: &str) -> Result<(), String> {
    if start.len() > 256 {
        return Err(format!(
            "the start of a tag's name must be at most 256 bytes, not {}",
            start.len()
        ));
    }
    check_name("the start of a tag's name", start)
}

/// Checks a tag's name, or the start of one (`what` names it in the refusal): no whitespace,
/// control or glob character (a tag is one name), and without the prefix.
pub(super) fn check_name(what: &str, name: &str) -> Result<(), String> {
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "*?[]".contains(*c))
    {
        return Err(format!(
            "{what} {name:?} contains {c:?}: a tag is one name, not a pattern"
        ));
    }
    if name.starts_with(PREFIX) {
        return Err(format!(
            "{what} {name:?} starts with `{PREFIX}`: give the name without the prefix"
        ));
    }
    Ok(())
}

/// One tag's members, stale members and memory.
async fn describe(
    ks: &mut Keyspace,
    node: usize,
    key: String,
    layout: TagLayout,
    now_s: u64,
) -> Result<TagInfo, String> {
    let name = tag_name(&key, layout);
    let link = ks.node(node);
    let (members, stale, sampled) = match layout {
        TagLayout::SortedSet => {
            let (members, stale): (u64, u64) = link
                .query(async |c| {
                    redis::pipe()
                        .cmd(commands(layout).count)
                        .arg(&key)
                        .cmd("ZCOUNT")
                        .arg(&key)
                        .arg(0)
                        .arg(now_s)
                        .query_async(c)
                        .await
                })
                .await?;
            (members, stale, 0)
        }
        TagLayout::Set => {
            let (members, sample): (u64, Vec<String>) = link
                .query(async |c| {
                    redis::pipe()
                        .cmd(commands(layout).count)
                        .arg(&key)
                        .cmd(commands(layout).random)
                        .arg(&key)
                        .arg(SAMPLE)
                        .query_async(c)
                        .await
                })
                .await?;
            let exists: Vec<u64> = ks.each("EXISTS", &sample).await?;
            let gone = exists.iter().filter(|e| **e == 0).count() as u64;
            let sampled = sample.len() as u64;
            (members, estimate(members, gone, sampled), sampled)
        }
    };
    // MEMORY USAGE may be refused (ACL, managed Redis): the figure is then unknown.
    let mut usage = redis::cmd("MEMORY");
    usage.arg("USAGE").arg(&key);
    let memory_bytes = refusable::<Option<u64>>(ks.node(node), usage)
        .await?
        .ok()
        .flatten();
    Ok(TagInfo {
        name,
        key,
        layout,
        members,
        stale,
        sampled,
        memory_bytes,
    })
}

/// What a sorted-set tag's key ends with (Laravel's `tag:{name}:entries`).
const ENTRIES: &str = ":entries";

/// The key of tag `name` kept in `layout`.
pub(super) fn tag_key(name: &str, layout: TagLayout) -> String {
    match layout {
        TagLayout::Set => format!("{PREFIX}{name}"),
        TagLayout::SortedSet => format!("{PREFIX}{name}{ENTRIES}"),
    }
}

/// A tag's name from its key (the inverse of [`tag_key`]).
fn tag_name(key: &str, layout: TagLayout) -> String {
    let name = key.strip_prefix(PREFIX).unwrap_or(key);
    match layout {
        TagLayout::SortedSet => name.strip_suffix(ENTRIES).unwrap_or(name),
        TagLayout::Set => name,
    }
    .to_owned()
}

/// The commands that count, sample, scan and shrink a tag of each layout.
pub(super) struct Commands {
    pub count: &'static str,
    pub random: &'static str,
    pub scan: &'static str,
    pub remove: &'static str,
}

/// The commands for a tag kept in `layout`.
pub(super) fn commands(layout: TagLayout) -> Commands {
    match layout {
        TagLayout::Set => Commands {
            count: "SCARD",
            random: "SRANDMEMBER",
            scan: "SSCAN",
            remove: "SREM",
        },
        TagLayout::SortedSet => Commands {
            count: "ZCARD",
            random: "ZRANDMEMBER",
            scan: "ZSCAN",
            remove: "ZREM",
        },
    }
}

/// Stale members of a set of `members`, from `gone` of `sampled` random members.
fn estimate(members: u64, gone: u64, sampled: u64) -> u64 {
    if sampled == 0 {
        return 0;
    }
    if sampled >= members {
        return gone;
    }
    ((members as f64) * (gone as f64) / (sampled as f64)).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_estimates() {
        assert_eq!(tag_name("tag:project:7", TagLayout::Set), "project:7");
        assert_eq!(tag_name("tag:users:entries", TagLayout::SortedSet), "users");
        for layout in [TagLayout::Set, TagLayout::SortedSet] {
            assert_eq!(tag_name(&tag_key("a:b", layout), layout), "a:b");
        }
        assert_eq!(
            estimate(10, 4, 10),
            4,
            "a whole set looked at is counted exactly"
        );
        assert_eq!(estimate(1_000, 10, 50), 200);
        assert_eq!(estimate(0, 0, 0), 0);
    }
}
