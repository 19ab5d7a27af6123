//! [`Timestamp`]: a time as dockerd's JSON carries it. dockerd decodes times into Go's
//! `time.Time`, whose JSON form is RFC 3339 text, and a value it cannot parse fails
//! the whole reply (a `Volume`'s `CreatedAt`: moby v20.10.24
//! `volume/drivers/adapter.go`, `proxyVolume`). A typed time cannot be written wrong,
//! and parsing accepts exactly what Go 1.19's `time.Time.UnmarshalJSON` accepts (the Go
//! of dockerd 20.10.24): `time.Parse(time.RFC3339, …)`, checked against Go 1.19 itself.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time as Docker's JSON carries it: RFC 3339 text, read and written as
/// dockerd's Go code does (`time.Time`).
///
/// Written as Go writes a `time.Time` (RFC 3339 with the fraction of a second when
/// there is one, trailing zeros dropped); read as Go reads one: `2006-01-02T15:04:05Z`,
/// a one- or two-digit hour, an optional fraction after `.` or `,` (digits past the
/// ninth ignored), `Z` or a `±hh:mm` offset, which is kept. `==` compares the written
/// form: the same instant with another offset is another value.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use docker_plugin_sdk::protocol::Timestamp;
///
/// let t = Timestamp::from(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500));
/// assert_eq!(t.to_string(), "2023-11-14T22:13:20.5Z");
/// let parsed: Timestamp = "2023-11-14T23:13:20.5+01:00".parse().unwrap();
/// assert_eq!(parsed.system_time(), t.system_time());
/// assert_eq!(parsed.to_string(), "2023-11-14T23:13:20.5+01:00");
/// assert!("".parse::<Timestamp>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    secs: i64,
    /// Nanoseconds into that second (below 10⁹).
    nanos: u32,
    /// The offset it was written with, in seconds east of UTC.
    offset: i32,
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the years a `time.Time` can be
/// written in (Go's `MarshalJSON` refuses the others).
const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;
const NANOS_PER_SEC: u32 = 1_000_000_000;

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        SystemTime::now().into()
    }

    /// The instant, whatever the offset it was written with.
    pub fn system_time(&self) -> SystemTime {
        let nanos = Duration::from_nanos(u64::from(self.nanos));
        let since = Duration::from_secs(self.secs.unsigned_abs());
        let whole = if self.secs >= 0 {
            UNIX_EPOCH.checked_add(since)
        } else {
            UNIX_EPOCH.checked_sub(since)
        };
        // Years 0–9999 fit a SystemTime on every platform this crate runs on.
        whole
            .and_then(|t| t.checked_add(nanos))
            .unwrap_or(UNIX_EPOCH)
    }

    /// The offset from UTC it was written with, in seconds east (0 for `Z`).
    pub fn offset_seconds(&self) -> i32 {
        self.offset
    }
}

impl From<SystemTime> for Timestamp {
    /// The time in UTC. Times before year 0 or after year 9999, which RFC 3339 cannot
    /// write, are clamped to the first or last instant it can.
    fn from(time: SystemTime) -> Self {
        let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => (
                i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
                after.subsec_nanos(),
            ),
            Err(before) => {
                let before = before.duration();
                let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
                match before.subsec_nanos() {
                    0 => (-secs, 0),
                    n => (-secs - 1, NANOS_PER_SEC - n),
                }
            }
        };
        let (secs, nanos) = if secs > MAX_SECS {
            (MAX_SECS, NANOS_PER_SEC - 1)
        } else if secs < MIN_SECS {
            (MIN_SECS, 0)
        } else {
            (secs, nanos)
        };
        Self {
            secs,
            nanos,
            offset: 0,
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(time: Timestamp) -> Self {
        time.system_time()
    }
}

impl fmt::Display for Timestamp {
    /// Go's `time.RFC3339Nano`, which `time.Time.MarshalJSON` writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.secs + i64::from(self.offset);
        let (year, month, day) = civil_from_days(local.div_euclid(86_400));
        let second = local.rem_euclid(86_400);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            second / 3600,
            second % 3600 / 60,
            second % 60
        )?;
        if self.nanos != 0 {
            let digits = format!("{:09}", self.nanos);
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        if self.offset == 0 {
            return f.write_str("Z");
        }
        let sign = if self.offset < 0 { '-' } else { '+' };
        let minutes = self.offset.unsigned_abs() / 60;
        write!(f, "{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

/// A text that is not a time dockerd can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a time dockerd can read ({reason}): write RFC 3339, such as \
     2006-01-02T15:04:05Z or 2006-01-02T15:04:05.5+01:00"
)]
pub struct ParseTimestampError {
    text: String,
    reason: &'static str,
}

const NOT_THE_FORM: &str = "not in the form 2006-01-02T15:04:05Z07:00";

impl FromStr for Timestamp {
    type Err = ParseTimestampError;

    /// Go 1.19's `time.Parse(time.RFC3339, text)`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse(text.as_bytes()).map_err(|reason| ParseTimestampError {
            text: text.to_owned(),
            reason,
        })
    }
}

/// Reads `2006-01-02T15:04:05Z07:00` the way Go's `time.Parse` does (`time/format.go`).
fn parse(text: &[u8]) -> Result<Timestamp, &'static str> {
    let mut at = Cursor { text, pos: 0 };
    let year = at.digits(4)?;
    at.literal(b'-')?;
    let month = at.digits(2)?;
    at.literal(b'-')?;
    let day = at.digits(2)?;
    at.literal(b'T')?;
    // Go's layout `15` takes one or two digits; `04` and `05` take exactly two.
    let hour = if at.peek(1).is_some_and(|b| b.is_ascii_digit()) {
        at.digits(2)?
    } else {
        at.digits(1)?
    };
    at.literal(b':')?;
    let minute = at.digits(2)?;
    at.literal(b':')?;
    let second = at.digits(2)?;
    let mut nanos = 0;
    if matches!(at.peek(0), Some(b'.' | b',')) && at.peek(1).is_some_and(|b| b.is_ascii_digit()) {
        at.pos += 1;
        for place in 0.. {
            let Some(digit) = at.peek(0).filter(u8::is_ascii_digit) else {
                nanos *= 10u32.pow(9u32.saturating_sub(place));
                break;
            };
            if place < 9 {
                nanos = nanos * 10 + u32::from(digit - b'0');
            }
            at.pos += 1;
        }
    }
    let offset = match at.next() {
        Some(b'Z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hours = at.digits(2)?;
            at.literal(b':')?;
            let minutes = at.digits(2)?;
            // Go 1.19 checks no range here: `+25:00` and `+01:60` are read as written.
            let offset = (hours * 60 + minutes) * 60;
            if sign == b'-' { -offset } else { offset }
        }
        _ => return Err(NOT_THE_FORM),
    };
    if at.pos != text.len() {
        return Err(NOT_THE_FORM);
    }
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("day out of range");
    }
    if hour > 23 {
        return Err("hour out of range");
    }
    if minute > 59 {
        return Err("minute out of range");
    }
    if second > 59 {
        return Err("second out of range");
    }
    let local = days_from_civil(i64::from(year), month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second);
    Ok(Timestamp {
        secs: local - i64::from(offset),
        nanos,
        offset,
    })
}

struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.text.get(self.pos + ahead).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek(0);
        self.pos += 1;
        byte
    }

    fn literal(&mut self, want: u8) -> Result<(), &'static str> {
        match self.next() {
            Some(byte) if byte == want => Ok(()),
            _ => Err(NOT_THE_FORM),
        }
    }

    /// Exactly `count` decimal digits.
    fn digits(&mut self, count: usize) -> Result<i32, &'static str> {
        let mut value = 0;
        for _ in 0..count {
            match self.next() {
                Some(digit @ b'0'..=b'9') => value = value * 10 + i32::from(digit - b'0'),
                _ => return Err(NOT_THE_FORM),
            }
        }
        Ok(value)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rfc3339;
        impl Visitor<'_> for Rfc3339 {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time such as 2006-01-02T15:04:05Z")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Rfc3339)
    }
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: i32) -> i32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i32, day: i32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        let since = Duration::from_secs(secs.unsigned_abs());
        if secs >= 0 {
            (UNIX_EPOCH + since).into()
        } else {
            (UNIX_EPOCH - since).into()
        }
    }

    #[test]
    fn utc_times_are_written_as_go_writes_them() {
        assert_eq!(at(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(at(4_102_444_799).to_string(), "2099-12-31T23:59:59Z");
        assert_eq!(at(-1).to_string(), "1969-12-31T23:59:59Z");
        let half = Timestamp::from(UNIX_EPOCH - Duration::from_millis(500));
        assert_eq!(half.to_string(), "1969-12-31T23:59:59.5Z");
        let nanos = Timestamp::from(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789));
        assert_eq!(nanos.to_string(), "2023-11-14T22:13:20.123456789Z");
        // Go's zero time, what `docker volume inspect` shows without CreatedAt.
        assert_eq!(at(-62_135_596_800).to_string(), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn times_rfc_3339_cannot_write_are_clamped() {
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(
            Timestamp::from(far).to_string(),
            "9999-12-31T23:59:59.999999999Z"
        );
        assert_eq!(at(MIN_SECS - 1).to_string(), "0000-01-01T00:00:00Z");
    }

    /// Each text with what Go 1.19 answered: `json.Unmarshal` into a `time.Time`, then
    /// `json.Marshal` of the result (`go run` on golang-go 2:1.19, Debian 12).
    #[test]
    fn parsing_accepts_what_go_accepts() {
        for (text, go) in [
            ("2023-11-14T22:13:20Z", "2023-11-14T22:13:20Z"),
            ("2023-11-14T2:13:20Z", "2023-11-14T02:13:20Z"),
            ("2023-11-14T22:13:20.5Z", "2023-11-14T22:13:20.5Z"),
            ("2023-11-14T22:13:20,5Z", "2023-11-14T22:13:20.5Z"),
            (
                "2023-11-14T22:13:20.1234567891234Z",
                "2023-11-14T22:13:20.123456789Z",
            ),
            ("2023-11-14T22:13:20.000Z", "2023-11-14T22:13:20Z"),
            ("2023-11-14T22:13:20+01:00", "2023-11-14T22:13:20+01:00"),
            ("2023-11-14T22:13:20-00:00", "2023-11-14T22:13:20Z"),
            ("2023-11-14T22:13:20+25:00", "2023-11-14T22:13:20+25:00"),
            ("2023-11-14T22:13:20+01:60", "2023-11-14T22:13:20+02:00"),
            ("2024-02-29T22:13:20Z", "2024-02-29T22:13:20Z"),
            ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
        ] {
            let parsed: Timestamp = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed.to_string(), go, "{text}");
        }
        let offset: Timestamp = "2023-11-14T23:13:20+01:00".parse().unwrap();
        let utc: Timestamp = "2023-11-14T22:13:20Z".parse().unwrap();
        assert_eq!(offset.system_time(), utc.system_time());
        assert_eq!(offset.offset_seconds(), 3600);
    }

    #[test]
    fn parsing_refuses_what_go_refuses() {
        for (text, reason) in [
            ("", NOT_THE_FORM),
            ("2023-11-14t22:13:20Z", NOT_THE_FORM),
            ("2023-11-14T22:13:20z", NOT_THE_FORM),
            ("2023-11-14T22:13:20+0100", NOT_THE_FORM),
            ("2023-11-14T22:13:20+1:00", NOT_THE_FORM),
            ("2023-11-14T22:13:20+01:0a", NOT_THE_FORM),
            ("2023-11-14T22:13:20.", NOT_THE_FORM),
            ("2023-11-14T22:13:20.Z", NOT_THE_FORM),
            ("2023-11-14 22:13:20Z", NOT_THE_FORM),
            ("2023-1-14T22:13:20Z", NOT_THE_FORM),
            ("2023-11-14T22:1:20Z", NOT_THE_FORM),
            ("+2023-11-14T22:13:20Z", NOT_THE_FORM),
            ("2023-11-14T22:13:20Zx", NOT_THE_FORM),
            ("2023-11-14T22:13:20", NOT_THE_FORM),
            ("2023-13-14T22:13:20Z", "month out of range"),
            ("2023-02-29T22:13:20Z", "day out of range"),
            ("2023-11-00T22:13:20Z", "day out of range"),
            ("2023-11-14T24:00:00Z", "hour out of range"),
            ("2023-11-14T23:60:00Z", "minute out of range"),
            ("2023-11-14T23:59:60Z", "second out of range"),
        ] {
            let err = text.parse::<Timestamp>().unwrap_err();
            assert_eq!(err.reason, reason, "{text}");
        }
    }

    #[test]
    fn the_error_says_what_dockerd_reads() {
        let err = "yesterday".parse::<Timestamp>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`yesterday` is not a time dockerd can read (not in the form \
             2006-01-02T15:04:05Z07:00): write RFC 3339, such as 2006-01-02T15:04:05Z or \
             2006-01-02T15:04:05.5+01:00"
        );
    }

    #[test]
    fn json_is_a_string_and_only_a_valid_one() {
        let t = at(1_700_000_000);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2023-11-14T22:13:20Z\""
        );
        let back: Timestamp = serde_json::from_str("\"2023-11-14T22:13:20Z\"").unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<Timestamp>("\"\"").is_err());
        assert!(serde_json::from_str::<Timestamp>("5").is_err());
        let none: Option<Timestamp> = serde_json::from_str("null").unwrap();
        assert_eq!(none, None);
    }
}
