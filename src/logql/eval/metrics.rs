//! Metric queries: range aggregations over samples extracted from log lines,
//! then vector aggregations, binary operators and functions, step by step.
//!
//! Steps follow Loki's query frontend: `start` rounded down and `end` rounded
//! up to multiples of `step` since the epoch. A range aggregation at step `t`
//! covers `(t - offset - range, t - offset]`. Sample extraction follows
//! Loki's extractors: parser hints (a query that needs no labels does not
//! run its parsers), the grouping of an enclosing `sum` pushed down into the
//! extractor, `unwrap` conversions, and the rule that a sample still carrying
//! `__error__` fails the query.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use super::build;
use super::functions::{self, Point, RangeOp};
use super::scan::{self, InRange, Prefilter, Task};
use super::{Cancel, Engine, QueryError, QueryParams};
use crate::logql::log::{self, ParserHints, Pipeline};
use crate::logql::result::{QueryData, QueryResponse, QueryStats, Sample, Series};
use crate::logql::syntax::ast;
use crate::model::matcher::go_regex;
use crate::model::{Direction, Label, Labels, MatchOp, Timestamp};
use crate::store::StreamData;

/// One series evaluated at every step (`None`: no value at that step).
#[derive(Clone, Debug)]
struct Row {
    labels: Labels,
    points: Vec<Option<f64>>,
}

#[derive(Clone, Debug)]
enum Value {
    Scalar(f64),
    Vector(Vec<Row>),
}

/// The steps of a query, in nanoseconds.
pub(crate) fn steps(p: &QueryParams) -> Vec<i64> {
    if p.instant {
        return vec![p.start.nanos()];
    }
    let step = p.step.max(1);
    let first = p.start.nanos().div_euclid(step) * step;
    let last = {
        let e = p.end.nanos();
        let f = e.div_euclid(step) * step;
        if f == e { f } else { f + step }
    };
    let mut v = Vec::with_capacity(((last - first) / step + 1) as usize);
    let mut t = first;
    while t <= last {
        v.push(t);
        t += step;
    }
    v
}

pub(crate) async fn run(
    engine: &Engine,
    p: &QueryParams,
    expr: &ast::SampleExpr,
    cancel: &Cancel,
) -> Result<QueryResponse, QueryError> {
    let steps = steps(p);
    let mut stats = QueryStats::default();
    let ctx = Ctx { engine, p, cancel };
    let value = eval(&ctx, expr, &steps, None, &mut stats).await?;
    let max_series = engine.overrides.get(p.tenant.as_str()).max_query_series;
    let mut warnings = Vec::new();
    let data = match value {
        Value::Scalar(v) if p.instant => QueryData::Scalar(Timestamp::from_nanos(steps[0]), v),
        Value::Scalar(v) => QueryData::Matrix(vec![Series {
            metric: Labels::empty(),
            points: steps
                .iter()
                .map(|&t| (Timestamp::from_nanos(t), v))
                .collect(),
        }]),
        Value::Vector(mut rows) => {
            rows.retain(|r| r.points.iter().any(Option::is_some));
            if rows.len() > max_series {
                let msg = format!(
                    "maximum number of series ({max_series}) reached for a single query; consider reducing query cardinality by adding more filters to the log stream selector or by using aggregations like sum"
                );
                if !p.drilldown {
                    return Err(QueryError::BadRequest(msg));
                }
                rows.truncate(max_series);
                warnings.push(msg);
            }
            if p.instant {
                let order = top_level_order(expr);
                let mut samples: Vec<Sample> = rows
                    .into_iter()
                    .filter_map(|r| {
                        r.points[0].map(|v| Sample {
                            metric: r.labels,
                            ts: Timestamp::from_nanos(steps[0]),
                            value: v,
                        })
                    })
                    .collect();
                if order == Order::Labels {
                    samples.sort_by(|a, b| a.metric.cmp(&b.metric));
                }
                QueryData::Vector(samples)
            } else {
                let mut series: Vec<Series> = rows
                    .into_iter()
                    .map(|r| Series {
                        metric: r.labels,
                        points: steps
                            .iter()
                            .zip(r.points)
                            .filter_map(|(&t, v)| v.map(|v| (Timestamp::from_nanos(t), v)))
                            .collect(),
                    })
                    .collect();
                series.sort_by(|a, b| a.metric.cmp(&b.metric));
                QueryData::Matrix(series)
            }
        }
    };
    // Loki's `resultLength`: samples of a matrix, a vector's length, 0 for
    // a scalar.
    stats.total_entries_returned = match &data {
        QueryData::Matrix(series) => series.iter().map(|s| s.points.len() as u64).sum(),
        QueryData::Vector(samples) => samples.len() as u64,
        QueryData::Scalar(..) | QueryData::Streams(_) => 0,
    };
    Ok(QueryResponse {
        data,
        stats,
        warnings,
    })
}

#[derive(PartialEq, Eq)]
enum Order {
    Labels,
    /// Keep the evaluator's order (sort, sort_desc, topk, bottomk).
    AsComputed,
}

fn top_level_order(expr: &ast::SampleExpr) -> Order {
    match expr {
        ast::SampleExpr::VectorAggregation(v)
            if matches!(
                v.op,
                ast::VectorOp::Sort
                    | ast::VectorOp::SortDesc
                    | ast::VectorOp::Topk
                    | ast::VectorOp::Bottomk
            ) =>
        {
            Order::AsComputed
        }
        _ => Order::Labels,
    }
}

/// A grouping pushed down from an enclosing `sum` into an extractor.
#[derive(Clone, Debug)]
struct Override {
    groups: Vec<String>,
    without: bool,
}

/// What every node of a metric query's evaluation reads.
struct Ctx<'a> {
    engine: &'a Engine,
    p: &'a QueryParams,
    cancel: &'a Cancel,
}

fn eval<'a>(
    ctx: &'a Ctx<'a>,
    expr: &'a ast::SampleExpr,
    steps: &'a [i64],
    push_down: Option<Override>,
    stats: &'a mut QueryStats,
) -> futures::future::BoxFuture<'a, Result<Value, QueryError>> {
    Box::pin(async move {
        match expr {
            ast::SampleExpr::Literal(l) => Ok(Value::Scalar(l.value)),
            ast::SampleExpr::Vector(v) => Ok(Value::Vector(vec![Row {
                labels: Labels::empty(),
                points: vec![Some(v.value); steps.len()],
            }])),
            ast::SampleExpr::RangeAggregation(r) => {
                range_aggregation(ctx, r, steps, push_down, stats).await
            }
            ast::SampleExpr::VectorAggregation(v) => {
                // Loki pushes `sum`'s grouping into range aggregations that
                // have none and whose result is additive.
                let down = match &v.inner {
                    ast::SampleExpr::RangeAggregation(r)
                        if v.op == ast::VectorOp::Sum
                            && r.grouping.is_none()
                            && matches!(
                                r.op,
                                ast::RangeOp::BytesOverTime
                                    | ast::RangeOp::BytesRate
                                    | ast::RangeOp::SumOverTime
                                    | ast::RangeOp::Rate
                                    | ast::RangeOp::CountOverTime
                            ) =>
                    {
                        Some(Override {
                            groups: v.grouping.labels.clone(),
                            without: v.grouping.without,
                        })
                    }
                    _ => None,
                };
                let inner = eval(ctx, &v.inner, steps, down, stats).await?;
                vector_aggregation(v, inner, steps.len())
            }
            ast::SampleExpr::BinaryOp(_) => eval_binary_tree(ctx, expr, steps, stats).await,
            ast::SampleExpr::LabelReplace(l) => {
                let inner = eval(ctx, &l.inner, steps, None, stats).await?;
                label_replace(l, inner)
            }
        }
    })
}

/// A tree of binary operations, evaluated left to right with an explicit
/// stack: chains (`a + b + c ...`) make trees up to
/// [`crate::logql::syntax::MAX_EXPR_DEPTH`] tall, and each level of
/// recursion through [`eval`]'s boxed future costs kilobytes of stack.
/// Operands that are not binary operations recurse as usual (their depth is
/// the query's nesting).
async fn eval_binary_tree<'a>(
    ctx: &'a Ctx<'a>,
    expr: &'a ast::SampleExpr,
    steps: &'a [i64],
    stats: &'a mut QueryStats,
) -> Result<Value, QueryError> {
    enum Step<'a> {
        Visit(&'a ast::SampleExpr),
        Apply(&'a ast::BinaryOp),
    }
    let mut todo = vec![Step::Visit(expr)];
    let mut values: Vec<Value> = Vec::new();
    while let Some(step) = todo.pop() {
        match step {
            Step::Visit(ast::SampleExpr::BinaryOp(b)) => {
                todo.push(Step::Apply(b));
                todo.push(Step::Visit(&b.rhs));
                todo.push(Step::Visit(&b.lhs));
            }
            Step::Visit(operand) => values.push(eval(ctx, operand, steps, None, stats).await?),
            Step::Apply(b) => {
                let (Some(rhs), Some(lhs)) = (values.pop(), values.pop()) else {
                    return Err(QueryError::Internal("unbalanced binary operation".into()));
                };
                values.push(binary_op(b, lhs, rhs, steps.len())?);
            }
        }
    }
    values
        .pop()
        .ok_or_else(|| QueryError::Internal("empty binary operation".into()))
}

fn range_op(r: &ast::RangeAggregation) -> RangeOp {
    let unwrapped = r.range.unwrap.is_some();
    match r.op {
        ast::RangeOp::CountOverTime => RangeOp::Count,
        ast::RangeOp::Rate => RangeOp::Rate { unwrapped },
        ast::RangeOp::RateCounter => RangeOp::RateCounter,
        ast::RangeOp::BytesOverTime => RangeOp::Bytes,
        ast::RangeOp::BytesRate => RangeOp::BytesRate,
        ast::RangeOp::AvgOverTime => RangeOp::Avg,
        ast::RangeOp::SumOverTime => RangeOp::Sum,
        ast::RangeOp::MinOverTime => RangeOp::Min,
        ast::RangeOp::MaxOverTime => RangeOp::Max,
        ast::RangeOp::StdvarOverTime => RangeOp::Stdvar,
        ast::RangeOp::StddevOverTime => RangeOp::Stddev,
        ast::RangeOp::QuantileOverTime => RangeOp::Quantile(r.param.unwrap_or(f64::NAN)),
        ast::RangeOp::FirstOverTime => RangeOp::First,
        ast::RangeOp::LastOverTime => RangeOp::Last,
        ast::RangeOp::AbsentOverTime => RangeOp::Absent,
    }
}

/// How an extractor labels its samples (Loki's `GroupedLabels`).
#[derive(Clone, Debug)]
struct Grouper {
    groups: Vec<String>,
    without: bool,
    no_labels: bool,
}

impl Grouper {
    fn apply(&self, labels: &Labels) -> Labels {
        let has_error =
            labels.contains(log::ERROR_LABEL) || labels.contains(log::ERROR_DETAILS_LABEL);
        if has_error {
            return labels.clone();
        }
        if self.no_labels {
            return Labels::empty();
        }
        if self.groups.is_empty() {
            return labels.clone();
        }
        let keep: Vec<Label> = labels
            .iter()
            .filter(|l| self.groups.iter().any(|g| g == &l.name) != self.without)
            .cloned()
            .collect();
        Labels::from_sorted_unchecked(keep)
    }
}

/// The sample-extraction plan of one range aggregation.
#[derive(Clone)]
struct Extractor {
    /// The leading line filters, pushed down into the block reads.
    prefilter: Option<Prefilter>,
    /// The stages after them.
    pipeline: Pipeline,
    post: Pipeline,
    unwrap: Option<(String, Option<ast::UnwrapConversion>)>,
    bytes: bool,
    grouper: Grouper,
}

fn extractor(
    r: &ast::RangeAggregation,
    push_down: Option<Override>,
) -> Result<Extractor, QueryError> {
    let (mut groups, mut without, mut no_labels) = (Vec::new(), false, false);
    if let Some(g) = &r.grouping {
        groups = g.labels.clone();
        without = g.without;
        no_labels = groups.is_empty() && !without;
    }
    if let Some(o) = push_down {
        groups = o.groups;
        without = o.without;
        no_labels = groups.is_empty() && !without;
    }
    let stages = &r.range.log.pipeline;
    let mut required = build::required_labels(stages);
    let unwrap = r.range.unwrap.as_ref();
    let mut post = Pipeline::default();
    if let Some(u) = unwrap {
        post = build::post_filters(&u.post_filters)?;
        for f in &u.post_filters {
            f.for_each_leaf(&mut |leaf| {
                if let Some(l) = leaf.label()
                    && !required.iter().any(|r| r == l)
                {
                    required.push(l.to_string());
                }
            });
        }
    }
    let hints = ParserHints::new(
        &required,
        &groups,
        without,
        no_labels,
        unwrap.map(|u| u.label.as_str()),
    );
    if let Some(u) = unwrap {
        // The unwrapped label leaves the output unless grouping keeps it.
        if groups.is_empty() || without {
            without = true;
            groups.push(u.label.clone());
            no_labels = false;
        }
    }
    let full = build::pipeline(stages, hints)?;
    Ok(Extractor {
        prefilter: Prefilter::new(&full.leading_line_filters()),
        pipeline: full.without_leading_line_filters(),
        post,
        unwrap: unwrap.map(|u| (u.label.clone(), u.conversion)),
        bytes: matches!(r.op, ast::RangeOp::BytesOverTime | ast::RangeOp::BytesRate),
        grouper: Grouper {
            groups,
            without,
            no_labels,
        },
    })
}

/// Samples of one series.
struct SeriesPoints {
    labels: Labels,
    points: Vec<Point>,
}

async fn range_aggregation(
    ctx: &Ctx<'_>,
    r: &ast::RangeAggregation,
    steps: &[i64],
    push_down: Option<Override>,
    stats: &mut QueryStats,
) -> Result<Value, QueryError> {
    let (engine, p) = (ctx.engine, ctx.p);
    let op = range_op(r);
    let ex = extractor(r, push_down)?;
    let (range, offset) = (r.range.range, r.range.offset);
    let (first, last) = (steps[0], steps[steps.len() - 1]);
    // Entries in (first - offset - range, last - offset].
    let start = Timestamp::from_nanos(first - offset - range + 1);
    let end = Timestamp::from_nanos(last - offset + 1);
    let t0 = Instant::now();
    let streams = engine
        .store
        .select(&p.tenant, r.range.log.matchers(), start, end)
        .await
        .map_err(QueryError::storage)?;
    stats.chunk_refs_fetch_time_secs += t0.elapsed().as_secs_f64();
    stats.total_streams += streams.len() as u64;
    let tasks = scan::tasks(&streams, Direction::Forward);
    stats.chunks_ref += tasks.iter().filter(|t| !t.source.is_head()).count() as u64;
    let streams = Arc::new(streams);
    let ex = Arc::new(ex);
    let mut all: HashMap<Labels, Vec<Point>> = HashMap::new();
    let parallel = engine.parallelism.max(1) * 2;
    let max_inner = engine
        .overrides
        .get(p.tenant.as_str())
        .max_query_inner_series;
    for batch in tasks.chunks(parallel) {
        let futs = batch.iter().cloned().map(|task| {
            let (streams, ex, cancel) = (streams.clone(), ex.clone(), ctx.cancel.clone());
            async move {
                let mut st = QueryStats::default();
                let blocks =
                    scan::fetch(&engine.store, &p.tenant, &task, start, end, &mut st).await?;
                tokio::task::spawn_blocking(move || {
                    let _worker = cancel.worker();
                    let series = extract_task(
                        &streams[task.stream],
                        &task,
                        blocks,
                        &ex,
                        (start, end),
                        &cancel,
                        &mut st,
                    )?;
                    Ok::<_, QueryError>((series, st))
                })
                .await
                .map_err(|e| QueryError::Internal(format!("query task failed: {e}")))?
            }
        });
        for res in futures::future::join_all(futs).await {
            let (series, st) = res?;
            stats.merge(&st);
            for s in series {
                all.entry(s.labels).or_default().extend(s.points);
            }
        }
        if max_inner > 0 && all.len() > max_inner {
            return Err(QueryError::BadRequest(format!(
                "maximum number of series ({max_inner}) reached while extracting samples before aggregation (limits_config.max_query_inner_series, a lokal limit protecting memory); add label matchers or raise the limit"
            )));
        }
    }
    // A sample that still carries an error fails the query (Loki's rule).
    for labels in all.keys() {
        if labels.contains(log::ERROR_LABEL)
            && labels.get(log::PRESERVE_ERROR_LABEL) != Some("true")
        {
            return Err(pipeline_error(labels));
        }
    }
    if op == RangeOp::Absent {
        return Ok(absent(r, all, steps, range, offset));
    }
    let mut rows = Vec::with_capacity(all.len());
    for (mut labels, mut points) in all {
        labels.remove(log::PRESERVE_ERROR_LABEL);
        points.sort_by_key(|pt| pt.ts);
        rows.push(Row {
            labels,
            points: windows(op, &points, steps, range, offset),
        });
    }
    Ok(Value::Vector(rows))
}

fn pipeline_error(labels: &Labels) -> QueryError {
    let err = labels.get(log::ERROR_LABEL).unwrap_or("");
    QueryError::BadRequest(format!(
        "pipeline error: '{err}' for series: '{labels}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"{err}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"
    ))
}

/// Values of `op` at every step over sorted points.
fn windows(
    op: RangeOp,
    points: &[Point],
    steps: &[i64],
    range: i64,
    offset: i64,
) -> Vec<Option<f64>> {
    let (mut lo, mut hi) = (0usize, 0usize);
    steps
        .iter()
        .map(|&t| {
            let (from, to) = (t - offset - range, t - offset);
            while hi < points.len() && points[hi].ts <= to {
                hi += 1;
            }
            while lo < hi && points[lo].ts <= from {
                lo += 1;
            }
            // Steps ascend, so both bounds only move forward.
            (hi > lo).then(|| functions::range_value(op, &points[lo..hi], range, to))
        })
        .collect()
}

/// `absent_over_time`: 1 where no series has a sample in the window, with
/// the labels of the selector's equality matchers.
fn absent(
    r: &ast::RangeAggregation,
    all: HashMap<Labels, Vec<Point>>,
    steps: &[i64],
    range: i64,
    offset: i64,
) -> Value {
    let mut ts: Vec<i64> = all.into_values().flatten().map(|p| p.ts).collect();
    ts.sort_unstable();
    let points: Vec<Option<f64>> = steps
        .iter()
        .map(|&t| {
            let (from, to) = (t - offset - range, t - offset);
            let i = ts.partition_point(|&x| x <= from);
            let present = i < ts.len() && ts[i] <= to;
            (!present).then_some(1.0)
        })
        .collect();
    let mut pairs: BTreeMap<String, String> = BTreeMap::new();
    let mut dup: Vec<String> = Vec::new();
    for m in r.range.log.matchers() {
        if m.op == MatchOp::Eq && pairs.insert(m.name.clone(), m.value.clone()).is_some() {
            dup.push(m.name.clone());
        }
    }
    for d in dup {
        pairs.remove(&d);
    }
    let labels = Labels::from_pairs(pairs).unwrap_or_default();
    Value::Vector(vec![Row { labels, points }])
}

/// Extracts the samples of one task (blocking).
fn extract_task(
    stream: &StreamData,
    task: &Task,
    blocks: Vec<crate::store::BlockData>,
    ex: &Extractor,
    (start, end): (Timestamp, Timestamp),
    cancel: &Cancel,
    stats: &mut QueryStats,
) -> Result<Vec<SeriesPoints>, QueryError> {
    let mut sp = ex.pipeline.for_stream(&stream.labels);
    let mut post: Vec<Box<dyn log::Stage>> = ex.post.stages().to_vec();
    let mut post_scratch = log::LineScratch::default();
    let mut by_hash: HashMap<u64, usize> = HashMap::new();
    let mut out: Vec<SeriesPoints> = Vec::new();
    for data in &blocks {
        cancel.check_block()?;
        let InRange { block, lo, hi } =
            scan::decode(data, start, end, task.source.is_head(), stats)?;
        // Only the lines the prefilter cannot rule out are visited.
        let (lines, decided) = scan::lines(ex.prefilter.as_ref(), &block, lo, hi);
        for i in lines {
            let ts = block.ts(i);
            let line = block.line(i);
            if !decided && ex.prefilter.as_ref().is_some_and(|p| !p.matches(line)) {
                continue;
            }
            // The value is computed at the end of the pipeline, where the
            // unwrapped label and the post-unwrap filters see the labels.
            let extracted = sp.process_with(ts, line, block.metadata(i), |b, final_line| {
                let value = match &ex.unwrap {
                    None if ex.bytes => final_line.len() as f64,
                    None => 1.0,
                    Some((name, conv)) => {
                        let raw = b.get(name).unwrap_or("");
                        if raw.is_empty() {
                            return None;
                        }
                        let (v, err) = convert(raw, *conv);
                        if let Some(e) = err {
                            b.set_error(log::ERR_SAMPLE_EXTRACTION);
                            b.set_error_details(&e);
                        }
                        v
                    }
                };
                let mut buf = log::LineBuf::new(final_line, &mut post_scratch);
                for stage in post.iter_mut() {
                    if !stage.process(ts, &mut buf, b) {
                        return None;
                    }
                }
                Some(value)
            });
            let Some((entry, value)) = extracted else {
                continue;
            };
            stats.post_filter_lines += 1;
            let labels = entry.labels;
            let slot = match by_hash.get(&labels.hash()) {
                Some(&s) => s,
                None => {
                    let grouped = ex.grouper.apply(labels.labels());
                    let s = match out.iter().position(|o| o.labels == grouped) {
                        Some(s) => s,
                        None => {
                            out.push(SeriesPoints {
                                labels: grouped,
                                points: Vec::new(),
                            });
                            out.len() - 1
                        }
                    };
                    by_hash.insert(labels.hash(), s);
                    s
                }
            };
            out[slot].points.push(Point {
                ts: ts.nanos(),
                v: value,
            });
        }
    }
    Ok(out)
}

/// An unwrapped label value as a number (Go's ParseFloat, ParseDuration in
/// seconds, or humanize bytes); the error text on failure.
fn convert(raw: &str, conv: Option<ast::UnwrapConversion>) -> (f64, Option<String>) {
    use crate::logql::log::convert as c;
    match conv {
        None => match c::parse_go_float(raw) {
            Ok(v) => (v, None),
            Err(e) => (0.0, Some(e.to_string())),
        },
        Some(ast::UnwrapConversion::Duration | ast::UnwrapConversion::DurationSeconds) => {
            match c::parse_go_duration(raw) {
                Ok(ns) => (ns as f64 / 1e9, None),
                Err(e) => (0.0, Some(e.to_string())),
            }
        }
        Some(ast::UnwrapConversion::Bytes) => match c::parse_humanize_bytes(raw) {
            Ok(b) => (b as f64, None),
            Err(e) => (0.0, Some(e.to_string())),
        },
    }
}

fn group_labels(labels: &Labels, g: &ast::Grouping) -> Labels {
    let keep: Vec<Label> = labels
        .iter()
        .filter(|l| g.labels.iter().any(|n| n == &l.name) != g.without)
        .cloned()
        .collect();
    Labels::from_sorted_unchecked(keep)
}

fn vector_aggregation(
    v: &ast::VectorAggregation,
    inner: Value,
    nsteps: usize,
) -> Result<Value, QueryError> {
    let rows = match inner {
        Value::Vector(rows) => rows,
        Value::Scalar(_) => {
            return Err(QueryError::BadRequest(
                "vector aggregation over a scalar".into(),
            ));
        }
    };
    match v.op {
        ast::VectorOp::Sort | ast::VectorOp::SortDesc => {
            let mut rows = rows;
            let desc = v.op == ast::VectorOp::SortDesc;
            rows.sort_by(|a, b| {
                let (x, y) = (
                    a.points.first().copied().flatten(),
                    b.points.first().copied().flatten(),
                );
                let o = x.unwrap_or(f64::NAN).total_cmp(&y.unwrap_or(f64::NAN));
                if desc { o.reverse() } else { o }
            });
            Ok(Value::Vector(rows))
        }
        ast::VectorOp::Topk | ast::VectorOp::Bottomk | ast::VectorOp::ApproxTopk => {
            let k = v.param.unwrap_or(0);
            if k <= 0 {
                return Err(QueryError::BadRequest(format!(
                    "invalid parameter {}({k}, ...)",
                    v.op.as_str()
                )));
            }
            let k = k as usize;
            let top = v.op != ast::VectorOp::Bottomk;
            // Group rows, then keep the k best of each group at each step.
            let mut groups: BTreeMap<Labels, Vec<usize>> = BTreeMap::new();
            for (i, r) in rows.iter().enumerate() {
                groups
                    .entry(group_labels(&r.labels, &v.grouping))
                    .or_default()
                    .push(i);
            }
            let mut keep = vec![vec![false; nsteps]; rows.len()];
            let mut order: Vec<usize> = Vec::new();
            for members in groups.values() {
                #[expect(
                    clippy::needless_range_loop,
                    reason = "the step indexes every member's points and `keep`"
                )]
                for s in 0..nsteps {
                    let mut vals: Vec<(usize, f64)> = members
                        .iter()
                        .filter_map(|&i| rows[i].points[s].map(|x| (i, x)))
                        .collect();
                    vals.sort_by(|a, b| {
                        let o = a.1.total_cmp(&b.1);
                        if top { o.reverse() } else { o }
                    });
                    for (i, _) in vals.into_iter().take(k) {
                        keep[i][s] = true;
                        if s == 0 && !order.contains(&i) {
                            order.push(i);
                        }
                    }
                }
            }
            for (i, kept) in keep.iter().enumerate() {
                if !order.contains(&i) && kept.iter().any(|k| *k) {
                    order.push(i);
                }
            }
            let out = order
                .into_iter()
                .map(|i| Row {
                    labels: rows[i].labels.clone(),
                    points: rows[i]
                        .points
                        .iter()
                        .zip(&keep[i])
                        .map(|(p, k)| if *k { *p } else { None })
                        .collect(),
                })
                .collect();
            Ok(Value::Vector(out))
        }
        op => {
            let mut groups: BTreeMap<Labels, Vec<Agg>> = BTreeMap::new();
            for r in &rows {
                let g = groups
                    .entry(group_labels(&r.labels, &v.grouping))
                    .or_insert_with(|| vec![Agg::default(); nsteps]);
                for (s, p) in r.points.iter().enumerate() {
                    if let Some(x) = p {
                        g[s].add(op, *x);
                    }
                }
            }
            Ok(Value::Vector(
                groups
                    .into_iter()
                    .map(|(labels, aggs)| Row {
                        labels,
                        points: aggs.iter().map(|a| a.value(op)).collect(),
                    })
                    .collect(),
            ))
        }
    }
}

/// The running state of one vector aggregation group at one step (Loki's).
#[derive(Clone, Debug, Default)]
struct Agg {
    count: u64,
    value: f64,
    mean: f64,
}

impl Agg {
    fn add(&mut self, op: ast::VectorOp, x: f64) {
        let first = self.count == 0;
        self.count += 1;
        let n = self.count as f64;
        match op {
            ast::VectorOp::Sum => self.value += x,
            ast::VectorOp::Avg => {
                if self.mean.is_infinite() {
                    if x.is_infinite() && (self.mean > 0.0) == (x > 0.0) {
                        return;
                    }
                    if !x.is_infinite() && !x.is_nan() {
                        return;
                    }
                }
                self.mean += x / n - self.mean / n;
            }
            ast::VectorOp::Max if (first || self.value < x || self.value.is_nan()) => {
                self.value = x;
            }
            ast::VectorOp::Min if (first || self.value > x || self.value.is_nan()) => {
                self.value = x;
            }
            ast::VectorOp::Stddev | ast::VectorOp::Stdvar => {
                let delta = x - self.mean;
                self.mean += delta / n;
                self.value += delta * (x - self.mean);
            }
            _ => {}
        }
    }

    fn value(&self, op: ast::VectorOp) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        Some(match op {
            ast::VectorOp::Avg => self.mean,
            ast::VectorOp::Count => self.count as f64,
            ast::VectorOp::Stdvar => self.value / self.count as f64,
            ast::VectorOp::Stddev => (self.value / self.count as f64).sqrt(),
            _ => self.value,
        })
    }
}

/// The labels two samples are matched on.
fn signature(labels: &Labels, m: &ast::VectorMatching) -> Labels {
    let keep: Vec<Label> = labels
        .iter()
        .filter(|l| m.labels.iter().any(|n| n == &l.name) == m.on)
        .cloned()
        .collect();
    Labels::from_sorted_unchecked(keep)
}

fn result_labels(many: &Labels, one: &Labels, m: &ast::VectorMatching) -> Labels {
    let mut out = many.clone();
    match m.card {
        ast::Cardinality::OneToOne => {
            if m.on {
                out = signature(many, m);
            } else {
                for n in &m.labels {
                    out.remove(n);
                }
            }
        }
        _ => {
            for n in &m.include {
                match one.get(n) {
                    Some(v) => out.set(n, v),
                    None => {
                        out.remove(n);
                    }
                }
            }
        }
    }
    out
}

fn binary_op(
    b: &ast::BinaryOp,
    lhs: Value,
    rhs: Value,
    nsteps: usize,
) -> Result<Value, QueryError> {
    let apply = |l: f64, r: f64| -> Option<f64> {
        let v = b.op.apply(l, r)?;
        if b.op.is_comparison() && !b.return_bool {
            // Filter: keep the left value when the comparison holds.
            return (v == 1.0).then_some(l);
        }
        Some(v)
    };
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let v = b.op.apply(l, r).unwrap_or(f64::NAN);
            Ok(Value::Scalar(v))
        }
        (Value::Vector(rows), Value::Scalar(s)) => Ok(Value::Vector(
            rows.into_iter()
                .map(|r| Row {
                    points: r
                        .points
                        .iter()
                        .map(|p| p.and_then(|x| apply(x, s)))
                        .collect(),
                    labels: r.labels,
                })
                .collect(),
        )),
        (Value::Scalar(s), Value::Vector(rows)) => Ok(Value::Vector(
            rows.into_iter()
                .map(|r| Row {
                    points: r
                        .points
                        .iter()
                        .map(|p| {
                            p.and_then(|x| {
                                let v = b.op.apply(s, x)?;
                                if b.op.is_comparison() && !b.return_bool {
                                    (v == 1.0).then_some(x)
                                } else {
                                    Some(v)
                                }
                            })
                        })
                        .collect(),
                    labels: r.labels,
                })
                .collect(),
        )),
        (Value::Vector(l), Value::Vector(r)) => vector_vector(b, l, r, nsteps),
    }
}

fn vector_vector(
    b: &ast::BinaryOp,
    lhs: Vec<Row>,
    rhs: Vec<Row>,
    nsteps: usize,
) -> Result<Value, QueryError> {
    let m = &b.matching;
    if b.op.is_set_op() {
        let rsig: Vec<Labels> = rhs.iter().map(|r| signature(&r.labels, m)).collect();
        let lsig: Vec<Labels> = lhs.iter().map(|r| signature(&r.labels, m)).collect();
        let present = |sigs: &[Labels], rows: &[Row], sig: &Labels, s: usize| {
            sigs.iter()
                .zip(rows)
                .any(|(x, r)| x == sig && r.points[s].is_some())
        };
        let mut out: Vec<Row> = Vec::new();
        match b.op {
            ast::BinOp::And | ast::BinOp::Unless => {
                let want = b.op == ast::BinOp::And;
                for (row, sig) in lhs.iter().zip(&lsig) {
                    let points = (0..nsteps)
                        .map(|s| row.points[s].filter(|_| present(&rsig, &rhs, sig, s) == want))
                        .collect();
                    out.push(Row {
                        labels: row.labels.clone(),
                        points,
                    });
                }
            }
            _ => {
                out.extend(lhs.iter().cloned());
                for (row, sig) in rhs.iter().zip(&rsig) {
                    let points = (0..nsteps)
                        .map(|s| row.points[s].filter(|_| !present(&lsig, &lhs, sig, s)))
                        .collect();
                    out.push(Row {
                        labels: row.labels.clone(),
                        points,
                    });
                }
            }
        }
        return Ok(Value::Vector(merge_rows(out, nsteps)));
    }
    // Arithmetic and comparisons: the "one" side is indexed by signature.
    let (many, one, swapped) = match m.card {
        ast::Cardinality::OneToMany => (rhs, lhs, true),
        _ => (lhs, rhs, false),
    };
    let mut one_by_sig: HashMap<Labels, Vec<usize>> = HashMap::new();
    for (i, r) in one.iter().enumerate() {
        one_by_sig
            .entry(signature(&r.labels, m))
            .or_default()
            .push(i);
    }
    let mut out: BTreeMap<Labels, Vec<Option<f64>>> = BTreeMap::new();
    for row in &many {
        let sig = signature(&row.labels, m);
        let Some(cands) = one_by_sig.get(&sig) else {
            continue;
        };
        for s in 0..nsteps {
            let Some(mv) = row.points[s] else { continue };
            let present: Vec<usize> = cands
                .iter()
                .copied()
                .filter(|&i| one[i].points[s].is_some())
                .collect();
            if present.len() > 1 {
                return Err(QueryError::BadRequest(format!(
                    "found duplicate series for the match group {sig} on the {} hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side",
                    if swapped { "left" } else { "right" }
                )));
            }
            let Some(&oi) = present.first() else { continue };
            let ov = one[oi].points[s].unwrap_or(f64::NAN);
            let (l, r) = if swapped { (ov, mv) } else { (mv, ov) };
            let Some(v) = b.op.apply(l, r) else { continue };
            let value = if b.op.is_comparison() && !b.return_bool {
                if v != 1.0 {
                    continue;
                }
                l
            } else {
                v
            };
            let labels = result_labels(&row.labels, &one[oi].labels, m);
            let slot = out
                .entry(labels.clone())
                .or_insert_with(|| vec![None; nsteps]);
            if slot[s].is_some() && m.card == ast::Cardinality::OneToOne {
                return Err(QueryError::BadRequest(format!(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right) for {labels}"
                )));
            }
            slot[s] = Some(value);
        }
    }
    Ok(Value::Vector(
        out.into_iter()
            .map(|(labels, points)| Row { labels, points })
            .collect(),
    ))
}

/// Rows with the same labels become one series (a range query's series is
/// identified by its labels across steps; the first value at a step wins).
fn merge_rows(rows: Vec<Row>, nsteps: usize) -> Vec<Row> {
    let mut merged: BTreeMap<Labels, Vec<Option<f64>>> = BTreeMap::new();
    for r in rows {
        let slot = merged.entry(r.labels).or_insert_with(|| vec![None; nsteps]);
        for (dst, src) in slot.iter_mut().zip(r.points) {
            if dst.is_none() {
                *dst = src;
            }
        }
    }
    merged
        .into_iter()
        .map(|(labels, points)| Row { labels, points })
        .collect()
}

fn label_replace(l: &ast::LabelReplace, inner: Value) -> Result<Value, QueryError> {
    let Value::Vector(rows) = inner else {
        return Err(QueryError::BadRequest(
            "label_replace needs a vector".into(),
        ));
    };
    let re = go_regex(&l.regex, true).map_err(|e| {
        QueryError::BadRequest(format!(
            "invalid regular expression in label_replace(): {e}"
        ))
    })?;
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    for mut row in rows {
        let src = row.labels.get(&l.src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&src) {
            let mut res = String::new();
            caps.expand(&l.replacement, &mut res);
            if res.is_empty() {
                row.labels.remove(&l.dst);
            } else {
                row.labels.set(&l.dst, &res);
            }
        }
        out.push(row);
    }
    let n = out.first().map_or(0, |r| r.points.len());
    Ok(Value::Vector(merge_rows(out, n)))
}
