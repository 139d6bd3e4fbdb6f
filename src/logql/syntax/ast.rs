//! The LogQL abstract syntax tree: the contract between the parser and the
//! evaluator.
//!
//! Owns the node types and the small queries the evaluator asks of a tree
//! (its matchers, line filters, range selectors). It does not own parsing
//! (`parser`), printing (`print`, `pretty`) or evaluation.
//!
//! Invariants of a tree returned by [`super::parse`]:
//! - It is valid: every rule Loki checks at parse time holds (at least one
//!   non-empty-compatible matcher per selector, unwrap and grouping only where
//!   allowed, parameters present and in range, regexes compile).
//! - Binary operations on two literals are already folded into a [`Literal`].
//! - A negated line filter (`!=`, `!~`, `!>`) has exactly one value: Loki
//!   rewrites `!= "a" or "b"` into `!= "a" != "b"`, and so does the parser.
//! - Every node carries the [`Span`] of the text it came from. Spans never
//!   take part in equality: two trees are equal when their structure is, so
//!   `parse(print(ast)) == ast` compares what the query means.
//! - Durations are `i64` nanoseconds (offsets may be negative), byte sizes
//!   `u64`, numbers `f64`.

use std::fmt;
use std::ops::Range;

use crate::model::Matcher;

/// A byte range `start..end` in the query text.
///
/// Spans are position metadata: `==` on two spans is always true, so derived
/// equality on tree nodes compares structure only. Use
/// [`Span::same_position`] to compare positions.
#[derive(Copy, Clone, Default, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        // Queries are limited to 128 KiB, far below u32::MAX.
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    /// The byte range, for slicing the query text.
    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn same_position(self, other: Span) -> bool {
        self.start == other.start && self.end == other.end
    }
}

impl PartialEq for Span {
    fn eq(&self, _other: &Span) -> bool {
        true
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A whole query: a log query (streams of lines) or a metric query.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Log(LogExpr),
    Sample(SampleExpr),
}

impl Expr {
    pub fn is_log(&self) -> bool {
        matches!(self, Expr::Log(_))
    }

    pub fn as_log(&self) -> Option<&LogExpr> {
        match self {
            Expr::Log(l) => Some(l),
            Expr::Sample(_) => None,
        }
    }

    pub fn as_sample(&self) -> Option<&SampleExpr> {
        match self {
            Expr::Sample(s) => Some(s),
            Expr::Log(_) => None,
        }
    }

    pub fn span(&self) -> Span {
        match self {
            Expr::Log(l) => l.span,
            Expr::Sample(s) => s.span(),
        }
    }

    /// Every log selector of the query with its pipeline, in query order.
    pub fn log_exprs(&self) -> Vec<&LogExpr> {
        match self {
            Expr::Log(l) => vec![l],
            Expr::Sample(s) => s.log_ranges().into_iter().map(|r| &r.log).collect(),
        }
    }

    /// Every line filter of the query, in query order (for push-down).
    pub fn line_filters(&self) -> Vec<&LineFilter> {
        self.log_exprs()
            .into_iter()
            .flat_map(|l| l.line_filters())
            .collect()
    }
}

/// A stream selector and its pipeline: `{app="api"} |= "error" | json`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogExpr {
    pub selector: Selector,
    /// The stages in query order. Stages written after a `[range]` are
    /// appended here too (`{a="b"}[5m] | json` is `{a="b"} | json [5m]`).
    pub pipeline: Vec<Stage>,
    pub span: Span,
}

impl LogExpr {
    /// The stream matchers, for the index.
    pub fn matchers(&self) -> &[Matcher] {
        &self.selector.matchers
    }

    pub fn line_filters(&self) -> impl Iterator<Item = &LineFilter> {
        self.pipeline.iter().filter_map(|s| match s {
            Stage::LineFilter(f) => Some(f),
            _ => None,
        })
    }

    /// Loki's `HasFilter`: whether a stage can drop lines (a label filter,
    /// or a line filter other than an empty `|=`/`|~`).
    pub fn has_filter(&self) -> bool {
        self.pipeline.iter().any(|s| match s {
            Stage::LabelFilter(_) => true,
            Stage::LineFilter(f) => {
                !(matches!(f.op, LineFilterOp::Contains | LineFilterOp::Regex)
                    && f.values.len() == 1
                    && f.values[0].value.is_empty())
            }
            _ => false,
        })
    }
}

/// `{name="value", ...}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    pub matchers: Vec<Matcher>,
    /// `matcher_spans[i]` is the span of `matchers[i]`.
    pub matcher_spans: Vec<Span>,
    pub span: Span,
}

/// One pipeline stage.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// `|= "x"`, `!~ "re"`, `|> "<_> x"`, `|= ip("10.0.0.0/8")`, with `or`.
    LineFilter(LineFilter),
    /// `| json` or `| json a="b.c", d`.
    Json(JsonParser),
    /// `| logfmt [--strict] [--keep-empty] [params]`.
    Logfmt(LogfmtParser),
    /// `` | regexp `(?P<name>...)` ``.
    Regexp(RegexpParser),
    /// `| pattern "<ip> - <_>"`.
    Pattern(PatternParser),
    /// `| unpack`.
    Unpack(Span),
    /// `| level="error" and latency > 5s`.
    LabelFilter(LabelFilterStage),
    /// `| line_format "{{.msg}}"`.
    LineFormat(LineFormat),
    /// `| label_format dst=src, other="{{.x}}"`.
    LabelFormat(LabelFormat),
    /// `| drop a, b="c"`.
    Drop(LabelSelection),
    /// `| keep a, b=~"c.*"`.
    Keep(LabelSelection),
    /// `| decolorize`.
    Decolorize(Span),
}

impl Stage {
    pub fn span(&self) -> Span {
        match self {
            Stage::LineFilter(s) => s.span,
            Stage::Json(s) => s.span,
            Stage::Logfmt(s) => s.span,
            Stage::Regexp(s) => s.span,
            Stage::Pattern(s) => s.span,
            Stage::LabelFilter(s) => s.span,
            Stage::LineFormat(s) => s.span,
            Stage::LabelFormat(s) => s.span,
            Stage::Drop(s) | Stage::Keep(s) => s.span,
            Stage::Unpack(span) | Stage::Decolorize(span) => *span,
        }
    }
}

/// A line filter. Positive operators with several values match when any
/// value matches (`|= "a" or "b"`); negated operators always have one value.
#[derive(Clone, Debug, PartialEq)]
pub struct LineFilter {
    pub op: LineFilterOp,
    pub values: Vec<LineFilterValue>,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LineFilterOp {
    /// `|=`: the line contains the value.
    Contains,
    /// `!=`
    NotContains,
    /// `|~`: the unanchored RE2 regex matches.
    Regex,
    /// `!~`
    NotRegex,
    /// `|>`: the pattern (with `<_>` wildcards) matches.
    Pattern,
    /// `!>`
    NotPattern,
}

impl LineFilterOp {
    pub fn as_str(self) -> &'static str {
        match self {
            LineFilterOp::Contains => "|=",
            LineFilterOp::NotContains => "!=",
            LineFilterOp::Regex => "|~",
            LineFilterOp::NotRegex => "!~",
            LineFilterOp::Pattern => "|>",
            LineFilterOp::NotPattern => "!>",
        }
    }

    /// Whether the operator keeps lines that do *not* match.
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            LineFilterOp::NotContains | LineFilterOp::NotRegex | LineFilterOp::NotPattern
        )
    }
}

/// One value of a line filter: a string, or `ip("<cidr|range|addr>")`.
#[derive(Clone, Debug, PartialEq)]
pub struct LineFilterValue {
    pub value: String,
    /// `ip(...)`: match IP addresses found in the line (only with `|=`/`!=`).
    pub ip: bool,
    pub span: Span,
}

/// `| json` (no params: every field) or `| json a="path", b`.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonParser {
    pub params: Vec<LabelExtraction>,
    pub span: Span,
}

/// `| logfmt --strict --keep-empty a="key", b`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogfmtParser {
    pub strict: bool,
    pub keep_empty: bool,
    /// Empty: extract every pair.
    pub params: Vec<LabelExtraction>,
    pub span: Span,
}

/// `label="expression"`, or a bare `label` (expression = label).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelExtraction {
    pub label: String,
    /// A jsonexpr path (`a.b[0]`, `["x y"]`) for json, a key for logfmt.
    pub expression: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RegexpParser {
    /// The RE2 regex, with at least one named capture.
    pub regex: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PatternParser {
    /// The pattern, with at least one named capture and no adjacent captures.
    pub pattern: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LabelFilterStage {
    pub filter: LabelFilter,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LineFormat {
    /// The Go text/template source.
    pub template: String,
    pub span: Span,
}

/// `| label_format dst=src, dst2="{{.tmpl}}"`; destinations are distinct and
/// never `__error__`.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelFormat {
    pub formats: Vec<LabelFmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LabelFmt {
    pub dst: String,
    pub value: LabelFmtValue,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LabelFmtValue {
    /// `dst=src`: move the value of `src` to `dst` (removing `src`).
    Rename(String),
    /// `dst="{{...}}"`: set `dst` from a Go template.
    Template(String),
}

/// The labels of `| drop ...` / `| keep ...`.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelSelection {
    pub labels: Vec<NamedMatcher>,
    pub span: Span,
}

/// `name` (the label, whatever its value) or `name="value"` (the label when
/// the matcher matches its value).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedMatcher {
    pub name: String,
    pub matcher: Option<Matcher>,
    pub span: Span,
}

/// A label filter predicate. `and`, `,` and juxtaposition are [`LabelFilterJoin::And`].
#[derive(Clone, Debug, PartialEq)]
pub enum LabelFilter {
    Binary(Box<BinaryLabelFilter>),
    /// `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`: a missing label
    /// is `""`. The only kind allowed on `__error__`/`__error_details__`.
    Matcher(MatcherFilter),
    /// `name > 5`, `name == -1.5`: the label parsed as a float.
    Number(NumberFilter),
    /// `name > 250ms`: the label parsed as a Go duration.
    Duration(DurationFilter),
    /// `name >= 5MB`: the label parsed as a humanized byte size.
    Bytes(BytesFilter),
    /// `name = ip("10.0.0.0/8")`, `name != ip(...)`.
    Ip(IpFilter),
}

impl LabelFilter {
    pub fn span(&self) -> Span {
        match self {
            LabelFilter::Binary(b) => b.span,
            LabelFilter::Matcher(m) => m.span,
            LabelFilter::Number(n) => n.span,
            LabelFilter::Duration(d) => d.span,
            LabelFilter::Bytes(b) => b.span,
            LabelFilter::Ip(i) => i.span,
        }
    }

    /// The label a leaf filter reads (`None` for `and`/`or`).
    pub fn label(&self) -> Option<&str> {
        match self {
            LabelFilter::Binary(_) => None,
            LabelFilter::Matcher(m) => Some(&m.matcher.name),
            LabelFilter::Number(n) => Some(&n.label),
            LabelFilter::Duration(d) => Some(&d.label),
            LabelFilter::Bytes(b) => Some(&b.label),
            LabelFilter::Ip(i) => Some(&i.label),
        }
    }

    /// Calls `f` on every leaf filter, left to right. Iterative: chains
    /// make tall trees.
    pub fn for_each_leaf<'a>(&'a self, f: &mut dyn FnMut(&'a LabelFilter)) {
        let mut todo = vec![self];
        while let Some(filter) = todo.pop() {
            match filter {
                LabelFilter::Binary(b) => {
                    todo.push(&b.right);
                    todo.push(&b.left);
                }
                leaf => f(leaf),
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BinaryLabelFilter {
    pub op: LabelFilterJoin,
    pub left: LabelFilter,
    pub right: LabelFilter,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LabelFilterJoin {
    And,
    /// Short-circuits: the right side runs only when the left one fails.
    Or,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MatcherFilter {
    pub matcher: Matcher,
    pub span: Span,
}

/// Comparison operator of number, duration and bytes label filters.
/// `=` and `==` are both [`CmpOp::Eq`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Neq => "!=",
            CmpOp::Gt => ">",
            CmpOp::Gte => ">=",
            CmpOp::Lt => "<",
            CmpOp::Lte => "<=",
        }
    }

    /// `value <op> literal`.
    pub fn compare<T: PartialOrd>(self, value: T, literal: T) -> bool {
        match self {
            CmpOp::Eq => value == literal,
            CmpOp::Neq => value != literal,
            CmpOp::Gt => value > literal,
            CmpOp::Gte => value >= literal,
            CmpOp::Lt => value < literal,
            CmpOp::Lte => value <= literal,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NumberFilter {
    pub label: String,
    pub op: CmpOp,
    pub value: f64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DurationFilter {
    pub label: String,
    pub op: CmpOp,
    /// Nanoseconds.
    pub value: i64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BytesFilter {
    pub label: String,
    pub op: CmpOp,
    pub value: u64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IpFilter {
    pub label: String,
    /// `!=` rather than `=`.
    pub negated: bool,
    /// A single address, a CIDR prefix or an `a-b` range.
    pub pattern: String,
    pub span: Span,
}

/// `| unwrap label`, `| unwrap duration(label)`, then `| <label filter>`s.
#[derive(Clone, Debug, PartialEq)]
pub struct Unwrap {
    pub label: String,
    pub conversion: Option<UnwrapConversion>,
    /// Label filters written after the unwrap; they run after extraction.
    pub post_filters: Vec<LabelFilter>,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnwrapConversion {
    /// `bytes(x)`: a humanized byte size.
    Bytes,
    /// `duration(x)`: a Go duration, in seconds.
    Duration,
    /// `duration_seconds(x)`: the same as `duration(x)`.
    DurationSeconds,
}

impl UnwrapConversion {
    pub fn as_str(self) -> &'static str {
        match self {
            UnwrapConversion::Bytes => "bytes",
            UnwrapConversion::Duration => "duration",
            UnwrapConversion::DurationSeconds => "duration_seconds",
        }
    }
}

/// A log query over a window: `{a="b"} | json | unwrap x [5m] offset 1h`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRange {
    pub log: LogExpr,
    /// The window, in nanoseconds (a whole number of milliseconds).
    pub range: i64,
    /// The offset in nanoseconds; 0 when absent, negative allowed.
    pub offset: i64,
    pub unwrap: Option<Unwrap>,
    pub span: Span,
}

/// A metric query.
#[derive(Clone, Debug, PartialEq)]
pub enum SampleExpr {
    RangeAggregation(Box<RangeAggregation>),
    VectorAggregation(Box<VectorAggregation>),
    BinaryOp(Box<BinaryOp>),
    Literal(Literal),
    Vector(VectorExpr),
    LabelReplace(Box<LabelReplace>),
}

impl SampleExpr {
    pub fn span(&self) -> Span {
        match self {
            SampleExpr::RangeAggregation(e) => e.span,
            SampleExpr::VectorAggregation(e) => e.span,
            SampleExpr::BinaryOp(e) => e.span,
            SampleExpr::Literal(e) => e.span,
            SampleExpr::Vector(e) => e.span,
            SampleExpr::LabelReplace(e) => e.span,
        }
    }

    /// Pre-order walk over this expression and its sub-expressions.
    /// Iterative: chains make tall trees.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a SampleExpr)) {
        let mut todo = vec![self];
        while let Some(e) = todo.pop() {
            f(e);
            match e {
                SampleExpr::VectorAggregation(e) => todo.push(&e.inner),
                SampleExpr::BinaryOp(e) => {
                    todo.push(&e.rhs);
                    todo.push(&e.lhs);
                }
                SampleExpr::LabelReplace(e) => todo.push(&e.inner),
                SampleExpr::RangeAggregation(_)
                | SampleExpr::Literal(_)
                | SampleExpr::Vector(_) => {}
            }
        }
    }

    /// The range selectors the query reads, in query order.
    pub fn log_ranges(&self) -> Vec<&LogRange> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let SampleExpr::RangeAggregation(r) = e {
                out.push(&r.range);
            }
        });
        out
    }

    /// The log selectors (with their pipelines) the query reads, in query
    /// order: one per range aggregation.
    pub fn selectors(&self) -> Vec<&LogExpr> {
        self.log_ranges().into_iter().map(|r| &r.log).collect()
    }

    /// Loki's `MatcherGroups`: each selector's matchers with its window.
    pub fn matcher_groups(&self) -> Vec<MatcherGroup<'_>> {
        self.log_ranges()
            .into_iter()
            .map(|r| MatcherGroup {
                matchers: r.log.matchers(),
                range: r.range,
                offset: r.offset,
            })
            .collect()
    }

    /// Whether the expression is a (folded) number.
    pub fn is_literal(&self) -> bool {
        matches!(self, SampleExpr::Literal(_))
    }
}

/// The matchers of one range selector and the time it reads.
#[derive(Clone, Debug, PartialEq)]
pub struct MatcherGroup<'a> {
    pub matchers: &'a [Matcher],
    pub range: i64,
    pub offset: i64,
}

/// `count_over_time({...}[5m])`, `quantile_over_time(0.99, ...) by (x)`.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeAggregation {
    pub op: RangeOp,
    /// φ of `quantile_over_time` (required there, absent elsewhere).
    pub param: Option<f64>,
    pub range: LogRange,
    /// Written after the closing parenthesis; only for the operations in
    /// [`RangeOp::allows_grouping`]. `by ()` is `Some` with no labels.
    pub grouping: Option<Grouping>,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RangeOp {
    CountOverTime,
    Rate,
    RateCounter,
    BytesOverTime,
    BytesRate,
    AvgOverTime,
    SumOverTime,
    MinOverTime,
    MaxOverTime,
    StdvarOverTime,
    StddevOverTime,
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
    AbsentOverTime,
}

impl RangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            RangeOp::CountOverTime => "count_over_time",
            RangeOp::Rate => "rate",
            RangeOp::RateCounter => "rate_counter",
            RangeOp::BytesOverTime => "bytes_over_time",
            RangeOp::BytesRate => "bytes_rate",
            RangeOp::AvgOverTime => "avg_over_time",
            RangeOp::SumOverTime => "sum_over_time",
            RangeOp::MinOverTime => "min_over_time",
            RangeOp::MaxOverTime => "max_over_time",
            RangeOp::StdvarOverTime => "stdvar_over_time",
            RangeOp::StddevOverTime => "stddev_over_time",
            RangeOp::QuantileOverTime => "quantile_over_time",
            RangeOp::FirstOverTime => "first_over_time",
            RangeOp::LastOverTime => "last_over_time",
            RangeOp::AbsentOverTime => "absent_over_time",
        }
    }

    /// Operations that may be written with `| unwrap`.
    pub fn allows_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime | RangeOp::BytesOverTime | RangeOp::BytesRate
        )
    }

    /// Operations that only make sense on unwrapped values.
    pub fn requires_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::Rate
                | RangeOp::AbsentOverTime
        )
    }

    /// Operations that accept `by`/`without` after the parenthesis.
    pub fn allows_grouping(self) -> bool {
        matches!(
            self,
            RangeOp::AvgOverTime
                | RangeOp::StddevOverTime
                | RangeOp::StdvarOverTime
                | RangeOp::QuantileOverTime
                | RangeOp::MaxOverTime
                | RangeOp::MinOverTime
                | RangeOp::FirstOverTime
                | RangeOp::LastOverTime
        )
    }
}

/// `by (a, b)` or `without (a)`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
    pub span: Span,
}

impl Grouping {
    /// `by ()` (or no grouping on a vector aggregation): one output series.
    pub fn is_singleton(&self) -> bool {
        !self.without && self.labels.is_empty()
    }

    /// `without ()`: labels are kept as they are.
    pub fn is_noop(&self) -> bool {
        self.without && self.labels.is_empty()
    }
}

/// `sum by (x) (...)`, `topk(5, ...)`, `sort_desc(...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorAggregation {
    pub op: VectorOp,
    /// k of `topk`/`bottomk`/`approx_topk` (a positive integer).
    pub param: Option<i64>,
    pub inner: SampleExpr,
    /// `by ()` when none was written (as Loki does).
    pub grouping: Grouping,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum VectorOp {
    Sum,
    Avg,
    Count,
    Max,
    Min,
    Stddev,
    Stdvar,
    Bottomk,
    Topk,
    Sort,
    SortDesc,
    ApproxTopk,
}

impl VectorOp {
    pub fn as_str(self) -> &'static str {
        match self {
            VectorOp::Sum => "sum",
            VectorOp::Avg => "avg",
            VectorOp::Count => "count",
            VectorOp::Max => "max",
            VectorOp::Min => "min",
            VectorOp::Stddev => "stddev",
            VectorOp::Stdvar => "stdvar",
            VectorOp::Bottomk => "bottomk",
            VectorOp::Topk => "topk",
            VectorOp::Sort => "sort",
            VectorOp::SortDesc => "sort_desc",
            VectorOp::ApproxTopk => "approx_topk",
        }
    }

    /// Operations written `op(k, expr)`.
    pub fn takes_param(self) -> bool {
        matches!(
            self,
            VectorOp::Topk | VectorOp::Bottomk | VectorOp::ApproxTopk
        )
    }
}

/// `lhs <op> [bool] [on|ignoring (...)] [group_left|group_right (...)] rhs`.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryOp {
    pub op: BinOp,
    /// `bool`: comparisons return 0/1 instead of filtering.
    pub return_bool: bool,
    pub matching: VectorMatching,
    pub lhs: SampleExpr,
    pub rhs: SampleExpr,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Or,
    And,
    Unless,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Unless => "unless",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Eq => "==",
            BinOp::Neq => "!=",
            BinOp::Gt => ">",
            BinOp::Gte => ">=",
            BinOp::Lt => "<",
            BinOp::Lte => "<=",
        }
    }

    /// Binding strength, loosest first: `or` < `and unless` < comparisons <
    /// `+ -` < `* / %` < `^`.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Neq | BinOp::Gt | BinOp::Gte | BinOp::Lt | BinOp::Lte => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    /// `^` is the only right-associative operator.
    pub fn is_right_associative(self) -> bool {
        self == BinOp::Pow
    }

    /// `and`, `or`, `unless`: vector-to-vector only.
    pub fn is_set_op(self) -> bool {
        matches!(self, BinOp::Or | BinOp::And | BinOp::Unless)
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Neq | BinOp::Gt | BinOp::Gte | BinOp::Lt | BinOp::Lte
        )
    }

    /// Loki's `MergeBinOp` on two scalars with `filter = false` (used to fold
    /// literals): comparisons give 0 or 1, division and modulo by zero give
    /// NaN. Set operators are never folded and give `None`.
    pub fn apply(self, l: f64, r: f64) -> Option<f64> {
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        Some(match self {
            BinOp::Add => l + r,
            BinOp::Sub => l - r,
            BinOp::Mul => l * r,
            BinOp::Div if r == 0.0 => f64::NAN,
            BinOp::Div => l / r,
            BinOp::Mod if r == 0.0 => f64::NAN,
            BinOp::Mod => l % r,
            BinOp::Pow => l.powf(r),
            BinOp::Eq => b(l == r),
            BinOp::Neq => b(l != r),
            BinOp::Gt => b(l > r),
            BinOp::Gte => b(l >= r),
            BinOp::Lt => b(l < r),
            BinOp::Lte => b(l <= r),
            BinOp::Or | BinOp::And | BinOp::Unless => return None,
        })
    }
}

/// How the two sides of a binary operation are paired.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct VectorMatching {
    /// `on (labels)` rather than `ignoring (labels)`.
    pub on: bool,
    /// The `on`/`ignoring` labels. `ignoring ()` is the default matching.
    pub labels: Vec<String>,
    pub card: Cardinality,
    /// The `group_left (...)`/`group_right (...)` labels.
    pub include: Vec<String>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Cardinality {
    #[default]
    OneToOne,
    /// `group_left`
    ManyToOne,
    /// `group_right`
    OneToMany,
}

/// A number. Equality is bitwise (so `NaN == NaN` and `-0 != 0`).
#[derive(Clone, Debug)]
pub struct Literal {
    pub value: f64,
    pub span: Span,
}

impl PartialEq for Literal {
    fn eq(&self, other: &Literal) -> bool {
        (self.value.is_nan() && other.value.is_nan())
            || self.value.to_bits() == other.value.to_bits()
    }
}

/// `vector(1)`: a label-less series.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorExpr {
    pub value: f64,
    pub span: Span,
}

/// `label_replace(inner, "dst", "replacement", "src", "regex")`; the regex is
/// anchored at evaluation (`^(?:regex)$`).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelReplace {
    pub inner: SampleExpr,
    pub dst: String,
    pub replacement: String,
    pub src: String,
    pub regex: String,
    pub span: Span,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;

    #[test]
    fn spans_never_affect_equality() {
        let a = Literal {
            value: 1.0,
            span: Span::new(0, 1),
        };
        let b = Literal {
            value: 1.0,
            span: Span::new(5, 9),
        };
        assert_eq!(a, b);
        assert!(!a.span.same_position(b.span));
        assert_ne!(
            a,
            Literal {
                value: 2.0,
                span: Span::new(0, 1)
            }
        );
        let nan = Literal {
            value: f64::NAN,
            span: Span::default(),
        };
        assert_eq!(nan.clone(), nan);
        assert_ne!(
            Literal {
                value: -0.0,
                span: Span::default()
            },
            Literal {
                value: 0.0,
                span: Span::default()
            }
        );
    }

    #[test]
    fn folding_matches_loki_merge_bin_op() {
        assert_eq!(BinOp::Add.apply(1.0, 2.0), Some(3.0));
        assert!(BinOp::Div.apply(1.0, 0.0).is_some_and(f64::is_nan));
        assert!(BinOp::Mod.apply(1.0, 0.0).is_some_and(f64::is_nan));
        assert_eq!(BinOp::Mod.apply(-7.0, 3.0), Some(-1.0));
        assert_eq!(BinOp::Gt.apply(1.0, 2.0), Some(0.0));
        assert_eq!(BinOp::Lte.apply(1.0, 1.0), Some(1.0));
        assert_eq!(BinOp::Pow.apply(2.0, 10.0), Some(1024.0));
        assert_eq!(BinOp::Or.apply(1.0, 1.0), None);
    }

    #[test]
    fn range_op_rules() {
        assert!(RangeOp::Rate.allows_unwrap() && !RangeOp::Rate.requires_unwrap());
        assert!(!RangeOp::CountOverTime.allows_unwrap());
        assert!(RangeOp::SumOverTime.requires_unwrap());
        assert!(RangeOp::QuantileOverTime.allows_grouping());
        assert!(!RangeOp::SumOverTime.allows_grouping());
    }

    #[test]
    fn helpers_find_matchers_and_filters() {
        let m = Matcher::new("app", MatchOp::Eq, "api").unwrap();
        let log = LogExpr {
            selector: Selector {
                matchers: vec![m.clone()],
                matcher_spans: vec![Span::default()],
                span: Span::default(),
            },
            pipeline: vec![Stage::LineFilter(LineFilter {
                op: LineFilterOp::Contains,
                values: vec![LineFilterValue {
                    value: String::new(),
                    ip: false,
                    span: Span::default(),
                }],
                span: Span::default(),
            })],
            span: Span::default(),
        };
        assert_eq!(log.matchers(), &[m]);
        assert_eq!(log.line_filters().count(), 1);
        assert!(!log.has_filter(), "an empty |= filters nothing");
        let expr = Expr::Log(log);
        assert!(expr.is_log());
        assert_eq!(expr.line_filters().len(), 1);
    }
}
