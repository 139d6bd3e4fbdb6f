//! `GET /metrics`: Prometheus metrics, negotiated on `Accept` as Loki's
//! `promhttp` handler does: the OpenMetrics text format (what
//! `prometheus-client` writes) when the scraper accepts
//! `application/openmetrics-text`, else the Prometheus text format 0.0.4
//! (`text/plain; version=0.0.4; charset=utf-8`), converted from it line by
//! line ([`to_prometheus_text`]).
//!
//! lokal keeps its counters as atomics where the work happens (the
//! distributor, the store, the WAL, the chunk cache, the index snapshots,
//! the compactor, the tail feed); [`LokalCollector`] reads them at scrape
//! time instead of mirroring them into a second set of metrics. Only the
//! request-duration histograms ([`super::instrument`]) are kept here.
//!
//! Names follow Loki's wherever Loki has the concept (each source is cited
//! next to its metric below); lokal's own are `lokal_*`. Counters are
//! declared without their `_total` suffix and exposed with it, as OpenMetrics
//! requires: a Loki counter whose name lacks `_total`
//! (`loki_compactor_deleted_lines`) is scraped as `..._total`, exactly what
//! Prometheus gets from Loki itself when it negotiates OpenMetrics.
//!
//! This module reads storage and ingest (it sits in `api`, above both);
//! neither knows it exists.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::SharedState;
use super::instrument::HttpMetrics;
use crate::ingest::{Distributor, Reason, TenantIngestCounters};
use crate::store::Store;
use Value::{Counter, Gauge};

/// The OpenMetrics text content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The Prometheus text format's content type (what Loki serves by default).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registry behind `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http: Arc<HttpMetrics>,
}

impl Metrics {
    /// `wal_replay` is how long opening storage (WAL replay included) took.
    pub fn new(store: Arc<Store>, distributor: Arc<Distributor>, wal_replay: Duration) -> Self {
        let http = Arc::new(HttpMetrics::default());
        let mut registry = Registry::default();
        // dskit server/metrics.go: `<namespace>_request_duration_seconds`.
        registry.register(
            "loki_request_duration_seconds",
            "Time (in seconds) spent serving HTTP requests",
            http.request_duration.clone(),
        );
        registry.register_collector(Box::new(LokalCollector {
            store,
            distributor,
            wal_replay_seconds: wal_replay.as_secs_f64(),
        }));
        Metrics { registry, http }
    }

    /// The exposition text.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// `GET /metrics`.
pub async fn handler(State(st): State<SharedState>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    match st.metrics.encode() {
        Ok(body) => {
            let (body, content_type) = if openmetrics {
                (body, CONTENT_TYPE)
            } else {
                (to_prometheus_text(&body), PROMETHEUS_CONTENT_TYPE)
            };
            let mut r = (StatusCode::OK, body).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        Err(_) => super::ApiError::internal("encoding metrics failed").into_response(),
    }
}

/// OpenMetrics text (as `prometheus-client` writes it) to the Prometheus
/// text format 0.0.4: a counter family's `# HELP`/`# TYPE` lines name its
/// `_total` samples; `# UNIT` and `# EOF` lines are dropped; exemplars are
/// cut off; types Prometheus lacks become `untyped`; `\"` in help text is
/// unescaped (Prometheus escapes only `\\` and newlines there).
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // The HELP line of the family being read, held until its TYPE says
    // whether the name takes `_total`.
    let mut help: Option<(&str, String)> = None;
    let counter_name = |name: &str| {
        if name.ends_with("_total") {
            name.to_string()
        } else {
            format!("{name}_total")
        }
    };
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((name, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text.replace("\\\"", "\"")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (counter_name(name), "counter"),
                "gauge" | "histogram" | "summary" => (name.to_string(), kind),
                _ => (name.to_string(), "untyped"),
            };
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        } else if line.starts_with('#') || line.is_empty() {
            out.push_str(line);
            out.push('\n');
        } else {
            let sample = line.split_once(" # ").map_or(line, |(s, _)| s);
            out.push_str(sample);
            out.push('\n');
        }
    }
    if let Some((name, text)) = help {
        out.push_str(&format!("# HELP {name} {text}\n"));
    }
    out
}

/// Reads lokal's atomics on each scrape.
pub struct LokalCollector {
    store: Arc<Store>,
    distributor: Arc<Distributor>,
    wal_replay_seconds: f64,
}

impl fmt::Debug for LokalCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LokalCollector").finish_non_exhaustive()
    }
}

/// One unlabelled value of a collector table.
#[derive(Clone, Copy)]
enum Value {
    Counter(u64),
    Gauge(f64),
}

/// Shorthands over `DescriptorEncoder` for constant values.
struct Out<'a, 'b>(&'b mut DescriptorEncoder<'a>);

impl Out<'_, '_> {
    /// One unlabelled counter or gauge per row, in order.
    fn values(&mut self, rows: &[(&str, &str, Value)]) -> fmt::Result {
        for &(name, help, v) in rows {
            match v {
                Value::Counter(v) => {
                    let c = ConstCounter::new(v);
                    c.encode(
                        self.0
                            .encode_descriptor(name, help, None, c.metric_type())?,
                    )?;
                }
                Value::Gauge(v) => {
                    let g = ConstGauge::new(v);
                    g.encode(
                        self.0
                            .encode_descriptor(name, help, None, g.metric_type())?,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// One counter per label set.
    fn counters<const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        rows: &[([(&str, &str); N], u64)],
    ) -> fmt::Result {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        for (labels, v) in rows {
            ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
        }
        Ok(())
    }

    /// One gauge per label set.
    fn gauges<const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        rows: &[([(&str, &str); N], f64)],
    ) -> fmt::Result {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (labels, v) in rows {
            ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
        }
        Ok(())
    }

    /// A histogram known only by its sum and count: a single `+Inf`
    /// bucket. `rate(_sum) / rate(_count)` still gives the mean.
    fn sum_count(&mut self, name: &str, help: &str, sum: f64, count: u64) -> fmt::Result {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Histogram)?;
        m.encode_histogram::<NoLabelSet>(sum, count, &[(f64::INFINITY, count)], None)
    }
}

impl Collector for LokalCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut out = Out(&mut encoder);
        self.distributor_metrics(&mut out)?;
        self.ingester_metrics(&mut out)?;
        self.wal_metrics(&mut out)?;
        self.object_metrics(&mut out)?;
        self.compactor_metrics(&mut out)?;
        self.tail_metrics(&mut out)
    }
}

impl LokalCollector {
    fn distributor_metrics(&self, out: &mut Out) -> fmt::Result {
        let tenants = self.distributor.counters.tenants();
        // Loki pkg/distributor/distributor.go: per tenant (Loki adds
        // retention_hours, policy and aggregated_metric labels).
        let rows = |f: fn(&TenantIngestCounters) -> &AtomicU64| -> Vec<([(&str, &str); 1], u64)> {
            tenants
                .iter()
                .map(|(t, c)| ([("tenant", t.as_str())], f(c).load(Relaxed)))
                .collect()
        };
        out.counters(
            "loki_distributor_lines_received",
            "The total number of lines received per tenant.",
            &rows(|c| &c.lines_received),
        )?;
        out.counters(
            "loki_distributor_bytes_received",
            "The total number of uncompressed bytes received per tenant.",
            &rows(|c| &c.bytes_received),
        )?;
        // Loki pkg/validation/validate.go: DiscardedSamples, DiscardedBytes
        // (Loki adds retention_hours, policy and format labels). Only
        // reasons that discarded something are listed.
        let mut lines = Vec::new();
        let mut bytes = Vec::new();
        for (t, c) in &tenants {
            for r in Reason::ALL {
                let n = c.discarded_lines[r.index()].load(Relaxed);
                if n > 0 {
                    let labels = [("reason", r.label()), ("tenant", t.as_str())];
                    lines.push((labels, n));
                    bytes.push((labels, c.discarded_bytes[r.index()].load(Relaxed)));
                }
            }
        }
        out.counters(
            "loki_discarded_samples",
            "The total number of samples that were discarded.",
            &lines,
        )?;
        out.counters(
            "loki_discarded_bytes",
            "The total number of bytes that were discarded.",
            &bytes,
        )
    }

    fn ingester_metrics(&self, out: &mut Out) -> fmt::Result {
        let head = self.store.head();
        let counts = head.stream_counts();
        let rows: Vec<([(&str, &str); 1], f64)> = counts
            .iter()
            .map(|(t, n)| ([("tenant", t.as_str())], *n as f64))
            .collect();
        // Loki pkg/ingester/instance.go: memoryStreams (per tenant).
        out.gauges(
            "loki_ingester_memory_streams",
            "The total number of streams in memory per tenant.",
            &rows,
        )?;
        let c = &self.store.counters;
        let chunks = c.chunks_flushed.load(Relaxed);
        out.values(&[
            // Loki pkg/ingester/instance.go: streamsCreatedTotal and
            // streamsRemovedTotal (per tenant in Loki; totals here).
            (
                "loki_ingester_streams_created",
                "The total number of streams created (WAL replay included).",
                Counter(head.streams_created()),
            ),
            (
                "loki_ingester_streams_removed",
                "The total number of streams removed from memory.",
                Counter(head.streams_removed()),
            ),
            (
                "lokal_ingester_memory_bytes",
                "Bytes of log data held in memory: open blocks raw, sealed blocks and chunks waiting to be stored compressed.",
                Gauge(head.memory_bytes() as f64),
            ),
            // Loki pkg/ingester/metrics.go: chunksFlushedPerReason (lokal
            // does not record the reason), chunksFlushFailures, chunkSize,
            // chunkEntries (histograms there; sum and count only here).
            (
                "loki_ingester_chunks_flushed",
                "Total flushed chunks.",
                Counter(chunks),
            ),
            (
                "loki_ingester_chunks_flush_failures",
                "Total number of flush failures (each is retried).",
                Counter(c.flush_failures.load(Relaxed)),
            ),
        ])?;
        out.sum_count(
            "loki_ingester_chunk_size_bytes",
            "Distribution of stored chunk sizes (when stored).",
            c.chunk_bytes_flushed.load(Relaxed) as f64,
            chunks,
        )?;
        out.sum_count(
            "loki_ingester_chunk_entries",
            "Distribution of stored lines per chunk (when stored).",
            c.chunk_entries_flushed.load(Relaxed) as f64,
            chunks,
        )
    }

    fn wal_metrics(&self, out: &mut Out) -> fmt::Result {
        let w = self.store.wal().stats();
        out.values(&[
            // Loki pkg/ingester/metrics.go: walRecordsLogged,
            // walLoggedBytesTotal, recoveredEntriesTotal, walReplayDuration.
            (
                "loki_ingester_wal_records_logged",
                "Total number of WAL records logged.",
                Counter(w.records_appended),
            ),
            (
                "loki_ingester_wal_logged_bytes",
                "Total number of bytes written to disk for WAL records.",
                Counter(w.bytes_written),
            ),
            (
                "loki_ingester_wal_recovered_entries",
                "Total number of entries recovered from the WAL.",
                Counter(self.store.counters.wal_replayed_entries.load(Relaxed)),
            ),
            (
                "loki_ingester_wal_replay_duration_seconds",
                "Time taken to replay the WAL (opening storage).",
                Gauge(self.wal_replay_seconds),
            ),
            (
                "lokal_wal_fsyncs",
                "fdatasync calls for WAL record batches (one per group commit).",
                Counter(w.fsyncs),
            ),
            (
                "lokal_wal_segments",
                "WAL segment files on disk, the active one included.",
                Gauge(w.segments as f64),
            ),
            (
                "lokal_wal_segments_created",
                "WAL segment files created.",
                Counter(w.segments_created),
            ),
            (
                "lokal_wal_segments_removed",
                "WAL segment files removed once everything in them was stored in chunks.",
                Counter(w.segments_removed),
            ),
        ])
    }

    fn object_metrics(&self, out: &mut Out) -> fmt::Result {
        let cache = self.store.chunk_cache();
        let s = &self.store.snapshots().counters;
        out.values(&[
            (
                "lokal_chunk_cache_hits",
                "Chunk reads served by the in-memory chunk cache.",
                Counter(cache.counters.hits.load(Relaxed)),
            ),
            (
                "lokal_chunk_cache_misses",
                "Chunk reads that went to the object store.",
                Counter(cache.counters.misses.load(Relaxed)),
            ),
            (
                "lokal_chunk_cache_evictions",
                "Chunks evicted from the chunk cache.",
                Counter(cache.counters.evictions.load(Relaxed)),
            ),
            (
                "lokal_chunk_cache_bytes",
                "Bytes held by the chunk cache.",
                Gauge(cache.bytes() as f64),
            ),
            (
                "lokal_chunk_cache_capacity_bytes",
                "Capacity of the chunk cache (0: no cache).",
                Gauge(cache.capacity() as f64),
            ),
            (
                "lokal_index_snapshot_uploads",
                "Index partition snapshots uploaded to the object store.",
                Counter(s.uploads.load(Relaxed)),
            ),
            (
                "lokal_index_snapshot_files_uploaded",
                "Index files uploaded to the object store.",
                Counter(s.files_uploaded.load(Relaxed)),
            ),
            (
                "lokal_index_snapshot_uploaded_bytes",
                "Bytes of index files uploaded to the object store.",
                Counter(s.bytes_uploaded.load(Relaxed)),
            ),
            (
                "lokal_index_snapshot_downloads",
                "Index partitions downloaded from the object store.",
                Counter(s.downloads.load(Relaxed)),
            ),
            (
                "lokal_index_snapshot_remote_files_deleted",
                "Index files deleted from the object store.",
                Counter(s.remote_files_deleted.load(Relaxed)),
            ),
        ])
    }

    fn compactor_metrics(&self, out: &mut Out) -> fmt::Result {
        let c = &self.store.compactor_counters;
        // Loki pkg/compactor/metrics.go: applyRetentionOperationTotal,
        // applyRetentionLastSuccess. A lokal compactor run applies
        // retention (when enabled), delete requests and merges together.
        out.counters(
            "loki_compactor_apply_retention_operation",
            "Total number of attempts done to apply retention with status.",
            &[
                ([("status", "success")], c.runs.load(Relaxed)),
                ([("status", "failure")], c.failed_runs.load(Relaxed)),
            ],
        )?;
        out.values(&[
            (
                "loki_compactor_apply_retention_last_successful_run_timestamp_seconds",
                "Unix timestamp of the last successful retention run.",
                Gauge(c.last_success_unix_seconds.load(Relaxed) as f64),
            ),
            // Loki pkg/compactor/deletion/metrics.go: deletedLinesTotal (a
            // counter named without `_total`) and
            // deleteRequestsProcessedTotal (both per user in Loki; totals
            // here).
            (
                "loki_compactor_deleted_lines",
                "Number of deleted lines.",
                Counter(c.lines_deleted.load(Relaxed)),
            ),
            (
                "loki_compactor_delete_requests_processed",
                "Number of delete requests processed.",
                Counter(c.delete_requests_processed.load(Relaxed)),
            ),
            (
                "lokal_compactor_chunks_expired",
                "Chunks taken out of the index by retention.",
                Counter(c.chunks_expired.load(Relaxed)),
            ),
            (
                "lokal_compactor_chunks_deleted",
                "Chunk objects deleted from the object store.",
                Counter(c.chunks_deleted.load(Relaxed)),
            ),
            (
                "lokal_compactor_deleted_bytes",
                "Bytes of chunk objects deleted from the object store.",
                Counter(c.bytes_deleted.load(Relaxed)),
            ),
            (
                "lokal_compactor_chunks_rewritten",
                "Chunks rewritten without the lines of delete requests.",
                Counter(c.chunks_rewritten.load(Relaxed)),
            ),
            (
                "lokal_compactor_chunks_merged",
                "Small chunks merged away.",
                Counter(c.chunks_merged.load(Relaxed)),
            ),
            (
                "lokal_compactor_merged_chunks_written",
                "Chunks written by merges.",
                Counter(c.merged_chunks_written.load(Relaxed)),
            ),
            (
                "lokal_compactor_partitions_dropped",
                "Index day partitions dropped whole by retention.",
                Counter(c.partitions_dropped.load(Relaxed)),
            ),
            (
                "lokal_compactor_index_merges",
                "Index partitions whose segments were merged.",
                Counter(c.index_merges.load(Relaxed)),
            ),
            (
                "lokal_compactor_retention_lag_seconds",
                "Retention backlog the last compactor run found: seconds the most overdue expired chunk or object deletion is past due (0: on time).",
                Gauge(c.retention_lag_seconds.load(Relaxed) as f64),
            ),
        ])
    }

    fn tail_metrics(&self, out: &mut Out) -> fmt::Result {
        let t = self.store.tail_feed();
        out.values(&[
            (
                "lokal_tail_subscribers",
                "Live tail sessions subscribed to new entries.",
                Gauge(t.subscriber_count() as f64),
            ),
            (
                "lokal_tail_delivered_entries",
                "Entries queued for live tail sessions.",
                Counter(t.delivered_total()),
            ),
            (
                "lokal_tail_dropped_entries",
                "Entries dropped because a tail session's queue was full (reported to it as dropped_entries).",
                Counter(t.dropped_total()),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_to_prometheus_text() {
        let om = "# HELP loki_distributor_lines_received The total number of lines received.\n\
# TYPE loki_distributor_lines_received counter\n\
loki_distributor_lines_received_total{tenant=\"a\"} 3\n\
# HELP lokal_wal_replay_seconds Time \\\"spent\\\" replaying.\n\
# TYPE lokal_wal_replay_seconds gauge\n\
# UNIT lokal_wal_replay_seconds seconds\n\
lokal_wal_replay_seconds 0.5\n\
# HELP loki_request_duration_seconds Time spent.\n\
# TYPE loki_request_duration_seconds histogram\n\
loki_request_duration_seconds_bucket{le=\"+Inf\"} 2 # {trace_id=\"x\"} 1.0\n\
loki_request_duration_seconds_sum 0.25\n\
loki_request_duration_seconds_count 2\n\
# HELP odd An info.\n\
# TYPE odd info\n\
odd_info{v=\"1\"} 1\n\
# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP loki_distributor_lines_received_total The total number of lines received.\n\
# TYPE loki_distributor_lines_received_total counter\n\
loki_distributor_lines_received_total{tenant=\"a\"} 3\n\
# HELP lokal_wal_replay_seconds Time \"spent\" replaying.\n\
# TYPE lokal_wal_replay_seconds gauge\n\
lokal_wal_replay_seconds 0.5\n\
# HELP loki_request_duration_seconds Time spent.\n\
# TYPE loki_request_duration_seconds histogram\n\
loki_request_duration_seconds_bucket{le=\"+Inf\"} 2\n\
loki_request_duration_seconds_sum 0.25\n\
loki_request_duration_seconds_count 2\n\
# HELP odd An info.\n\
# TYPE odd untyped\n\
odd_info{v=\"1\"} 1\n"
        );
    }

    /// Emits one family of each shape the collector writes.
    #[derive(Debug)]
    struct Sample;

    impl Collector for Sample {
        fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
            let mut out = Out(&mut encoder);
            out.values(&[
                ("c", "A counter.", Counter(1)),
                ("g_seconds", "A gauge.", Gauge(0.5)),
            ])?;
            out.counters("lc", "Labelled.", &[([("tenant", "a")], 2)])?;
            out.gauges("lg", "Labelled.", &[([("tenant", "a")], 3.0)])?;
            out.sum_count("h_bytes", "Sum and count.", 10.0, 2)
        }
    }

    #[test]
    fn every_lokal_family_converts_to_matching_names() {
        // What prometheus-client writes for each shape: each TYPE line names
        // samples that follow it, and no OpenMetrics-only line survives.
        let http = HttpMetrics::default();
        http.request_duration
            .get_or_create(&super::super::instrument::RequestLabels {
                method: "GET".into(),
                route: "ready".into(),
                status_code: "200".into(),
                ws: "false".into(),
            })
            .observe(0.1);
        let mut registry = Registry::default();
        registry.register("req_seconds", "Histogram.", http.request_duration);
        registry.register_collector(Box::new(Sample));
        let mut om = String::new();
        prometheus_client::encoding::text::encode(&mut om, &registry).unwrap();
        let text = to_prometheus_text(&om);
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        assert_eq!(types.len(), 6, "{text}");
        for line in types {
            let name = line.split(' ').nth(2).unwrap();
            assert!(
                text.lines()
                    .any(|l| l.starts_with(name) && !l.starts_with('#')),
                "{name} in\n{text}"
            );
        }
    }
}
