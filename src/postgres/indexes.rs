//! Index health: unused, duplicate and invalid indexes, each with the statement that fixes it.
//!
//! - *Invalid*: `NOT indisvalid`, except while a `CREATE INDEX CONCURRENTLY` or `REINDEX
//!   CONCURRENTLY` builds it (`pg_stat_progress_create_index.index_relid`). Fixed by `REINDEX
//!   INDEX CONCURRENTLY`, or `DROP INDEX CONCURRENTLY` for a unique index (rebuilding fails again
//!   while the duplicate values remain) and for the `_ccnew`/`_ccold` leftovers of a failed
//!   concurrent reindex.
//! - *Duplicate*: a valid index that is neither unique nor the primary key, whose key columns
//!   lead another valid index on the same table with the same method, operator classes,
//!   expressions and predicate. Fixed by dropping it.
//! - *Unused*: never scanned since statistics were reset, neither unique nor the primary key, at
//!   least [`IndexHealthSettings::unused_min_bytes`] big. Fixed by dropping it.
//!
//! Each index is reported once: invalid before duplicate before unused.

use std::time::Duration;

use sqlx::postgres::PgPool;

use super::catalog::{self, Index};
pub use super::catalog::{Error, Result};
use super::{FindingKind, Identifier, IndexFinding, IndexHealthSettings, Qualified};

/// The findings on every index of the current database's user tables.
pub async fn health(
    pool: &PgPool,
    settings: &IndexHealthSettings,
    timeout: Duration,
) -> Result<Vec<IndexFinding>> {
    let all = catalog::indexes(pool, None, timeout).await?;
    Ok(findings(&all, settings))
}

/// The findings on `indexes` (as [`catalog::indexes`] reads them): invalid, then duplicate,
/// then unused, each group biggest first.
pub fn findings(indexes: &[Index], settings: &IndexHealthSettings) -> Vec<IndexFinding> {
    let mut invalid = Vec::new();
    let mut duplicate = Vec::new();
    let mut unused = Vec::new();
    for index in indexes {
        if !index.valid {
            if !index.building {
                invalid.push(invalid_finding(index));
            }
            continue;
        }
        if index.unique || index.primary {
            continue;
        }
        if let Some(by) = indexes.iter().find(|o| duplicates(index, o)) {
            duplicate.push(finding(
                index,
                FindingKind::Duplicate,
                Some(by.display_name()),
                format!(
                    "{} on ({}) serves every search it serves: {} on ({}).",
                    index.display_name(),
                    index.column_names().join(", "),
                    by.display_name(),
                    by.column_names().join(", ")
                ),
                drop(index),
            ));
            continue;
        }
        if index.scans == 0 && index.size_bytes >= settings.unused_min_bytes {
            unused.push(finding(
                index,
                FindingKind::Unused,
                None,
                format!(
                    "{} ({}) has not been scanned since statistics were last reset, yet every write to {}.{} updates it (scans on replicas are not counted here).",
                    index.display_name(),
                    size(index.size_bytes),
                    index.table_schema,
                    index.table_name
                ),
                drop(index),
            ));
        }
    }
    let mut all = Vec::new();
    for mut group in [invalid, duplicate, unused] {
        group.sort_by(|a, b| b.size_bytes.cmp(&a.size_bytes).then(a.index.cmp(&b.index)));
        all.extend(group);
    }
    all
}

/// Whether `other` makes `index` redundant.
fn duplicates(index: &Index, other: &Index) -> bool {
    if other.oid == index.oid
        || other.table_oid != index.table_oid
        || !other.valid
        || other.method != index.method
        || other.expressions != index.expressions
        || other.predicate != index.predicate
    {
        return false;
    }
    let n = index.columns.len();
    let leads = if index.method == "btree" {
        other.columns.len() >= n
            && other.columns[..n] == index.columns[..]
            && other.opclasses.len() >= n
            && index.opclasses.len() >= n
            && other.opclasses[..n] == index.opclasses[..n]
    } else {
        other.columns == index.columns && other.opclasses == index.opclasses
    };
    if !leads {
        return false;
    }
    // Two identical indexes: only one of the pair is reported (a unique or primary one always
    // stays, otherwise the one whose name sorts first).
    let same = other.columns.len() == n;
    !same || other.unique || other.primary || other.name < index.name
}

fn invalid_finding(index: &Index) -> IndexFinding {
    let base = format!(
        "{} is INVALID: a build failed or was cancelled; queries ignore it but every write to {}.{} still pays for it",
        index.display_name(),
        index.table_schema,
        index.table_name
    );
    let leftover = |suffix: &str| {
        index
            .name
            .rsplit_once(suffix)
            .is_some_and(|(_, n)| n.chars().all(|c| c.is_ascii_digit()))
    };
    let (reason, fix) = if leftover("_ccnew") {
        (
            format!(
                "{base}. It is the new copy left by a failed REINDEX CONCURRENTLY: drop it, then reindex the original again."
            ),
            drop(index),
        )
    } else if leftover("_ccold") {
        (
            format!(
                "{base}. It is the old copy left by a REINDEX CONCURRENTLY whose new index is in place: drop it."
            ),
            drop(index),
        )
    } else if index.unique {
        (
            format!(
                "{base}, and as a unique index it may still refuse duplicate values. Rebuilding fails again while the table holds duplicates: drop it, fix the data, then create it again."
            ),
            drop(index),
        )
    } else {
        (
            format!("{base}. Rebuilding it makes it valid."),
            name(index).map(|n| format!("REINDEX INDEX CONCURRENTLY {n}")),
        )
    };
    finding(index, FindingKind::Invalid, None, reason, fix)
}

fn finding(
    index: &Index,
    kind: FindingKind,
    covered_by: Option<String>,
    reason: String,
    fix: Option<String>,
) -> IndexFinding {
    let reason = match &fix {
        Some(_) => reason,
        None => format!(
            "{reason} (its name is not a plain lower-case name, so Pitwall writes no statement for it)"
        ),
    };
    IndexFinding {
        kind,
        schema: index.schema.clone(),
        index: index.name.clone(),
        table: format!("{}.{}", index.table_schema, index.table_name),
        method: index.method.clone(),
        columns: index.column_names(),
        size_bytes: index.size_bytes,
        scans: index.scans,
        covered_by,
        reason,
        fix,
    }
}

/// The index's checked name, when it is a plain one.
fn name(index: &Index) -> Option<Qualified> {
    Some(Qualified {
        schema: Identifier::parse(&index.schema).ok()?,
        name: Identifier::parse(&index.name).ok()?,
    })
}

fn drop(index: &Index) -> Option<String> {
    name(index).map(|n| format!("DROP INDEX CONCURRENTLY {n}"))
}

/// Bytes for people: `12.3 MB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(oid: u32, name: &str, method: &str, columns: &[&str]) -> Index {
        Index {
            oid,
            schema: "public".into(),
            name: name.into(),
            table_oid: 42,
            table_schema: "public".into(),
            table_name: "events".into(),
            method: method.into(),
            unique: false,
            primary: false,
            valid: true,
            columns: columns.iter().map(|c| Some((*c).to_owned())).collect(),
            opclasses: columns.iter().map(|_| "int8_ops".to_owned()).collect(),
            expressions: None,
            predicate: None,
            size_bytes: 20 << 20,
            scans: 5,
            building: false,
        }
    }

    fn kinds(found: &[IndexFinding]) -> Vec<(FindingKind, &str)> {
        found.iter().map(|f| (f.kind, f.index.as_str())).collect()
    }

    #[test]
    fn a_left_prefix_of_a_like_index_is_a_duplicate() {
        let mut pkey = index(1, "events_pkey", "btree", &["id"]);
        pkey.primary = true;
        pkey.unique = true;
        let mut id_again = index(2, "events_id_idx", "btree", &["id"]);
        let user = index(3, "events_user_idx", "btree", &["user_id"]);
        let user_kind = index(4, "events_user_kind_idx", "btree", &["user_id", "kind"]);
        let kind_user = index(5, "events_kind_user_idx", "btree", &["kind", "user_id"]);
        let mut partial = index(6, "events_user_partial", "btree", &["user_id"]);
        partial.predicate = Some("{NULLTEST}".into());
        let hash = index(7, "events_user_hash", "hash", &["user_id"]);
        let mut expr = index(8, "events_lower_idx", "btree", &[]);
        expr.columns = vec![None];
        expr.expressions = Some("{FUNCEXPR :funcid 870}".into());
        let twin_a = index(9, "events_kind_a", "btree", &["kind"]);
        let twin_b = index(10, "events_kind_b", "btree", &["kind"]);
        id_again.scans = 0;
        let all = [
            pkey, id_again, user, user_kind, kind_user, partial, hash, expr, twin_a, twin_b,
        ];
        let found = findings(&all, &IndexHealthSettings::default());
        assert_eq!(
            kinds(&found),
            [
                (FindingKind::Duplicate, "events_id_idx"),
                (FindingKind::Duplicate, "events_kind_a"),
                (FindingKind::Duplicate, "events_kind_b"),
                (FindingKind::Duplicate, "events_user_idx"),
            ],
            "{found:#?}"
        );
        let id = &found[0];
        assert_eq!(id.covered_by.as_deref(), Some("public.events_pkey"));
        assert_eq!(
            id.fix.as_deref(),
            Some("DROP INDEX CONCURRENTLY \"public\".\"events_id_idx\"")
        );
        assert!(id.reason.contains("serves every search it serves"));
        // Of two twins, the one whose name sorts last goes; both are led by events_kind_user_idx.
        assert_eq!(
            found[1].covered_by.as_deref(),
            Some("public.events_kind_user_idx")
        );
    }

    #[test]
    fn unused_means_never_scanned_big_and_not_unique() {
        let mut big = index(1, "events_big_idx", "btree", &["a"]);
        big.scans = 0;
        let mut small = index(2, "events_small_idx", "btree", &["b"]);
        small.scans = 0;
        small.size_bytes = 8192;
        let mut unique = index(3, "events_email_key", "btree", &["email"]);
        unique.scans = 0;
        unique.unique = true;
        let used = index(4, "events_used_idx", "btree", &["c"]);
        let all = [big, small, unique, used];
        let found = findings(&all, &IndexHealthSettings::default());
        assert_eq!(kinds(&found), [(FindingKind::Unused, "events_big_idx")]);
        assert!(found[0].reason.contains("20.0 MB"), "{}", found[0].reason);
        let found = findings(
            &all,
            &IndexHealthSettings {
                unused_min_bytes: 0,
            },
        );
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn invalid_indexes_get_the_fix_that_works_and_builds_are_left_alone() {
        let mut plain = index(1, "events_kind_idx", "btree", &["kind"]);
        plain.valid = false;
        let mut unique = index(2, "events_kind_key", "btree", &["kind"]);
        unique.valid = false;
        unique.unique = true;
        let mut ccnew = index(3, "events_kind_idx_ccnew1", "btree", &["kind"]);
        ccnew.valid = false;
        let mut building = index(4, "events_building_idx", "btree", &["x"]);
        building.valid = false;
        building.building = true;
        let mut odd = index(5, "Events_Odd", "btree", &["y"]);
        odd.valid = false;
        let found = findings(
            &[plain, unique, ccnew, building, odd],
            &IndexHealthSettings::default(),
        );
        let fix = |name: &str| {
            found
                .iter()
                .find(|f| f.index == name)
                .unwrap_or_else(|| panic!("{name} in {found:#?}"))
                .clone()
        };
        assert_eq!(found.len(), 4, "the build in progress is not reported");
        assert_eq!(
            fix("events_kind_idx").fix.as_deref(),
            Some("REINDEX INDEX CONCURRENTLY \"public\".\"events_kind_idx\"")
        );
        let u = fix("events_kind_key");
        assert_eq!(
            u.fix.as_deref(),
            Some("DROP INDEX CONCURRENTLY \"public\".\"events_kind_key\"")
        );
        assert!(u.reason.contains("duplicates"));
        assert!(
            fix("events_kind_idx_ccnew1")
                .fix
                .unwrap()
                .starts_with("DROP INDEX CONCURRENTLY")
        );
        let odd = fix("Events_Odd");
        assert_eq!(odd.fix, None);
        assert!(odd.reason.contains("not a plain lower-case name"));
        assert!(found.iter().all(|f| f.kind == FindingKind::Invalid));
    }
}
