//! The `create_index` job kind: `CREATE INDEX CONCURRENTLY` the safe way. Every name is checked
//! before anything connects, then against the catalog; the build runs alone on the job's own
//! connection with `statement_timeout` 0 and a chosen `lock_timeout`, reports its progress and
//! who blocks it from `pg_stat_progress_create_index`, and when it fails or is cancelled the
//! INVALID index it leaves is dropped concurrently.

use serde::Deserialize;
use sqlx::{Executor, PgConnection};
use std::fmt;

use super::{Identifier, Qualified};
use crate::format::Unit;
use crate::jobs::kinds::{JobSession, Sample, TargetUrls, lock_timeout, pg_message};
use crate::jobs::{Checkpoint, JobContext, JobError, JobKind, Plan};

/// The `create_index` kind:
/// `{"table": "public.events", "columns": ["user_id", "created_at DESC"], "method": "btree",
/// "unique": false, "where": "deleted_at IS NULL", "name": null, "lock_timeout_ms": 5000}`.
pub struct CreateIndex {
    targets: TargetUrls,
}

impl CreateIndex {
    /// The kind, for these targets.
    pub fn new(targets: TargetUrls) -> Self {
        Self { targets }
    }
}

/// The `lock_timeout` used when no other is asked for.
pub const DEFAULT_LOCK_TIMEOUT_MS: u64 = 5_000;

/// The `lock_timeout` range accepted, ms.
pub const LOCK_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=600_000;

/// How long dropping an INVALID leftover may wait for the transactions that still use the table.
const CLEANUP_LOCK_TIMEOUT_MS: u64 = 60_000;

/// The longest partial-index predicate accepted, in bytes.
const MAX_PREDICATE: usize = 2_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    table: String,
    columns: Vec<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    unique: bool,
    #[serde(default, rename = "where")]
    predicate: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    lock_timeout_ms: Option<u64>,
}

/// An index access method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The default.
    Btree,
    /// Equality only, one column.
    Hash,
    /// Arrays, `jsonb`, full text.
    Gin,
    /// Geometry, ranges.
    Gist,
    /// Block ranges of naturally ordered data.
    Brin,
}

impl Method {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "btree" => Method::Btree,
            "hash" => Method::Hash,
            "gin" => Method::Gin,
            "gist" => Method::Gist,
            "brin" => Method::Brin,
            _ => {
                return Err(format!(
                    "unknown index method `{s}`: use btree, hash, gin, gist or brin"
                ));
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Method::Btree => "btree",
            Method::Hash => "hash",
            Method::Gin => "gin",
            Method::Gist => "gist",
            Method::Brin => "brin",
        }
    }
}

/// One indexed column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: Identifier,
    /// Whether it is sorted descending.
    pub desc: bool,
}

/// A comparison operator of a partial-index predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A literal of a partial-index predicate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Literal {
    Number(String),
    Text(String),
    Bool(bool),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Number(n) => f.write_str(n),
            Literal::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            // An escape string when it holds a backslash, so the text means the same whatever
            // `standard_conforming_strings` says.
            Literal::Text(s) if s.contains('\\') => {
                write!(f, "E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
            }
            Literal::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

/// One condition of a partial-index predicate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Compare(Identifier, Op, Literal),
    IsNull(Identifier, bool),
}

impl Condition {
    fn column(&self) -> &Identifier {
        match self {
            Condition::Compare(c, ..) | Condition::IsNull(c, _) => c,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Compare(c, op, lit) => write!(f, "{c} {} {lit}", op.as_str()),
            Condition::IsNull(c, true) => write!(f, "{c} IS NULL"),
            Condition::IsNull(c, false) => write!(f, "{c} IS NOT NULL"),
        }
    }
}

/// A partial-index predicate in the accepted grammar: `column op literal` or `column IS [NOT]
/// NULL`, joined by `AND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicate(Vec<Condition>);

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Number(String),
    Text(String),
    Op(Op),
}

const GRAMMAR: &str = "a predicate is `column op literal` or `column IS [NOT] NULL`, joined by AND \
     (op: = <> < <= > >=; literal: a number, a 'string' or true/false)";

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_number =
            c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else if starts_number {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            out.push(Token::Number(chars[start..i].iter().collect()));
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("a 'string' in the predicate is not closed".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\0') => return Err("a string in the predicate holds a NUL".into()),
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Token::Text(s));
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let (op, len) = match (two.as_str(), c) {
                ("<=", _) => (Op::Le, 2),
                (">=", _) => (Op::Ge, 2),
                ("<>", _) | ("!=", _) => (Op::Ne, 2),
                (_, '<') => (Op::Lt, 1),
                (_, '>') => (Op::Gt, 1),
                (_, '=') => (Op::Eq, 1),
                _ => return Err(format!("{c:?} is not allowed in the predicate: {GRAMMAR}")),
            };
            out.push(Token::Op(op));
            i += len;
        }
    }
    Ok(out)
}

impl Predicate {
    /// Parses `text` in the accepted grammar; column names are checked as [`Identifier`]s.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_PREDICATE {
            return Err(format!(
                "the predicate is longer than {MAX_PREDICATE} bytes"
            ));
        }
        let tokens = tokens(text)?;
        let keyword = |t: Option<&Token>, k: &str| matches!(t, Some(Token::Word(w)) if w.eq_ignore_ascii_case(k));
        let mut conditions = Vec::new();
        let mut i = 0;
        loop {
            let column = match tokens.get(i) {
                Some(Token::Word(w)) => {
                    Identifier::parse(w).map_err(|e| format!("predicate column: {e}"))?
                }
                _ => return Err(format!("expected a column name: {GRAMMAR}")),
            };
            i += 1;
            if keyword(tokens.get(i), "is") {
                let not = keyword(tokens.get(i + 1), "not");
                let at = i + 1 + usize::from(not);
                if !keyword(tokens.get(at), "null") {
                    return Err(format!("expected IS NULL or IS NOT NULL after {column}"));
                }
                conditions.push(Condition::IsNull(column, !not));
                i = at + 1;
            } else {
                let Some(Token::Op(op)) = tokens.get(i) else {
                    return Err(format!("expected an operator after {column}: {GRAMMAR}"));
                };
                let literal = match tokens.get(i + 1) {
                    Some(Token::Number(n)) => Literal::Number(n.clone()),
                    Some(Token::Text(s)) => Literal::Text(s.clone()),
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => {
                        return Err(format!("compare with NULL as `{column} IS NULL`"));
                    }
                    _ => return Err(format!("expected a literal after {column}: {GRAMMAR}")),
                };
                conditions.push(Condition::Compare(column, *op, literal));
                i += 2;
            }
            match tokens.get(i) {
                None => break,
                Some(_) if keyword(tokens.get(i), "and") => i += 1,
                Some(_) => return Err(format!("expected AND or the end: {GRAMMAR}")),
            }
        }
        Ok(Self(conditions))
    }

    fn columns(&self) -> impl Iterator<Item = &Identifier> {
        self.0.iter().map(Condition::column)
    }
}

/// A checked request to build an index.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The table.
    pub table: Qualified,
    /// The columns, in order.
    pub columns: Vec<Column>,
    /// The access method.
    pub method: Method,
    /// Whether the index is unique.
    pub unique: bool,
    /// The partial-index predicate.
    pub predicate: Option<Predicate>,
    /// The index (in the table's schema).
    pub name: Qualified,
    /// The `lock_timeout` of the build, ms.
    pub lock_timeout_ms: u64,
}

impl Spec {
    /// Reads and checks the parameters; nothing connects.
    pub fn read(parameters: &serde_json::Value) -> Result<Self, String> {
        let raw: Raw = serde_json::from_value(parameters.clone())
            .map_err(|e| format!("create_index parameters: {e}"))?;
        let table = Qualified::parse(raw.table.trim()).map_err(|e| format!("table: {e}"))?;
        if raw.columns.is_empty() {
            return Err("name at least one column".into());
        }
        if raw.columns.len() > 32 {
            return Err("an index has at most 32 columns".into());
        }
        let columns = raw
            .columns
            .iter()
            .map(|c| {
                let mut words = c.split_whitespace();
                let name = Identifier::parse(words.next().unwrap_or(""))
                    .map_err(|e| format!("column: {e}"))?;
                let desc = match words.next() {
                    None => false,
                    Some(w) if w.eq_ignore_ascii_case("asc") => false,
                    Some(w) if w.eq_ignore_ascii_case("desc") => true,
                    Some(w) => {
                        return Err(format!("column `{c}`: `{w}` is not ASC or DESC"));
                    }
                };
                if let Some(w) = words.next() {
                    return Err(format!("column `{c}`: unexpected `{w}`"));
                }
                Ok(Column { name, desc })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let method = Method::parse(raw.method.as_deref().unwrap_or("btree").trim())?;
        if method != Method::Btree && columns.iter().any(|c| c.desc) {
            return Err(format!("DESC needs a btree index, not {}", method.as_str()));
        }
        if raw.unique && method != Method::Btree {
            return Err(format!(
                "a unique index must be btree, not {}",
                method.as_str()
            ));
        }
        if method == Method::Hash && columns.len() > 1 {
            return Err("a hash index has exactly one column".into());
        }
        let predicate = match raw.predicate.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(Predicate::parse(text)?),
        };
        let name = match raw.name.as_deref().map(str::trim) {
            None | Some("") => generated_name(&table, &columns)?,
            Some(n) => Identifier::parse(n).map_err(|e| format!("index name: {e}"))?,
        };
        let lock_timeout_ms = raw.lock_timeout_ms.unwrap_or(DEFAULT_LOCK_TIMEOUT_MS);
        if !LOCK_TIMEOUT_MS.contains(&lock_timeout_ms) {
            return Err(format!(
                "`lock_timeout_ms` must be between {} and {}, not {lock_timeout_ms}",
                LOCK_TIMEOUT_MS.start(),
                LOCK_TIMEOUT_MS.end()
            ));
        }
        Ok(Self {
            name: Qualified {
                schema: table.schema.clone(),
                name,
            },
            table,
            columns,
            method,
            unique: raw.unique,
            predicate,
            lock_timeout_ms,
        })
    }

    /// The `CREATE INDEX CONCURRENTLY` statement.
    pub fn create(&self) -> String {
        let columns = self
            .columns
            .iter()
            .map(|c| {
                if c.desc {
                    format!("{} DESC", c.name)
                } else {
                    c.name.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!(
            "CREATE {}INDEX CONCURRENTLY {} ON {} USING {} ({columns})",
            if self.unique { "UNIQUE " } else { "" },
            self.name.name,
            self.table,
            self.method.as_str()
        );
        if let Some(p) = &self.predicate {
            sql.push_str(&format!(" WHERE {p}"));
        }
        sql
    }

    /// The statement that drops the index (the undo, and the clean-up of an INVALID one).
    pub fn drop_index(&self) -> String {
        format!("DROP INDEX CONCURRENTLY IF EXISTS {}", self.name)
    }

    fn all_columns(&self) -> impl Iterator<Item = &Identifier> {
        self.columns
            .iter()
            .map(|c| &c.name)
            .chain(self.predicate.iter().flat_map(Predicate::columns))
    }
}

/// `<table>_<columns>_idx`, cut to fit 63 bytes.
fn generated_name(table: &Qualified, columns: &[Column]) -> Result<Identifier, String> {
    let mut base = table.name.as_str().to_owned();
    for c in columns {
        base.push('_');
        base.push_str(c.name.as_str());
    }
    // Names are ASCII, so any byte is a character boundary.
    base.truncate(super::identifier::MAX_LEN - "_idx".len());
    Identifier::parse(&format!("{base}_idx")).map_err(|e| format!("index name: {e}"))
}

/// What the catalog says about a relation named like the index.
#[derive(sqlx::FromRow)]
struct Existing {
    relkind: String,
    valid: Option<bool>,
    table: Option<String>,
    same_table: Option<bool>,
    building: Option<i32>,
}

async fn existing(conn: &mut PgConnection, spec: &Spec) -> Result<Option<Existing>, String> {
    let name = &spec.name;
    sqlx::query_as(
        "SELECT c.relkind::text AS relkind, i.indisvalid AS valid, \
             i.indrelid::regclass::text AS table, \
             i.indrelid = (SELECT t.oid FROM pg_class t JOIN pg_namespace tn \
                 ON tn.oid = t.relnamespace WHERE tn.nspname = $1 AND t.relname = $3) \
                 AS same_table, \
             (SELECT p.pid FROM pg_stat_progress_create_index p \
                 WHERE p.index_relid = c.oid LIMIT 1) AS building \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_index i ON i.indexrelid = c.oid \
             WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(name.schema.as_str())
    .bind(name.name.as_str())
    .bind(spec.table.name.as_str())
    .fetch_optional(conn)
    .await
    .map_err(|e| format!("looking for index {name}: {}", pg_message(&e)))
}

/// Whether a relation named like the index may be built over: `Ok(true)` when an INVALID index
/// of the same table is there to drop first.
fn judge(spec: &Spec, found: Option<Existing>) -> Result<bool, String> {
    let Some(found) = found else {
        return Ok(false);
    };
    let name = &spec.name;
    if found.relkind != "i" {
        return Err(format!(
            "a relation named {name} exists and is not an index: choose another name"
        ));
    }
    if let Some(pid) = found.building {
        return Err(format!(
            "index {name} is being built right now (pid {pid}): wait for that build"
        ));
    }
    let table = found.table.unwrap_or_default();
    if found.valid == Some(true) {
        return Err(format!(
            "index {name} already exists (on {table}) and is valid: nothing to build; \
             choose another name, or drop it first with `{}`",
            spec.drop_index()
        ));
    }
    if found.same_table != Some(true) {
        return Err(format!(
            "an INVALID index {name} exists on another table ({table}): drop it with `{}` \
             or choose another name",
            spec.drop_index()
        ));
    }
    Ok(true)
}

/// `Some(valid)` for the index named in `spec`, `None` when there is none.
async fn validity(conn: &mut PgConnection, name: &Qualified) -> Result<Option<bool>, String> {
    sqlx::query_scalar(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(name.schema.as_str())
    .bind(name.name.as_str())
    .fetch_optional(conn)
    .await
    .map_err(|e| format!("checking pg_index for {name}: {}", pg_message(&e)))
}

#[async_trait::async_trait]
impl JobKind for CreateIndex {
    fn name(&self) -> &'static str {
        "create_index"
    }

    fn role(&self) -> crate::access::Role {
        crate::access::Role::Admin
    }

    async fn plan(
        &self,
        target: Option<&str>,
        parameters: &serde_json::Value,
    ) -> Result<Plan, String> {
        let spec = Spec::read(parameters)?;
        self.targets
            .plan_on(target, async |conn, target| {
                plan_on(conn, target, &spec).await
            })
            .await
    }

    fn key(&self, target: Option<&str>, parameters: &serde_json::Value) -> Option<String> {
        let spec = Spec::read(parameters).ok()?;
        Some(format!(
            "index:{}:{}.{}",
            target?,
            spec.table.schema.as_str(),
            spec.table.name.as_str()
        ))
    }

    async fn run(
        &self,
        ctx: &mut JobContext,
        parameters: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        let spec = Spec::read(parameters).map_err(JobError::Failed)?;
        self.targets
            .in_session(ctx, spec.lock_timeout_ms, async |ctx, session| {
                build(ctx, session, &spec).await
            })
            .await
    }
}

async fn plan_on(conn: &mut PgConnection, target: &str, spec: &Spec) -> Result<Plan, String> {
    let read = |what: &'static str| move |e: sqlx::Error| format!("{what}: {}", pg_message(&e));
    let (replica, version): (bool, i32) =
        sqlx::query_as("SELECT pg_is_in_recovery(), current_setting('server_version_num')::int")
            .fetch_one(&mut *conn)
            .await
            .map_err(read("reading the server's state"))?;
    if replica {
        return Err(format!(
            "`{target}` is a replica (in recovery): build the index on the primary"
        ));
    }
    if version < 120_000 {
        return Err(format!(
            "`{target}` runs PostgreSQL {}: index jobs need 12 or later",
            version / 10_000
        ));
    }
    let table: Option<(i64, String, f64, i64)> = sqlx::query_as(
        "SELECT c.oid::int8, c.relkind::text, \
         COALESCE(NULLIF(c.reltuples, -1), s.n_live_tup, 0)::float8, pg_relation_size(c.oid) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
         WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(spec.table.schema.as_str())
    .bind(spec.table.name.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(read("reading the table"))?;
    let Some((oid, relkind, rows, bytes)) = table else {
        return Err(format!("table {} does not exist on `{target}`", spec.table));
    };
    match relkind.as_str() {
        "r" | "m" => {}
        "p" => {
            return Err(format!(
                "{} is partitioned: CREATE INDEX CONCURRENTLY cannot build on a partitioned \
                 table; build the index on each partition",
                spec.table
            ));
        }
        _ => return Err(format!("{} is not a table", spec.table)),
    }
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute \
         WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(read("reading the table's columns"))?;
    if let Some(missing) = spec
        .all_columns()
        .find(|c| !columns.iter().any(|n| n == c.as_str()))
    {
        return Err(format!("table {} has no column {missing}", spec.table));
    }
    if let Some(predicate) = &spec.predicate {
        // Planned, never run: a literal of the wrong type is refused now, not after the build
        // started.
        conn.execute(format!("EXPLAIN SELECT 1 FROM {} WHERE {predicate}", spec.table).as_str())
            .await
            .map_err(|e| format!("the predicate `{predicate}`: {}", pg_message(&e)))?;
    }
    let drop_first = judge(spec, existing(&mut *conn, spec).await?)?;
    let other: Option<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_progress_create_index WHERE relid = $1::oid LIMIT 1",
    )
    .bind(oid)
    .fetch_optional(&mut *conn)
    .await
    .map_err(read("reading pg_stat_progress_create_index"))?;
    if let Some(pid) = other {
        return Err(format!(
            "another index build runs on {} (pid {pid}): wait for it to end",
            spec.table
        ));
    }
    let waits: Option<(i32, String, f64)> = sqlx::query_as(
        "SELECT pid, coalesce(state, ''), extract(epoch FROM now() - xact_start)::float8 \
         FROM pg_stat_activity \
         WHERE xact_start < now() - interval '1 minute' AND pid <> pg_backend_pid() \
         ORDER BY xact_start LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(read("reading pg_stat_activity"))?;

    let mut statements = JobSession::settings(spec.lock_timeout_ms);
    let mut summary = format!(
        "Builds {}index {} on {} (about {} rows, {}) with CREATE INDEX CONCURRENTLY on its own \
         connection: writes go on while it builds; each lock wait gives up after {} ms.",
        if spec.unique { "unique " } else { "" },
        spec.name,
        spec.table,
        Unit::Count.format(rows),
        Unit::Bytes.format(bytes as f64),
        spec.lock_timeout_ms
    );
    if drop_first {
        statements.push(spec.drop_index());
        summary.push_str(&format!(
            " An INVALID index {} is left from an earlier build: it is dropped first.",
            spec.name
        ));
    }
    statements.push(spec.create());
    if let Some((pid, state, secs)) = waits {
        summary.push_str(&format!(
            " Transaction of pid {pid} ({state}) has been open for {}: the build waits for it.",
            Unit::Seconds.format(secs)
        ));
    }
    summary.push_str(&format!(
        " If it fails or is cancelled, the INVALID index left behind is dropped. Undo: {}.",
        spec.drop_index()
    ));
    Ok(Plan {
        summary,
        statements,
        total: None,
        destructive: true,
    })
}

/// The build's progress: phase, blocks or tuples, lockers, and who blocks it.
fn describe(s: &Sample) -> Checkpoint {
    let phase = s.text("phase").unwrap_or("waiting for a lock").to_owned();
    let (unit, done, total) = if s.number("blocks_total") > 0 {
        ("blocks", s.number("blocks_done"), s.number("blocks_total"))
    } else if s.number("tuples_total") > 0 {
        ("tuples", s.number("tuples_done"), s.number("tuples_total"))
    } else if s.number("lockers_total") > 0 {
        (
            "lockers",
            s.number("lockers_done"),
            s.number("lockers_total"),
        )
    } else {
        ("", 0, 0)
    };
    let text = if total > 0 {
        format!("{phase} ({unit} {done}/{total})")
    } else {
        phase
    };
    Checkpoint {
        done,
        total: (total > 0).then_some(total),
        phase: s.with_blocker(text),
    }
}

async fn build(
    ctx: &mut JobContext,
    session: &mut JobSession,
    spec: &Spec,
) -> Result<serde_json::Value, JobError> {
    let replica: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(session.monitor())
        .await
        .map_err(|e| JobError::Failed(pg_message(&e)))?;
    if replica {
        return Err(JobError::Failed(
            "the server is a replica (in recovery): build the index on the primary".into(),
        ));
    }
    let drop_first = judge(
        spec,
        existing(session.monitor(), spec)
            .await
            .map_err(JobError::Failed)?,
    )
    .map_err(JobError::Failed)?;
    if drop_first {
        ctx.checkpoint(Checkpoint {
            phase: format!("dropping the INVALID index {} left earlier", spec.name),
            ..Checkpoint::default()
        })
        .await?;
        session.execute(&spec.drop_index()).await.map_err(|e| {
            JobError::Failed(format!(
                "dropping the INVALID index {} left earlier: {e}",
                spec.name
            ))
        })?;
    }
    let statement = spec.create();
    let watched = session
        .watch(
            ctx,
            &statement,
            &["pg_stat_progress_create_index"],
            describe,
        )
        .await;
    if let Err(error) = watched.result {
        let cleanup = clean_up(session, spec).await;
        return match (watched.cancelled, cleanup) {
            (true, Ok(done)) => {
                tracing::info!(job = ctx.job().id, "index build cancelled; {done}");
                Err(JobError::Cancelled)
            }
            (true, Err(left)) => Err(JobError::Failed(format!("cancelled; but {left}"))),
            (false, Ok(done)) => Err(JobError::Failed(format!(
                "CREATE INDEX CONCURRENTLY failed: {error}; {done}"
            ))),
            (false, Err(left)) => Err(JobError::Failed(format!(
                "CREATE INDEX CONCURRENTLY failed: {error}; {left}"
            ))),
        };
    }
    let (valid, bytes): (bool, i64) = sqlx::query_as(
        "SELECT i.indisvalid, pg_relation_size(c.oid) FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(spec.name.schema.as_str())
    .bind(spec.name.name.as_str())
    .fetch_one(session.monitor())
    .await
    .map_err(|e| JobError::Failed(format!("reading the new index: {}", pg_message(&e))))?;
    ctx.checkpoint(Checkpoint {
        done: 1,
        total: Some(1),
        phase: "built".into(),
    })
    .await
    .or_else(|e| if watched.cancelled { Ok(()) } else { Err(e) })?;
    Ok(serde_json::json!({
        "index": spec.name.to_string(),
        "table": spec.table.to_string(),
        "statement": statement,
        "valid": valid,
        "size_bytes": bytes,
        "size": Unit::Bytes.format(bytes as f64),
        "duration_ms": watched.duration.as_millis() as u64,
        "dropped_invalid_first": drop_first,
        "undo": spec.drop_index(),
    }))
}

/// After a failed or cancelled build: drops the INVALID index it left. `Ok` says what was done;
/// `Err` says what is left and how to remove it.
async fn clean_up(session: &mut JobSession, spec: &Spec) -> Result<String, String> {
    let name = &spec.name;
    let fix = |why: String| format!("{why}; drop it with `{}`", spec.drop_index());
    match validity(session.monitor(), name).await {
        Ok(None) => return Ok("no index was left behind".into()),
        Ok(Some(true)) => return Ok(format!("index {name} exists and is valid")),
        Ok(Some(false)) => {}
        Err(e) => return Err(fix(format!("the index {name} may be left INVALID ({e})"))),
    }
    for statement in [lock_timeout(CLEANUP_LOCK_TIMEOUT_MS), spec.drop_index()] {
        if let Err(e) = session.execute(&statement).await {
            return Err(fix(format!(
                "the INVALID index {name} it left could not be dropped ({e})"
            )));
        }
    }
    match validity(session.monitor(), name).await {
        Ok(None) => Ok(format!("the INVALID index {name} it left was dropped")),
        Ok(Some(_)) => Err(fix(format!("the INVALID index {name} is still there"))),
        Err(e) => Err(fix(format!("the index {name} may be left INVALID ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Target;
    use crate::secret::SecretUrl;
    use crate::target::TargetKind;
    use serde_json::json;

    fn spec(p: serde_json::Value) -> Result<Spec, String> {
        Spec::read(&p)
    }

    #[test]
    fn statements_quote_every_name() {
        let s = spec(json!({
            "table": "events", "columns": ["user_id", "created_at DESC"],
            "where": "deleted_at IS NULL and kind = 'it''s' AND n >= -1.5 AND ok = TRUE",
        }))
        .unwrap();
        assert_eq!(
            s.create(),
            "CREATE INDEX CONCURRENTLY \"events_user_id_created_at_idx\" ON \"public\".\"events\" \
             USING btree (\"user_id\", \"created_at\" DESC) WHERE \"deleted_at\" IS NULL AND \
             \"kind\" = 'it''s' AND \"n\" >= -1.5 AND \"ok\" = true"
        );
        assert_eq!(
            s.drop_index(),
            "DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"events_user_id_created_at_idx\""
        );
        assert_eq!(s.lock_timeout_ms, 5_000);
        let u = spec(json!({
            "table": "app.users", "columns": ["email"], "unique": true, "name": "users_email_key",
            "lock_timeout_ms": 1000, "where": "note <> 'a\\b'",
        }))
        .unwrap();
        assert_eq!(
            u.create(),
            "CREATE UNIQUE INDEX CONCURRENTLY \"users_email_key\" ON \"app\".\"users\" USING \
             btree (\"email\") WHERE \"note\" <> E'a\\\\b'"
        );
        assert_eq!(u.name.to_string(), "\"app\".\"users_email_key\"");
        let g = spec(json!({"table": "docs", "columns": ["body"], "method": "GIN"})).unwrap();
        assert!(g.create().ends_with("USING gin (\"body\")"));
        assert_eq!(
            JobSession::settings(1000),
            ["SET statement_timeout = 0", "SET lock_timeout = '1000ms'"]
        );
    }

    #[test]
    fn generated_names_fit_63_bytes() {
        let long = "a".repeat(40);
        let s = spec(json!({"table": long, "columns": ["some_column", "another_column"]})).unwrap();
        assert_eq!(s.name.name.as_str().len(), 63);
        assert!(s.name.name.as_str().ends_with("_idx"));
    }

    #[test]
    fn bad_parameters_are_refused_with_the_reason() {
        let bad = |p: serde_json::Value| spec(p).unwrap_err();
        assert!(
            bad(json!({"table": "t\"; drop table t; --", "columns": ["a"]}))
                .contains("is not allowed")
        );
        assert!(bad(json!({"table": "t", "columns": ["a;b"]})).contains("';' is not allowed"));
        assert!(bad(json!({"table": "t", "columns": ["select"]})).contains("reserved word"));
        assert!(bad(json!({"table": "user", "columns": ["a"]})).contains("reserved word"));
        assert!(bad(json!({"table": "t", "columns": ["a"], "name": "Idx"})).contains("'I'"));
        assert!(bad(json!({"table": "t", "columns": []})).contains("at least one column"));
        assert!(bad(json!({"table": "t", "columns": ["a sideways"]})).contains("ASC or DESC"));
        assert!(bad(json!({"table": "t", "columns": ["a"], "method": "rtree"})).contains("rtree"));
        assert!(
            bad(json!({"table": "t", "columns": ["a"], "method": "hash", "unique": true}))
                .contains("unique index must be btree")
        );
        assert!(
            bad(json!({"table": "t", "columns": ["a", "b"], "method": "hash"}))
                .contains("exactly one column")
        );
        assert!(
            bad(json!({"table": "t", "columns": ["a DESC"], "method": "gin"}))
                .contains("DESC needs a btree")
        );
        assert!(
            bad(json!({"table": "t", "columns": ["a"], "lock_timeout_ms": 0}))
                .contains("between 100 and 600000")
        );
        assert!(bad(json!({"table": "t", "columns": ["a"], "colour": 1})).contains("colour"));
        for (predicate, why) in [
            ("a = 1; drop table t", "';' is not allowed"),
            ("a = 1 OR b = 2", "expected AND"),
            ("a = (select 1)", "'(' is not allowed"),
            ("lower(a) = 'x'", "'(' is not allowed"),
            ("a = b", "expected a literal"),
            ("a = 'open", "not closed"),
            ("a = null", "IS NULL"),
            ("a IS 1", "IS NULL or IS NOT NULL"),
            ("A = 1", "'A' is not allowed"),
            ("a = 1 --", "'-' is not allowed"),
            ("a = 1 /* x */", "'/' is not allowed"),
            ("", "expected a column"),
            ("a = 1 AND", "expected a column"),
        ] {
            let e = Predicate::parse(predicate).unwrap_err();
            assert!(e.contains(why), "{predicate}: {e}");
        }
    }

    #[tokio::test]
    async fn names_are_refused_before_anything_connects() {
        // Nothing listens on port 1: a connection would fail, so these errors come first.
        let kind = CreateIndex::new(TargetUrls::new(&[Target::new(
            "db",
            TargetKind::Postgres,
            SecretUrl::parse("postgres://u:secret@127.0.0.1:1/app").unwrap(),
        )]));
        for (p, why) in [
            (
                json!({"table": "t\"x", "columns": ["a"]}),
                "'\"' is not allowed",
            ),
            (
                json!({"table": "t", "columns": ["a;"]}),
                "';' is not allowed",
            ),
            (json!({"table": "t", "columns": ["from"]}), "reserved word"),
            (
                json!({"table": "t", "columns": ["a"], "where": "a = 1;"}),
                "';'",
            ),
        ] {
            let e = kind.plan(Some("db"), &p).await.unwrap_err();
            assert!(e.contains(why), "{p}: {e}");
        }
        let e = kind
            .plan(Some("db"), &json!({"table": "t", "columns": ["a"]}))
            .await
            .unwrap_err();
        assert!(e.starts_with("`db`:") && !e.contains("secret"), "{e}");
        assert_eq!(
            kind.key(Some("db"), &json!({"table": "t", "columns": ["a"]})),
            Some("index:db:public.t".into())
        );
    }

    #[test]
    fn progress_names_the_phase_and_the_blocker() {
        let s = Sample {
            fields: json!({"phase": "waiting for writers before build", "lockers_total": 1,
                "lockers_done": 0, "blocks_total": 0, "tuples_total": 0}),
            relation: Some("t".into()),
            blocker: Some("pid 42 (idle in transaction): UPDATE t SET a = 1".into()),
        };
        let at = describe(&s);
        assert_eq!(at.total, Some(1));
        assert_eq!(
            at.phase,
            "waiting for writers before build (lockers 0/1) — blocked by pid 42 \
             (idle in transaction): UPDATE t SET a = 1"
        );
        let s = Sample {
            fields: json!({"phase": "building index: scanning table", "blocks_total": 100,
                "blocks_done": 40}),
            ..Sample::default()
        };
        let at = describe(&s);
        assert_eq!((at.done, at.total), (40, Some(100)));
        assert_eq!(at.phase, "building index: scanning table (blocks 40/100)");
    }
}
