//! The LogQL lexer: Loki's `lex.go` over Go's `text/scanner` rules.
//!
//! Owns tokenisation and every lexical error message; knows nothing of the
//! grammar. The parser pulls one token at a time (one token of lookahead, as
//! Loki's yacc parser), so lexical errors surface in the same order as in
//! Loki.
//!
//! Rules reproduced from Loki (see the unit tests for each):
//! - Go scanner tokens: identifiers (Unicode letters, `_`, digits after the
//!   first), Go int/float literals with their error messages, `"..."` strings
//!   with Go escapes, `` `...` `` raw strings, `'x'` char literals (which are
//!   *not* strings: they lex as IDENTIFIER), `//` and `/* */` comments
//!   skipped, whitespace = space, tab, CR, LF.
//! - `#` comments run to the end of the line.
//! - After a number: a duration is tried first (`5m`, `1h30m`, `1.5h`, `-5m`),
//!   then a byte size (`5MB`, `1KiB`), then a plain NUMBER.
//! - `[...]` is one RANGE token parsed with Prometheus' duration syntax.
//! - `--strict` and `--keep-empty` are FUNCTION_FLAG tokens.
//! - Function names (`rate`, `sum`, `bytes`, `ip`, ...) are tokens only when
//!   followed by `(`, or by `by`/`without` and then `(`; otherwise they are
//!   identifiers. Keywords are case-insensitive.
//! - Two-character operators (`|=`, `!=`, `=~`, `==`, `>=`, ...) use one
//!   character of lookahead.
//!
//! Positions follow Loki's error reports: line and column (in characters) of
//! the token start, with the line reported as 0 for tokens during which
//! Loki's scanner called `Next()` (ranges, two-character operators,
//! durations, byte sizes, flags).

use std::borrow::Cow;

use nom::bytes::complete::{tag, take_till, take_until, take_while};
use nom::sequence::preceded;
use nom::{IResult, Parser};

use super::ast::Span;
use super::error::ParseError;
use super::golang;

/// Token kinds, declared in the order of Loki's yacc `%token` declarations so
/// that `expecting A or B` lists come out in Loki's order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tok {
    Eof,
    Bytes,
    Identifier,
    Str,
    Number,
    FunctionFlag,
    Duration,
    Range,
    Eq,
    Re,
    Nre,
    Npa,
    OpenBrace,
    CloseBrace,
    OpenBracket,
    CloseBracket,
    Comma,
    Dot,
    PipeMatch,
    PipeExact,
    PipePattern,
    OpenParen,
    CloseParen,
    By,
    Without,
    CountOverTime,
    Rate,
    RateCounter,
    Sum,
    Sort,
    SortDesc,
    Avg,
    Max,
    Min,
    Count,
    Stddev,
    Stdvar,
    Bottomk,
    Topk,
    ApproxTopk,
    BytesOverTime,
    BytesRate,
    Bool,
    Json,
    Regexp,
    Logfmt,
    Pipe,
    LineFmt,
    LabelFmt,
    Unwrap,
    AvgOverTime,
    SumOverTime,
    MinOverTime,
    MaxOverTime,
    StdvarOverTime,
    StddevOverTime,
    QuantileOverTime,
    BytesConv,
    DurationConv,
    DurationSecondsConv,
    FirstOverTime,
    LastOverTime,
    AbsentOverTime,
    Vector,
    LabelReplace,
    Unpack,
    Offset,
    Pattern,
    Ip,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Decolorize,
    Drop,
    Keep,
    Or,
    And,
    Unless,
    CmpEq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    /// A character Loki's lexer passes on as an IDENTIFIER although it is
    /// not one (`@`, `!`, a `'x'` char literal). Named IDENTIFIER in
    /// messages; never accepted as a name (see the parser).
    Stray,
}

/// Loki's `tokens` map: keywords and punctuation (case-insensitive). Their
/// text is also the token's name in error messages.
const KEYWORDS: &[(&str, Tok)] = &[
    (",", Tok::Comma),
    (".", Tok::Dot),
    ("{", Tok::OpenBrace),
    ("}", Tok::CloseBrace),
    ("=", Tok::Eq),
    ("!=", Tok::Neq),
    ("=~", Tok::Re),
    ("!~", Tok::Nre),
    ("!>", Tok::Npa),
    ("|=", Tok::PipeExact),
    ("|~", Tok::PipeMatch),
    ("|>", Tok::PipePattern),
    ("|", Tok::Pipe),
    ("unwrap", Tok::Unwrap),
    ("(", Tok::OpenParen),
    (")", Tok::CloseParen),
    ("by", Tok::By),
    ("without", Tok::Without),
    ("bool", Tok::Bool),
    ("[", Tok::OpenBracket),
    ("]", Tok::CloseBracket),
    ("label_replace", Tok::LabelReplace),
    ("offset", Tok::Offset),
    ("on", Tok::On),
    ("ignoring", Tok::Ignoring),
    ("group_left", Tok::GroupLeft),
    ("group_right", Tok::GroupRight),
    ("or", Tok::Or),
    ("and", Tok::And),
    ("unless", Tok::Unless),
    ("+", Tok::Add),
    ("-", Tok::Sub),
    ("*", Tok::Mul),
    ("/", Tok::Div),
    ("%", Tok::Mod),
    ("^", Tok::Pow),
    ("==", Tok::CmpEq),
    (">", Tok::Gt),
    (">=", Tok::Gte),
    ("<", Tok::Lt),
    ("<=", Tok::Lte),
    ("json", Tok::Json),
    ("regexp", Tok::Regexp),
    ("logfmt", Tok::Logfmt),
    ("unpack", Tok::Unpack),
    ("pattern", Tok::Pattern),
    ("label_format", Tok::LabelFmt),
    ("line_format", Tok::LineFmt),
    ("ip", Tok::Ip),
    ("decolorize", Tok::Decolorize),
    ("drop", Tok::Drop),
    ("keep", Tok::Keep),
];

/// Loki's `functionTokens`: tokens only when followed by `(` (or by
/// `by`/`without` and `(`).
const FUNCTIONS: &[(&str, Tok)] = &[
    ("rate", Tok::Rate),
    ("rate_counter", Tok::RateCounter),
    ("count_over_time", Tok::CountOverTime),
    ("bytes_rate", Tok::BytesRate),
    ("bytes_over_time", Tok::BytesOverTime),
    ("avg_over_time", Tok::AvgOverTime),
    ("sum_over_time", Tok::SumOverTime),
    ("min_over_time", Tok::MinOverTime),
    ("max_over_time", Tok::MaxOverTime),
    ("stdvar_over_time", Tok::StdvarOverTime),
    ("stddev_over_time", Tok::StddevOverTime),
    ("quantile_over_time", Tok::QuantileOverTime),
    ("first_over_time", Tok::FirstOverTime),
    ("last_over_time", Tok::LastOverTime),
    ("absent_over_time", Tok::AbsentOverTime),
    ("vector", Tok::Vector),
    ("sum", Tok::Sum),
    ("avg", Tok::Avg),
    ("max", Tok::Max),
    ("min", Tok::Min),
    ("count", Tok::Count),
    ("stddev", Tok::Stddev),
    ("stdvar", Tok::Stdvar),
    ("bottomk", Tok::Bottomk),
    ("topk", Tok::Topk),
    ("sort", Tok::Sort),
    ("sort_desc", Tok::SortDesc),
    ("label_replace", Tok::LabelReplace),
    ("approx_topk", Tok::ApproxTopk),
    ("bytes", Tok::BytesConv),
    ("duration", Tok::DurationConv),
    ("duration_seconds", Tok::DurationSecondsConv),
    ("ip", Tok::Ip),
];

const FLAGS: &[&str] = &["--strict", "--keep-empty"];

impl Tok {
    /// The token's name in `syntax error: unexpected X` messages: the
    /// keyword text when Loki's `tokens` map has one, else the yacc name.
    pub fn name(self) -> &'static str {
        if self == Tok::Eof {
            return "$end";
        }
        if let Some((text, _)) = KEYWORDS.iter().find(|(_, t)| *t == self) {
            return text;
        }
        match self {
            Tok::Bytes => "BYTES",
            Tok::Identifier | Tok::Stray => "IDENTIFIER",
            Tok::Str => "STRING",
            Tok::Number => "NUMBER",
            Tok::FunctionFlag => "FUNCTION_FLAG",
            Tok::Duration => "DURATION",
            Tok::Range => "RANGE",
            Tok::CountOverTime => "COUNT_OVER_TIME",
            Tok::Rate => "RATE",
            Tok::RateCounter => "RATE_COUNTER",
            Tok::Sum => "SUM",
            Tok::Sort => "SORT",
            Tok::SortDesc => "SORT_DESC",
            Tok::Avg => "AVG",
            Tok::Max => "MAX",
            Tok::Min => "MIN",
            Tok::Count => "COUNT",
            Tok::Stddev => "STDDEV",
            Tok::Stdvar => "STDVAR",
            Tok::Bottomk => "BOTTOMK",
            Tok::Topk => "TOPK",
            Tok::ApproxTopk => "APPROX_TOPK",
            Tok::BytesOverTime => "BYTES_OVER_TIME",
            Tok::BytesRate => "BYTES_RATE",
            Tok::AvgOverTime => "AVG_OVER_TIME",
            Tok::SumOverTime => "SUM_OVER_TIME",
            Tok::MinOverTime => "MIN_OVER_TIME",
            Tok::MaxOverTime => "MAX_OVER_TIME",
            Tok::StdvarOverTime => "STDVAR_OVER_TIME",
            Tok::StddevOverTime => "STDDEV_OVER_TIME",
            Tok::QuantileOverTime => "QUANTILE_OVER_TIME",
            Tok::BytesConv => "BYTES_CONV",
            Tok::DurationConv => "DURATION_CONV",
            Tok::DurationSecondsConv => "DURATION_SECONDS_CONV",
            Tok::FirstOverTime => "FIRST_OVER_TIME",
            Tok::LastOverTime => "LAST_OVER_TIME",
            Tok::AbsentOverTime => "ABSENT_OVER_TIME",
            Tok::Vector => "VECTOR",
            _ => "?",
        }
    }
}

/// The value a token carries beyond its kind.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenValue<'a> {
    None,
    /// The unquoted content of a STRING.
    Str(Cow<'a, str>),
    /// A DURATION or RANGE, in nanoseconds.
    Duration(i64),
    /// A BYTES size.
    Bytes(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token<'a> {
    pub tok: Tok,
    /// Byte offsets of the token text.
    pub start: usize,
    pub end: usize,
    /// The source text (IDENTIFIER and NUMBER text, FLAG name, ...).
    pub text: &'a str,
    pub value: TokenValue<'a>,
    /// False when Loki reports this token at line 0 (see module docs).
    pub line_valid: bool,
}

impl Token<'_> {
    pub fn span(&self) -> Span {
        Span::new(self.start, self.end)
    }
}

/// What Go's `Scanner.Scan` returns, before Loki's `Lex` interprets it.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Raw {
    Eof,
    Ident,
    Int,
    Float,
    Str,
    Backquoted,
    Char,
    Other(char),
}

pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

type NomResult<'a> = IResult<&'a str, &'a str>;

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        // Go's scanner skips a leading byte-order mark (it still counts as a
        // column, which `line_col` reproduces).
        let pos = if src.starts_with('\u{feff}') { 3 } else { 0 };
        Lexer { src, pos }
    }

    pub fn src(&self) -> &'a str {
        self.src
    }

    /// Loki's (line, column) of a byte offset: 1-based, columns in chars.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        line_col(self.src, offset)
    }

    fn error_at(
        &self,
        start: usize,
        end: usize,
        line_valid: bool,
        msg: impl Into<String>,
    ) -> ParseError {
        let (line, col) = self.line_col(start);
        ParseError::at(
            if line_valid { line } else { 0 },
            col,
            Span::new(start, end),
            msg,
        )
    }

    fn char_at(&self, pos: usize) -> Option<char> {
        self.src.get(pos..).and_then(|s| s.chars().next())
    }

    /// The next token.
    pub fn next_token(&mut self) -> Result<Token<'a>, ParseError> {
        loop {
            let (raw, start) = self.scan()?;
            let text = &self.src[start..self.pos];
            let token = |tok, value, line_valid, end: usize| Token {
                tok,
                start,
                end,
                text: &self.src[start..end],
                value,
                line_valid,
            };
            match raw {
                Raw::Other('#') => {
                    let rest = &self.src[self.pos..];
                    self.pos += rest.find('\n').unwrap_or(rest.len());
                    continue;
                }
                Raw::Eof => return Ok(token(Tok::Eof, TokenValue::None, true, start)),
                Raw::Int | Raw::Float => {
                    if let Some((d, end)) =
                        self.try_suffix(start, is_duration_rune, golang::parse_loki_duration)
                    {
                        self.pos = end;
                        return Ok(token(Tok::Duration, TokenValue::Duration(d), false, end));
                    }
                    if let Some((b, end)) =
                        self.try_suffix(start, is_bytes_rune, golang::parse_bytes)
                    {
                        self.pos = end;
                        return Ok(token(Tok::Bytes, TokenValue::Bytes(b), false, end));
                    }
                    return Ok(token(Tok::Number, TokenValue::None, true, self.pos));
                }
                Raw::Other('-') => {
                    if self.char_at(self.pos) == Some('-') {
                        let flag: NomResult<'a> =
                            take_while(|c: char| c.is_alphabetic() || c == '-')
                                .parse(&self.src[self.pos..]);
                        if let Ok((_, rest)) = flag {
                            let end = self.pos + rest.len();
                            if FLAGS.contains(&&self.src[start..end]) {
                                self.pos = end;
                                return Ok(token(Tok::FunctionFlag, TokenValue::None, false, end));
                            }
                        }
                    }
                    if let Some((d, end)) =
                        self.try_suffix(start, is_duration_rune, golang::parse_loki_duration)
                    {
                        self.pos = end;
                        return Ok(token(Tok::Duration, TokenValue::Duration(d), false, end));
                    }
                }
                Raw::Str => {
                    let value = unquote_double(&text[1..text.len() - 1])
                        .map_err(|msg| self.error_at(start, self.pos, true, msg))?;
                    return Ok(token(Tok::Str, TokenValue::Str(value), true, self.pos));
                }
                Raw::Backquoted => {
                    let value = Cow::Borrowed(&text[1..text.len() - 1]);
                    return Ok(token(Tok::Str, TokenValue::Str(value), true, self.pos));
                }
                Raw::Other('[') => {
                    let rest = &self.src[self.pos..];
                    let Some(close) = rest.find(']') else {
                        let end = self.src.len();
                        return Err(self.error_at(
                            start,
                            end,
                            false,
                            "missing closing ']' in duration",
                        ));
                    };
                    let end = self.pos + close + 1;
                    let d = golang::parse_prom_duration(&rest[..close])
                        .map_err(|msg| self.error_at(start, end, false, msg))?;
                    self.pos = end;
                    return Ok(token(Tok::Range, TokenValue::Duration(d), false, end));
                }
                _ => {}
            }
            // Function names, keywords, punctuation and identifiers.
            if let Some(tok) = lookup(FUNCTIONS, text) {
                let tok = if self.is_function(self.pos) {
                    tok
                } else {
                    Tok::Identifier
                };
                return Ok(token(tok, TokenValue::None, true, self.pos));
            }
            if let Some(next) = self.char_at(self.pos) {
                let end = self.pos + next.len_utf8();
                if let Some(tok) = lookup(KEYWORDS, &self.src[start..end]) {
                    self.pos = end;
                    return Ok(token(tok, TokenValue::None, false, end));
                }
            }
            let fallback = if raw == Raw::Ident {
                Tok::Identifier
            } else {
                Tok::Stray
            };
            let tok = lookup(KEYWORDS, text).unwrap_or(fallback);
            return Ok(token(tok, TokenValue::None, true, self.pos));
        }
    }

    /// Go's `Scanner.Scan`: skips whitespace and comments, then reads one raw
    /// token, leaving `self.pos` after it. Returns the kind and start offset.
    fn scan(&mut self) -> Result<(Raw, usize), ParseError> {
        loop {
            let rest = &self.src[self.pos..];
            let ws: NomResult<'a> =
                take_while(|c| matches!(c, ' ' | '\t' | '\n' | '\r')).parse(rest);
            if let Ok((after, _)) = ws {
                self.pos = self.src.len() - after.len();
            }
            let rest = &self.src[self.pos..];
            let line_comment: NomResult<'a> =
                preceded(tag("//"), take_till(|c| c == '\n')).parse(rest);
            if let Ok((after, _)) = line_comment {
                self.pos = self.src.len() - after.len();
                continue;
            }
            if rest.starts_with("/*") {
                let block: NomResult<'a> = preceded(tag("/*"), take_until("*/")).parse(rest);
                match block {
                    Ok((after, _)) => {
                        self.pos = self.src.len() - after.len() + 2;
                        continue;
                    }
                    Err(_) => {
                        let start = self.pos;
                        return Err(self.error_at(
                            start,
                            self.src.len(),
                            true,
                            "comment not terminated",
                        ));
                    }
                }
            }
            break;
        }
        let start = self.pos;
        let Some(c) = self.char_at(start) else {
            return Ok((Raw::Eof, start));
        };
        if c == '\0' {
            return Err(self.error_at(start, start + 1, true, "invalid character NUL"));
        }
        if c == '_' || is_letter(c) {
            let ident: NomResult<'a> =
                take_while(|c: char| c == '_' || is_letter(c) || is_digit(c))
                    .parse(&self.src[start..]);
            let len = ident.map_or(c.len_utf8(), |(_, id)| id.len());
            self.pos = start + len;
            return Ok((Raw::Ident, start));
        }
        if c.is_ascii_digit()
            || (c == '.' && self.char_at(start + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let (end, is_float, err) = scan_number(self.src, start);
            if let Some(msg) = err {
                return Err(self.error_at(start, end, true, msg));
            }
            self.pos = end;
            return Ok((if is_float { Raw::Float } else { Raw::Int }, start));
        }
        match c {
            '"' | '\'' => {
                let (end, count, err) = scan_quoted(self.src, start, c);
                let err = err.or_else(|| {
                    (c == '\'' && count != 1).then(|| "invalid char literal".to_string())
                });
                if let Some(msg) = err {
                    return Err(self.error_at(start, end, true, msg));
                }
                if self.src[start..end].contains('\0') {
                    return Err(self.error_at(start, end, true, "invalid character NUL"));
                }
                self.pos = end;
                Ok((if c == '"' { Raw::Str } else { Raw::Char }, start))
            }
            '`' => {
                let raw: NomResult<'a> = take_till(|c| c == '`').parse(&self.src[start + 1..]);
                let body = raw.map_or("", |(_, b)| b);
                let close = start + 1 + body.len();
                if close >= self.src.len() {
                    return Err(self.error_at(start, close, true, "literal not terminated"));
                }
                if body.contains('\0') {
                    return Err(self.error_at(start, close + 1, true, "invalid character NUL"));
                }
                self.pos = close + 1;
                Ok((Raw::Backquoted, start))
            }
            _ => {
                self.pos = start + c.len_utf8();
                Ok((Raw::Other(c), start))
            }
        }
    }

    /// Loki's `tryScanDuration`/`tryScanBytes`: extends the token starting at
    /// `start` (ending at `self.pos`) with the following non-space runs of
    /// digits, `.` and unit runes, and keeps the extension when `parse`
    /// accepts the whole text.
    fn try_suffix<T>(
        &self,
        start: usize,
        is_unit_rune: fn(char) -> bool,
        parse: fn(&str) -> Option<T>,
    ) -> Option<(T, usize)> {
        let rest = &self.src[self.pos..];
        let suffix: NomResult<'a> =
            take_while(|c: char| c.is_numeric() || is_unit_rune(c) || c == '.').parse(rest);
        let len = suffix.map_or(0, |(_, s)| s.len());
        if len == 0 {
            return None;
        }
        let end = self.pos + len;
        parse(&self.src[start..end]).map(|v| (v, end))
    }

    /// Loki's `isFunction`: after optional spaces, `(`; or `by`/`without`,
    /// optional spaces and `(`.
    fn is_function(&self, pos: usize) -> bool {
        let rest = self.src[pos..].trim_start_matches(golang::is_go_space);
        if rest.starts_with('(') {
            return true;
        }
        ["by", "without"].iter().any(|kw| {
            rest.get(..kw.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(kw))
                && rest[kw.len()..]
                    .trim_start_matches(golang::is_go_space)
                    .starts_with('(')
        })
    }
}

/// Case-insensitive lookup, with Go's Unicode lower-casing for non-ASCII text.
fn lookup(table: &[(&str, Tok)], text: &str) -> Option<Tok> {
    if text.is_ascii() {
        table
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(text))
            .map(|(_, t)| *t)
    } else {
        let lower = text.to_lowercase();
        table.iter().find(|(k, _)| *k == lower).map(|(_, t)| *t)
    }
}

/// Loki's (line, column) of a byte offset: 1-based, columns in chars.
pub fn line_col(src: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// Go's `unicode.IsLetter` (approximated: alphabetic and not a number).
fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        c.is_alphabetic() && !c.is_numeric()
    }
}

/// Go's `unicode.IsDigit`.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

/// Loki's `isDurationRune`: `ns us µs ms s m h d w y`.
fn is_duration_rune(c: char) -> bool {
    matches!(c, 'n' | 'u' | '\u{b5}' | 'm' | 's' | 'h' | 'd' | 'w' | 'y')
}

/// Loki's `isBytesSizeRune`: `B kB KB MB GB TB PB KiB ...`.
fn is_bytes_rune(c: char) -> bool {
    matches!(c, 'B' | 'i' | 'k' | 'K' | 'M' | 'G' | 'T' | 'P')
}

/// Go's `Scanner.scanNumber`, starting at a digit or at a `.` followed by a
/// digit. Returns the end offset, whether it is a float, and the first
/// scanner error (reported at the token start).
fn scan_number(src: &str, start: usize) -> (usize, bool, Option<String>) {
    let b = src.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let mut err: Option<String> = None;
    let mut fail = |msg: String| {
        if err.is_none() {
            err = Some(msg);
        }
    };
    let mut i = start;
    let mut base = 10u8;
    let mut prefix = 0u8;
    let mut digsep = 0u8;
    let mut invalid: Option<u8> = None;
    let mut is_float = false;
    let mut seen_dot = at(i) == Some(b'.');
    if seen_dot {
        i += 1;
    } else {
        if at(i) == Some(b'0') {
            i += 1;
            match at(i).map(|c| c.to_ascii_lowercase()) {
                Some(b'x') => (i, base, prefix) = (i + 1, 16, b'x'),
                Some(b'o') => (i, base, prefix) = (i + 1, 8, b'o'),
                // Loki's copy of the scanner checks a stale lookahead here,
                // so `0b` always starts a binary literal.
                Some(b'b') => (i, base, prefix) = (i + 1, 2, b'b'),
                _ => (base, prefix, digsep) = (8, b'0', 1),
            }
        }
        let (ni, ds) = scan_digits(b, i, base, &mut invalid);
        i = ni;
        digsep |= ds;
        if at(i) == Some(b'.') {
            i += 1;
            seen_dot = true;
        }
    }
    if seen_dot {
        is_float = true;
        if prefix == b'o' || prefix == b'b' {
            fail(format!("invalid radix point in {}", lit_name(prefix)));
        }
        let (ni, ds) = scan_digits(b, i, base, &mut invalid);
        i = ni;
        digsep |= ds;
    }
    if digsep & 1 == 0 {
        fail(format!("{} has no digits", lit_name(prefix)));
    }
    match at(i) {
        Some(e) if matches!(e.to_ascii_lowercase(), b'e' | b'p') => {
            let lower = e.to_ascii_lowercase();
            if lower == b'e' && prefix != 0 && prefix != b'0' {
                fail(format!(
                    "'{}' exponent requires decimal mantissa",
                    e as char
                ));
            }
            if lower == b'p' && prefix != b'x' {
                fail(format!(
                    "'{}' exponent requires hexadecimal mantissa",
                    e as char
                ));
            }
            i += 1;
            is_float = true;
            if matches!(at(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let (ni, ds) = scan_digits(b, i, 10, &mut None);
            i = ni;
            digsep |= ds;
            if ds & 1 == 0 {
                fail("exponent has no digits".to_string());
            }
        }
        _ if prefix == b'x' && is_float => {
            fail("hexadecimal mantissa requires a 'p' exponent".to_string());
        }
        _ => {}
    }
    if !is_float && let Some(d) = invalid {
        fail(format!(
            "invalid digit '{}' in {}",
            d as char,
            lit_name(prefix)
        ));
    }
    if digsep & 2 != 0 && invalid_separator(&src[start..i]) {
        fail("'_' must separate successive digits".to_string());
    }
    (i, is_float, err)
}

/// Go's `Scanner.digits`: digits and `_`; records the first digit that is
/// too big for `base` (bases up to 10).
fn scan_digits(b: &[u8], mut i: usize, base: u8, invalid: &mut Option<u8>) -> (usize, u8) {
    let mut digsep = 0;
    while let Some(&c) = b.get(i) {
        let ok = if base <= 10 {
            c.is_ascii_digit()
        } else {
            c.is_ascii_hexdigit()
        };
        if c == b'_' {
            digsep |= 2;
        } else if ok {
            if base <= 10 && c >= b'0' + base && invalid.is_none() {
                *invalid = Some(c);
            }
            digsep |= 1;
        } else {
            break;
        }
        i += 1;
    }
    (i, digsep)
}

fn lit_name(prefix: u8) -> &'static str {
    match prefix {
        b'x' => "hexadecimal literal",
        b'o' | b'0' => "octal literal",
        b'b' => "binary literal",
        _ => "decimal literal",
    }
}

/// Go's `invalidSep`: whether an `_` does not separate two digits.
fn invalid_separator(x: &str) -> bool {
    let b = x.as_bytes();
    let mut x1 = b' ';
    let mut d = b'.';
    let mut i = 0;
    if b.len() >= 2 && b[0] == b'0' {
        x1 = b[1].to_ascii_lowercase();
        if matches!(x1, b'x' | b'o' | b'b') {
            d = b'0';
            i = 2;
        }
    }
    while i < b.len() {
        let p = d;
        d = b[i];
        if d == b'_' {
            if p != b'0' {
                return true;
            }
        } else if d.is_ascii_digit() || (x1 == b'x' && d.is_ascii_hexdigit()) {
            d = b'0';
        } else {
            if p == b'_' {
                return true;
            }
            d = b'.';
        }
        i += 1;
    }
    d == b'_'
}

/// Go's `Scanner.scanString` for `"` and `'` literals: the end offset (after
/// the closing quote when there is one), the number of characters, and the
/// first scanner error.
fn scan_quoted(src: &str, start: usize, quote: char) -> (usize, usize, Option<String>) {
    let mut chars = src[start + 1..].char_indices().peekable();
    let mut count = 0;
    let mut err: Option<String> = None;
    while let Some((i, c)) = chars.next() {
        let here = start + 1 + i;
        if c == quote {
            return (here + 1, count, err);
        }
        if c == '\n' {
            return (
                here,
                count,
                err.or(Some("literal not terminated".to_string())),
            );
        }
        count += 1;
        if c != '\\' {
            continue;
        }
        let Some((_, e)) = chars.next() else { break };
        let digits = match e {
            'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\' => continue,
            e if e == quote => continue,
            '0'..='7' => Some((8, 2)),
            'x' => Some((16, 2)),
            'u' => Some((16, 4)),
            'U' => Some((16, 8)),
            _ => None,
        };
        let Some((radix, mut n)) = digits else {
            err.get_or_insert_with(|| "invalid char escape".to_string());
            continue;
        };
        while n > 0 {
            match chars.peek() {
                Some(&(_, d)) if d.is_digit(radix) => {
                    chars.next();
                    n -= 1;
                }
                _ => break,
            }
        }
        if n > 0 {
            err.get_or_insert_with(|| "invalid char escape".to_string());
        }
    }
    (
        src.len(),
        count,
        err.or(Some("literal not terminated".to_string())),
    )
}

/// `strconv.Unquote` on the body of a double-quoted literal already checked
/// by [`scan_quoted`]. Escapes that produce invalid UTF-8 (`"\xff"`) are
/// rejected: lokal's strings are UTF-8.
fn unquote_double(body: &str) -> Result<Cow<'_, str>, String> {
    if !body.contains('\\') {
        return Ok(Cow::Borrowed(body));
    }
    let invalid = || "invalid syntax".to_string();
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((_, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some((i, e)) = chars.next() else {
            return Err(invalid());
        };
        let simple = match e {
            'a' => Some(7u8),
            'b' => Some(8),
            'f' => Some(12),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(11),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let (radix, len) = match e {
            '0'..='7' => (8, 3),
            'x' => (16, 2),
            'u' => (16, 4),
            'U' => (16, 8),
            _ => return Err(invalid()),
        };
        let digits_start = if radix == 8 { i } else { i + 1 };
        let digits = body
            .get(digits_start..digits_start + len)
            .ok_or_else(invalid)?;
        let v = u32::from_str_radix(digits, radix).map_err(|_| invalid())?;
        for _ in 0..(if radix == 8 { len - 1 } else { len }) {
            chars.next();
        }
        match e {
            'u' | 'U' => {
                let c = char::from_u32(v).ok_or_else(invalid)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => out.push(u8::try_from(v).map_err(|_| invalid())?),
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| "invalid UTF-8 in string literal".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(src: &str) -> Result<Vec<(Tok, String)>, String> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token().map_err(|e| e.to_string())?;
            if t.tok == Tok::Eof {
                return Ok(out);
            }
            let shown = match &t.value {
                TokenValue::Str(s) => s.to_string(),
                TokenValue::Duration(d) => d.to_string(),
                TokenValue::Bytes(b) => b.to_string(),
                TokenValue::None => t.text.to_string(),
            };
            out.push((t.tok, shown));
        }
    }

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn selectors_and_operators() {
        use Tok::*;
        assert_eq!(
            kinds(r#"{foo="bar", a!="b", c=~"d", e!~"f"}"#),
            vec![
                OpenBrace, Identifier, Eq, Str, Comma, Identifier, Neq, Str, Comma, Identifier, Re,
                Str, Comma, Identifier, Nre, Str, CloseBrace
            ]
        );
        assert_eq!(
            kinds(r#"|= != |~ !~ |> !> | == >= <= > < = + - * / % ^"#),
            vec![
                PipeExact,
                Neq,
                PipeMatch,
                Nre,
                PipePattern,
                Npa,
                Pipe,
                CmpEq,
                Gte,
                Lte,
                Gt,
                Lt,
                Eq,
                Add,
                Sub,
                Mul,
                Div,
                Mod,
                Pow
            ]
        );
    }

    #[test]
    fn keywords_are_case_insensitive_and_reserved() {
        use Tok::*;
        assert_eq!(
            kinds("BY Without BOOL on IGNORING group_left group_right OFFSET or AND unless"),
            vec![
                By, Without, Bool, On, Ignoring, GroupLeft, GroupRight, Offset, Or, And, Unless
            ]
        );
        assert_eq!(
            kinds(
                "JSON logfmt regexp pattern unpack line_format label_format unwrap decolorize drop keep"
            ),
            vec![
                Json, Logfmt, Regexp, Pattern, Unpack, LineFmt, LabelFmt, Unwrap, Decolorize, Drop,
                Keep
            ]
        );
        // `variants ... of` was removed: plain identifiers.
        assert_eq!(kinds("variants of"), vec![Identifier, Identifier]);
    }

    #[test]
    fn function_names_need_a_parenthesis() {
        use Tok::*;
        assert_eq!(kinds("rate("), vec![Rate, OpenParen]);
        assert_eq!(kinds("rate ="), vec![Identifier, Eq]);
        assert_eq!(
            kinds("SUM by (x)"),
            vec![Sum, By, OpenParen, Identifier, CloseParen]
        );
        assert_eq!(
            kinds("sum without(x)"),
            vec![Sum, Without, OpenParen, Identifier, CloseParen]
        );
        assert_eq!(kinds("sum bytes"), vec![Identifier, Identifier]);
        assert_eq!(kinds("count by x"), vec![Identifier, By, Identifier]);
        assert_eq!(
            kinds("bytes(x)"),
            vec![BytesConv, OpenParen, Identifier, CloseParen]
        );
        assert_eq!(
            kinds("ip(\"1\") ip"),
            vec![Ip, OpenParen, Str, CloseParen, Identifier]
        );
        assert_eq!(kinds("label_replace ("), vec![LabelReplace, OpenParen]);
        // A comment between the name and `(` makes it an identifier, as in Loki.
        assert_eq!(kinds("sum/**/("), vec![Identifier, OpenParen]);
    }

    #[test]
    fn numbers_durations_and_bytes() {
        assert_eq!(
            lex("500m").unwrap(),
            vec![(Tok::Duration, (500 * 60_000_000_000i64).to_string())]
        );
        assert_eq!(lex("1.5h").unwrap()[0].0, Tok::Duration);
        assert_eq!(
            lex("1h30m").unwrap()[0],
            (Tok::Duration, (90 * 60_000_000_000i64).to_string())
        );
        assert_eq!(
            lex("5MB").unwrap(),
            vec![(Tok::Bytes, "5000000".to_string())]
        );
        assert_eq!(
            lex("1M").unwrap(),
            vec![(Tok::Bytes, "1000000".to_string())]
        );
        assert_eq!(
            lex("2.5KiB").unwrap(),
            vec![(Tok::Bytes, "2560".to_string())]
        );
        assert_eq!(
            lex("10mb").unwrap()[0].0,
            Tok::Duration,
            "10m, then identifier b"
        );
        assert_eq!(lex("42").unwrap(), vec![(Tok::Number, "42".to_string())]);
        assert_eq!(lex("1.5e3 .5 0x1F 1_000").unwrap().len(), 4);
        assert_eq!(
            lex("-5m").unwrap(),
            vec![(Tok::Duration, (-5 * 60_000_000_000i64).to_string())]
        );
        assert_eq!(kinds("-5"), vec![Tok::Sub, Tok::Number]);
        assert_eq!(kinds("- 5m"), vec![Tok::Sub, Tok::Duration]);
        assert_eq!(kinds("-sum("), vec![Tok::Sub, Tok::Sum, Tok::OpenParen]);
        assert_eq!(kinds("1d 1w 1y 7ns 3us 2\u{b5}s"), vec![Tok::Duration; 6]);
    }

    #[test]
    fn number_scanner_errors() {
        assert_eq!(
            lex("0x").unwrap_err(),
            "parse error at line 1, col 1: hexadecimal literal has no digits"
        );
        assert_eq!(
            lex(" 1e").unwrap_err(),
            "parse error at line 1, col 2: exponent has no digits"
        );
        assert_eq!(
            lex("09").unwrap_err(),
            "parse error at line 1, col 1: invalid digit '9' in octal literal"
        );
        assert_eq!(
            lex("0x1.5").unwrap_err(),
            "parse error at line 1, col 1: hexadecimal mantissa requires a 'p' exponent"
        );
        assert_eq!(
            lex("1__0").unwrap_err(),
            "parse error at line 1, col 1: '_' must separate successive digits"
        );
        assert_eq!(
            lex("0B").unwrap_err(),
            "parse error at line 1, col 1: binary literal has no digits"
        );
        assert!(lex("09.5").is_ok(), "octal-looking floats are decimal");
    }

    #[test]
    fn flags() {
        assert_eq!(
            kinds("--strict --keep-empty"),
            vec![Tok::FunctionFlag, Tok::FunctionFlag]
        );
        assert_eq!(kinds("--foo"), vec![Tok::Sub, Tok::Sub, Tok::Identifier]);
    }

    #[test]
    fn strings() {
        assert_eq!(
            lex(r#""a\"b\n\x41\101\u00e9""#).unwrap(),
            vec![(Tok::Str, "a\"b\nAAé".to_string())]
        );
        assert_eq!(lex(r"`\w+`").unwrap(), vec![(Tok::Str, r"\w+".to_string())]);
        assert_eq!(
            lex(r#""\q""#).unwrap_err(),
            "parse error at line 1, col 1: invalid char escape"
        );
        assert_eq!(
            lex(r#"{foo="bar}"#).unwrap_err(),
            "parse error at line 1, col 6: literal not terminated"
        );
        assert_eq!(
            lex("`abc").unwrap_err(),
            "parse error at line 1, col 1: literal not terminated"
        );
        assert_eq!(
            lex(r#""\400""#).unwrap_err(),
            "parse error at line 1, col 1: invalid syntax"
        );
        assert_eq!(
            lex(r#""\ud800""#).unwrap_err(),
            "parse error at line 1, col 1: invalid syntax"
        );
        assert!(lex(r#""\xff""#).is_err(), "not UTF-8");
    }

    #[test]
    fn single_quotes_are_not_strings() {
        assert_eq!(lex("'x'").unwrap(), vec![(Tok::Stray, "'x'".to_string())]);
        assert_eq!(Tok::Stray.name(), "IDENTIFIER");
        assert_eq!(
            lex("'xy'").unwrap_err(),
            "parse error at line 1, col 1: invalid char literal"
        );
    }

    #[test]
    fn comments() {
        use Tok::*;
        assert_eq!(
            kinds("{a=\"b\"} # |= \"x\"\n| json"),
            vec![OpenBrace, Identifier, Eq, Str, CloseBrace, Pipe, Json]
        );
        assert_eq!(
            kinds("a // c\nb /* c\nc */ d"),
            vec![Identifier, Identifier, Identifier]
        );
        assert_eq!(kinds("\"#\""), vec![Str]);
        assert_eq!(
            lex("a /* b").unwrap_err(),
            "parse error at line 1, col 3: comment not terminated"
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(
            lex("[5m]").unwrap(),
            vec![(Tok::Range, (5 * 60_000_000_000i64).to_string())]
        );
        assert_eq!(lex("[1d]").unwrap()[0].0, Tok::Range);
        assert_eq!(
            lex("  [5 m]").unwrap_err(),
            r#"parse error at line 0, col 3: unknown unit " m" in duration "5 m""#
        );
        assert_eq!(
            lex("[5m:1m]").unwrap_err(),
            r#"parse error at line 0, col 1: unknown unit "m:" in duration "5m:1m""#
        );
        assert_eq!(
            lex("[1.5h]").unwrap_err(),
            r#"parse error at line 0, col 1: unknown unit "." in duration "1.5h""#
        );
        assert_eq!(
            lex("[5").unwrap_err(),
            "parse error at line 0, col 1: missing closing ']' in duration"
        );
    }

    #[test]
    fn identifiers() {
        assert_eq!(lex("service_name café _x1").unwrap().len(), 3);
        assert_eq!(
            kinds("service.name"),
            vec![Tok::Identifier, Tok::Dot, Tok::Identifier]
        );
        assert_eq!(kinds("! @"), vec![Tok::Stray, Tok::Stray]);
    }

    #[test]
    fn positions_follow_go_scanner() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab\n", 3), (2, 1));
        assert_eq!(line_col("é=", 2), (1, 2));
        let mut l = Lexer::new("a |= b");
        let a = l.next_token().unwrap();
        let op = l.next_token().unwrap();
        assert!(
            a.line_valid && !op.line_valid,
            "two-character tokens are reported at line 0"
        );
    }
}
