//! Timestamps in nanoseconds since the Unix epoch, and query direction.
//!
//! `Timestamp` is a newtype with explicit constructors (no silent `From<i64>`),
//! so seconds, milliseconds and nanoseconds cannot be mixed up.

use std::fmt;

/// A point in time, in nanoseconds since the Unix epoch (UTC).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

pub const NANOS_PER_SEC: i64 = 1_000_000_000;
pub const NANOS_PER_MILLI: i64 = 1_000_000;

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    pub const MAX: Timestamp = Timestamp(i64::MAX);
    pub const EPOCH: Timestamp = Timestamp(0);

    pub const fn from_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    pub const fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(NANOS_PER_SEC))
    }

    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis.saturating_mul(NANOS_PER_MILLI))
    }

    /// From a float number of seconds, rounded to the nearest nanosecond.
    pub fn from_secs_f64(secs: f64) -> Self {
        Timestamp((secs * NANOS_PER_SEC as f64).round() as i64)
    }

    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds, rounded towards negative infinity.
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    pub const fn millis(self) -> i64 {
        self.0.div_euclid(NANOS_PER_MILLI)
    }

    pub fn secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    pub const fn saturating_add_nanos(self, nanos: i64) -> Self {
        Timestamp(self.0.saturating_add(nanos))
    }

    pub const fn saturating_sub_nanos(self, nanos: i64) -> Self {
        Timestamp(self.0.saturating_sub(nanos))
    }

    /// Nanoseconds from `earlier` to `self` (saturating).
    pub const fn nanos_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The start of the UTC day containing this timestamp, as a day number
    /// (days since 1970-01-01).
    pub const fn day(self) -> i64 {
        self.0.div_euclid(86_400 * NANOS_PER_SEC)
    }

    /// RFC 3339 with nanoseconds, as Go's `time.RFC3339Nano` prints it
    /// (trailing zeros of the fraction trimmed, `Z` for UTC).
    pub fn to_rfc3339_nano(self) -> String {
        let mut out = String::with_capacity(30);
        self.write_rfc3339(&mut out, true);
        out
    }

    /// RFC 3339 without fraction, as Go's `time.RFC3339` prints it.
    pub fn to_rfc3339(self) -> String {
        let mut out = String::with_capacity(20);
        self.write_rfc3339(&mut out, false);
        out
    }

    /// Parses RFC 3339 (`2024-01-02T03:04:05.123456789Z`, `...+02:00`), as
    /// Go's `time.Parse(time.RFC3339Nano, s)` accepts it.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let t = s.get(r)?;
            if !t.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let mut i = 19;
        let mut frac: i64 = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &s[start..i];
            if digits.is_empty() || digits.len() > 9 {
                return None;
            }
            frac = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
        }
        let offset_secs = match &s[i..] {
            "Z" | "z" => 0,
            tz if tz.len() == 6
                && (tz.starts_with('+') || tz.starts_with('-'))
                && &tz[3..4] == ":" =>
            {
                let oh: i64 = tz[1..3].parse().ok()?;
                let om: i64 = tz[4..6].parse().ok()?;
                let off = oh * 3600 + om * 60;
                if tz.starts_with('-') { -off } else { off }
            }
            _ => return None,
        };
        let days = days_from_civil(y, mo as u32, d as u32);
        if civil_from_days(days) != (y, mo as u32, d as u32) {
            return None;
        }
        let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
        secs.checked_mul(NANOS_PER_SEC)?
            .checked_add(frac)
            .map(Timestamp)
    }

    fn write_rfc3339(self, out: &mut String, with_fraction: bool) {
        use std::fmt::Write;
        let secs = self.0.div_euclid(NANOS_PER_SEC);
        let frac = self.0.rem_euclid(NANOS_PER_SEC);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let _ = write!(
            out,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        );
        if with_fraction && frac != 0 {
            let mut digits = format!("{frac:09}");
            while digits.ends_with('0') {
                digits.pop();
            }
            out.push('.');
            out.push_str(&digits);
        }
        out.push('Z');
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_nano())
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days` algorithm.
pub const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's
/// `days_from_civil`).
pub const fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The order in which log entries are returned.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first (Loki's default).
    #[default]
    Backward,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Forward => "FORWARD",
            Direction::Backward => "BACKWARD",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_go() {
        let t = Timestamp::from_nanos(1_793_527_200_123_456_789);
        assert_eq!(t.to_rfc3339_nano(), "2026-11-01T10:00:00.123456789Z");
        assert_eq!(t.to_rfc3339(), "2026-11-01T10:00:00Z");
        let t = Timestamp::from_nanos(1_793_527_200_120_000_000);
        assert_eq!(t.to_rfc3339_nano(), "2026-11-01T10:00:00.12Z");
        assert_eq!(Timestamp::EPOCH.to_rfc3339_nano(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_secs(-1).to_rfc3339(),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(
            Timestamp::from_secs(951_782_400).to_rfc3339(),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn parses_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-11-01T10:00:00.123456789Z").unwrap();
        assert_eq!(t.nanos(), 1_793_527_200_123_456_789);
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-01T10:00:00Z")
                .unwrap()
                .secs(),
            1_793_527_200
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-01T12:00:00+02:00")
                .unwrap()
                .secs(),
            1_793_527_200
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-01T10:00:00.5Z")
                .unwrap()
                .nanos()
                % NANOS_PER_SEC,
            500_000_000
        );
        for bad in [
            "2026-11-01",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-01T10:00:00",
            "x",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn day_numbers() {
        assert_eq!(Timestamp::from_secs(86_399).day(), 0);
        assert_eq!(Timestamp::from_secs(86_400).day(), 1);
        assert_eq!(Timestamp::from_nanos(-1).day(), -1);
    }
}
