//! Query parameters exactly as Loki parses them (`pkg/loghttp/params.go`,
//! `query.go`): timestamps in seconds, nanoseconds, float seconds or RFC 3339;
//! `since`; `limit`; `direction`; `step` and `interval` in float seconds or
//! durations; and the range checks with Loki's messages.
//!
//! Parameters come from the URL query and from a form-encoded POST body,
//! merged (Go's `r.ParseForm()`).

use std::time::Duration;

use crate::model::{Direction, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ParamError> {
    Err(ParamError(msg.into()))
}

/// All request parameters, URL query first then form body.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(query: Option<&str>, form_body: Option<&[u8]>) -> Params {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        if let Some(b) = form_body {
            pairs.extend(form_urlencoded::parse(b).into_owned());
        }
        Params { pairs }
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        Params { pairs }
    }

    /// The first value of `key` (empty values count as absent, as Go's `Form.Get` + `== ""`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn get_all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }
}

/// Loki's `parseTimestamp`: float seconds (with a `.`, rounded to ms), integer
/// seconds (≤ 10 characters) or nanoseconds, else RFC 3339.
pub fn parse_timestamp(value: &str) -> Result<Timestamp, ParamError> {
    if value.contains('.')
        && let Ok(f) = value.parse::<f64>()
    {
        let secs = f.trunc();
        let frac = ((f - secs) * 1000.0).round() / 1000.0;
        return Ok(Timestamp::from_nanos(
            (secs as i64)
                .saturating_mul(1_000_000_000)
                .saturating_add((frac * 1e9) as i64),
        ));
    }
    match value.parse::<i64>() {
        Ok(n) if value.len() <= 10 => Ok(Timestamp::from_secs(n)),
        Ok(n) => Ok(Timestamp::from_nanos(n)),
        // Go's error is ParseInt's when RFC 3339 fails too.
        Err(_) => Timestamp::parse_rfc3339(value).ok_or_else(|| {
            ParamError(format!(
                "strconv.ParseInt: parsing \"{value}\": invalid syntax"
            ))
        }),
    }
}

/// Loki's `parseSecondsOrDuration`: float seconds or a Prometheus duration.
pub fn parse_seconds_or_duration(value: &str) -> Result<Duration, ParamError> {
    if let Ok(f) = value.parse::<f64>() {
        let ns = f * 1e9;
        if !ns.is_finite() || ns.abs() > i64::MAX as f64 {
            return err(format!(
                "cannot parse \"{value}\" to a valid duration. It overflows int64"
            ));
        }
        if ns < 0.0 {
            // Negative steps are reported by the caller's range check.
            return Ok(Duration::ZERO);
        }
        return Ok(Duration::from_nanos(ns as u64));
    }
    parse_prometheus_duration(value)
        .ok_or_else(|| ParamError(format!("cannot parse \"{value}\" to a valid duration")))
}

/// Prometheus' `model.ParseDuration`: integer amounts with units y w d h m
/// s ms, each at most once and from the largest to the smallest (`1h30m`,
/// `1m0s`, `500ms`); no fractions, no signs; a bare number only as `0`.
pub fn parse_prometheus_duration(value: &str) -> Option<Duration> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1_000_000_000),
        ("w", 7 * 24 * 3600 * 1_000_000_000),
        ("d", 24 * 3600 * 1_000_000_000),
        ("h", 3600 * 1_000_000_000),
        ("m", 60 * 1_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ];
    if value == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = value.as_bytes();
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    // Index into UNITS of the last unit seen: the next must be smaller.
    let mut next_unit = 0usize;
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let amount: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.iter().take_while(|b| !b.is_ascii_digit()).count();
        let unit = std::str::from_utf8(&rest[..unit_len]).ok()?;
        rest = &rest[unit_len..];
        let pos = UNITS.iter().position(|(u, _)| *u == unit)?;
        if pos < next_unit {
            return None;
        }
        next_unit = pos + 1;
        total = total.checked_add(amount.checked_mul(UNITS[pos].1)?)?;
        if total > i64::MAX as u64 {
            return None;
        }
    }
    Some(Duration::from_nanos(total))
}

/// `since` (default 1h), `start`, `end` as Loki's `determineBounds`.
pub fn bounds(p: &Params, now: Timestamp) -> Result<(Timestamp, Timestamp), ParamError> {
    let since = match p.get("since") {
        Some(s) => parse_prometheus_duration(s)
            .ok_or_else(|| ParamError(format!("cannot parse \"{s}\" to a valid duration")))?,
        None => Duration::from_secs(3600),
    };
    let end = match p.get("end") {
        Some(e) => parse_timestamp(e)?,
        None => now,
    };
    let end_or_now = if end > now { now } else { end };
    let start = match p.get("start") {
        Some(s) => parse_timestamp(s)?,
        None => {
            end_or_now.saturating_sub_nanos(i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
        }
    };
    Ok((start, end))
}

pub fn limit(p: &Params) -> Result<usize, ParamError> {
    match p.get("limit") {
        None => Ok(100),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n <= 0 => err("limit must be a positive value"),
            Ok(n) => Ok(n as usize),
            Err(_) => err(format!("strconv.Atoi: parsing \"{v}\": invalid syntax")),
        },
    }
}

pub fn direction(p: &Params) -> Result<Direction, ParamError> {
    match p.get("direction") {
        None => Ok(Direction::Backward),
        Some(d) if d.eq_ignore_ascii_case("forward") => Ok(Direction::Forward),
        Some(d) if d.eq_ignore_ascii_case("backward") => Ok(Direction::Backward),
        Some(d) => err(format!("invalid direction '{d}'")),
    }
}

/// A range query's parameters, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeParams {
    pub query: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub limit: usize,
    pub direction: Direction,
    pub step: Duration,
    pub interval: Duration,
}

pub fn range_params(p: &Params, now: Timestamp) -> Result<RangeParams, ParamError> {
    let (start, end) = bounds(p, now)?;
    let limit = limit(p)?;
    let direction = direction(p)?;
    if end < start {
        return err("end timestamp must not be before or equal to start time");
    }
    let step = match p.get("step") {
        Some(s) => {
            if s.trim_start().starts_with('-') || s.parse::<f64>().is_ok_and(|f| f <= 0.0) {
                return err(
                    "zero or negative query resolution step widths are not accepted. Try a positive integer",
                );
            }
            parse_seconds_or_duration(s)?
        }
        None => {
            let secs = (end.nanos_since(start) as f64 / 1e9 / 250.0)
                .floor()
                .max(1.0);
            Duration::from_secs(secs as u64)
        }
    };
    if step.is_zero() {
        return err(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        );
    }
    if end.nanos_since(start) as f64 / step.as_nanos() as f64 > 11_000.0 {
        return err(
            "exceeded maximum resolution of 11,000 points per time series. Try increasing the value of the step parameter",
        );
    }
    let interval = match p.get("interval") {
        Some(i) => {
            if i.trim_start().starts_with('-') {
                return err("interval must be >= 0");
            }
            parse_seconds_or_duration(i)?
        }
        None => Duration::ZERO,
    };
    Ok(RangeParams {
        query: p.get("query").unwrap_or("").to_string(),
        start,
        end,
        limit,
        direction,
        step,
        interval,
    })
}

/// An instant query's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantParams {
    pub query: String,
    pub time: Timestamp,
    pub limit: usize,
    pub direction: Direction,
}

pub fn instant_params(p: &Params, now: Timestamp) -> Result<InstantParams, ParamError> {
    let time = match p.get("time") {
        Some(t) => parse_timestamp(t)?,
        None => now,
    };
    Ok(InstantParams {
        query: p.get("query").unwrap_or("").to_string(),
        time,
        limit: limit(p)?,
        direction: direction(p)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(Some(q), None)
    }

    #[test]
    fn timestamps_like_loki() {
        assert_eq!(
            parse_timestamp("4000000000").unwrap(),
            Timestamp::from_secs(4_000_000_000),
            "10 digits: seconds"
        );
        assert_eq!(
            parse_timestamp("1793527200").unwrap(),
            Timestamp::from_secs(1_793_527_200)
        );
        assert_eq!(
            parse_timestamp("1793530800000000000").unwrap(),
            Timestamp::from_secs(1_793_530_800)
        );
        assert_eq!(
            parse_timestamp("1793527200.5").unwrap(),
            Timestamp::from_millis(1_793_527_200_500)
        );
        assert_eq!(
            parse_timestamp("1.0004").unwrap(),
            Timestamp::from_millis(1000),
            "rounded to ms"
        );
        assert_eq!(
            parse_timestamp("2026-11-01T10:00:00Z").unwrap(),
            Timestamp::from_secs(1_793_527_200)
        );
        assert_eq!(
            parse_timestamp("2026-11-01T10:00:00.000Z").unwrap(),
            Timestamp::from_secs(1_793_527_200)
        );
        assert_eq!(
            parse_timestamp("yesterday").unwrap_err().0,
            "strconv.ParseInt: parsing \"yesterday\": invalid syntax"
        );
    }

    #[test]
    fn prometheus_durations() {
        let d = |s: &str| parse_prometheus_duration(s);
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("15000ms"), Some(Duration::from_secs(15)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(
            d("1m0s"),
            Some(Duration::from_secs(60)),
            "Go's Duration.String()"
        );
        assert_eq!(d("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(d("1y2w"), Some(Duration::from_secs((365 + 14) * 86_400)));
        for bad in [
            "", "5", "1.5s", "-1m", "1s1m", "1m1m", "1us", "1ns", "10x", "m", "1h 2m",
        ] {
            assert_eq!(d(bad), None, "{bad}");
        }
        assert_eq!(d("300y"), None, "overflows int64 nanoseconds");
        assert_eq!(
            parse_seconds_or_duration("300").unwrap(),
            Duration::from_secs(300),
            "float seconds first"
        );
        assert_eq!(
            parse_seconds_or_duration("0.25").unwrap(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn default_bounds() {
        let now = Timestamp::from_secs(10_000);
        let (s, e) = bounds(&params(""), now).unwrap();
        assert_eq!((s.secs(), e.secs()), (6400, 10_000));
        let (s, _) = bounds(&params("since=5m&end=9000"), now).unwrap();
        assert_eq!(s.secs(), 8700);
        let (s, e) = bounds(&params("end=20000"), now).unwrap();
        assert_eq!(
            (s.secs(), e.secs()),
            (6400, 20_000),
            "a future end does not move the default start"
        );
        let (s, _) = bounds(&params("start=1&since=5m"), now).unwrap();
        assert_eq!(s.secs(), 1, "an explicit start wins over since");
    }

    #[test]
    fn range_checks() {
        let now = Timestamp::from_secs(1_793_534_400);
        let ok = range_params(
            &params("query=x&start=1793527200&end=1793534400&step=300000ms"),
            now,
        )
        .unwrap();
        assert_eq!(ok.step, Duration::from_secs(300));
        let ok = range_params(&params("start=1793527200&end=1793534400&step=30.5"), now).unwrap();
        assert_eq!(ok.step, Duration::from_millis(30_500));
        let dflt = range_params(&params("start=1793527200&end=1793534400"), now).unwrap();
        assert_eq!(dflt.step, Duration::from_secs(28), "floor(7200/250)");
        assert_eq!(dflt.limit, 100);
        assert_eq!(dflt.direction, Direction::Backward);
        let e = |q: &str| range_params(&params(q), now).unwrap_err().0;
        assert!(e("start=1793527200&end=1793534400&step=0").starts_with("zero or negative"));
        assert!(e("start=1793527200&end=1793534400&step=-5").starts_with("zero or negative"));
        assert!(
            e("start=1793527200&end=1793534400&step=0.5")
                .starts_with("exceeded maximum resolution")
        );
        assert_eq!(
            e("start=10&end=5"),
            "end timestamp must not be before or equal to start time"
        );
        assert_eq!(e("limit=0"), "limit must be a positive value");
        assert_eq!(e("direction=sideways"), "invalid direction 'sideways'");
        assert_eq!(
            range_params(&params("direction=FORWARD"), now)
                .unwrap()
                .direction,
            Direction::Forward
        );
        assert!(
            range_params(&params("start=5&end=5"), now).is_ok(),
            "equal bounds are accepted"
        );
    }

    #[test]
    fn form_body_merges_with_query() {
        let p = Params::parse(Some("query=a&match[]=x"), Some(b"limit=5&match%5B%5D=y"));
        assert_eq!(p.get("query"), Some("a"));
        assert_eq!(p.get("limit"), Some("5"));
        assert_eq!(p.get_all("match[]").collect::<Vec<_>>(), ["x", "y"]);
    }
}
