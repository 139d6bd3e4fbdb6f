//! Stream selectors as text: `{name="value", other=~"re.*"}` into matchers.
//!
//! Owns the small grammar shared by configuration (`retention_stream`
//! selectors) and delete requests: a brace-enclosed, comma-separated list of
//! `name op value` matchers, ops `=`, `!=`, `=~`, `!~`, values Go strings in
//! double quotes or backticks. Does not own LogQL: the full query grammar
//! (pipelines, metric queries) lives in `logql`, which may replace the users
//! of this module once it parses selectors itself.
//!
//! Invariant (Loki's `ParseMatchers(.., validate=true)`): a selector has at
//! least one matcher that does not match the empty string, so it can never
//! select every stream by accident.

use super::labels::{go_unescape, is_valid_label_name};
use super::matcher::{MatchOp, Matcher};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at col {col}: {message}")]
pub struct SelectorError {
    /// 1-based column (in bytes) of the problem.
    pub col: usize,
    pub message: String,
}

/// Parses a whole selector; anything after the closing brace is an error.
pub fn parse_selector(src: &str) -> Result<Vec<Matcher>, SelectorError> {
    let (matchers, used) = parse_selector_prefix(src)?;
    let rest = &src[used..];
    if !rest.trim().is_empty() {
        return Err(SelectorError {
            col: used + (rest.len() - rest.trim_start().len()) + 1,
            message: format!("unexpected {:?} after the selector", rest.trim()),
        });
    }
    Ok(matchers)
}

/// Parses a selector at the start of `src` (leading whitespace allowed) and
/// returns its matchers and the byte length consumed, so a caller can go on
/// parsing what follows (line filters).
pub fn parse_selector_prefix(src: &str) -> Result<(Vec<Matcher>, usize), SelectorError> {
    let mut p = Scanner { src, pos: 0 };
    p.skip_ws();
    p.expect('{')?;
    let mut matchers = Vec::new();
    loop {
        p.skip_ws();
        if p.eat('}') {
            break;
        }
        let name_col = p.pos;
        let name = p.name()?;
        p.skip_ws();
        let op = p.op()?;
        p.skip_ws();
        let value = p.string()?;
        let m = Matcher::new(name, op, value).map_err(|e| SelectorError {
            col: name_col + 1,
            message: e.to_string(),
        })?;
        matchers.push(m);
        p.skip_ws();
        if p.eat(',') {
            continue;
        }
        p.expect('}')?;
        break;
    }
    if !matchers.iter().any(|m| !m.matches_empty()) {
        return Err(SelectorError {
            col: 1,
            message: "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will".to_string(),
        });
    }
    Ok((matchers, p.pos))
}

struct Scanner<'a> {
    src: &'a str,
    pos: usize,
}

impl Scanner<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn err(&self, message: impl Into<String>) -> SelectorError {
        SelectorError {
            col: self.pos + 1,
            message: message.into(),
        }
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), SelectorError> {
        if self.eat(c) {
            Ok(())
        } else {
            let found = self.rest().chars().next();
            Err(self.err(match found {
                Some(f) => format!("expected {c:?}, found {f:?}"),
                None => format!("expected {c:?}, found the end of the input"),
            }))
        }
    }

    fn name(&mut self) -> Result<String, SelectorError> {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = rest[..len].to_string();
        if !is_valid_label_name(&name) {
            return Err(self.err(format!("invalid label name {name:?}")));
        }
        self.pos += len;
        Ok(name)
    }

    fn op(&mut self) -> Result<MatchOp, SelectorError> {
        for (text, op) in [
            ("=~", MatchOp::Re),
            ("!~", MatchOp::Nre),
            ("!=", MatchOp::Neq),
            ("=", MatchOp::Eq),
        ] {
            if self.rest().starts_with(text) {
                self.pos += text.len();
                return Ok(op);
            }
        }
        Err(self.err("expected a matcher operator (=, !=, =~, !~)"))
    }

    /// A Go string: `"…"` with escapes, or a raw `` `…` ``.
    fn string(&mut self) -> Result<String, SelectorError> {
        let (value, used) = scan_go_string(self.rest()).map_err(|m| self.err(m))?;
        self.pos += used;
        Ok(value)
    }
}

/// Reads a Go string literal at the start of `s`: `"…"` with escapes or a
/// raw `` `…` ``. Returns the value and the bytes consumed.
pub fn scan_go_string(s: &str) -> Result<(String, usize), String> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, '`')) => {
            let end = s[1..]
                .find('`')
                .ok_or_else(|| "unterminated raw string".to_string())?;
            Ok((s[1..1 + end].to_string(), end + 2))
        }
        Some((_, '"')) => {
            let mut escaped = false;
            for (i, c) in chars {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        let value = go_unescape(&s[1..i])
                            .ok_or_else(|| "invalid escape in string".to_string())?;
                        return Ok((value, i + 1));
                    }
                    '\n' => return Err("newline in string".to_string()),
                    _ => escaped = false,
                }
            }
            Err("unterminated string".to_string())
        }
        _ => Err("expected a string in double quotes or backticks".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    #[test]
    fn selectors_parse_into_matchers() {
        let m =
            parse_selector(r#" { app = "api", env!="dev",level=~"err.*" , x!~`a\d`, } "#).unwrap();
        let text: Vec<String> = m.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            text,
            [
                r#"app="api""#,
                r#"env!="dev""#,
                r#"level=~"err.*""#,
                r#"x!~"a\\d""#
            ]
        );
        let l = Labels::parse(r#"{app="api", env="prod", level="error"}"#).unwrap();
        assert!(m.iter().all(|m| m.matches_labels(&l)));
        let m = parse_selector(r#"{msg="a \"quoted\"\tvalue"}"#).unwrap();
        assert_eq!(m[0].value, "a \"quoted\"\tvalue");
    }

    #[test]
    fn prefix_leaves_the_rest() {
        let src = r#"{app="api"} |= "x""#;
        let (m, used) = parse_selector_prefix(src).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(&src[used..], r#" |= "x""#);
    }

    #[test]
    fn bad_selectors_are_errors_with_a_column() {
        for (src, col) in [
            ("app=\"x\"", 1),
            ("{app=\"x\"", 9),
            ("{app:\"x\"}", 5),
            ("{app=x}", 6),
            ("{app=\"x\"} junk", 11),
            ("{app=~\"(\"}", 2),
            ("{}", 1),
            ("{app=~\".*\"}", 1),
            ("{0app=\"x\"}", 2),
            ("{app=\"x}", 6),
        ] {
            let e = parse_selector(src).unwrap_err();
            assert_eq!(e.col, col, "{src}: {e}");
        }
    }
}
