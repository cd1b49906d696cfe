//! Cache-warming recipes, as the config declares them on a Redis target: a query against a
//! PostgreSQL target, a key made from each row's columns, the value (the row as JSON, or one
//! column), a TTL with jitter, tags to register after the value, refresh-ahead and a schedule.
//! Checked when the config is read, so a bad recipe stops the console at start with its name.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A key or tag made from a row's columns: `cache:project:{id}:summary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Column(String),
}

impl Template {
    /// Parses `text`: literal text with `{column}` placeholders (lowercase letters, digits and
    /// `_`); the refusal says what is wrong and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > 512 {
            return Err(format!(
                "template {text:?} must be 1 to 512 bytes, not {}",
                text.len()
            ));
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "template {text:?} contains {c:?}: keys and tags have no spaces or control characters"
            ));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    parts.push(Part::Text(rest.to_owned()));
                    rest = "";
                }
                Some(i) if rest[i..].starts_with('}') => {
                    return Err(format!(
                        "template {text:?} has a `}}` without its `{{` at byte {}",
                        text.len() - rest.len() + i
                    ));
                }
                Some(i) => {
                    if i > 0 {
                        parts.push(Part::Text(rest[..i].to_owned()));
                    }
                    let Some(end) = rest[i..].find('}') else {
                        return Err(format!("template {text:?} has a `{{` that is never closed"));
                    };
                    let name = &rest[i + 1..i + end];
                    let ok = !name.is_empty()
                        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                        && name
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                    if !ok {
                        return Err(format!(
                            "template {text:?}: `{{{name}}}` is not a column name (lowercase letters, digits and `_`)"
                        ));
                    }
                    parts.push(Part::Column(name.to_owned()));
                    rest = &rest[i + end + 1..];
                }
            }
        }
        Ok(Self {
            text: text.to_owned(),
            parts,
        })
    }

    /// The columns it reads.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Column(c) => Some(c.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Whether it names no column: the same key for every row.
    pub fn is_constant(&self) -> bool {
        self.columns().next().is_none()
    }

    /// The template filled in from `row`; a missing or null column, or an object or array in
    /// one, is refused with its name.
    pub fn render(
        &self,
        row: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, String> {
        use serde_json::Value;
        let mut out = String::with_capacity(self.text.len() + 16);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Column(c) => match row.get(c) {
                    None => return Err(format!("the query returns no column `{c}`")),
                    Some(Value::Null) => return Err(format!("column `{c}` is null")),
                    Some(Value::String(s)) => out.push_str(s),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => out.push_str(&v.to_string()),
                    Some(_) => {
                        return Err(format!(
                            "column `{c}` holds an object or array, not a key part"
                        ));
                    }
                },
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for Template {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<Template> for String {
    fn from(t: Template) -> String {
        t.text
    }
}

/// What each key holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarmValue {
    /// The whole row as a JSON object.
    Row,
    /// One column: text as it is, anything else as JSON.
    Column(String),
}

/// The default of a recipe's `max_rows`.
pub const DEFAULT_MAX_ROWS: u64 = 1_000_000;
/// The highest `max_rows` a recipe may set.
pub const MAX_ROWS_LIMIT: u64 = 1_000_000_000;

/// A named warming recipe of one Redis target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Its name, unique across targets: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// The PostgreSQL target the query runs on.
    pub postgres: String,
    /// The query: one `SELECT` (or `WITH … SELECT`), run read-only.
    pub sql: String,
    /// Each row's key.
    pub key: Template,
    /// Each key's value.
    pub value: WarmValue,
    /// Each key's TTL, seconds, before jitter.
    pub ttl_secs: u64,
    /// Each key's TTL is moved by up to this fraction either way, at random, so a warmed batch
    /// does not expire at once.
    pub jitter: f64,
    /// Tags each key is added to (`SADD tag:{tag} key`) after its value is written.
    pub tags: Vec<Template>,
    /// Refresh-ahead: keys with more than this fraction of their TTL left are not rewritten.
    pub refresh_ahead: Option<f64>,
    /// Run every this many seconds as well as on demand.
    pub every_secs: Option<u64>,
    /// Rows per pipelined batch.
    pub batch: usize,
    /// The query's `statement_timeout`, seconds.
    pub timeout_secs: u64,
    /// The most rows the planner may estimate for the query: a plan over it is refused.
    pub max_rows: u64,
}

impl Recipe {
    /// Checks the figures that depend on one another; the refusal names the setting.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=30 * 86_400).contains(&self.ttl_secs) {
            return Err(format!(
                "`ttl_secs` must be between 1 and 2592000 (30 days), not {}",
                self.ttl_secs
            ));
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            return Err(format!(
                "`jitter` must be between 0 and 0.5, not {}",
                self.jitter
            ));
        }
        if let Some(f) = self.refresh_ahead
            && !(f > 0.0 && f < 1.0 - self.jitter)
        {
            return Err(format!(
                "`refresh_ahead` must be above 0 and below 1 - jitter ({}), not {f}: a key just \
                 written must count as fresh",
                1.0 - self.jitter
            ));
        }
        if let Some(every) = self.every_secs
            && !(60..=7 * 86_400).contains(&every)
        {
            return Err(format!(
                "`every_secs` must be between 60 and 604800, not {every}"
            ));
        }
        if !(1..=10_000).contains(&self.batch) {
            return Err(format!(
                "`batch` must be between 1 and 10000, not {}",
                self.batch
            ));
        }
        if !(1..=3_600).contains(&self.timeout_secs) {
            return Err(format!(
                "`timeout_secs` must be between 1 and 3600, not {}",
                self.timeout_secs
            ));
        }
        if !(1..=MAX_ROWS_LIMIT).contains(&self.max_rows) {
            return Err(format!(
                "`max_rows` must be between 1 and {MAX_ROWS_LIMIT}, not {}",
                self.max_rows
            ));
        }
        if self.key.is_constant() {
            return Err(format!(
                "`key` {} names no column: every row would write the same key",
                self.key
            ));
        }
        Ok(())
    }

    /// The TTL range as people read it: `600 s ± 10 %`.
    pub fn ttl_label(&self) -> String {
        if self.jitter > 0.0 {
            format!("{} s ± {:.0} %", self.ttl_secs, self.jitter * 100.0)
        } else {
            format!("{} s", self.ttl_secs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn templates_fill_in_columns_and_refuse_what_makes_no_key() {
        let t = Template::parse("cache:project:{id}:{kind}").unwrap();
        assert_eq!(t.columns().collect::<Vec<_>>(), ["id", "kind"]);
        let r = row(json!({"id": 7, "kind": "summary", "ok": true}));
        assert_eq!(t.render(&r).unwrap(), "cache:project:7:summary");
        assert_eq!(Template::parse("{ok}").unwrap().render(&r).unwrap(), "true");
        let missing = Template::parse("x:{name}").unwrap().render(&r).unwrap_err();
        assert_eq!(missing, "the query returns no column `name`");
        let null = Template::parse("x:{id}")
            .unwrap()
            .render(&row(json!({"id": null})));
        assert_eq!(null.unwrap_err(), "column `id` is null");
        let object = Template::parse("x:{id}")
            .unwrap()
            .render(&row(json!({"id": {}})));
        assert!(object.unwrap_err().contains("object or array"));
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let bad = |t: &str| Template::parse(t).unwrap_err();
        assert!(bad("a:{id").contains("never closed"));
        assert!(bad("a:}id").contains("without its `{`"));
        assert!(bad("a:{}").contains("`{}` is not a column name"));
        assert!(bad("a:{Id}").contains("`{Id}` is not a column name"));
        assert!(bad("a b:{id}").contains("contains ' '"));
        assert!(bad("").contains("1 to 512 bytes"));
    }

    #[test]
    fn recipe_settings_are_checked_together() {
        let recipe = Recipe {
            name: "projects".into(),
            postgres: "db".into(),
            sql: "SELECT id FROM projects".into(),
            key: Template::parse("p:{id}").unwrap(),
            value: WarmValue::Row,
            ttl_secs: 600,
            jitter: 0.1,
            tags: vec![],
            refresh_ahead: Some(0.2),
            every_secs: None,
            batch: 500,
            timeout_secs: 60,
            max_rows: DEFAULT_MAX_ROWS,
        };
        assert_eq!(recipe.check(), Ok(()));
        assert_eq!(recipe.ttl_label(), "600 s ± 10 %");
        let with = |f: fn(&mut Recipe)| {
            let mut r = recipe.clone();
            f(&mut r);
            r.check().unwrap_err()
        };
        assert!(with(|r| r.refresh_ahead = Some(0.95)).contains("below 1 - jitter"));
        assert!(with(|r| r.jitter = 0.7).contains("`jitter`"));
        assert!(with(|r| r.ttl_secs = 0).contains("`ttl_secs`"));
        assert!(with(|r| r.every_secs = Some(5)).contains("`every_secs`"));
        assert!(with(|r| r.key = Template::parse("same").unwrap()).contains("names no column"));
    }
}
