//! Canonical LogQL text of a tree: `Display` for every node, byte-identical
//! to Loki's `String()` methods (used by `/format_query`'s one-line form and
//! by error messages that quote a stage).
//!
//! Owns only text output. Invariant: for every tree `t` the parser returns,
//! `parse(&t.to_string()) == Ok(t)`. Where Loki's own `String()` cannot be
//! parsed back or changes the query, this printer deviates minimally:
//! - non-finite literals print as a foldable expression (`(0 / 0)` for NaN;
//!   Loki prints `NaN`, which its lexer reads as an identifier);
//! - a negative-zero number prints `-0.0` (Loki's `-0` lexes as a duration);
//! - a byte size that humanize would round prints exactly (`1024B`, not
//!   `1.0kB`), and zero prints `0kB` (Loki's `0B` lexes as a bad binary
//!   literal);
//! - `ignoring () group_left` keeps its modifiers (Loki drops them), and a
//!   bare `group_left` before a parenthesised operand prints as
//!   `group_left ()` (else the operand would read as its label list);
//! - `vector(x)` prints more than six decimals when `x` needs them;
//! - a regex label filter whose value holds control characters is
//!   double-quoted even when Loki would use backticks.

use std::fmt::{self, Display, Formatter, Write};

use regex_syntax::ast::{self, Ast, RepetitionKind};

use super::ast::{
    BinaryOp, Cardinality, Expr, Grouping, LabelFilter, LabelFilterJoin, LabelFmtValue,
    LabelSelection, LineFilter, LogExpr, LogRange, SampleExpr, Selector, Stage, Unwrap,
};
use super::golang::{self, quote};
use crate::model::MatchOp;
use crate::model::labels::write_go_quoted;
use crate::model::matcher::translate_perl_classes;

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(l) => l.fmt(f),
            Expr::Sample(s) => s.fmt(f),
        }
    }
}

impl Display for LogExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.selector.fmt(f)?;
        for stage in &self.pipeline {
            f.write_char(' ')?;
            stage.fmt(f)?;
        }
        Ok(())
    }
}

impl Display for Selector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('{')?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            m.fmt(f)?;
        }
        f.write_char('}')
    }
}

impl Display for LineFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        for (i, v) in self.values.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { " or " })?;
            if v.ip {
                f.write_str("ip(")?;
                write_go_quoted(f, &v.value)?;
                f.write_char(')')?;
            } else {
                write_go_quoted(f, &v.value)?;
            }
        }
        Ok(())
    }
}

fn write_extractions(f: &mut Formatter<'_>, params: &[super::ast::LabelExtraction]) -> fmt::Result {
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        f.write_str(&p.label)?;
        f.write_char('=')?;
        write_go_quoted(f, &p.expression)?;
    }
    Ok(())
}

fn write_selection(f: &mut Formatter<'_>, kw: &str, selection: &LabelSelection) -> fmt::Result {
    write!(f, "| {kw} ")?;
    for (i, l) in selection.labels.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        match &l.matcher {
            Some(m) => m.fmt(f)?,
            None => f.write_str(&l.name)?,
        }
    }
    Ok(())
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(l) => l.fmt(f),
            Stage::Json(j) if j.params.is_empty() => f.write_str("| json"),
            Stage::Json(j) => {
                f.write_str("| json ")?;
                write_extractions(f, &j.params)
            }
            Stage::Logfmt(l) if l.params.is_empty() => {
                f.write_str("| logfmt")?;
                if l.strict {
                    f.write_str(" --strict")?;
                }
                if l.keep_empty {
                    f.write_str(" --keep-empty")?;
                }
                Ok(())
            }
            Stage::Logfmt(l) => {
                f.write_str("| logfmt ")?;
                if l.strict {
                    f.write_str("--strict ")?;
                }
                if l.keep_empty {
                    f.write_str("--keep-empty ")?;
                }
                write_extractions(f, &l.params)
            }
            Stage::Regexp(r) => {
                f.write_str("| regexp ")?;
                write_go_quoted(f, &r.regex)
            }
            Stage::Pattern(p) => {
                f.write_str("| pattern ")?;
                write_go_quoted(f, &p.pattern)
            }
            Stage::Unpack(_) => f.write_str("| unpack"),
            Stage::LabelFilter(l) => write!(f, "| {}", l.filter),
            Stage::LineFormat(l) => {
                f.write_str("| line_format ")?;
                write_go_quoted(f, &l.template)
            }
            Stage::LabelFormat(l) => {
                f.write_str("| label_format ")?;
                for (i, fmt) in l.formats.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    f.write_str(&fmt.dst)?;
                    f.write_char('=')?;
                    match &fmt.value {
                        LabelFmtValue::Rename(src) => f.write_str(src)?,
                        LabelFmtValue::Template(t) => write_go_quoted(f, t)?,
                    }
                }
                Ok(())
            }
            Stage::Drop(s) => write_selection(f, "drop", s),
            Stage::Keep(s) => write_selection(f, "keep", s),
            Stage::Decolorize(_) => f.write_str("| decolorize"),
        }
    }
}

/// Numbers in label filters and `-0` safe: `strconv.FormatFloat(v, 'f', -1)`.
fn format_filter_number(v: f64) -> String {
    if v == 0.0 && v.is_sign_negative() {
        "-0.0".to_string()
    } else {
        golang::format_float_f(v)
    }
}

/// A step of printing a tree without recursing per level: chains make
/// trees up to [`super::MAX_EXPR_DEPTH`] tall.
enum Step<'a, T> {
    Node(&'a T),
    Text(&'static str),
    Owned(String),
}

impl Display for LabelFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut todo = vec![Step::Node(self)];
        while let Some(step) = todo.pop() {
            match step {
                Step::Node(LabelFilter::Binary(b)) => {
                    let join = match b.op {
                        LabelFilterJoin::And => " , ",
                        LabelFilterJoin::Or => " or ",
                    };
                    f.write_str("( ")?;
                    todo.push(Step::Text(" )"));
                    todo.push(Step::Node(&b.right));
                    todo.push(Step::Text(join));
                    todo.push(Step::Node(&b.left));
                }
                Step::Node(leaf) => fmt_label_filter_leaf(leaf, f)?,
                Step::Text(text) => f.write_str(text)?,
                Step::Owned(text) => f.write_str(&text)?,
            }
        }
        Ok(())
    }
}

/// A label filter other than `and`/`or`.
fn fmt_label_filter_leaf(filter: &LabelFilter, f: &mut Formatter<'_>) -> fmt::Result {
    match filter {
        LabelFilter::Binary(_) => Ok(()),
        LabelFilter::Matcher(m) => {
            let matcher = &m.matcher;
            let regex = matches!(matcher.op, MatchOp::Re | MatchOp::Nre);
            if regex && !regex_is_simplified(&matcher.value) {
                write!(f, "{}{}", matcher.name, matcher.op.as_str())?;
                if matcher.value.contains('`') || matcher.value.chars().any(char::is_control) {
                    write_go_quoted(f, &matcher.value)
                } else {
                    write!(f, "`{}`", matcher.value)
                }
            } else {
                matcher.fmt(f)
            }
        }
        LabelFilter::Number(n) => {
            write!(
                f,
                "{}{}{}",
                n.label,
                n.op.as_str(),
                format_filter_number(n.value)
            )
        }
        LabelFilter::Duration(d) => write!(
            f,
            "{}{}{}",
            d.label,
            d.op.as_str(),
            golang::format_go_duration(d.value)
        ),
        LabelFilter::Bytes(b) => {
            let value = if b.value == 0 {
                "0kB".to_string()
            } else {
                golang::format_bytes(b.value)
            };
            write!(f, "{}{}{value}", b.label, b.op.as_str())
        }
        LabelFilter::Ip(ip) => {
            write!(
                f,
                "{}{}ip({})",
                ip.label,
                if ip.negated { "!=" } else { "=" },
                quote(&ip.pattern)
            )
        }
    }
}

impl Display for Unwrap {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.conversion {
            Some(c) => write!(f, " | unwrap {}({})", c.as_str(), self.label)?,
            None => write!(f, " | unwrap {}", self.label)?,
        }
        for filter in &self.post_filters {
            write!(f, " | {filter}")?;
        }
        Ok(())
    }
}

impl Display for LogRange {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.log.fmt(f)?;
        if let Some(u) = &self.unwrap {
            u.fmt(f)?;
        }
        write!(f, "[{}]", golang::format_prom_duration(self.range))?;
        if self.offset != 0 {
            write!(f, " offset {}", golang::format_go_duration(self.offset))?;
        }
        Ok(())
    }
}

impl Display for Grouping {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(if self.without { " without (" } else { " by (" })?;
        f.write_str(&self.labels.join(","))?;
        f.write_char(')')
    }
}

/// A literal as Loki's `fmt.Sprint(float64)`, with the non-finite and
/// negative-zero values written so that they read back (see module docs).
pub(crate) fn format_literal(v: f64) -> String {
    if v.is_nan() {
        "(0 / 0)".to_string()
    } else if v == f64::INFINITY {
        "(1e+308 * 10)".to_string()
    } else if v == f64::NEG_INFINITY {
        "(-1e+308 * 10)".to_string()
    } else if v == 0.0 && v.is_sign_negative() {
        "-0.0".to_string()
    } else {
        golang::format_float_v(v)
    }
}

/// `vector()`'s argument: Go's `%f` (`1.000000`) when that is exact,
/// otherwise the shortest exact digits (Loki would round to 6 decimals).
fn format_vector_value(v: f64) -> String {
    let fixed = format!("{v:.6}");
    if golang::parse_float(&fixed) == Ok(v) {
        fixed
    } else {
        golang::format_float_f(v)
    }
}

/// The operator text of a binary operation with its modifiers, as Loki's
/// `BinOpExpr.String()` writes it (`/ on (a,b) group_left (c)`, with Loki's
/// trailing space when there is no group modifier).
fn binary_op_text(e: &BinaryOp, label_sep: &str) -> String {
    // A bare `group_left` followed by `(` would read the right-hand side as
    // its label list, so it gets an explicit empty list there.
    let rhs_opens_paren = matches!(&e.rhs, SampleExpr::BinaryOp(_))
        || matches!(&e.rhs, SampleExpr::Literal(l) if !l.value.is_finite());
    let mut op = e.op.as_str().to_string();
    if e.return_bool {
        op.push_str(" bool");
    }
    let m = &e.matching;
    let mut group = match m.card {
        Cardinality::OneToOne => String::new(),
        Cardinality::ManyToOne => "group_left".to_string(),
        Cardinality::OneToMany => "group_right".to_string(),
    };
    if !m.include.is_empty() {
        group = format!("{group} ({})", m.include.join(label_sep));
    } else if m.card != Cardinality::OneToOne && rhs_opens_paren {
        group.push_str(" ()");
    }
    if m.on || !m.labels.is_empty() || m.card != Cardinality::OneToOne {
        let on = if m.on { "on" } else { "ignoring" };
        op = format!("{op} {on} ({}) {group}", m.labels.join(label_sep));
    }
    op
}

pub(crate) fn binary_op_text_pretty(e: &BinaryOp) -> String {
    binary_op_text(e, ", ")
}

impl Display for SampleExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut todo = vec![Step::Node(self)];
        while let Some(step) = todo.pop() {
            match step {
                Step::Node(SampleExpr::BinaryOp(e)) => {
                    f.write_char('(')?;
                    todo.push(Step::Text(")"));
                    todo.push(Step::Node(&e.rhs));
                    todo.push(Step::Owned(format!(" {} ", binary_op_text(e, ","))));
                    todo.push(Step::Node(&e.lhs));
                }
                Step::Node(other) => fmt_sample_expr(other, f)?,
                Step::Text(text) => f.write_str(text)?,
                Step::Owned(text) => f.write_str(&text)?,
            }
        }
        Ok(())
    }
}

/// A metric expression other than a binary operation.
fn fmt_sample_expr(expr: &SampleExpr, f: &mut Formatter<'_>) -> fmt::Result {
    match expr {
        SampleExpr::RangeAggregation(e) => {
            write!(f, "{}(", e.op.as_str())?;
            if let Some(p) = e.param {
                write!(f, "{},", golang::format_float_f(p))?;
            }
            write!(f, "{})", e.range)?;
            if let Some(g) = &e.grouping {
                g.fmt(f)?;
            }
            Ok(())
        }
        SampleExpr::VectorAggregation(e) => {
            f.write_str(e.op.as_str())?;
            if !e.grouping.is_singleton() {
                e.grouping.fmt(f)?;
            }
            f.write_char('(')?;
            if let Some(k) = e.param {
                write!(f, "{k},")?;
            }
            write!(f, "{})", e.inner)
        }
        SampleExpr::BinaryOp(_) => Ok(()),
        SampleExpr::Literal(l) => f.write_str(&format_literal(l.value)),
        SampleExpr::Vector(v) => write!(f, "vector({})", format_vector_value(v.value)),
        SampleExpr::LabelReplace(e) => write!(
            f,
            "label_replace({},{},{},{},{})",
            e.inner,
            quote(&e.dst),
            quote(&e.replacement),
            quote(&e.src),
            quote(&e.regex)
        ),
    }
}

/// The shape of a regex, as far as Loki's regex simplifier cares.
enum Shape {
    Literal(String),
    Empty,
    /// `.*` (any character but newline, repeated).
    DotStar,
    /// `.+`
    DotPlus,
    Alternation(Vec<Shape>),
    Concat(Vec<Shape>),
    Other,
}

/// Whether Loki's `RegexSimplifier` turns a label-filter regex into literal
/// filters. Loki prints the regexes it cannot simplify between backticks
/// (`LineFilterLabelFilter.String()`), the others double-quoted. This
/// mirrors the simplifier on the shapes users write (literals, `.*` and
/// `.+`, alternations of literals with Go's prefix factoring, concatenations
/// of one literal with `.*`); it only affects the quoting of printed text.
pub(crate) fn regex_is_simplified(pattern: &str) -> bool {
    let Ok(ast) = ast::parse::Parser::new().parse(&translate_perl_classes(pattern)) else {
        return false;
    };
    simplifiable(&shape(&ast))
}

fn shape(ast: &Ast) -> Shape {
    match ast {
        Ast::Empty(_) => Shape::Empty,
        Ast::Literal(l) => Shape::Literal(l.c.to_string()),
        Ast::Group(g) => match &g.kind {
            ast::GroupKind::NonCapturing(flags) if !flags.items.is_empty() => Shape::Other,
            _ => shape(&g.ast),
        },
        Ast::Repetition(r) if matches!(*r.ast, Ast::Dot(_)) => match r.op.kind {
            RepetitionKind::ZeroOrMore => Shape::DotStar,
            RepetitionKind::OneOrMore => Shape::DotPlus,
            _ => Shape::Other,
        },
        Ast::Alternation(a) => Shape::Alternation(a.asts.iter().map(shape).collect()),
        Ast::Concat(c) => {
            let mut items: Vec<Shape> = Vec::new();
            for (i, item) in c.asts.iter().enumerate() {
                if let Ast::Flags(flags) = item {
                    // A leading `(?i)` keeps literals literal (case-folded).
                    let only_i = flags.flags.items.iter().all(|f| {
                        matches!(f.kind, ast::FlagsItemKind::Flag(ast::Flag::CaseInsensitive))
                    });
                    if i == 0 && only_i {
                        continue;
                    }
                    return Shape::Other;
                }
                match (items.last_mut(), shape(item)) {
                    (Some(Shape::Literal(prev)), Shape::Literal(next)) => prev.push_str(&next),
                    (_, Shape::Empty) => {}
                    (_, next) => items.push(next),
                }
            }
            match items.len() {
                0 => Shape::Empty,
                1 => items.pop().unwrap_or(Shape::Empty),
                _ => Shape::Concat(items),
            }
        }
        Ast::Flags(_) => Shape::Empty,
        _ => Shape::Other,
    }
}

fn simplifiable(s: &Shape) -> bool {
    match s {
        Shape::Literal(_) | Shape::Empty | Shape::DotStar | Shape::DotPlus => true,
        Shape::Other => false,
        Shape::Alternation(branches) => {
            let literals: Option<Vec<&str>> = branches
                .iter()
                .map(|b| match b {
                    Shape::Literal(l) => Some(l.as_str()),
                    Shape::Empty => Some(""),
                    _ => None,
                })
                .collect();
            match literals {
                Some(l) => literal_alternation_simplifiable(&l),
                None => branches.iter().all(simplifiable),
            }
        }
        Shape::Concat(items) => {
            if items.len() > 3 {
                return false;
            }
            let mut literal = false;
            for item in items {
                match item {
                    Shape::Literal(_) if literal => return false,
                    Shape::Literal(_) => literal = true,
                    Shape::DotStar => {}
                    Shape::Alternation(branches) if literal => {
                        let ok = if branches
                            .iter()
                            .all(|b| matches!(b, Shape::Empty | Shape::Literal(_)))
                        {
                            simplifiable(item)
                        } else {
                            branches.iter().all(|b| {
                                matches!(b, Shape::Empty | Shape::Literal(_) | Shape::DotStar)
                                    || matches!(b, Shape::Concat(_) if simplifiable(b))
                            })
                        };
                        if !ok {
                            return false;
                        }
                    }
                    _ => return false,
                }
            }
            literal
        }
    }
}

/// Go's parser factors common prefixes out of alternations and merges runs
/// of single characters into a class, which the simplifier rejects:
/// `error|warn` stays simple, `a|b` and `ab|ac` do not.
fn literal_alternation_simplifiable(branches: &[&str]) -> bool {
    #[derive(PartialEq)]
    enum Kind {
        Single,
        Other,
    }
    let mut kinds = Vec::new();
    let mut i = 0;
    while i < branches.len() {
        let mut prefix = branches[i];
        let mut j = i + 1;
        while j < branches.len() {
            let common = common_prefix(prefix, branches[j]);
            if common.is_empty() {
                break;
            }
            prefix = common;
            j += 1;
        }
        if j - i >= 2 {
            let rests: Vec<&str> = branches[i..j].iter().map(|b| &b[prefix.len()..]).collect();
            if !literal_alternation_simplifiable(&rests) {
                return false;
            }
            kinds.push(Kind::Other);
        } else if branches[i].chars().count() == 1 {
            kinds.push(Kind::Single);
        } else {
            kinds.push(Kind::Other);
        }
        i = j;
    }
    !kinds
        .windows(2)
        .any(|w| w[0] == Kind::Single && w[1] == Kind::Single)
}

fn common_prefix<'s>(a: &'s str, b: &str) -> &'s str {
    let len = a
        .char_indices()
        .zip(b.chars())
        .take_while(|((_, x), y)| x == y)
        .last()
        .map_or(0, |((i, x), _)| i + x.len_utf8());
    &a[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_print_like_go() {
        assert_eq!(format_literal(2.0), "2");
        assert_eq!(format_literal(-1500.0), "-1500");
        assert_eq!(format_literal(0.5), "0.5");
        assert_eq!(format_literal(1e6), "1e+06");
        assert_eq!(format_literal(f64::NAN), "(0 / 0)");
        assert_eq!(format_literal(-0.0), "-0.0");
    }

    #[test]
    fn regex_simplifier_shapes() {
        for simple in [
            "foo",
            "(?i)foo",
            ".*foo.*",
            "foo.*",
            ".*",
            ".+",
            "error|warn",
            "ab|abc",
            "foo(bar|qux)",
            "",
        ] {
            assert!(regex_is_simplified(simple), "{simple}");
        }
        for complex in [
            r"\w.*",
            "a|b",
            "ab|ac",
            "foobar|foobaz",
            "foo(bar|baz)",
            ".*foo.*bar",
            "[a-z]+",
            "(?s).*",
            "a.b",
        ] {
            assert!(!regex_is_simplified(complex), "{complex}");
        }
    }
}
