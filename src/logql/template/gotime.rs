//! Go's `time` package as templates see it: a `time.Time` (an instant and a
//! location), layout-based formatting and parsing with Go's reference time
//! (`Mon Jan 2 15:04:05 MST 2006`), `time.LoadLocation`, `Time.String()` and
//! `time.ParseDuration`.
//!
//! Time zones come from the system tz database through `jiff`. Go's `Local`
//! location is UTC here: Loki runs in containers where it is UTC, and a log
//! store's output should not depend on the host's zone setting.
//!
//! Invariant: `nanos < 1_000_000_000`; `secs` is seconds since the Unix
//! epoch, so Go's zero time (year 1) fits.

use crate::model::time::days_from_civil;
use std::fmt::Write as _;

use jiff::Timestamp as JiffTimestamp;
use jiff::tz::TimeZone;

/// Seconds from the Unix epoch back to Go's zero time, January 1, year 1 UTC.
const ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// Where the system tz database is read from.
pub(crate) const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";

/// A `time.Location`.
#[derive(Debug, Clone)]
pub(crate) enum Zone {
    Utc,
    /// `time.FixedZone(name, offset)`; an empty name prints as `-0700`.
    Fixed {
        name: String,
        offset: i32,
    },
    Tz(TimeZone),
}

impl Zone {
    /// The offset in seconds east of UTC and the abbreviation in effect at
    /// `secs` (Unix seconds).
    fn lookup(&self, secs: i64) -> (i32, String) {
        match self {
            Zone::Utc => (0, "UTC".to_string()),
            Zone::Fixed { name, offset } => (*offset, name.clone()),
            Zone::Tz(tz) => match JiffTimestamp::new(secs, 0) {
                Ok(ts) => {
                    let info = tz.to_offset_info(ts);
                    (info.offset().seconds(), info.abbreviation().to_string())
                }
                Err(_) => (0, "UTC".to_string()),
            },
        }
    }

    fn offset_at(&self, secs: i64) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Fixed { offset, .. } => *offset,
            Zone::Tz(tz) => JiffTimestamp::new(secs, 0)
                .map(|ts| tz.to_offset(ts).seconds())
                .unwrap_or(0),
        }
    }
}

/// `time.LoadLocation(name)`. `Local` is UTC (see the module docs).
pub(crate) fn load_location(name: &str) -> Result<Zone, String> {
    match name {
        "" | "UTC" | "Local" => Ok(Zone::Utc),
        _ => match TimeZone::get(name) {
            Ok(tz) => Ok(Zone::Tz(tz)),
            Err(_) if jiff::tz::db().is_definitively_empty() => Err(format!(
                "time zone database not found (looked in {ZONEINFO_DIR}): cannot load time zone {name:?}"
            )),
            Err(_) => Err(format!("unknown time zone {name}")),
        },
    }
}

/// A `time.Time`.
#[derive(Debug, Clone)]
pub(crate) struct GoTime {
    secs: i64,
    nanos: u32,
    zone: Zone,
}

/// A time broken down in its zone.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    /// 1-based day of the year.
    yday: u32,
    /// 0 = Sunday.
    weekday: u32,
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12).
fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in(month: u32, year: i64) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl GoTime {
    pub(crate) fn new(secs: i64, nanos: u32, zone: Zone) -> Self {
        GoTime { secs, nanos, zone }
    }

    /// `time.Unix(0, nanos)` in the `Local` (UTC) location.
    pub(crate) fn from_unix_nanos(nanos: i64) -> Self {
        GoTime {
            secs: nanos.div_euclid(1_000_000_000),
            nanos: nanos.rem_euclid(1_000_000_000) as u32,
            zone: Zone::Utc,
        }
    }

    /// `time.Unix(secs, 0)`.
    pub(crate) fn from_unix(secs: i64) -> Self {
        GoTime {
            secs,
            nanos: 0,
            zone: Zone::Utc,
        }
    }

    /// Go's zero `time.Time`: January 1, year 1, 00:00:00 UTC.
    pub(crate) fn zero() -> Self {
        GoTime {
            secs: ZERO_TIME_UNIX,
            nanos: 0,
            zone: Zone::Utc,
        }
    }

    /// `time.Now()`.
    pub(crate) fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        GoTime {
            secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: d.subsec_nanos(),
            zone: Zone::Utc,
        }
    }

    pub(crate) fn in_zone(&self, zone: Zone) -> Self {
        GoTime {
            secs: self.secs,
            nanos: self.nanos,
            zone,
        }
    }

    pub(crate) fn unix(&self) -> i64 {
        self.secs
    }

    /// `Time.UnixMilli()`.
    pub(crate) fn unix_milli(&self) -> i64 {
        self.secs
            .wrapping_mul(1000)
            .wrapping_add(i64::from(self.nanos / 1_000_000))
    }

    /// `Time.UnixNano()` (wraps outside 1678..2262 as Go's does).
    pub(crate) fn unix_nano(&self) -> i64 {
        self.secs
            .wrapping_mul(1_000_000_000)
            .wrapping_add(i64::from(self.nanos))
    }

    /// The same instant and zone (Go's `==` on times with equal locations).
    pub(crate) fn same_instant(&self, other: &GoTime) -> bool {
        self.secs == other.secs && self.nanos == other.nanos
    }

    fn civil(&self) -> (Civil, i32, String) {
        let (offset, abbrev) = self.zone.lookup(self.secs);
        let local = self.secs + i64::from(offset);
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400);
        let (year, month, day) = crate::model::time::civil_from_days(days);
        let yday = (days - days_from_civil(year, 1, 1) + 1) as u32;
        let weekday = (days + 4).rem_euclid(7) as u32;
        (
            Civil {
                year,
                month,
                day,
                hour: (sod / 3600) as u32,
                min: ((sod / 60) % 60) as u32,
                sec: (sod % 60) as u32,
                yday,
                weekday,
            },
            offset,
            abbrev,
        )
    }

    /// `Time.Format(layout)`, appended to `out`.
    pub(crate) fn format_into(&self, out: &mut String, layout: &str) {
        let (c, offset, abbrev) = self.civil();
        let mut rest = layout;
        while !rest.is_empty() {
            let (prefix, std, suffix) = next_std_chunk(rest);
            out.push_str(prefix);
            let Some(std) = std else { break };
            rest = suffix;
            match std {
                Std::Year => pad(out, c.year.rem_euclid(100), 2),
                Std::LongYear => pad(out, c.year, 4),
                Std::Month => out.push_str(&LONG_MONTHS[(c.month - 1) as usize][..3]),
                Std::LongMonth => out.push_str(LONG_MONTHS[(c.month - 1) as usize]),
                Std::NumMonth => pad(out, i64::from(c.month), 0),
                Std::ZeroMonth => pad(out, i64::from(c.month), 2),
                Std::WeekDay => out.push_str(&LONG_DAYS[c.weekday as usize][..3]),
                Std::LongWeekDay => out.push_str(LONG_DAYS[c.weekday as usize]),
                Std::Day => pad(out, i64::from(c.day), 0),
                Std::UnderDay => {
                    if c.day < 10 {
                        out.push(' ');
                    }
                    pad(out, i64::from(c.day), 0);
                }
                Std::ZeroDay => pad(out, i64::from(c.day), 2),
                Std::UnderYearDay => {
                    if c.yday < 100 {
                        out.push(' ');
                        if c.yday < 10 {
                            out.push(' ');
                        }
                    }
                    pad(out, i64::from(c.yday), 0);
                }
                Std::ZeroYearDay => pad(out, i64::from(c.yday), 3),
                Std::Hour => pad(out, i64::from(c.hour), 2),
                Std::Hour12 | Std::ZeroHour12 => {
                    let h = match c.hour % 12 {
                        0 => 12,
                        h => h,
                    };
                    pad(out, i64::from(h), if std == Std::Hour12 { 0 } else { 2 });
                }
                Std::Minute => pad(out, i64::from(c.min), 0),
                Std::ZeroMinute => pad(out, i64::from(c.min), 2),
                Std::Second => pad(out, i64::from(c.sec), 0),
                Std::ZeroSecond => pad(out, i64::from(c.sec), 2),
                Std::Pm => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
                Std::LowerPm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
                Std::Tz => {
                    if abbrev.is_empty() {
                        let zone = offset / 60;
                        out.push(if zone < 0 { '-' } else { '+' });
                        pad(out, i64::from(zone.abs() / 60), 2);
                        pad(out, i64::from(zone.abs() % 60), 2);
                    } else {
                        out.push_str(&abbrev);
                    }
                }
                Std::NumTz(z) => write_offset(out, offset, z),
                Std::Frac { digits, nines, sep } => {
                    append_nano(out, self.nanos, digits, nines, sep);
                }
            }
        }
    }

    pub(crate) fn format(&self, layout: &str) -> String {
        let mut s = String::with_capacity(layout.len() + 10);
        self.format_into(&mut s, layout);
        s
    }

    /// `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
    pub(crate) fn write_go_string(&self, out: &mut String) {
        self.format_into(out, "2006-01-02 15:04:05.999999999 -0700 MST");
    }

    /// `time.ParseInLocation(layout, value, zone)`.
    pub(crate) fn parse_in(layout: &str, value: &str, zone: &Zone) -> Result<GoTime, String> {
        parse(layout, value, zone)
    }
}

fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    let _ = write!(out, "{:0width$}", v.unsigned_abs());
}

/// How a numeric zone offset chunk prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NumTz {
    /// `Z` variants print `Z` for UTC.
    iso: bool,
    colon: bool,
    /// Hours only (`-07`).
    short: bool,
    seconds: bool,
}

fn write_offset(out: &mut String, offset: i32, z: NumTz) {
    if offset == 0 && z.iso {
        out.push('Z');
        return;
    }
    let mut zone = offset / 60;
    let mut abs = offset;
    if zone < 0 {
        out.push('-');
        zone = -zone;
        abs = -abs;
    } else {
        out.push('+');
    }
    pad(out, i64::from(zone / 60), 2);
    if z.colon {
        out.push(':');
    }
    if !z.short {
        pad(out, i64::from(zone % 60), 2);
    }
    if z.seconds {
        if z.colon {
            out.push(':');
        }
        pad(out, i64::from(abs % 60), 2);
    }
}

fn append_nano(out: &mut String, nanos: u32, digits: usize, nines: bool, sep: char) {
    if nines && (digits == 0 || nanos == 0) {
        return;
    }
    let start = out.len();
    out.push(sep);
    let all = format!("{nanos:09}");
    out.push_str(&all[..digits.min(9)]);
    if nines {
        while out.ends_with('0') && out.len() > start + 1 {
            out.pop();
        }
        if out.len() == start + 1 {
            out.pop();
        }
    }
}

/// One element of a Go layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm,
    LowerPm,
    Tz,
    NumTz(NumTz),
    Frac {
        digits: usize,
        nines: bool,
        sep: char,
    },
}

const fn num_tz(iso: bool, colon: bool, short: bool, seconds: bool) -> Std {
    Std::NumTz(NumTz {
        iso,
        colon,
        short,
        seconds,
    })
}

fn starts_with_lower(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

/// Go's `nextStdChunk`: the text before the first layout element, the
/// element, and the rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout[i..].starts_with(s);
    for i in 0..b.len() {
        let found: Option<(Std, usize)> = match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    Some((Std::LongMonth, 7))
                } else if !starts_with_lower(&layout[i + 3..]) {
                    Some((Std::Month, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "Mon") => {
                if at(i, "Monday") {
                    Some((Std::LongWeekDay, 6))
                } else if !starts_with_lower(&layout[i + 3..]) {
                    Some((Std::WeekDay, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "MST") => Some((Std::Tz, 3)),
            b'0' if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) => {
                let std = [
                    Std::ZeroMonth,
                    Std::ZeroDay,
                    Std::ZeroHour12,
                    Std::ZeroMinute,
                    Std::ZeroSecond,
                    Std::Year,
                ][(b[i + 1] - b'1') as usize];
                Some((std, 2))
            }
            b'0' if at(i, "002") => Some((Std::ZeroYearDay, 3)),
            b'1' => {
                if at(i, "15") {
                    Some((Std::Hour, 2))
                } else {
                    Some((Std::NumMonth, 1))
                }
            }
            b'2' => {
                if at(i, "2006") {
                    Some((Std::LongYear, 4))
                } else {
                    Some((Std::Day, 1))
                }
            }
            b'_' if at(i, "_2") => {
                if at(i, "_2006") {
                    // A literal underscore followed by the long year.
                    return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
                }
                Some((Std::UnderDay, 2))
            }
            b'_' if at(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if at(i, "PM") => Some((Std::Pm, 2)),
            b'p' if at(i, "pm") => Some((Std::LowerPm, 2)),
            b'-' if at(i, "-070000") => Some((num_tz(false, false, false, true), 7)),
            b'-' if at(i, "-07:00:00") => Some((num_tz(false, true, false, true), 9)),
            b'-' if at(i, "-0700") => Some((num_tz(false, false, false, false), 5)),
            b'-' if at(i, "-07:00") => Some((num_tz(false, true, false, false), 6)),
            b'-' if at(i, "-07") => Some((num_tz(false, false, true, false), 3)),
            b'Z' if at(i, "Z070000") => Some((num_tz(true, false, false, true), 7)),
            b'Z' if at(i, "Z07:00:00") => Some((num_tz(true, true, false, true), 9)),
            b'Z' if at(i, "Z0700") => Some((num_tz(true, false, false, false), 5)),
            b'Z' if at(i, "Z07:00") => Some((num_tz(true, true, false, false), 6)),
            b'Z' if at(i, "Z07") => Some((num_tz(true, false, true, false), 3)),
            c @ (b'.' | b',') if i + 1 < b.len() && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                // Only a fractional second if no digit follows the run.
                if j < b.len() && b[j].is_ascii_digit() {
                    None
                } else {
                    let std = Std::Frac {
                        digits: j - (i + 1),
                        nines: ch == b'9',
                        sep: c as char,
                    };
                    return (&layout[..i], Some(std), &layout[j..]);
                }
            }
            _ => None,
        };
        if let Some((std, len)) = found {
            return (&layout[..i], Some(std), &layout[i + len..]);
        }
    }
    (layout, None, "")
}

const BAD: &str = "bad value for field";

fn is_digit_at(s: &str, i: usize) -> bool {
    s.as_bytes().get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &str, fixed: bool) -> Result<(i64, &str), &'static str> {
    if !is_digit_at(s, 0) {
        return Err(BAD);
    }
    let b = s.as_bytes();
    if !is_digit_at(s, 1) {
        if fixed {
            return Err(BAD);
        }
        return Ok((i64::from(b[0] - b'0'), &s[1..]));
    }
    Ok((
        i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0'),
        &s[2..],
    ))
}

/// Go's `getnum3`: one to three digits (exactly three when `fixed`).
fn getnum3(s: &str, fixed: bool) -> Result<(i64, &str), &'static str> {
    let mut n = 0i64;
    let mut i = 0;
    while i < 3 && is_digit_at(s, i) {
        n = n * 10 + i64::from(s.as_bytes()[i] - b'0');
        i += 1;
    }
    if i == 0 || (fixed && i != 3) {
        return Err(BAD);
    }
    Ok((n, &s[i..]))
}

/// Case-insensitive (ASCII) prefix lookup of a name table.
fn lookup<'v>(table: &[&str], val: &'v str, short: bool) -> Result<(usize, &'v str), &'static str> {
    for (i, name) in table.iter().enumerate() {
        let name = if short { &name[..3] } else { name };
        if val.len() >= name.len()
            && val.as_bytes()[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        {
            return Ok((i, &val[name.len()..]));
        }
    }
    Err(BAD)
}

fn parse_nanoseconds(value: &str, nbytes: usize) -> Result<u32, &'static str> {
    if !matches!(value.as_bytes().first(), Some(b'.' | b',')) {
        return Err(BAD);
    }
    let nbytes = nbytes.min(10);
    let digits = value.get(1..nbytes).ok_or(BAD)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD);
    }
    let mut ns: u64 = digits.parse().map_err(|_| BAD)?;
    for _ in 0..(10 - nbytes) {
        ns *= 10;
    }
    u32::try_from(ns).map_err(|_| BAD)
}

/// Go's `parseTimeZone`: the length of a zone abbreviation at the start.
fn parse_time_zone(value: &str) -> Option<usize> {
    let b = value.as_bytes();
    if b.len() < 3 {
        return None;
    }
    if value.starts_with("ChST") || value.starts_with("MeST") {
        return Some(4);
    }
    if let Some(rest) = value.strip_prefix("GMT") {
        return Some(3 + parse_signed_offset(rest));
    }
    if b[0] == b'+' || b[0] == b'-' {
        let n = parse_signed_offset(value);
        return if n > 0 { Some(n) } else { None };
    }
    let upper = b
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    match upper {
        5 if b[4] == b'T' => Some(5),
        4 if b[3] == b'T' || value.starts_with("WITA") => Some(4),
        3 => Some(3),
        _ => None,
    }
}

fn parse_signed_offset(value: &str) -> usize {
    let b = value.as_bytes();
    if !matches!(b.first(), Some(b'+' | b'-')) {
        return 0;
    }
    let digits = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return 0;
    }
    match value[1..1 + digits].parse::<u64>() {
        Ok(x) if x <= 23 => 1 + digits,
        _ => 0,
    }
}

fn parse(layout: &str, value: &str, loc: &Zone) -> Result<GoTime, String> {
    let fail = |what: &str| format!("parsing time {value:?} as {layout:?}: {what}");
    let (mut year, mut month, mut day, mut yday) = (0i64, -1i64, -1i64, -1i64);
    let (mut hour, mut min, mut sec, mut nsec) = (0i64, 0i64, 0i64, 0u32);
    let mut zone_utc = false;
    let mut zone_offset: Option<i32> = None;
    let mut zone_name = String::new();
    let (mut am, mut pm) = (false, false);
    let mut layout_rest = layout;
    let mut v = value;
    loop {
        let (prefix, std, suffix) = next_std_chunk(layout_rest);
        let elem = &layout_rest[prefix.len()..layout_rest.len() - suffix.len()];
        // Skip the literal prefix; spaces in the layout match any run of spaces.
        v = skip(v, prefix).map_err(|_| fail(&format!("cannot parse {v:?} as {prefix:?}")))?;
        let Some(std) = std else {
            if !v.is_empty() {
                return Err(fail(&format!("extra text: {v:?}")));
            }
            break;
        };
        layout_rest = suffix;
        let hold = v;
        let mut range_err: Option<&str> = None;
        let res: Result<(), &str> = (|| {
            match std {
                Std::Year => {
                    let p = v.get(..2).ok_or(BAD)?;
                    if !p.bytes().all(|c| c.is_ascii_digit()) {
                        return Err(BAD);
                    }
                    v = &v[2..];
                    let y: i64 = p.parse().map_err(|_| BAD)?;
                    year = if y >= 69 { y + 1900 } else { y + 2000 };
                }
                Std::LongYear => {
                    let p = v.get(..4).ok_or(BAD)?;
                    if !p.bytes().all(|c| c.is_ascii_digit()) {
                        return Err(BAD);
                    }
                    v = &v[4..];
                    year = p.parse().map_err(|_| BAD)?;
                }
                Std::Month | Std::LongMonth => {
                    let (m, r) = lookup(&LONG_MONTHS, v, std == Std::Month)?;
                    month = m as i64 + 1;
                    v = r;
                }
                Std::NumMonth | Std::ZeroMonth => {
                    let (m, r) = getnum(v, std == Std::ZeroMonth)?;
                    v = r;
                    month = m;
                    if !(1..=12).contains(&m) {
                        range_err = Some("month");
                    }
                }
                Std::WeekDay | Std::LongWeekDay => {
                    let (_, r) = lookup(&LONG_DAYS, v, std == Std::WeekDay)?;
                    v = r;
                }
                Std::Day | Std::UnderDay | Std::ZeroDay => {
                    if std == Std::UnderDay && v.starts_with(' ') {
                        v = &v[1..];
                    }
                    let (d, r) = getnum(v, std == Std::ZeroDay)?;
                    day = d;
                    v = r;
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    for _ in 0..2 {
                        if std == Std::UnderYearDay && v.starts_with(' ') {
                            v = &v[1..];
                        }
                    }
                    let (d, r) = getnum3(v, std == Std::ZeroYearDay)?;
                    yday = d;
                    v = r;
                }
                Std::Hour => {
                    let (h, r) = getnum(v, false)?;
                    hour = h;
                    v = r;
                    if h >= 24 {
                        range_err = Some("hour");
                    }
                }
                Std::Hour12 | Std::ZeroHour12 => {
                    let (h, r) = getnum(v, std == Std::ZeroHour12)?;
                    hour = h;
                    v = r;
                    if h > 12 {
                        range_err = Some("hour");
                    }
                }
                Std::Minute | Std::ZeroMinute => {
                    let (m, r) = getnum(v, std == Std::ZeroMinute)?;
                    min = m;
                    v = r;
                    if m >= 60 {
                        range_err = Some("minute");
                    }
                }
                Std::Second | Std::ZeroSecond => {
                    let (s, r) = getnum(v, std == Std::ZeroSecond)?;
                    sec = s;
                    v = r;
                    if s >= 60 {
                        range_err = Some("second");
                        return Ok(());
                    }
                    // A fractional second in the value but not in the layout.
                    if v.len() >= 2 && matches!(v.as_bytes()[0], b'.' | b',') && is_digit_at(v, 1) {
                        let (_, next, _) = next_std_chunk(layout_rest);
                        if matches!(next, Some(Std::Frac { .. })) {
                            return Ok(());
                        }
                        let mut n = 2;
                        while is_digit_at(v, n) {
                            n += 1;
                        }
                        nsec = parse_nanoseconds(v, n)?;
                        v = &v[n..];
                    }
                }
                Std::Pm | Std::LowerPm => {
                    let p = v.get(..2).ok_or(BAD)?;
                    let (a, pmw) = if std == Std::Pm {
                        ("AM", "PM")
                    } else {
                        ("am", "pm")
                    };
                    if p == pmw {
                        pm = true;
                    } else if p == a {
                        am = true;
                    } else {
                        return Err(BAD);
                    }
                    v = &v[2..];
                }
                Std::NumTz(z) => {
                    if z.iso && v.starts_with('Z') {
                        v = &v[1..];
                        zone_utc = true;
                        return Ok(());
                    }
                    let b = v.as_bytes();
                    // Every offset form is ASCII; anything else is a bad value
                    // (and must not be sliced through a UTF-8 sequence).
                    let needed = match (z.short, z.colon, z.seconds) {
                        (true, _, _) => 3,
                        (false, true, true) => 9,
                        (false, true, false) => 6,
                        (false, false, true) => 7,
                        (false, false, false) => 5,
                    };
                    if b.len() < needed || !b[..needed].is_ascii() {
                        return Err(BAD);
                    }
                    let (sign, hh, mm, ss, rest) = if z.colon && !z.seconds {
                        if b.len() < 6 || b[3] != b':' {
                            return Err(BAD);
                        }
                        (&v[0..1], &v[1..3], &v[4..6], "00", &v[6..])
                    } else if z.short {
                        if b.len() < 3 {
                            return Err(BAD);
                        }
                        (&v[0..1], &v[1..3], "00", "00", &v[3..])
                    } else if z.colon {
                        if b.len() < 9 || b[3] != b':' || b[6] != b':' {
                            return Err(BAD);
                        }
                        (&v[0..1], &v[1..3], &v[4..6], &v[7..9], &v[9..])
                    } else if z.seconds {
                        if b.len() < 7 {
                            return Err(BAD);
                        }
                        (&v[0..1], &v[1..3], &v[3..5], &v[5..7], &v[7..])
                    } else {
                        if b.len() < 5 {
                            return Err(BAD);
                        }
                        (&v[0..1], &v[1..3], &v[3..5], "00", &v[5..])
                    };
                    let (h, _) = getnum(hh, true)?;
                    let (m, _) = getnum(mm, true)?;
                    let (s, _) = getnum(ss, true)?;
                    if h > 24 {
                        range_err = Some("time zone offset hour");
                    }
                    if m > 60 {
                        range_err = Some("time zone offset minute");
                    }
                    if s > 60 {
                        range_err = Some("time zone offset second");
                    }
                    let off = ((h * 60 + m) * 60 + s) as i32;
                    zone_offset = Some(match sign {
                        "+" => off,
                        "-" => -off,
                        _ => return Err(BAD),
                    });
                    v = rest;
                }
                Std::Tz => {
                    if v.starts_with("UTC") {
                        zone_utc = true;
                        v = &v[3..];
                        return Ok(());
                    }
                    let n = parse_time_zone(v).ok_or(BAD)?;
                    zone_name = v[..n].to_string();
                    v = &v[n..];
                }
                Std::Frac { digits, nines, .. } => {
                    if !nines {
                        let n = 1 + digits;
                        if v.len() < n {
                            return Err(BAD);
                        }
                        nsec = parse_nanoseconds(v, n)?;
                        v = &v[n..];
                    } else {
                        let b = v.as_bytes();
                        if b.len() < 2 || !matches!(b[0], b'.' | b',') || !b[1].is_ascii_digit() {
                            return Ok(());
                        }
                        let mut i = 0;
                        while i + 1 < b.len() && b[i + 1].is_ascii_digit() {
                            i += 1;
                        }
                        nsec = parse_nanoseconds(v, 1 + i)?;
                        v = &v[1 + i..];
                    }
                }
            }
            Ok(())
        })();
        if let Some(what) = range_err {
            return Err(fail(&format!("{what} out of range")));
        }
        if res.is_err() {
            return Err(fail(&format!("cannot parse {hold:?} as {elem:?}")));
        }
    }
    if pm && hour < 12 {
        hour += 12;
    } else if am && hour == 12 {
        hour = 0;
    }
    if yday >= 0 {
        let mut m = 0i64;
        let mut d = yday;
        if !(1..=365 + i64::from(is_leap(year))).contains(&yday) {
            return Err(fail("day-of-year out of range"));
        }
        for mo in 1..=12u32 {
            let dim = i64::from(days_in(mo, year));
            if d <= dim {
                m = i64::from(mo);
                break;
            }
            d -= dim;
        }
        if month >= 0 && month != m {
            return Err(fail("day-of-year does not match month"));
        }
        if day >= 0 && day != d {
            return Err(fail("day-of-year does not match day"));
        }
        month = m;
        day = d;
    } else {
        if month < 0 {
            month = 1;
        }
        if day < 0 {
            day = 1;
        }
    }
    if day < 1 || day > i64::from(days_in(month as u32, year)) {
        return Err(fail("day out of range"));
    }
    let local =
        days_from_civil(year, month as u32, day as u32) * 86_400 + hour * 3600 + min * 60 + sec;
    if zone_utc {
        return Ok(GoTime::new(local, nsec, Zone::Utc));
    }
    if let Some(off) = zone_offset {
        let t = local - i64::from(off);
        let (loc_off, loc_name) = loc.lookup(t);
        if loc_off == off && (zone_name.is_empty() || loc_name == zone_name) {
            return Ok(GoTime::new(t, nsec, loc.clone()));
        }
        return Ok(GoTime::new(
            t,
            nsec,
            Zone::Fixed {
                name: zone_name,
                offset: off,
            },
        ));
    }
    if !zone_name.is_empty() {
        // Is it the abbreviation the location uses at that time?
        let guess = local - i64::from(loc.offset_at(local));
        let (off, name) = loc.lookup(guess);
        if name == zone_name {
            return Ok(GoTime::new(local - i64::from(off), nsec, loc.clone()));
        }
        let mut offset = 0;
        if zone_name.len() > 3 && zone_name.starts_with("GMT") {
            offset = zone_name[3..].parse::<i32>().unwrap_or(0) * 3600;
        }
        return Ok(GoTime::new(
            local,
            nsec,
            Zone::Fixed {
                name: zone_name,
                offset,
            },
        ));
    }
    // Go's Date: guess the offset at the local time, then correct it once.
    let off1 = loc.offset_at(local);
    let off = loc.offset_at(local - i64::from(off1));
    Ok(GoTime::new(local - i64::from(off), nsec, loc.clone()))
}

/// Go's `skip`: matches the literal `prefix`, where a run of spaces in the
/// layout matches a (possibly empty) run of spaces in the value.
fn skip<'v>(mut value: &'v str, mut prefix: &str) -> Result<&'v str, ()> {
    while !prefix.is_empty() {
        if prefix.starts_with(' ') {
            if !value.is_empty() && !value.starts_with(' ') {
                return Err(());
            }
            prefix = prefix.trim_start_matches(' ');
            value = value.trim_start_matches(' ');
            continue;
        }
        let c = prefix.chars().next().ok_or(())?;
        if !value.starts_with(c) {
            return Err(());
        }
        prefix = &prefix[c.len_utf8()..];
        value = &value[c.len_utf8()..];
    }
    Ok(value)
}

/// `time.ParseDuration(s)` in nanoseconds.
pub(crate) fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next()
        && (c == '-' || c == '+')
    {
        neg = c == '-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &b[..n] {
            v = v
                .checked_mul(10)
                .and_then(|x| x.checked_add(u64::from(c - b'0')))
                .filter(|x| *x <= 1 << 63)
                .ok_or_else(invalid)?;
        }
        let pre = n > 0;
        s = &s[n..];
        // Fraction.
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if s.starts_with('.') {
            s = &s[1..];
            let fb = s.as_bytes();
            let n = fb.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &fb[..n] {
                if overflow {
                    continue;
                }
                match f
                    .checked_mul(10)
                    .and_then(|x| x.checked_add(u64::from(c - b'0')))
                {
                    Some(x) if x <= 1 << 63 => {
                        f = x;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            post = n > 0;
            s = &s[n..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        // Unit.
        let n = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if n == 0 {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let u = &s[..n];
        s = &s[n..];
        let unit: u64 = match u {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {u:?} in duration {orig:?}")),
        };
        if v > (1u64 << 63) / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        d += v;
        if d > 1 << 63 {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    i64::try_from(d).map_err(|_| invalid())
}

/// Go's `Duration.Seconds()`.
pub(crate) fn duration_seconds(nanos: i64) -> f64 {
    let sec = nanos / 1_000_000_000;
    let nsec = nanos % 1_000_000_000;
    sec as f64 + nsec as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    // Mon Jan 2 15:04:05 MST 2006 is 1136239445.
    const REF: i64 = 1_136_239_445;

    fn fmt_utc(secs: i64, nanos: u32, layout: &str) -> String {
        GoTime::new(secs, nanos, Zone::Utc).format(layout)
    }

    #[test]
    fn formats_go_layouts() {
        let t = GoTime::new(REF, 123_456_789, Zone::Utc);
        assert_eq!(
            t.format("2006-01-02T15:04:05.000Z07:00"),
            "2006-01-02T22:04:05.123Z"
        );
        assert_eq!(
            t.format("Mon Jan _2 3:4:5 PM 06"),
            "Mon Jan  2 10:4:5 PM 06"
        );
        assert_eq!(
            t.format("Monday January 2 2006 .999999"),
            "Monday January 2 2006 .123456"
        );
        assert_eq!(
            t.format("15:04:05,000 MST -0700 -07:00 Z0700"),
            "22:04:05,123 UTC +0000 +00:00 Z"
        );
        assert_eq!(t.format("__2 002 pm"), "  2 002 pm");
        assert_eq!(t.format("Janx Monx"), "Janx Monx");
        let fixed = Zone::Fixed {
            name: String::new(),
            offset: -(5 * 3600 + 30 * 60),
        };
        let t = GoTime::new(REF, 0, fixed);
        assert_eq!(
            t.format("15:04 MST -07:00:00 Z07"),
            "16:34 -0530 -05:30:00 -05"
        );
        // The loki fmt test layout: "Z00:00" is literal text.
        assert_eq!(
            fmt_utc(1_656_353_124, 120_000_000, "2006-01-02T15:04:05.00Z00:00"),
            "2022-06-27T18:05:24.12Z00:00"
        );
        assert_eq!(
            GoTime::zero().format("2006-01-02 15:04:05"),
            "0001-01-01 00:00:00"
        );
        let mut s = String::new();
        GoTime::from_unix(REF).write_go_string(&mut s);
        assert_eq!(s, "2006-01-02 22:04:05 +0000 UTC");
    }

    #[test]
    fn parses_go_layouts() {
        let p = |l: &str, v: &str| GoTime::parse_in(l, v, &Zone::Utc).map(|t| (t.unix(), t.nanos));
        assert_eq!(p("2006-01-02", "2021-11-02"), Ok((1_635_811_200, 0)));
        assert_eq!(
            p("2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05-07:00"),
            Ok((REF, 0))
        );
        assert_eq!(
            p("2006-01-02 15:04:05", "2006-01-02 22:04:05.25"),
            Ok((REF, 250_000_000))
        );
        assert_eq!(
            p("Jan _2 15:04:05 2006", "jan  2 22:04:05 2006"),
            Ok((REF, 0))
        );
        assert_eq!(
            p("3:04PM 2006-01-02", "10:04PM 2006-01-02"),
            Ok((REF - 5, 0))
        );
        assert_eq!(
            p("2006-01-02T15:04:05.999999999Z", "2006-01-02T22:04:05.5Z"),
            Ok((REF, 500_000_000))
        );
        assert!(p("2006-01-02", "2021-02-30").is_err());
        assert!(p("2006-01-02", "2021-11-02x").is_err());
        assert!(p("2006-01-02", "21-11-02").is_err());
        assert!(p("15:04", "25:00").is_err());
    }

    #[test]
    fn parses_in_named_zones() {
        let Ok(zone) = load_location("Europe/Berlin") else {
            // No tz database on this machine; the error path is tested below.
            return;
        };
        let t = GoTime::parse_in("2006-01-02 15:04", "2021-07-01 12:00", &zone).unwrap();
        assert_eq!(t.unix(), 1_625_133_600);
        assert_eq!(t.format("15:04 MST -07:00"), "12:00 CEST +02:00");
        let t = GoTime::parse_in("2006-01-02 15:04", "2021-01-01 12:00", &zone).unwrap();
        assert_eq!(t.format("15:04 MST"), "12:00 CET");
        assert!(load_location("Not/AZone").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("731us"), Ok(731_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("-2s"), Ok(-2_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration(".5s"), Ok(500_000_000));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1").unwrap_err().contains("missing unit"));
        assert!(parse_duration("1x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("3000000h").is_err());
        assert_eq!(duration_seconds(731_000), 0.000731);
        assert_eq!(duration_seconds(5_700_000_000), 5.7);
    }
}
