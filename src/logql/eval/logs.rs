//! Log queries: the newest (backward) or oldest (forward) `limit` entries
//! across every matching stream, after the pipeline.
//!
//! Sources are visited in the query's direction, a wave of them in parallel;
//! once `limit` entries are held, a source (or block, or entry) that cannot
//! beat the current cut-off timestamp is skipped without being read. The
//! leading line filters of the pipeline are pushed down into the block
//! reads ([`Prefilter`]): a substring they require is searched over each
//! decoded block's line data once, only the lines holding it are visited,
//! and the pipeline runs the stages after them. An entry's unchanged line
//! is a zero-copy slice of its block.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::build;
use super::scan::{self, InRange, Prefilter, Task};
use super::{Cancel, Engine, QueryError, QueryParams};
use crate::logql::log::{LabelsResult, ParserHints, Pipeline};
use crate::logql::result::{QueryData, QueryResponse, QueryStats, ResultEntry, StreamResult};
use crate::logql::syntax::ast;
use crate::model::{Direction, Labels, Timestamp};
use crate::store::StreamData;

/// An entry that passed the pipeline.
#[derive(Clone, Debug)]
struct Kept {
    ts: Timestamp,
    seq: u64,
    labels: Arc<LabelsResult>,
    line: Bytes,
}

/// Ordering key: larger is "better" (kept first) in the query's direction.
#[derive(Clone, Debug)]
struct Ranked {
    key: (i64, u64),
    entry: Kept,
}

impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key.cmp(&o.key)
    }
}

/// The best `limit` entries seen so far.
struct TopK {
    limit: usize,
    direction: Direction,
    /// Min-heap on the rank: its top is the worst entry kept.
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopK {
    fn new(limit: usize, direction: Direction) -> Self {
        TopK {
            limit,
            direction,
            heap: BinaryHeap::with_capacity(limit.min(1 << 16) + 1),
        }
    }

    /// Rank of a timestamp: newer is better backward, older is better forward.
    fn rank(&self, ts: Timestamp) -> i64 {
        match self.direction {
            Direction::Backward => ts.nanos(),
            Direction::Forward => ts.nanos().saturating_neg(),
        }
    }

    fn full(&self) -> bool {
        self.heap.len() >= self.limit
    }

    /// The rank an entry must beat once full.
    fn cut(&self) -> Option<i64> {
        if self.full() {
            self.heap.peek().map(|r| r.0.key.0)
        } else {
            None
        }
    }

    /// Whether an entry at `ts` could still be kept.
    fn accepts(&self, ts: Timestamp) -> bool {
        self.cut().is_none_or(|c| self.rank(ts) > c)
    }

    fn push(&mut self, entry: Kept) {
        let key = (self.rank(entry.ts), entry.seq);
        if self.full() {
            if self.heap.peek().is_some_and(|w| key <= w.0.key) {
                return;
            }
            self.heap.pop();
        }
        self.heap.push(Reverse(Ranked { key, entry }));
    }

    fn into_entries(self) -> Vec<Kept> {
        let mut v: Vec<Kept> = self.heap.into_iter().map(|r| r.0.entry).collect();
        match self.direction {
            Direction::Backward => v.sort_by(|a, b| b.ts.cmp(&a.ts).then(a.seq.cmp(&b.seq))),
            Direction::Forward => v.sort_by(|a, b| a.ts.cmp(&b.ts).then(a.seq.cmp(&b.seq))),
        }
        v
    }
}

/// Whether any entry of a task can beat rank `cut`.
fn task_may_contribute(task: &Task, direction: Direction, cut: Option<i64>) -> bool {
    match (cut, direction) {
        (None, _) => true,
        (Some(c), Direction::Backward) => task.max.nanos() > c,
        (Some(c), Direction::Forward) => task.min.nanos().saturating_neg() > c,
    }
}

pub(crate) async fn run(
    engine: &Engine,
    p: &QueryParams,
    log: &ast::LogExpr,
    cancel: &Cancel,
) -> Result<QueryResponse, QueryError> {
    let mut stats = QueryStats::default();
    let full = build::pipeline(&log.pipeline, ParserHints::none())?;
    // The leading line filters run on the raw lines, pushed down into the
    // block reads; the pipeline runs the stages after them.
    let prefilter = Prefilter::new(&full.leading_line_filters());
    let pipeline = full.without_leading_line_filters();
    let t0 = Instant::now();
    let streams = engine
        .store
        .select(&p.tenant, log.matchers(), p.start, p.end)
        .await
        .map_err(QueryError::storage)?;
    stats.chunk_refs_fetch_time_secs = t0.elapsed().as_secs_f64();
    stats.total_streams = streams.len() as u64;
    let tasks = scan::tasks(&streams, p.direction);
    stats.chunks_ref = tasks.iter().filter(|t| !t.source.is_head()).count() as u64;
    stats.total_chunks = stats.chunks_ref;

    // With `interval`, entries are thinned before the limit applies, so the
    // cut-off cannot prune: keep everything, then thin (Loki's readStreams).
    let keep = if p.interval > 0 { usize::MAX } else { p.limit };
    let mut top = TopK::new(keep, p.direction);
    let streams = Arc::new(streams);
    let wave = engine.parallelism.max(1) * 2;
    let mut next = 0;
    let mut wave_no = 0u64;
    while next < tasks.len() {
        let cut = top.cut();
        if !task_may_contribute(&tasks[next], p.direction, cut) {
            break;
        }
        let batch: Vec<Task> = tasks[next..(next + wave).min(tasks.len())]
            .iter()
            .filter(|t| task_may_contribute(t, p.direction, cut))
            .cloned()
            .collect();
        next += wave;
        let futs = batch.into_iter().enumerate().map(|(i, task)| {
            let (streams, pipeline, prefilter, cancel) = (
                streams.clone(),
                pipeline.clone(),
                prefilter.clone(),
                cancel.clone(),
            );
            // Unique, ordered tie-breakers: wave, task, entry.
            let seq0 = (wave_no << 48) | ((i as u64) << 32);
            async move {
                let mut st = QueryStats::default();
                let blocks =
                    scan::fetch(&engine.store, &p.tenant, &task, p.start, p.end, &mut st).await?;
                let (start, end, dir, limit) = (p.start, p.end, p.direction, keep);
                tokio::task::spawn_blocking(move || {
                    let _worker = cancel.worker();
                    let kept = process_task(
                        &streams[task.stream],
                        &task,
                        blocks,
                        &pipeline,
                        prefilter.as_ref(),
                        (start, end),
                        dir,
                        limit,
                        cut,
                        seq0,
                        &cancel,
                        &mut st,
                    )?;
                    Ok::<_, QueryError>((kept, st))
                })
                .await
                .map_err(|e| QueryError::Internal(format!("query task failed: {e}")))?
            }
        });
        for res in futures::future::join_all(futs).await {
            let (kept, st) = res?;
            stats.merge(&st);
            for k in kept {
                top.push(k);
            }
        }
        wave_no += 1;
    }

    let mut entries = top.into_entries();
    if p.interval > 0 {
        entries = thin_by_interval(entries, p.interval, p.direction, p.limit);
    }
    stats.total_entries_returned = entries.len() as u64;
    Ok(QueryResponse {
        data: QueryData::Streams(group(entries, p.categorize)),
        stats,
        warnings: Vec::new(),
    })
}

#[allow(clippy::too_many_arguments)]
fn process_task(
    stream: &StreamData,
    task: &Task,
    mut blocks: Vec<crate::store::BlockData>,
    pipeline: &Pipeline,
    prefilter: Option<&Prefilter>,
    (start, end): (Timestamp, Timestamp),
    direction: Direction,
    limit: usize,
    cut: Option<i64>,
    mut seq: u64,
    cancel: &Cancel,
    stats: &mut QueryStats,
) -> Result<Vec<Kept>, QueryError> {
    let mut top = TopK::new(limit, direction);
    let beats_global = |ts: Timestamp, top: &TopK| {
        let r = top.rank(ts);
        cut.is_none_or(|c| r > c) && top.accepts(ts)
    };
    let mut sp = pipeline.for_stream(&stream.labels);
    scan::order_blocks(&mut blocks, direction);
    for data in &blocks {
        let (min, max) = data.bounds();
        let edge = if direction == Direction::Backward {
            max
        } else {
            min
        };
        if !beats_global(edge, &top) {
            continue;
        }
        cancel.check_block()?;
        let InRange { block, lo, hi } =
            scan::decode(data, start, end, task.source.is_head(), stats)?;
        // Only the prefilter's candidates are visited; `decided`: they are
        // known to pass it. Skipping the lines it rules out cannot skip past
        // the cut-off: that only moves when a line is kept, and a block's
        // lines are walked in rank order, so the next candidate fails
        // `beats_global` whenever a skipped line would have. (Lines
        // processed are counted per decoded block, as Loki's summary counts
        // them.)
        let (mut lines, decided) = scan::lines(prefilter, &block, lo, hi);
        let mut visit = |i: usize| -> bool {
            let ts = block.ts(i);
            if !beats_global(ts, &top) {
                return false;
            }
            let line = block.line(i);
            if !decided && prefilter.is_some_and(|f| !f.matches(line)) {
                return true;
            }
            if let Some((out, ())) = sp.process_with(ts, line, block.metadata(i), |_, _| Some(())) {
                stats.post_filter_lines += 1;
                let line = if out.line_changed {
                    Bytes::copy_from_slice(out.line)
                } else {
                    block.line_bytes(i)
                };
                seq += 1;
                top.push(Kept {
                    ts,
                    seq,
                    labels: out.labels,
                    line,
                });
            }
            true
        };
        match direction {
            Direction::Backward => lines.rev().all(&mut visit),
            Direction::Forward => lines.all(&mut visit),
        };
    }
    Ok(top.into_entries())
}

/// Loki's `readStreams` with an interval: one entry per `interval` across
/// the result, at most `limit` of them.
fn thin_by_interval(
    entries: Vec<Kept>,
    interval: i64,
    direction: Direction,
    limit: usize,
) -> Vec<Kept> {
    let mut out = Vec::new();
    let mut last: Option<Timestamp> = None;
    for e in entries {
        if out.len() >= limit {
            break;
        }
        let keep = match (last, direction) {
            (None, _) => true,
            (Some(l), Direction::Forward) => e.ts >= l.saturating_add_nanos(interval),
            (Some(l), Direction::Backward) => e.ts <= l.saturating_sub_nanos(interval),
        };
        if keep {
            last = Some(e.ts);
            out.push(e);
        }
    }
    out
}

/// Groups entries (already in direction order) into result streams.
fn group(entries: Vec<Kept>, categorize: bool) -> Vec<StreamResult> {
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut out: Vec<StreamResult> = Vec::new();
    for e in entries {
        let key_labels: &Labels = if categorize {
            e.labels.stream()
        } else {
            e.labels.labels()
        };
        let key = if categorize {
            xxhash_rust::xxh3::xxh3_64(e.labels.stream().canonical().as_bytes())
        } else {
            e.labels.hash()
        };
        let slot = *index.entry(key).or_insert_with(|| {
            out.push(StreamResult {
                labels: key_labels.clone(),
                entries: Vec::new(),
            });
            out.len() - 1
        });
        let (sm, parsed) = if categorize {
            (
                e.labels.structured_metadata().clone(),
                e.labels.parsed().clone(),
            )
        } else {
            (Labels::empty(), Labels::empty())
        };
        out[slot].entries.push(ResultEntry {
            ts: e.ts,
            line: e.line,
            structured_metadata: sm,
            parsed,
        });
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}
