//! The `prune_tag` job: removes the members of a tag whose key is gone (expired, evicted or
//! deleted without the tag), so the tag stops growing with dead names. Members are read in
//! batches (`SSCAN`/`ZSCAN`), each checked with its own `EXISTS` (one key per command, sent to
//! the key's primary on a cluster), pipelined, and the missing ones removed with one
//! `SREM`/`ZREM` per batch.
//! No key is deleted; a checkpoint per batch takes a cancel. The report's `removed` is what Redis
//! removed; `checked` counts the members looked at, and a live member may be looked at twice
//! (`SSCAN` may return a member again once the set shrinks).

use std::time::Instant;

use super::cluster::Keyspace;
use super::invalidate::{OpenTag, batch, count, open_tag, spec, tag_job_key};
use super::tags::commands;
use crate::jobs::kinds::TargetUrls;
use crate::jobs::{Checkpoint, JobContext, JobError, JobKind, Plan};

/// The `prune_tag` kind: `{"tag": "project:7", "batch": 500}` (and `pause_ms` for a fixed pause).
pub struct PruneTag {
    targets: TargetUrls,
}

impl PruneTag {
    /// The kind, for these targets.
    pub fn new(targets: TargetUrls) -> Self {
        Self { targets }
    }
}

/// Which of `members` have no key any more, one `EXISTS` each, pipelined per node.
async fn missing(ks: &mut Keyspace, members: &[String]) -> Result<Vec<String>, String> {
    let exists: Vec<u64> = ks.each("EXISTS", members).await?;
    Ok(members
        .iter()
        .zip(exists)
        .filter(|(_, e)| *e == 0)
        .map(|(m, _)| m.clone())
        .collect())
}

#[async_trait::async_trait]
impl JobKind for PruneTag {
    fn name(&self) -> &'static str {
        "prune_tag"
    }

    fn key(&self, target: Option<&str>, parameters: &serde_json::Value) -> Option<String> {
        // The same key as invalidation: the two never work on one tag at once.
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
        let (_, first) = batch(ks.link_for(&key), &key, layout, 0, super::TAG_SAMPLE).await?;
        let gone = missing(&mut ks, &first).await?;
        Ok(Plan {
            summary: format!(
                "Checks the {members} members of tag `{}` ({key}) with one EXISTS each, in \
                 batches of {}, and removes those whose key is gone ({} of the first {} looked \
                 at). No key is deleted.",
                spec.tag,
                spec.batch,
                gone.len(),
                first.len()
            ),
            statements: vec![
                spec.scan_statement(&key, layout),
                "EXISTS <member> (one per member, pipelined)".into(),
                format!(
                    "{} {key} <the batch's missing members>",
                    commands(layout).remove
                ),
            ],
            total: Some(members),
            destructive: false,
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
        let remove = commands(layout).remove;
        let (mut checked, mut removed, mut cursor) = (0u64, 0u64, 0u64);
        loop {
            ctx.checkpoint(Checkpoint {
                done: checked,
                total: Some(total.max(checked)),
                phase: "checking".into(),
            })
            .await?;
            let started = Instant::now();
            let (next, members) = batch(ks.link_for(&key), &key, layout, cursor, spec.batch)
                .await
                .map_err(JobError::Failed)?;
            checked += members.len() as u64;
            let gone = missing(&mut ks, &members).await.map_err(JobError::Failed)?;
            if !gone.is_empty() {
                removed += ks
                    .link_for(&key)
                    .query(async |c| {
                        redis::cmd(remove)
                            .arg(&key)
                            .arg(&gone)
                            .query_async::<u64>(c)
                            .await
                    })
                    .await
                    .map_err(JobError::Failed)?;
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
            spec.pacing.rest(started).await;
        }
        let left = count(ks.link_for(&key), &key, layout)
            .await
            .map_err(JobError::Failed)?;
        ctx.checkpoint(Checkpoint {
            done: checked,
            total: Some(checked),
            phase: "done".into(),
        })
        .await?;
        Ok(serde_json::json!({
            "tag": spec.tag,
            "key": key,
            "checked": checked,
            "removed": removed,
            "members_left": left,
        }))
    }
}
