//! `/loki/api/v1/index/stats`, `/index/volume` and `/index/volume_range`:
//! counts computed from index and block metadata (entries and uncompressed
//! bytes recorded per chunk and block), never by decompressing chunks.
//!
//! Selectors are validated as Loki's `syntax.ParseMatchers(q, true)`: at
//! least one matcher must not match the empty string (the literal `{}` is
//! allowed and means every stream). Volumes answer 404 `not found` when the
//! tenant's `volume_enabled` is false, as Loki's volume round tripper.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::encode::{format_seconds, stats_json, write_labels};
use super::params::{self, Params};
use super::query::{request_params, validated_matchers};
use super::{ApiError, SharedState, json_response};
use crate::model::{Label, Labels, Timestamp};
use crate::store::{Source, StreamData};

/// Entries and uncompressed bytes of one stream's data in a time range.
#[derive(Default, Clone, Copy)]
struct Counts {
    chunks: u64,
    entries: u64,
    bytes: u64,
}

fn source_counts(src: &Source) -> (Counts, Timestamp) {
    match src {
        Source::Open(b) => (
            Counts {
                chunks: 0,
                entries: b.len() as u64,
                // Lines plus metadata, as sealed blocks' raw_size.
                bytes: b.lines_data().len() as u64 + b.metadata_bytes(),
            },
            src.bounds().1,
        ),
        Source::Sealed(b) => (
            Counts {
                chunks: 0,
                entries: b.meta.entries,
                bytes: b.meta.raw_size,
            },
            b.meta.max_ts,
        ),
        Source::Pending(p) => (
            Counts {
                chunks: 1,
                entries: p.chunk_ref.entries,
                bytes: p.chunk_ref.raw_bytes,
            },
            p.chunk_ref.through,
        ),
        Source::Stored(c) => (
            Counts {
                chunks: 1,
                entries: c.entries,
                bytes: c.raw_bytes,
            },
            c.through,
        ),
    }
}

async fn select(
    st: &SharedState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<(Vec<StreamData>, Timestamp, Timestamp), ApiError> {
    let tenant = st.tenant(headers)?;
    let q = p.get("query").unwrap_or("{}");
    let matchers = validated_matchers(q)?;
    let (start, end) = params::bounds(p, Timestamp::now())?;
    if end < start {
        return Err(ApiError::bad_request(
            "end timestamp must not be before or equal to start time",
        ));
    }
    // As Loki's IndexStats and Volume: max_query_lookback, max_query_length.
    let start = crate::logql::eval::check_range(&st.overrides.get(tenant.as_str()), start, end)?;
    let streams = st
        .engine
        .store()
        .select(&tenant, &matchers, start, end.saturating_add_nanos(1))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((streams, start, end))
}

pub async fn stats(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = request_params(q, &headers, &body);
    // Loki parses index/stats with its range-query parser: `step`, `limit`
    // and `direction` are checked too, then ignored.
    params::range_params(&p, Timestamp::now())?;
    let (streams, _, _) = select(&st, &headers, &p).await?;
    let mut total = Counts::default();
    for s in &streams {
        let mut head = false;
        for src in &s.sources {
            let (c, _) = source_counts(src);
            head |= src.is_head() && !matches!(src, Source::Pending(_));
            total.chunks += c.chunks;
            total.entries += c.entries;
            total.bytes += c.bytes;
        }
        total.chunks += u64::from(head);
    }
    let body = serde_json::json!({
        "streams": streams.len(),
        "chunks": total.chunks,
        "bytes": total.bytes,
        "entries": total.entries,
    });
    Ok(json_response(StatusCode::OK, body.to_string().into_bytes()))
}

/// The label set a stream's volume is counted under.
fn volume_keys(
    labels: &Labels,
    targets: &[String],
    by_labels: bool,
    matcher_names: &[String],
) -> Vec<Labels> {
    if by_labels {
        // One key per label name, with an empty value.
        return labels
            .iter()
            .filter(|l| targets.is_empty() || targets.contains(&l.name))
            .map(|l| Labels::from_sorted_unchecked(vec![Label::new(l.name.clone(), "")]))
            .collect();
    }
    let names: &[String] = if targets.is_empty() {
        matcher_names
    } else {
        targets
    };
    if names.is_empty() {
        return vec![labels.clone()];
    }
    let kept: Vec<Label> = labels
        .iter()
        .filter(|l| names.contains(&l.name))
        .cloned()
        .collect();
    vec![Labels::from_sorted_unchecked(kept)]
}

struct VolumeQuery {
    targets: Vec<String>,
    by_labels: bool,
    limit: usize,
    matcher_names: Vec<String>,
}

fn volume_query(p: &Params) -> Result<VolumeQuery, ApiError> {
    let targets: Vec<String> = p
        .get("targetLabels")
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let by_labels = match p.get("aggregateBy") {
        None | Some("series") => false,
        Some("labels") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid aggregateBy parameter: {other}"
            )));
        }
    };
    let limit = match p.get("limit") {
        None => 100,
        Some(l) => match l.parse::<i64>() {
            Ok(0) => 100,
            Ok(n) if n > 0 => n as usize,
            _ => return Err(ApiError::bad_request("limit must be a positive value")),
        },
    };
    let q = p.get("query").unwrap_or("{}");
    let matcher_names: Vec<String> = validated_matchers(q)?
        .into_iter()
        .map(|m| m.name)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(VolumeQuery {
        targets,
        by_labels,
        limit,
        matcher_names,
    })
}

/// Loki's volume round tripper: 404 `not found` for a tenant whose
/// `volume_enabled` is false (after authentication, before anything else).
fn check_volume_enabled(st: &SharedState, headers: &HeaderMap) -> Result<(), ApiError> {
    let tenant = st.tenant(headers)?;
    if st.overrides.get(tenant.as_str()).volume_enabled {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "not found"))
    }
}

/// `,"stats":{...}`: Loki's volume answers carry the stats object (all
/// zeros here: volumes are read from index metadata, no line is processed).
fn write_volume_stats(out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"stats\":");
    let _ = serde_json::to_writer(
        &mut *out,
        &stats_json(&crate::logql::result::QueryStats::default()),
    );
}

pub async fn volume(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_volume_enabled(&st, &headers)?;
    let p = request_params(q, &headers, &body);
    let vq = volume_query(&p)?;
    let (streams, _, end) = select(&st, &headers, &p).await?;
    let max_series = st
        .overrides
        .get(st.tenant(&headers)?.as_str())
        .volume_max_series;
    let mut totals: BTreeMap<Labels, u64> = BTreeMap::new();
    for s in &streams {
        let bytes: u64 = s.sources.iter().map(|src| source_counts(src).0.bytes).sum();
        for key in volume_keys(&s.labels, &vq.targets, vq.by_labels, &vq.matcher_names) {
            *totals.entry(key).or_default() += bytes;
        }
    }
    if totals.len() > max_series && max_series > 0 {
        return Err(ApiError::bad_request(format!(
            "the query hit the max number of series limit (limit: {max_series} series)"
        )));
    }
    let mut rows: Vec<(Labels, u64)> = totals.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(vq.limit);
    let ts = format_seconds(end);
    let mut out =
        b"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[".to_vec();
    for (i, (labels, bytes)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"metric\":");
        write_labels(&mut out, labels);
        out.extend_from_slice(format!(",\"value\":[{ts},\"{bytes}\"]}}").as_bytes());
    }
    out.extend_from_slice(b"]");
    write_volume_stats(&mut out);
    out.extend_from_slice(b"}}");
    Ok(json_response(StatusCode::OK, out))
}

/// Step buckets of a volume range: bucket `k` is labelled
/// `first + k * step` and holds the bytes of `(first + (k-1) * step,
/// first + k * step]`, clamped to the query range.
struct Buckets {
    first: i64,
    step: i64,
    len: usize,
    start: i64,
    end: i64,
}

impl Buckets {
    fn index(&self, t: i64) -> usize {
        let t = t.clamp(self.start, self.end);
        (((t - self.first) + self.step - 1) / self.step).clamp(0, self.len as i64 - 1) as usize
    }

    /// Adds `bytes` spread over `[lo, hi]` (clamped to the query range) in
    /// proportion to the time each bucket covers of it; the shares add up
    /// to `bytes` exactly. A point span goes whole into its bucket.
    fn spread(&self, points: &mut [u64], lo: i64, hi: i64, bytes: u64) {
        let (lo, hi) = (
            lo.clamp(self.start, self.end),
            hi.clamp(self.start, self.end),
        );
        let (first_k, last_k) = (self.index(lo), self.index(hi));
        if hi <= lo || first_k == last_k {
            points[first_k] += bytes;
            return;
        }
        let span = (hi - lo) as u128;
        let mut given = 0u64;
        for (k, point) in points.iter_mut().enumerate().take(last_k + 1).skip(first_k) {
            let bucket_end = self.first.saturating_add(k as i64 * self.step);
            let covered = (bucket_end.clamp(lo, hi) - lo) as u128;
            let upto = if k == last_k {
                bytes
            } else {
                (u128::from(bytes) * covered / span) as u64
            };
            *point += upto - given;
            given = upto;
        }
    }
}

/// Adds one source's bytes to `points`: per entry for the open head block
/// (its timestamps are in memory), per block for sealed blocks and chunks,
/// each block's bytes spread over the buckets its `[min, max]` covers.
async fn add_source_volume(
    st: &SharedState,
    tenant: &crate::model::TenantId,
    src: &Source,
    buckets: &Buckets,
    points: &mut [u64],
) -> Result<(), ApiError> {
    let add_blocks = |metas: &[crate::store::chunk::BlockMeta], points: &mut [u64]| {
        for m in metas.iter().filter(|m| m.entries > 0) {
            buckets.spread(points, m.min_ts.nanos(), m.max_ts.nanos(), m.raw_size);
        }
    };
    match src {
        Source::Open(b) => {
            for i in 0..b.len() {
                let size = b.line(i).len() + b.metadata_size(i);
                points[buckets.index(b.ts(i).nanos())] += size as u64;
            }
        }
        Source::Sealed(b) => add_blocks(std::slice::from_ref(&b.meta), points),
        Source::Pending(p) => add_blocks(p.chunk.blocks(), points),
        Source::Stored(c) => {
            let metas = st
                .engine
                .store()
                .chunk_block_metas(tenant, c)
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            add_blocks(&metas, points);
        }
    }
    Ok(())
}

pub async fn volume_range(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_volume_enabled(&st, &headers)?;
    let p = request_params(q, &headers, &body);
    let vq = volume_query(&p)?;
    let rp = params::range_params(&p, Timestamp::now())?;
    let tenant = st.tenant(&headers)?;
    let (streams, start, end) = select(&st, &headers, &p).await?;
    let step = i64::try_from(rp.step.as_nanos()).unwrap_or(i64::MAX).max(1);
    let first = start.nanos().div_euclid(step) * step;
    let buckets = Buckets {
        first,
        step,
        len: ((end.nanos() - first) / step + 1).max(1) as usize,
        start: start.nanos(),
        end: end.nanos(),
    };
    let mut series: BTreeMap<Labels, Vec<u64>> = BTreeMap::new();
    for s in &streams {
        let mut points = vec![0u64; buckets.len];
        for src in &s.sources {
            add_source_volume(&st, &tenant, src, &buckets, &mut points).await?;
        }
        for key in volume_keys(&s.labels, &vq.targets, vq.by_labels, &vq.matcher_names) {
            let row = series.entry(key).or_insert_with(|| vec![0; buckets.len]);
            for (r, p) in row.iter_mut().zip(&points) {
                *r += p;
            }
        }
    }
    let mut rows: Vec<(Labels, Vec<u64>)> = series
        .into_iter()
        .filter(|(_, points)| points.iter().any(|b| *b > 0))
        .collect();
    rows.sort_by(|a, b| {
        b.1.iter()
            .sum::<u64>()
            .cmp(&a.1.iter().sum::<u64>())
            .then_with(|| a.0.cmp(&b.0))
    });
    rows.truncate(vq.limit);
    // As Loki's `toPrometheusData`: a vector unless some series has more
    // than one sample (empty buckets have no sample).
    let samples = |points: &[u64]| points.iter().filter(|b| **b > 0).count();
    let matrix = rows.iter().any(|(_, points)| samples(points) > 1);
    let result_type = if matrix { "matrix" } else { "vector" };
    let mut out = format!(
        "{{\"status\":\"success\",\"data\":{{\"resultType\":\"{result_type}\",\"result\":["
    )
    .into_bytes();
    for (i, (labels, points)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"metric\":");
        write_labels(&mut out, labels);
        out.extend_from_slice(if matrix {
            b",\"values\":["
        } else {
            b",\"value\":"
        });
        let mut first_point = true;
        for (k, bytes) in points.iter().enumerate() {
            if *bytes == 0 {
                continue;
            }
            if !first_point {
                out.push(b',');
            }
            first_point = false;
            let ts = Timestamp::from_nanos(first + k as i64 * step);
            out.extend_from_slice(format!("[{},\"{bytes}\"]", format_seconds(ts)).as_bytes());
        }
        out.extend_from_slice(if matrix { b"]}" } else { b"}" });
    }
    out.extend_from_slice(b"]");
    write_volume_stats(&mut out);
    out.extend_from_slice(b"}}");
    Ok(json_response(StatusCode::OK, out))
}
