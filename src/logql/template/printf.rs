//! Go's `fmt` printing of template values: `%v` (`Fprint`), `Sprint`,
//! `Sprintln` and `Sprintf` with the verbs LogQL users write (`%s %d %v %f
//! %.2f %q %x %5s %-5s %05d %e %g %t %c %U %T %%`), flags, width and
//! precision, and Go's error forms (`%!d(string=x)`, `%!s(MISSING)`,
//! `%!(EXTRA int=1)`).

use std::fmt::Write as _;

use super::value::{Value, precision_digits, write_exp_form, write_go_float, write_plain_form};
use crate::model::labels::write_go_quoted;

/// Labels of the entry, for printing the label map.
pub(crate) type LabelsVisitor<'a> = &'a dyn Fn(&mut dyn FnMut(&str, &str));

/// Writes `v` as Go's `%v` does (`<nil>` for nil).
pub(crate) fn write_v(out: &mut String, v: &Value<'_>, labels: LabelsVisitor<'_>) {
    match v {
        Value::Invalid => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_go_float(out, *f),
        Value::Str(s) => out.push_str(s),
        Value::Time(t) => t.write_go_string(out),
        Value::Labels => {
            let mut pairs: Vec<(String, String)> = Vec::new();
            labels(&mut |k, v| pairs.push((k.to_string(), v.to_string())));
            pairs.sort();
            out.push_str("map[");
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                out.push_str(v);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_v(out, v, labels);
            }
            out.push(']');
        }
        Value::List(l) => {
            out.push('[');
            for (i, v) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, v, labels);
            }
            out.push(']');
        }
    }
}

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub(crate) fn sprint(out: &mut String, args: &[Value<'_>], labels: LabelsVisitor<'_>) {
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        write_v(out, a, labels);
    }
}

/// `fmt.Sprintln`: always spaces, then a newline.
pub(crate) fn sprintln(out: &mut String, args: &[Value<'_>], labels: LabelsVisitor<'_>) {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_v(out, a, labels);
    }
    out.push('\n');
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Largest width or precision honoured, so a template cannot ask for
/// gigabytes of padding.
const MAX_PAD: usize = 1 << 20;

/// `fmt.Sprintf`.
pub(crate) fn sprintf(
    out: &mut String,
    format: &str,
    args: &[Value<'_>],
    labels: LabelsVisitor<'_>,
) {
    let mut argi = 0;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        // Flags.
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        // Width.
        if chars.peek().is_some_and(|&(_, c)| c == '*') {
            chars.next();
            match args.get(argi) {
                Some(Value::Int(n) | Value::Int64(n)) => {
                    if *n < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                    spec.width = Some((n.unsigned_abs() as usize).min(MAX_PAD));
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            argi += 1;
        } else {
            spec.width = parse_num(&mut chars);
        }
        // Precision.
        if chars.peek().is_some_and(|&(_, c)| c == '.') {
            chars.next();
            if chars.peek().is_some_and(|&(_, c)| c == '*') {
                chars.next();
                match args.get(argi) {
                    Some(Value::Int(n) | Value::Int64(n)) if *n >= 0 => {
                        spec.prec = Some((*n as usize).min(MAX_PAD));
                    }
                    _ => out.push_str("%!(BADPREC)"),
                }
                argi += 1;
            } else {
                spec.prec = Some(parse_num(&mut chars).unwrap_or(0));
            }
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        argi += 1;
        format_arg(out, verb, spec, arg, labels);
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if matches!(a, Value::Invalid) {
                out.push_str("<nil>");
            } else {
                out.push_str(a.type_name());
                out.push('=');
                write_v(out, a, labels);
            }
        }
        out.push(')');
    }
}

fn parse_num(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(&(_, c)) = chars.peek() {
        let Some(d) = c.to_digit(10) else { break };
        n = Some((n.unwrap_or(0) * 10 + d as usize).min(MAX_PAD));
        chars.next();
    }
    n
}

fn bad_verb(out: &mut String, verb: char, arg: &Value<'_>, labels: LabelsVisitor<'_>) {
    let _ = write!(out, "%!{verb}(");
    if matches!(arg, Value::Invalid) {
        out.push_str("<nil>");
    } else {
        out.push_str(arg.type_name());
        out.push('=');
        write_v(out, arg, labels);
    }
    out.push(')');
}

/// Pads `s` to the spec's width (counted in characters).
fn pad(out: &mut String, s: &str, spec: Spec, zero_ok: bool) {
    let n = s.chars().count();
    let width = spec.width.unwrap_or(0);
    if n >= width {
        out.push_str(s);
        return;
    }
    let fill = width - n;
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && zero_ok {
        // Zeros go after a sign.
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+' | b'-' | b' ') => s.split_at(1),
            _ => ("", s),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(rest);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

fn format_arg(
    out: &mut String,
    verb: char,
    spec: Spec,
    arg: &Value<'_>,
    labels: LabelsVisitor<'_>,
) {
    if verb == 'T' {
        pad(out, arg.type_name(), spec, false);
        return;
    }
    match arg {
        Value::Bool(b) => match verb {
            'v' | 't' => pad(out, if *b { "true" } else { "false" }, spec, false),
            _ => bad_verb(out, verb, arg, labels),
        },
        Value::Int(i) | Value::Int64(i) => format_int(out, verb, spec, *i, arg, labels),
        Value::Float(f) => format_float(out, verb, spec, *f, arg, labels),
        Value::Str(s) => format_str(out, verb, spec, s, arg, labels),
        Value::Time(t) => match verb {
            'v' | 's' | 'q' | 'x' | 'X' => {
                let mut s = String::new();
                t.write_go_string(&mut s);
                format_str(out, verb, spec, &s, arg, labels);
            }
            _ => bad_verb(out, verb, arg, labels),
        },
        Value::Invalid => match verb {
            'v' => pad(out, "<nil>", spec, false),
            _ => bad_verb(out, verb, arg, labels),
        },
        Value::Labels | Value::Map(_) | Value::List(_) => match verb {
            'v' | 's' => {
                let mut s = String::new();
                write_v(&mut s, arg, labels);
                pad(out, &s, spec, false);
            }
            _ => bad_verb(out, verb, arg, labels),
        },
    }
}

fn format_int(
    out: &mut String,
    verb: char,
    spec: Spec,
    i: i64,
    arg: &Value<'_>,
    labels: LabelsVisitor<'_>,
) {
    let neg = i < 0;
    let mag = i.unsigned_abs();
    let digits = match verb {
        'v' | 'd' => mag.to_string(),
        'b' => format!("{mag:b}"),
        'o' | 'O' => format!("{mag:o}"),
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, &c.to_string(), spec, false);
            return;
        }
        'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            let s = match c {
                '\'' => "'\\''".to_string(),
                '"' => "'\"'".to_string(),
                _ => {
                    let mut q = String::new();
                    let _ = write_go_quoted(&mut q, &c.to_string());
                    format!("'{}'", &q[1..q.len() - 1])
                }
            };
            pad(out, &s, spec, false);
            return;
        }
        'U' => {
            let s = format!("U+{mag:04X}");
            pad(out, &s, spec, false);
            return;
        }
        _ => {
            bad_verb(out, verb, arg, labels);
            return;
        }
    };
    let mut body = String::new();
    if let Some(p) = spec.prec {
        for _ in digits.len()..p {
            body.push('0');
        }
    }
    if spec.sharp {
        match verb {
            'x' => body.insert_str(0, "0x"),
            'X' => body.insert_str(0, "0X"),
            'o' => body.insert(0, '0'),
            'b' => body.insert_str(0, "0b"),
            _ => {}
        }
    }
    if verb == 'O' {
        body.insert_str(0, "0o");
    }
    if !(spec.prec == Some(0) && i == 0) {
        body.push_str(&digits);
    }
    let sign = if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let s = format!("{sign}{body}");
    pad(out, &s, spec, spec.prec.is_none());
}

fn format_float(
    out: &mut String,
    verb: char,
    spec: Spec,
    f: f64,
    arg: &Value<'_>,
    labels: LabelsVisitor<'_>,
) {
    let sign = if f.is_sign_negative() && !f.is_nan() {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    if f.is_infinite() || f.is_nan() {
        if !matches!(verb, 'v' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G') {
            bad_verb(out, verb, arg, labels);
            return;
        }
        let s = if f.is_nan() {
            let sgn = if spec.plus {
                "+"
            } else if spec.space {
                " "
            } else {
                ""
            };
            format!("{sgn}NaN")
        } else if f > 0.0 {
            if spec.space && !spec.plus {
                " Inf"
            } else {
                "+Inf"
            }
            .to_string()
        } else {
            "-Inf".to_string()
        };
        pad(out, &s, spec, false);
        return;
    }
    let a = f.abs();
    let mut body = String::new();
    match verb {
        'v' | 'g' | 'G' => match spec.prec {
            None if verb == 'v' || !spec.sharp => {
                write_go_float(&mut body, a);
                if verb == 'G' {
                    body = body.replace('e', "E");
                }
            }
            prec => {
                let p = prec.unwrap_or(6).max(1);
                if a == 0.0 {
                    body.push('0');
                } else {
                    let (mut digits, dp) = precision_digits(a, p);
                    while digits.len() > 1 && digits.ends_with('0') {
                        digits.pop();
                    }
                    let mut eprec = p as i32;
                    let nd = digits.len() as i32;
                    if eprec > nd && nd >= dp {
                        eprec = nd;
                    }
                    let exp = dp - 1;
                    if exp < -4 || exp >= eprec {
                        write_exp_form(&mut body, false, &digits, dp, verb == 'G');
                    } else {
                        write_plain_form(&mut body, false, &digits, dp);
                    }
                }
            }
        },
        'e' | 'E' => {
            let p = spec.prec.unwrap_or(6);
            if a == 0.0 {
                body.push('0');
                if p > 0 {
                    body.push('.');
                    body.extend(std::iter::repeat_n('0', p));
                }
                body.push_str(if verb == 'E' { "E+00" } else { "e+00" });
            } else {
                let (digits, dp) = precision_digits(a, p + 1);
                write_exp_form(&mut body, false, &digits, dp, verb == 'E');
            }
        }
        'f' | 'F' => {
            let p = spec.prec.unwrap_or(6);
            let _ = write!(body, "{a:.p$}");
        }
        _ => {
            bad_verb(out, verb, arg, labels);
            return;
        }
    }
    let s = format!("{sign}{body}");
    pad(out, &s, spec, true);
}

fn format_str(
    out: &mut String,
    verb: char,
    spec: Spec,
    s: &str,
    arg: &Value<'_>,
    labels: LabelsVisitor<'_>,
) {
    let s: &str = match spec.prec {
        Some(p) if matches!(verb, 'v' | 's' | 'q' | 'x' | 'X') => {
            let end = s.char_indices().nth(p).map_or(s.len(), |(i, _)| i);
            &s[..end]
        }
        _ => s,
    };
    match verb {
        'v' | 's' => pad(out, s, spec, true),
        'q' => {
            let mut q = String::with_capacity(s.len() + 2);
            if spec.sharp && !s.contains('`') && !s.chars().any(|c| c.is_control() && c != '\t') {
                q.push('`');
                q.push_str(s);
                q.push('`');
            } else {
                let _ = write_go_quoted(&mut q, s);
            }
            pad(out, &q, spec, true);
        }
        'x' | 'X' => {
            let mut h = String::with_capacity(s.len() * 2);
            for (i, b) in s.bytes().enumerate() {
                if spec.space && i > 0 {
                    h.push(' ');
                }
                if spec.sharp && (spec.space || i == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    let _ = write!(h, "{b:02x}");
                } else {
                    let _ = write!(h, "{b:02X}");
                }
            }
            pad(out, &h, spec, true);
        }
        _ => bad_verb(out, verb, arg, labels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_labels(_: &mut dyn FnMut(&str, &str)) {}

    fn pf(format: &str, args: &[Value<'_>]) -> String {
        let mut s = String::new();
        sprintf(&mut s, format, args, &no_labels);
        s
    }

    #[test]
    fn strings_and_padding() {
        assert_eq!(
            pf(
                "%s|%5s|%-5s|%.2s",
                &[
                    Value::str("ab"),
                    Value::str("ab"),
                    Value::str("ab"),
                    Value::str("héllo")
                ]
            ),
            "ab|   ab|ab   |hé"
        );
        assert_eq!(
            pf("%-40.40s|", &[Value::str("/a/b")]),
            format!("/a/b{}|", " ".repeat(36))
        );
        assert_eq!(pf("%q", &[Value::str("a\"b\n")]), r#""a\"b\n""#);
        assert_eq!(
            pf("%x %X", &[Value::str("hi"), Value::str("hi")]),
            "6869 6869"
        );
        assert_eq!(pf("%05s", &[Value::str("ab")]), "000ab");
    }

    #[test]
    fn numbers() {
        assert_eq!(
            pf(
                "%d %5d %-5d| %05d %+d %x %X %o %b %c %U",
                &[
                    Value::Int(42),
                    Value::Int(42),
                    Value::Int(42),
                    Value::Int(-42),
                    Value::Int(5),
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(5),
                    Value::Int(65),
                    Value::Int(65)
                ]
            ),
            "42    42 42   | -0042 +5 ff FF 10 101 A U+0041"
        );
        assert_eq!(
            pf(
                "%.2f %f %.0f %8.3f",
                &[
                    Value::Float(2.725),
                    Value::Float(1.5),
                    Value::Float(2.5),
                    Value::Float(-1.0)
                ]
            ),
            "2.73 1.500000 2   -1.000"
        );
        assert_eq!(
            pf(
                "%e %.2E %g %.3g %g",
                &[
                    Value::Float(1234.5678),
                    Value::Float(1234.5678),
                    Value::Float(1e21),
                    Value::Float(1234.5678),
                    Value::Float(0.5)
                ]
            ),
            "1.234568e+03 1.23E+03 1e+21 1.23e+03 0.5"
        );
        assert_eq!(
            pf(
                "%v %v %t",
                &[Value::Int64(7), Value::Float(2e6), Value::Bool(true)]
            ),
            "7 2e+06 true"
        );
        assert_eq!(pf("%06.2f", &[Value::Float(-1.5)]), "-01.50");
    }

    #[test]
    fn go_error_forms() {
        assert_eq!(pf("%d", &[Value::str("x")]), "%!d(string=x)");
        assert_eq!(pf("%s", &[Value::Int(5)]), "%!s(int=5)");
        assert_eq!(pf("%s %s", &[Value::str("a")]), "a %!s(MISSING)");
        assert_eq!(
            pf("%s", &[Value::str("a"), Value::Int(1)]),
            "a%!(EXTRA int=1)"
        );
        assert_eq!(pf("100%%", &[]), "100%");
        assert_eq!(
            pf("%T %T", &[Value::Float(1.0), Value::str("")]),
            "float64 string"
        );
        assert_eq!(pf("%", &[]), "%!(NOVERB)");
    }

    #[test]
    fn sprint_spacing() {
        let mut s = String::new();
        sprint(
            &mut s,
            &[Value::Int(1), Value::Int(2), Value::str("a"), Value::Int(3)],
            &no_labels,
        );
        assert_eq!(s, "1 2a3");
        let mut s = String::new();
        sprintln(&mut s, &[Value::str("a"), Value::str("b")], &no_labels);
        assert_eq!(s, "a b\n");
    }
}
