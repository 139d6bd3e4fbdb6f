//! Go standard-library behaviours that LogQL syntax reproduces byte for byte.
//!
//! Loki's lexer and printer lean on Go's `strconv`, `time`, Prometheus'
//! `model.Duration` and go-humanize. Queries are only compatible when number,
//! duration and byte-size literals are read and printed exactly as those
//! functions do, so this module re-implements the few functions involved:
//!
//! | Go function | here |
//! |---|---|
//! | `strconv.ParseFloat(s, 64)` | [`parse_float`] |
//! | `strconv.Atoi` | [`parse_int`] |
//! | `time.ParseDuration` | [`parse_go_duration`] |
//! | `model.ParseDuration` (Prometheus) | [`parse_prom_duration`] |
//! | `time.Duration.String` | [`format_go_duration`] |
//! | `model.Duration.String` | [`format_prom_duration`] |
//! | `humanize.ParseBytes` / `humanize.Bytes` | [`parse_bytes`] / [`format_bytes`] |
//! | `fmt.Sprint(float64)` (`%v`) | [`format_float_v`] |
//! | `strconv.FormatFloat(f, 'f', -1, 64)` | [`format_float_f`] |
//!
//! It owns no state and no LogQL knowledge. Invariant: every function is pure
//! and total (errors are returned as Go's error text, never panics).

use std::fmt::Write;

pub use crate::model::labels::go_quote as quote;

use crate::logql::log::convert;

const NANOS_PER_MILLI: i64 = 1_000_000;

/// `strconv.ParseFloat(s, 64)`, with Go's error text (e.g.
/// `strconv.ParseFloat: parsing "0x10": invalid syntax`). The one
/// implementation lives with the pipeline library's Go conversions.
pub fn parse_float(s: &str) -> Result<f64, String> {
    convert::parse_go_float(s).map_err(|e| e.to_string())
}

/// `strconv.Atoi`: a base-10 integer with an optional sign, no separators.
pub fn parse_int(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            quote(s)
        ));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", quote(s)))
}

/// Go's `time.ParseDuration`, in nanoseconds, with Go's error text.
pub fn parse_go_duration(orig: &str) -> Result<i64, String> {
    convert::parse_go_duration(orig).map_err(|e| e.to_string())
}

/// Prometheus' `model.ParseDuration` (units `y w d h m s ms`, biggest first,
/// no sign, no fraction), in nanoseconds.
pub fn parse_prom_duration(orig: &str) -> Result<i64, String> {
    match orig {
        "0" => return Ok(0),
        "" => return Err("empty duration string".to_string()),
        _ => {}
    }
    let not_valid = || format!("not a valid duration string: {}", quote(orig));
    let mut s = orig;
    let mut total: u64 = 0;
    let mut last_pos = 0;
    while !s.is_empty() {
        if !s.as_bytes()[0].is_ascii_digit() {
            return Err(not_valid());
        }
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let v: u64 = s[..digits].parse().map_err(|_| not_valid())?;
        s = &s[digits..];
        let unit_len = s.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(not_valid());
        }
        let unit_str = &s[..unit_len];
        s = &s[unit_len..];
        let (pos, mult): (u32, u64) = match unit_str {
            "y" => (1, 365 * 24 * 3_600_000_000_000),
            "w" => (2, 7 * 24 * 3_600_000_000_000),
            "d" => (3, 24 * 3_600_000_000_000),
            "h" => (4, 3_600_000_000_000),
            "m" => (5, 60_000_000_000),
            "s" => (6, 1_000_000_000),
            "ms" => (7, 1_000_000),
            _ => {
                return Err(format!(
                    "unknown unit {} in duration {}",
                    quote(unit_str),
                    quote(orig)
                ));
            }
        };
        if pos <= last_pos {
            return Err(not_valid());
        }
        last_pos = pos;
        if v > (1u64 << 63) / mult {
            return Err("duration out of range".to_string());
        }
        total = total.saturating_add(v * mult);
        if total > (1u64 << 63) - 1 {
            return Err("duration out of range".to_string());
        }
    }
    i64::try_from(total).map_err(|_| "duration out of range".to_string())
}

/// Loki's `parseDuration` for duration literals: Prometheus syntax first,
/// Go's `time.ParseDuration` as the fallback.
pub fn parse_loki_duration(s: &str) -> Option<i64> {
    parse_prom_duration(s)
        .ok()
        .or_else(|| parse_go_duration(s).ok())
}

/// Go's `time.Duration.String()`: `5m0s`, `1h30m0s`, `1.5s`, `250ms`, `0s`.
pub fn format_go_duration(ns: i64) -> String {
    let mut u = ns.unsigned_abs();
    let mut out = String::with_capacity(24);
    if ns < 0 {
        out.push('-');
    }
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".to_string(),
            1..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "\u{b5}s"),
            _ => (6, "ms"),
        };
        let (int, frac) = split_frac(u, prec);
        let _ = write!(out, "{int}{frac}{unit}");
        return out;
    }
    let (secs, frac) = split_frac(u, 9);
    u = secs;
    let s = u % 60;
    u /= 60;
    if u > 0 {
        let m = u % 60;
        u /= 60;
        if u > 0 {
            let _ = write!(out, "{u}h");
        }
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{s}{frac}s");
    out
}

/// Splits `v` into `v / 10^prec` and the fraction text (`.125`, trailing
/// zeros and the point omitted when zero), as Go's `fmtFrac`.
fn split_frac(v: u64, prec: u32) -> (u64, String) {
    let p = 10u64.pow(prec);
    let frac = v % p;
    if frac == 0 {
        return (v / p, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / p, format!(".{}", digits.trim_end_matches('0')))
}

/// Prometheus' `model.Duration.String()`: `5m`, `1h30m`, `1d`, `2w`, `0s`.
/// Sub-millisecond parts are dropped as Prometheus does; negative values get
/// a leading `-` (Prometheus prints an empty string there).
pub fn format_prom_duration(ns: i64) -> String {
    let mut ms = (ns / NANOS_PER_MILLI).unsigned_abs();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ns < 0 {
        out.push('-');
    }
    let units: [(&str, u64, bool); 7] = [
        ("y", 1000 * 60 * 60 * 24 * 365, true),
        ("w", 1000 * 60 * 60 * 24 * 7, true),
        ("d", 1000 * 60 * 60 * 24, false),
        ("h", 1000 * 60 * 60, false),
        ("m", 1000 * 60, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ];
    for (unit, mult, exact) in units {
        if exact && !ms.is_multiple_of(mult) {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            let _ = write!(out, "{v}{unit}");
            ms -= v * mult;
        }
    }
    out
}

/// go-humanize `ParseBytes`: `5MB`, `1.5KiB`, `1M`, `20kB`.
pub fn parse_bytes(s: &str) -> Option<u64> {
    convert::parse_humanize_bytes(s).ok()
}

/// go-humanize `Bytes` (SI units) with the spaces removed, as Loki prints a
/// bytes label filter: `20kB`, `5.0MB`, `9B`.
///
/// humanize rounds to one decimal (`1024` prints as `1.0kB`, which reads back
/// as 1000). When the rounded text would not read back as `b`, the exact
/// byte count is printed instead (`1024B`) so that printing never changes a
/// query's meaning.
pub fn format_bytes(b: u64) -> String {
    let human = humanize_bytes(b);
    // `EB` would lex as a float exponent, so exabytes print exactly.
    if parse_bytes(&human) == Some(b) && !human.ends_with("EB") {
        human
    } else {
        format!("{b}B")
    }
}
/// go-humanize `Bytes` with the space removed (`83MB`, `1.0kB`, `9B`).
pub fn humanize_bytes(b: u64) -> String {
    if b < 10 {
        return format!("{b}B");
    }
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let e = ((b as f64).ln() / 1000f64.ln()).floor();
    let suffix = SIZES[(e as usize).min(SIZES.len() - 1)];
    let val = ((b as f64) / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1}{suffix}")
    } else {
        format!("{val:.0}{suffix}")
    }
}

/// `fmt.Sprint(f)` for a float64 (`%v`, i.e. `strconv.FormatFloat(f, 'g', -1,
/// 64)`): `1`, `0.5`, `1e+06`, `1.5e-07`, `NaN`, `+Inf`.
pub fn format_float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Shortest round-trip digits and decimal exponent from Rust's `{:e}`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
        return out;
    }
    let dp = exp + 1; // position of the decimal point within `digits`
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let dp = dp as usize;
        if digits.len() <= dp {
            out.push_str(&digits);
            for _ in digits.len()..dp {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..dp]);
            out.push('.');
            out.push_str(&digits[dp..]);
        }
    }
    out
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`: shortest digits, never an exponent.
pub fn format_float_f(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    format!("{f}")
}

/// Go's `unicode.IsSpace`.
pub fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_parse_like_strconv() {
        assert_eq!(parse_float("1.5"), Ok(1.5));
        assert_eq!(parse_float(".5"), Ok(0.5));
        assert_eq!(parse_float("1e3"), Ok(1000.0));
        assert_eq!(parse_float("1_000"), Ok(1000.0));
        assert_eq!(parse_float("0755"), Ok(755.0));
        assert_eq!(parse_float("0x1p-2"), Ok(0.25));
        assert_eq!(
            parse_float("0x10"),
            Err(r#"strconv.ParseFloat: parsing "0x10": invalid syntax"#.to_string())
        );
        assert_eq!(
            parse_float("1e999"),
            Err(r#"strconv.ParseFloat: parsing "1e999": value out of range"#.to_string())
        );
        assert!(parse_float("0o17").is_err());
        assert!(parse_float("1__0").is_err());
    }

    #[test]
    fn atoi_is_strict() {
        assert_eq!(parse_int("10"), Ok(10));
        assert_eq!(parse_int("00"), Ok(0));
        assert!(parse_int("1.5").is_err());
        assert!(parse_int("0x10").is_err());
        assert!(parse_int("99999999999999999999").is_err());
    }

    #[test]
    fn go_durations() {
        let s = 1_000_000_000i64;
        assert_eq!(parse_go_duration("1.5h"), Ok(5400 * s));
        assert_eq!(parse_go_duration("1h30m"), Ok(5400 * s));
        assert_eq!(parse_go_duration("-5m"), Ok(-300 * s));
        assert_eq!(parse_go_duration("-0"), Ok(0));
        assert_eq!(parse_go_duration("300\u{b5}s"), Ok(300_000));
        assert_eq!(parse_go_duration(".5s"), Ok(s / 2));
        assert_eq!(
            parse_go_duration("1"),
            Err(r#"time: missing unit in duration "1""#.to_string())
        );
        assert_eq!(
            parse_go_duration("1d"),
            Err(r#"time: unknown unit "d" in duration "1d""#.to_string())
        );
        assert!(parse_go_duration(".s").is_err());
        assert!(parse_go_duration("").is_err());
        assert_eq!(parse_go_duration("-2562047h47m16.854775808s"), Ok(i64::MIN));
        assert!(parse_go_duration("2562047h47m16.854775808s").is_err());
    }

    #[test]
    fn prometheus_durations() {
        let m = 60_000_000_000i64;
        assert_eq!(parse_prom_duration("5m"), Ok(5 * m));
        assert_eq!(parse_prom_duration("1h30m"), Ok(90 * m));
        assert_eq!(parse_prom_duration("1w"), Ok(7 * 24 * 60 * m));
        assert_eq!(parse_prom_duration("0"), Ok(0));
        assert_eq!(
            parse_prom_duration("5 m"),
            Err(r#"unknown unit " m" in duration "5 m""#.to_string())
        );
        assert_eq!(
            parse_prom_duration("5m:1m"),
            Err(r#"unknown unit "m:" in duration "5m:1m""#.to_string())
        );
        assert_eq!(
            parse_prom_duration("30m1h"),
            Err(r#"not a valid duration string: "30m1h""#.to_string())
        );
        assert_eq!(
            parse_prom_duration("1.5h"),
            Err(r#"unknown unit "." in duration "1.5h""#.to_string())
        );
        assert_eq!(
            parse_prom_duration(""),
            Err("empty duration string".to_string())
        );
        assert_eq!(
            parse_prom_duration("1000y"),
            Err("duration out of range".to_string())
        );
        assert_eq!(parse_loki_duration("1.5h"), Some(5400 * 1_000_000_000));
        assert_eq!(parse_loki_duration("5"), None);
    }

    #[test]
    fn durations_print_like_go_and_prometheus() {
        let s = 1_000_000_000i64;
        assert_eq!(format_go_duration(300 * s), "5m0s");
        assert_eq!(format_go_duration(3600 * s), "1h0m0s");
        assert_eq!(format_go_duration(-300 * s), "-5m0s");
        assert_eq!(format_go_duration(1_500_000_000), "1.5s");
        assert_eq!(format_go_duration(250_000_000), "250ms");
        assert_eq!(format_go_duration(1_500), "1.5\u{b5}s");
        assert_eq!(format_go_duration(7), "7ns");
        assert_eq!(format_go_duration(0), "0s");
        assert_eq!(format_go_duration(i64::MIN), "-2562047h47m16.854775808s");
        assert_eq!(format_prom_duration(300 * s), "5m");
        assert_eq!(format_prom_duration(90 * 60 * s), "1h30m");
        assert_eq!(format_prom_duration(14 * 86_400 * s), "2w");
        assert_eq!(format_prom_duration(90 * 86_400 * s), "90d");
        assert_eq!(format_prom_duration(0), "0s");
        assert_eq!(format_prom_duration(-300 * s), "-5m");
    }

    #[test]
    fn bytes_like_humanize() {
        assert_eq!(parse_bytes("5MB"), Some(5_000_000));
        assert_eq!(parse_bytes("1M"), Some(1_000_000));
        assert_eq!(parse_bytes("2.5KiB"), Some(2560));
        assert_eq!(parse_bytes("1k"), Some(1000));
        assert_eq!(parse_bytes("0x10KB"), None);
        assert_eq!(format_bytes(20_000), "20kB");
        assert_eq!(format_bytes(5_000_000), "5.0MB");
        assert_eq!(format_bytes(9), "9B");
        assert_eq!(format_bytes(1024), "1024B", "1.0kB would read back as 1000");
        assert_eq!(
            format_bytes(5_000_000_000_000_000_000),
            "5000000000000000000B"
        );
        for b in [
            0u64,
            1,
            999,
            1000,
            1500,
            2560,
            123_456_789,
            1 << 62,
            5_000_000_000_000_000_000,
        ] {
            assert_eq!(parse_bytes(&format_bytes(b)), Some(b), "{b}");
        }
    }

    #[test]
    fn floats_print_like_fmt() {
        assert_eq!(format_float_v(1.0), "1");
        assert_eq!(format_float_v(0.5), "0.5");
        assert_eq!(format_float_v(-1500.0), "-1500");
        assert_eq!(format_float_v(1e6), "1e+06");
        assert_eq!(format_float_v(123_456.0), "123456");
        assert_eq!(format_float_v(1_234_567.0), "1.234567e+06");
        assert_eq!(format_float_v(0.0001), "0.0001");
        assert_eq!(format_float_v(0.00001), "1e-05");
        assert_eq!(format_float_v(1.5e-7), "1.5e-07");
        assert_eq!(format_float_v(1e21), "1e+21");
        assert_eq!(format_float_v(f64::NAN), "NaN");
        assert_eq!(format_float_f(1e21), "1000000000000000000000");
        assert_eq!(format_float_f(1e-7), "0.0000001");
        assert_eq!(format_float_f(0.99), "0.99");
        for f in [0.1, 1.0 / 3.0, 2.5e-300, 1.7976931348623157e308, 42.0] {
            assert_eq!(parse_float(&format_float_v(f)), Ok(f));
            assert_eq!(parse_float(&format_float_f(f)), Ok(f));
        }
    }
}
