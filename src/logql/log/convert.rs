//! Go-compatible value conversions and text helpers used by the pipeline.
//!
//! Owns: `strconv.ParseFloat`, `time.ParseDuration` and go-humanize
//! `ParseBytes` re-implemented with Go's accepted syntax and Go's exact error
//! texts (they surface to users as `__error_details__`), Loki's label-name
//! sanitising (`sanitizeLabelKey`, `appendSanitized`), Go-style UTF-8 decoding
//! (one replacement per invalid byte), and `strconv.FormatFloat(v, 'f', -1)`.
//!
//! Does not own: deciding *when* a conversion error becomes a pipeline error;
//! that is the label filters' job.
//!
//! Invariants: every function here is pure and allocation-free on success,
//! except where it returns an owned `String`.

use std::fmt;

use crate::model::labels::write_go_quoted;

/// A conversion failure, displayed exactly as Go prints it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// `strconv.ParseFloat` rejected the syntax.
    #[error("strconv.ParseFloat: parsing {}: invalid syntax", GoQuoted(.input))]
    FloatSyntax { input: String },
    /// `strconv.ParseFloat` overflowed (the value is beyond ±MaxFloat64).
    #[error("strconv.ParseFloat: parsing {}: value out of range", GoQuoted(.input))]
    FloatRange { input: String },
    /// `time.ParseDuration` rejected the syntax or overflowed.
    #[error("time: invalid duration {}", TimeQuoted(.input))]
    InvalidDuration { input: String },
    /// `time.ParseDuration` found a number without a unit.
    #[error("time: missing unit in duration {}", TimeQuoted(.input))]
    MissingUnit { input: String },
    /// `time.ParseDuration` found an unknown unit.
    #[error("time: unknown unit {} in duration {}", TimeQuoted(.unit), TimeQuoted(.input))]
    UnknownUnit { unit: String, input: String },
    /// go-humanize `ParseBytes` did not know the size suffix.
    #[error("unhandled size name: {name}")]
    UnhandledSizeName { name: String },
    /// go-humanize `ParseBytes` overflowed a u64.
    #[error("too large: {input}")]
    BytesTooLarge { input: String },
}

/// Displays a string as Go's `strconv.Quote` does.
struct GoQuoted<'a>(&'a str);

impl fmt::Display for GoQuoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_go_quoted(f, self.0)
    }
}

/// Displays a string as the `time` package's private `quote` does: ASCII
/// printable characters verbatim (with `"` and `\` escaped), every other
/// byte as `\xNN`.
struct TimeQuoted<'a>(&'a str);

impl fmt::Display for TimeQuoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            if (c as u32) >= 0x80 || c < ' ' {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    write!(f, "\\x{b:02x}")?;
                }
            } else {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        f.write_str("\"")
    }
}

// ---------------------------------------------------------------------------
// strconv.ParseFloat
// ---------------------------------------------------------------------------

/// Parses `s` as Go's `strconv.ParseFloat(s, 64)` does: decimal and
/// hexadecimal (`0x1.8p3`, exponent required) floating-point literals,
/// optional sign, `_` digit separators where Go syntax allows them, and the
/// case-insensitive specials `inf`, `infinity` (signed) and `nan`.
pub fn parse_go_float(s: &str) -> Result<f64, ConvertError> {
    if let Some(v) = parse_special(s) {
        return Ok(v);
    }
    let syntax = || ConvertError::FloatSyntax {
        input: s.to_string(),
    };
    let scan = scan_float(s.as_bytes()).ok_or_else(syntax)?;
    let value = if scan.hex {
        hex_float_value(s.as_bytes(), &scan)
    } else if scan.underscores {
        let cleaned: String = s.chars().filter(|&c| c != '_').collect();
        cleaned.parse::<f64>().map_err(|_| syntax())?
    } else {
        s.parse::<f64>().map_err(|_| syntax())?
    };
    if value.is_infinite() {
        return Err(ConvertError::FloatRange {
            input: s.to_string(),
        });
    }
    Ok(value)
}

fn parse_special(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (sign, rest) = match b.first()? {
        b'+' => (1.0, &b[1..]),
        b'-' => (-1.0, &b[1..]),
        _ => (1.0, b),
    };
    let lower = |x: &[u8], word: &str| x.eq_ignore_ascii_case(word.as_bytes());
    if lower(rest, "inf") || lower(rest, "infinity") {
        return Some(sign * f64::INFINITY);
    }
    if rest.len() == b.len() && lower(rest, "nan") {
        return Some(f64::NAN);
    }
    None
}

struct FloatScan {
    hex: bool,
    underscores: bool,
    /// Byte range of the mantissa (after sign and `0x`).
    mantissa: (usize, usize),
    /// Decimal exponent value for hex floats (power of two), sign applied.
    exp: i64,
}

/// Go's `readFloat` syntax check; `None` when the whole of `s` is not a
/// well-formed float literal.
fn scan_float(s: &[u8]) -> Option<FloatScan> {
    let mut i = 0;
    if matches!(s.first(), Some(b'+') | Some(b'-')) {
        i += 1;
    }
    let mut hex = false;
    if i + 2 < s.len() && s[i] == b'0' && (s[i + 1] | 0x20) == b'x' {
        hex = true;
        i += 2;
    }
    let mant_start = i;
    let mut underscores = false;
    let mut saw_dot = false;
    let mut saw_digits = false;
    while i < s.len() {
        let c = s[i];
        match c {
            b'_' => underscores = true,
            b'.' if !saw_dot => saw_dot = true,
            b'0'..=b'9' => saw_digits = true,
            c if hex && (b'a'..=b'f').contains(&(c | 0x20)) => saw_digits = true,
            _ => break,
        }
        i += 1;
    }
    if !saw_digits {
        return None;
    }
    let mant_end = i;
    let exp_char = if hex { b'p' } else { b'e' };
    let mut exp: i64 = 0;
    if i < s.len() && (s[i] | 0x20) == exp_char {
        i += 1;
        if i >= s.len() {
            return None;
        }
        let mut esign = 1;
        if s[i] == b'+' {
            i += 1;
        } else if s[i] == b'-' {
            esign = -1;
            i += 1;
        }
        if i >= s.len() || !s[i].is_ascii_digit() {
            return None;
        }
        while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'_') {
            if s[i] == b'_' {
                underscores = true;
            } else if exp < 100_000 {
                exp = exp * 10 + i64::from(s[i] - b'0');
            }
            i += 1;
        }
        exp *= esign;
    } else if hex {
        return None;
    }
    if i != s.len() {
        return None;
    }
    if underscores && !underscore_ok(s) {
        return None;
    }
    Some(FloatScan {
        hex,
        underscores,
        mantissa: (mant_start, mant_end),
        exp,
    })
}

/// Go's `underscoreOK`: underscores only between digits (or after a base
/// prefix), never leading or trailing.
fn underscore_ok(s: &[u8]) -> bool {
    let mut saw = b'^';
    let mut i = 0;
    let s = match s.first() {
        Some(b'+') | Some(b'-') => &s[1..],
        _ => s,
    };
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = (s[1] | 0x20) == b'x';
    }
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&(c | 0x20))) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

fn hex_float_value(s: &[u8], scan: &FloatScan) -> f64 {
    let (start, end) = scan.mantissa;
    let mut mant: u128 = 0;
    let mut exp2: i64 = scan.exp;
    let mut after_dot = false;
    let mut dropped_nonzero = false;
    for &c in &s[start..end] {
        let d = match c {
            b'.' => {
                after_dot = true;
                continue;
            }
            b'_' => continue,
            b'0'..=b'9' => c - b'0',
            _ => (c | 0x20) - b'a' + 10,
        };
        if mant >> 120 == 0 {
            mant = (mant << 4) | u128::from(d);
            if after_dot {
                exp2 -= 4;
            }
        } else {
            dropped_nonzero |= d != 0;
            if !after_dot {
                exp2 += 4;
            }
        }
    }
    if dropped_nonzero {
        // Sticky bit so rounding of the u128 -> f64 conversion stays correct.
        mant |= 1;
    }
    let neg = s.first() == Some(&b'-');
    let v = (mant as f64) * 2f64.powi(exp2.clamp(-2000, 2000) as i32);
    if neg { -v } else { v }
}

/// `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that round
/// trips, never in exponent form; `+Inf`, `-Inf`, `NaN` for the specials.
pub fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

// ---------------------------------------------------------------------------
// time.ParseDuration
// ---------------------------------------------------------------------------

const NANOS_UNITS: [(&str, u64); 9] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("", 0),
];

/// Parses a Go duration (`time.ParseDuration`) into nanoseconds. Units are
/// `ns us µs μs ms s m h`; no `d`, `w` or `y`.
pub fn parse_go_duration(orig: &str) -> Result<i64, ConvertError> {
    let invalid = || ConvertError::InvalidDuration {
        input: orig.to_string(),
    };
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Leading integer.
        let mut v: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(s[i] - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        // Fraction.
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let mut overflow = false;
            let mut j = 0;
            while j < s.len() && s[j].is_ascii_digit() {
                if !overflow {
                    if f > (LIMIT - 1) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(s[j] - b'0');
                        if y > LIMIT {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                j += 1;
            }
            post = j > 0;
            s = &s[j..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        // Unit.
        let unit_len = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(ConvertError::MissingUnit {
                input: orig.to_string(),
            });
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let Some(&(_, mult)) = NANOS_UNITS
            .iter()
            .find(|(name, m)| *m != 0 && name.as_bytes() == unit)
        else {
            return Err(ConvertError::UnknownUnit {
                unit: String::from_utf8_lossy(unit).into_owned(),
                input: orig.to_string(),
            });
        };
        if v > LIMIT / mult {
            return Err(invalid());
        }
        v *= mult;
        if f > 0 {
            v += (f as f64 * (mult as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

// ---------------------------------------------------------------------------
// go-humanize ParseBytes
// ---------------------------------------------------------------------------

/// Parses a human byte size as go-humanize `ParseBytes` does: a number
/// (digits, `.`, `,` thousands separators) followed by an optional,
/// case-insensitive SI (`kB`, `MB`, … powers of 1000) or IEC (`KiB`, `MiB`, …)
/// suffix; the `B` may be omitted.
pub fn parse_humanize_bytes(s: &str) -> Result<u64, ConvertError> {
    // Go counts runes (unicode.IsDigit, '.', ',') but then slices bytes; the
    // same quirk is kept, so a non-ASCII digit yields a broken number that
    // fails to parse, as in Go.
    let mut last_digit = 0;
    let mut has_comma = false;
    for c in s.chars() {
        let digit = c.is_ascii_digit() || (c as u32 > 0xff && c.is_numeric());
        if !(digit || c == '.' || c == ',') {
            break;
        }
        if c == ',' {
            has_comma = true;
        }
        last_digit += 1;
    }
    let cut = last_digit.min(s.len());
    let num = String::from_utf8_lossy(&s.as_bytes()[..cut]);
    let value = if has_comma {
        parse_go_float(&num.replace(',', ""))?
    } else {
        parse_go_float(&num)?
    };
    let extra = String::from_utf8_lossy(&s.as_bytes()[cut..])
        .trim()
        .to_lowercase();
    let Some(mult) = bytes_multiplier(&extra) else {
        return Err(ConvertError::UnhandledSizeName { name: extra });
    };
    let total = value * mult as f64;
    if total >= u64::MAX as f64 {
        return Err(ConvertError::BytesTooLarge {
            input: s.to_string(),
        });
    }
    // Go's uint64(f) truncates toward zero; the number part never carries a
    // sign, so the value is never negative.
    Ok(total as u64)
}

fn bytes_multiplier(name: &str) -> Option<u64> {
    const K: u64 = 1000;
    const KI: u64 = 1024;
    Some(match name {
        "" | "b" => 1,
        "k" | "kb" => K,
        "ki" | "kib" => KI,
        "m" | "mb" => K.pow(2),
        "mi" | "mib" => KI.pow(2),
        "g" | "gb" => K.pow(3),
        "gi" | "gib" => KI.pow(3),
        "t" | "tb" => K.pow(4),
        "ti" | "tib" => KI.pow(4),
        "p" | "pb" => K.pow(5),
        "pi" | "pib" => KI.pow(5),
        "e" | "eb" => K.pow(6),
        "ei" | "eib" => KI.pow(6),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// UTF-8 as Go sees it
// ---------------------------------------------------------------------------

/// Decodes one rune at the start of `b` as Go's `utf8.DecodeRune` does:
/// `(Some(char), len)` for a valid encoding, `(None, 1)` for an invalid byte.
/// `b` must not be empty.
pub(crate) fn decode_rune(b: &[u8]) -> (Option<char>, usize) {
    let width = match b[0] {
        0x00..=0x7f => return (Some(b[0] as char), 1),
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (None, 1),
    };
    match b.get(..width).map(std::str::from_utf8) {
        Some(Ok(s)) => (s.chars().next(), width),
        _ => (None, 1),
    }
}

/// Appends `bytes` to `out` as text, replacing every invalid byte — and, when
/// `replace_fffd` is set, every literal U+FFFD — with `replacement`. This is
/// Go's `strings.Map` over a rune-error-mapping function.
pub(crate) fn push_go_text(out: &mut String, bytes: &[u8], replacement: char, replace_fffd: bool) {
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                push_valid(out, s, replacement, replace_fffd);
                return;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // The prefix is valid by construction.
                push_valid(
                    out,
                    std::str::from_utf8(valid).unwrap_or_default(),
                    replacement,
                    replace_fffd,
                );
                let bad = e.error_len().unwrap_or(after.len());
                for _ in 0..bad {
                    out.push(replacement);
                }
                rest = &after[bad..];
            }
        }
    }
}

fn push_valid(out: &mut String, s: &str, replacement: char, replace_fffd: bool) {
    if replace_fffd && s.contains('\u{fffd}') {
        out.extend(
            s.chars()
                .map(|c| if c == '\u{fffd}' { replacement } else { c }),
        );
    } else {
        out.push_str(s);
    }
}

/// Whether `bytes` contains an invalid UTF-8 sequence or a literal U+FFFD:
/// Go's `bytes.ContainsRune(b, utf8.RuneError)`.
pub(crate) fn contains_rune_error(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.contains('\u{fffd}'),
        Err(_) => true,
    }
}

// ---------------------------------------------------------------------------
// Label names
// ---------------------------------------------------------------------------

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn trim_space_bytes(mut b: &[u8]) -> &[u8] {
    while !b.is_empty() {
        match decode_rune(b) {
            (Some(c), n) if c.is_whitespace() => b = &b[n..],
            _ => break,
        }
    }
    while !b.is_empty() {
        // Find the start of the last rune.
        let mut start = b.len() - 1;
        while start > 0 && b.len() - start < 4 && (b[start] & 0xc0) == 0x80 {
            start -= 1;
        }
        match decode_rune(&b[start..]) {
            (Some(c), n) if start + n == b.len() && c.is_whitespace() => b = &b[..start],
            _ => break,
        }
    }
    b
}

/// Loki's `sanitizeLabelKey(key, isPrefix)`: trims white space, prefixes a
/// leading ASCII digit with `_` when `is_prefix`, and maps every rune outside
/// `[A-Za-z0-9_]` (each invalid byte counting as one rune) to `_`. Appends
/// the result to `out`.
pub fn sanitize_label_key_into(out: &mut String, key: &[u8], is_prefix: bool) {
    let key = trim_space_bytes(key);
    if key.is_empty() {
        return;
    }
    if is_prefix && key[0].is_ascii_digit() {
        out.push('_');
    }
    append_sanitized_runes(out, key);
}

/// [`sanitize_label_key_into`] returning a new string.
pub fn sanitize_label_key(key: &str, is_prefix: bool) -> String {
    let mut out = String::with_capacity(key.len() + 1);
    sanitize_label_key_into(&mut out, key.as_bytes(), is_prefix);
    out
}

/// Loki's `appendSanitized`: one path part of a flattened JSON key, trimmed,
/// every rune outside `[A-Za-z0-9_]` mapped to `_` (no digit prefix).
pub(crate) fn append_sanitized_part(out: &mut String, part: &[u8]) {
    append_sanitized_runes(out, trim_space_bytes(part));
}

fn append_sanitized_runes(out: &mut String, mut b: &[u8]) {
    while !b.is_empty() {
        let (c, n) = decode_rune(b);
        match c {
            Some(c) if is_label_char(c) => out.push(c),
            _ => out.push('_'),
        }
        b = &b[n..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_float_accepts_go_syntax() {
        for (s, want) in [
            ("1", 1.0),
            ("-1.5", -1.5),
            ("+5", 5.0),
            ("1e3", 1000.0),
            ("1E+3", 1000.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("404.0", 404.0),
            ("1_000", 1000.0),
            ("0x1p-2", 0.25),
            ("0x1.8p1", 3.0),
            ("0X_1p4", 16.0),
            ("inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("+INF", f64::INFINITY),
            ("1e-400", 0.0),
        ] {
            assert_eq!(parse_go_float(s), Ok(want), "{s}");
        }
        assert!(parse_go_float("NaN").is_ok_and(f64::is_nan));
        assert!(parse_go_float("nan").is_ok_and(f64::is_nan));
    }

    #[test]
    fn parse_float_rejects_like_go() {
        for s in [
            "", " 1", "1 ", "12ms", "true", "0x10", "1e", "1e+", "+nan", "infx", "1__0", "_1",
            "1_", "1.2.3", "--1", "0x", "1,5",
        ] {
            assert_eq!(
                parse_go_float(s),
                Err(ConvertError::FloatSyntax { input: s.into() }),
                "{s:?}"
            );
        }
        assert_eq!(
            parse_go_float("1e400").map_err(|e| e.to_string()),
            Err("strconv.ParseFloat: parsing \"1e400\": value out of range".to_string())
        );
        assert_eq!(
            parse_go_float("317ms").map_err(|e| e.to_string()),
            Err("strconv.ParseFloat: parsing \"317ms\": invalid syntax".to_string())
        );
    }

    #[test]
    fn parse_duration_matches_go() {
        for (s, want) in [
            ("0", 0),
            ("-0", 0),
            ("1s", 1_000_000_000),
            ("1m23s", 83_000_000_000),
            ("731us", 731_000),
            ("731µs", 731_000),
            ("12.5s", 12_500_000_000),
            ("1.5h", 5_400_000_000_000),
            ("-2ms", -2_000_000),
            ("+3ns", 3),
            (".5s", 500_000_000),
            ("1h30m", 5_400_000_000_000),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
        ] {
            assert_eq!(parse_go_duration(s), Ok(want), "{s}");
        }
        let err = |s: &str| parse_go_duration(s).map_err(|e| e.to_string()).err();
        assert_eq!(
            err("847").as_deref(),
            Some("time: missing unit in duration \"847\"")
        );
        assert_eq!(err("").as_deref(), Some("time: invalid duration \"\""));
        assert_eq!(
            err("1d").as_deref(),
            Some("time: unknown unit \"d\" in duration \"1d\"")
        );
        assert_eq!(err(".s").as_deref(), Some("time: invalid duration \".s\""));
        assert_eq!(err("s").as_deref(), Some("time: invalid duration \"s\""));
        assert_eq!(
            err("9223372036854775808ns").as_deref(),
            Some("time: invalid duration \"9223372036854775808ns\"")
        );
        assert_eq!(
            err("1é").as_deref(),
            Some("time: unknown unit \"\\xc3\\xa9\" in duration \"1\\xc3\\xa9\"")
        );
    }

    #[test]
    fn parse_bytes_matches_humanize() {
        for (s, want) in [
            ("42", 42),
            ("42B", 42),
            ("1.5KB", 1500),
            ("1.5kb", 1500),
            ("12KiB", 12 * 1024),
            ("3MB", 3_000_000),
            ("0.5MB", 500_000),
            ("1MiB", 1 << 20),
            ("900B", 900),
            ("1,000 kB", 1_000_000),
            ("5 k", 5000),
            ("2gi", 2 << 30),
        ] {
            assert_eq!(parse_humanize_bytes(s), Ok(want), "{s}");
        }
        let err = |s: &str| parse_humanize_bytes(s).map_err(|e| e.to_string()).err();
        assert_eq!(
            err("").as_deref(),
            Some("strconv.ParseFloat: parsing \"\": invalid syntax")
        );
        assert_eq!(err("12zz").as_deref(), Some("unhandled size name: zz"));
        assert_eq!(
            err("abc").as_deref(),
            Some("strconv.ParseFloat: parsing \"\": invalid syntax")
        );
        assert_eq!(err("99999999EB").as_deref(), Some("too large: 99999999EB"));
    }

    #[test]
    fn sanitize_matches_loki() {
        assert_eq!(sanitize_label_key(" weird key ", true), "weird_key");
        assert_eq!(sanitize_label_key("http.status", true), "http_status");
        assert_eq!(sanitize_label_key("2fa", true), "_2fa");
        assert_eq!(sanitize_label_key("2fa", false), "2fa");
        assert_eq!(sanitize_label_key("a:b-c", true), "a_b_c");
        assert_eq!(sanitize_label_key("é", true), "_");
        assert_eq!(sanitize_label_key("   ", true), "");
        assert_eq!(sanitize_label_key("", true), "");
        let mut out = String::new();
        sanitize_label_key_into(&mut out, b"a\xff\xfeb", true);
        assert_eq!(out, "a__b", "each invalid byte is one rune");
    }

    #[test]
    fn go_text_replacement_is_per_byte() {
        let mut s = String::new();
        push_go_text(&mut s, b"a\xe2\x82z\xef\xbf\xbd", ' ', true);
        assert_eq!(s, "a  z ");
        let mut s = String::new();
        push_go_text(&mut s, b"ok\xff", '\u{fffd}', false);
        assert_eq!(s, "ok\u{fffd}");
        assert!(contains_rune_error("x\u{fffd}".as_bytes()));
        assert!(contains_rune_error(b"\xc3"));
        assert!(!contains_rune_error("é".as_bytes()));
    }

    #[test]
    fn format_float_like_go_f() {
        assert_eq!(format_go_float(1.5), "1.5");
        assert_eq!(format_go_float(1e21), "1000000000000000000000");
        assert_eq!(format_go_float(1e-7), "0.0000001");
        assert_eq!(format_go_float(f64::INFINITY), "+Inf");
        assert_eq!(format_go_float(f64::NAN), "NaN");
    }
}
