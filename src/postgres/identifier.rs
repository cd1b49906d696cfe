//! Names that reach PostgreSQL in statements Pitwall builds: checked before anything is sent,
//! always written quoted. Only plain lower-case names are accepted (what an unquoted name folds
//! to), so a name never needs escaping and can never carry a quote, a semicolon or a comment.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest name PostgreSQL keeps (`NAMEDATALEN - 1`).
pub const MAX_LEN: usize = 63;

/// Reserved key words (PostgreSQL's `reserved` and `reserved (can be function or type)`
/// categories): refused even though quoting would allow them, since such a name is almost
/// always a mistake in a form.
const RESERVED: [&str; 101] = [
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Nothing was given.
    Empty,
    /// Longer than PostgreSQL keeps.
    TooLong(String),
    /// A character outside plain names.
    Character {
        /// The name.
        name: String,
        /// The first character refused.
        found: char,
    },
    /// A reserved key word.
    Reserved(String),
}

// Written by hand rather than derived: this module is shared with the browser (wasm), where
// `thiserror` is not built.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Empty => write!(f, "a name is needed"),
            Error::TooLong(name) => write!(f, "`{name}` is longer than {MAX_LEN} bytes"),
            Error::Character { name, found } => write!(
                f,
                "`{name}` is not a plain name: {found:?} is not allowed (lower-case letters, digits, `_` and `$`, starting with a letter or `_`)"
            ),
            Error::Reserved(name) => write!(f, "`{name}` is a reserved word"),
        }
    }
}

impl std::error::Error for Error {}

/// A checked PostgreSQL name; [`fmt::Display`] writes it quoted. It travels (serde) as the bare
/// name and is checked again when read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Identifier(String);

impl TryFrom<String> for Identifier {
    type Error = Error;

    fn try_from(name: String) -> Result<Self, Error> {
        Identifier::parse(&name)
    }
}

impl From<Identifier> for String {
    fn from(id: Identifier) -> String {
        id.0
    }
}

impl Identifier {
    /// `name` if it is a plain, unreserved PostgreSQL name.
    pub fn parse(name: &str) -> Result<Self, Error> {
        if name.is_empty() {
            return Err(Error::Empty);
        }
        if name.len() > MAX_LEN {
            return Err(Error::TooLong(name.to_owned()));
        }
        for (i, c) in name.chars().enumerate() {
            let ok =
                c.is_ascii_lowercase() || c == '_' || (i > 0 && (c.is_ascii_digit() || c == '$'));
            if !ok {
                return Err(Error::Character {
                    name: name.to_owned(),
                    found: c,
                });
            }
        }
        if RESERVED.contains(&name) {
            return Err(Error::Reserved(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

/// A table (or index) name with its schema: `events` (in `public`) or `analytics.events`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Qualified {
    /// The schema.
    pub schema: Identifier,
    /// The relation.
    pub name: Identifier,
}

impl Qualified {
    /// `name` or `schema.name`; the schema defaults to `public`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let (schema, name) = text.split_once('.').unwrap_or(("public", text));
        Ok(Self {
            schema: Identifier::parse(schema)?,
            name: Identifier::parse(name)?,
        })
    }
}

impl fmt::Display for Qualified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_and_are_quoted() {
        let id = Identifier::parse("events_user_id_idx").unwrap();
        assert_eq!(id.as_str(), "events_user_id_idx");
        assert_eq!(id.to_string(), "\"events_user_id_idx\"");
        assert!(Identifier::parse("_x$1").is_ok());
        assert_eq!(
            Identifier::parse(&"a".repeat(MAX_LEN))
                .unwrap()
                .as_str()
                .len(),
            63
        );
        let t = Qualified::parse("events").unwrap();
        assert_eq!(t.to_string(), "\"public\".\"events\"");
        assert_eq!(
            Qualified::parse("analytics.events")
                .unwrap()
                .schema
                .as_str(),
            "analytics"
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        let bad = |s: &str| Identifier::parse(s).unwrap_err().to_string();
        assert_eq!(bad(""), "a name is needed");
        assert!(bad("users\"; drop table users; --").contains("'\"' is not allowed"));
        assert!(bad("users;drop").contains("';' is not allowed"));
        assert!(bad("Users").contains("'U' is not allowed"));
        assert!(bad("1st").contains("'1' is not allowed"));
        assert!(bad("a b").contains("' ' is not allowed"));
        assert!(bad("a-b").contains("'-' is not allowed"));
        assert_eq!(bad("select"), "`select` is a reserved word");
        assert_eq!(bad("order"), "`order` is a reserved word");
        assert!(bad(&"a".repeat(MAX_LEN + 1)).contains("longer than 63 bytes"));
        assert!(Qualified::parse("a.b.c").is_err(), "`b.c` is not a name");
        assert!(Qualified::parse(".events").is_err());
    }
}
