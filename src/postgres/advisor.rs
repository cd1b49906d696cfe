//! The index advisor: for each slow statement, the index an experienced DBA would add, the way
//! pghero does it.
//!
//! 1. The normalized statement (`$1` placeholders) is parsed with `sqlparser`. Understood: one
//!    table in a SELECT, UPDATE or DELETE, a WHERE that is an AND of `= <> < <= > >= IN BETWEEN
//!    LIKE ILIKE IS NULL IS NOT NULL` between a column and a value, and an ORDER BY of columns.
//!    Anything else (a join, OR, a subquery, …) is reported "not analysed" with the reason.
//! 2. Rows per condition are estimated from `pg_class.reltuples` and `pg_stats` (`null_frac`,
//!    `n_distinct`): `=` leaves rows / n_distinct, a range (rows + that) / 10, `<>` the rest.
//! 3. Columns go most selective first; more are added while 50 rows or more remain, up to two,
//!    and not after a range; a trailing column that does not cut the rows left to 30 % or less
//!    is pruned. ORDER BY columns follow when every column before them is an equality.
//!    Tables under 500 rows get nothing; a pattern match that is the most selective condition
//!    gets a trigram GiST index.
//! 4. An existing valid index of the same method whose leading columns are the suggested ones
//!    (equality columns in any order) covers it, and nothing is suggested.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use sqlparser::ast::{
    self, BinaryOperator, Expr, FromTable, FunctionArg, FunctionArgExpr, FunctionArguments,
    ObjectName, ObjectNamePart, OrderByKind, OrderBySort, SelectItem, SetExpr, Statement,
    TableFactor, TableWithJoins, UnaryOperator,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlx::postgres::PgPool;

use super::catalog::{self, ColumnStats, Index, Table, TableRef, TopStatement};
pub use super::catalog::{Error, Result};
use super::identifier::MAX_LEN;
use super::{
    Advice, AdvisorSettings, Helped, Identifier, IndexMethod, Qualified, StatementAdvice,
    Suggestion, Verdict,
};

/// Statement text at least this long was cut by `pg_stat_statements` and is not parsed.
const MAX_QUERY_CHARS: usize = 10_000;
/// Columns are added while at least this many rows remain.
const ENOUGH_ROWS: f64 = 50.0;
/// At most this many WHERE columns.
const MAX_WHERE_COLUMNS: usize = 2;
/// At most this many columns in all (with ORDER BY).
const MAX_COLUMNS: usize = 3;
/// A trailing column stays only if it cuts the rows left to this fraction or less.
const PRUNE_RATIO: f64 = 0.3;
/// An index whose columns still leave more than this fraction of the table does not help.
const USELESS_FRACTION: f64 = 0.5;

/// A comparison the advisor understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `IN (…)` with this many values.
    In(usize),
    /// `= ANY (array)`: some values, how many is not known.
    Any,
    /// `<>` or `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `BETWEEN … AND …`
    Between,
    /// `LIKE`
    Like,
    /// `ILIKE`
    ILike,
    /// `IS NULL`
    IsNull,
    /// `IS NOT NULL`
    IsNotNull,
}

impl Op {
    /// As written in SQL.
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::In(_) => "IN",
            Op::Any => "= ANY",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Between => "BETWEEN",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }

    /// Whether a B-tree finds the matching rows as one run of equal keys, so the next index
    /// column still narrows them and still gives their order.
    pub fn is_equality(self) -> bool {
        matches!(self, Op::Eq | Op::In(1) | Op::IsNull)
    }

    fn flipped(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            other => other,
        }
    }

    fn is_pattern(self) -> bool {
        matches!(self, Op::Like | Op::ILike)
    }
}

/// One condition of a WHERE: a column compared with a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The column, folded as PostgreSQL folds it.
    pub column: String,
    /// The comparison.
    pub op: Op,
}

/// One column of an ORDER BY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The column.
    pub column: String,
    /// `DESC`.
    pub descending: bool,
}

/// What the advisor understood of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The one table it reads.
    pub table: TableRef,
    /// The conditions of its WHERE (all joined by AND).
    pub conditions: Vec<Condition>,
    /// Its ORDER BY.
    pub sort: Vec<SortKey>,
}

/// Parses a normalized statement into the shape the advisor works on; the error is the reason
/// it cannot, for people ("a JOIN", "OR in the WHERE", …).
pub fn parse(query: &str) -> std::result::Result<Shape, String> {
    if query.chars().count() >= MAX_QUERY_CHARS {
        return Err(format!(
            "the statement is too large (its text was cut at {MAX_QUERY_CHARS} characters)"
        ));
    }
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, query)
        .map_err(|e| format!("the statement could not be parsed ({e})"))?;
    let statement = match statements.as_slice() {
        [one] => one,
        [] => return Err("the text holds no statement".to_owned()),
        _ => return Err("the text holds several statements".to_owned()),
    };
    match statement {
        Statement::Query(q) => parse_query(q),
        Statement::Update(u) => {
            if u.from.is_some() {
                return Err("UPDATE … FROM (a join) is not supported".to_owned());
            }
            let (table, alias) = single_table(std::slice::from_ref(&u.table))?;
            for a in &u.assignments {
                no_subquery(&a.value.to_string())?;
            }
            let scope = Scope::new(&table, alias);
            Ok(Shape {
                conditions: where_conditions(u.selection.as_ref(), &scope)?,
                sort: Vec::new(),
                table,
            })
        }
        Statement::Delete(d) => {
            if d.using.is_some() {
                return Err("DELETE … USING (a join) is not supported".to_owned());
            }
            if d.tables.len() > 1 {
                return Err("a DELETE of several tables is not supported".to_owned());
            }
            let from = match &d.from {
                FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
            };
            let (table, alias) = single_table(from)?;
            let scope = Scope::new(&table, alias);
            Ok(Shape {
                conditions: where_conditions(d.selection.as_ref(), &scope)?,
                sort: Vec::new(),
                table,
            })
        }
        Statement::Insert(_) => {
            Err("an INSERT: indexes do not make inserts faster (only SELECT, UPDATE and DELETE are analysed)".to_owned())
        }
        other => {
            let word = other.to_string();
            let word = word.split_whitespace().next().unwrap_or("this statement");
            Err(format!(
                "only SELECT, UPDATE and DELETE are analysed (this is {word})"
            ))
        }
    }
}

fn parse_query(q: &ast::Query) -> std::result::Result<Shape, String> {
    if q.with.is_some() {
        return Err("WITH (a common table expression) is not supported".to_owned());
    }
    let select = match q.body.as_ref() {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { op, .. } => {
            return Err(format!("{op} of several queries is not supported"));
        }
        SetExpr::Query(_) => return Err("a parenthesized subquery is not supported".to_owned()),
        _ => return Err("only a plain SELECT … FROM is supported".to_owned()),
    };
    let (table, alias) = single_table(&select.from)?;
    for item in &select.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            no_subquery(&e.to_string())?;
        }
    }
    if let Some(h) = &select.having {
        no_subquery(&h.to_string())?;
    }
    let scope = Scope::new(&table, alias);
    let conditions = where_conditions(select.selection.as_ref(), &scope)?;
    let mut sort = Vec::new();
    if let Some(order) = &q.order_by {
        let OrderByKind::Expressions(exprs) = &order.kind else {
            return Err("ORDER BY ALL is not supported".to_owned());
        };
        for o in exprs {
            let Some(column) = scope.column(&o.expr)? else {
                return Err(format!(
                    "ORDER BY an expression (`{}`) is not supported",
                    o.expr
                ));
            };
            let descending = match &o.options.sort {
                None | Some(OrderBySort::Asc) => false,
                Some(OrderBySort::Desc) => true,
                Some(OrderBySort::Using(_)) => {
                    return Err("ORDER BY … USING an operator is not supported".to_owned());
                }
            };
            sort.push(SortKey { column, descending });
        }
    }
    Ok(Shape {
        table,
        conditions,
        sort,
    })
}

/// A subquery anywhere in an expression (statements are printed with upper-case key words).
fn no_subquery(text: &str) -> std::result::Result<(), String> {
    if text.contains("(SELECT ") || text.contains("EXISTS (") {
        Err("a subquery is not supported".to_owned())
    } else {
        Ok(())
    }
}

fn single_table(
    from: &[TableWithJoins],
) -> std::result::Result<(TableRef, Option<String>), String> {
    let one = match from {
        [] => return Err("it reads no table".to_owned()),
        [one] => one,
        _ => return Err("several tables in FROM (a join) are not supported".to_owned()),
    };
    if !one.joins.is_empty() {
        return Err("a JOIN is not supported".to_owned());
    }
    match &one.relation {
        TableFactor::Table {
            name, alias, args, ..
        } => {
            if args.is_some() {
                return Err("a table function is not supported".to_owned());
            }
            let table = table_ref(name)?;
            Ok((table, alias.as_ref().map(|a| fold(&a.name))))
        }
        TableFactor::Derived { .. } => Err("a subquery in FROM is not supported".to_owned()),
        other => Err(format!("FROM `{other}` is not a plain table")),
    }
}

fn table_ref(name: &ObjectName) -> std::result::Result<TableRef, String> {
    let parts = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Ok(fold(i)),
            ObjectNamePart::Function(_) => Err(format!("the table name `{name}` is not plain")),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    match parts.as_slice() {
        [table] => Ok(TableRef {
            schema: None,
            name: table.clone(),
        }),
        [schema, table] => Ok(TableRef {
            schema: Some(schema.clone()),
            name: table.clone(),
        }),
        _ => Err(format!("the table name `{name}` names another database")),
    }
}

/// A name as PostgreSQL reads it: unquoted names fold to lower case.
fn fold(ident: &ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// The names a column of the one table may be written with.
struct Scope {
    table: TableRef,
    alias: Option<String>,
}

impl Scope {
    fn new(table: &TableRef, alias: Option<String>) -> Self {
        Self {
            table: table.clone(),
            alias,
        }
    }

    /// The column `e` is, if it is a plain column of the table.
    fn column(&self, e: &Expr) -> std::result::Result<Option<String>, String> {
        match e {
            Expr::Identifier(i) => Ok(Some(fold(i))),
            Expr::Nested(inner) => self.column(inner),
            Expr::CompoundIdentifier(parts) => {
                let parts: Vec<String> = parts.iter().map(fold).collect();
                let (qualifier, column) = match parts.as_slice() {
                    [q, c] => (vec![q.clone()], c.clone()),
                    [s, t, c] => (vec![s.clone(), t.clone()], c.clone()),
                    _ => return Ok(None),
                };
                let by_alias = qualifier.len() == 1 && self.alias.as_ref() == Some(&qualifier[0]);
                let by_name = match qualifier.as_slice() {
                    [t] => self.alias.is_none() && *t == self.table.name,
                    [s, t] => {
                        self.alias.is_none()
                            && *t == self.table.name
                            && self.table.schema.as_ref().is_none_or(|ts| ts == s)
                    }
                    _ => false,
                };
                if by_alias || by_name {
                    Ok(Some(column))
                } else {
                    Err(format!(
                        "`{}` refers to another table (a correlated subquery or a join)",
                        parts.join(".")
                    ))
                }
            }
            _ => Ok(None),
        }
    }
}

/// The conditions of an AND-tree WHERE.
fn where_conditions(
    selection: Option<&Expr>,
    scope: &Scope,
) -> std::result::Result<Vec<Condition>, String> {
    let mut out = Vec::new();
    if let Some(e) = selection {
        no_subquery(&e.to_string())?;
        conditions(e, scope, &mut out)?;
    }
    Ok(out)
}

fn conditions(
    e: &Expr,
    scope: &Scope,
    out: &mut Vec<Condition>,
) -> std::result::Result<(), String> {
    let unsupported = |e: &Expr| Err(format!("the condition `{e}` is not supported"));
    match e {
        Expr::Nested(inner) => conditions(inner, scope, out),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conditions(left, scope, out)?;
            conditions(right, scope, out)
        }
        Expr::BinaryOp {
            op: BinaryOperator::Or,
            ..
        } => Err("OR in the WHERE is not supported".to_owned()),
        Expr::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Eq => Op::Eq,
                BinaryOperator::NotEq => Op::Ne,
                BinaryOperator::Lt => Op::Lt,
                BinaryOperator::LtEq => Op::Le,
                BinaryOperator::Gt => Op::Gt,
                BinaryOperator::GtEq => Op::Ge,
                other => return Err(format!("the operator {other} is not supported")),
            };
            compare(left, op, right, scope, out)
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            if *negated {
                return Err("NOT IN is not supported".to_owned());
            }
            let all_values = list.iter().all(is_value);
            compare_one(expr, Op::In(list.len().max(1)), all_values, e, scope, out)
        }
        Expr::AnyOp {
            left,
            compare_op: BinaryOperator::Eq,
            right,
            ..
        } => compare_one(left, Op::Any, is_value(right), e, scope, out),
        Expr::InSubquery { .. } | Expr::Exists { .. } | Expr::Subquery(_) => {
            Err("a subquery is not supported".to_owned())
        }
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            if *negated {
                return Err("NOT BETWEEN is not supported".to_owned());
            }
            let values = is_value(low) && is_value(high);
            compare_one(expr, Op::Between, values, e, scope, out)
        }
        Expr::Like {
            negated,
            any,
            expr,
            pattern,
            ..
        }
        | Expr::ILike {
            negated,
            any,
            expr,
            pattern,
            ..
        } => {
            if *negated || *any {
                return unsupported(e);
            }
            let op = if matches!(e, Expr::Like { .. }) {
                Op::Like
            } else {
                Op::ILike
            };
            compare_one(expr, op, is_value(pattern), e, scope, out)
        }
        Expr::IsNull(expr) => compare_one(expr, Op::IsNull, true, e, scope, out),
        Expr::IsNotNull(expr) => compare_one(expr, Op::IsNotNull, true, e, scope, out),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            ..
        } => Err("NOT in the WHERE is not supported".to_owned()),
        other => unsupported(other),
    }
}

fn compare(
    left: &Expr,
    op: Op,
    right: &Expr,
    scope: &Scope,
    out: &mut Vec<Condition>,
) -> std::result::Result<(), String> {
    match (scope.column(left)?, scope.column(right)?) {
        (Some(_), Some(_)) => Err(format!(
            "the condition `{left} {} {right}` compares two columns",
            op.sql()
        )),
        (Some(column), None) if is_value(right) => {
            out.push(Condition { column, op });
            Ok(())
        }
        (None, Some(column)) if is_value(left) => {
            out.push(Condition {
                column,
                op: op.flipped(),
            });
            Ok(())
        }
        (Some(_), None) => Err(format!(
            "the condition `{left} {} {right}` compares with an expression over columns",
            op.sql()
        )),
        _ => Err(format!(
            "the condition `{left} {} {right}` is on an expression, not a plain column",
            op.sql()
        )),
    }
}

fn compare_one(
    expr: &Expr,
    op: Op,
    values: bool,
    whole: &Expr,
    scope: &Scope,
    out: &mut Vec<Condition>,
) -> std::result::Result<(), String> {
    match scope.column(expr)? {
        Some(column) if values => {
            out.push(Condition { column, op });
            Ok(())
        }
        Some(_) => Err(format!(
            "the condition `{whole}` compares with an expression over columns"
        )),
        None => Err(format!(
            "the condition `{whole}` is on an expression, not a plain column"
        )),
    }
}

/// Whether `e` is a value for the statement's run: constants, parameters, and functions and
/// operators over them, never a column.
fn is_value(e: &Expr) -> bool {
    match e {
        Expr::Value(_) | Expr::TypedString(_) => true,
        Expr::Nested(e) | Expr::UnaryOp { expr: e, .. } => is_value(e),
        Expr::Cast { expr, .. } => is_value(expr),
        Expr::BinaryOp { left, right, .. } => is_value(left) && is_value(right),
        Expr::Interval(i) => is_value(&i.value),
        Expr::Tuple(items) => items.iter().all(is_value),
        Expr::Array(a) => a.elem.iter().all(is_value),
        Expr::Function(f) => match &f.args {
            FunctionArguments::None => true,
            FunctionArguments::List(list) => list.args.iter().all(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
                | FunctionArg::Named {
                    arg: FunctionArgExpr::Expr(e),
                    ..
                } => is_value(e),
                _ => false,
            }),
            FunctionArguments::Subquery(_) => false,
        },
        _ => false,
    }
}

/// Rows left after a condition, pghero's estimate: `rows_left` of the `total` rows remain
/// before it.
pub fn estimate(stats: ColumnStats, total: f64, rows_left: f64, op: Op) -> f64 {
    let null_frac = stats.null_frac.clamp(0.0, 1.0);
    match op {
        Op::IsNull => rows_left * null_frac,
        Op::IsNotNull => rows_left * (1.0 - null_frac),
        _ => {
            let left = rows_left * (1.0 - null_frac);
            let per_value = if stats.n_distinct == 0.0 {
                0.0
            } else if stats.n_distinct < 0.0 {
                if total > 0.0 {
                    left / (-stats.n_distinct * total)
                } else {
                    0.0
                }
            } else {
                left / stats.n_distinct
            };
            match op {
                Op::Eq | Op::Any => per_value,
                Op::In(n) => (per_value * n as f64).min(left),
                Op::Ne => left - per_value,
                _ => (left + per_value) / 10.0,
            }
        }
    }
}

/// What the advisor concluded for one statement, before suggestions are merged.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// An index on these columns.
    Suggest {
        /// The columns, in order.
        columns: Vec<String>,
        /// Its method.
        method: IndexMethod,
    },
    /// An existing index serves it.
    Covered {
        /// `schema.name`.
        index: String,
        /// Its key columns.
        columns: Vec<String>,
    },
    /// No index would help.
    NoIndexNeeded(String),
    /// Not analysed.
    NotAnalysed(String),
}

/// The advisor's conclusion for one statement on its table, with the reasoning.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The conclusion.
    pub outcome: Outcome,
    /// Why, in sentences.
    pub reasoning: Vec<String>,
}

/// A number of rows for people: `200,000`, `40`, `0.5`.
fn rows(n: f64) -> String {
    if n < 10.0 && n.fract() != 0.0 {
        return format!("{n:.1}");
    }
    let whole = n.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 row`, `40 rows`.
fn row_count(n: f64) -> String {
    match rows(n).as_str() {
        "1" => "1 row".to_owned(),
        other => format!("{other} rows"),
    }
}

fn describe(c: &Condition) -> String {
    match c.op {
        Op::IsNull | Op::IsNotNull => format!("{} {}", c.column, c.op.sql()),
        Op::In(n) => format!("{} IN ({n} values)", c.column),
        Op::Any => format!("{} = ANY (…), counted as one value", c.column),
        Op::Between => format!("{} BETWEEN … AND …", c.column),
        op => format!("{} {} …", c.column, op.sql()),
    }
}

fn list(indexes: &[&Index]) -> String {
    indexes
        .iter()
        .map(|i| format!("{} on ({})", i.name, i.column_names().join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decides the index for one statement of `shape` on `table`, whose existing indexes are
/// `indexes` (any table's may be passed; others are ignored).
pub fn analyse(
    shape: &Shape,
    table: &Table,
    indexes: &[Index],
    settings: &AdvisorSettings,
) -> Analysis {
    let mut reasoning = Vec::new();
    let outcome = decide(shape, table, indexes, settings, &mut reasoning);
    Analysis { outcome, reasoning }
}

fn decide(
    shape: &Shape,
    table: &Table,
    indexes: &[Index],
    settings: &AdvisorSettings,
    why: &mut Vec<String>,
) -> Outcome {
    let name = format!("{}.{}", table.schema, table.name);
    let total = table.reltuples;
    if total < 0.0 {
        return Outcome::NotAnalysed(format!(
            "{name} has never been analysed, so its size is unknown: run ANALYZE {name}"
        ));
    }
    why.push(format!(
        "{name} has about {} rows (pg_class.reltuples).",
        rows(total)
    ));
    for column in shape
        .conditions
        .iter()
        .map(|c| &c.column)
        .chain(shape.sort.iter().map(|s| &s.column))
    {
        if table.column(column).is_none() {
            return Outcome::NotAnalysed(format!("{name} has no column {column}"));
        }
    }
    if total < settings.min_table_rows {
        return Outcome::NoIndexNeeded(format!(
            "{name} has about {} rows, under {}: reading it whole is cheap",
            rows(total),
            rows(settings.min_table_rows)
        ));
    }
    if shape.conditions.is_empty() && shape.sort.is_empty() {
        return Outcome::NoIndexNeeded(
            "it has no WHERE and no ORDER BY: it reads the whole table".to_owned(),
        );
    }

    // Rows each condition leaves on its own; the most selective per column.
    let mut ranked: Vec<(Condition, ColumnStats, f64)> = Vec::new();
    for c in &shape.conditions {
        let column = table.column(&c.column).expect("checked above");
        let Some(stats) = column.stats else {
            return Outcome::NotAnalysed(format!(
                "pg_stats has nothing on {name}.{}: run ANALYZE {name}",
                c.column
            ));
        };
        let est = estimate(stats, total, total, c.op);
        why.push(format!(
            "{} leaves about {} (n_distinct {}, {:.0} % NULL).",
            describe(c),
            row_count(est),
            stats.n_distinct,
            stats.null_frac * 100.0
        ));
        match ranked.iter_mut().find(|(r, _, _)| r.column == c.column) {
            Some(r) if r.2 <= est => {}
            Some(r) => *r = (c.clone(), stats, est),
            None => ranked.push((c.clone(), stats, est)),
        }
    }
    ranked.sort_by(|a, b| a.2.total_cmp(&b.2));

    let valid: Vec<&Index> = indexes
        .iter()
        .filter(|i| i.table_oid == table.oid && i.valid)
        .collect();

    if let Some((first, _, est)) = ranked.first()
        && first.op.is_pattern()
    {
        why.push(format!(
            "The most selective condition, {}, is a pattern match (about {}): a B-tree serves only patterns anchored at the start, a trigram GiST index serves any (it needs CREATE EXTENSION pg_trgm).",
            describe(first),
            row_count(*est)
        ));
        let covering = valid.iter().find(|i| {
            i.predicate.is_none()
                && (i.method == "gist" || i.method == "gin")
                && i.columns.first() == Some(&Some(first.column.clone()))
                && i.opclasses
                    .first()
                    .is_some_and(|o| o == "gist_trgm_ops" || o == "gin_trgm_ops")
        });
        return covered_or(
            covering,
            vec![first.column.clone()],
            IndexMethod::GistTrgm,
            &valid,
            &name,
            why,
        );
    }

    // Greedy: most selective first, while it still narrows.
    let mut chosen: Vec<(Condition, f64)> = Vec::new();
    let mut left = total;
    for (c, stats, _) in &ranked {
        if chosen.len() == MAX_WHERE_COLUMNS {
            why.push(format!(
                "{} is left out: {MAX_WHERE_COLUMNS} columns already narrow it.",
                c.column
            ));
            break;
        }
        if left < ENOUGH_ROWS {
            why.push(format!(
                "{} is left out: about {} remain, fewer than {}.",
                c.column,
                row_count(left),
                ENOUGH_ROWS
            ));
            break;
        }
        if let Some((last, _)) = chosen.last()
            && !last.op.is_equality()
        {
            why.push(format!(
                "{} is left out: after a range on {} a B-tree cannot seek on it.",
                c.column, last.column
            ));
            break;
        }
        let after = estimate(*stats, total, left, c.op);
        if chosen.is_empty() {
            why.push(format!(
                "{} goes first: it is the most selective condition, leaving about {} of {} rows.",
                c.column,
                rows(after),
                rows(total)
            ));
        } else {
            why.push(format!(
                "{} comes next: it narrows about {} rows to about {}.",
                c.column,
                rows(left),
                rows(after)
            ));
        }
        chosen.push((c.clone(), after));
        left = after;
    }
    // Prune from the end: a trailing column must cut the rows left to 30 % or less.
    while chosen.len() > 1 {
        let before = chosen[chosen.len() - 2].1;
        let (last, after) = chosen.last().expect("two or more");
        if before > 0.0 && *after / before > PRUNE_RATIO {
            why.push(format!(
                "{} is pruned: it only narrows about {} rows to about {} (more than {:.0} % remain).",
                last.column,
                rows(before),
                rows(*after),
                PRUNE_RATIO * 100.0
            ));
            chosen.pop();
        } else {
            break;
        }
    }
    if let Some((c, after)) = chosen.last()
        && total > 0.0
        && after / total > USELESS_FRACTION
    {
        why.push(format!(
            "{} still leaves about {} of {} rows ({:.0} %): a sequential scan reads them as fast.",
            describe(c),
            rows(*after),
            rows(total),
            after / total * 100.0
        ));
        chosen.clear();
    }

    let mut columns: Vec<String> = chosen.iter().map(|(c, _)| c.column.clone()).collect();
    let where_columns = columns.len();
    if let Some(first) = shape.sort.first() {
        if let Some((range, _)) = chosen.iter().find(|(c, _)| !c.op.is_equality()) {
            why.push(format!(
                "ORDER BY {} is not added: after {} the index does not give that order.",
                first.column,
                describe(range)
            ));
        } else {
            for key in &shape.sort {
                if key.descending != first.descending {
                    why.push(format!(
                        "ORDER BY stops at {}: it sorts the other way, which one index scan does not give.",
                        key.column
                    ));
                    break;
                }
                if columns.contains(&key.column) {
                    continue;
                }
                if columns.len() == MAX_COLUMNS {
                    break;
                }
                why.push(format!(
                    "{} is added from ORDER BY: rows come out of the index already in order.",
                    key.column
                ));
                columns.push(key.column.clone());
            }
        }
    }
    if columns.is_empty() {
        return Outcome::NoIndexNeeded(if where_columns == 0 && !ranked.is_empty() {
            "no condition narrows the rows enough for an index to beat a sequential scan".to_owned()
        } else {
            "nothing an index could serve".to_owned()
        });
    }

    // Equality columns may come in any order in a covering index.
    let leading_equal = chosen
        .iter()
        .take_while(|(c, _)| c.op.is_equality())
        .count();
    let single_equal = columns.len() == 1 && chosen.first().is_some_and(|(c, _)| c.op == Op::Eq);
    let covering = valid.iter().find(|i| {
        i.predicate.is_none()
            && ((i.method == "btree" && covers(&i.columns, &columns, leading_equal))
                || (single_equal && i.method == "hash" && i.columns == [Some(columns[0].clone())]))
    });
    covered_or(covering, columns, IndexMethod::Btree, &valid, &name, why)
}

fn covered_or(
    covering: Option<&&Index>,
    columns: Vec<String>,
    method: IndexMethod,
    valid: &[&Index],
    table: &str,
    why: &mut Vec<String>,
) -> Outcome {
    let partial: Vec<&Index> = valid
        .iter()
        .filter(|i| i.predicate.is_some())
        .copied()
        .collect();
    if !partial.is_empty() {
        why.push(format!(
            "Partial indexes are not counted (they serve only the rows of their predicate): {}.",
            list(&partial)
        ));
    }
    if let Some(i) = covering {
        why.push(format!(
            "{} on ({}) already has ({}) as its leading columns, so nothing is suggested.",
            i.name,
            i.column_names().join(", "),
            columns.join(", ")
        ));
        return Outcome::Covered {
            index: i.display_name(),
            columns: i.column_names(),
        };
    }
    if valid.is_empty() {
        why.push(format!("{table} has no valid index yet."));
    } else {
        why.push(format!(
            "Existing indexes on {table} considered: {}; none has ({}) as its leading columns.",
            list(valid),
            columns.join(", ")
        ));
    }
    Outcome::Suggest { columns, method }
}

/// Whether an index on `existing` serves a search on `wanted`, whose first `equal` columns are
/// equalities (so may appear in the index in any order).
pub fn covers(existing: &[Option<String>], wanted: &[String], equal: usize) -> bool {
    if existing.len() < wanted.len() {
        return false;
    }
    let Some(prefix) = existing[..wanted.len()]
        .iter()
        .cloned()
        .collect::<Option<Vec<String>>>()
    else {
        return false;
    };
    let equal = equal.min(wanted.len());
    let a: BTreeSet<&String> = prefix[..equal].iter().collect();
    let b: BTreeSet<&String> = wanted[..equal].iter().collect();
    a == b && prefix[equal..] == wanted[equal..]
}

/// `<table>_<columns>_idx`, cut to 63 bytes.
pub fn index_name(table: &Identifier, columns: &[Identifier]) -> Identifier {
    let mut base = table.as_str().to_owned();
    for c in columns {
        base.push('_');
        base.push_str(c.as_str());
    }
    // Names are plain ASCII, so any byte is a character boundary.
    base.truncate(MAX_LEN - "_idx".len());
    Identifier::parse(&format!("{base}_idx")).unwrap_or_else(|_| {
        // Cut right after an underscore the name would end in `__idx`, still valid; a reserved
        // word cannot end in `_idx`. Kept as a fallback only.
        Identifier::parse("pitwall_suggested_idx").expect("a plain name")
    })
}

/// The `CREATE INDEX CONCURRENTLY` statement of a suggestion.
pub fn create_statement(
    name: &Identifier,
    table: &Qualified,
    columns: &[Identifier],
    method: IndexMethod,
) -> String {
    let cols = columns
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match method {
        IndexMethod::Btree => format!("CREATE INDEX CONCURRENTLY {name} ON {table} ({cols})"),
        IndexMethod::GistTrgm => {
            format!("CREATE INDEX CONCURRENTLY {name} ON {table} USING gist ({cols} gist_trgm_ops)")
        }
    }
}

/// The advice for the current database's slow statements, read from `pg_stat_statements`
/// (cumulative since its last reset).
pub async fn suggest(
    pool: &PgPool,
    settings: &AdvisorSettings,
    timeout: Duration,
) -> Result<Advice> {
    let statements = catalog::top_statements(pool, catalog::STATEMENT_LIMIT, timeout).await?;
    advise(pool, &statements, settings, timeout).await
}

/// The advice for `statements` (say, a window's figures from the workload), of which only the
/// slow ones are looked at.
pub async fn advise(
    pool: &PgPool,
    statements: &[TopStatement],
    settings: &AdvisorSettings,
    timeout: Duration,
) -> Result<Advice> {
    let mut slow: Vec<&TopStatement> = statements
        .iter()
        .filter(|s| s.mean_ms >= settings.min_mean_ms && s.calls >= settings.min_calls)
        .collect();
    slow.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
    let shapes: Vec<std::result::Result<Shape, String>> =
        slow.iter().map(|s| parse(&s.query)).collect();
    let mut refs: Vec<TableRef> = shapes
        .iter()
        .filter_map(|s| s.as_ref().ok().map(|s| s.table.clone()))
        .collect();
    refs.sort();
    refs.dedup();
    let tables = catalog::tables(pool, &refs, timeout).await?;
    let mut oids: Vec<u32> = tables.iter().map(|(_, t)| t.oid).collect();
    oids.sort_unstable();
    oids.dedup();
    let indexes = if oids.is_empty() {
        Vec::new()
    } else {
        catalog::indexes(pool, Some(&oids), timeout).await?
    };
    let looked: Vec<(&TopStatement, Looked)> = slow
        .iter()
        .zip(shapes)
        .map(|(s, shape)| (*s, look(shape, &tables, &indexes, settings)))
        .collect();
    Ok(combine(looked, &indexes))
}

/// One statement after analysis: its table (checked names) and the analysis, or why not.
#[derive(Debug, Clone)]
struct Looked {
    table: Option<Qualified>,
    analysis: Analysis,
}

fn look(
    shape: std::result::Result<Shape, String>,
    tables: &[(TableRef, Table)],
    indexes: &[Index],
    settings: &AdvisorSettings,
) -> Looked {
    let not = |reason: String| Looked {
        table: None,
        analysis: Analysis {
            outcome: Outcome::NotAnalysed(reason),
            reasoning: Vec::new(),
        },
    };
    let shape = match shape {
        Ok(s) => s,
        Err(reason) => return not(reason),
    };
    let Some((_, table)) = tables.iter().find(|(r, _)| *r == shape.table) else {
        let written = match &shape.table.schema {
            Some(s) => format!("{s}.{}", shape.table.name),
            None => shape.table.name.clone(),
        };
        return not(format!("no table {written} in this database's search path"));
    };
    let qualified = match (
        Identifier::parse(&table.schema),
        Identifier::parse(&table.name),
    ) {
        (Ok(schema), Ok(name)) => Qualified { schema, name },
        (Err(e), _) | (_, Err(e)) => {
            return not(format!(
                "the table name {}.{} is not one Pitwall writes statements for ({e})",
                table.schema, table.name
            ));
        }
    };
    let mut analysis = analyse(&shape, table, indexes, settings);
    if let Outcome::Suggest { columns, .. } = &analysis.outcome
        && let Some(Err(e)) = columns
            .iter()
            .map(|c| Identifier::parse(c))
            .find(|r| r.is_err())
    {
        analysis.outcome = Outcome::NotAnalysed(format!(
            "a column name is not one Pitwall writes statements for ({e})"
        ));
    }
    Looked {
        table: Some(qualified),
        analysis,
    }
}

/// Builds the report: one suggestion per table and column list (a suggestion whose columns
/// lead another's is folded into it), heaviest first.
fn combine(looked: Vec<(&TopStatement, Looked)>, indexes: &[Index]) -> Advice {
    // The column lists suggested per table and method; a list that leads a longer one goes.
    let mut wanted: HashMap<(Qualified, IndexMethod), Vec<Vec<String>>> = HashMap::new();
    for (_, l) in &looked {
        if let (Some(t), Outcome::Suggest { columns, method }) = (&l.table, &l.analysis.outcome) {
            wanted
                .entry((t.clone(), *method))
                .or_default()
                .push(columns.clone());
        }
    }
    let widest = |table: &Qualified, method: IndexMethod, columns: &[String]| -> Vec<String> {
        wanted
            .get(&(table.clone(), method))
            .into_iter()
            .flatten()
            .filter(|w| w.len() > columns.len() && w[..columns.len()] == *columns)
            .max_by_key(|w| w.len())
            .cloned()
            .unwrap_or_else(|| columns.to_vec())
    };

    let mut suggestions: Vec<(Suggestion, f64)> = Vec::new();
    let mut statements = Vec::new();
    for (s, l) in looked {
        let helped = Helped {
            queryid: s.queryid,
            query: s.query.clone(),
            mean_ms: s.mean_ms,
            calls: s.calls,
        };
        let mut reasoning = l.analysis.reasoning;
        let verdict = match l.analysis.outcome {
            Outcome::Suggest { columns, method } => {
                let table = l.table.clone().expect("a suggestion has its table");
                let wide = widest(&table, method, &columns);
                if wide != columns {
                    reasoning.push(format!(
                        "An index on ({}) would do; the one on ({}) suggested for another statement serves it as well.",
                        columns.join(", "),
                        wide.join(", ")
                    ));
                }
                let ids: Vec<Identifier> = wide
                    .iter()
                    .map(|c| Identifier::parse(c).expect("checked in look"))
                    .collect();
                let pos = suggestions
                    .iter()
                    .position(|(x, _)| x.table == table && x.columns == ids && x.method == method);
                let pos = match pos {
                    Some(p) => {
                        let (x, weight) = &mut suggestions[p];
                        x.reasoning.push(format!(
                            "It also helps statement {} (mean {:.1} ms, {} calls).",
                            helped.queryid,
                            helped.mean_ms,
                            rows(helped.calls)
                        ));
                        x.helps.push(helped.clone());
                        *weight += s.total_ms;
                        p
                    }
                    None => {
                        let name = unique_name(&table, &ids, indexes, &suggestions);
                        let statement = create_statement(&name, &table, &ids, method);
                        let mut why = reasoning.clone();
                        why.insert(
                            0,
                            format!(
                                "Statement {} runs {} times at {:.1} ms on average.",
                                helped.queryid,
                                rows(helped.calls),
                                helped.mean_ms
                            ),
                        );
                        suggestions.push((
                            Suggestion {
                                table,
                                columns: ids,
                                method,
                                name,
                                statement,
                                helps: vec![helped.clone()],
                                reasoning: why,
                            },
                            s.total_ms,
                        ));
                        suggestions.len() - 1
                    }
                };
                Verdict::Suggested {
                    index: suggestions[pos].0.name.clone(),
                }
            }
            Outcome::Covered { index, columns } => Verdict::Covered { index, columns },
            Outcome::NoIndexNeeded(reason) => Verdict::NoIndexNeeded { reason },
            Outcome::NotAnalysed(reason) => Verdict::NotAnalysed { reason },
        };
        statements.push(StatementAdvice {
            statement: helped,
            table: l.table,
            verdict,
            reasoning,
        });
    }
    suggestions.sort_by(|a, b| b.1.total_cmp(&a.1));
    Advice {
        suggestions: suggestions.into_iter().map(|(s, _)| s).collect(),
        statements,
    }
}

/// The generated name, with a number added when an index (or another suggestion) in the
/// schema already has it.
fn unique_name(
    table: &Qualified,
    columns: &[Identifier],
    indexes: &[Index],
    taken: &[(Suggestion, f64)],
) -> Identifier {
    let base = index_name(&table.name, columns);
    let used = |n: &Identifier| {
        indexes
            .iter()
            .any(|i| i.schema == table.schema.as_str() && i.name == n.as_str())
            || taken
                .iter()
                .any(|(s, _)| s.table.schema == table.schema && s.name == *n)
    };
    if !used(&base) {
        return base;
    }
    for n in 1..100 {
        let mut stem = base.as_str().trim_end_matches("_idx").to_owned();
        let suffix = format!("_idx{n}");
        stem.truncate(MAX_LEN - suffix.len());
        if let Ok(id) = Identifier::parse(&format!("{stem}{suffix}"))
            && !used(&id)
        {
            return id;
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::catalog::Column;

    fn shape(q: &str) -> Shape {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn refused(q: &str) -> String {
        parse(q).expect_err(q)
    }

    fn cond(column: &str, op: Op) -> Condition {
        Condition {
            column: column.to_owned(),
            op,
        }
    }

    #[test]
    fn parses_single_table_filters_and_sorts() {
        let s = shape(
            "SELECT kind, count(*) FROM events WHERE user_id = $1 AND created_at > now() - interval '7 days' GROUP BY kind",
        );
        assert_eq!(
            s.table,
            TableRef {
                schema: None,
                name: "events".into()
            }
        );
        assert_eq!(
            s.conditions,
            [cond("user_id", Op::Eq), cond("created_at", Op::Gt)]
        );
        assert!(s.sort.is_empty());

        let s = shape(
            "SELECT * FROM app.Events e WHERE $1 < e.created_at AND (e.kind IN ($2, $3, $4)) AND \"Name\" LIKE $5 \
             AND deleted_at IS NULL AND email IS NOT NULL AND score BETWEEN $6 AND $7 AND kind <> $8 \
             ORDER BY e.created_at DESC, id LIMIT $9",
        );
        assert_eq!(s.table.schema.as_deref(), Some("app"));
        assert_eq!(s.table.name, "events", "unquoted names fold to lower case");
        assert_eq!(
            s.conditions,
            [
                cond("created_at", Op::Gt),
                cond("kind", Op::In(3)),
                cond("Name", Op::Like),
                cond("deleted_at", Op::IsNull),
                cond("email", Op::IsNotNull),
                cond("score", Op::Between),
                cond("kind", Op::Ne),
            ]
        );
        assert_eq!(
            s.sort,
            [
                SortKey {
                    column: "created_at".into(),
                    descending: true
                },
                SortKey {
                    column: "id".into(),
                    descending: false
                }
            ]
        );
        let s = shape("SELECT id FROM users WHERE email ILIKE $1 AND id >= $2::bigint");
        assert_eq!(s.conditions, [cond("email", Op::ILike), cond("id", Op::Ge)]);

        let s = shape(
            "UPDATE projects SET status = CASE status WHEN $1 THEN $2 ELSE $3 END WHERE id = $4",
        );
        assert_eq!(s.table.name, "projects");
        assert_eq!(s.conditions, [cond("id", Op::Eq)]);
        let s = shape("DELETE FROM sessions WHERE expires_at < now()");
        assert_eq!(s.conditions, [cond("expires_at", Op::Lt)]);
        // As pg_stat_statements writes the demo's statement: the interval's text is a parameter.
        let s = shape(
            "SELECT kind, count(*) FROM events WHERE user_id = $1 AND created_at > now() - interval $2 GROUP BY kind",
        );
        assert_eq!(
            s.conditions,
            [cond("user_id", Op::Eq), cond("created_at", Op::Gt)]
        );
        let s = shape("SELECT * FROM events WHERE id = ANY($1) FOR UPDATE SKIP LOCKED");
        assert_eq!(s.conditions, [cond("id", Op::Any)]);
        assert!(refused("SELECT * FROM a WHERE x = ANY(SELECT y FROM b)").contains("subquery"));
        let s = shape("/* app:web */ SELECT count(*) FROM events");
        assert!(s.conditions.is_empty());
    }

    #[test]
    fn unsupported_shapes_say_why() {
        let cases = [
            (
                "SELECT * FROM a JOIN b ON a.id = b.a_id WHERE a.x = $1",
                "JOIN",
            ),
            ("SELECT * FROM a, b WHERE a.x = $1", "several tables"),
            ("SELECT * FROM a WHERE x = $1 OR y = $2", "OR"),
            ("SELECT * FROM a WHERE x IN (SELECT id FROM b)", "subquery"),
            ("SELECT * FROM a WHERE EXISTS (SELECT 1 FROM b)", "subquery"),
            (
                "SELECT * FROM (SELECT * FROM a) s WHERE x = $1",
                "subquery in FROM",
            ),
            (
                "SELECT (SELECT max(id) FROM b), x FROM a WHERE x = $1",
                "subquery",
            ),
            ("SELECT * FROM a WHERE lower(email) = $1", "expression"),
            ("SELECT * FROM a WHERE x = y", "two columns"),
            (
                "SELECT * FROM a WHERE x = y + $1",
                "expression over columns",
            ),
            ("SELECT * FROM a WHERE NOT x = $1", "NOT"),
            ("SELECT * FROM a WHERE x NOT IN ($1, $2)", "NOT IN"),
            ("SELECT * FROM a WHERE payload @> $1", "operator"),
            (
                "SELECT * FROM a WHERE x = $1 UNION SELECT * FROM b",
                "UNION",
            ),
            ("WITH t AS (SELECT 1) SELECT * FROM a WHERE x = $1", "WITH"),
            (
                "SELECT * FROM a WHERE x = $1 ORDER BY lower(y)",
                "ORDER BY an expression",
            ),
            ("INSERT INTO a (x) VALUES ($1)", "INSERT"),
            ("VACUUM a", "only SELECT, UPDATE and DELETE"),
            ("SELECT 1; SELECT 2", "several statements"),
            ("SELEKT * FROM a", "could not be parsed"),
            ("SELECT * FROM a WHERE b.x = $1", "another table"),
        ];
        for (q, reason) in cases {
            let got = refused(q);
            assert!(got.contains(reason), "{q}: {got}");
        }
        let long = format!(
            "SELECT * FROM a WHERE x = $1 AND y = '{}'",
            "z".repeat(10_000)
        );
        assert!(refused(&long).contains("too large"));
    }

    #[test]
    fn estimates_rows_the_pghero_way() {
        let s = |null_frac, n_distinct| ColumnStats {
            null_frac,
            n_distinct,
        };
        let total = 100_000.0;
        assert_eq!(estimate(s(0.0, 1000.0), total, total, Op::Eq), 100.0);
        assert_eq!(estimate(s(0.5, 1000.0), total, total, Op::Eq), 50.0);
        // Negative n_distinct: a fraction of the rows are distinct (-1: unique).
        assert_eq!(estimate(s(0.0, -1.0), total, total, Op::Eq), 1.0);
        assert_eq!(estimate(s(0.0, -0.5), total, total, Op::Eq), 2.0);
        assert_eq!(estimate(s(0.0, 1000.0), total, total, Op::In(3)), 300.0);
        assert_eq!(estimate(s(0.0, 1000.0), total, total, Op::Gt), 10_010.0);
        assert_eq!(estimate(s(0.0, 1000.0), total, total, Op::Like), 10_010.0);
        assert_eq!(estimate(s(0.0, 4.0), total, total, Op::Ne), 75_000.0);
        assert_eq!(estimate(s(0.2, 4.0), total, total, Op::IsNull), 20_000.0);
        assert_eq!(estimate(s(0.2, 4.0), total, total, Op::IsNotNull), 80_000.0);
        // After a first column only `rows_left` remain.
        assert_eq!(estimate(s(0.0, 5.0), total, 100.0, Op::Eq), 20.0);
        assert_eq!(estimate(s(0.0, 0.0), total, total, Op::Eq), 0.0);
    }

    fn table(reltuples: f64, columns: &[(&str, Option<(f64, f64)>)]) -> Table {
        Table {
            oid: 42,
            schema: "public".into(),
            name: "events".into(),
            reltuples,
            columns: columns
                .iter()
                .enumerate()
                .map(|(i, (name, stats))| Column {
                    name: (*name).into(),
                    attnum: i as i16 + 1,
                    stats: stats.map(|(null_frac, n_distinct)| ColumnStats {
                        null_frac,
                        n_distinct,
                    }),
                })
                .collect(),
        }
    }

    fn events() -> Table {
        table(
            200_000.0,
            &[
                ("id", Some((0.0, -1.0))),
                ("project_id", Some((0.0, 5_000.0))),
                ("user_id", Some((0.0, 2_000.0))),
                ("kind", Some((0.0, 5.0))),
                ("created_at", Some((0.0, -0.2))),
                ("name", Some((0.0, -0.9))),
                ("deleted_at", Some((0.9, 100.0))),
            ],
        )
    }

    fn index(name: &str, method: &str, columns: &[&str]) -> Index {
        Index {
            oid: name.len() as u32 + 1000,
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
            size_bytes: 8192,
            scans: 0,
            building: false,
        }
    }

    fn outcome(q: &str, indexes: &[Index]) -> (Outcome, Vec<String>) {
        let a = analyse(&shape(q), &events(), indexes, &AdvisorSettings::default());
        (a.outcome, a.reasoning)
    }

    fn suggests(q: &str, indexes: &[Index]) -> Vec<String> {
        match outcome(q, indexes) {
            (Outcome::Suggest { columns, .. }, _) => columns,
            (other, why) => panic!("{q}: {other:?} {why:#?}"),
        }
    }

    #[test]
    fn orders_columns_most_selective_first_and_prunes() {
        let pkey = index("events_pkey", "btree", &["id"]);
        let (o, why) = outcome(
            "SELECT count(*) FROM events WHERE project_id = $1",
            std::slice::from_ref(&pkey),
        );
        assert_eq!(
            o,
            Outcome::Suggest {
                columns: vec!["project_id".into()],
                method: IndexMethod::Btree
            }
        );
        let why = why.join("\n");
        assert!(why.contains("about 200,000 rows"), "{why}");
        assert!(why.contains("project_id = … leaves about 40 rows"), "{why}");
        assert!(why.contains("project_id goes first"), "{why}");
        assert!(why.contains("events_pkey on (id)"), "{why}");

        // kind narrows 100 rows to 20 (≤ 30 %): kept, after the more selective user_id.
        assert_eq!(
            suggests("SELECT * FROM events WHERE kind = $1 AND user_id = $2", &[]),
            ["user_id", "kind"]
        );
        // Fewer than 50 rows after project_id: kind is not added.
        let (_, why) = outcome(
            "SELECT * FROM events WHERE kind = $1 AND project_id = $2",
            &[],
        );
        assert!(
            why.join("\n")
                .contains("kind is left out: about 40 rows remain")
        );
        // A range stops the key; created_at cuts 100 rows to ~10: kept.
        assert_eq!(
            suggests(
                "SELECT kind, count(*) FROM events WHERE user_id = $1 AND created_at > now() - interval '7 days' GROUP BY kind",
                &[]
            ),
            ["user_id", "created_at"]
        );
        // ORDER BY follows equalities.
        assert_eq!(
            suggests(
                "SELECT * FROM events WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20",
                &[]
            ),
            ["user_id", "created_at"]
        );
        // … but not a range.
        let (o, why) = outcome(
            "SELECT * FROM events WHERE created_at > $1 ORDER BY user_id",
            &[],
        );
        assert_eq!(
            o,
            Outcome::Suggest {
                columns: vec!["created_at".into()],
                method: IndexMethod::Btree
            }
        );
        assert!(why.join("\n").contains("ORDER BY user_id is not added"));
        // A sort alone.
        assert_eq!(
            suggests("SELECT * FROM events ORDER BY created_at LIMIT 10", &[]),
            ["created_at"]
        );
    }

    #[test]
    fn declines_where_no_index_helps() {
        let small = table(
            300.0,
            &[("id", Some((0.0, -1.0))), ("x", Some((0.0, 10.0)))],
        );
        let a = analyse(
            &shape("SELECT * FROM events WHERE x = $1"),
            &small,
            &[],
            &AdvisorSettings::default(),
        );
        assert!(matches!(&a.outcome, Outcome::NoIndexNeeded(r) if r.contains("under 500")));

        let (o, _) = outcome("SELECT count(*) FROM events", &[]);
        assert!(matches!(o, Outcome::NoIndexNeeded(r) if r.contains("no WHERE")));
        let (o, why) = outcome("SELECT * FROM events WHERE kind <> $1", &[]);
        assert!(matches!(o, Outcome::NoIndexNeeded(_)), "{o:?}");
        assert!(why.join("\n").contains("sequential scan"));

        let (o, _) = outcome("SELECT * FROM events WHERE nope = $1", &[]);
        assert!(matches!(o, Outcome::NotAnalysed(r) if r.contains("no column nope")));
        let unanalysed = table(10_000.0, &[("x", None)]);
        let a = analyse(
            &shape("SELECT * FROM events WHERE x = $1"),
            &unanalysed,
            &[],
            &AdvisorSettings::default(),
        );
        assert!(
            matches!(&a.outcome, Outcome::NotAnalysed(r) if r.contains("run ANALYZE public.events"))
        );
        let never = table(-1.0, &[("x", None)]);
        let a = analyse(
            &shape("SELECT * FROM events WHERE x = $1"),
            &never,
            &[],
            &AdvisorSettings::default(),
        );
        assert!(matches!(&a.outcome, Outcome::NotAnalysed(r) if r.contains("never been analysed")));
    }

    #[test]
    fn an_existing_index_with_the_columns_leading_covers() {
        let q = "SELECT * FROM events WHERE kind = $1 AND user_id = $2";
        let by = |i: Index| outcome(q, &[i]).0;
        let covered = |name: &str| Outcome::Covered {
            index: format!("public.{name}"),
            columns: Vec::new(),
        };
        let strip = |o: Outcome| match o {
            Outcome::Covered { index, .. } => Outcome::Covered {
                index,
                columns: Vec::new(),
            },
            other => other,
        };
        assert_eq!(
            strip(by(index("a", "btree", &["user_id", "kind"]))),
            covered("a")
        );
        // Equalities in any order; a longer index still covers.
        assert_eq!(
            strip(by(index("b", "btree", &["kind", "user_id", "created_at"]))),
            covered("b")
        );
        // Not: a prefix of the suggestion only, another method, invalid, or partial.
        assert!(matches!(
            by(index("c", "btree", &["user_id"])),
            Outcome::Suggest { .. }
        ));
        assert!(matches!(
            by(index("d", "brin", &["user_id", "kind"])),
            Outcome::Suggest { .. }
        ));
        let mut invalid = index("e", "btree", &["user_id", "kind"]);
        invalid.valid = false;
        assert!(matches!(by(invalid), Outcome::Suggest { .. }));
        let mut partial = index("f", "btree", &["user_id", "kind"]);
        partial.predicate = Some("{OPEXPR}".into());
        let (o, why) = outcome(q, &[partial]);
        assert!(matches!(o, Outcome::Suggest { .. }));
        assert!(why.join("\n").contains("Partial indexes are not counted"));
        // After a range the order matters.
        let range = "SELECT * FROM events WHERE user_id = $1 AND created_at > $2";
        assert!(matches!(
            outcome(range, &[index("g", "btree", &["created_at", "user_id"])]).0,
            Outcome::Suggest { .. }
        ));
        assert!(matches!(
            outcome(range, &[index("h", "btree", &["user_id", "created_at"])]).0,
            Outcome::Covered { .. }
        ));
        // A hash index serves one equality.
        assert!(matches!(
            outcome(
                "SELECT * FROM events WHERE project_id = $1",
                &[index("i", "hash", &["project_id"])]
            )
            .0,
            Outcome::Covered { .. }
        ));

        assert!(covers(
            &[Some("a".into()), Some("b".into())],
            &["b".into(), "a".into()],
            2
        ));
        assert!(!covers(
            &[Some("a".into()), Some("b".into())],
            &["b".into(), "a".into()],
            1
        ));
        assert!(!covers(&[None, Some("b".into())], &["a".into()], 1));
        assert!(!covers(&[Some("a".into())], &["a".into(), "b".into()], 2));
    }

    #[test]
    fn a_selective_pattern_gets_a_trigram_index() {
        let (o, why) = outcome("SELECT * FROM events WHERE name LIKE $1 AND kind = $2", &[]);
        assert_eq!(
            o,
            Outcome::Suggest {
                columns: vec!["name".into()],
                method: IndexMethod::GistTrgm
            }
        );
        assert!(why.join("\n").contains("pg_trgm"));
        let mut trgm = index("events_name_trgm", "gin", &["name"]);
        trgm.opclasses = vec!["gin_trgm_ops".into()];
        let (o, _) = outcome(
            "SELECT * FROM events WHERE name LIKE $1 AND kind = $2",
            &[trgm],
        );
        assert!(matches!(o, Outcome::Covered { .. }), "{o:?}");
    }

    #[test]
    fn names_and_statements_are_quoted_and_cut_to_63_bytes() {
        let id = |s: &str| Identifier::parse(s).unwrap();
        let table = Qualified::parse("events").unwrap();
        let cols = [id("user_id"), id("created_at")];
        let name = index_name(&table.name, &cols);
        assert_eq!(name.as_str(), "events_user_id_created_at_idx");
        assert_eq!(
            create_statement(&name, &table, &cols, IndexMethod::Btree),
            "CREATE INDEX CONCURRENTLY \"events_user_id_created_at_idx\" ON \"public\".\"events\" (\"user_id\", \"created_at\")"
        );
        assert_eq!(
            create_statement(
                &id("events_name_idx"),
                &table,
                &[id("name")],
                IndexMethod::GistTrgm
            ),
            "CREATE INDEX CONCURRENTLY \"events_name_idx\" ON \"public\".\"events\" USING gist (\"name\" gist_trgm_ops)"
        );
        // Names travel as bare strings and are checked again when read back.
        let json = serde_json::to_string(&table).unwrap();
        assert_eq!(json, r#"{"schema":"public","name":"events"}"#);
        assert_eq!(serde_json::from_str::<Qualified>(&json).unwrap(), table);
        let bad = serde_json::from_str::<Qualified>(r#"{"schema":"public","name":"x\";drop"}"#);
        assert!(bad.unwrap_err().to_string().contains("not a plain name"));
        let long = index_name(&id(&"t".repeat(40)), &[id(&"c".repeat(40)), id("d")]);
        assert_eq!(long.as_str().len(), 63);
        assert!(long.as_str().ends_with("_idx"));
        assert!(
            long.as_str()
                .starts_with(&format!("{}_ccc", "t".repeat(40)))
        );
    }

    fn top(queryid: i64, query: &str, mean_ms: f64, calls: f64) -> TopStatement {
        TopStatement {
            queryid,
            query: query.into(),
            calls,
            total_ms: mean_ms * calls,
            mean_ms,
        }
    }

    #[test]
    fn one_suggestion_per_index_and_a_leading_one_folds_into_a_wider() {
        let t = events();
        let tables = vec![(
            TableRef {
                schema: None,
                name: "events".into(),
            },
            t,
        )];
        let taken = index("events_project_id_idx", "btree", &["id"]);
        let indexes = vec![taken];
        let settings = AdvisorSettings::default();
        let statements = [
            top(1, "SELECT * FROM events WHERE user_id = $1", 30.0, 200.0),
            top(
                2,
                "SELECT * FROM events WHERE user_id = $1 AND created_at > $2",
                25.0,
                500.0,
            ),
            top(
                3,
                "SELECT * FROM events WHERE project_id = $1",
                40.0,
                1000.0,
            ),
            top(
                4,
                "SELECT * FROM events WHERE project_id = $1 LIMIT $2",
                45.0,
                100.0,
            ),
            top(
                5,
                "SELECT * FROM events e JOIN users u ON u.id = e.user_id",
                90.0,
                100.0,
            ),
            top(6, "SELECT * FROM missing WHERE x = $1", 90.0, 100.0),
        ];
        let looked = statements
            .iter()
            .map(|s| (s, look(parse(&s.query), &tables, &indexes, &settings)))
            .collect();
        let advice = combine(looked, &indexes);
        assert_eq!(advice.suggestions.len(), 2, "{advice:#?}");
        let first = &advice.suggestions[0];
        assert_eq!(first.columns, [Identifier::parse("project_id").unwrap()]);
        assert_eq!(
            first.name.as_str(),
            "events_project_id_idx1",
            "the name is taken"
        );
        assert_eq!(
            first.helps.iter().map(|h| h.queryid).collect::<Vec<_>>(),
            [3, 4]
        );
        let second = &advice.suggestions[1];
        assert_eq!(
            second
                .columns
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
            ["user_id", "created_at"]
        );
        assert_eq!(
            second.helps.iter().map(|h| h.queryid).collect::<Vec<_>>(),
            [1, 2]
        );
        let verdict = |id: i64| {
            advice
                .statements
                .iter()
                .find(|s| s.statement.queryid == id)
                .unwrap()
                .verdict
                .clone()
        };
        assert_eq!(
            verdict(1),
            Verdict::Suggested {
                index: Identifier::parse("events_user_id_created_at_idx").unwrap()
            }
        );
        assert!(verdict(5).summary().starts_with("not analysed: a JOIN"));
        assert!(verdict(6).summary().contains("no table missing"));
    }
}
