//! The function set of Loki's `line_format`/`label_format` templates: Go's
//! built-ins, Loki's own functions (`pkg/logql/log/fmt.go`) and the sprig
//! subset Loki registers, each with its Go signature (so argument checks and
//! errors match Go's reflection-based calls) and its Go/sprig semantics.
//!
//! `and`/`or` short-circuit and are evaluated by the executor; everything
//! else is a plain call on already evaluated arguments.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use regex::Regex;

use super::gotime::{GoTime, Zone, duration_seconds, load_location, parse_duration};
use super::printf::{LabelsVisitor, sprint, sprintf, sprintln, write_v};
use super::value::{JsonMap, Value, go_parse_float, is_empty, is_true, to_float64, to_int64};

/// Parameter types of template functions, as Go's `evalArg` sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum P {
    Str,
    Int,
    Float,
    Time,
    /// `interface{}`
    Any,
    /// `reflect.Value` (built-ins): anything, including no value.
    Val,
}

impl P {
    pub(crate) fn go_name(self) -> &'static str {
        match self {
            P::Str => "string",
            P::Int => "int",
            P::Float => "float64",
            P::Time => "time.Time",
            P::Any => "interface {}",
            P::Val => "reflect.Value",
        }
    }
}

/// A function's Go signature: fixed parameters, then an optional variadic one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sig {
    pub fixed: &'static [P],
    pub variadic: Option<P>,
}

macro_rules! funcs {
    ($($variant:ident $name:literal [$($p:ident),*] $(... $v:ident)?;)*) => {
        /// A function a template can call.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Func { $($variant),* }

        impl Func {
            /// The function called `name`, if templates have one.
            pub(crate) fn lookup(name: &str) -> Option<Func> {
                match name {
                    $($name => Some(Func::$variant),)*
                    _ => None,
                }
            }

            pub(crate) fn sig(self) -> Sig {
                match self {
                    $(Func::$variant => Sig {
                        fixed: &[$(P::$p),*],
                        variadic: funcs!(@var $($v)?),
                    },)*
                }
            }
        }
    };
    (@var) => { None };
    (@var $v:ident) => { Some(P::$v) };
}

funcs! {
    // Go text/template built-ins.
    And "and" [Val] ... Val;
    Or "or" [Val] ... Val;
    Not "not" [Val];
    Len "len" [Val];
    Index "index" [Val] ... Val;
    Slice "slice" [Val] ... Val;
    Print "print" [] ... Any;
    Printf "printf" [Str] ... Any;
    Println "println" [] ... Any;
    Eq "eq" [Val] ... Val;
    Ne "ne" [Val, Val];
    Lt "lt" [Val, Val];
    Le "le" [Val, Val];
    Gt "gt" [Val, Val];
    Ge "ge" [Val, Val];
    Html "html" [] ... Any;
    Js "js" [] ... Any;
    Urlquery "urlquery" [] ... Any;
    Call "call" [Val] ... Val;
    // Loki.
    Line "__line__" [];
    Timestamp "__timestamp__" [];
    ToLower "ToLower" [Str];
    ToUpper "ToUpper" [Str];
    GoReplace "Replace" [Str, Str, Str, Int];
    GoTrim "Trim" [Str, Str];
    GoTrimLeft "TrimLeft" [Str, Str];
    GoTrimRight "TrimRight" [Str, Str];
    GoTrimPrefix "TrimPrefix" [Str, Str];
    GoTrimSuffix "TrimSuffix" [Str, Str];
    TrimSpace "TrimSpace" [Str];
    RegexReplaceAll "regexReplaceAll" [Str, Str, Str];
    RegexReplaceAllLiteral "regexReplaceAllLiteral" [Str, Str, Str];
    Count "count" [Str, Str];
    Urldecode "urldecode" [Str];
    Urlencode "urlencode" [Str];
    Bytes "bytes" [Str];
    Duration "duration" [Str];
    DurationSeconds "duration_seconds" [Str];
    UnixEpochMillis "unixEpochMillis" [Time];
    UnixEpochNanos "unixEpochNanos" [Time];
    ToDateInZone "toDateInZone" [Str, Str, Str];
    UnixToTime "unixToTime" [Str];
    AlignLeft "alignLeft" [Int, Str];
    AlignRight "alignRight" [Int, Str];
    // Sprig.
    B64enc "b64enc" [Str];
    B64dec "b64dec" [Str];
    Lower "lower" [Str];
    Upper "upper" [Str];
    Title "title" [Str];
    Trunc "trunc" [Int, Str];
    Substr "substr" [Int, Int, Str];
    Contains "contains" [Str, Str];
    HasPrefix "hasPrefix" [Str, Str];
    HasSuffix "hasSuffix" [Str, Str];
    Indent "indent" [Int, Str];
    Nindent "nindent" [Int, Str];
    Replace "replace" [Str, Str, Str];
    Repeat "repeat" [Int, Str];
    Trim "trim" [Str];
    TrimAll "trimAll" [Str, Str];
    TrimSuffix "trimSuffix" [Str, Str];
    TrimPrefix "trimPrefix" [Str, Str];
    ToInt "int" [Any];
    ToFloat64 "float64" [Any];
    Add "add" [] ... Any;
    Sub "sub" [Any, Any];
    Mul "mul" [Any] ... Any;
    Div "div" [Any, Any];
    Mod "mod" [Any, Any];
    Addf "addf" [] ... Any;
    Subf "subf" [Any] ... Any;
    Mulf "mulf" [Any] ... Any;
    Divf "divf" [Any] ... Any;
    Max "max" [Any] ... Any;
    Min "min" [Any] ... Any;
    Maxf "maxf" [Any] ... Any;
    Minf "minf" [Any] ... Any;
    Ceil "ceil" [Any];
    Floor "floor" [Any];
    Round "round" [Any, Int] ... Float;
    FromJson "fromJson" [Str];
    Date "date" [Str, Any];
    ToDate "toDate" [Str, Str];
    Now "now" [];
    UnixEpoch "unixEpoch" [Time];
    Default "default" [Any] ... Any;
}

impl Func {
    /// Whether the first argument is a regular expression (compiled once
    /// when it is a literal).
    pub(crate) fn takes_regex(self) -> bool {
        matches!(
            self,
            Func::RegexReplaceAll | Func::RegexReplaceAllLiteral | Func::Count
        )
    }
}

/// What a function may read besides its arguments.
pub(crate) struct Env<'a, 'e> {
    pub line: &'a str,
    pub timestamp_nanos: i64,
    pub labels: LabelsVisitor<'e>,
    pub labels_len: &'e dyn Fn() -> usize,
}

/// Longest string a function may build (`repeat`, `indent`, `alignLeft`, …),
/// so a query cannot exhaust memory through a template.
const MAX_BUILT: usize = 16 << 20;

fn too_large(name: &str) -> String {
    format!("{name}: result larger than {MAX_BUILT} bytes")
}

fn s<'v>(v: &'v Value<'_>) -> &'v str {
    match v {
        Value::Str(s) => s,
        _ => "",
    }
}

fn int(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        _ => 0,
    }
}

fn time(v: &Value<'_>) -> GoTime {
    match v {
        Value::Time(t) => t.clone(),
        _ => GoTime::zero(),
    }
}

fn owned<'a>(s: String) -> Value<'a> {
    Value::Str(Cow::Owned(s))
}

/// Calls `func` on evaluated, type-checked arguments. `regex` is the
/// precompiled first argument when it was a literal.
pub(crate) fn call<'a>(
    func: Func,
    args: &mut [Value<'a>],
    env: &Env<'a, '_>,
    regex: Option<&Result<Regex, String>>,
) -> Result<Value<'a>, String> {
    Ok(match func {
        Func::And | Func::Or => {
            // Evaluated by the executor; reached only for a pipeline's final value.
            let want = func == Func::Or;
            let mut last = Value::Invalid;
            for a in args.iter_mut() {
                last = std::mem::replace(a, Value::Invalid);
                if is_true(&last, env.labels_len) == want {
                    return Ok(last);
                }
            }
            last
        }
        Func::Not => Value::Bool(!is_true(&args[0], env.labels_len)),
        Func::Len => Value::Int(length(&args[0], env)?),
        Func::Index => index(args, env)?,
        Func::Slice => slice(args)?,
        Func::Print => {
            let mut out = String::new();
            sprint(&mut out, args, env.labels);
            owned(out)
        }
        Func::Println => {
            let mut out = String::new();
            sprintln(&mut out, args, env.labels);
            owned(out)
        }
        Func::Printf => {
            let mut out = String::new();
            sprintf(&mut out, s(&args[0]), &args[1..], env.labels);
            owned(out)
        }
        Func::Eq => Value::Bool(eq(&args[0], &args[1..])?),
        Func::Ne => Value::Bool(!eq(&args[0], &args[1..2])?),
        Func::Lt => Value::Bool(lt(&args[0], &args[1])?),
        Func::Le => Value::Bool(lt(&args[0], &args[1])? || eq(&args[0], &args[1..2])?),
        Func::Gt => Value::Bool(!(lt(&args[0], &args[1])? || eq(&args[0], &args[1..2])?)),
        Func::Ge => Value::Bool(!lt(&args[0], &args[1])?),
        Func::Html => owned(html_escape(&eval_args(args, env))),
        Func::Js => owned(js_escape(&eval_args(args, env))),
        Func::Urlquery => owned(query_escape(&eval_args(args, env))),
        Func::Call => {
            return Err(match &args[0] {
                Value::Invalid => "call of nil".to_string(),
                v => format!("non-function of type {}", v.type_name()),
            });
        }
        Func::Line => Value::str(env.line),
        Func::Timestamp => Value::Time(GoTime::from_unix_nanos(env.timestamp_nanos)),
        Func::ToLower | Func::Lower => owned(go_to_lower(s(&args[0]))),
        Func::ToUpper | Func::Upper => owned(go_to_upper(s(&args[0]))),
        Func::GoReplace => {
            let (src, old, new, n) = (s(&args[0]), s(&args[1]), s(&args[2]), int(&args[3]));
            owned(if n < 0 {
                src.replace(old, new)
            } else {
                src.replacen(old, new, usize::try_from(n).unwrap_or(usize::MAX))
            })
        }
        Func::GoTrim => trim_set(&args[0], s(&args[1]), true, true),
        Func::GoTrimLeft => trim_set(&args[0], s(&args[1]), true, false),
        Func::GoTrimRight => trim_set(&args[0], s(&args[1]), false, true),
        Func::GoTrimPrefix => strip(&args[0], s(&args[1]), true),
        Func::GoTrimSuffix => strip(&args[0], s(&args[1]), false),
        Func::TrimSpace | Func::Trim => trim_space(&args[0]),
        Func::RegexReplaceAll | Func::RegexReplaceAllLiteral | Func::Count => {
            let compiled;
            let re = match regex {
                Some(r) => r.as_ref().map_err(Clone::clone)?,
                None => {
                    compiled = compile_regex(s(&args[0]))?;
                    &compiled
                }
            };
            let src = s(&args[1]);
            match func {
                Func::Count => Value::Int(re.find_iter(src).count() as i64),
                Func::RegexReplaceAll => owned(re.replace_all(src, s(&args[2])).into_owned()),
                _ => owned(
                    re.replace_all(src, regex::NoExpand(s(&args[2])))
                        .into_owned(),
                ),
            }
        }
        Func::Urldecode => owned(query_unescape(s(&args[0]))?),
        Func::Urlencode => owned(query_escape(s(&args[0]))),
        Func::Bytes => Value::Float(parse_bytes(s(&args[0]))? as f64),
        Func::Duration | Func::DurationSeconds => {
            Value::Float(duration_seconds(parse_duration(s(&args[0]))?))
        }
        Func::UnixEpochMillis => owned(time(&args[0]).unix_milli().to_string()),
        Func::UnixEpochNanos => owned(time(&args[0]).unix_nano().to_string()),
        Func::UnixEpoch => owned(time(&args[0]).unix().to_string()),
        Func::ToDateInZone => {
            let zone = match load_location(s(&args[1])) {
                Ok(z) => z,
                Err(e) if e.contains("database not found") => return Err(e),
                Err(_) => Zone::Utc,
            };
            Value::Time(
                GoTime::parse_in(s(&args[0]), s(&args[2]), &zone)
                    .unwrap_or_else(|_| GoTime::zero()),
            )
        }
        Func::ToDate => Value::Time(
            GoTime::parse_in(s(&args[0]), s(&args[1]), &Zone::Utc)
                .unwrap_or_else(|_| GoTime::zero()),
        ),
        Func::UnixToTime => Value::Time(unix_to_time(s(&args[0]))?),
        Func::Now => Value::Time(GoTime::now()),
        Func::Date => {
            let t = match &args[1] {
                Value::Time(t) => t.clone(),
                Value::Int(i) | Value::Int64(i) => GoTime::from_unix(*i),
                _ => GoTime::now(),
            };
            owned(t.in_zone(Zone::Utc).format(s(&args[0])))
        }
        Func::AlignLeft | Func::AlignRight => {
            align(int(&args[0]), &args[1], func == Func::AlignLeft)?
        }
        Func::B64enc => owned(base64::engine::general_purpose::STANDARD.encode(s(&args[0]))),
        Func::B64dec => owned(b64dec(s(&args[0]))),
        Func::Title => owned(go_title(s(&args[0]))),
        Func::Trunc => trunc(int(&args[0]), &args[1]),
        Func::Substr => substr(int(&args[0]), int(&args[1]), &args[2])?,
        Func::Contains => Value::Bool(s(&args[1]).contains(s(&args[0]))),
        Func::HasPrefix => Value::Bool(s(&args[1]).starts_with(s(&args[0]))),
        Func::HasSuffix => Value::Bool(s(&args[1]).ends_with(s(&args[0]))),
        Func::Indent => owned(indent(int(&args[0]), s(&args[1]))?),
        Func::Nindent => owned(format!("\n{}", indent(int(&args[0]), s(&args[1]))?)),
        Func::Replace => owned(s(&args[2]).replace(s(&args[0]), s(&args[1]))),
        Func::Repeat => {
            let n = int(&args[0]);
            if n < 0 {
                return Err("strings: negative Repeat count".to_string());
            }
            let src = s(&args[1]);
            if (n as u128) * (src.len() as u128) > MAX_BUILT as u128 {
                return Err(too_large("repeat"));
            }
            owned(src.repeat(n as usize))
        }
        Func::TrimAll => trim_set(&args[1], s(&args[0]), true, true),
        Func::TrimSuffix => strip(&args[1], s(&args[0]), false),
        Func::TrimPrefix => strip(&args[1], s(&args[0]), true),
        Func::ToInt => Value::Int(to_int64(&args[0])),
        Func::ToFloat64 => Value::Float(to_float64(&args[0])),
        Func::Add => Value::Int64(args.iter().fold(0i64, |a, b| a.wrapping_add(to_int64(b)))),
        Func::Sub => Value::Int64(to_int64(&args[0]).wrapping_sub(to_int64(&args[1]))),
        Func::Mul => Value::Int64(
            args[1..]
                .iter()
                .fold(to_int64(&args[0]), |a, b| a.wrapping_mul(to_int64(b))),
        ),
        Func::Div | Func::Mod => {
            let (a, b) = (to_int64(&args[0]), to_int64(&args[1]));
            if b == 0 {
                return Err("runtime error: integer divide by zero".to_string());
            }
            Value::Int64(if func == Func::Div {
                a.wrapping_div(b)
            } else {
                a.wrapping_rem(b)
            })
        }
        Func::Addf => Value::Float(decimal_op(&Value::Float(0.0), args, DecOp::Add)?),
        Func::Subf => Value::Float(decimal_op(&args[0], &args[1..], DecOp::Sub)?),
        Func::Mulf => Value::Float(decimal_op(&args[0], &args[1..], DecOp::Mul)?),
        Func::Divf => Value::Float(decimal_op(&args[0], &args[1..], DecOp::Div)?),
        Func::Max => Value::Int64(
            args[1..]
                .iter()
                .map(to_int64)
                .fold(to_int64(&args[0]), i64::max),
        ),
        Func::Min => Value::Int64(
            args[1..]
                .iter()
                .map(to_int64)
                .fold(to_int64(&args[0]), i64::min),
        ),
        Func::Maxf => Value::Float(
            args[1..]
                .iter()
                .map(to_float64)
                .fold(to_float64(&args[0]), go_max),
        ),
        Func::Minf => Value::Float(
            args[1..]
                .iter()
                .map(to_float64)
                .fold(to_float64(&args[0]), go_min),
        ),
        Func::Ceil => Value::Float(to_float64(&args[0]).ceil()),
        Func::Floor => Value::Float(to_float64(&args[0]).floor()),
        Func::Round => {
            let round_on = match args.get(2) {
                Some(Value::Float(f)) => *f,
                _ => 0.5,
            };
            let val = to_float64(&args[0]);
            let pow = 10f64.powf(int(&args[1]) as f64);
            let digit = pow * val;
            let frac = digit - digit.trunc();
            let r = if frac >= round_on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Value::Float(r / pow)
        }
        Func::FromJson => from_json(s(&args[0])),
        Func::Default => {
            let given = args.get(1);
            match given {
                Some(g) if !is_empty(g, env.labels_len) => args[1].clone(),
                _ => std::mem::replace(&mut args[0], Value::Invalid),
            }
        }
    })
}

pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    crate::model::matcher::go_regex(pattern, false)
        .map_err(|e| format!("error parsing regexp: {e}"))
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_infinite() && a > 0.0 || b.is_infinite() && b > 0.0 {
        f64::INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_infinite() && a < 0.0 || b.is_infinite() && b < 0.0 {
        f64::NEG_INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// Go's `strings.ToLower`, rune by rune with simple case mappings.
pub(crate) fn go_to_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// Go's `strings.ToUpper`: a rune without a single-rune upper case stays.
pub(crate) fn go_to_upper(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// Go's deprecated `strings.Title`.
fn go_title(s: &str) -> String {
    let is_sep = |r: char| {
        if r.is_ascii() {
            !(r.is_ascii_alphanumeric() || r == '_')
        } else if r.is_alphabetic() || r.is_numeric() {
            false
        } else {
            r.is_whitespace()
        }
    };
    let mut prev = ' ';
    s.chars()
        .map(|r| {
            let out = if is_sep(prev) {
                let mut up = r.to_uppercase();
                match (up.next(), up.next()) {
                    (Some(u), None) => u,
                    _ => r,
                }
            } else {
                r
            };
            prev = r;
            out
        })
        .collect()
}

/// Keeps a borrowed string borrowed when trimming.
fn sub_of<'a>(v: &Value<'a>, range: std::ops::Range<usize>) -> Value<'a> {
    match v {
        Value::Str(Cow::Borrowed(b)) => Value::Str(Cow::Borrowed(&b[range])),
        Value::Str(Cow::Owned(o)) => owned(o[range].to_string()),
        _ => Value::str(""),
    }
}

fn range_in(outer: &str, inner: &str) -> std::ops::Range<usize> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    start..start + inner.len()
}

fn trim_set<'a>(v: &Value<'a>, cutset: &str, left: bool, right: bool) -> Value<'a> {
    let src = s(v);
    if src.is_empty() || cutset.is_empty() {
        return v.clone();
    }
    let mut t = src;
    if left {
        t = t.trim_start_matches(|c| cutset.contains(c));
    }
    if right {
        t = t.trim_end_matches(|c| cutset.contains(c));
    }
    sub_of(v, range_in(src, t))
}

fn trim_space<'a>(v: &Value<'a>) -> Value<'a> {
    let src = s(v);
    sub_of(v, range_in(src, src.trim()))
}

fn strip<'a>(v: &Value<'a>, affix: &str, prefix: bool) -> Value<'a> {
    let src = s(v);
    let t = if prefix {
        src.strip_prefix(affix)
    } else {
        src.strip_suffix(affix)
    };
    match t {
        Some(t) => sub_of(v, range_in(src, t)),
        None => v.clone(),
    }
}

/// sprig's byte-based `trunc`.
fn trunc<'a>(c: i64, v: &Value<'a>) -> Value<'a> {
    let src = s(v);
    let len = src.len() as i64;
    let (a, b) = if c < 0 && len + c > 0 {
        ((len + c) as usize, src.len())
    } else if c >= 0 && len > c {
        (0, c as usize)
    } else {
        return v.clone();
    };
    byte_slice(v, a, b)
}

/// A byte range of a string; a cut through a UTF-8 sequence becomes U+FFFD,
/// which is what a Go string with broken bytes reads as in Loki's JSON.
fn byte_slice<'a>(v: &Value<'a>, a: usize, b: usize) -> Value<'a> {
    let src = s(v);
    if src.is_char_boundary(a) && src.is_char_boundary(b) {
        sub_of(v, a..b)
    } else {
        owned(String::from_utf8_lossy(&src.as_bytes()[a..b]).into_owned())
    }
}

/// sprig's byte-based `substr`, with Go's slice panics as errors.
fn substr<'a>(start: i64, end: i64, v: &Value<'a>) -> Result<Value<'a>, String> {
    let src = s(v);
    let len = src.len() as i64;
    let oob = |a: String| format!("runtime error: slice bounds out of range {a}");
    if start < 0 {
        if end < 0 {
            return Err(oob(format!("[:{end}]")));
        }
        if end > len {
            return Err(oob(format!("[:{end}] with length {len}")));
        }
        return Ok(byte_slice(v, 0, end as usize));
    }
    if end < 0 || end > len {
        if start > len {
            return Err(oob(format!("[{start}:{len}]")));
        }
        return Ok(byte_slice(v, start as usize, src.len()));
    }
    if start > end {
        return Err(oob(format!("[{start}:{end}]")));
    }
    Ok(byte_slice(v, start as usize, end as usize))
}

/// Loki's rune-based `alignLeft`/`alignRight`.
fn align<'a>(count: i64, v: &Value<'a>, left: bool) -> Result<Value<'a>, String> {
    let src = s(v);
    let l = src.chars().count() as i64;
    if count < 0 || count == l {
        return Ok(v.clone());
    }
    if count as u64 > MAX_BUILT as u64 {
        return Err(too_large(if left { "alignLeft" } else { "alignRight" }));
    }
    let pad = count - l;
    if pad > 0 {
        let spaces = " ".repeat(pad as usize);
        return Ok(owned(if left {
            format!("{src}{spaces}")
        } else {
            format!("{spaces}{src}")
        }));
    }
    let cut = if left {
        src.char_indices()
            .nth(count as usize)
            .map_or(src.len(), |(i, _)| i)
    } else {
        src.char_indices()
            .nth((l - count) as usize)
            .map_or(src.len(), |(i, _)| i)
    };
    Ok(if left {
        sub_of(v, 0..cut)
    } else {
        sub_of(v, cut..src.len())
    })
}

fn indent(spaces: i64, v: &str) -> Result<String, String> {
    if spaces < 0 {
        return Err("strings: negative Repeat count".to_string());
    }
    let lines = v.matches('\n').count() as u128 + 1;
    if lines * spaces as u128 + v.len() as u128 > MAX_BUILT as u128 {
        return Err(too_large("indent"));
    }
    let pad = " ".repeat(spaces as usize);
    Ok(format!("{pad}{}", v.replace('\n', &format!("\n{pad}"))))
}

/// sprig's `b64dec`: the decoded text, or Go's error text on bad input.
fn b64dec(v: &str) -> String {
    let cleaned: Cow<'_, str> = if v.contains(['\r', '\n']) {
        Cow::Owned(v.chars().filter(|c| *c != '\r' && *c != '\n').collect())
    } else {
        Cow::Borrowed(v)
    };
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    match engine.decode(cleaned.as_bytes()) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(base64::DecodeError::InvalidByte(at, _))
        | Err(base64::DecodeError::InvalidLastSymbol(at, _)) => {
            format!("illegal base64 data at input byte {at}")
        }
        Err(_) => format!(
            "illegal base64 data at input byte {}",
            cleaned.len() - cleaned.len() % 4
        ),
    }
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
                out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
            }
        }
    }
    out
}

/// Go's `url.QueryUnescape`.
fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        let end = (i + 3).min(b.len());
                        let esc = String::from_utf8_lossy(&b[i..end]);
                        return Err(format!("invalid URL escape {esc:?}"));
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// go-humanize's `ParseBytes`.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let mut last_digit = 0;
    let mut has_comma = false;
    for (i, c) in s.char_indices() {
        if !(c.is_numeric() || c == '.' || c == ',') {
            break;
        }
        if c == ',' {
            has_comma = true;
        }
        last_digit = i + c.len_utf8();
    }
    let num = &s[..last_digit];
    let num: Cow<'_, str> = if has_comma {
        Cow::Owned(num.replace(',', ""))
    } else {
        Cow::Borrowed(num)
    };
    let f = go_parse_float(&num)
        .ok_or_else(|| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    let extra = s[last_digit..].trim().to_lowercase();
    let mult: u64 = match extra.as_str() {
        "" | "b" => 1,
        "kib" | "ki" => 1 << 10,
        "kb" | "k" => 1_000,
        "mib" | "mi" => 1 << 20,
        "mb" | "m" => 1_000_000,
        "gib" | "gi" => 1 << 30,
        "gb" | "g" => 1_000_000_000,
        "tib" | "ti" => 1 << 40,
        "tb" | "t" => 1_000_000_000_000,
        "pib" | "pi" => 1 << 50,
        "pb" | "p" => 1_000_000_000_000_000,
        "eib" | "ei" => 1 << 60,
        "eb" | "e" => 1_000_000_000_000_000_000,
        _ => return Err(format!("unhandled size name: {extra}")),
    };
    let v = f * mult as f64;
    if v >= u64::MAX as f64 {
        return Err(format!("too large: {s}"));
    }
    Ok(v as u64)
}

/// Loki's `unixToTime`: the epoch's length says its unit.
fn unix_to_time(epoch: &str) -> Result<GoTime, String> {
    let parsed = if epoch.contains('_') || epoch.starts_with("0x") {
        None
    } else {
        epoch.parse::<i64>().ok()
    };
    let Some(i) = parsed else {
        return Err(format!(
            "unable to parse time '{epoch}': strconv.ParseInt: parsing {epoch:?}: invalid syntax"
        ));
    };
    let nanos = |n: i64| GoTime::from_unix_nanos(n);
    Ok(match epoch.len() {
        5 => GoTime::from_unix(i.wrapping_mul(86_400)),
        10 => GoTime::from_unix(i),
        13 => nanos(i.wrapping_mul(1_000_000)),
        16 => nanos(i.wrapping_mul(1_000)),
        19 => nanos(i),
        _ => return Err(format!("unable to parse time '{epoch}': %!w(<nil>)")),
    })
}

/// Go's `json.Unmarshal` into `interface{}`; invalid JSON gives no value.
fn from_json<'a>(s: &str) -> Value<'a> {
    fn convert(v: serde_json::Value) -> Value<'static> {
        match v {
            serde_json::Value::Null => Value::Invalid,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::Str(Cow::Owned(s)),
            serde_json::Value::Array(a) => {
                Value::List(Rc::new(a.into_iter().map(convert).collect()))
            }
            serde_json::Value::Object(o) => {
                let m: JsonMap = o
                    .into_iter()
                    .map(|(k, v)| (k, convert(v)))
                    .collect::<BTreeMap<_, _>>();
                Value::Map(Rc::new(m))
            }
        }
    }
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v) => convert(v),
        Err(_) => Value::Invalid,
    }
}

/// Go's `fmt.Sprint` of the arguments, or the single string argument.
fn eval_args(args: &[Value<'_>], env: &Env<'_, '_>) -> String {
    if let [Value::Str(s)] = args {
        return s.to_string();
    }
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        if matches!(a, Value::Invalid) {
            out.push_str("<no value>");
        } else {
            write_v(&mut out, a, env.labels);
        }
    }
    out
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || c.is_control() => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

fn length(v: &Value<'_>, env: &Env<'_, '_>) -> Result<i64, String> {
    Ok(match v {
        Value::Str(s) => s.len() as i64,
        Value::Labels => (env.labels_len)() as i64,
        Value::Map(m) => m.len() as i64,
        Value::List(l) => l.len() as i64,
        Value::Invalid => return Err("len of nil pointer".to_string()),
        other => return Err(format!("len of type {}", other.type_name())),
    })
}

fn index_arg(v: &Value<'_>, cap: usize, what: &str) -> Result<usize, String> {
    let i = match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Invalid => return Err(format!("cannot index {what} with nil")),
        other => {
            return Err(format!(
                "cannot index {what} with type {}",
                other.type_name()
            ));
        }
    };
    if i < 0 || i as u64 > cap as u64 {
        return Err(format!("index out of range: {i}"));
    }
    Ok(i as usize)
}

fn index<'a>(args: &[Value<'a>], env: &Env<'a, '_>) -> Result<Value<'a>, String> {
    let mut item = args[0].clone();
    for ix in &args[1..] {
        item = match &item {
            Value::Labels => match ix {
                Value::Str(k) => {
                    let mut found: Option<String> = None;
                    (env.labels)(&mut |name, value| {
                        if name == k.as_ref() {
                            found = Some(value.to_string());
                        }
                    });
                    owned(found.unwrap_or_default())
                }
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::Map(m) => match ix {
                Value::Str(k) => m.get(k.as_ref()).cloned().unwrap_or(Value::Invalid),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::List(l) => {
                let i = index_arg(ix, l.len(), "slice/array")?;
                if i >= l.len() {
                    return Err(format!("index out of range: {i}"));
                }
                l[i].clone()
            }
            Value::Str(s) => {
                let i = index_arg(ix, s.len(), "slice/array")?;
                if i >= s.len() {
                    return Err(format!("index out of range: {i}"));
                }
                Value::Int(i64::from(s.as_bytes()[i]))
            }
            Value::Invalid => return Err("index of untyped nil".to_string()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice<'a>(args: &[Value<'a>]) -> Result<Value<'a>, String> {
    let item = &args[0];
    let len = match item {
        Value::Str(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Invalid => return Err("slice of untyped nil".to_string()),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let idx = &args[1..];
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    if idx.len() == 3 && matches!(item, Value::Str(_)) {
        return Err("cannot 3-index slice a string".to_string());
    }
    let mut bounds = [0usize, len, len];
    for (i, v) in idx.iter().enumerate() {
        bounds[i] = index_arg(v, len, "slice")?;
    }
    if bounds[0] > bounds[1] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        ));
    }
    Ok(match item {
        Value::List(l) => Value::List(Rc::new(l[bounds[0]..bounds[1]].to_vec())),
        _ => byte_slice(item, bounds[0], bounds[1]),
    })
}

/// Go's basic kinds for comparisons.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
}

fn basic_kind(v: &Value<'_>) -> Option<Kind> {
    match v {
        Value::Bool(_) => Some(Kind::Bool),
        Value::Int(_) | Value::Int64(_) => Some(Kind::Int),
        Value::Float(_) => Some(Kind::Float),
        Value::Str(_) => Some(Kind::Str),
        _ => None,
    }
}

/// Go's `eq arg1 arg2...`: true when `arg1` equals any of the others.
fn eq(a: &Value<'_>, others: &[Value<'_>]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".to_string());
    }
    let k1 = basic_kind(a);
    for b in others {
        let k2 = basic_kind(b);
        let truth = if k1 != k2 {
            if !matches!(a, Value::Invalid) && !matches!(b, Value::Invalid) {
                return Err("incompatible types for comparison".to_string());
            }
            false
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => x == y,
                (Value::Invalid, Value::Invalid) => true,
                (Value::Time(x), Value::Time(y)) => x.same_instant(y),
                (x, y) if x.type_name() != y.type_name() => {
                    return Err(format!(
                        "non-comparable types {}: {}",
                        x.type_name(),
                        y.type_name()
                    ));
                }
                (x, _) => return Err(format!("non-comparable type {}", x.type_name())),
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `lt`.
fn lt(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    let bad_type = || "invalid type for comparison".to_string();
    let k1 = basic_kind(a).ok_or_else(bad_type)?;
    let k2 = basic_kind(b).ok_or_else(bad_type)?;
    if k1 != k2 {
        return Err("incompatible types for comparison".to_string());
    }
    Ok(match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Str(x), Value::Str(y)) => x < y,
        _ => return Err(bad_type()),
    })
}

#[derive(Clone, Copy)]
enum DecOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// An exact decimal `mant × 10^exp`, enough of shopspring/decimal for sprig's
/// float arithmetic (`addf 0.1 0.2` is `0.3`).
#[derive(Clone, Copy)]
struct Dec {
    mant: i128,
    exp: i32,
}

const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

impl Dec {
    /// `decimal.NewFromFloat`: the shortest decimal that round-trips.
    fn from_f64(f: f64) -> Option<Dec> {
        if !f.is_finite() {
            return None;
        }
        if f == 0.0 {
            return Some(Dec { mant: 0, exp: 0 });
        }
        let (digits, dp) = super::value::shortest_digits(f);
        let mant: i128 = digits.parse().ok()?;
        let exp = dp - digits.len() as i32;
        Some(Dec {
            mant: if f < 0.0 { -mant } else { mant },
            exp,
        })
    }

    fn to_f64(self) -> f64 {
        format!("{}e{}", self.mant, self.exp)
            .parse()
            .unwrap_or(f64::NAN)
    }

    /// Both values with the smaller exponent.
    fn align(a: Dec, b: Dec) -> Option<(i128, i128, i32)> {
        let exp = a.exp.min(b.exp);
        let scale = |d: Dec| -> Option<i128> {
            let shift = usize::try_from(d.exp - exp).ok()?;
            d.mant.checked_mul(*POW10.get(shift)?)
        };
        Some((scale(a)?, scale(b)?, exp))
    }

    fn apply(self, op: DecOp, other: Dec) -> Option<Result<Dec, String>> {
        Some(Ok(match op {
            DecOp::Add | DecOp::Sub => {
                let (x, y, exp) = Dec::align(self, other)?;
                let mant = if matches!(op, DecOp::Add) {
                    x.checked_add(y)?
                } else {
                    x.checked_sub(y)?
                };
                Dec { mant, exp }
            }
            DecOp::Mul => Dec {
                mant: self.mant.checked_mul(other.mant)?,
                exp: self.exp.checked_add(other.exp)?,
            },
            DecOp::Div => {
                if other.mant == 0 {
                    return Some(Err("decimal division by zero".to_string()));
                }
                // Quotient rounded half away from zero to 16 decimal places.
                const PREC: i32 = 16;
                let shift = usize::try_from(self.exp - other.exp + PREC).ok()?;
                let num = self.mant.checked_mul(*POW10.get(shift)?)?;
                let q = num / other.mant;
                let r = num % other.mant;
                let q = if r.checked_mul(2)?.abs() >= other.mant.abs() {
                    if (num < 0) != (other.mant < 0) {
                        q - 1
                    } else {
                        q + 1
                    }
                } else {
                    q
                };
                Dec {
                    mant: q,
                    exp: -PREC,
                }
            }
        }))
    }
}

/// sprig's `execDecimalOp`: exact decimal arithmetic, falling back to float
/// arithmetic when the numbers outgrow 128 bits.
fn decimal_op(first: &Value<'_>, rest: &[Value<'_>], op: DecOp) -> Result<f64, String> {
    let mut acc_f = to_float64(first);
    let mut acc = Dec::from_f64(acc_f);
    for v in rest {
        let x = to_float64(v);
        let exact = match (acc, Dec::from_f64(x)) {
            (Some(a), Some(b)) => a.apply(op, b),
            _ => None,
        };
        match exact {
            Some(Ok(d)) => {
                acc = Some(d);
                acc_f = d.to_f64();
            }
            Some(Err(e)) => return Err(e),
            None => {
                if matches!(op, DecOp::Div) && x == 0.0 {
                    return Err("decimal division by zero".to_string());
                }
                acc_f = match op {
                    DecOp::Add => acc_f + x,
                    DecOp::Sub => acc_f - x,
                    DecOp::Mul => acc_f * x,
                    DecOp::Div => acc_f / x,
                };
                acc = Dec::from_f64(acc_f);
            }
        }
    }
    Ok(match acc {
        Some(d) => d.to_f64(),
        None => acc_f,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_arithmetic_matches_sprig() {
        let f = |v: f64| Value::Float(v);
        assert_eq!(decimal_op(&f(0.0), &[f(0.1), f(0.2)], DecOp::Add), Ok(0.3));
        assert_eq!(
            decimal_op(&f(20.2), &[f(5.25)], DecOp::Div),
            Ok(3.8476190476190477)
        );
        assert_eq!(
            decimal_op(&f(10.0), &[f(2.0), f(4.0)], DecOp::Div),
            Ok(1.25)
        );
        assert_eq!(decimal_op(&f(5.5), &[f(2.0), f(2.5)], DecOp::Mul), Ok(27.5));
        assert_eq!(decimal_op(&f(5.5), &[f(2.0), f(1.5)], DecOp::Sub), Ok(2.0));
        assert!(decimal_op(&f(1.0), &[f(0.0)], DecOp::Div).is_err());
        assert_eq!(decimal_op(&f(1e300), &[f(1e-300)], DecOp::Add), Ok(1e300));
    }

    #[test]
    fn humanize_bytes() {
        assert_eq!(parse_bytes("3KiB"), Ok(3072));
        assert_eq!(parse_bytes("0.5MB"), Ok(500_000));
        assert_eq!(parse_bytes("1,024 B"), Ok(1024));
        assert_eq!(parse_bytes("42"), Ok(42));
        assert_eq!(parse_bytes("1.5 gb"), Ok(1_500_000_000));
        assert!(parse_bytes("12 bananas").is_err());
        assert!(parse_bytes("KB").is_err());
    }

    #[test]
    fn url_escaping() {
        assert_eq!(
            query_escape("scheduler/lease.go:295 a b~"),
            "scheduler%2Flease.go%3A295+a+b~"
        );
        assert_eq!(query_unescape("a%2Fb+c"), Ok("a/b c".to_string()));
        assert_eq!(
            query_unescape("a%zzb"),
            Err("invalid URL escape \"%zz\"".to_string())
        );
        assert_eq!(
            query_unescape("a%2"),
            Err("invalid URL escape \"%2\"".to_string())
        );
    }

    #[test]
    fn base64_decoding() {
        assert_eq!(b64dec("aGlnaA=="), "high");
        assert_eq!(b64dec("aGln\naA=="), "high");
        assert_eq!(b64dec("a!=="), "illegal base64 data at input byte 1");
    }

    #[test]
    fn string_helpers_follow_go() {
        assert_eq!(go_title("hello wORLD-foo_bar 9x"), "Hello WORLD-Foo_bar 9x");
        assert_eq!(go_to_upper("straße"), "STRAßE");
        assert_eq!(go_to_lower("İSTANBUL"), "istanbul");
        assert_eq!(indent(2, "a\nb"), Ok("  a\n  b".to_string()));
        assert!(indent(-1, "a").is_err());
    }

    #[test]
    fn sprig_slicing() {
        let v = Value::str("Hello, 世界");
        let t = |c: i64| match trunc(c, &v) {
            Value::Str(s) => s.into_owned(),
            _ => String::new(),
        };
        assert_eq!(t(5), "Hello");
        assert_eq!(t(-3), "界");
        assert_eq!(t(20), "Hello, 世界");
        assert_eq!(t(8), "Hello, \u{FFFD}");
        let sub = |a: i64, b: i64| {
            substr(a, b, &v).map(|v| match v {
                Value::Str(s) => s.into_owned(),
                _ => String::new(),
            })
        };
        assert_eq!(sub(1, 3), Ok("el".to_string()));
        assert_eq!(sub(-1, 5), Ok("Hello".to_string()));
        assert_eq!(sub(7, -1), Ok("世界".to_string()));
        assert!(sub(20, -1).is_err());
        assert!(sub(5, 1).is_err());
    }

    #[test]
    fn unix_to_time_by_length() {
        assert_eq!(unix_to_time("19373").map(|t| t.unix()), Ok(19373 * 86400));
        assert_eq!(
            unix_to_time("1673798889").map(|t| t.unix()),
            Ok(1_673_798_889)
        );
        assert_eq!(
            unix_to_time("1673798889902").map(|t| t.unix_milli()),
            Ok(1_673_798_889_902)
        );
        assert_eq!(
            unix_to_time("1673798889902000").map(|t| t.unix_milli()),
            Ok(1_673_798_889_902)
        );
        assert_eq!(
            unix_to_time("1673798889902000123").map(|t| t.unix_nano()),
            Ok(1_673_798_889_902_000_123)
        );
        assert!(unix_to_time("123").is_err());
        assert!(unix_to_time("abc").is_err());
    }
}
