//! Salesforce's date and datetime text, through a date-time crate.

use jiff::{civil, tz::Offset, Timestamp};

/// `2026-11-23T23:01:11.000+0000`, the format Salesforce returns datetimes in.
pub fn sf_datetime(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// The date at the start of `s` (`YYYY-MM-DD`), as epoch ms at midnight UTC.
pub(super) fn parse_date_ms(s: &str) -> Option<i64> {
    let date: civil::Date = s.get(0..10)?.parse().ok()?;
    let ts = Offset::UTC
        .to_timestamp(date.to_datetime(civil::Time::midnight()))
        .ok()?;
    Some(ts.as_millisecond())
}

/// Parses `YYYY-MM-DDThh:mm:ss[.sss](Z|+hhmm|+hh:mm)` to epoch ms.
pub fn parse_datetime_ms(s: &str) -> Option<i64> {
    if s.get(10..11)? != "T" {
        return None;
    }
    s.parse::<Timestamp>().ok().map(|ts| ts.as_millisecond())
}
