//! Formatting shared by pages and the server: times, durations, figures with their units, and
//! URL query values.

use serde::{Deserialize, Serialize};

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`, the same on server
/// and browser (no locale, no clock), so server-rendered and hydrated pages agree.
pub fn format_utc(ms: u64) -> String {
    let (year, month, day, h, m, s) = civil(ms);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC")
}

/// Unix milliseconds as RFC 3339 in UTC with milliseconds, such as `2026-11-28T10:04:05.123Z`.
pub fn format_rfc3339(ms: u64) -> String {
    let (year, month, day, h, m, s) = civil(ms);
    format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
        ms % 1000
    )
}

/// Year, month, day, hour, minute and second of Unix milliseconds, in UTC.
fn civil(ms: u64) -> (i64, u64, u64, u64, u64, u64) {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month as u64,
        day as u64,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

/// Percent-encodes a URL query value (RFC 3986 unreserved characters and `/` stay as they are).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How a figure is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// `97.5 %`
    Percent,
    /// `12.3 ms`
    Millis,
    /// `1,234`
    Count,
    /// `1.5 GiB`
    Bytes,
    /// `1.5 MiB/s`
    BytesPerSecond,
    /// `0.42`
    Plain,
    /// `12.5/s`
    PerSecond,
    /// `45 s`, `3 min 12 s`, `2 h 05 min`
    Seconds,
}

impl Unit {
    /// The unit's symbol, for axis names.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Percent => "%",
            Unit::Millis => "ms",
            Unit::Count | Unit::Plain => "",
            Unit::Bytes => "bytes",
            Unit::BytesPerSecond => "bytes/s",
            Unit::PerSecond => "/s",
            Unit::Seconds => "s",
        }
    }

    /// The figure with its unit.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Percent => format!("{v:.1} %"),
            Unit::Millis => format!("{v:.1} ms"),
            Unit::Count => group_thousands(v.round() as i64),
            Unit::Bytes => bytes(v),
            Unit::BytesPerSecond => format!("{}/s", bytes(v)),
            Unit::Plain => format!("{v:.2}"),
            Unit::PerSecond if v < 10.0 => format!("{v:.1}/s"),
            Unit::PerSecond => format!("{}/s", group_thousands(v.round() as i64)),
            Unit::Seconds => seconds(v),
        }
    }

    /// The figure with its unit, or a dash while there is none.
    pub fn format_or_dash(self, v: Option<f64>) -> String {
        v.map_or_else(|| "—".to_owned(), |v| self.format(v))
    }
}

/// How long ago something happened, `seconds` before now: `3 min 12 s ago`.
pub fn ago(seconds: f64) -> String {
    format!("{} ago", self::seconds(seconds))
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Seconds in the two largest units, the smaller left out when it is zero (`5 min`, not
/// `5 min 00 s`).
fn seconds(v: f64) -> String {
    let s = v.max(0.0).round() as u64;
    let (big, big_unit, small, small_unit) = match s {
        0..60 => return format!("{s} s"),
        60..3_600 => (s / 60, "min", s % 60, "s"),
        3_600..86_400 => (s / 3_600, "h", s % 3_600 / 60, "min"),
        _ => (s / 86_400, "d", s % 86_400 / 3_600, "h"),
    };
    if small == 0 {
        format!("{big} {big_unit}")
    } else {
        format!("{big} {big_unit} {small:02} {small_unit}")
    }
}

fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Milliseconds written as a whole number and a unit: `500ms`, `30s`, `5m`, `6h`, `7d`. The one
/// form durations take everywhere: alert rules, embed ranges, token lifetimes, filters and flags.
pub fn parse_duration(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.parse::<u64>().ok()?.checked_mul(unit)
}

/// Milliseconds in the largest of `d`, `h`, `m`, `s` and `ms` that writes them whole: what
/// [`parse_duration`] reads back.
pub fn format_duration(ms: u64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    if ms == 0 {
        "0s".into()
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_figures_and_moments() {
        assert_eq!(Unit::Percent.format_or_dash(Some(99.5)), "99.5 %");
        assert_eq!(Unit::Percent.format_or_dash(None), "—");
        assert_eq!(ago(192.0), "3 min 12 s ago");
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(percent_encode("/a b?c=d&e"), "/a%20b%3Fc%3Dd%26e");
        assert_eq!(percent_encode("user.é"), "user.%C3%A9");
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_795_305_845_123), "2026-11-22 00:04:05 UTC");
        assert_eq!(
            format_rfc3339(1_795_305_845_123),
            "2026-11-22T00:04:05.123Z"
        );
    }

    #[test]
    fn formats_figures() {
        assert_eq!(Unit::Percent.format(97.54), "97.5 %");
        assert_eq!(Unit::Millis.format(3.0), "3.0 ms");
        assert_eq!(Unit::Count.format(1234567.0), "1,234,567");
        assert_eq!(Unit::Count.format(12.0), "12");
        assert_eq!(Unit::PerSecond.format(2.345), "2.3/s");
        assert_eq!(Unit::PerSecond.format(1234.4), "1,234/s");
        assert_eq!(Unit::Seconds.format(44.6), "45 s");
        assert_eq!(Unit::Seconds.format(192.0), "3 min 12 s");
        assert_eq!(Unit::Seconds.format(7_500.0), "2 h 05 min");
        assert_eq!(Unit::Seconds.format(200_000.0), "2 d 07 h");
        assert_eq!(Unit::Seconds.format(300.0), "5 min");
        assert_eq!(Unit::Seconds.format(7_230.0), "2 h");
        assert_eq!(Unit::Seconds.format(86_400.0), "1 d");
        assert_eq!(Unit::Bytes.format(512.0), "512 B");
        assert_eq!(Unit::Bytes.format(1536.0 * 1024.0), "1.5 MiB");
        assert_eq!(Unit::BytesPerSecond.format(2048.0), "2.0 KiB/s");
        assert_eq!(Unit::Plain.format(0.4242), "0.42");
    }

    #[test]
    fn durations_read_and_write_one_form() {
        assert_eq!(parse_duration("500ms"), Some(500));
        assert_eq!(parse_duration("30s"), Some(30_000));
        assert_eq!(parse_duration("5m"), Some(300_000));
        assert_eq!(parse_duration("1h"), Some(3_600_000));
        assert_eq!(parse_duration("7d"), Some(604_800_000));
        assert_eq!(parse_duration("0s"), Some(0));
        for bad in [
            "",
            "5",
            "m",
            "ms",
            "1.5m",
            "-1s",
            "5 m",
            "1w",
            "5mss",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        for (ms, text) in [
            (0, "0s"),
            (500, "500ms"),
            (1_500, "1500ms"),
            (90_000, "90s"),
            (300_000, "5m"),
            (21_600_000, "6h"),
            (2_678_400_000, "31d"),
        ] {
            assert_eq!(format_duration(ms), text);
            assert_eq!(parse_duration(text), Some(ms));
        }
    }
}
