//! Label matchers (`=`, `!=`, `=~`, `!~`) and Go-compatible regexes.
//!
//! Stream selectors and label filters use Prometheus semantics: an absent
//! label matches as the empty string, and regexes are fully anchored
//! (`^(?:re)$`). Loki compiles regexes with Go's RE2, whose Perl classes are
//! ASCII-only; [`go_regex`] rewrites `\d \w \s \b` so the Rust engine agrees.

use std::fmt;

use regex::Regex;

use super::labels::{Labels, go_quote};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Eq,
    Neq,
    Re,
    Nre,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Neq => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        }
    }
}

/// One `name op "value"` matcher.
#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// The anchored regex, for `=~` and `!~`.
    regex: Option<Regex>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MatcherError(pub String);

impl Matcher {
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let value = value.into();
        let regex = match op {
            MatchOp::Re | MatchOp::Nre => {
                Some(go_regex(&value, true).map_err(|e| MatcherError(e.to_string()))?)
            }
            MatchOp::Eq | MatchOp::Neq => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// Whether the matcher accepts `value` (use `""` for an absent label).
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Eq => value == self.value,
            MatchOp::Neq => value != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::Nre => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the matcher accepts the label set (absent label = `""`).
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// Whether an absent label (the empty string) satisfies the matcher.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=~`: the finite set of values the regex can match, when it is a
    /// plain alternation of literals (`a|b|c`). Lets the index look up terms
    /// instead of scanning every value of the label.
    pub fn literal_alternatives(&self) -> Option<Vec<String>> {
        if self.op != MatchOp::Re && self.op != MatchOp::Nre {
            return None;
        }
        literal_alternatives(&self.value)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.op.as_str(),
            go_quote(&self.value)
        )
    }
}

/// Compiles an RE2 pattern as Go would, optionally anchored as `^(?:re)$`.
pub fn go_regex(pattern: &str, anchored: bool) -> Result<Regex, regex::Error> {
    let translated = translate_perl_classes(pattern);
    if anchored {
        Regex::new(&format!("^(?:{translated})$"))
    } else {
        Regex::new(&translated)
    }
}

/// Compiles an RE2 pattern for matching raw bytes (log lines), unanchored.
pub fn go_bytes_regex(pattern: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::Regex::new(&translate_perl_classes(pattern))
}

/// Rewrites a Go RE2 pattern into the Rust `regex` dialect: the Perl
/// classes `\d \D \w \W \s \S` (and word boundaries) get their ASCII-only
/// RE2 meanings, a `{` that does not start a valid counted repetition is a
/// literal (as in Go), and `\Q…\E` quotes its text. Everything else is left
/// untouched.
pub fn translate_perl_classes(pattern: &str) -> String {
    if !pattern.contains(['\\', '{']) {
        return pattern.to_string();
    }
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut class_start = false;
    let mut i = 0;
    while let Some(c) = pattern[i..].chars().next() {
        i += c.len_utf8();
        if c == '\\' {
            let Some(n) = pattern[i..].chars().next() else {
                out.push('\\');
                break;
            };
            i += n.len_utf8();
            if n == 'Q' && !in_class {
                let rest = &pattern[i..];
                let (lit, after) = match rest.find("\\E") {
                    Some(end) => (&rest[..end], end + 2),
                    None => (rest, rest.len()),
                };
                out.push_str(&regex_syntax::escape(lit));
                i += after;
                continue;
            }
            let ascii = match n {
                'd' => Some(("[0-9]", "0-9")),
                'D' => Some(("[^0-9]", "")),
                'w' => Some(("[0-9A-Za-z_]", "0-9A-Za-z_")),
                'W' => Some(("[^0-9A-Za-z_]", "")),
                's' => Some(("[\\t\\n\\f\\r ]", "\\t\\n\\f\\r ")),
                'S' => Some(("[^\\t\\n\\f\\r ]", "")),
                _ => None,
            };
            match ascii {
                Some((_, inner)) if in_class && !inner.is_empty() => out.push_str(inner),
                Some((whole, _)) => out.push_str(whole),
                None if !in_class && (n == 'b' || n == 'B') => {
                    out.push_str("(?-u:\\");
                    out.push(n);
                    out.push(')');
                }
                None => {
                    out.push('\\');
                    out.push(n);
                }
            }
            class_start = false;
            continue;
        }
        if in_class {
            if c == ']' && !class_start {
                in_class = false;
            }
            class_start = class_start && c == '^';
            out.push(c);
            continue;
        }
        if c == '[' {
            in_class = true;
            class_start = true;
            out.push(c);
            if pattern[i..].starts_with('^') {
                out.push('^');
                i += 1;
            }
            continue;
        }
        if c == '{' && !is_go_repeat(&pattern[i..]) {
            out.push_str("\\{");
            continue;
        }
        out.push(c);
    }
    out
}

/// Whether the text after a `{` completes a counted repetition as Go's
/// `parseRepeat` reads it: `n}`, `n,}` or `n,m}`, numbers without leading
/// zeros.
fn is_go_repeat(after_brace: &str) -> bool {
    fn int(s: &str) -> Option<&str> {
        let len = s.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || (len >= 2 && s.starts_with('0')) {
            return None;
        }
        Some(&s[len..])
    }
    let Some(rest) = int(after_brace) else {
        return false;
    };
    let rest = match rest.strip_prefix(',') {
        None => rest,
        Some(r) if r.starts_with('}') => r,
        Some(r) => match int(r) {
            Some(r) => r,
            None => return false,
        },
    };
    rest.starts_with('}')
}

/// `a|b|c` (optionally wrapped in one group) → `["a","b","c"]` when every
/// alternative is a plain literal.
fn literal_alternatives(pattern: &str) -> Option<Vec<String>> {
    let p = pattern
        .strip_prefix("(?:")
        .and_then(|p| p.strip_suffix(')'))
        .unwrap_or(pattern);
    let p = p
        .strip_prefix('(')
        .and_then(|p| p.strip_suffix(')'))
        .unwrap_or(p);
    let mut out = Vec::new();
    for alt in p.split('|') {
        if alt.chars().any(|c| "\\.+*?()[]{}^$|".contains(c)) {
            return None;
        }
        out.push(alt.to_string());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_semantics() {
        let m = Matcher::new("app", MatchOp::Re, "ap").unwrap();
        assert!(m.matches("ap"));
        assert!(!m.matches("api"), "regex matchers are anchored");
        let m = Matcher::new("env", MatchOp::Neq, "prod").unwrap();
        assert!(m.matches(""), "absent label is the empty string");
        assert!(m.matches_empty());
        assert!(
            !Matcher::new("job", MatchOp::Re, ".+")
                .unwrap()
                .matches_empty()
        );
        assert!(
            Matcher::new("job", MatchOp::Re, ".*")
                .unwrap()
                .matches_empty()
        );
        let m = Matcher::new("a", MatchOp::Nre, "x|y").unwrap();
        assert!(m.matches("z") && !m.matches("x"));
    }

    #[test]
    fn perl_classes_are_ascii_like_re2() {
        let r = go_regex(r"\d+", true).unwrap();
        assert!(r.is_match("123"));
        assert!(!r.is_match("١٢٣"), "Arabic-Indic digits are not \\d in RE2");
        let r = go_regex(r"[\d_]+", true).unwrap();
        assert!(r.is_match("1_2"));
        let r = go_regex(r"[^\s]+", true).unwrap();
        assert!(r.is_match("ab") && !r.is_match("a b"));
        let r = go_regex(r"\\d", true).unwrap();
        assert!(r.is_match("\\d"), "escaped backslash is literal");
        let r = go_regex(r"\bfoo\b", false).unwrap();
        assert!(r.is_match("a foo b") && !r.is_match("afoob"));
        let r = go_regex(r"[]a]+", true).unwrap();
        assert!(r.is_match("]a"));
        // RE2 reads a brace that is not a repetition as a literal.
        let r = go_regex(r"{foo}", true).unwrap();
        assert!(r.is_match("{foo}"));
        let r = go_regex(r"a{,5}b{", true).unwrap();
        assert!(r.is_match("a{,5}b{"));
        let r = go_regex(r"a{2}[{]", true).unwrap();
        assert!(r.is_match("aa{") && !r.is_match("a{"));
    }

    #[test]
    fn go_literal_braces_and_quoting() {
        // A `{` that does not start a counted repetition is a literal in Go.
        for (p, hay) in [
            ("{", "{"),
            ("a{", "a{"),
            ("a{b}", "a{b}"),
            (r#"\{"level""#, r#"{"level""#),
            (r#"{"level""#, r#"x{"level":1}"#),
            ("x{1,2", "x{1,2"),
            ("a{,3}", "a{,3}"),
            ("a{01}", "a{01}"),
        ] {
            let r = go_regex(p, false).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert!(r.is_match(hay), "{p} on {hay}");
        }
        let r = go_regex("a{2}", true).unwrap();
        assert!(r.is_match("aa") && !r.is_match("a{2}"));
        let r = go_regex("x{1,}y{0,1}", true).unwrap();
        assert!(r.is_match("xxy") && r.is_match("x"));
        let r = go_regex(r"\Q.*+\Ez", true).unwrap();
        assert!(r.is_match(".*+z") && !r.is_match("aaz"));
        let r = go_regex(r"[{]\Q", true).unwrap();
        assert!(r.is_match("{"));
    }

    #[test]
    fn literal_alternatives_detected() {
        let m = Matcher::new("a", MatchOp::Re, "api|web").unwrap();
        assert_eq!(
            m.literal_alternatives(),
            Some(vec!["api".into(), "web".into()])
        );
        let m = Matcher::new("a", MatchOp::Re, "api.*").unwrap();
        assert_eq!(m.literal_alternatives(), None);
    }
}
