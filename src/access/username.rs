//! A validated user name.

use std::fmt;

/// A user name: 1 to 64 characters of lowercase letters, digits, `.`, `_`, `-` and `@`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Validates `s`, naming what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_@".contains(c));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "invalid user name {s:?}: expected 1 to 64 lowercase letters, digits, `.`, `_`, `-` or `@`"
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(Username::parse("ops.lead@corp").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("Admin").unwrap_err().contains("lowercase"));
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }
}
