//! The logfmt parsers: `| logfmt [--strict] [--keep-empty]` and
//! `| logfmt [--strict] a, b="c"`.
//!
//! Owns: Loki's logfmt decoder (`pkg/logql/log/logfmt/decode.go`, adapted
//! from go-logfmt: keys end at `=` or white space, standalone keys, quoted
//! values with JSON-style escapes, malformed pairs skipped up to the next
//! white space) and its error texts, and both parser stages with Loki's
//! rules: names sanitised, `_extracted` on collisions, first extraction
//! wins, empty values and standalone keys skipped unless `--keep-empty`,
//! `LogfmtParserErr` only in strict mode (which stops at the first error).
//!
//! Does not own: label state (see `labels.rs`).
//!
//! Invariants: decoding never allocates except for quoted values with
//! escapes, which go to a reusable buffer.

use std::fmt;

use crate::model::Timestamp;
use crate::model::labels::is_valid_label_name;

use super::convert::{contains_rune_error, decode_rune, push_go_text, sanitize_label_key_into};
use super::json::LabelExtraction;
use super::labels::DUPLICATE_SUFFIX;
use super::{ERR_LOGFMT, LabelsBuilder, LineBuf, LogError, Stage};

/// A logfmt syntax error; `Display` is Loki's text.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct SyntaxError {
    msg: SyntaxMsg,
    pos: usize,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum SyntaxMsg {
    InvalidKey,
    Unexpected(u8),
    UntermQuote,
    InvalidQuote,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "logfmt syntax error at pos {} : ", self.pos)?;
        match self.msg {
            SyntaxMsg::InvalidKey => f.write_str("invalid key"),
            SyntaxMsg::Unexpected(c) => write!(f, "unexpected '{}'", c as char),
            SyntaxMsg::UntermQuote => f.write_str("unterminated quoted value"),
            SyntaxMsg::InvalidQuote => f.write_str("invalid quoted value"),
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ValueRef {
    Span(usize, usize),
    Buf,
}

/// Visits the key/value pairs of a logfmt line in order, as go-logfmt's
/// decoder scans them (quoted values unescaped), until `visit` returns
/// `false` or the line ends. Used outside queries (ingest level detection).
pub fn for_each_pair(line: &[u8], mut visit: impl FnMut(&[u8], &[u8]) -> bool) {
    let mut d = Decoder::default();
    d.reset(line);
    while !d.eol() && d.scan_keyval(line) {
        if !visit(d.key(line), d.value(line)) {
            return;
        }
    }
}

/// Like [`for_each_pair`], and tells whether the line scanned without a
/// syntax error (go-logfmt's `Decoder.Err() == nil`). The Drain logfmt
/// tokenizer drops lines that do not.
pub fn for_each_pair_checked(line: &[u8], mut visit: impl FnMut(&[u8], &[u8])) -> bool {
    let mut d = Decoder::default();
    d.reset(line);
    while !d.eol() && d.scan_keyval(line) {
        visit(d.key(line), d.value(line));
    }
    d.err.is_none()
}

/// The logfmt decoder.
#[derive(Clone, Debug, Default)]
struct Decoder {
    pos: usize,
    len: usize,
    key: Option<(usize, usize)>,
    value: Option<ValueRef>,
    err: Option<SyntaxError>,
    buf: Vec<u8>,
}

impl Decoder {
    fn reset(&mut self, line: &[u8]) {
        self.pos = 0;
        self.len = line.len();
        self.err = None;
    }

    fn eol(&self) -> bool {
        self.pos >= self.len
    }

    fn key<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        self.key.map_or(&[], |(s, e)| &line[s..e])
    }

    fn value<'a>(&'a self, line: &'a [u8]) -> &'a [u8] {
        match self.value {
            Some(ValueRef::Span(s, e)) => &line[s..e],
            Some(ValueRef::Buf) => &self.buf,
            _ => &[],
        }
    }

    fn syntax_error(&mut self, msg: SyntaxMsg) {
        self.err = Some(SyntaxError {
            msg,
            pos: self.pos + 1,
        });
    }

    /// Skips to the next white space after an error; always `false`.
    fn skip_value(&mut self, line: &[u8]) -> bool {
        self.pos = line[self.pos..]
            .iter()
            .position(|&c| c <= b' ')
            .map_or(line.len(), |p| self.pos + p);
        false
    }

    /// Advances to the next key/value pair; `false` at the end of the line
    /// or on a malformed pair (see `err`).
    fn scan_keyval(&mut self, line: &[u8]) -> bool {
        self.key = None;
        self.value = None;
        match line[self.pos.min(line.len())..]
            .iter()
            .position(|&c| c > b' ')
        {
            None => {
                self.pos = line.len();
                return false;
            }
            Some(p) => self.pos += p,
        }
        // Key.
        let start = self.pos;
        let mut multibyte = false;
        let mut p = self.pos;
        let bad_key = |s: usize, e: usize| multibyte_key_invalid(&line[s..e]);
        loop {
            if p >= line.len() {
                self.pos = line.len();
                if self.pos > start {
                    self.key = Some((start, self.pos));
                    if multibyte && bad_key(start, self.pos) {
                        self.syntax_error(SyntaxMsg::InvalidKey);
                        return false;
                    }
                }
                return true;
            }
            let c = line[p];
            if c == b'=' {
                self.pos = p;
                if self.pos > start {
                    self.key = Some((start, self.pos));
                    if multibyte && bad_key(start, self.pos) {
                        self.syntax_error(SyntaxMsg::InvalidKey);
                        return self.skip_value(line);
                    }
                }
                if self.key.is_none() {
                    self.syntax_error(SyntaxMsg::Unexpected(c));
                    return self.skip_value(line);
                }
                break;
            } else if c == b'"' {
                self.pos = p;
                self.syntax_error(SyntaxMsg::Unexpected(c));
                return self.skip_value(line);
            } else if c <= b' ' {
                self.pos = p;
                if self.pos > start {
                    self.key = Some((start, self.pos));
                    if multibyte && bad_key(start, self.pos) {
                        self.syntax_error(SyntaxMsg::InvalidKey);
                        return false;
                    }
                }
                return true;
            } else if c >= 0x80 {
                multibyte = true;
            }
            p += 1;
        }
        // Equal sign.
        self.pos += 1;
        if self.pos >= line.len() {
            return true;
        }
        match line[self.pos] {
            c if c <= b' ' => return true,
            b'"' => return self.quoted_value(line),
            _ => {}
        }
        // Bare value.
        let start = self.pos;
        for (p, &c) in line[self.pos..].iter().enumerate() {
            if c == b'=' || c == b'"' {
                self.pos += p;
                self.syntax_error(SyntaxMsg::Unexpected(c));
                return self.skip_value(line);
            }
            if c <= b' ' {
                self.pos += p;
                if self.pos > start {
                    self.value = Some(ValueRef::Span(start, self.pos));
                }
                return true;
            }
        }
        self.pos = line.len();
        if self.pos > start {
            self.value = Some(ValueRef::Span(start, self.pos));
        }
        true
    }

    fn quoted_value(&mut self, line: &[u8]) -> bool {
        let start = self.pos;
        let (mut has_esc, mut esc) = (false, false);
        for (p, &c) in line[self.pos + 1..].iter().enumerate() {
            if esc {
                esc = false;
            } else if c == b'\\' {
                has_esc = true;
                esc = true;
            } else if c == b'"' {
                self.pos += p + 2;
                if has_esc {
                    self.buf.clear();
                    if !unquote_into(&line[start + 1..self.pos - 1], &mut self.buf) {
                        self.syntax_error(SyntaxMsg::InvalidQuote);
                        return false;
                    }
                    self.value = Some(ValueRef::Buf);
                } else if self.pos - 1 > start + 1 {
                    self.value = Some(ValueRef::Span(start + 1, self.pos - 1));
                }
                return true;
            }
        }
        self.pos = line.len();
        self.syntax_error(SyntaxMsg::UntermQuote);
        false
    }
}

fn multibyte_key_invalid(key: &[u8]) -> bool {
    contains_rune_error(key)
}

/// Go's `encoding/json`-style unquoting of a quoted logfmt value body.
fn unquote_into(s: &[u8], out: &mut Vec<u8>) -> bool {
    let hex4 = |b: &[u8]| -> Option<u32> {
        if b.len() < 6 || b[0] != b'\\' || b[1] != b'u' {
            return None;
        }
        let mut v = 0;
        for &c in &b[2..6] {
            v = v * 16 + (c as char).to_digit(16)?;
        }
        Some(v)
    };
    let mut utf8 = [0u8; 4];
    let mut push =
        |out: &mut Vec<u8>, c: char| out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    let mut r = 0;
    while r < s.len() {
        match s[r] {
            b'\\' => {
                let Some(&e) = s.get(r + 1) else {
                    return false;
                };
                match e {
                    b'"' | b'\\' | b'/' | b'\'' => out.push(e),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let Some(rr) = hex4(&s[r..]) else {
                            return false;
                        };
                        r += 6;
                        if (0xd800..0xe000).contains(&rr) {
                            if let Some(rr1) = hex4(&s[r..])
                                && (0xd800..0xdc00).contains(&rr)
                                && (0xdc00..0xe000).contains(&rr1)
                            {
                                let c = 0x10000 + ((rr - 0xd800) << 10) + (rr1 - 0xdc00);
                                push(out, char::from_u32(c).unwrap_or('\u{fffd}'));
                                r += 6;
                                continue;
                            }
                            push(out, '\u{fffd}');
                            continue;
                        }
                        push(out, char::from_u32(rr).unwrap_or('\u{fffd}'));
                        continue;
                    }
                    _ => return false,
                }
                r += 2;
            }
            b'"' => return false,
            c if c < 0x80 => {
                out.push(c);
                r += 1;
            }
            _ => {
                let (c, n) = decode_rune(&s[r..]);
                push(out, c.unwrap_or('\u{fffd}'));
                r += n;
            }
        }
    }
    true
}

/// `| logfmt` without parameters.
#[derive(Clone, Debug, Default)]
pub struct LogfmtParser {
    strict: bool,
    keep_empty: bool,
    dec: Decoder,
    name: String,
    value: String,
}

impl LogfmtParser {
    pub fn new(strict: bool, keep_empty: bool) -> Self {
        LogfmtParser {
            strict,
            keep_empty,
            ..LogfmtParser::default()
        }
    }
}

impl Stage for LogfmtParser {
    fn process(&mut self, _ts: Timestamp, line: &mut LineBuf<'_>, lbs: &mut LabelsBuilder) -> bool {
        let line = line.as_bytes();
        if lbs.parsers_idle() {
            return true;
        }
        self.dec.reset(line);
        while !self.dec.eol() {
            if !self.dec.scan_keyval(line) {
                if self.strict {
                    break;
                }
                continue;
            }
            self.name.clear();
            sanitize_label_key_into(&mut self.name, self.dec.key(line), true);
            if self.name.is_empty() {
                continue;
            }
            if lbs.collides(&self.name) {
                self.name.push_str(DUPLICATE_SUFFIX);
            }
            if lbs.was_extracted(&self.name) || !lbs.should_extract(&self.name) {
                continue;
            }
            let val = self.dec.value(line);
            if !self.keep_empty && val.is_empty() {
                continue;
            }
            self.value.clear();
            push_go_text(&mut self.value, val, ' ', true);
            lbs.set_parsed(&self.name, &self.value);
            if lbs.all_required_extracted() {
                break;
            }
        }
        if self.strict
            && let Some(err) = self.dec.err
        {
            lbs.add_error(ERR_LOGFMT, Some(&err));
        }
        true
    }
}

/// `| logfmt a, b="c"`: only the listed keys, optionally renamed.
#[derive(Clone, Debug)]
pub struct LogfmtExpressionParser {
    /// (identifier, the key as Loki prints the parsed expression).
    expressions: Vec<(String, String)>,
    strict: bool,
    dec: Decoder,
    name: String,
    value: String,
}

impl LogfmtExpressionParser {
    pub fn new(expressions: &[LabelExtraction], strict: bool) -> Result<Self, LogError> {
        if expressions.is_empty() {
            return Err(LogError::NoLogfmtExpression);
        }
        let mut parsed: Vec<(String, String)> = Vec::new();
        for e in expressions {
            let key = parse_logfmt_expression(&e.expression)?;
            if !is_valid_label_name(&e.identifier) {
                return Err(LogError::InvalidExtractedLabelName {
                    name: e.identifier.clone(),
                });
            }
            // Loki keeps them in a map: a repeated identifier replaces.
            match parsed.iter_mut().find(|(id, _)| *id == e.identifier) {
                Some(slot) => slot.1 = key,
                None => parsed.push((e.identifier.clone(), key)),
            }
        }
        Ok(LogfmtExpressionParser {
            expressions: parsed,
            strict,
            dec: Decoder::default(),
            name: String::new(),
            value: String::new(),
        })
    }
}

/// Loki's logfmt expression grammar: a key or a quoted string, followed by
/// quoted strings; several parts print as Go's `%v` with extra arguments.
fn parse_logfmt_expression(expr: &str) -> Result<String, LogError> {
    let err = |message: String| LogError::ExpressionSyntax {
        expression: expr.to_string(),
        message,
    };
    let chars: Vec<char> = expr.chars().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\0' {
            break;
        }
        if matches!(c, ' ' | '\t' | '\n') {
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            if !parts.is_empty() {
                return Err(err("unexpected KEY".into()));
            }
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            parts.push(chars[start..i].iter().collect());
            continue;
        }
        if c == '"' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && !matches!(chars[i], '"' | ']' | '\0') {
                s.push(chars[i]);
                i += 1;
            }
            i += 1;
            parts.push(s);
            continue;
        }
        return Err(err(format!("unexpected char {c}")));
    }
    let Some(first) = parts.first() else {
        return Err(err("unexpected $end, expecting KEY or STRING".into()));
    };
    let mut out = first.clone();
    if parts.len() > 1 {
        out.push_str("%!(EXTRA ");
        for (i, p) in parts[1..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str("string=");
            out.push_str(p);
        }
        out.push(')');
    }
    Ok(out)
}

impl Stage for LogfmtExpressionParser {
    fn process(&mut self, _ts: Timestamp, line: &mut LineBuf<'_>, lbs: &mut LabelsBuilder) -> bool {
        let line = line.as_bytes();
        if lbs.parsers_idle() {
            return true;
        }
        for (id, _) in &self.expressions {
            if !lbs.stream_has(id) {
                lbs.set_parsed(id, "");
            }
        }
        self.dec.reset(line);
        while !self.dec.eol() {
            if !self.dec.scan_keyval(line) {
                if self.strict {
                    break;
                }
                continue;
            }
            self.name.clear();
            sanitize_label_key_into(&mut self.name, self.dec.key(line), true);
            if self.name.is_empty() {
                continue;
            }
            let val = self.dec.value(line);
            self.value.clear();
            if !contains_rune_error(val) {
                push_go_text(&mut self.value, val, ' ', true);
            }
            if let Some((id, _)) = self.expressions.iter().find(|(_, key)| *key == self.name) {
                self.name.clear();
                self.name.push_str(id);
            }
            if self.expressions.iter().any(|(id, _)| *id == self.name) {
                if lbs.stream_has(&self.name) {
                    self.name.push_str(DUPLICATE_SUFFIX);
                }
                lbs.set_parsed(&self.name, &self.value);
            }
        }
        if self.strict
            && let Some(err) = self.dec.err
        {
            lbs.add_error(ERR_LOGFMT, Some(&err));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::log::LineScratch;
    use crate::model::Labels;

    fn run(stage: &mut dyn Stage, stream: &str, line: &[u8]) -> String {
        let labels = Labels::parse(stream).unwrap();
        let mut b = LabelsBuilder::new(&labels);
        b.reset();
        let mut scratch = LineScratch::default();
        let mut lb = LineBuf::new(line, &mut scratch);
        assert!(stage.process(Timestamp::EPOCH, &mut lb, &mut b));
        b.labels_result().labels().to_string()
    }

    /// Loki's `TestLogfmtParser_parse` table: (name, line, stream, want,
    /// want in strict mode when different).
    #[test]
    fn loki_logfmt_table() {
        type Case<'a> = (&'a str, &'a [u8], &'a str, &'a str, Option<&'a str>);
        let cases: &[Case] = &[
            (
                "not logfmt",
                b"foobar====wqe=sdad1r",
                r#"{foo="bar"}"#,
                r#"{foo="bar"}"#,
                Some(
                    r#"{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 8 : unexpected '='", foo="bar"}"#,
                ),
            ),
            (
                "utf8 error rune",
                "buzz=foo bar=\u{fffd}f".as_bytes(),
                "{}",
                r#"{bar=" f", buzz="foo"}"#,
                None,
            ),
            (
                "key alone",
                b"buzz bar=foo",
                r#"{foo="bar"}"#,
                r#"{bar="foo", foo="bar"}"#,
                None,
            ),
            (
                "quoted",
                br#"foobar="foo bar""#,
                r#"{foo="bar"}"#,
                r#"{foo="bar", foobar="foo bar"}"#,
                None,
            ),
            (
                "escaped control chars",
                br#"foobar="foo\nbar\tbaz""#,
                r#"{a="b"}"#,
                r#"{a="b", foobar="foo\nbar\tbaz"}"#,
                None,
            ),
            (
                "literal control chars",
                b"foobar=\"foo\nbar\tbaz\"",
                r#"{a="b"}"#,
                r#"{a="b", foobar="foo\nbar\tbaz"}"#,
                None,
            ),
            (
                "escaped slash",
                br#"foobar="foo ba\\r baz""#,
                r#"{a="b"}"#,
                r#"{a="b", foobar="foo ba\\r baz"}"#,
                None,
            ),
            (
                "double property",
                br#"foobar="foo bar" latency=10ms"#,
                r#"{foo="bar"}"#,
                r#"{foo="bar", foobar="foo bar", latency="10ms"}"#,
                None,
            ),
            (
                "duplicate property",
                br#"foo="foo bar" foobar=10ms"#,
                r#"{foo="bar"}"#,
                r#"{foo="bar", foo_extracted="foo bar", foobar="10ms"}"#,
                None,
            ),
            (
                "invalid key names",
                br#"foo="foo bar" foo.bar=10ms test-dash=foo"#,
                r#"{foo="bar"}"#,
                r#"{foo="bar", foo_bar="10ms", foo_extracted="foo bar", test_dash="foo"}"#,
                None,
            ),
            ("nil", b"", r#"{foo="bar"}"#, r#"{foo="bar"}"#, None),
            (
                "empty key",
                br#"foo="foo bar" =notkey bar=10ms"#,
                r#"{foo="bar"}"#,
                r#"{bar="10ms", foo="bar", foo_extracted="foo bar"}"#,
                Some(
                    r#"{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 15 : unexpected '='", foo="bar", foo_extracted="foo bar"}"#,
                ),
            ),
            (
                "error rune in key",
                "foo=\"foo bar\" b\u{fffd}r=10ms".as_bytes(),
                r#"{foo="bar"}"#,
                r#"{foo="bar", foo_extracted="foo bar"}"#,
                Some(
                    r#"{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 20 : invalid key", foo="bar", foo_extracted="foo bar"}"#,
                ),
            ),
            (
                "double quote in key",
                br#"foo="foo bar" bu"zz=10ms"#,
                r#"{foo="bar"}"#,
                r#"{foo="bar", foo_extracted="foo bar"}"#,
                Some(
                    r#"{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 17 : unexpected '\"'", foo="bar", foo_extracted="foo bar"}"#,
                ),
            ),
            (
                "= in value",
                br#"bar=bu=zz foo="foo bar""#,
                r#"{foo="bar"}"#,
                r#"{foo="bar", foo_extracted="foo bar"}"#,
                Some(
                    r#"{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 7 : unexpected '='", foo="bar"}"#,
                ),
            ),
        ];
        for (name, line, stream, want, strict) in cases {
            assert_eq!(
                run(&mut LogfmtParser::new(false, false), stream, line),
                *want,
                "{name}"
            );
            assert_eq!(
                run(&mut LogfmtParser::new(true, false), stream, line),
                strict.unwrap_or(want),
                "{name} (strict)"
            );
        }
    }

    #[test]
    fn keep_empty_and_first_wins() {
        for strict in [false, true] {
            let p = |keep| LogfmtParser::new(strict, keep);
            assert_eq!(
                run(&mut p(false), r#"{foo="bar"}"#, b"foo bar=buzz"),
                r#"{bar="buzz", foo="bar"}"#
            );
            assert_eq!(
                run(&mut p(true), r#"{foo="bar"}"#, b"foo bar=buzz"),
                r#"{bar="buzz", foo="bar", foo_extracted=""}"#
            );
            assert_eq!(
                run(
                    &mut p(false),
                    r#"{foo="bar"}"#,
                    "foo=b\u{fffd}r bar=buzz".as_bytes()
                ),
                r#"{bar="buzz", foo="bar", foo_extracted="b r"}"#
            );
            assert_eq!(
                run(&mut p(true), "{}", b"user= dry_run a=1"),
                r#"{a="1", dry_run="", user=""}"#
            );
        }
        assert_eq!(
            run(
                &mut LogfmtParser::new(false, false),
                "{}",
                br#"foobar="foo bar" foobar=10ms"#
            ),
            r#"{foobar="foo bar"}"#,
            "first extraction wins"
        );
        assert_eq!(
            run(
                &mut LogfmtParser::new(false, false),
                "{}",
                b"2fa=x http.method=GET"
            ),
            r#"{_2fa="x", http_method="GET"}"#
        );
        assert_eq!(
            run(
                &mut LogfmtParser::new(true, false),
                "{}",
                br#"a=1 broken="unterminated"#
            ),
            r#"{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 25 : unterminated quoted value", a="1"}"#
        );
        assert_eq!(
            run(
                &mut LogfmtParser::new(false, false),
                "{}",
                br#"err="lock held by \"worker-3\"""#
            ),
            r#"{err="lock held by \"worker-3\""}"#
        );
    }

    fn expr(stream: &str, exprs: &[(&str, &str)], line: &str) -> String {
        let exprs: Vec<LabelExtraction> = exprs
            .iter()
            .map(|(i, e)| LabelExtraction::new(*i, *e))
            .collect();
        run(
            &mut LogfmtExpressionParser::new(&exprs, false).unwrap(),
            stream,
            line.as_bytes(),
        )
    }

    /// Loki's `TestLogfmtExpressionParser` table.
    #[test]
    fn loki_logfmt_expression_table() {
        let line =
            r#"app=foo level=error spaces="value with ÜFT8👌" ts=2021-02-12T19:18:10.037940878Z"#;
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[("app", "app")], "{}", r#"{app="foo"}"#),
            (
                &[("app", "app"), ("level", "level"), ("ts", "ts")],
                "{}",
                r#"{app="foo", level="error", ts="2021-02-12T19:18:10.037940878Z"}"#,
            ),
            (&[("test", "level")], "{}", r#"{test="error"}"#),
            (
                &[("app", "app"), ("lvl", "level"), ("timestamp", "ts")],
                "{}",
                r#"{app="foo", lvl="error", timestamp="2021-02-12T19:18:10.037940878Z"}"#,
            ),
            (
                &[("spaces", "spaces")],
                "{}",
                r#"{spaces="value with ÜFT8👌"}"#,
            ),
            (&[("nope", "nope")], "{}", r#"{nope=""}"#),
            (
                &[("app", "app")],
                r#"{ap="bar"}"#,
                r#"{ap="bar", app="foo"}"#,
            ),
            (
                &[("app", "app")],
                r#"{app="bar"}"#,
                r#"{app="bar", app_extracted="foo"}"#,
            ),
            (
                &[("lvl", "level")],
                r#"{level="debug"}"#,
                r#"{level="debug", lvl="error"}"#,
            ),
        ];
        for (exprs, stream, want) in cases {
            assert_eq!(expr(stream, exprs, line), *want, "{exprs:?}");
        }
        assert_eq!(
            expr("{}", &[("user", "user")], "a=1 user= b=2"),
            r#"{user=""}"#,
            "a requested empty key is \"\""
        );
        let err =
            LogfmtExpressionParser::new(&[LabelExtraction::new("app", "field with space")], false)
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot parse expression [field with space]: syntax error: unexpected KEY"
        );
        assert!(LogfmtExpressionParser::new(&[], false).is_err());
    }
}
