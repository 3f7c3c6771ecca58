//! Wall-clock helpers: every timestamp in the domain is epoch milliseconds (as Gainsight sends them).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Formats epoch milliseconds as an RFC 3339 UTC timestamp (`2026-11-23T23:01:11.000Z`).
pub fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => format!("{ts:.3}"),
        // Outside years -9999..=9999: no system sends such an instant; show the number.
        Err(_) => ms.to_string(),
    }
}

/// Parses `2023-11-14`, `2023-11-14T22:13:20Z`, `...20.123Z`, `...+0000` or `...+01:00` (as
/// Salesforce and most JSON APIs write them) into epoch milliseconds; a time without an offset is
/// taken as UTC.
pub fn parse_ms(s: &str) -> Option<i64> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    let civil = s.parse::<jiff::civil::DateTime>().ok()?;
    let ts = jiff::tz::Offset::UTC.to_timestamp(civil).ok()?;
    Some(ts.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_what_it_formats_and_salesforce_forms() {
        for ms in [0, 1_700_000_000_123, 951_782_400_000, -1] {
            assert_eq!(parse_ms(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(
            parse_ms("2023-11-14T22:13:20.000+0000"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_ms("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_ms("2023-11-14"), Some(1_699_920_000_000));
        for bad in [
            "2023-13-01",
            "14/11/2023",
            "2023-11-14T25:00:00Z",
            "2023-11-14T22:13:20+0x00",
            "",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad}");
        }
    }
}
