//! Line filters: `|=`, `!=`, `|~`, `!~`, `|>`, `!>`, `ip()`, `or` chains.
//!
//! Owns: the match tree shared by line filters and string label filters
//! ([`MatchNode`]: substring, case-folded substring, equality, regex,
//! pattern, ip, not/and/or), Loki's combination rules (an `or` with an
//! always-true side keeps the other side), the `|=` fast path (a precompiled
//! `memchr::memmem` finder, no allocation per line), and the literals a
//! matching line must contain, for push-down into chunk reads.
//!
//! Does not own: the regex shape analysis (`regex_simplify.rs`) or the
//! pattern and ip matchers (their own modules).
//!
//! Invariants: filters are pure predicates over bytes; building them is the
//! only fallible step.

use std::fmt::Write as _;
use std::sync::Arc;

use memchr::memmem;

use crate::model::Timestamp;

use super::convert::decode_rune;
use super::ip::IpMatcher;
use super::pattern::PatternMatcher;
use super::{LabelsBuilder, LineBuf, LogError, Stage, regex_simplify};

/// The match tree behind line filters and string label filters.
#[derive(Clone, Debug)]
pub(crate) enum MatchNode {
    /// Matches everything (Loki's `TrueFilter`).
    True,
    /// Matches non-empty input (`.+`).
    Exists,
    /// Boxed: a finder is large and the tree should stay small.
    Contains(Box<memmem::Finder<'static>>),
    /// Case-insensitive substring; the needle is lower-cased.
    ContainsFold(Vec<u8>),
    Equal(Vec<u8>),
    /// Case-insensitive equality; the needle is lower-cased.
    EqualFold(Vec<u8>),
    Regex(regex::bytes::Regex),
    Pattern(Arc<PatternMatcher>),
    Ip(Arc<IpMatcher>),
    Not(Box<MatchNode>),
    And(Vec<MatchNode>),
    Or(Vec<MatchNode>),
}

impl MatchNode {
    /// Loki's `newContainsFilter`: the empty needle is always true.
    pub(crate) fn contains(needle: Vec<u8>, fold: bool) -> MatchNode {
        if needle.is_empty() {
            MatchNode::True
        } else if fold {
            MatchNode::ContainsFold(go_to_lower(&needle))
        } else {
            MatchNode::Contains(Box::new(memmem::Finder::new(&needle).into_owned()))
        }
    }

    /// Loki's `newEqualFilter`.
    pub(crate) fn equal(value: Vec<u8>, fold: bool) -> MatchNode {
        if fold {
            MatchNode::EqualFold(go_to_lower(&value))
        } else {
            MatchNode::Equal(value)
        }
    }

    /// Loki's `newOrFilter`: an always-true side is dropped (not the other
    /// way round: `|= "" or "x"` only keeps lines containing `x`).
    pub(crate) fn or(left: MatchNode, right: MatchNode) -> MatchNode {
        match (left, right) {
            (MatchNode::True, r) => r,
            (l, MatchNode::True) => l,
            (l, r) => {
                let mut all = Vec::new();
                for x in [l, r] {
                    match x {
                        MatchNode::Or(xs) => all.extend(xs),
                        x => all.push(x),
                    }
                }
                MatchNode::Or(all)
            }
        }
    }

    /// Loki's `NewAndFilter`: an always-true side is dropped.
    pub(crate) fn and(left: MatchNode, right: MatchNode) -> MatchNode {
        match (left, right) {
            (MatchNode::True, r) => r,
            (l, MatchNode::True) => l,
            (l, r) => {
                let mut all = Vec::new();
                for x in [l, r] {
                    match x {
                        MatchNode::And(xs) => all.extend(xs),
                        x => all.push(x),
                    }
                }
                MatchNode::And(all)
            }
        }
    }

    pub(crate) fn not(inner: MatchNode) -> MatchNode {
        match inner {
            MatchNode::Not(x) => *x,
            x => MatchNode::Not(Box::new(x)),
        }
    }

    pub(crate) fn is_true(&self) -> bool {
        matches!(self, MatchNode::True)
    }

    pub(crate) fn matches(&self, input: &[u8]) -> bool {
        match self {
            MatchNode::True => true,
            MatchNode::Exists => !input.is_empty(),
            MatchNode::Contains(f) => f.find(input).is_some(),
            MatchNode::ContainsFold(needle) => contains_lower(input, needle),
            MatchNode::Equal(v) => input == v.as_slice(),
            MatchNode::EqualFold(v) => input.len() == v.len() && contains_lower(input, v),
            MatchNode::Regex(r) => r.is_match(input),
            MatchNode::Pattern(p) => p.test(input),
            MatchNode::Ip(ip) => ip.matches_line(input),
            MatchNode::Not(x) => !x.matches(input),
            MatchNode::And(xs) => xs.iter().all(|x| x.matches(input)),
            MatchNode::Or(xs) => xs.iter().any(|x| x.matches(input)),
        }
    }

    fn required_literals(&self, out: &mut Vec<Vec<u8>>) {
        match self {
            MatchNode::Contains(f) => out.push(f.needle().to_vec()),
            MatchNode::Pattern(p) => out.extend(p.literals().map(<[u8]>::to_vec)),
            MatchNode::And(xs) => xs.iter().for_each(|x| x.required_literals(out)),
            _ => {}
        }
    }

    /// A short description of the tree, e.g. `or(contains("a"), regex)`.
    pub(crate) fn describe(&self) -> String {
        let mut s = String::new();
        self.describe_into(&mut s);
        s
    }

    fn describe_into(&self, s: &mut String) {
        let q = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
        match self {
            MatchNode::True => s.push_str("true"),
            MatchNode::Exists => s.push_str("exists"),
            MatchNode::Contains(f) => {
                let _ = write!(s, "contains({})", q(f.needle()));
            }
            MatchNode::ContainsFold(n) => {
                let _ = write!(s, "contains_fold({})", q(n));
            }
            MatchNode::Equal(v) => {
                let _ = write!(s, "equal({})", q(v));
            }
            MatchNode::EqualFold(v) => {
                let _ = write!(s, "equal_fold({})", q(v));
            }
            MatchNode::Regex(_) => s.push_str("regex"),
            MatchNode::Pattern(_) => s.push_str("pattern"),
            MatchNode::Ip(_) => s.push_str("ip"),
            MatchNode::Not(x) => {
                s.push_str("not(");
                x.describe_into(s);
                s.push(')');
            }
            MatchNode::And(xs) | MatchNode::Or(xs) => {
                s.push_str(if matches!(self, MatchNode::And(_)) {
                    "and("
                } else {
                    "or("
                });
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    x.describe_into(s);
                }
                s.push(')');
            }
        }
    }
}

/// Go's `bytes.ToLower`: per rune `unicode.ToLower` (one rune to one rune).
fn go_to_lower(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut rest = b;
    let mut buf = [0u8; 4];
    while !rest.is_empty() {
        let (c, n) = decode_rune(rest);
        let c = c.map_or('\u{fffd}', simple_lower);
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        rest = &rest[n..];
    }
    out
}

fn simple_lower(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    c.to_lowercase().next().unwrap_or(c)
}

/// Loki's `containsLower`: whether `needle` (already lower-cased) occurs in
/// `line`, comparing ASCII bytes case-insensitively and other runes through
/// a lower-case mapping of the line's rune.
fn contains_lower(line: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    if needle.len() > line.len() {
        return false;
    }
    let first = needle[0];
    let max_index = line.len() - needle.len();
    let mut i = 0;
    while i <= max_index {
        if line[i].to_ascii_lowercase() != first {
            i += 1;
            continue;
        }
        let (mut lp, mut sp) = (i, 0);
        let mut matched = true;
        while lp < line.len() && sp < needle.len() {
            let (c, s) = (line[lp], needle[sp]);
            if c < 0x80 && s < 0x80 {
                if c.to_ascii_lowercase() != s {
                    matched = false;
                    break;
                }
                lp += 1;
                sp += 1;
                continue;
            }
            let (lr, ln) = decode_rune(&line[lp..]);
            let Some(lr) = lr else {
                if c.to_ascii_lowercase() != s {
                    matched = false;
                    break;
                }
                lp += 1;
                sp += 1;
                continue;
            };
            let (mr, mn) = decode_rune(&needle[sp..]);
            match mr {
                Some(mr) if simple_lower(lr) == mr => {
                    lp += ln;
                    sp += mn;
                }
                _ => {
                    matched = false;
                    break;
                }
            }
        }
        if matched && sp == needle.len() {
            return true;
        }
        i += 1;
    }
    false
}

/// Compiles a regex filter with Loki's simplification; labels are anchored.
pub(crate) fn regex_node(pattern: &str, is_label: bool) -> Result<MatchNode, LogError> {
    if let Some(node) = regex_simplify::simplify(pattern, is_label)? {
        return Ok(node);
    }
    let translated = crate::model::matcher::translate_perl_classes(pattern);
    let source = if is_label {
        format!("^(?:{translated})$")
    } else {
        translated
    };
    regex::bytes::Regex::new(&source)
        .map(MatchNode::Regex)
        .map_err(|e| LogError::InvalidRegex {
            pattern: pattern.to_string(),
            message: e.to_string(),
        })
}

/// A line filter operator.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LineFilterOp {
    /// `|=`
    Contains,
    /// `!=`
    NotContains,
    /// `|~`
    Regex,
    /// `!~`
    NotRegex,
    /// `|>`
    Pattern,
    /// `!>`
    NotPattern,
}

impl LineFilterOp {
    /// Whether the operator keeps lines that match (`|=`, `|~`, `|>`).
    pub fn is_positive(self) -> bool {
        matches!(
            self,
            LineFilterOp::Contains | LineFilterOp::Regex | LineFilterOp::Pattern
        )
    }
}

/// One alternative of a line filter: a string or an `ip("...")` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainValue {
    Str(String),
    Ip(String),
}

/// A compiled line filter.
#[derive(Clone, Debug)]
pub struct LineFilter {
    node: MatchNode,
}

impl LineFilter {
    /// `op "value"`. `|= ""` matches every line; `!= ""` matches none.
    pub fn new(op: LineFilterOp, value: &str) -> Result<Self, LogError> {
        let positive = match op {
            LineFilterOp::Contains | LineFilterOp::NotContains => {
                MatchNode::contains(value.as_bytes().to_vec(), false)
            }
            LineFilterOp::Regex | LineFilterOp::NotRegex => regex_node(value, false)?,
            LineFilterOp::Pattern | LineFilterOp::NotPattern => {
                MatchNode::Pattern(Arc::new(PatternMatcher::new_line_filter(value)?))
            }
        };
        Ok(LineFilter::signed(op, positive))
    }

    /// `|= ip("pattern")` / `!= ip("pattern")`; other operators are an error.
    pub fn ip(op: LineFilterOp, pattern: &str) -> Result<Self, LogError> {
        if !matches!(op, LineFilterOp::Contains | LineFilterOp::NotContains) {
            return Err(LogError::IpInvalidOperation);
        }
        let node = MatchNode::Ip(Arc::new(IpMatcher::parse(pattern)?));
        Ok(LineFilter::signed(op, node))
    }

    /// `op v1 or v2 or …`: every alternative takes the operator of the
    /// first; a positive chain matches when any alternative matches, a
    /// negative one when none does.
    pub fn chain(op: LineFilterOp, values: &[ChainValue]) -> Result<Self, LogError> {
        let mut node: Option<MatchNode> = None;
        for v in values {
            let alt = match v {
                ChainValue::Str(s) => LineFilter::new(op, s)?.node,
                ChainValue::Ip(p) => LineFilter::ip(op, p)?.node,
            };
            node = Some(match node {
                None => alt,
                // `!= a or b` is `!= a != b` (none of them).
                Some(n) if op.is_positive() => MatchNode::or(n, alt),
                Some(n) => MatchNode::and(n, alt),
            });
        }
        Ok(LineFilter {
            node: node.unwrap_or(MatchNode::True),
        })
    }

    fn signed(op: LineFilterOp, positive: MatchNode) -> Self {
        let node = if op.is_positive() {
            positive
        } else {
            MatchNode::not(positive)
        };
        LineFilter { node }
    }

    /// Both filters must match.
    pub fn and(self, other: LineFilter) -> LineFilter {
        LineFilter {
            node: MatchNode::and(self.node, other.node),
        }
    }

    /// Either filter must match (with Loki's always-true quirk).
    pub fn or(self, other: LineFilter) -> LineFilter {
        LineFilter {
            node: MatchNode::or(self.node, other.node),
        }
    }

    /// Whether `line` passes the filter.
    pub fn matches(&self, line: &[u8]) -> bool {
        self.node.matches(line)
    }

    /// Whether the filter keeps every line (`|= ""`, `|~ ".*"`).
    pub fn is_noop(&self) -> bool {
        self.node.is_true()
    }

    /// Substrings (case-sensitive) that every matching line contains. Empty
    /// when nothing is known. A store may skip blocks that lack any of them.
    pub fn required_literals(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.node.required_literals(&mut out);
        out
    }

    /// The needle when the filter is exactly one case-sensitive substring
    /// test (`|= "x"`): a line passes if and only if it contains it.
    pub fn as_contains(&self) -> Option<&[u8]> {
        match &self.node {
            MatchNode::Contains(f) => Some(f.needle()),
            _ => None,
        }
    }

    /// The lower-cased needle when the filter is exactly one
    /// case-insensitive substring test (`|~ "(?i)x"`).
    pub fn as_contains_fold(&self) -> Option<&[u8]> {
        match &self.node {
            MatchNode::ContainsFold(needle) => Some(needle),
            _ => None,
        }
    }

    /// A short description of how the filter matches, e.g.
    /// `or(contains("a"), regex)`.
    pub fn describe(&self) -> String {
        self.node.describe()
    }
}

/// A pipeline stage that drops lines failing a [`LineFilter`].
#[derive(Clone, Debug)]
pub struct LineFilterStage {
    filter: LineFilter,
}

impl LineFilterStage {
    pub fn new(filter: LineFilter) -> Self {
        LineFilterStage { filter }
    }
}

impl Stage for LineFilterStage {
    fn process(&mut self, _ts: Timestamp, line: &mut LineBuf<'_>, _: &mut LabelsBuilder) -> bool {
        self.filter.matches(line.as_bytes())
    }

    fn as_line_filter(&self) -> Option<&LineFilter> {
        Some(&self.filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(op: LineFilterOp, v: &str) -> LineFilter {
        LineFilter::new(op, v).unwrap()
    }

    #[test]
    fn contains_and_not_contains() {
        let c = f(LineFilterOp::Contains, "gen.1.1");
        assert!(c.matches(b"a gen.1.1 b"));
        assert!(!c.matches(b"gen-1-1"), "dots are literal");
        assert!(!f(LineFilterOp::Contains, "error").matches(b"ERROR"));
        assert!(f(LineFilterOp::NotContains, "x").matches(b"abc"));
        assert!(f(LineFilterOp::Contains, "").matches(b"anything"));
        assert!(f(LineFilterOp::Contains, "").is_noop());
        assert!(
            !f(LineFilterOp::NotContains, "").matches(b"anything"),
            "every line contains the empty string"
        );
        assert!(f(LineFilterOp::Contains, "✓").matches("ok ✓".as_bytes()));
    }

    #[test]
    fn regex_filters() {
        let r = f(LineFilterOp::Regex, "(?i)error");
        assert!(r.matches(b"an ERROR here"));
        assert_eq!(r.describe(), r#"contains_fold("error")"#);
        let r = f(LineFilterOp::Regex, "Task failed.*Thread");
        assert!(
            !r.matches(b"Task failed\n  at Thread"),
            "no newline crossing"
        );
        assert!(r.matches(b"Task failed in Thread"));
        let r = f(LineFilterOp::Regex, "(?s)Task failed.*Thread");
        assert!(r.matches(b"Task failed\n  at Thread"));
        let r = f(LineFilterOp::Regex, r#"HTTP/1\.1" 5\d\d"#);
        assert!(r.matches(br#""GET / HTTP/1.1" 503 12"#));
        assert!(!r.matches(br#""GET / HTTP/1.1" 200 12"#));
        assert!(!f(LineFilterOp::NotRegex, "debug|DEBUG").matches(b"a DEBUG b"));
        assert!(f(LineFilterOp::Regex, r"\d+").matches("x ٣ 4".as_bytes()));
        assert!(
            !f(LineFilterOp::Regex, r"^\d+$").matches("٣".as_bytes()),
            "RE2 \\d is ASCII"
        );
        assert!(LineFilter::new(LineFilterOp::Regex, "(").is_err());
    }

    #[test]
    fn case_insensitive_contains_matches_loki() {
        assert!(contains_lower(b"Hello WORLD", b"world"));
        assert!(contains_lower("CAFÉ au lait".as_bytes(), "café".as_bytes()));
        assert!(!contains_lower(b"abc", b"abd"));
        assert!(contains_lower(b"ab\xffCD", b"cd"));
        assert!(contains_lower(b"x", b""));
        assert_eq!(go_to_lower("ÀB".as_bytes()), "àb".as_bytes());
    }

    #[test]
    fn or_chains() {
        let c = LineFilter::chain(
            LineFilterOp::Contains,
            &[
                ChainValue::Str("timeout".into()),
                ChainValue::Str("ECONNREFUSED".into()),
            ],
        )
        .unwrap();
        assert!(c.matches(b"a timeout"));
        assert!(c.matches(b"ECONNREFUSED!"));
        assert!(!c.matches(b"ok"));
        let n = LineFilter::chain(
            LineFilterOp::NotContains,
            &[
                ChainValue::Str("GET".into()),
                ChainValue::Str("POST".into()),
            ],
        )
        .unwrap();
        assert!(!n.matches(b"GET /"));
        assert!(!n.matches(b"POST /"));
        assert!(n.matches(b"PUT /"));
        // Loki's or drops an always-true alternative.
        let q = LineFilter::chain(
            LineFilterOp::Contains,
            &[ChainValue::Str(String::new()), ChainValue::Str("x".into())],
        )
        .unwrap();
        assert!(!q.matches(b"abc"));
        let ip = LineFilter::chain(
            LineFilterOp::Contains,
            &[
                ChainValue::Str("zzz".into()),
                ChainValue::Ip("10.0.0.0/8".into()),
            ],
        )
        .unwrap();
        assert!(ip.matches(b"from 10.1.2.3 port"));
    }

    #[test]
    fn pattern_and_ip_filters() {
        let p = f(LineFilterOp::NotPattern, "<_> kernel: [UFW BLOCK] <_>");
        assert!(!p.matches(b"Nov  1 host kernel: [UFW BLOCK] IN=eth0"));
        assert!(p.matches(b"Nov  1 host sshd: accepted"));
        assert!(LineFilter::new(LineFilterOp::Pattern, "<a>").is_err());
        assert_eq!(
            LineFilter::ip(LineFilterOp::Regex, "1.2.3.4").err(),
            Some(LogError::IpInvalidOperation)
        );
        let ip = LineFilter::ip(LineFilterOp::Contains, "192.168.4.0/24").unwrap();
        assert!(ip.matches(b"SRC=192.168.4.77 DST=10.0.0.1"));
        assert!(!ip.matches(b"SRC=192.168.5.77"));
        let nip = LineFilter::ip(LineFilterOp::NotContains, "192.168.4.0/24").unwrap();
        assert!(nip.matches(b"SRC=192.168.5.77"));
    }

    #[test]
    fn required_literals_for_push_down() {
        let a = f(LineFilterOp::Contains, "foo").and(f(LineFilterOp::Regex, ".*bar.*"));
        assert_eq!(
            a.required_literals(),
            vec![b"foo".to_vec(), b"bar".to_vec()]
        );
        let p = f(LineFilterOp::Pattern, "<_> level=debug <_>");
        assert_eq!(p.required_literals(), vec![b" level=debug ".to_vec()]);
        assert!(
            f(LineFilterOp::NotContains, "x")
                .required_literals()
                .is_empty()
        );
        assert!(f(LineFilterOp::Regex, "a|b").required_literals().is_empty());
        assert!(
            f(LineFilterOp::Regex, "(?i)a")
                .required_literals()
                .is_empty()
        );
    }
}
