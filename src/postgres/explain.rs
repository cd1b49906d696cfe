//! EXPLAIN of a statement from the workload, safely: inside a transaction that is read-only,
//! bounded by a statement timeout and always rolled back. A normalized statement (constants as
//! `$1`) is planned generically through a prepared statement with NULL arguments; ANALYZE runs
//! only statements without parameters that read (`SELECT`, `WITH`, `VALUES`, `TABLE`) and call
//! no function that is not `IMMUTABLE` or `STABLE` (a read-only transaction still lets
//! `pg_terminate_backend` or `pg_sleep` run): every function the statement calls is looked up
//! in `pg_proc` first, and one that is volatile or unknown stops it, as does an operator whose
//! function is volatile.

use std::time::Duration;

use serde_json::Value;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Word};
use sqlx::Row;
use sqlx::postgres::PgPool;

use super::{Explained, PlanNode};

/// The highest `$n` in `query` (0 when it has no parameters).
pub fn parameters(query: &str) -> usize {
    let bytes = query.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let digits: String = query[i + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse::<usize>() {
                max = max.max(n);
            }
            i += 1 + digits.len();
        } else {
            i += 1;
        }
    }
    max
}

/// Whether `query` is a statement that only reads (by its first word; the read-only transaction
/// enforces it as it runs).
pub fn reads_only(query: &str) -> bool {
    let first = query
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(first.as_str(), "select" | "with" | "values" | "table")
}

/// The plan of `query`; with `analyze`, run it and show what happened.
pub async fn explain(
    pool: &PgPool,
    query: &str,
    analyze: bool,
    timeout: Duration,
) -> Result<Explained, String> {
    let params = parameters(query);
    if analyze && params > 0 {
        return Err(format!(
            "this statement has parameters ($1 to ${params}) whose values are not known: its plan can be shown, but it cannot be run"
        ));
    }
    if analyze && !reads_only(query) {
        return Err("EXPLAIN ANALYZE runs the statement: only statements that read (SELECT, WITH, VALUES, TABLE) can be analysed".into());
    }
    let (calls, operators) = if analyze {
        (calls(query)?, operators(query))
    } else {
        Default::default()
    };
    let fail = |e: sqlx::Error| crate::link::pg_error(&e, timeout);
    let refused = |e: Checked| match e {
        Checked::Refused(why) => why,
        Checked::Failed(e) => fail(e),
    };
    let mut conn = pool.acquire().await.map_err(fail)?;
    for call in &calls {
        check_volatility(&mut conn, call).await.map_err(refused)?;
    }
    for operator in &operators {
        check_operator(&mut conn, operator).await.map_err(refused)?;
    }
    let row = plan(&mut conn, query, params, analyze, timeout).await;
    if params > 0 {
        // A prepared statement outlives the transaction: always let it go.
        let _ = sqlx::query("DEALLOCATE pitwall_explain")
            .execute(&mut *conn)
            .await;
    }
    let row = row.map_err(fail)?;
    let json: Value = row
        .try_get::<sqlx::types::Json<Value>, _>(0)
        .map_err(fail)?
        .0;
    let top = json.get(0).ok_or("EXPLAIN returned no plan")?;
    let tree = node(top.get("Plan").ok_or("EXPLAIN returned no plan")?);
    let mut text = String::new();
    write_text(&tree, 0, &mut text);
    for (key, label) in [
        ("Planning Time", "Planning time"),
        ("Execution Time", "Execution time"),
    ] {
        if let Some(ms) = top.get(key).and_then(Value::as_f64) {
            text.push_str(&format!("{label}: {ms:.3} ms\n"));
        }
    }
    Ok(Explained {
        text,
        tree,
        analyzed: analyze,
        generic: params > 0,
    })
}

/// A function a statement calls, as written: its schema when qualified, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    schema: Option<String>,
    name: String,
    /// Written as an SQL keyword (`IN (`, `VALUES (`): syntax, unless a function has the name.
    keyword: bool,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Every name `query` calls (a name followed by `(`), once each, after checking that sqlparser's
/// PostgreSQL dialect parses it: lower-cased unless quoted; a name with a column list after
/// `AS` or `WITH` (`AS t(a, b)`) is not a call.
fn calls(query: &str) -> Result<Vec<Call>, String> {
    let dialect = PostgreSqlDialect {};
    let refused = |e: String| {
        format!(
            "EXPLAIN ANALYZE runs the statement, and what it calls could not be checked ({e}): its plan can be shown, but it is not run"
        )
    };
    Parser::parse_sql(&dialect, query).map_err(|e| refused(e.to_string()))?;
    let tokens = Tokenizer::new(&dialect, query)
        .tokenize()
        .map_err(|e| refused(e.to_string()))?;
    let tokens: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let at = |i: usize, back: usize| i.checked_sub(back).map(|j| tokens[j]);
    let mut calls: Vec<Call> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let Token::Word(word) = token else { continue };
        if !matches!(tokens.get(i + 1), Some(Token::LParen)) {
            continue;
        }
        let (schema, before) = match (at(i, 1), at(i, 2)) {
            (Some(Token::Period), Some(Token::Word(schema))) => (Some(name(schema)), at(i, 3)),
            (before, _) => (None, before),
        };
        let column_list = schema.is_none()
            && matches!(before, Some(Token::Word(w))
                if w.quote_style.is_none()
                    && matches!(w.keyword, Keyword::AS | Keyword::WITH | Keyword::RECURSIVE));
        let call = Call {
            schema,
            name: name(word),
            keyword: word.quote_style.is_none() && word.keyword != Keyword::NoKeyword,
        };
        if !column_list && !calls.contains(&call) {
            calls.push(call);
        }
    }
    Ok(calls)
}

/// Every operator `query` may use (`=`, `||`, a custom `===`), once each: each operator token,
/// and each run of them written together (the tokenizer splits `===` into `==` and `=`).
fn operators(query: &str) -> Vec<String> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, query)
        .tokenize()
        .unwrap_or_default();
    fn add(text: &str, found: &mut Vec<String>) {
        if !text.is_empty() && !found.iter().any(|f| f == text) {
            found.push(text.to_owned());
        }
    }
    let mut found: Vec<String> = Vec::new();
    let mut run = String::new();
    for token in tokens.iter().chain([&Token::EOF]) {
        let text = token.to_string();
        let operator = !matches!(token, Token::Word(_) | Token::Whitespace(_) | Token::EOF)
            && !text.is_empty()
            && text.chars().all(|c| "+-*/<>=~!@#%^&|`?".contains(c));
        if operator {
            add(&text, &mut found);
            run.push_str(&text);
        } else {
            add(&run, &mut found);
            run.clear();
        }
    }
    found
}

/// An identifier as PostgreSQL reads it: folded to lower case unless quoted.
fn name(word: &Word) -> String {
    match word.quote_style {
        Some(_) => word.value.clone(),
        None => word.value.to_lowercase(),
    }
}

/// Refuses `operator` when a visible operator of that name is backed by a function that is not
/// `IMMUTABLE` or `STABLE`. A name no operator has is syntax (`*` of `SELECT *`), and passes.
async fn check_operator(conn: &mut sqlx::PgConnection, operator: &str) -> Result<(), Checked> {
    let volatile: Option<String> = sqlx::query_scalar(
        "SELECT p.oid::regprocedure::text FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode \
         WHERE o.oprname = $1 AND pg_operator_is_visible(o.oid) AND p.provolatile NOT IN ('i', 's') \
         LIMIT 1",
    )
    .bind(operator)
    .fetch_optional(&mut *conn)
    .await
    .map_err(Checked::Failed)?;
    match volatile {
        Some(function) => Err(Checked::Refused(format!(
            "EXPLAIN ANALYZE runs the statement, and it uses operator `{operator}`, whose function `{function}` is volatile: only statements whose functions are all immutable or stable are analysed; its plan can be shown"
        ))),
        None => Ok(()),
    }
}

/// Why a call stops EXPLAIN ANALYZE.
enum Checked {
    /// The call is volatile, or no function has its name; the reason.
    Refused(String),
    /// The catalog could not be read.
    Failed(sqlx::Error),
}

/// Refuses `call` unless every function it may resolve to (by its schema, or on the search path)
/// is `IMMUTABLE` or `STABLE`. A keyword no function is named after is syntax, and passes.
async fn check_volatility(conn: &mut sqlx::PgConnection, call: &Call) -> Result<(), Checked> {
    let volatility: Vec<String> = sqlx::query_scalar(
        "SELECT p.provolatile::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.proname = $1 \
           AND CASE WHEN $2::text IS NULL THEN pg_function_is_visible(p.oid) ELSE n.nspname = $2 END",
    )
    .bind(&call.name)
    .bind(call.schema.as_deref())
    .fetch_all(&mut *conn)
    .await
    .map_err(Checked::Failed)?;
    if volatility.is_empty() && !call.keyword {
        return Err(Checked::Refused(format!(
            "EXPLAIN ANALYZE runs the statement, and it calls `{call}`, which is no function this database knows: its plan can be shown, but it is not run"
        )));
    }
    if volatility.iter().any(|v| v != "i" && v != "s") {
        return Err(Checked::Refused(format!(
            "EXPLAIN ANALYZE runs the statement, and it calls `{call}`, which is volatile (it may change something, such as ending a session, or wait): only statements whose functions are all immutable or stable are analysed; its plan can be shown"
        )));
    }
    Ok(())
}

/// Runs EXPLAIN of `query` in a read-only transaction that is rolled back.
async fn plan(
    conn: &mut sqlx::PgConnection,
    query: &str,
    params: usize,
    analyze: bool,
    timeout: Duration,
) -> Result<sqlx::postgres::PgRow, sqlx::Error> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    for set in [
        format!("SET LOCAL statement_timeout = {}", timeout.as_millis()),
        "SET LOCAL lock_timeout = 500".to_owned(),
        "SET TRANSACTION READ ONLY".to_owned(),
        "SET LOCAL plan_cache_mode = force_generic_plan".to_owned(),
    ] {
        sqlx::query(&set).execute(&mut *tx).await?;
    }
    let options = if analyze {
        "FORMAT JSON, ANALYZE, BUFFERS"
    } else {
        "FORMAT JSON"
    };
    let explained = if params == 0 {
        format!("EXPLAIN ({options}) {query}")
    } else {
        sqlx::query(&format!("PREPARE pitwall_explain AS {query}"))
            .execute(&mut *tx)
            .await?;
        let nulls = vec!["NULL"; params].join(", ");
        format!("EXPLAIN ({options}) EXECUTE pitwall_explain({nulls})")
    };
    let row = sqlx::query(&explained).fetch_one(&mut *tx).await?;
    tx.rollback().await?;
    Ok(row)
}

/// One node of EXPLAIN's JSON, and its children.
pub fn node(v: &Value) -> PlanNode {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
    // A write's node is `ModifyTable`; its operation says which (`Update on items`).
    let mut label = match s("Node Type").unwrap_or("?") {
        "ModifyTable" => s("Operation").unwrap_or("ModifyTable").to_owned(),
        other => other.to_owned(),
    };
    if let Some(index) = s("Index Name") {
        label.push_str(&format!(" using {index}"));
    }
    if let Some(relation) = s("Relation Name") {
        label.push_str(&format!(" on {relation}"));
        if let Some(alias) = s("Alias").filter(|a| *a != relation) {
            label.push_str(&format!(" {alias}"));
        }
    }
    let detail = [
        "Index Cond",
        "Filter",
        "Hash Cond",
        "Join Filter",
        "Sort Key",
    ]
    .iter()
    .filter_map(|k| {
        let value = match v.get(*k)? {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            other => other.as_str()?.to_owned(),
        };
        Some(format!("{k}: {value}"))
    })
    .collect();
    PlanNode {
        label,
        detail,
        cost: f("Total Cost").unwrap_or(0.0),
        rows: f("Plan Rows").unwrap_or(0.0),
        actual_ms: f("Actual Total Time"),
        actual_rows: f("Actual Rows"),
        loops: f("Actual Loops"),
        children: v
            .get("Plans")
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |plans| plans.iter().map(node).collect()),
    }
}

fn write_text(n: &PlanNode, depth: usize, out: &mut String) {
    let indent = "      ".repeat(depth);
    let arrow = if depth == 0 { "" } else { "->  " };
    out.push_str(&format!(
        "{indent}{arrow}{}  (cost={:.2} rows={:.0})",
        n.label, n.cost, n.rows
    ));
    if let (Some(ms), Some(rows)) = (n.actual_ms, n.actual_rows) {
        out.push_str(&format!(
            " (actual time={ms:.3} ms rows={rows:.0} loops={:.0})",
            n.loops.unwrap_or(1.0)
        ));
    }
    out.push('\n');
    for d in &n.detail {
        out.push_str(&format!("{indent}      {d}\n"));
    }
    for c in &n.children {
        write_text(c, depth + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_reading_statements() {
        assert_eq!(parameters("select * from t where a = $1 and b = $12"), 12);
        assert_eq!(parameters("select '$' || x from t"), 0);
        assert!(reads_only("  SELECT 1"));
        assert!(reads_only("with x as (select 1) select * from x"));
        assert!(!reads_only("update t set a = $1"));
        assert!(!reads_only("delete from t"));
    }

    #[test]
    fn the_functions_a_statement_calls_are_found_however_written() {
        let names = |q: &str| -> Vec<String> {
            calls(q)
                .unwrap()
                .into_iter()
                .map(|c| c.to_string())
                .collect()
        };
        assert_eq!(
            names("SELECT pg_terminate_backend(pid) FROM victims"),
            ["pg_terminate_backend"]
        );
        assert_eq!(
            names("select PG_CATALOG.Pg_Sleep /* wait */ (x), \"Mixed\"(1) from t"),
            ["pg_catalog.pg_sleep", "Mixed"]
        );
        // Column lists after WITH and AS are no calls; `AS (` is a keyword, looked up (and
        // passed when no function has its name).
        let found =
            calls("WITH c(n) AS (SELECT count(*) FROM t) SELECT lower(n::text) FROM c AS d(n)")
                .unwrap();
        let called: Vec<String> = found.iter().map(|c| c.to_string()).collect();
        assert_eq!(called, ["as", "count", "lower"]);
        assert!(found[0].keyword);
        let all = calls("SELECT 1 WHERE 2 IN (SELECT 3) AND EXISTS (SELECT 4)").unwrap();
        assert!(all.iter().all(|c| c.keyword), "{all:?}");
        assert_eq!(
            operators("SELECT a || 'x', b FROM t WHERE a #=# b AND c >= 1 AND d = 2"),
            ["||", "#=#", ">=", "="]
        );
        assert!(
            calls("SELEC pg_sleep(1)")
                .unwrap_err()
                .contains("could not be checked")
        );
    }

    #[test]
    fn json_plans_become_trees_and_text() {
        let plan = serde_json::json!({"Node Type": "Limit", "Total Cost": 10.5, "Plan Rows": 20,
            "Plans": [{"Node Type": "Index Scan", "Index Name": "events_user_idx", "Relation Name": "events",
                "Alias": "e", "Total Cost": 8.0, "Plan Rows": 20, "Index Cond": "(user_id = $1)",
                "Actual Total Time": 0.25, "Actual Rows": 20, "Actual Loops": 1}]});
        let tree = node(&plan);
        assert_eq!(tree.label, "Limit");
        let scan = &tree.children[0];
        assert_eq!(scan.label, "Index Scan using events_user_idx on events e");
        assert_eq!(scan.detail, ["Index Cond: (user_id = $1)"]);
        let mut text = String::new();
        write_text(&tree, 0, &mut text);
        assert_eq!(
            text,
            "Limit  (cost=10.50 rows=20)\n      ->  Index Scan using events_user_idx on events e  (cost=8.00 rows=20) (actual time=0.250 ms rows=20 loops=1)\n            Index Cond: (user_id = $1)\n"
        );
    }
}
