//! The link to the next (older) page of a filtered list.

use pitwall::percent_encode;

/// `?before={id}` followed by the filter's set parameters, percent-encoded.
pub fn older_href<const N: usize>(before_id: i64, filter: [(&str, Option<String>); N]) -> String {
    let mut params = vec![format!("before={before_id}")];
    for (k, v) in filter {
        if let Some(v) = v {
            params.push(format!("{k}={}", percent_encode(&v)));
        }
    }
    format!("?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_filter() {
        assert_eq!(
            older_href(42, [("actor", Some("ann b".into())), ("action", None)]),
            "?before=42&actor=ann%20b"
        );
    }
}
