//! Decoding push bodies exactly as Loki's `pkg/loghttp/push/push.go` does.
//!
//! | Content-Type                  | Content-Encoding          | body                          |
//! |-------------------------------|---------------------------|-------------------------------|
//! | `application/json`            | none, `gzip`, `deflate`   | JSON v1 (legacy v0 on `/api/prom/push`) |
//! | anything else (incl. x-protobuf, form) | none, `snappy` (no-op), `gzip`, `deflate` | snappy block of `logproto.PushRequest` |
//! | missing                       | –                         | 400 `mime: no media type`     |
//! | any                           | other                     | 400 `Content-Encoding "x" not supported` |
//!
//! JSON strings without escapes and protobuf lines are zero-copy slices of
//! the request body.
//!
//! Decompression is bounded twice: one body may not decompress to more than
//! `distributor.max_decompressed_size` (checked as the output grows for
//! gzip/deflate, and against the length a snappy block declares before
//! anything is allocated), and all decodes together may hold at most
//! [`DecodeBudget`]'s bytes of decompressed output — a request that would
//! exceed it is refused with a retryable 503 instead of taking memory.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use prost::Message;
use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};

use crate::ingest::{PushRequest, PushStream, StreamLabels};
use crate::model::{Entry, MetadataPair, Timestamp};
use crate::proto;

/// Bytes of decompressed output reserved at a time while inflating.
const RESERVE_STEP: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Busy(String),
}

impl DecodeError {
    pub fn status(&self) -> u16 {
        match self {
            DecodeError::BadRequest(_) => 400,
            DecodeError::TooLarge(_) => 413,
            DecodeError::Busy(_) => 503,
        }
    }
}

/// Bytes of decompressed push bodies all requests together may hold.
/// Reservations never wait: a request that does not fit is refused (503,
/// retryable), so two large decodes can never deadlock on each other.
#[derive(Debug)]
pub struct DecodeBudget {
    limit: u64,
    used: AtomicU64,
}

impl DecodeBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(DecodeBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// Bytes reserved right now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// An empty reservation, grown with [`Reservation::grow`].
    pub fn reserve(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: self.clone(),
            held: 0,
        }
    }
}

/// Bytes of a [`DecodeBudget`] held by one request until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<DecodeBudget>,
    held: u64,
}

impl Reservation {
    /// Reserves `n` more bytes, or fails at once when the budget is spent.
    pub fn grow(&mut self, n: u64) -> Result<(), DecodeError> {
        let b = &self.budget;
        b.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= b.limit)
            })
            .map_err(|_| {
                DecodeError::Busy(format!(
                    "too many compressed push bytes are being decompressed at once ({} bytes held, {n} more wanted, at most {}); retry later",
                    b.used(),
                    b.limit
                ))
            })?;
        self.held += n;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

/// Limits of one push decode.
#[derive(Debug, Clone)]
pub struct DecodeLimits {
    /// `distributor.max_decompressed_size`.
    pub max_decompressed: u64,
    /// Shared by concurrent decodes.
    pub budget: Arc<DecodeBudget>,
}

impl DecodeLimits {
    /// No shared budget beyond the one body (tests, fuzzing).
    pub fn unshared(max_decompressed: u64) -> Self {
        DecodeLimits {
            max_decompressed,
            budget: DecodeBudget::new(u64::MAX),
        }
    }
}

fn too_large(max: u64) -> DecodeError {
    DecodeError::TooLarge(format!(
        "decompressed message larger than max (>{max} bytes, distributor.max_decompressed_size)"
    ))
}

fn bad(msg: impl Into<String>) -> DecodeError {
    DecodeError::BadRequest(msg.into())
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Encoding {
    Identity,
    Snappy,
    Gzip,
    Deflate,
}

/// Decodes a push body. `legacy` selects the v0 JSON shape (`/api/prom/push`).
/// The decompressed bytes stay reserved in the budget of `limits` until the
/// returned [`Reservation`] is dropped (the request borrows from them).
pub fn decode_push(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: Bytes,
    legacy: bool,
    limits: &DecodeLimits,
) -> Result<(PushRequest, Reservation), DecodeError> {
    let mut held = limits.budget.reserve();
    let mime = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime.is_empty() {
        return Err(bad("mime: no media type"));
    }
    let encoding = match content_encoding.map(str::trim).unwrap_or("") {
        "" => Encoding::Identity,
        e if e.eq_ignore_ascii_case("snappy") => Encoding::Snappy,
        e if e.eq_ignore_ascii_case("gzip") => Encoding::Gzip,
        e if e.eq_ignore_ascii_case("deflate") => Encoding::Deflate,
        other => return Err(bad(format!("Content-Encoding {other:?} not supported"))),
    };
    let max = limits.max_decompressed;
    let body = match encoding {
        Encoding::Gzip => inflate(flate2::read::MultiGzDecoder::new(&body[..]), max, &mut held)?,
        Encoding::Deflate => inflate(flate2::read::DeflateDecoder::new(&body[..]), max, &mut held)?,
        Encoding::Identity | Encoding::Snappy => body,
    };
    let req = if mime == "application/json" {
        // Snappy is not undone for JSON: such a body fails to parse, as in Loki.
        if legacy {
            decode_legacy_json(&body)
        } else {
            decode_json(&body)
        }
    } else {
        decode_protobuf(body, max, &mut held)
    }?;
    Ok((req, held))
}

/// Inflates at most `max` bytes, reserving the output in `held` as it
/// grows: a gzip bomb stops at `max + 1` bytes, whatever it would expand to.
fn inflate(mut r: impl Read, max: u64, held: &mut Reservation) -> Result<Bytes, DecodeError> {
    let mut out: Vec<u8> = Vec::new();
    let mut reserved = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad(format!("decompressing request body: {e}"))),
        };
        let len = out.len() as u64 + n as u64;
        if len > max {
            return Err(too_large(max));
        }
        if len > reserved {
            let step = RESERVE_STEP.max(len - reserved).min(max - reserved);
            held.grow(step)?;
            reserved += step;
            // Allocate what is reserved, not what Vec doubling would pick.
            out.reserve_exact((reserved as usize).saturating_sub(out.len()));
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(Bytes::from(out))
}

/// Snappy block format, then `logproto.PushRequest`; the decompressed
/// length is reserved in `held`.
fn decode_protobuf(
    body: Bytes,
    max_decompressed: u64,
    held: &mut Reservation,
) -> Result<PushRequest, DecodeError> {
    // The block declares its decoded length up front: checked before
    // anything is allocated.
    let len = snap::raw::decompress_len(&body).map_err(|e| bad(format!("snappy: {e}")))? as u64;
    if len > max_decompressed {
        return Err(too_large(max_decompressed));
    }
    held.grow(len)?;
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .map_err(|e| bad(format!("snappy: {e}")))?;
    let req =
        proto::PushRequest::decode(Bytes::from(raw)).map_err(|e| bad(format!("proto: {e}")))?;
    let mut streams = Vec::with_capacity(req.streams.len());
    for s in req.streams {
        let labels =
            String::from_utf8(s.labels.to_vec()).map_err(|_| bad("labels are not valid UTF-8"))?;
        let mut entries = Vec::with_capacity(s.entries.len());
        for e in s.entries {
            let ts = e.timestamp.map_or(Timestamp::EPOCH, |t| {
                Timestamp::from_nanos(
                    t.seconds
                        .saturating_mul(1_000_000_000)
                        .saturating_add(i64::from(t.nanos)),
                )
            });
            let metadata = e
                .structured_metadata
                .into_iter()
                .map(|p| MetadataPair {
                    name: p.name,
                    value: p.value,
                })
                .collect();
            entries.push(Entry {
                ts,
                line: e.line,
                metadata,
            });
        }
        streams.push(PushStream {
            labels: StreamLabels::Text(labels),
            entries,
        });
    }
    Ok(PushRequest { streams })
}

/// A JSON string as a zero-copy slice of `body` when it had no escapes.
fn to_bytes(body: &Bytes, s: Cow<'_, str>) -> Bytes {
    match s {
        Cow::Borrowed(b) => body.slice_ref(b.as_bytes()),
        Cow::Owned(o) => Bytes::from(o),
    }
}

#[derive(Deserialize)]
struct JsonPush<'a> {
    #[serde(borrow, default)]
    streams: Option<Vec<Option<JsonStream<'a>>>>,
}

#[derive(Deserialize)]
struct JsonStream<'a> {
    #[serde(borrow, default)]
    stream: Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
    #[serde(borrow, default)]
    values: Option<Vec<Option<JsonEntry<'a>>>>,
}

/// `["<ns>", "<line>", {"k": "v"}?]`
struct JsonEntry<'a> {
    ts: Cow<'a, str>,
    line: Cow<'a, str>,
    metadata: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonEntry<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = JsonEntry<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array [\"<timestamp ns>\", \"<line>\", {structured metadata}?]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let ts: JsonString<'a> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("an entry needs a timestamp and a line"))?;
                let line: JsonString<'a> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("an entry needs a timestamp and a line"))?;
                let md: Option<Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>> =
                    seq.next_element()?;
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(JsonEntry {
                    ts: ts.0,
                    line: line.0,
                    metadata: md
                        .flatten()
                        .map(|m| m.into_iter().collect())
                        .unwrap_or_default(),
                })
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A value that must be a JSON string (Loki rejects numeric timestamps).
struct JsonString<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for JsonString<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = JsonString<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonString(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonString(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(JsonString(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

fn parse_ns(ts: &str) -> Result<Timestamp, DecodeError> {
    ts.parse::<i64>().map(Timestamp::from_nanos).map_err(|_| {
        bad(format!(
            "loghttp: invalid timestamp {ts:?}, expected a string of nanoseconds since the epoch"
        ))
    })
}

/// JSON v1: `{"streams":[{"stream":{…},"values":[["<ns>","<line>",{…}?]]}]}`.
pub fn decode_json(body: &Bytes) -> Result<PushRequest, DecodeError> {
    let push: JsonPush<'_> =
        serde_json::from_slice(body).map_err(|e| bad(format!("loghttp: {e}")))?;
    let mut streams = Vec::new();
    for s in push.streams.unwrap_or_default().into_iter().flatten() {
        let labels = s
            .stream
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut entries = Vec::new();
        for e in s.values.unwrap_or_default().into_iter().flatten() {
            let ts = parse_ns(&e.ts)?;
            let metadata = e
                .metadata
                .into_iter()
                .map(|(k, v)| MetadataPair {
                    name: to_bytes(body, k),
                    value: to_bytes(body, v),
                })
                .collect();
            entries.push(Entry {
                ts,
                line: to_bytes(body, e.line),
                metadata,
            });
        }
        streams.push(PushStream {
            labels: StreamLabels::Pairs(labels),
            entries,
        });
    }
    Ok(PushRequest { streams })
}

#[derive(Deserialize)]
struct LegacyPush<'a> {
    #[serde(borrow, default)]
    streams: Option<Vec<Option<LegacyStream<'a>>>>,
}

#[derive(Deserialize)]
struct LegacyStream<'a> {
    #[serde(borrow, default)]
    labels: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    entries: Option<Vec<Option<LegacyEntry<'a>>>>,
}

#[derive(Deserialize)]
struct LegacyEntry<'a> {
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    line: Cow<'a, str>,
    #[serde(borrow, default, rename = "structuredMetadata")]
    structured_metadata: Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
}

/// Legacy v0 JSON (`/api/prom/push`): labels as a string, RFC 3339 timestamps.
pub fn decode_legacy_json(body: &Bytes) -> Result<PushRequest, DecodeError> {
    let push: LegacyPush<'_> =
        serde_json::from_slice(body).map_err(|e| bad(format!("loghttp: {e}")))?;
    let mut streams = Vec::new();
    for s in push.streams.unwrap_or_default().into_iter().flatten() {
        let mut entries = Vec::new();
        for e in s.entries.unwrap_or_default().into_iter().flatten() {
            let ts = Timestamp::parse_rfc3339(&e.ts)
                .ok_or_else(|| bad(format!("loghttp: invalid RFC3339 timestamp {:?}", e.ts)))?;
            let metadata = e
                .structured_metadata
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| MetadataPair {
                    name: to_bytes(body, k),
                    value: to_bytes(body, v),
                })
                .collect();
            entries.push(Entry {
                ts,
                line: to_bytes(body, e.line),
                metadata,
            });
        }
        let labels = s.labels.map(Cow::into_owned).unwrap_or_default();
        streams.push(PushStream {
            labels: StreamLabels::Text(labels),
            entries,
        });
    }
    Ok(PushRequest { streams })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const MAX: u64 = 100 << 20;

    /// [`super::decode_push`] with only a per-body limit.
    fn decode_push(
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        body: Bytes,
        legacy: bool,
        max: u64,
    ) -> Result<PushRequest, DecodeError> {
        super::decode_push(
            content_type,
            content_encoding,
            body,
            legacy,
            &DecodeLimits::unshared(max),
        )
        .map(|(req, _)| req)
    }

    fn gzip_zeros(n: usize) -> Bytes {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(zeros.len());
            gz.write_all(&zeros[..k]).unwrap();
            left -= k;
        }
        Bytes::from(gz.finish().unwrap())
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit_and_names_the_key() {
        // 256 MiB of zeros in a few hundred KB; the limit is 4 MiB.
        let bomb = gzip_zeros(256 << 20);
        let limits = DecodeLimits::unshared(4 << 20);
        let err = super::decode_push(Some("application/json"), Some("gzip"), bomb, false, &limits)
            .unwrap_err();
        assert_eq!(err.status(), 413);
        assert!(
            err.to_string()
                .contains("distributor.max_decompressed_size"),
            "{err}"
        );
        assert_eq!(limits.budget.used(), 0, "released on error");
    }

    #[test]
    fn snappy_declared_length_is_checked_before_allocating() {
        // A snappy block whose header claims 1 GiB, followed by nothing.
        let body = Bytes::from_static(b"\x80\x80\x80\x80\x04");
        let err = decode_push(Some("application/x-protobuf"), None, body, false, MAX).unwrap_err();
        assert_eq!(err.status(), 413, "{err}");
    }

    #[test]
    fn concurrent_decodes_share_one_budget() {
        let limits = DecodeLimits {
            max_decompressed: 8 << 20,
            budget: DecodeBudget::new(6 << 20),
        };
        let json = |n: usize| {
            let line = "x".repeat(n);
            let body =
                format!(r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[["5","{line}"]]}}]}}"#);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(body.as_bytes()).unwrap();
            Bytes::from(gz.finish().unwrap())
        };
        let (_, held) = super::decode_push(
            Some("application/json"),
            Some("gzip"),
            json(4 << 20),
            false,
            &limits,
        )
        .unwrap();
        assert!(limits.budget.used() >= 4 << 20);
        // A second large body does not fit while the first is held: 503.
        let err = super::decode_push(
            Some("application/json"),
            Some("gzip"),
            json(4 << 20),
            false,
            &limits,
        )
        .unwrap_err();
        assert_eq!(err.status(), 503, "{err}");
        assert!(limits.budget.used() >= 4 << 20);
        drop(held);
        assert_eq!(limits.budget.used(), 0);
        assert!(
            super::decode_push(
                Some("application/json"),
                Some("gzip"),
                json(4 << 20),
                false,
                &limits
            )
            .is_ok()
        );
        assert_eq!(limits.budget.used(), 0);
    }

    fn proto_body(labels: &str, lines: &[(i64, &str)]) -> Bytes {
        let req = proto::PushRequest {
            streams: vec![proto::StreamAdapter {
                labels: Bytes::from(labels.to_string()),
                entries: lines
                    .iter()
                    .map(|(ns, l)| proto::EntryAdapter {
                        timestamp: Some(prost_types::Timestamp {
                            seconds: ns / 1_000_000_000,
                            nanos: (ns % 1_000_000_000) as i32,
                        }),
                        line: Bytes::from(l.to_string()),
                        structured_metadata: vec![proto::LabelPairAdapter {
                            name: "trace_id".into(),
                            value: "abc".into(),
                        }],
                        parsed: vec![],
                    })
                    .collect(),
                hash: 0,
            }],
            format: String::new(),
        };
        let raw = req.encode_to_vec();
        Bytes::from(snap::raw::Encoder::new().compress_vec(&raw).unwrap())
    }

    #[test]
    fn protobuf_with_and_without_snappy_label() {
        let body = proto_body(
            r#"{level="info",app="x"}"#,
            &[(1_700_000_000_123_456_789, "hello")],
        );
        for enc in [None, Some("snappy")] {
            let req = decode_push(
                Some("application/x-protobuf"),
                enc,
                body.clone(),
                false,
                MAX,
            )
            .unwrap();
            assert_eq!(req.streams.len(), 1);
            let e = &req.streams[0].entries[0];
            assert_eq!(e.ts.nanos(), 1_700_000_000_123_456_789);
            assert_eq!(&e.line[..], b"hello");
            assert_eq!(e.metadata[0].value_str(), "abc");
        }
        // curl's default content type is treated as protobuf, as Loki does.
        assert!(
            decode_push(
                Some("application/x-www-form-urlencoded"),
                None,
                body,
                false,
                MAX
            )
            .is_ok()
        );
    }

    #[test]
    fn json_v1_shapes() {
        let body = Bytes::from_static(
            br#"{"streams":[{"stream":{"app":"a"},"values":[["1700000000000000001","plain"],["2","esc \"q\"",{"trace_id":"t1"}],null],"extra":1},null],"ignored":true}"#,
        );
        let req = decode_push(
            Some("application/json; charset=utf-8"),
            None,
            body.clone(),
            false,
            MAX,
        )
        .unwrap();
        let s = &req.streams[0];
        assert!(
            matches!(&s.labels, StreamLabels::Pairs(p) if p == &[("app".to_string(), "a".to_string())])
        );
        assert_eq!(s.entries.len(), 2);
        assert_eq!(&s.entries[1].line[..], br#"esc "q""#);
        assert_eq!(s.entries[1].metadata[0].name_str(), "trace_id");
        // Unescaped strings are slices of the request body, not copies.
        let body_range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
        assert!(body_range.contains(&(s.entries[0].line.as_ptr() as usize)));
    }

    #[test]
    fn json_rejects_numeric_timestamps_and_garbage() {
        let num = Bytes::from_static(br#"{"streams":[{"stream":{"a":"b"},"values":[[1,"x"]]}]}"#);
        assert_eq!(
            decode_push(Some("application/json"), None, num, false, MAX)
                .unwrap_err()
                .status(),
            400
        );
        let bad_ts = Bytes::from_static(
            br#"{"streams":[{"stream":{"a":"b"},"values":[["2024-01-01","x"]]}]}"#,
        );
        assert!(decode_push(Some("application/json"), None, bad_ts, false, MAX).is_err());
        let garbage = Bytes::from_static(b"{not json");
        assert!(decode_push(Some("application/json"), None, garbage, false, MAX).is_err());
    }

    #[test]
    fn gzip_and_deflate_json() {
        let json = br#"{"streams":[{"stream":{"a":"b"},"values":[["5","zipped"]]}]}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json).unwrap();
        let req = decode_push(
            Some("application/json"),
            Some("gzip"),
            Bytes::from(gz.finish().unwrap()),
            false,
            MAX,
        );
        assert_eq!(&req.unwrap().streams[0].entries[0].line[..], b"zipped");
        let mut df = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        df.write_all(json).unwrap();
        let req = decode_push(
            Some("application/json"),
            Some("deflate"),
            Bytes::from(df.finish().unwrap()),
            false,
            MAX,
        );
        assert_eq!(req.unwrap().streams[0].entries.len(), 1);
        // A decompression bomb larger than the limit is 413.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 10_000]).unwrap();
        let err = decode_push(
            Some("application/json"),
            Some("gzip"),
            Bytes::from(gz.finish().unwrap()),
            false,
            1000,
        );
        assert_eq!(err.unwrap_err().status(), 413);
    }

    /// Go's gzip reader (which Loki uses) reads every member of a
    /// multi-member body, as `cat a.gz b.gz` makes.
    #[test]
    fn gzip_bodies_with_several_members_decode_whole() {
        let json = br#"{"streams":[{"stream":{"a":"b"},"values":[["5","two members"]]}]}"#;
        let (head, tail) = json.split_at(20);
        let mut body = Vec::new();
        for part in [head, tail] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).unwrap();
            body.extend(gz.finish().unwrap());
        }
        let req = decode_push(
            Some("application/json"),
            Some("gzip"),
            Bytes::from(body),
            false,
            MAX,
        );
        assert_eq!(&req.unwrap().streams[0].entries[0].line[..], b"two members");
    }

    #[test]
    fn header_rules() {
        let body = Bytes::from_static(b"{}");
        assert_eq!(
            decode_push(None, None, body.clone(), false, MAX).unwrap_err(),
            DecodeError::BadRequest("mime: no media type".into())
        );
        assert_eq!(
            decode_push(
                Some("application/json"),
                Some("br"),
                body.clone(),
                false,
                MAX
            )
            .unwrap_err(),
            DecodeError::BadRequest("Content-Encoding \"br\" not supported".into())
        );
        // Snappy-encoded JSON is not decompressed, so it fails as JSON.
        let snappy_json = Bytes::from(
            snap::raw::Encoder::new()
                .compress_vec(br#"{"streams":[]}"#)
                .unwrap(),
        );
        assert!(
            decode_push(
                Some("application/json"),
                Some("snappy"),
                snappy_json,
                false,
                MAX
            )
            .is_err()
        );
        assert!(
            decode_push(
                Some("application/x-protobuf"),
                None,
                Bytes::from_static(b"\xff\xff\xff"),
                false,
                MAX
            )
            .is_err()
        );
        let not_proto = Bytes::from(
            snap::raw::Encoder::new()
                .compress_vec(b"\x0a\xff\xff\xff\xff")
                .unwrap(),
        );
        assert!(decode_push(Some("application/x-protobuf"), None, not_proto, false, MAX).is_err());
    }

    #[test]
    fn legacy_json() {
        let body = Bytes::from_static(
            br#"{"streams":[{"labels":"{test=\"test\"}","entries":[{"ts":"2019-09-13T18:32:22.380001319Z","line":"super line","structuredMetadata":{"a":"1"}}]}]}"#,
        );
        let req = decode_push(Some("application/json"), None, body, true, MAX).unwrap();
        let e = &req.streams[0].entries[0];
        assert_eq!(e.ts.nanos(), 1_568_399_542_380_001_319);
        assert_eq!(e.metadata.len(), 1);
        assert!(matches!(&req.streams[0].labels, StreamLabels::Text(t) if t == r#"{test="test"}"#));
    }
}
