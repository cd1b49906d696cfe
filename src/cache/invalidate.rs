//! The `invalidate_tag` job: unlinks every key a tag names, the way a cache must be emptied in
//! production. Members are read in batches (`SSCAN`/`ZSCAN`, never the whole set), each key is
//! unlinked by its own `UNLINK` (one key per command, so it works on a cluster), and the batch's
//! members are then removed from the tag; the tag is never deleted in one command.
//!
//! A batch's `UNLINK`s always go before its `SREM`/`ZREM`, so a key still there is still tagged,
//! whatever stops the job; a stop between the two leaves members whose key is gone, which a retry
//! counts as already gone. A member the scan returns twice (`SSCAN` may, once the set shrinks) is
//! counted once: a batch's members already gone are those it removed from the tag without having
//! unlinked their key. On one server Redis never waits for Pitwall between batches: the scan
//! of the next batch goes out on a connection of its own as soon as its cursor is known, and up
//! to [`IN_FLIGHT`] batches are in flight on the job's connection. On a cluster each batch's
//! `UNLINK`s go to the keys' primaries, then the tag's primary untags the batch and scans the
//! next. Batches are paced, and each ends at a checkpoint; a cancel lets the batches already sent
//! finish, so the keys not yet unlinked are still named by the tag. A retry picks up what is left.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::TagLayout;
use super::cluster::Keyspace;
use super::inflight::{InFlight, Sent};
use super::tags::{Commands, PREFIX, check_name, commands, tag_key};
use crate::jobs::kinds::TargetUrls;
use crate::jobs::{Checkpoint, JobContext, JobError, JobKind, Plan};
use crate::link::RedisLink;

/// How long one Redis command of the job may take.
pub(super) const TIMEOUT: Duration = Duration::from_secs(5);
/// Keys shown in the plan.
const SAMPLE: usize = 10;
/// Passes over the tag at most: members added while it runs are taken by the next pass.
const PASSES: usize = 3;
/// Batches in flight at once on one server: with the next scan, two keep Redis busy; more only
/// queue behind each other, and another client would wait behind them.
const IN_FLIGHT: usize = 2;
/// A batch slower than this means the server is busy: the job then pauses as long as the batch
/// took, so it never takes more than half of a struggling server.
const SLOW_BATCH: Duration = Duration::from_millis(10);

/// The `invalidate_tag` kind: `{"tag": "project:7", "batch": 500}` (and `pause_ms` for a fixed
/// pause instead of [`Pacing::Adaptive`]).
pub struct InvalidateTag {
    targets: TargetUrls,
}

impl InvalidateTag {
    /// The kind, for these targets.
    pub fn new(targets: TargetUrls) -> Self {
        Self { targets }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    tag: String,
    #[serde(default = "default_batch")]
    batch: usize,
    pause_ms: Option<u64>,
}

fn default_batch() -> usize {
    500
}

/// The pause between batches every cache job takes by default, ms.
pub(super) fn default_pause_ms() -> u64 {
    2
}

/// Checked parameters of a job on one tag.
pub(super) struct Spec {
    /// The tag's name.
    pub tag: String,
    /// Members per batch.
    pub batch: usize,
    /// The pause between batches.
    pub pacing: Pacing,
}

impl Spec {
    /// The plan's line for the scan of the tag at `key`, batch by batch.
    pub fn scan_statement(&self, key: &str, layout: TagLayout) -> String {
        format!(
            "{} {key} <cursor> COUNT {} (in batches, {})",
            commands(layout).scan,
            self.batch,
            self.pacing
        )
    }
}

/// How a job on a tag paces its batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Pacing {
    /// The same pause after every batch (`pause_ms` given).
    Fixed(Duration),
    /// The default: no pause while the server answers a batch within [`SLOW_BATCH`]; after a
    /// slower one, a pause as long as it took. A batch is short, so another client waits at
    /// most one batch, and a busy server gets at least half its time back.
    Adaptive,
}

impl Pacing {
    /// The pause after a batch that took `took`.
    pub fn after(self, took: Duration) -> Duration {
        match self {
            Self::Fixed(pause) => pause,
            Self::Adaptive if took > SLOW_BATCH => took,
            Self::Adaptive => Duration::ZERO,
        }
    }

    /// Sleeps the pause after a batch that started at `started` (none when it is zero).
    pub async fn rest(self, started: Instant) {
        let pause = self.after(started.elapsed());
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

impl std::fmt::Display for Pacing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(pause) => write!(f, "{} ms apart", pause.as_millis()),
            Self::Adaptive => write!(
                f,
                "back to back while each takes under {} ms, else pausing as long as it took",
                SLOW_BATCH.as_millis()
            ),
        }
    }
}

/// The checked parameters of job `kind` on one tag (`invalidate_tag`, `prune_tag`).
pub(super) fn spec(kind: &str, parameters: &serde_json::Value) -> Result<Spec, String> {
    let raw: Raw = serde_json::from_value(parameters.clone())
        .map_err(|e| format!("{kind} parameters: {e}"))?;
    check_tag(&raw.tag)?;
    Ok(Spec {
        tag: raw.tag,
        batch: check_batch(raw.batch)?,
        pacing: match raw.pause_ms {
            Some(ms) => Pacing::Fixed(check_pause(ms)?),
            None => Pacing::Adaptive,
        },
    })
}

/// Checks a tag's name as a job parameter: one name, without the prefix.
fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() || tag.len() > 256 {
        return Err(format!(
            "`tag` must be 1 to 256 bytes, not {} (the tag's name, without `{PREFIX}`)",
            tag.len()
        ));
    }
    check_name("`tag`", tag)
}

/// Checks a job's `batch` parameter (members or keys per round trip).
fn check_batch(batch: usize) -> Result<usize, String> {
    if (1..=10_000).contains(&batch) {
        Ok(batch)
    } else {
        Err(format!("`batch` must be between 1 and 10000, not {batch}"))
    }
}

/// Checks a job's `pause_ms` parameter (the pause between batches).
pub(super) fn check_pause(pause_ms: u64) -> Result<Duration, String> {
    if pause_ms <= 10_000 {
        Ok(Duration::from_millis(pause_ms))
    } else {
        Err(format!("`pause_ms` must be at most 10000, not {pause_ms}"))
    }
}

/// Where the tag's members are: `tag:{name}` as a set, or `tag:{name}:entries` as a sorted set.
pub(super) async fn locate(ks: &mut Keyspace, tag: &str) -> Result<(String, TagLayout), String> {
    let set = tag_key(tag, TagLayout::Set);
    let sorted = tag_key(tag, TagLayout::SortedSet);
    let types: Vec<String> = ks.each("TYPE", &[set.clone(), sorted.clone()]).await?;
    match (types[0].as_str(), types[1].as_str()) {
        ("set", _) => Ok((set, TagLayout::Set)),
        (_, "zset") => Ok((sorted, TagLayout::SortedSet)),
        ("none", "none") => Err(format!(
            "no tag `{tag}`: neither a set `{set}` nor a sorted set `{sorted}` exists"
        )),
        (other, _) => Err(format!(
            "`{set}` is a {other}, not a set of keys: it is not a tag"
        )),
    }
}

/// A tag opened for a job: its target's keyspace, the tag's key and layout, and its members.
pub(super) struct OpenTag {
    pub ks: Keyspace,
    pub key: String,
    pub layout: TagLayout,
    pub members: u64,
}

/// Opens tag `tag` of `target` for a job.
pub(super) async fn open_tag(
    targets: &TargetUrls,
    target: Option<&str>,
    tag: &str,
) -> Result<OpenTag, String> {
    let mut ks = targets.keyspace(target, TIMEOUT).await?;
    let (key, layout) = locate(&mut ks, tag).await?;
    let members = count(ks.link_for(&key), &key, layout).await?;
    Ok(OpenTag {
        ks,
        key,
        layout,
        members,
    })
}

/// The job key of the kinds that work on one tag (invalidating, pruning): one at a time per tag.
pub(super) fn tag_job_key(
    kind: &str,
    target: Option<&str>,
    parameters: &serde_json::Value,
) -> Option<String> {
    let tag = spec(kind, parameters).ok()?.tag;
    Some(format!("tag:{}:{tag}", target.unwrap_or("-")))
}

/// Members of the tag.
pub(super) async fn count(
    link: &mut RedisLink,
    key: &str,
    layout: TagLayout,
) -> Result<u64, String> {
    let cmd = commands(layout).count;
    link.query(async |c| redis::cmd(cmd).arg(key).query_async(c).await)
        .await
}

/// The `SSCAN`/`ZSCAN` of one batch of members from `cursor`.
fn scan_cmd(key: &str, layout: TagLayout, cursor: u64, count: usize) -> redis::Cmd {
    let mut cmd = redis::cmd(commands(layout).scan);
    cmd.arg(key).arg(cursor).arg("COUNT").arg(count);
    cmd
}

/// A scan's reply as the next cursor and the members (a sorted set's scores dropped).
fn scanned(layout: TagLayout, (next, found): (u64, Vec<String>)) -> (u64, Vec<String>) {
    match layout {
        TagLayout::Set => (next, found),
        // Member, score, member, score…
        TagLayout::SortedSet => (next, found.into_iter().step_by(2).collect()),
    }
}

/// One batch of members from `cursor`: the next cursor and the members.
pub(super) async fn batch(
    link: &mut RedisLink,
    key: &str,
    layout: TagLayout,
    cursor: u64,
    count: usize,
) -> Result<(u64, Vec<String>), String> {
    let reply = link
        .query(async |c| scan_cmd(key, layout, cursor, count).query_async(c).await)
        .await?;
    Ok(scanned(layout, reply))
}

/// On a cluster: unlinks `members` (one `UNLINK` each, on each key's primary), removes them from
/// the tag, and scans the next batch from `cursor` (none when the scan is over): the batch's
/// replies (see [`tally`]), and the scan.
async fn unlink_then_scan(
    ks: &mut Keyspace,
    key: &str,
    layout: TagLayout,
    members: &[String],
    cursor: Option<u64>,
    count: usize,
) -> Result<(Vec<u64>, Option<(u64, Vec<String>)>), String> {
    let mut replies: Vec<u64> = ks.each("UNLINK", members).await?;
    let link = ks.link_for(key);
    if !members.is_empty() {
        let removed = link
            .query(async |c| {
                redis::cmd(commands(layout).remove)
                    .arg(key)
                    .arg(members)
                    .query_async(c)
                    .await
            })
            .await?;
        replies.push(removed);
    }
    let scan = match cursor {
        Some(cursor) => Some(batch(link, key, layout, cursor, count).await?),
        None => None,
    };
    Ok((replies, scan))
}

/// A pass over the tag on one server. The next batch's scan is in flight on `scanner`, a
/// connection of its own, while the batches before it are unlinked on the job's link.
struct Overlapped {
    scanner: RedisLink,
    /// The scan in flight; none once the whole tag is scanned.
    scan: Option<Sent<(u64, Vec<String>)>>,
    /// Each batch's pipeline: an `UNLINK` per member, then the `SREM`/`ZREM` of the batch.
    unlinks: InFlight<Vec<u64>>,
}

impl Overlapped {
    /// Starts a pass on the server of `link`: the first scan goes out.
    async fn start(link: &RedisLink, tag: &Tag) -> Result<Self, String> {
        let mut scanner = link.twin();
        let scan = Some(tag.scan_from(&mut scanner, 0).await?);
        Ok(Self {
            scanner,
            scan,
            unlinks: InFlight::new(IN_FLIGHT),
        })
    }

    /// Takes the scanned batch, sends the next scan and the batch's pipeline: the keys that
    /// existed and the members whose key was gone, of the batches answered meanwhile; `None`
    /// once the pass is over.
    async fn step(
        &mut self,
        link: &mut RedisLink,
        tag: &Tag,
    ) -> Result<Option<(u64, u64)>, String> {
        let Some(scan) = self.scan.take() else {
            let answers = self.unlinks.settle(link).await?;
            return Ok((!answers.is_empty()).then(|| tally(&answers)));
        };
        let (next, members) = scanned(tag.layout, scan.answer(&mut self.scanner).await?);
        if next != 0 {
            self.scan = Some(tag.scan_from(&mut self.scanner, next).await?);
        }
        if members.is_empty() {
            return Ok(Some((0, 0)));
        }
        let mut pipe = redis::pipe();
        for m in &members {
            pipe.cmd("UNLINK").arg(m);
        }
        pipe.cmd(commands(tag.layout).remove)
            .arg(&tag.key)
            .arg(&members);
        Ok(Some(tally(&self.unlinks.send(link, pipe).await?)))
    }
}

/// The keys that existed and the members whose key was already gone, from batches' replies:
/// each batch's `UNLINK` replies (1 where the key existed), then the count its `SREM`/`ZREM`
/// removed. A member scanned twice finds its key and its membership gone the second time, so it
/// is not counted again.
fn tally(batches: &[Vec<u64>]) -> (u64, u64) {
    batches.iter().fold((0, 0), |(existed, gone), replies| {
        let Some((removed, unlinks)) = replies.split_last() else {
            return (existed, gone);
        };
        let unlinked = unlinks.iter().filter(|n| **n > 0).count() as u64;
        (existed + unlinked, gone + removed.saturating_sub(unlinked))
    })
}

/// A pass over the tag on a cluster, batch by batch.
#[derive(Default)]
struct Stepwise {
    /// The cursor of the next scan.
    cursor: u64,
    /// Whether a scan has run (a cursor of 0 then means the pass is over).
    started: bool,
    /// Members scanned and not yet unlinked (each round trip scans one batch ahead).
    scanned: Option<Vec<String>>,
}

impl Stepwise {
    /// Whether the pass is over: the scan came back to cursor 0 and nothing waits.
    fn over(&self) -> bool {
        self.started && self.cursor == 0 && self.scanned.is_none()
    }

    /// Unlinks the next batch: the keys that existed and the members whose key was gone, or
    /// `None` once the pass is over.
    async fn step(&mut self, ks: &mut Keyspace, tag: &Tag) -> Result<Option<(u64, u64)>, String> {
        if self.over() {
            return Ok(None);
        }
        let members = match self.scanned.take() {
            Some(members) => members,
            None => {
                let (next, members) = batch(
                    ks.link_for(&tag.key),
                    &tag.key,
                    tag.layout,
                    self.cursor,
                    tag.batch,
                )
                .await?;
                (self.cursor, self.started) = (next, true);
                members
            }
        };
        if members.is_empty() && self.cursor == 0 {
            return Ok(None);
        }
        let next = (self.cursor != 0).then_some(self.cursor);
        let (replies, scan) =
            unlink_then_scan(ks, &tag.key, tag.layout, &members, next, tag.batch).await?;
        if let Some((cursor, members)) = scan {
            (self.cursor, self.scanned) = (cursor, Some(members));
        }
        Ok(Some(tally(&[replies])))
    }
}

/// One pass over the tag, the way its target allows.
enum Pass {
    Single(Box<Overlapped>),
    Cluster(Stepwise),
}

impl Pass {
    /// Starts a pass over `tag` in `ks`.
    async fn start(ks: &mut Keyspace, tag: &Tag) -> Result<Self, String> {
        Ok(match ks {
            Keyspace::Single(link) => Self::Single(Box::new(Overlapped::start(link, tag).await?)),
            Keyspace::Cluster(_) => Self::Cluster(Stepwise::default()),
        })
    }

    /// Unlinks the next batch: the keys that existed and the members whose key was gone (of the
    /// batches answered meanwhile), or `None` once the pass is over.
    async fn step(&mut self, ks: &mut Keyspace, tag: &Tag) -> Result<Option<(u64, u64)>, String> {
        match self {
            Self::Single(pass) => pass.step(ks.link_for(&tag.key), tag).await,
            Self::Cluster(pass) => pass.step(ks, tag).await,
        }
    }

    /// Waits for the batches already sent, so each leaves its keys and the tag consistent.
    async fn settle(&mut self, ks: &mut Keyspace, tag: &Tag) -> Result<(), String> {
        match self {
            Self::Single(pass) => pass.unlinks.settle(ks.link_for(&tag.key)).await.map(drop),
            Self::Cluster(_) => Ok(()),
        }
    }
}

/// The tag a job works on: its key, layout and the members per batch.
struct Tag {
    key: String,
    layout: TagLayout,
    batch: usize,
}

impl Tag {
    /// Sends the scan of one batch from `cursor` on `link`, without waiting for it.
    async fn scan_from(
        &self,
        link: &mut RedisLink,
        cursor: u64,
    ) -> Result<Sent<(u64, Vec<String>)>, String> {
        let cmd = scan_cmd(&self.key, self.layout, cursor, self.batch);
        Sent::send(
            link,
            move |mut c| async move { cmd.query_async(&mut c).await },
        )
        .await
    }
}

#[async_trait::async_trait]
impl JobKind for InvalidateTag {
    fn name(&self) -> &'static str {
        "invalidate_tag"
    }

    fn key(&self, target: Option<&str>, parameters: &serde_json::Value) -> Option<String> {
        tag_job_key(self.name(), target, parameters)
    }

    async fn plan(
        &self,
        target: Option<&str>,
        parameters: &serde_json::Value,
    ) -> Result<Plan, String> {
        let spec = spec(self.name(), parameters)?;
        let OpenTag {
            mut ks,
            key,
            layout,
            members,
        } = open_tag(&self.targets, target, &spec.tag).await?;
        let link = ks.link_for(&key);
        let Commands { random, remove, .. } = commands(layout);
        let sample: Vec<String> = link
            .query(async |c| {
                redis::cmd(random)
                    .arg(&key)
                    .arg(SAMPLE)
                    .query_async(c)
                    .await
            })
            .await?;
        let mut statements = vec![spec.scan_statement(&key, layout)];
        statements.extend(sample.iter().map(|k| format!("UNLINK {k}")));
        if members as usize > sample.len() {
            statements.push(format!(
                "… and UNLINK for each of the other {} members",
                members as usize - sample.len()
            ));
        }
        statements.push(format!("{remove} {key} <the batch's members>"));
        let how = match ks {
            Keyspace::Single(_) => format!(
                "in pipelined batches of {}, each batch's members removed from the tag after its \
                 keys; the next batch is scanned on a second connection while up to {IN_FLIGHT} \
                 batches are unlinked",
                spec.batch
            ),
            Keyspace::Cluster(_) => format!(
                "in pipelined batches of {} sent to each key's primary, removing each batch's \
                 members from the tag as it goes",
                spec.batch
            ),
        };
        let keys = if members == 1 { "key" } else { "keys" };
        Ok(Plan {
            summary: format!(
                "Unlinks the {members} {keys} tagged `{}` ({key}), one UNLINK per key, {how}; the \
                 tag itself is never deleted in one command. Keys outside the tag are not touched.",
                spec.tag
            ),
            statements,
            total: Some(members),
            destructive: true,
        })
    }

    async fn run(
        &self,
        ctx: &mut JobContext,
        parameters: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        let spec = spec(self.name(), parameters).map_err(JobError::Failed)?;
        let target = ctx.job().target.clone();
        let OpenTag {
            mut ks,
            key,
            layout,
            members: total,
        } = open_tag(&self.targets, target.as_deref(), &spec.tag)
            .await
            .map_err(JobError::Failed)?;
        let tag = Tag {
            key,
            layout,
            batch: spec.batch,
        };
        let (mut unlinked, mut gone, mut left) = (0u64, 0u64, total);
        for _ in 0..PASSES {
            let mut pass = Pass::start(&mut ks, &tag).await.map_err(JobError::Failed)?;
            loop {
                let at = Checkpoint {
                    done: unlinked + gone,
                    total: Some(total.max(unlinked + gone)),
                    phase: "unlinking".into(),
                };
                if let Err(stop) = ctx.checkpoint(at).await {
                    if let Err(e) = pass.settle(&mut ks, &tag).await {
                        tracing::warn!(tag = tag.key, "finishing the batches sent: {e}");
                    }
                    return Err(stop);
                }
                let started = Instant::now();
                let Some((existed, was_gone)) =
                    pass.step(&mut ks, &tag).await.map_err(JobError::Failed)?
                else {
                    break;
                };
                (unlinked, gone) = (unlinked + existed, gone + was_gone);
                if existed + was_gone > 0 {
                    spec.pacing.rest(started).await;
                }
            }
            left = count(ks.link_for(&tag.key), &tag.key, layout)
                .await
                .map_err(JobError::Failed)?;
            if left == 0 {
                break;
            }
        }
        ctx.checkpoint(Checkpoint {
            done: unlinked + gone,
            total: Some(unlinked + gone),
            phase: "done".into(),
        })
        .await?;
        Ok(serde_json::json!({
            "tag": spec.tag,
            "key": tag.key,
            "unlinked": unlinked,
            "already_gone": gone,
            "members_left": left,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_tags_and_settings_are_refused_with_the_reason() {
        let bad = |v: serde_json::Value| spec("invalidate_tag", &v).err().unwrap();
        assert!(bad(json!({"tag": "user:*"})).contains("not a pattern"));
        assert!(bad(json!({"tag": "a b"})).contains("contains ' '"));
        assert!(bad(json!({"tag": ""})).contains("1 to 256 bytes"));
        assert!(bad(json!({"tag": "tag:x"})).contains("without the prefix"));
        assert!(bad(json!({"tag": "x", "batch": 0})).contains("`batch` must be between"));
        assert!(bad(json!({"tag": "x", "pause_ms": 60000})).contains("`pause_ms`"));
        assert!(
            bad(json!({"tags": "x"})).contains("invalidate_tag parameters: unknown field `tags`")
        );
        let ok = spec("invalidate_tag", &json!({"tag": "project:7"})).unwrap();
        assert_eq!(
            (ok.tag.as_str(), ok.batch, ok.pacing),
            ("project:7", 500, Pacing::Adaptive)
        );
        let fixed = spec("invalidate_tag", &json!({"tag": "x", "pause_ms": 3})).unwrap();
        assert_eq!(fixed.pacing, Pacing::Fixed(Duration::from_millis(3)));
    }

    #[test]
    fn adaptive_pacing_pauses_only_after_a_slow_batch() {
        let ms = Duration::from_millis;
        assert_eq!(Pacing::Adaptive.after(ms(2)), Duration::ZERO);
        assert_eq!(Pacing::Adaptive.after(ms(40)), ms(40));
        assert_eq!(Pacing::Fixed(ms(2)).after(ms(40)), ms(2));
        assert_eq!(Pacing::Fixed(ms(2)).after(ms(1)), ms(2));
    }

    #[test]
    fn replies_count_keys_that_existed_and_members_already_gone_once() {
        assert_eq!(tally(&[]), (0, 0));
        // UNLINK a, b, c (b gone), SREM removes 3; UNLINK d (gone), SREM removes 1.
        assert_eq!(tally(&[vec![1, 0, 1, 3], vec![0, 1]]), (2, 2));
        // a and c scanned again in a later batch: neither key nor member is there any more.
        assert_eq!(tally(&[vec![1, 0, 1, 3], vec![0, 0, 1, 1]]), (3, 1));
        // A key the application wrote again after its member went: unlinked, never negative.
        assert_eq!(tally(&[vec![1, 0]]), (1, 0));
    }
}
