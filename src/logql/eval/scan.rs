//! Reading a query's sources: which blocks to fetch, decoding them off the
//! async threads, and walking their entries in a direction and time range.
//!
//! A *task* is one source of one stream (an open head block, a sealed block,
//! a pending chunk or a stored chunk). Tasks are fetched asynchronously and
//! processed on blocking threads, several at a time.

use std::sync::Arc;
use std::time::Instant;

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
