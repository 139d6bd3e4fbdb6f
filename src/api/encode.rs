//! Loki's JSON response shapes, written straight into a byte buffer.
//!
//! - streams: `{"stream":{..},"values":[["<ns>","<line>"],..]}`; with
//!   categorize-labels every value is `[ns, line, {"structuredMetadata":{..},
//!   "parsed":{..}}]` (empty maps omitted) and `"encodingFlags"` precedes
//!   `"result"`.
//! - matrix/vector: `[<unix seconds with ms fraction, a JSON number>, "<value>"]`,
//!   values printed as Go's `strconv.FormatFloat(v, 'f', -1, 64)` with
//!   `NaN`, `+Inf`, `-Inf`.
//! - scalar (instant queries): `[<unix milliseconds>, "<value>"]`, as Loki
//!   prints it.
//! - `stats`: every key of Loki's stats object, always present.

use std::borrow::Cow;

use crate::logql::result::{QueryData, QueryResponse, QueryStats, ResultEntry};
use crate::model::{Labels, Timestamp};

/// Appends `s` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

pub fn write_labels(out: &mut Vec<u8>, labels: &Labels) {
    out.push(b'{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, &l.name);
        out.push(b':');
        write_str(out, &l.value);
    }
    out.push(b'}');
}

/// Go's `FormatFloat(v, 'f', -1, 64)` with Prometheus' special values.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

/// Unix seconds with a millisecond fraction, as Prometheus' `model.Time`.
pub fn format_seconds(ts: Timestamp) -> String {
    let ms = ts.millis();
    let (secs, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    if frac == 0 {
        format!("{secs}")
    } else {
        let f = format!("{frac:03}");
        format!("{secs}.{}", f.trim_end_matches('0'))
    }
}

fn write_point(out: &mut Vec<u8>, ts: &str, v: f64) {
    out.push(b'[');
    out.extend_from_slice(ts.as_bytes());
    out.push(b',');
    write_str(out, &format_value(v));
    out.push(b']');
}

fn write_entry(out: &mut Vec<u8>, e: &ResultEntry, categorized: bool) {
    out.extend_from_slice(b"[\"");
    out.extend_from_slice(e.ts.nanos().to_string().as_bytes());
    out.extend_from_slice(b"\",");
    let line: Cow<'_, str> = String::from_utf8_lossy(&e.line);
    write_str(out, &line);
    if categorized {
        out.extend_from_slice(b",{");
        let mut first = true;
        if !e.structured_metadata.is_empty() {
            out.extend_from_slice(b"\"structuredMetadata\":");
            write_labels(out, &e.structured_metadata);
            first = false;
        }
        if !e.parsed.is_empty() {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(b"\"parsed\":");
            write_labels(out, &e.parsed);
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// `{"status":"success","data":{...,"stats":{...}}}` for query and query_range.
pub fn query_response(resp: &QueryResponse, categorized: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"{\"status\":\"success\",\"data\":{\"resultType\":");
    match &resp.data {
        QueryData::Streams(streams) => {
            out.extend_from_slice(b"\"streams\",");
            if categorized {
                out.extend_from_slice(b"\"encodingFlags\":[\"categorize-labels\"],");
            }
            out.extend_from_slice(b"\"result\":[");
            for (i, s) in streams.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"stream\":");
                write_labels(&mut out, &s.labels);
                out.extend_from_slice(b",\"values\":[");
                for (j, e) in s.entries.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    write_entry(&mut out, e, categorized);
                }
                out.extend_from_slice(b"]}");
            }
            out.push(b']');
        }
        QueryData::Matrix(series) => {
            out.extend_from_slice(b"\"matrix\",\"result\":[");
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"metric\":");
                write_labels(&mut out, &s.metric);
                out.extend_from_slice(b",\"values\":[");
                for (j, (ts, v)) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    write_point(&mut out, &format_seconds(*ts), *v);
                }
                out.extend_from_slice(b"]}");
            }
            out.push(b']');
        }
        QueryData::Vector(samples) => {
            out.extend_from_slice(b"\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"metric\":");
                write_labels(&mut out, &s.metric);
                out.extend_from_slice(b",\"value\":");
                write_point(&mut out, &format_seconds(s.ts), s.value);
                out.push(b'}');
            }
            out.push(b']');
        }
        QueryData::Scalar(ts, v) => {
            out.extend_from_slice(b"\"scalar\",\"result\":");
            write_point(&mut out, &ts.millis().to_string(), *v);
        }
    }
    out.extend_from_slice(b",\"stats\":");
    write_stats(&mut out, &resp.stats);
    out.push(b'}');
    if !resp.warnings.is_empty() {
        out.extend_from_slice(b",\"warnings\":");
        let _ = serde_json::to_writer(&mut out, &resp.warnings);
    }
    out.push(b'}');
    out
}

/// Loki's full `stats` object; the figures lokal measures are filled in.
pub fn stats_json(s: &QueryStats) -> serde_json::Value {
    use serde_json::json;
    let per_sec = |n: u64| {
        if s.exec_time_secs > 0.0 {
            (n as f64 / s.exec_time_secs) as u64
        } else {
            0
        }
    };
    let chunk = json!({
        "headChunkBytes": s.head_chunk_bytes,
        "headChunkLines": s.head_chunk_lines,
        "decompressedBytes": s.decompressed_bytes,
        "decompressedLines": s.decompressed_lines,
        "compressedBytes": s.compressed_bytes,
        "totalDuplicates": 0,
        "postFilterLines": s.post_filter_lines,
        "headChunkStructuredMetadataBytes": s.head_chunk_structured_metadata_bytes,
        "decompressedStructuredMetadataBytes": s.decompressed_structured_metadata_bytes,
    });
    let dataobj = json!({
        "prePredicateDecompressedRows": 0, "prePredicateDecompressedBytes": 0,
        "prePredicateDecompressedStructuredMetadataBytes": 0, "postPredicateRows": 0,
        "postPredicateDecompressedBytes": 0, "postPredicateStructuredMetadataBytes": 0,
        "postFilterRows": 0, "pagesScanned": 0, "pagesDownloaded": 0, "pagesDownloadedBytes": 0,
        "pageBatches": 0, "totalRowsAvailable": 0, "totalPageDownloadTime": 0,
        "wireBytesTransferred": 0,
    });
    let store = json!({
        "totalChunksRef": s.chunks_ref,
        "totalChunksDownloaded": s.chunks_downloaded,
        "chunksDownloadTime": (s.chunks_download_time_secs * 1e9) as u64,
        "queryReferencedStructuredMetadata": false,
        "queryUsedV2Engine": false,
        "chunkRefsFetchTime": (s.chunk_refs_fetch_time_secs * 1e9) as u64,
        "congestionControlLatency": 0,
        "pipelineWrapperFilteredLines": 0,
        "chunk": chunk,
        "dataobj": dataobj,
    });
    let cache = json!({
        "entriesFound": 0, "entriesRequested": 0, "entriesStored": 0, "bytesReceived": 0,
        "bytesSent": 0, "requests": 0, "downloadTime": 0, "queryLengthServed": 0,
    });
    json!({
        "summary": {
            "bytesProcessedPerSecond": per_sec(s.total_bytes_processed()),
            "linesProcessedPerSecond": per_sec(s.total_lines_processed()),
            "totalBytesProcessed": s.total_bytes_processed(),
            "totalLinesProcessed": s.total_lines_processed(),
            "execTime": s.exec_time_secs,
            "queueTime": s.queue_time_secs,
            "subqueries": 0,
            "totalEntriesReturned": s.total_entries_returned,
            "splits": 0,
            "shards": 0,
            "totalPostFilterLines": s.post_filter_lines,
            "totalStructuredMetadataBytesProcessed": s.structured_metadata_bytes_processed(),
        },
        // lokal has no separate querier: its execution time is the query's.
        "querier": { "store": store, "querierExecTime": s.exec_time_secs },
        "ingester": {
            "totalReached": 0, "totalChunksMatched": 0, "totalBatches": 0, "totalLinesSent": 0,
            "store": {
                "totalChunksRef": 0, "totalChunksDownloaded": 0, "chunksDownloadTime": 0,
                "queryReferencedStructuredMetadata": false,
                "queryUsedV2Engine": false, "chunkRefsFetchTime": 0, "congestionControlLatency": 0,
                "pipelineWrapperFilteredLines": 0,
                "chunk": {
                    "headChunkBytes": 0, "headChunkLines": 0, "decompressedBytes": 0,
                    "decompressedLines": 0, "compressedBytes": 0, "totalDuplicates": 0,
                    "postFilterLines": 0, "headChunkStructuredMetadataBytes": 0,
                    "decompressedStructuredMetadataBytes": 0,
                },
                "dataobj": dataobj,
            },
            "recvWaitTime": 0,
        },
        "cache": {
            "chunk": cache, "index": cache, "result": cache, "statsResult": cache,
            "volumeResult": cache, "seriesResult": cache, "labelResult": cache,
            "instantMetricResult": cache, "logResult": cache, "taskResult": cache,
        },
        "index": {
            "totalChunks": s.total_chunks, "postFilterChunks": s.post_filter_chunks,
            "shardsDuration": 0, "usedBloomFilters": false, "totalStreams": s.total_streams,
            "chunkRefsLookupTime": 0, "bloomFilterTime": 0,
        },
    })
}

fn write_stats(out: &mut Vec<u8>, s: &QueryStats) {
    let _ = serde_json::to_writer(&mut *out, &stats_json(s));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::result::{Sample, Series, StreamResult};

    fn labels(s: &str) -> Labels {
        Labels::parse(s).unwrap()
    }

    fn parse(v: &[u8]) -> serde_json::Value {
        serde_json::from_slice(v).unwrap()
    }

    #[test]
    fn streams_plain_and_categorized() {
        let entry = ResultEntry {
            ts: Timestamp::from_nanos(1_793_527_200_000_000_001),
            line: "a \"quoted\" line".into(),
            structured_metadata: labels(r#"{trace_id="t"}"#),
            parsed: Labels::empty(),
        };
        let resp = QueryResponse {
            data: QueryData::Streams(vec![StreamResult {
                labels: labels(r#"{app="x"}"#),
                entries: vec![entry],
            }]),
            stats: QueryStats::default(),
            warnings: vec![],
        };
        let plain = parse(&query_response(&resp, false));
        assert_eq!(plain["data"]["resultType"], "streams");
        assert_eq!(
            plain["data"]["result"][0]["values"][0],
            serde_json::json!(["1793527200000000001", "a \"quoted\" line"])
        );
        assert!(plain["data"].get("encodingFlags").is_none());
        assert!(plain["data"]["stats"]["summary"]["execTime"].is_number());
        let cat = query_response(&resp, true);
        let text = String::from_utf8(cat.clone()).unwrap();
        assert!(
            text.contains(
                r#""resultType":"streams","encodingFlags":["categorize-labels"],"result""#
            )
        );
        let cat = parse(&cat);
        assert_eq!(
            cat["data"]["result"][0]["values"][0][2],
            serde_json::json!({"structuredMetadata": {"trace_id": "t"}})
        );
    }

    #[test]
    fn metric_shapes() {
        let m = QueryResponse {
            data: QueryData::Matrix(vec![Series {
                metric: labels(r#"{env="prod"}"#),
                points: vec![
                    (Timestamp::from_secs(1_793_527_200), 1.0 / 60.0),
                    (Timestamp::from_millis(1_793_527_200_500), f64::NAN),
                ],
            }]),
            stats: QueryStats::default(),
            warnings: vec![],
        };
        let v = parse(&query_response(&m, false));
        assert_eq!(
            v["data"]["result"][0]["values"][0],
            serde_json::json!([1793527200, "0.016666666666666666"])
        );
        assert_eq!(
            v["data"]["result"][0]["values"][1],
            serde_json::json!([1793527200.5, "NaN"])
        );
        let vec = QueryResponse {
            data: QueryData::Vector(vec![Sample {
                metric: Labels::empty(),
                ts: Timestamp::from_secs(4_000_000_000),
                value: 2.0,
            }]),
            stats: QueryStats::default(),
            warnings: vec![],
        };
        let v = parse(&query_response(&vec, false));
        assert_eq!(
            v["data"]["result"][0]["value"],
            serde_json::json!([4000000000u64, "2"])
        );
        let sc = QueryResponse {
            data: QueryData::Scalar(Timestamp::from_secs(1_793_527_200), -1500.0),
            stats: QueryStats::default(),
            warnings: vec![],
        };
        let v = parse(&query_response(&sc, false));
        assert_eq!(
            v["data"]["result"],
            serde_json::json!([1793527200000u64, "-1500"])
        );
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(0.1 + 0.2), "0.30000000000000004");
    }
}
