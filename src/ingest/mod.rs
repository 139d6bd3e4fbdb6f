//! Ingest: turns a decoded push request into validated, enriched entries and
//! hands them to storage — Loki's distributor for a single node.
//!
//! Order of work (Loki's): labels are parsed and enriched with
//! `service_name`, then validated; each entry is validated and gets
//! `detected_level`; the tenant's rate limit, its active-stream limit and
//! per-stream rate limits are checked for the whole request before anything
//! is written, so a 429 never leaves a request half stored (a retry cannot
//! duplicate lines); then every stream is appended. Invalid entries are
//! dropped and reported together as one 400 while the valid ones are stored.
//!
//! This module owns no wire formats (see `api::push`) and no storage (it
//! writes through [`IngestSink`]).

pub mod detect;
pub mod rate;
pub mod validate;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::limits::{Limits, Overrides};
use crate::model::{Entry, Labels, StreamId, TenantId, Timestamp};
use rate::TokenBucket;
pub use validate::Reason;
use validate::{
    Rejection, group_errors, label_parse_rejection, normalize_metadata, validate_entry,
    validate_labels,
};

/// Loki's limits are in MB of 2^20 bytes.
const MB: f64 = 1_048_576.0;

/// A decoded push request: streams with their labels as sent.
#[derive(Debug, Default)]
pub struct PushRequest {
    pub streams: Vec<PushStream>,
}

#[derive(Debug)]
pub struct PushStream {
    pub labels: StreamLabels,
    pub entries: Vec<Entry>,
}

/// Labels as a client sent them.
#[derive(Debug, Clone)]
pub enum StreamLabels {
    /// A PromQL-style label string (protobuf, legacy JSON).
    Text(String),
    /// A JSON object of label pairs (JSON v1).
    Pairs(Vec<(String, String)>),
}

impl StreamLabels {
    fn parse(&self) -> Result<Labels, Rejection> {
        match self {
            StreamLabels::Text(t) => Labels::parse(t).map_err(|e| label_parse_rejection(t, &e)),
            StreamLabels::Pairs(p) => {
                Labels::from_pairs(p.iter().map(|(n, v)| (n.as_str(), v.as_str()))).map_err(|e| {
                    let text: Vec<String> = p.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
                    label_parse_rejection(&format!("{{{}}}", text.join(", ")), &e)
                })
            }
        }
    }
}

/// What storage reports for one appended stream batch.
#[derive(Debug, Default)]
pub struct Appended {
    /// The WAL position to wait for before acknowledging (none when nothing
    /// new was written).
    pub lsn: Option<u64>,
    pub accepted: usize,
    /// Entries refused as too far behind the stream's newest entry:
    /// (entry timestamp, oldest acceptable timestamp).
    pub too_far_behind: Vec<(Timestamp, Timestamp)>,
    /// Bytes (`Entry::size`) of the entries refused as too far behind.
    pub too_far_behind_bytes: usize,
}

/// Where ingest writes. Implemented by the store facade.
pub trait IngestSink: Send + Sync {
    fn has_stream(&self, tenant: &TenantId, labels: &Labels) -> bool;
    fn active_streams(&self, tenant: &TenantId) -> usize;
    /// Whether storage takes writes now (the head's memory limit); asked
    /// once per request before any stream is appended.
    fn admit(&self, _tenant: &TenantId) -> Result<(), SinkError> {
        Ok(())
    }
    /// Appends entries to the stream's head and the WAL (blocking).
    fn append(
        &self,
        tenant: &TenantId,
        labels: &Labels,
        entries: Vec<Entry>,
    ) -> Result<Appended, SinkError>;
}

/// A storage failure while appending; `retryable` maps to 503 vs 500.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
    pub retryable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("error at least one valid stream is required for ingestion")]
    NoStreams,
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    StreamLimit(String),
    #[error("{message}")]
    Storage { message: String, retryable: bool },
}

impl PushError {
    /// The HTTP status Loki answers with.
    pub fn status(&self) -> u16 {
        match self {
            PushError::NoStreams => 422,
            PushError::RateLimited(_) | PushError::StreamLimit(_) => 429,
            PushError::Storage {
                retryable: true, ..
            } => 503,
            PushError::Storage {
                retryable: false, ..
            } => 500,
        }
    }
}

/// The result of a push that was (at least partly) written.
#[derive(Debug, Default)]
pub struct PushOutcome {
    /// Wait for this WAL position to be durable before answering.
    pub wait_for: Option<u64>,
    /// Loki's grouped 400 text when some entries or streams were refused.
    pub rejected: Option<String>,
    pub lines: usize,
    pub bytes: usize,
}

/// One tenant's ingest counters: Loki labels its distributor metrics by
/// tenant (`loki_distributor_lines_received_total{tenant}`,
/// `loki_discarded_samples_total{reason, tenant}`).
#[derive(Debug, Default)]
pub struct TenantIngestCounters {
    /// Entries and bytes (`Entry::size`) received, valid or not.
    pub lines_received: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Entries and bytes discarded, indexed by [`Reason::index`].
    pub discarded_lines: [AtomicU64; Reason::ALL.len()],
    pub discarded_bytes: [AtomicU64; Reason::ALL.len()],
}

impl TenantIngestCounters {
    fn discard(&self, reason: Reason, lines: usize, bytes: usize) {
        self.discarded_lines[reason.index()].fetch_add(lines as u64, Relaxed);
        self.discarded_bytes[reason.index()].fetch_add(bytes as u64, Relaxed);
    }
}

/// Counters exported as Loki's distributor metrics: totals, and the same
/// per tenant (one map lookup under a read lock per push request).
#[derive(Debug, Default)]
pub struct IngestCounters {
    pub lines_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub lines_discarded: AtomicU64,
    tenants: RwLock<HashMap<TenantId, Arc<TenantIngestCounters>>>,
}

impl IngestCounters {
    /// The tenant's counters, created on its first push.
    pub fn tenant(&self, tenant: &TenantId) -> Arc<TenantIngestCounters> {
        if let Some(c) = self.tenants.read().get(tenant) {
            return c.clone();
        }
        self.tenants
            .write()
            .entry(tenant.clone())
            .or_default()
            .clone()
    }

    /// Every tenant that pushed since start, with its counters.
    pub fn tenants(&self) -> Vec<(TenantId, Arc<TenantIngestCounters>)> {
        let mut out: Vec<_> = self
            .tenants
            .read()
            .iter()
            .map(|(t, c)| (t.clone(), c.clone()))
            .collect();
        out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        out
    }
}

pub struct Distributor {
    sink: Arc<dyn IngestSink>,
    overrides: Arc<Overrides>,
    tenant_buckets: Mutex<HashMap<TenantId, TokenBucket>>,
    stream_buckets: Mutex<HashMap<(TenantId, StreamId), TokenBucket>>,
    pub counters: IngestCounters,
}

struct ValidStream {
    labels: Labels,
    entries: Vec<Entry>,
    bytes: usize,
}

impl Distributor {
    pub fn new(sink: Arc<dyn IngestSink>, overrides: Arc<Overrides>) -> Self {
        Distributor {
            sink,
            overrides,
            tenant_buckets: Mutex::new(HashMap::new()),
            stream_buckets: Mutex::new(HashMap::new()),
            counters: IngestCounters::default(),
        }
    }

    /// Validates and writes a push. Blocking: call from a blocking thread.
    pub fn push(
        &self,
        tenant: &TenantId,
        req: PushRequest,
        now: Timestamp,
    ) -> Result<PushOutcome, PushError> {
        if req.streams.is_empty() {
            return Err(PushError::NoStreams);
        }
        let limits = self.overrides.get(tenant.as_str());
        let tc = self.counters.tenant(tenant);
        let mut rejections: Vec<Rejection> = Vec::new();
        let mut valid: Vec<ValidStream> = Vec::with_capacity(req.streams.len());
        let mut received = (0usize, 0usize);
        for stream in req.streams {
            received.0 += stream.entries.len();
            received.1 += stream.entries.iter().map(Entry::size).sum::<usize>();
            if stream.entries.is_empty() {
                continue;
            }
            match self.validate_stream(stream, &limits, now, &mut rejections, &tc) {
                Some(v) if !v.entries.is_empty() => valid.push(v),
                _ => {}
            }
        }
        for (total, per_tenant, n) in [
            (
                &self.counters.lines_received,
                &tc.lines_received,
                received.0,
            ),
            (
                &self.counters.bytes_received,
                &tc.bytes_received,
                received.1,
            ),
        ] {
            total.fetch_add(n as u64, Relaxed);
            per_tenant.fetch_add(n as u64, Relaxed);
        }

        let lines: usize = valid.iter().map(|s| s.entries.len()).sum();
        let bytes: usize = valid.iter().map(|s| s.bytes).sum();
        // Entries refused before the limits (validation).
        let mut discarded = received.0.saturating_sub(lines);
        if lines > 0 {
            // Before the rate limits, so a refused request spends no tokens.
            self.sink.admit(tenant).map_err(|e| PushError::Storage {
                message: e.message,
                retryable: e.retryable,
            })?;
            if let Err((e, reason)) = self.check_limits(tenant, &limits, &valid, lines, bytes) {
                tc.discard(reason, lines, bytes);
                self.counters
                    .lines_discarded
                    .fetch_add((discarded + lines) as u64, Relaxed);
                return Err(e);
            }
        }

        let mut outcome = PushOutcome {
            lines,
            bytes,
            ..Default::default()
        };
        for stream in valid {
            let total = stream.entries.len();
            let appended = self
                .sink
                .append(tenant, &stream.labels, stream.entries)
                .map_err(|e| PushError::Storage {
                    message: e.message,
                    retryable: e.retryable,
                })?;
            if let Some(lsn) = appended.lsn {
                outcome.wait_for = Some(outcome.wait_for.map_or(lsn, |w| w.max(lsn)));
            }
            if !appended.too_far_behind.is_empty() {
                discarded += appended.too_far_behind.len();
                tc.discard(
                    Reason::TooFarBehind,
                    appended.too_far_behind.len(),
                    appended.too_far_behind_bytes,
                );
                rejections.push(too_far_behind_rejection(
                    tenant,
                    &stream.labels,
                    &appended.too_far_behind,
                    total,
                ));
            }
        }
        self.counters
            .lines_discarded
            .fetch_add(discarded as u64, Relaxed);
        if !rejections.is_empty() {
            outcome.rejected = Some(group_errors(&rejections));
        }
        Ok(outcome)
    }

    fn validate_stream(
        &self,
        stream: PushStream,
        limits: &Limits,
        now: Timestamp,
        rejections: &mut Vec<Rejection>,
        counters: &TenantIngestCounters,
    ) -> Option<ValidStream> {
        // A refused label set discards every entry of the stream.
        let refuse_stream = |r: Rejection, rejections: &mut Vec<Rejection>| {
            let bytes = stream.entries.iter().map(Entry::size).sum();
            counters.discard(r.reason, stream.entries.len(), bytes);
            rejections.push(r);
        };
        let mut labels = match stream.labels.parse() {
            Ok(l) => l,
            Err(r) => {
                refuse_stream(r, rejections);
                return None;
            }
        };
        detect::discover_service_name(&mut labels, &limits.discover_service_name);
        if let Err(r) = validate_labels(&labels, limits) {
            refuse_stream(r, rejections);
            return None;
        }
        let text = labels.canonical();
        let detect_levels = limits.discover_log_levels && limits.allow_structured_metadata;
        let mut entries = stream.entries;
        let mut bytes = 0;
        entries.retain_mut(|e| {
            normalize_metadata(&mut e.metadata);
            if let Err(r) = validate_entry(e, &text, limits, now) {
                counters.discard(r.reason, 1, e.size());
                rejections.push(r);
                return false;
            }
            if detect_levels
                && let Some(level) = detect::detect_level(
                    &labels,
                    &mut e.metadata,
                    &e.line,
                    &limits.log_level_fields,
                )
            {
                e.metadata.push(crate::model::MetadataPair::new(
                    detect::DETECTED_LEVEL,
                    level,
                ));
            }
            bytes += e.size();
            true
        });
        Some(ValidStream {
            labels,
            entries,
            bytes,
        })
    }

    /// Tenant rate, active streams and per-stream rates, all-or-nothing.
    fn check_limits(
        &self,
        tenant: &TenantId,
        limits: &Limits,
        valid: &[ValidStream],
        lines: usize,
        bytes: usize,
    ) -> Result<(), (PushError, Reason)> {
        let now = Instant::now();
        let (rate, burst) = (
            limits.ingestion_rate_mb * MB,
            limits.ingestion_burst_size_mb * MB,
        );
        {
            let mut buckets = self.tenant_buckets.lock();
            let b = buckets
                .entry(tenant.clone())
                .or_insert_with(|| TokenBucket::new(rate, burst, now));
            b.set_limits(rate, burst);
            if !b.would_allow(bytes as f64, now) {
                return Err((
                    PushError::RateLimited(format!(
                        "ingestion rate limit exceeded for user {tenant} (limit: {} bytes/sec) while attempting to ingest '{lines}' lines totaling '{bytes}' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased",
                        rate as u64
                    )),
                    Reason::RateLimited,
                ));
            }
        }
        let max_streams = limits.max_global_streams_per_user;
        if max_streams > 0 {
            let active = self.sink.active_streams(tenant);
            let mut new_streams = 0;
            for s in valid {
                if !self.sink.has_stream(tenant, &s.labels) {
                    new_streams += 1;
                    if active + new_streams > max_streams {
                        return Err((
                            PushError::StreamLimit(format!(
                                "Maximum active stream limit exceeded when trying to create stream {}, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: '{tenant}'",
                                s.labels
                            )),
                            Reason::StreamLimit,
                        ));
                    }
                }
            }
        }
        let (srate, sburst) = (
            limits.per_stream_rate_limit.get() as f64,
            limits.per_stream_rate_limit_burst.get() as f64,
        );
        let mut streams = self.stream_buckets.lock();
        for s in valid {
            let key = (tenant.clone(), s.labels.stream_id());
            let b = streams
                .entry(key)
                .or_insert_with(|| TokenBucket::new(srate, sburst, now));
            b.set_limits(srate, sburst);
            if srate > 0.0 && !b.would_allow(s.bytes as f64, now) {
                return Err((
                    PushError::RateLimited(format!(
                        "Per stream rate limit exceeded (limit: {}/sec) while attempting to ingest for stream '{}' totaling {}B, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased",
                        human_bytes(srate as u64),
                        s.labels,
                        s.bytes
                    )),
                    Reason::PerStreamRateLimit,
                ));
            }
        }
        // Everything passed: take the tokens.
        for s in valid {
            if let Some(b) = streams.get_mut(&(tenant.clone(), s.labels.stream_id())) {
                b.take(s.bytes as f64);
            }
        }
        if let Some(b) = self.tenant_buckets.lock().get_mut(tenant) {
            b.take(bytes as f64);
        }
        // Forget idle per-stream buckets so the map does not grow forever.
        if streams.len() > 4 * max_streams.max(1024) {
            streams.retain(|_, b| !b.is_full(now));
        }
        Ok(())
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Go's `time.Time.String()` for a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
fn go_time_string(ts: Timestamp) -> String {
    let s = ts.to_rfc3339_nano();
    let s = s.trim_end_matches('Z').replacen('T', " ", 1);
    format!("{s} +0000 UTC")
}

fn too_far_behind_rejection(
    tenant: &TenantId,
    labels: &Labels,
    refused: &[(Timestamp, Timestamp)],
    total: usize,
) -> Rejection {
    let mut msg = String::new();
    for (ts, oldest) in refused.iter().take(10) {
        msg.push_str(&format!(
            "entry with timestamp {} ignored, reason: 'entry too far behind, entry timestamp is: {}, oldest acceptable timestamp is: {}',\n",
            go_time_string(*ts),
            ts.to_rfc3339(),
            oldest.to_rfc3339()
        ));
    }
    msg.push_str(&format!(
        "user '{tenant}', total ignored: {} out of {total} for stream: {labels}",
        refused.len()
    ));
    Rejection {
        reason: validate::Reason::TooFarBehind,
        message: msg,
    }
}

#[cfg(test)]
mod tests;
