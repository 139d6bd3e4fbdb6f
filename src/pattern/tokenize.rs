//! Line tokenizers of Loki's Drain (`pkg/pattern/drain/line_tokenizer.go`):
//! what a line is split into before clustering, and how a cluster's tokens
//! are joined back into the pattern text.
//!
//! Owns: log format detection, the punctuation tokenizer (plain text), the
//! logfmt tokenizer (key/value pairs, time-like values replaced by `<_>`),
//! the JSON tokenizer (the message field, punctuation-tokenized), the joins,
//! and the collapsing of repeated `<_>` placeholders.
//!
//! Does not own: clustering (see `drain.rs`).
//!
//! Invariants: tokens are bytes (Go slices strings by bytes, and so does the
//! punctuation tokenizer when it meets a multi-byte punctuation rune); a
//! [`TokenBuf`] is reused from line to line, so tokenizing does not allocate
//! once its buffers have grown.

use std::sync::LazyLock;

use crate::logql::log::jsonscan::{self, ValueType};
use crate::logql::log::logfmt;

/// The placeholder that stands for a variable token.
pub const PLACEHOLDER: &[u8] = b"<_>";

/// Loki's `PatternIngesterTokenizableJSONFields` default: the JSON fields
/// whose text is clustered, in priority order.
pub const DEFAULT_JSON_FIELDS: &[&str] = &["log", "message", "msg", "msg_", "_msg", "content"];

/// The punctuation tokenizer stops splitting after this many tokens.
const MAX_SPLIT_TOKENS: usize = 127;

/// A stream's log format, guessed from its first line (Loki's
/// `DetectLogFormat`), which picks the tokenizer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Logfmt,
    Unknown,
}

/// Loki's `logfmtRegex`: the whole line is `key=value` pairs separated by
/// single spaces (ASCII classes, as Go's RE2).
static LOGFMT_LINE: LazyLock<Option<regex::bytes::Regex>> = LazyLock::new(|| {
    regex::bytes::Regex::new(r#"(?-u)^(\w+?=([^"]\S*?|".+?") )*?(\w+?=([^"]\S*?|".+?"))+$"#).ok()
});

/// `{...}` is JSON; a line of `key=value` pairs is logfmt.
pub fn detect_format(line: &[u8]) -> LogFormat {
    if line.len() < 2 {
        return LogFormat::Unknown;
    }
    if line[0] == b'{' && line[line.len() - 1] == b'}' {
        return LogFormat::Json;
    }
    match &*LOGFMT_LINE {
        Some(re) if re.is_match(line) => LogFormat::Logfmt,
        _ => LogFormat::Unknown,
    }
}

/// Tokens of one line, as spans of an owned byte arena, plus the positions
/// after which the original line had spaces (the punctuation tokenizer's
/// join state; `-1` for a leading space, which Go records too).
#[derive(Debug, Default, Clone)]
pub struct TokenBuf {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
    pub(crate) spaces_after: Vec<isize>,
}

impl TokenBuf {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
        self.spaces_after.clear();
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn get(&self, i: usize) -> &[u8] {
        let (s, e) = self.spans[i];
        &self.bytes[s..e]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.spans.iter().map(|&(s, e)| &self.bytes[s..e])
    }

    fn push(&mut self, token: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(token);
        self.spans.push((start, self.bytes.len()));
    }
}

/// Go's `unicode.IsPunct` (general category P). ASCII is exact (`$+<=>^`|~`
/// are symbols, not punctuation); beyond ASCII the common punctuation
/// blocks are covered (Latin-1, General Punctuation, CJK, full-width).
fn is_go_punct(c: char) -> bool {
    if c.is_ascii() {
        return matches!(
            c,
            '!' | '"'
                | '#'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | ','
                | '-'
                | '.'
                | '/'
                | ':'
                | ';'
                | '?'
                | '@'
                | '['
                | '\\'
                | ']'
                | '_'
                | '{'
                | '}'
        );
    }
    matches!(c as u32,
        0xA1 | 0xA7 | 0xAB | 0xB6 | 0xB7 | 0xBB | 0xBF
        | 0x2010..=0x2027
        | 0x2030..=0x2043
        | 0x2045..=0x2051
        | 0x2053..=0x205E
        | 0x3001..=0x3003
        | 0x3008..=0x3011
        | 0x3014..=0x301F
        | 0xFF01..=0xFF03
        | 0xFF05..=0xFF0A
        | 0xFF0C..=0xFF0F
        | 0xFF1A | 0xFF1B | 0xFF1F | 0xFF20
        | 0xFF3B..=0xFF3D
        | 0xFF3F | 0xFF5B | 0xFF5D)
}

/// Decodes the rune at the start of `b` as Go's `range` over a string does:
/// an invalid byte is U+FFFD of width 1.
fn next_rune(b: &[u8]) -> (char, usize) {
    let (c, w) = crate::logql::log::convert::decode_rune(b);
    (c.unwrap_or('\u{fffd}'), w.max(1))
}

/// Loki's punctuation tokenizer: splits on spaces (dropped, remembered for
/// the join), `=` and punctuation (kept as one-byte tokens); letters,
/// numbers and `_ - . : /` stay inside tokens. `None` past `max_len`.
pub fn tokenize_punctuation(line: &[u8], max_len: usize, out: &mut TokenBuf) -> bool {
    out.clear();
    if line.len() > max_len {
        return false;
    }
    let mut start = 0usize;
    let mut i = 0usize;
    while i < line.len() {
        let (c, w) = next_rune(&line[i..]);
        if out.len() >= MAX_SPLIT_TOKENS {
            break;
        }
        let kept = c.is_alphabetic() || c.is_numeric() || matches!(c, '_' | '-' | '.' | ':' | '/');
        if !kept && (c == ' ' || c == '=' || is_go_punct(c)) {
            if i > start {
                out.push(&line[start..i]);
            }
            if c == ' ' {
                out.spaces_after.push(out.len() as isize - 1);
            } else {
                // Go slices one byte, even of a multi-byte rune.
                out.push(&line[i..i + 1]);
            }
            start = i + 1;
        }
        i += w;
    }
    if start < line.len() {
        out.push(&line[start..]);
    }
    true
}

/// Joins punctuation tokens, writing one space per recorded position.
pub fn join_punctuation<'a>(
    tokens: impl Iterator<Item = &'a [u8]>,
    spaces_after: &[isize],
    out: &mut Vec<u8>,
) {
    let mut si = 0usize;
    for (i, t) in tokens.enumerate() {
        out.extend_from_slice(t);
        while si < spaces_after.len() && i as isize == spaces_after[si] {
            out.push(b' ');
            si += 1;
        }
    }
}

/// Keys whose values are always variable (`ts`, `t`, `traceID`, `time`,
/// `timestamp`; all but `t` case-insensitive).
fn is_variable_key(key: &[u8]) -> bool {
    key == b"t"
        || key.eq_ignore_ascii_case(b"ts")
        || key.eq_ignore_ascii_case(b"traceID")
        || key.eq_ignore_ascii_case(b"time")
        || key.eq_ignore_ascii_case(b"timestamp")
}

/// Loki's logfmt tokenizer: `key, value, key, value, …`, the value of a
/// variable key replaced by `<_>`. `false` on a syntax error or past
/// `max_len`.
pub fn tokenize_logfmt(line: &[u8], max_len: usize, out: &mut TokenBuf) -> bool {
    out.clear();
    if line.len() > max_len {
        return false;
    }
    logfmt::for_each_pair_checked(line, |k, v| {
        out.push(k);
        if is_variable_key(k) {
            out.push(PLACEHOLDER);
        } else {
            out.push(v);
        }
    })
}

fn logfmt_invalid(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        let (c, w) = next_rune(&b[i..]);
        if c <= ' ' || c == '=' || c == '"' || c == '\u{fffd}' {
            return true;
        }
        i += w;
    }
    false
}

/// go-logfmt's quoted value: JSON-like escapes, control bytes as `\u00XX`,
/// invalid UTF-8 as `\ufffd`.
fn logfmt_quote(v: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        if b < 0x80 {
            match b {
                b'\\' | b'"' => {
                    out.push(b'\\');
                    out.push(b);
                }
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                _ => out.push(b),
            }
            i += 1;
            continue;
        }
        let (c, w) = crate::logql::log::convert::decode_rune(&v[i..]);
        match c {
            Some(c) if c != '\u{fffd}' || w == 3 => out.extend_from_slice(&v[i..i + w]),
            _ => out.extend_from_slice(b"\\ufffd"),
        }
        i += w.max(1);
    }
    out.push(b'"');
}

/// Joins logfmt tokens as go-logfmt encodes pairs; an invalid key makes the
/// whole pattern empty (Loki skips empty patterns).
pub fn join_logfmt<'a>(tokens: impl Iterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    let start = out.len();
    let mut key: Option<&[u8]> = None;
    let mut first = true;
    let mut write_pair = |k: &[u8], v: &[u8], out: &mut Vec<u8>| -> bool {
        if k.is_empty() || logfmt_invalid(k) {
            return false;
        }
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(k);
        out.push(b'=');
        if logfmt_invalid(v) {
            logfmt_quote(v, out);
        } else {
            out.extend_from_slice(v);
        }
        true
    };
    for t in tokens {
        match key.take() {
            None => key = Some(t),
            Some(k) => {
                if !write_pair(k, t, out) {
                    out.truncate(start);
                    return;
                }
            }
        }
    }
    if let Some(k) = key
        && !write_pair(k, b"", out)
    {
        out.truncate(start);
    }
}

/// Loki's JSON tokenizer: the raw text of the first present string field
/// of `fields` (top level), punctuation-tokenized. `false` when none.
pub fn tokenize_json(line: &[u8], fields: &[String], max_len: usize, out: &mut TokenBuf) -> bool {
    out.clear();
    // (rank, start, end): values are sub-slices of `line`.
    let mut best: Option<(usize, usize, usize)> = None;
    let mut key_buf = Vec::new();
    let base = line.as_ptr() as usize;
    let _ = jsonscan::object_each::<jsonscan::JsonError>(line, &mut key_buf, |key, value| {
        if value.kind == ValueType::String
            && let Some(rank) = fields.iter().position(|f| f.as_bytes() == key)
            && best.is_none_or(|(r, _, _)| rank < r)
        {
            let start = (value.bytes.as_ptr() as usize).saturating_sub(base);
            best = Some((rank, start, start + value.bytes.len()));
        }
        Ok(())
    });
    match best.and_then(|(_, s, e)| line.get(s..e)) {
        Some(msg) if msg.len() <= max_len => tokenize_punctuation(msg, max_len, out),
        _ => false,
    }
}

/// Loki's `deduplicatePlaceholders`: runs of `<_><_>…` become one `<_>`.
pub fn dedup_placeholders(line: Vec<u8>) -> Vec<u8> {
    let Some(first) = memchr::memmem::find(&line, b"<_><_>") else {
        return line;
    };
    let p = PLACEHOLDER;
    let mut out = Vec::with_capacity(line.len());
    let mut low = 0usize;
    let mut i = first;
    while i + 5 < line.len() {
        if &line[i..i + 3] == p {
            let mut high = i + 3;
            while high + 2 < line.len() {
                if &line[high..high + 3] != p {
                    break;
                }
                high += 3;
            }
            out.extend_from_slice(&line[low..i + 3]);
            low = high;
            i = high;
        }
        i += 1;
    }
    out.extend_from_slice(&line[low..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(b: &TokenBuf) -> Vec<String> {
        b.iter()
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .collect()
    }

    #[test]
    fn punctuation_splits_like_loki() {
        let mut b = TokenBuf::default();
        assert!(tokenize_punctuation(
            b"GET /api/v1/users?id=42 took 3.5ms",
            3000,
            &mut b
        ));
        assert_eq!(
            toks(&b),
            [
                "GET",
                "/api/v1/users",
                "?",
                "id",
                "=",
                "42",
                "took",
                "3.5ms"
            ]
        );
        let mut out = Vec::new();
        join_punctuation(b.iter(), &b.spaces_after, &mut out);
        assert_eq!(out, b"GET /api/v1/users?id=42 took 3.5ms");
    }

    #[test]
    fn symbols_are_not_punctuation_in_go() {
        let mut b = TokenBuf::default();
        tokenize_punctuation(b"a+b<c>d|e$f,g", 3000, &mut b);
        assert_eq!(toks(&b), ["a+b<c>d|e$f", ",", "g"]);
    }

    #[test]
    fn long_lines_are_refused() {
        let mut b = TokenBuf::default();
        assert!(!tokenize_punctuation(&[b'a'; 3001], 3000, &mut b));
        assert!(tokenize_punctuation(&[b'a'; 3000], 3000, &mut b));
    }

    #[test]
    fn token_count_is_capped() {
        let line = "a ".repeat(200);
        let mut b = TokenBuf::default();
        tokenize_punctuation(line.as_bytes(), 3000, &mut b);
        assert_eq!(b.len(), 128, "127 tokens then the rest as one");
    }

    #[test]
    fn multibyte_punctuation_round_trips() {
        let line = "x…y z".as_bytes();
        let mut b = TokenBuf::default();
        tokenize_punctuation(line, 3000, &mut b);
        let mut out = Vec::new();
        join_punctuation(b.iter(), &b.spaces_after, &mut out);
        assert_eq!(out, line);
    }

    #[test]
    fn logfmt_masks_time_keys() {
        let mut b = TokenBuf::default();
        assert!(tokenize_logfmt(
            b"ts=2024-01-01T00:00:00Z level=info msg=\"hello world\"",
            3000,
            &mut b
        ));
        assert_eq!(
            toks(&b),
            ["ts", "<_>", "level", "info", "msg", "hello world"]
        );
        let mut out = Vec::new();
        join_logfmt(b.iter(), &mut out);
        assert_eq!(out, b"ts=<_> level=info msg=\"hello world\"");
        assert!(!tokenize_logfmt(b"a=\"unterminated", 3000, &mut b));
    }

    #[test]
    fn json_uses_the_message_field() {
        let mut b = TokenBuf::default();
        let fields: Vec<String> = DEFAULT_JSON_FIELDS.iter().map(|s| s.to_string()).collect();
        assert!(tokenize_json(
            br#"{"level":"info","msg":"user 42 logged in","message":"first"}"#,
            &fields,
            3000,
            &mut b
        ));
        assert_eq!(toks(&b), ["first"], "message ranks before msg");
        assert!(!tokenize_json(
            br#"{"level":"info"}"#,
            &fields,
            3000,
            &mut b
        ));
    }

    #[test]
    fn formats() {
        assert_eq!(detect_format(br#"{"a":1}"#), LogFormat::Json);
        assert_eq!(detect_format(b"a=1 b=2 c=3"), LogFormat::Logfmt);
        assert_eq!(
            detect_format(br#"level=info msg="hello world" took=3ms"#),
            LogFormat::Logfmt
        );
        assert_eq!(detect_format(b"GET /x returned 200"), LogFormat::Unknown);
        assert_eq!(detect_format(b"a=1  b=2"), LogFormat::Unknown);
        assert_eq!(
            detect_format(b"this is a plain line with many words in it"),
            LogFormat::Unknown
        );
        assert_eq!(detect_format(b"{"), LogFormat::Unknown);
    }

    proptest::proptest! {
        /// Joining the punctuation tokens gives the line back (unless it
        /// starts with a space, which Go records at position -1 and then
        /// never writes — kept as Loki does).
        #[test]
        fn punctuation_round_trips(line in "[a-zA-Z0-9 =,.:/_\\-\"{}()\\[\\]…é]{0,400}") {
            proptest::prop_assume!(!line.starts_with(' '));
            let mut b = TokenBuf::default();
            proptest::prop_assert!(tokenize_punctuation(line.as_bytes(), 3000, &mut b));
            let mut out = Vec::new();
            join_punctuation(b.iter(), &b.spaces_after, &mut out);
            proptest::prop_assert_eq!(String::from_utf8_lossy(&out), line);
        }

        /// Logfmt tokens re-encode to a line that tokenizes the same.
        #[test]
        fn logfmt_join_is_stable(pairs in proptest::collection::vec(("[a-z]{1,8}", "[a-zA-Z0-9 =\"]{0,12}"), 1..8)) {
            let mut b = TokenBuf::default();
            let mut line = Vec::new();
            let toks: Vec<Vec<u8>> = pairs.iter().flat_map(|(k, v)| [k.clone().into_bytes(), v.clone().into_bytes()]).collect();
            join_logfmt(toks.iter().map(Vec::as_slice), &mut line);
            proptest::prop_assert!(tokenize_logfmt(&line, 3000, &mut b));
            let got: Vec<Vec<u8>> = b.iter().map(<[u8]>::to_vec).collect();
            let masked: Vec<Vec<u8>> = toks
                .chunks(2)
                .flat_map(|kv| {
                    let v = if is_variable_key(&kv[0]) { PLACEHOLDER.to_vec() } else { kv[1].clone() };
                    [kv[0].clone(), v]
                })
                .collect();
            proptest::prop_assert_eq!(got, masked);
        }
    }

    #[test]
    fn placeholders_collapse() {
        assert_eq!(dedup_placeholders(b"a <_><_><_> b".to_vec()), b"a <_> b");
        assert_eq!(dedup_placeholders(b"<_><_>".to_vec()), b"<_>");
        assert_eq!(dedup_placeholders(b"a <_> b".to_vec()), b"a <_> b");
    }
}
