//! Reading a query's sources: which blocks to fetch, decoding them off the
//! async threads, and walking their entries in a direction and time range.
//!
//! A *task* is one source of one stream (an open head block, a sealed block,
//! a pending chunk or a stored chunk). Tasks are fetched asynchronously and
//! processed on blocking threads, several at a time.

use std::sync::Arc;
use std::time::Instant;

use memchr::memmem;

use crate::logql::log::LineFilter;
use crate::logql::result::QueryStats;
use crate::model::{Direction, TenantId, Timestamp};
use crate::store::chunk::DecodedBlock;
use crate::store::{BlockData, Source, Store, StreamData};

use super::QueryError;

/// One source of one stream.
#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub stream: usize,
    pub source: Source,
    pub min: Timestamp,
    pub max: Timestamp,
}

/// Every (stream, source) pair, ordered for `direction`: newest data first
/// for backward, oldest first for forward.
pub(crate) fn tasks(streams: &[StreamData], direction: Direction) -> Vec<Task> {
    let mut out: Vec<Task> = streams
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.sources.iter().map(move |src| {
                let (min, max) = src.bounds();
                Task {
                    stream: i,
                    source: src.clone(),
                    min,
                    max,
                }
            })
        })
        .collect();
    match direction {
        Direction::Backward => out.sort_by_key(|t| std::cmp::Reverse(t.max)),
        Direction::Forward => out.sort_by_key(|a| a.min),
    }
    out
}

/// The blocks of a task overlapping `[start, end)`, fetched.
pub(crate) async fn fetch(
    store: &Store,
    tenant: &TenantId,
    task: &Task,
    start: Timestamp,
    end: Timestamp,
    stats: &mut QueryStats,
) -> Result<Vec<BlockData>, QueryError> {
    let t0 = Instant::now();
    let blocks = store
        .blocks(tenant, &task.source, start, end)
        .await
        .map_err(QueryError::storage)?;
    if matches!(task.source, Source::Stored(_)) {
        stats.chunks_downloaded += 1;
        stats.chunks_download_time_secs += t0.elapsed().as_secs_f64();
    }
    Ok(blocks)
}

/// A decoded block with the index range `[lo, hi)` of its entries inside the
/// query's time range.
pub(crate) struct InRange {
    pub block: Arc<DecodedBlock>,
    pub lo: usize,
    pub hi: usize,
}

/// Decodes a block (blocking) and bounds it to `[start, end)`; counts stats.
pub(crate) fn decode(
    data: &BlockData,
    start: Timestamp,
    end: Timestamp,
    head: bool,
    stats: &mut QueryStats,
) -> Result<InRange, QueryError> {
    let block = data.decode().map_err(QueryError::storage)?;
    let (lo, hi) = (block.lower_bound(start), block.lower_bound(end));
    let bytes = block.lines_data().len() as u64;
    let metadata_bytes = block.metadata_bytes();
    if head {
        stats.head_chunk_bytes += bytes;
        stats.head_chunk_lines += block.len() as u64;
        stats.head_chunk_structured_metadata_bytes += metadata_bytes;
    } else {
        stats.decompressed_bytes += bytes;
        stats.decompressed_lines += block.len() as u64;
        stats.decompressed_structured_metadata_bytes += metadata_bytes;
        if let BlockData::Compressed { data, .. } = data {
            stats.compressed_bytes += data.len() as u64;
        }
    }
    Ok(InRange { block, lo, hi })
}

/// Blocks ordered for a direction: by max descending (backward) or min
/// ascending (forward).
pub(crate) fn order_blocks(blocks: &mut [BlockData], direction: Direction) {
    match direction {
        Direction::Backward => blocks.sort_by_key(|b| std::cmp::Reverse(b.bounds().1)),
        Direction::Forward => blocks.sort_by_key(|a| a.bounds().0),
    }
}

/// How a [`Prefilter`] searches a whole block.
#[derive(Clone, Debug)]
enum Needle {
    /// A case-sensitive substring.
    Exact(Box<memmem::Finder<'static>>),
    /// A lower-cased ASCII substring matched ignoring ASCII case; exact on
    /// blocks that are all ASCII (Go's `ToLower` maps a few non-ASCII
    /// characters to ASCII letters, e.g. the Kelvin sign to `k`).
    AsciiFold(Vec<u8>),
}

/// The leading line filters of a pipeline, pushed down into block reads:
/// they run before any parsing, and when they require a substring, one
/// search over a decompressed block's line data finds the only lines worth
/// looking at (none: the block is skipped without visiting its lines).
#[derive(Clone, Debug)]
pub(crate) struct Prefilter {
    filter: LineFilter,
    needle: Option<Needle>,
    /// The needle alone decides: a line containing it passes the filter.
    exact: bool,
}

/// The lines of a block worth visiting for a [`Prefilter`].
pub(crate) enum Candidates {
    /// Every line (no block-wide search applies).
    All,
    /// Only these, ascending; `decided` when they are known to pass.
    Some { lines: Vec<usize>, decided: bool },
}

/// The entries of a block a reader visits: a range, or the candidates of a
/// prefilter.
pub(crate) enum Lines {
    Range(std::ops::Range<usize>),
    List(std::vec::IntoIter<usize>),
}

impl Iterator for Lines {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            Lines::Range(r) => r.next(),
            Lines::List(l) => l.next(),
        }
    }
}

impl DoubleEndedIterator for Lines {
    fn next_back(&mut self) -> Option<usize> {
        match self {
            Lines::Range(r) => r.next_back(),
            Lines::List(l) => l.next_back(),
        }
    }
}

/// The entries of `lo..hi` worth visiting for `prefilter`, ascending, and
/// whether each of them is known to pass it (no line check left to do).
pub(crate) fn lines(
    prefilter: Option<&Prefilter>,
    block: &DecodedBlock,
    lo: usize,
    hi: usize,
) -> (Lines, bool) {
    match prefilter.map(|p| p.candidates(block, lo, hi)) {
        None => (Lines::Range(lo..hi), true),
        Some(Candidates::All) => (Lines::Range(lo..hi), false),
        Some(Candidates::Some { lines, decided }) => (Lines::List(lines.into_iter()), decided),
    }
}

impl Prefilter {
    /// The conjunction of `filters`; `None` when there is nothing to check.
    pub(crate) fn new(filters: &[&LineFilter]) -> Option<Prefilter> {
        let filter = filters
            .iter()
            .map(|f| (*f).clone())
            .reduce(LineFilter::and)?;
        if filter.is_noop() {
            return None;
        }
        let (needle, exact) = if let Some(n) = filter.as_contains() {
            (
                Some(Needle::Exact(Box::new(memmem::Finder::new(n).into_owned()))),
                true,
            )
        } else if let Some(n) = filter.as_contains_fold().filter(|n| n.is_ascii()) {
            (Some(Needle::AsciiFold(n.to_vec())), true)
        } else {
            // Every matching line contains each required literal: search
            // the longest (usually the rarest).
            let longest = filter
                .required_literals()
                .into_iter()
                .max_by_key(Vec::len)
                .filter(|l| !l.is_empty());
            let needle =
                longest.map(|l| Needle::Exact(Box::new(memmem::Finder::new(&l).into_owned())));
            (needle, false)
        };
        Some(Prefilter {
            filter,
            needle,
            exact,
        })
    }

    /// Whether `line` passes the filters.
    pub(crate) fn matches(&self, line: &[u8]) -> bool {
        self.filter.matches(line)
    }

    /// The entries of `lo..hi` whose lines may pass: one substring search
    /// over their line data, jumping from each hit to the end of its line.
    pub(crate) fn candidates(&self, block: &DecodedBlock, lo: usize, hi: usize) -> Candidates {
        type Find<'a> = Box<dyn Fn(&[u8]) -> Option<usize> + 'a>;
        let (find, len): (Find<'_>, usize) = match &self.needle {
            None => return Candidates::All,
            Some(Needle::Exact(f)) => (Box::new(|hay| f.find(hay)), f.needle().len()),
            Some(Needle::AsciiFold(n)) => {
                let offsets = block.line_offsets();
                if !block.lines_data()[offsets[lo]..offsets[hi]].is_ascii() {
                    return Candidates::All;
                }
                (Box::new(|hay| find_ascii_fold(hay, n)), n.len())
            }
        };
        let offsets = block.line_offsets();
        let data = block.lines_data();
        let (mut from, stop) = (offsets[lo], offsets[hi]);
        let mut lines = Vec::new();
        while from < stop {
            let Some(at) = find(&data[from..stop]) else {
                break;
            };
            let hit = from + at;
            let i = block.entry_at_offset(hit);
            let end = offsets[i + 1];
            // A hit running into the next line is no match; no later match
            // can start and end inside line `i` either.
            if hit + len <= end {
                lines.push(i);
            }
            from = end;
        }
        Candidates::Some {
            lines,
            decided: self.exact,
        }
    }
}

/// The first position of `needle` (lower-case ASCII) in `hay`, ignoring
/// ASCII case.
fn find_ascii_fold(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let mut from = 0;
    while let Some(p) = memchr::memchr2(lower, upper, hay.get(from..)?) {
        let at = from + p;
        if hay
            .get(at..at + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
        {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::log::LineFilterOp;
    use crate::store::chunk::HeadBlock;

    fn block(lines: &[&str]) -> DecodedBlock {
        let mut b = HeadBlock::new();
        for (i, l) in lines.iter().enumerate() {
            b.push(Timestamp::from_nanos(i as i64 + 1), l.as_bytes(), &[]);
        }
        b.snapshot()
    }

    fn filter(op: LineFilterOp, v: &str) -> LineFilter {
        LineFilter::new(op, v).unwrap()
    }

    /// The candidates are exactly the lines passing the filter when the
    /// needle decides, and a superset otherwise; matches across two lines
    /// do not count.
    #[test]
    fn candidates_agree_with_the_filter() {
        let lines = ["ab", "cx", "xab", "", "ERROR here", "error", "aab", "ba"];
        let b = block(&lines);
        let cases = [
            (vec![filter(LineFilterOp::Contains, "ab")], true),
            (vec![filter(LineFilterOp::Contains, "bc")], true),
            (vec![filter(LineFilterOp::Regex, "(?i)error")], true),
            (vec![filter(LineFilterOp::Regex, "a.b")], false),
            (
                vec![
                    filter(LineFilterOp::Contains, "a"),
                    filter(LineFilterOp::Contains, "ab"),
                ],
                false,
            ),
            (
                vec![
                    filter(LineFilterOp::Contains, "ab"),
                    filter(LineFilterOp::NotContains, "x"),
                ],
                false,
            ),
        ];
        for (filters, exact) in cases {
            let refs: Vec<&LineFilter> = filters.iter().collect();
            let p = Prefilter::new(&refs).unwrap();
            for (lo, hi) in [(0, lines.len()), (1, 5), (3, 3), (2, 7)] {
                let passing: Vec<usize> = (lo..hi).filter(|&i| p.matches(b.line(i))).collect();
                match p.candidates(&b, lo, hi) {
                    Candidates::All => assert!(!exact),
                    Candidates::Some { lines, decided } => {
                        assert_eq!(decided, exact);
                        if exact {
                            assert_eq!(lines, passing, "{lo}..{hi}");
                        } else {
                            assert!(passing.iter().all(|i| lines.contains(i)));
                        }
                    }
                }
            }
        }
        // `|~ "(?i)k"` on a block that is not all ASCII: no block search.
        let b = block(&["\u{212A}", "x"]);
        let f = filter(LineFilterOp::Regex, "(?i)k");
        let p = Prefilter::new(&[&f]).unwrap();
        assert!(matches!(p.candidates(&b, 0, 2), Candidates::All));
    }
}
