//! Where to go after sign-in: only a path on the console itself, never another origin.
//!
//! Browsers parse a `Location` the WHATWG way: they drop tab, CR and LF anywhere, trim leading
//! control characters and spaces, and read `\` as `/`, so `/\evil`, `/<TAB>/evil` or `\/evil`
//! all become `//evil`, another host. A path is accepted only when it is plain printable ASCII
//! without backslashes and starts with exactly one `/`, and when decoded once more (the sign-in
//! page decodes what it carries along) it still has no control character or backslash and still
//! starts with one `/`.

/// The longest `next` kept.
const MAX_LEN: usize = 2048;

/// `next` when it is a path on this console, else `/`.
pub fn safe_next(next: &str) -> &str {
    let decoded = percent_decoded(next.as_bytes());
    if is_plain_path(next.as_bytes()) && stays_local(&decoded) {
        next
    } else {
        "/"
    }
}

/// One `/`, then printable ASCII (no space, no backslash, no control character) that does not
/// begin a second `/`.
fn is_plain_path(path: &[u8]) -> bool {
    path.len() <= MAX_LEN
        && stays_local(path)
        && path.iter().all(|b| b.is_ascii_graphic() && *b != b'\\')
}

/// One `/` not followed by another, and nothing a browser would drop or read as `/`.
fn stays_local(path: &[u8]) -> bool {
    path.first() == Some(&b'/')
        && path.get(1) != Some(&b'/')
        && path.iter().all(|b| !b.is_ascii_control() && *b != b'\\')
}

/// `path` with each `%XX` decoded (one round); a `%` without two hex digits stays as it is.
fn percent_decoded(path: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let pair = (path[i] == b'%')
            .then(|| Some((hex(*path.get(i + 1)?)?, hex(*path.get(i + 2)?)?)))
            .flatten();
        match pair {
            Some((hi, lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            None => {
                out.push(path[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_paths_pass() {
        for path in [
            "/",
            "/queues?x=1",
            "/jobs/42",
            "/queries?target=app&sort=total",
            "/audit?actor=john%20doe",
            "/queues?peek=broker%2Fdefault",
        ] {
            assert_eq!(safe_next(path), path);
        }
    }

    #[test]
    fn anything_a_browser_could_take_elsewhere_goes_home() {
        for payload in [
            "",
            "//evil.example/",
            "///evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            " /evil.example",
            "/ /evil.example",
            "\t//evil.example",
            "/%09/evil.example",
            "/%0a/evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/%5c%5cevil.example",
            "/x\u{0}y",
            "/caf\u{e9}",
            "/\u{3000}/evil.example",
        ] {
            assert_eq!(safe_next(payload), "/", "{payload:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(MAX_LEN))), "/");
    }

    #[test]
    fn decodes_one_round_and_leaves_stray_percents() {
        assert_eq!(percent_decoded(b"/a%2Fb%zz%4"), b"/a/b%zz%4");
        assert_eq!(safe_next("/50%"), "/50%");
    }
}
