//! Instants on the wire: RFC 3339 in UTC with milliseconds
//! (`2026-11-24T10:00:00.123Z`), held as milliseconds since the Unix epoch so
//! compat mode can order by them cheaply.
//!
//! Parsing and formatting are written out here rather than taken from a
//! date-time crate: the grammar is small, the calendar arithmetic is a dozen
//! lines, and the widget ships this code to every browser (a general
//! date-time library was about 5 KB of its gzipped bundle for two functions).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since 1970-01-01T00:00:00Z. Also the unit of the session's
/// clock (`now`), which the caller passes in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// An RFC 3339 string that does not name an instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp: {0:?}")]
pub struct TimestampError(pub String);

const MS_PER_DAY: i64 = 86_400_000;

impl Timestamp {
    /// The instant `ms` milliseconds after the Unix epoch.
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`, `T` and `Z` in
    /// either case. The fraction is truncated to milliseconds; a leap
    /// second (`:60`) counts as the last millisecond of its minute.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        parse_rfc3339(text.as_bytes(), false)
            .map(|(at, _)| at)
            .ok_or_else(|| TimestampError(text.to_owned()))
    }

    /// Parses a time as other backends write it, and also returns the part
    /// below the millisecond in nanoseconds. Beyond [`Self::parse`]: an
    /// offset without its colon (`+0200`), or none at all, read as UTC (the
    /// backend's zone is unknowable; UTC is what servers mostly run in).
    pub fn parse_lenient(text: &str) -> Option<(Self, u32)> {
        parse_rfc3339(text.trim().as_bytes(), true)
    }
}

fn parse_rfc3339(text: &[u8], lenient: bool) -> Option<(Timestamp, u32)> {
    let mut cursor = Cursor { text, at: 0 };
    let year = cursor.digits(4)?;
    cursor.expect(b"-")?;
    let month = cursor.digits(2)?;
    cursor.expect(b"-")?;
    let day = cursor.digits(2)?;
    cursor.expect(b"Tt")?;
    let hour = cursor.digits(2)?;
    cursor.expect(b":")?;
    let minute = cursor.digits(2)?;
    cursor.expect(b":")?;
    let second = cursor.digits(2)?;
    // The fraction as nanoseconds: milliseconds, and the rest.
    let mut nanos = 0;
    if cursor.eat(b".") {
        let mut count = 0;
        while let Some(digit) = cursor.digit() {
            if count < 9 {
                nanos = nanos * 10 + digit;
            }
            count += 1;
        }
        if count == 0 {
            return None;
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }
    let mut millis = nanos / 1_000_000;
    let offset_minutes = if cursor.eat(b"Zz") || (lenient && cursor.at == text.len()) {
        0
    } else {
        let sign = if cursor.eat(b"+") {
            1
        } else {
            cursor.expect(b"-")?;
            -1
        };
        let hours = cursor.digits(2)?;
        if !(lenient && cursor.digit_ahead()) {
            cursor.expect(b":")?;
        }
        let minutes = cursor.digits(2)?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        sign * (hours * 60 + minutes)
    };
    let valid = cursor.at == text.len()
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    if !valid {
        return None;
    }
    if second == 60 {
        millis = 999;
    }
    let seconds = (hour * 60 + minute - offset_minutes) * 60 + second.min(59);
    let at = Timestamp(days_from_civil(year, month, day) * MS_PER_DAY + seconds * 1000 + millis);
    Some((at, (nanos % 1_000_000) as u32))
}

/// Reads the fixed-width ASCII fields of a timestamp.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn digit(&mut self) -> Option<i64> {
        let byte = *self.text.get(self.at)?;
        byte.is_ascii_digit().then(|| {
            self.at += 1;
            i64::from(byte - b'0')
        })
    }

    fn digit_ahead(&self) -> bool {
        self.text.get(self.at).is_some_and(u8::is_ascii_digit)
    }

    fn digits(&mut self, count: usize) -> Option<i64> {
        (0..count).try_fold(0, |value, _| Some(value * 10 + self.digit()?))
    }

    /// Consumes one byte if it is one of `any`.
    fn eat(&mut self, any: &[u8]) -> bool {
        let hit = self
            .text
            .get(self.at)
            .is_some_and(|byte| any.contains(byte));
        self.at += usize::from(hit);
        hit
    }

    fn expect(&mut self, any: &[u8]) -> Option<()> {
        self.eat(any).then_some(())
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`: shift the year to start in March, so the leap day is
/// last, and count whole 400-year eras).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    /// `YYYY-MM-DDThh:mm:ss.mmmZ`; an instant outside years 0–9999, which
    /// RFC 3339 cannot write, shows as `@{ms}ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = civil_from_days(self.0.div_euclid(MS_PER_DAY));
        if !(0..=9999).contains(&year) {
            return write!(f, "@{}ms", self.0);
        }
        let in_day = self.0.rem_euclid(MS_PER_DAY);
        let (seconds, millis) = (in_day / 1000, in_day % 1000);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        Timestamp::parse(text).unwrap().millis()
    }

    #[test]
    fn formats_utc_with_millis_and_parses_offsets() {
        let t = Timestamp::parse("2026-11-24T11:00:00.5+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-24T10:00:00.500Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        assert!(Timestamp::parse("yesterday").is_err());
    }

    #[test]
    fn known_instants() {
        assert_eq!(ms("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ms("2000-02-29T12:34:56.789Z"), 951_827_696_789);
        assert_eq!(ms("2026-11-24T10:00:00.123Z"), 1_795_514_400_123);
        assert_eq!(ms("1969-12-31T23:59:59.999Z"), -1);
        assert_eq!(ms("2026-01-01t05:30:00-05:30"), ms("2026-01-01T11:00:00Z"));
        assert_eq!(ms("2026-01-01t11:00:00z"), ms("2026-01-01T11:00:00Z"));
        // Digits past the millisecond are cut, not rounded.
        assert_eq!(ms("2026-11-24T10:00:00.123999999Z"), 1_795_514_400_123);
        assert_eq!(ms("2016-12-31T23:59:60Z"), ms("2016-12-31T23:59:59.999Z"));
    }

    #[test]
    fn rejects_what_rfc_3339_does_not_allow() {
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T10:00Z",
            "2026-11-24T10:00:00",
            "2026-11-24 10:00:00Z",
            "2026-11-24T10:00:00.Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T10:60:00Z",
            "2026-11-24T10:00:61Z",
            "2026-11-24T10:00:00+24:00",
            "2026-11-24T10:00:00+0100",
            "2026-11-24T10:00:00Zjunk",
            "+2026-11-24T10:00:00Z",
            "２026-11-24T10:00:00Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // 1900-01-01 to 2300-01-01: leap years, century rules, both signs.
        let start = days_from_civil(1900, 1, 1);
        let end = days_from_civil(2300, 1, 1);
        assert_eq!(end - start, 146_097);
        let mut expected = (1900, 1, 1);
        for days in start..end {
            assert_eq!(civil_from_days(days), expected);
            assert_eq!(days_from_civil(expected.0, expected.1, expected.2), days);
            let (year, month, day) = expected;
            expected = if day < days_in_month(year, month) {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
        }
    }

    #[test]
    fn instants_outside_four_digit_years_still_show() {
        assert_eq!(Timestamp(i64::MAX).to_string(), format!("@{}ms", i64::MAX));
        assert_eq!(
            Timestamp(-62_167_219_200_000).to_string(),
            "0000-01-01T00:00:00.000Z"
        );
        assert!(Timestamp(-62_167_219_200_001).to_string().starts_with('@'));
    }
}
