//! Label filter expressions: `| level="error"`, `| latency > 500`,
//! `| took > 1m`, `| size > 20KB`, `| addr = ip("…")`, and/or trees.
//!
//! Owns, with Loki's semantics (`pkg/logql/log/label_filter.go`):
//! - string matchers through the regex simplifier (a literal regex is an
//!   equality, `.*`-concatenations and factored alternations substrings,
//!   the rest anchored), a missing label matching as `""`, `__error__`
//!   read from the error state;
//! - number (`strconv.ParseFloat`), duration (`time.ParseDuration`) and
//!   bytes (humanize `ParseBytes`) filters: a missing label drops the entry,
//!   an unparseable value keeps it and sets `LabelFilterErr` with the Go
//!   error text unless an error is already set;
//! - `ip()`: an entry already carrying an error is kept;
//! - `and` evaluates both sides (a side effect of the right one can survive
//!   in an enclosing `or`), `or` short-circuits.
//!
//! Does not own: parsing the filter syntax (the LogQL parser).
//!
//! Invariants: filters never allocate on the success path.

use std::sync::Arc;

use crate::model::{MatchOp, Timestamp};

use super::convert::{ConvertError, parse_go_duration, parse_go_float, parse_humanize_bytes};
use super::ip::IpMatcher;
use super::line_filter::{MatchNode, regex_node};
use super::{ERR_LABEL_FILTER, ERROR_LABEL, LabelsBuilder, LineBuf, LogError, Stage};

/// A comparison operator of number, duration and bytes filters.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CompareOp {
    fn compare<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CompareOp::Eq => a == b,
            CompareOp::Neq => a != b,
            CompareOp::Gt => a > b,
            CompareOp::Gte => a >= b,
            CompareOp::Lt => a < b,
            CompareOp::Lte => a <= b,
        }
    }
}

/// A compiled label filter tree.
#[derive(Clone, Debug)]
pub struct LabelFilter {
    tree: Tree,
}

#[derive(Clone, Debug)]
enum Tree {
    /// Keeps everything (`x=~".*"`, an empty filter list).
    Noop,
    String {
        name: String,
        node: MatchNode,
    },
    Numeric {
        name: String,
        op: CompareOp,
        value: f64,
    },
    Duration {
        name: String,
        op: CompareOp,
        nanos: i64,
    },
    Bytes {
        name: String,
        op: CompareOp,
        bytes: u64,
    },
    Ip {
        name: String,
        negated: bool,
        matcher: Arc<IpMatcher>,
    },
    And(Box<Tree>, Box<Tree>),
    Or(Box<Tree>, Box<Tree>),
}

impl LabelFilter {
    /// `name op "value"` with `=`, `!=`, `=~`, `!~`.
    pub fn string(name: impl Into<String>, op: MatchOp, value: &str) -> Result<Self, LogError> {
        let node = match op {
            MatchOp::Eq => MatchNode::equal(value.as_bytes().to_vec(), false),
            MatchOp::Neq => MatchNode::not(MatchNode::equal(value.as_bytes().to_vec(), false)),
            MatchOp::Re => regex_node(value, true)?,
            MatchOp::Nre => MatchNode::not(regex_node(value, true)?),
        };
        if node.is_true() {
            return Ok(LabelFilter::noop());
        }
        Ok(LabelFilter {
            tree: Tree::String {
                name: name.into(),
                node,
            },
        })
    }

    /// `name op number`.
    pub fn numeric(name: impl Into<String>, op: CompareOp, value: f64) -> Self {
        LabelFilter {
            tree: Tree::Numeric {
                name: name.into(),
                op,
                value,
            },
        }
    }

    /// `name op duration`, the duration in nanoseconds.
    pub fn duration(name: impl Into<String>, op: CompareOp, nanos: i64) -> Self {
        LabelFilter {
            tree: Tree::Duration {
                name: name.into(),
                op,
                nanos,
            },
        }
    }

    /// `name op bytes`.
    pub fn bytes(name: impl Into<String>, op: CompareOp, bytes: u64) -> Self {
        LabelFilter {
            tree: Tree::Bytes {
                name: name.into(),
                op,
                bytes,
            },
        }
    }

    /// `name = ip("pattern")` / `name != ip("pattern")`.
    pub fn ip(name: impl Into<String>, op: CompareOp, pattern: &str) -> Result<Self, LogError> {
        let negated = match op {
            CompareOp::Eq => false,
            CompareOp::Neq => true,
            _ => return Err(LogError::IpInvalidOperation),
        };
        Ok(LabelFilter {
            tree: Tree::Ip {
                name: name.into(),
                negated,
                matcher: Arc::new(IpMatcher::parse(pattern)?),
            },
        })
    }

    /// Both must pass (`and`, `,`, juxtaposition).
    pub fn and(left: LabelFilter, right: LabelFilter) -> Self {
        LabelFilter {
            tree: Tree::And(Box::new(left.tree), Box::new(right.tree)),
        }
    }

    /// Either must pass.
    pub fn or(left: LabelFilter, right: LabelFilter) -> Self {
        LabelFilter {
            tree: Tree::Or(Box::new(left.tree), Box::new(right.tree)),
        }
    }

    /// A filter that keeps everything.
    pub fn noop() -> Self {
        LabelFilter { tree: Tree::Noop }
    }

    /// Whether the filter keeps everything.
    pub fn is_noop(&self) -> bool {
        matches!(self.tree, Tree::Noop)
    }

    /// Evaluates the filter on the entry; may set `LabelFilterErr`.
    pub fn process(&self, lbs: &mut LabelsBuilder) -> bool {
        self.tree.process(lbs)
    }
}

impl Tree {
    fn process(&self, lbs: &mut LabelsBuilder) -> bool {
        match self {
            Tree::Noop => true,
            Tree::String { name, node } => {
                let value = if name == ERROR_LABEL {
                    lbs.error().unwrap_or("")
                } else {
                    lbs.get(name).unwrap_or("")
                };
                node.matches(value.as_bytes())
            }
            Tree::Numeric { name, op, value } => {
                converted(lbs, name, parse_go_float, |v| op.compare(v, *value))
            }
            Tree::Duration { name, op, nanos } => {
                converted(lbs, name, parse_go_duration, |v| op.compare(v, *nanos))
            }
            Tree::Bytes { name, op, bytes } => {
                converted(lbs, name, parse_humanize_bytes, |v| op.compare(v, *bytes))
            }
            Tree::Ip {
                name,
                negated,
                matcher,
            } => {
                if lbs.has_error() {
                    return true;
                }
                match lbs.get(name) {
                    None => false,
                    Some(v) => matcher.matches_value(v) != *negated,
                }
            }
            Tree::And(l, r) => {
                let lok = l.process(lbs);
                let rok = r.process(lbs);
                lok && rok
            }
            Tree::Or(l, r) => l.process(lbs) || r.process(lbs),
        }
    }
}

/// The shared rule of the converting filters.
fn converted<T>(
    lbs: &mut LabelsBuilder,
    name: &str,
    parse: impl Fn(&str) -> Result<T, ConvertError>,
    keep: impl Fn(T) -> bool,
) -> bool {
    let parsed = match lbs.get(name) {
        None => return false,
        Some(v) => parse(v),
    };
    match parsed {
        Ok(v) => keep(v),
        Err(e) => {
            if !lbs.has_error() {
                lbs.set_error(ERR_LABEL_FILTER);
                lbs.set_error_details_fmt(format_args!("{e}"));
            }
            true
        }
    }
}

/// A pipeline stage applying a [`LabelFilter`].
#[derive(Clone, Debug)]
pub struct LabelFilterStage {
    filter: LabelFilter,
}

impl LabelFilterStage {
    pub fn new(filter: LabelFilter) -> Self {
        LabelFilterStage { filter }
    }
}

impl Stage for LabelFilterStage {
    fn process(
        &mut self,
        _ts: Timestamp,
        _line: &mut LineBuf<'_>,
        lbs: &mut LabelsBuilder,
    ) -> bool {
        self.filter.process(lbs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn builder(stream: &str, parsed: &[(&str, &str)]) -> LabelsBuilder {
        let mut b = LabelsBuilder::new(&Labels::parse(stream).unwrap());
        b.reset();
        for (n, v) in parsed {
            b.set_parsed(n, v);
        }
        b
    }

    fn outcome(f: &LabelFilter, parsed: &[(&str, &str)]) -> (bool, Option<String>, Option<String>) {
        let mut b = builder(r#"{app="a"}"#, parsed);
        let keep = f.process(&mut b);
        (
            keep,
            b.error().map(str::to_string),
            b.error_details().map(str::to_string),
        )
    }

    #[test]
    fn numeric_filter_rules() {
        let f = LabelFilter::numeric("latency_ms", CompareOp::Gt, 500.0);
        assert_eq!(outcome(&f, &[("latency_ms", "501")]), (true, None, None));
        assert_eq!(outcome(&f, &[("latency_ms", "5e2")]), (false, None, None));
        assert_eq!(outcome(&f, &[]), (false, None, None), "missing label drops");
        assert_eq!(
            outcome(&f, &[("latency_ms", "12ms")]),
            (
                true,
                Some("LabelFilterErr".into()),
                Some(r#"strconv.ParseFloat: parsing "12ms": invalid syntax"#.into())
            )
        );
        assert_eq!(
            outcome(&f, &[("latency_ms", "")]).2.as_deref(),
            Some(r#"strconv.ParseFloat: parsing "": invalid syntax"#)
        );
        let eq = LabelFilter::numeric("statusCode", CompareOp::Eq, 404.0);
        for v in ["404", "404.0", "4.04e2"] {
            assert!(outcome(&eq, &[("statusCode", v)]).0, "{v}");
        }
        // An earlier error is not overwritten, and the filter still runs.
        let mut b = builder("{}", &[("x", "abc")]);
        b.set_error("JSONParserErr");
        assert!(LabelFilter::numeric("x", CompareOp::Gt, 1.0).process(&mut b));
        assert_eq!(b.error(), Some("JSONParserErr"));
        assert!(!LabelFilter::numeric("y", CompareOp::Gt, 1.0).process(&mut b));
    }

    #[test]
    fn duration_and_bytes_filters() {
        let d = LabelFilter::duration("duration", CompareOp::Gte, 10_000_000_000);
        assert!(outcome(&d, &[("duration", "10.8s")]).0);
        assert!(!outcome(&d, &[("duration", "731us")]).0);
        assert!(outcome(&d, &[("duration", "1m23s")]).0);
        assert_eq!(
            outcome(&d, &[("duration", "847")]).2.as_deref(),
            Some(r#"time: missing unit in duration "847""#)
        );
        let b = LabelFilter::bytes("size", CompareOp::Gt, 20_000);
        assert!(outcome(&b, &[("size", "1MiB")]).0);
        assert!(!outcome(&b, &[("size", "1.5KB")]).0);
        assert_eq!(
            outcome(&b, &[("size", "lots")]).2.as_deref(),
            Some(r#"strconv.ParseFloat: parsing "": invalid syntax"#)
        );
    }

    #[test]
    fn string_filters_use_loki_simplification() {
        let s = |op, v: &str| LabelFilter::string("msg", op, v).unwrap();
        let f = s(MatchOp::Re, "Slow query detected");
        assert!(outcome(&f, &[("msg", "Slow query detected")]).0);
        assert!(
            !outcome(&f, &[("msg", "Slow query detected in db")]).0,
            "equality"
        );
        let f = s(MatchOp::Re, "Slow query.*");
        assert!(outcome(&f, &[("msg", "a Slow query x")]).0, "substring");
        let f = s(MatchOp::Nre, "request.*|task.*");
        assert!(!outcome(&f, &[("msg", "new task queued")]).0);
        assert!(outcome(&f, &[("msg", "cache miss")]).0);
        let f = s(MatchOp::Re, "a[0-9]+");
        assert!(outcome(&f, &[("msg", "a12")]).0);
        assert!(!outcome(&f, &[("msg", "xa12")]).0, "anchored regex");
        let f = s(MatchOp::Neq, "x");
        assert!(outcome(&f, &[]).0, "missing label is empty");
        assert!(s(MatchOp::Re, ".*").is_noop());
        let mut b = builder("{}", &[]);
        b.set_error("JSONParserErr");
        assert!(
            LabelFilter::string("__error__", MatchOp::Eq, "JSONParserErr")
                .unwrap()
                .process(&mut b)
        );
        assert!(
            !LabelFilter::string("__error__", MatchOp::Eq, "")
                .unwrap()
                .process(&mut b)
        );
        assert!(LabelFilter::string("x", MatchOp::Re, "(").is_err());
    }

    #[test]
    fn ip_filters() {
        let f = LabelFilter::ip("addr", CompareOp::Eq, "192.168.4.0/24").unwrap();
        assert!(outcome(&f, &[("addr", "192.168.4.7")]).0);
        assert!(!outcome(&f, &[("addr", "10.0.0.1")]).0);
        assert!(!outcome(&f, &[]).0);
        let n = LabelFilter::ip("addr", CompareOp::Neq, "192.168.4.0/24").unwrap();
        assert!(outcome(&n, &[("addr", "10.0.0.1")]).0);
        let mut b = builder("{}", &[]);
        b.set_error("E");
        assert!(f.process(&mut b), "an entry with an error is kept");
        assert!(LabelFilter::ip("addr", CompareOp::Gt, "1.2.3.4").is_err());
        assert!(LabelFilter::ip("addr", CompareOp::Eq, "nope").is_err());
    }

    #[test]
    fn and_evaluates_both_sides_or_short_circuits() {
        // (missing > 1 and bad > 1) or true: the right side of the `and`
        // still sets the error, which survives.
        let f = LabelFilter::or(
            LabelFilter::and(
                LabelFilter::numeric("missing", CompareOp::Gt, 1.0),
                LabelFilter::numeric("bad", CompareOp::Gt, 1.0),
            ),
            LabelFilter::string("app", MatchOp::Eq, "a").unwrap(),
        );
        assert_eq!(
            outcome(&f, &[("bad", "x")]).1.as_deref(),
            Some("LabelFilterErr")
        );
        let f = LabelFilter::or(
            LabelFilter::string("app", MatchOp::Eq, "a").unwrap(),
            LabelFilter::numeric("bad", CompareOp::Gt, 1.0),
        );
        assert_eq!(outcome(&f, &[("bad", "x")]), (true, None, None));
    }
}
