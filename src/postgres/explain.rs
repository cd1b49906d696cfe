//! EXPLAIN of a statement from the workload, safely: inside a transaction that is read-only,
//! bounded by a statement timeout and always rolled back. A normalized statement (constants as
//! `$1`) is planned generically through a prepared statement with NULL arguments; ANALYZE runs
//! only statements without parameters that read (`SELECT`, `WITH`, `VALUES`, `TABLE`).

use std::time::Duration;

use serde_json::Value;
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
    let fail = |e: sqlx::Error| crate::link::pg_error(&e, timeout);
    let mut conn = pool.acquire().await.map_err(fail)?;
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
