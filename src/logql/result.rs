//! Query results, as the engine returns them and the API encodes them.

use bytes::Bytes;

use crate::model::{Labels, Timestamp};

/// One returned log entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultEntry {
    pub ts: Timestamp,
    pub line: Bytes,
    /// Structured metadata of the entry (categorize-labels only).
    pub structured_metadata: Labels,
    /// Labels extracted by the pipeline (categorize-labels only).
    pub parsed: Labels,
}

/// Entries of one result stream, in the query's direction.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamResult {
    /// Without categorize-labels: stream + metadata + parsed labels. With it:
    /// the indexed stream labels only.
    pub labels: Labels,
    pub entries: Vec<ResultEntry>,
}

/// One series of a range query.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub metric: Labels,
    pub points: Vec<(Timestamp, f64)>,
}

/// One sample of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub metric: Labels,
    pub ts: Timestamp,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum QueryData {
    Streams(Vec<StreamResult>),
    Matrix(Vec<Series>),
    Vector(Vec<Sample>),
    Scalar(Timestamp, f64),
}

/// What the engine measured while answering (the `stats` object).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryStats {
    pub exec_time_secs: f64,
    pub queue_time_secs: f64,
    pub total_entries_returned: u64,
    pub post_filter_lines: u64,
    /// Structured-metadata bytes of the blocks read (names and values):
    /// stored/flushed blocks, then head blocks.
    pub decompressed_structured_metadata_bytes: u64,
    pub head_chunk_structured_metadata_bytes: u64,
    pub head_chunk_bytes: u64,
    pub head_chunk_lines: u64,
    pub decompressed_bytes: u64,
    pub decompressed_lines: u64,
    pub compressed_bytes: u64,
    pub chunks_ref: u64,
    pub chunks_downloaded: u64,
    pub chunk_refs_fetch_time_secs: f64,
    pub chunks_download_time_secs: f64,
    pub total_streams: u64,
    pub total_chunks: u64,
    pub post_filter_chunks: u64,
}

impl QueryStats {
    pub fn merge(&mut self, o: &QueryStats) {
        self.total_entries_returned += o.total_entries_returned;
        self.post_filter_lines += o.post_filter_lines;
        self.decompressed_structured_metadata_bytes += o.decompressed_structured_metadata_bytes;
        self.head_chunk_structured_metadata_bytes += o.head_chunk_structured_metadata_bytes;
        self.head_chunk_bytes += o.head_chunk_bytes;
        self.head_chunk_lines += o.head_chunk_lines;
        self.decompressed_bytes += o.decompressed_bytes;
        self.decompressed_lines += o.decompressed_lines;
        self.compressed_bytes += o.compressed_bytes;
        self.chunks_ref += o.chunks_ref;
        self.chunks_downloaded += o.chunks_downloaded;
        self.chunk_refs_fetch_time_secs += o.chunk_refs_fetch_time_secs;
        self.chunks_download_time_secs += o.chunks_download_time_secs;
        self.total_streams += o.total_streams;
        self.total_chunks += o.total_chunks;
        self.post_filter_chunks += o.post_filter_chunks;
    }
}

/// Summary figures, derived from the chunk counters as Loki's
/// `stats.Result.ComputeSummary` derives them. (lokal has no separate
/// ingester: its counters are the querier's.)
impl QueryStats {
    /// Structured-metadata bytes of every block read, stored and head.
    pub fn structured_metadata_bytes_processed(&self) -> u64 {
        self.decompressed_structured_metadata_bytes + self.head_chunk_structured_metadata_bytes
    }

    /// Decompressed plus head lines.
    pub fn total_lines_processed(&self) -> u64 {
        self.decompressed_lines + self.head_chunk_lines
    }

    /// Decompressed plus head bytes, with their structured-metadata bytes.
    pub fn total_bytes_processed(&self) -> u64 {
        self.decompressed_bytes + self.head_chunk_bytes + self.structured_metadata_bytes_processed()
    }
}

/// A query's full answer.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResponse {
    pub data: QueryData,
    pub stats: QueryStats,
    pub warnings: Vec<String>,
}
