//! Dynamically typed template values with Go's types and rules: what a value
//! is (`string`, `int`, `int64`, `float64`, `bool`, `time.Time`, maps and
//! slices from `fromJson`, the label map), how it prints with `%v`, when it
//! is true, and the `spf13/cast` conversions sprig applies (`toInt64`,
//! `toFloat64`).
//!
//! Values borrow from the template and the entry where they can: a label or
//! the line is a `Cow::Borrowed`, so looking one up allocates nothing.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::gotime::GoTime;

/// A `map[string]interface{}` decoded by `fromJson` (Go prints maps sorted).
pub(crate) type JsonMap = BTreeMap<String, Value<'static>>;

/// A template value.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    /// Go's invalid `reflect.Value`: a nil interface; prints `<no value>`.
    Invalid,
    Bool(bool),
    /// Go `int`.
    Int(i64),
    /// Go `int64` (sprig's arithmetic returns it; `int` parameters refuse it).
    Int64(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Time(GoTime),
    /// The template's data: the entry's labels as `map[string]string`.
    Labels,
    Map(Rc<JsonMap>),
    List(Rc<Vec<Value<'static>>>),
}

impl<'a> Value<'a> {
    pub(crate) fn str(s: &'a str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }

    pub(crate) fn string(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }

    /// Go's type name, as `%T` and error messages print it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Invalid => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Time(_) => "time.Time",
            Value::Labels => "map[string]string",
            Value::Map(_) => "map[string]interface {}",
            Value::List(_) => "[]interface {}",
        }
    }
}

/// Go's `text/template` truth: false, 0, empty strings and collections, and
/// nil are false; structs (times) are always true.
pub(crate) fn is_true(v: &Value<'_>, labels_len: impl FnOnce() -> usize) -> bool {
    match v {
        Value::Invalid => false,
        Value::Bool(b) => *b,
        Value::Int(i) | Value::Int64(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Time(_) => true,
        Value::Labels => labels_len() > 0,
        Value::Map(m) => !m.is_empty(),
        Value::List(l) => !l.is_empty(),
    }
}

/// sprig's `empty`: the zero value of its type (structs never are).
pub(crate) fn is_empty(v: &Value<'_>, labels_len: impl FnOnce() -> usize) -> bool {
    !is_true(v, labels_len)
}

/// `cast.ToInt64` as sprig calls it (errors become 0).
pub(crate) fn to_int64(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => go_float_to_int(*f),
        Value::Str(s) => go_parse_int(trim_zero_decimal(s)).unwrap_or(0),
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

/// `cast.ToFloat64` as sprig calls it (errors become 0).
pub(crate) fn to_float64(v: &Value<'_>) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Str(s) => go_parse_float(s).unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

/// Go's `int64(f)` on amd64: truncation, with NaN and overflow giving the
/// minimum value.
pub(crate) fn go_float_to_int(f: f64) -> i64 {
    if f.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// cast's `trimZeroDecimal`: `"12.00"` becomes `"12"`, `"12.01"` stays.
fn trim_zero_decimal(s: &str) -> &str {
    let b = s.as_bytes();
    let mut found_zero = false;
    for i in (1..=b.len()).rev() {
        match b[i - 1] {
            b'.' => {
                if found_zero {
                    return &s[..i - 1];
                }
            }
            b'0' => found_zero = true,
            _ => return s,
        }
    }
    s
}

/// Splits an optional sign and a base prefix the way Go's `strconv` does for
/// base 0, then checks underscores. Returns (negative, radix, digits).
fn split_int(s: &str) -> Option<(bool, u32, String)> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    if digits.contains('_') && !underscore_ok(body, prefixed) {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    Some((neg, radix, clean))
}

/// Go's rule: underscores only between digits (or after a base prefix).
fn underscore_ok(s: &str, prefixed: bool) -> bool {
    let b = s.as_bytes();
    let mut saw = if prefixed { b'0' } else { b'^' };
    let mut i = 0;
    if prefixed && b.len() >= 2 && b[0] == b'0' && b[1].is_ascii_alphabetic() {
        i = 2;
        saw = b'0';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_hexdigit() {
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

/// `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, radix, digits) = split_int(s)?;
    let mag = u64::from_str_radix(&digits, radix).ok()?;
    if neg {
        if mag <= 1u64 << 63 {
            Some((mag as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(mag).ok()
    }
}

/// `strconv.ParseUint(s, 0, 64)` (no sign allowed).
pub(crate) fn go_parse_uint(s: &str) -> Option<u64> {
    if s.starts_with(['+', '-']) {
        return None;
    }
    let (_, radix, digits) = split_int(s)?;
    u64::from_str_radix(&digits, radix).ok()
}

/// `strconv.ParseFloat(s, 64)` (out-of-range values are errors in Go, so
/// `None` here).
pub(crate) fn go_parse_float(s: &str) -> Option<f64> {
    crate::logql::log::convert::parse_go_float(s).ok()
}

/// The shortest decimal digits that round-trip `f` (finite, non-zero), and
/// the decimal point position: `f = 0.d1d2d3… × 10^dp`.
pub(crate) fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    (digits, exp + 1)
}

/// Digits of `f` rounded to `prec` significant digits (`prec` >= 1), and the
/// decimal point position as in [`shortest_digits`].
pub(crate) fn precision_digits(f: f64, prec: usize) -> (String, i32) {
    let s = format!("{:.*e}", prec.saturating_sub(1), f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    (digits, exp + 1)
}

/// Writes `d.ddde±XX` from digits and a decimal point position.
pub(crate) fn write_exp_form(out: &mut String, neg: bool, digits: &str, dp: i32, upper: bool) {
    if neg {
        out.push('-');
    }
    let mut it = digits.chars();
    out.push(it.next().unwrap_or('0'));
    let rest: &str = it.as_str();
    if !rest.is_empty() {
        out.push('.');
        out.push_str(rest);
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if digits.bytes().all(|b| b == b'0') {
        0
    } else {
        dp - 1
    };
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
}

/// Writes plain decimal notation from digits and a decimal point position.
pub(crate) fn write_plain_form(out: &mut String, neg: bool, digits: &str, dp: i32) {
    if neg {
        out.push('-');
    }
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let dp = dp as usize;
        if digits.len() <= dp {
            out.push_str(digits);
            for _ in digits.len()..dp {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..dp]);
            out.push('.');
            out.push_str(&digits[dp..]);
        }
    }
}

/// Go's `%v` for a float64: `strconv.FormatFloat(f, 'g', -1, 64)`, which
/// switches to exponent form below 1e-4 and from 1e6 up (`1.048576e+06`).
pub(crate) fn write_go_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    let neg = f.is_sign_negative();
    if f == 0.0 {
        out.push_str(if neg { "-0" } else { "0" });
        return;
    }
    let (digits, dp) = shortest_digits(f);
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        write_exp_form(out, neg, &digits, dp, false);
    } else {
        write_plain_form(out, neg, &digits, dp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(f: f64) -> String {
        let mut s = String::new();
        write_go_float(&mut s, f);
        s
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(g(0.000731), "0.000731");
        assert_eq!(g(3072.0), "3072");
        assert_eq!(g(3.8476190476190477), "3.8476190476190477");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(1e21), "1e+21");
        assert_eq!(g(123456789.0), "1.23456789e+08");
        assert_eq!(g(1048576.0), "1.048576e+06");
        assert_eq!(g(500000.0), "500000");
        assert_eq!(g(2e6), "2e+06");
        assert_eq!(g(-2.5), "-2.5");
        assert_eq!(g(f64::INFINITY), "+Inf");
        assert_eq!(g(1.5e300), "1.5e+300");
    }

    #[test]
    fn go_integer_parsing() {
        assert_eq!(go_parse_int("12"), Some(12));
        assert_eq!(go_parse_int("-0x1F"), Some(-31));
        assert_eq!(go_parse_int("017"), Some(15));
        assert_eq!(go_parse_int("0b101"), Some(5));
        assert_eq!(go_parse_int("1_000"), Some(1000));
        assert_eq!(go_parse_int("1__0"), None);
        assert_eq!(go_parse_int("08"), None);
        assert_eq!(go_parse_int("9223372036854775808"), None);
        assert_eq!(go_parse_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(go_parse_uint("18446744073709551615"), Some(u64::MAX));
        assert_eq!(go_parse_uint("-1"), None);
    }

    #[test]
    fn go_float_parsing() {
        assert_eq!(go_parse_float("2.5"), Some(2.5));
        assert_eq!(go_parse_float(".5"), Some(0.5));
        assert_eq!(go_parse_float("1e3"), Some(1000.0));
        assert_eq!(go_parse_float("0x1p-2"), Some(0.25));
        assert_eq!(go_parse_float("1_000.5"), Some(1000.5));
        assert_eq!(go_parse_float("abc"), None);
        assert_eq!(go_parse_float("1e400"), None);
        assert!(go_parse_float("NaN").is_some_and(f64::is_nan));
    }

    #[test]
    fn cast_conversions() {
        assert_eq!(to_int64(&Value::str("12")), 12);
        assert_eq!(to_int64(&Value::str("12.00")), 12);
        assert_eq!(to_int64(&Value::str("12.5")), 0);
        assert_eq!(to_int64(&Value::str("0x10")), 16);
        assert_eq!(to_int64(&Value::Float(3.7)), 3);
        assert_eq!(to_int64(&Value::Float(-3.7)), -3);
        assert_eq!(to_int64(&Value::Bool(true)), 1);
        assert_eq!(to_int64(&Value::Invalid), 0);
        assert_eq!(to_float64(&Value::str("2.5")), 2.5);
        assert_eq!(to_float64(&Value::str("x")), 0.0);
        assert_eq!(to_float64(&Value::Int64(3)), 3.0);
    }
}
