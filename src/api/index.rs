//! `/loki/api/v1/index/stats`, `/index/volume` and `/index/volume_range`:
//! counts computed from index and block metadata (entries and uncompressed
//! bytes recorded per chunk and block), never by decompressing chunks.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::encode::{format_seconds, stats_json, write_labels};
use super::params::{self, Params};
use super::query::{request_params, selector_matchers};
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
                bytes: b.lines_data().len() as u64,
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
    let matchers = selector_matchers(q)?;
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
    let matcher_names: Vec<String> = selector_matchers(q)?
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

pub async fn volume_range(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = request_params(q, &headers, &body);
    let vq = volume_query(&p)?;
    let rp = params::range_params(&p, Timestamp::now())?;
    let (streams, start, end) = select(&st, &headers, &p).await?;
    let step = i64::try_from(rp.step.as_nanos()).unwrap_or(i64::MAX).max(1);
    let first = start.nanos().div_euclid(step) * step;
    let nsteps = ((end.nanos() - first) / step + 1).max(1) as usize;
    // Bytes are counted at the step bucket holding each source's newest entry.
    let mut series: BTreeMap<Labels, Vec<u64>> = BTreeMap::new();
    for s in &streams {
        for src in &s.sources {
            let (c, last) = source_counts(src);
            let t = last.nanos().clamp(start.nanos(), end.nanos());
            let idx = (((t - first) + step - 1) / step).clamp(0, nsteps as i64 - 1) as usize;
            for key in volume_keys(&s.labels, &vq.targets, vq.by_labels, &vq.matcher_names) {
                series.entry(key).or_insert_with(|| vec![0; nsteps])[idx] += c.bytes;
            }
        }
    }
    let mut rows: Vec<(Labels, Vec<u64>)> = series.into_iter().collect();
    rows.sort_by(|a, b| {
        b.1.iter()
            .sum::<u64>()
            .cmp(&a.1.iter().sum::<u64>())
            .then_with(|| a.0.cmp(&b.0))
    });
    rows.truncate(vq.limit);
    let mut out =
        b"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[".to_vec();
    for (i, (labels, points)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"metric\":");
        write_labels(&mut out, labels);
        out.extend_from_slice(b",\"values\":[");
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
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]");
    write_volume_stats(&mut out);
    out.extend_from_slice(b"}}");
    Ok(json_response(StatusCode::OK, out))
}
