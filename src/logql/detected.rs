//! Field and label detection for Logs Drilldown, as Loki's query frontend
//! computes `detected_fields`, `detected_field/{name}/values`
//! (`pkg/querier/queryrange/detected_fields.go`) and the querier filters
//! `detected_labels` (`pkg/querier/querier.go`).
//!
//! Owns: field type detection ([`determine_type`]), [`FieldDetector`]
//! (structured metadata, labels the query's own parsers extracted, and the
//! json-then-logfmt parse of every line, with cardinalities, parsers and
//! JSON key paths), [`FieldValues`] (distinct values of one field, bytes
//! values normalized as Loki does) and the label rules of detected labels
//! ([`should_reject_label`]).
//!
//! Does not own: selecting the lines (a `query_range` with
//! categorize-labels, run by the API through the engine), JSON encoding.
//!
//! Invariants: cardinalities are exact distinct counts (Loki's HyperLogLog
//! is exact at these sizes); no per-value string is kept, only 64-bit
//! hashes; the type of a field is the type of the last value looked at, in
//! result order (streams by labels, entries newest first), as in Loki.

use std::collections::{HashMap, HashSet};

use crate::logql::log::convert::{parse_go_duration, parse_go_float, parse_humanize_bytes};
use crate::logql::log::{
    ERROR_DETAILS_LABEL, ERROR_LABEL, JsonParser, LabelCategory, LabelsBuilder, LineBuf,
    LineScratch, LogfmtParser, PRESERVE_ERROR_LABEL, Stage,
};
use crate::logql::result::{ResultEntry, StreamResult};
use crate::logql::syntax::golang::humanize_bytes;
use crate::model::{Labels, Timestamp};

/// A detected field's type (Loki's `DetectedFieldType`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    Int,
    Float,
    Boolean,
    Duration,
    Bytes,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Boolean => "boolean",
            FieldType::Duration => "duration",
            FieldType::Bytes => "bytes",
        }
    }
}

/// Go's `strconv.ParseBool`.
fn is_go_bool(v: &str) -> bool {
    matches!(
        v,
        "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False"
    )
}

/// Loki's `determineType`: int, float, boolean, duration, bytes, in that
/// order, each with Go's parser; anything else is a string.
pub fn determine_type(value: &str) -> FieldType {
    if value.parse::<i64>().is_ok() {
        return FieldType::Int;
    }
    if parse_go_float(value).is_ok() {
        return FieldType::Float;
    }
    if is_go_bool(value) {
        return FieldType::Boolean;
    }
    if parse_go_duration(value).is_ok() {
        return FieldType::Duration;
    }
    if parse_humanize_bytes(value).is_ok() {
        return FieldType::Bytes;
    }
    FieldType::String
}

/// `uuid.Parse` of google/uuid: 36 characters with dashes, 38 in braces,
/// 45 with `urn:uuid:`, or 32 hex digits.
fn is_uuid(v: &str) -> bool {
    let b = v.as_bytes();
    let body: &[u8] = match b.len() {
        36 => b,
        38 if b[0] == b'{' && b[37] == b'}' => &b[1..37],
        45 if v[..9].eq_ignore_ascii_case("urn:uuid:") => &b[9..],
        32 => return b.iter().all(u8::is_ascii_hexdigit),
        _ => return false,
    };
    body.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    })
}

/// Loki's `shouldRejectLabel`: a label without values, or whose values are
/// all numbers or UUIDs, is not worth breaking down by — except the
/// boolean-looking `0`/`1`.
pub fn should_reject_label(values: &[&str]) -> bool {
    if values.is_empty() {
        return true;
    }
    if values.len() <= 2 && values.iter().all(|v| matches!(*v, "0" | "1")) {
        return false;
    }
    values
        .iter()
        .all(|v| parse_go_float(v).is_ok() || is_uuid(v))
}

/// Labels Loki keeps in detected labels whenever they have values.
pub const STATIC_LABELS: &[&str] = &["cluster", "namespace", "instance", "pod"];

fn is_error_label(name: &str) -> bool {
    name == ERROR_LABEL || name == ERROR_DETAILS_LABEL || name == PRESERVE_ERROR_LABEL
}

/// One detected field, ready to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectedField {
    pub label: String,
    pub field_type: FieldType,
    pub cardinality: u64,
    /// `None` for structured metadata (encoded as `null`).
    pub parsers: Option<Vec<&'static str>>,
    /// The JSON key path, for fields the json parser found.
    pub json_path: Option<Vec<String>>,
}

#[derive(Debug)]
struct FieldAcc {
    field_type: FieldType,
    values: HashSet<u64>,
    parsers: Vec<&'static str>,
    json_path: Option<Vec<String>>,
}

impl FieldAcc {
    fn new(parsers: &[&'static str]) -> Self {
        FieldAcc {
            field_type: FieldType::String,
            values: HashSet::new(),
            parsers: parsers.to_vec(),
            json_path: None,
        }
    }
}

fn hash(v: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(v.as_bytes())
}

/// Re-parses lines as Loki's `parseEntry`: json first, logfmt when json
/// fails, with the stream's labels (minus the labels the query's own
/// parsers extracted) so colliding names get `_extracted`.
struct EntryParser {
    json: JsonParser,
    logfmt: LogfmtParser,
    scratch: LineScratch,
}

/// The labels one line yields, and the parser that produced them.
struct Parsed {
    pairs: Vec<(String, String)>,
    parser: Option<&'static str>,
}

impl EntryParser {
    fn new() -> Self {
        EntryParser {
            json: JsonParser::with_json_paths(),
            logfmt: LogfmtParser::new(false, false),
            scratch: LineScratch::default(),
        }
    }

    fn parse(&mut self, builder: &mut LabelsBuilder, line: &[u8], out: &mut Parsed) {
        out.pairs.clear();
        out.parser = None;
        builder.reset();
        let mut buf = LineBuf::new(line, &mut self.scratch);
        self.json.process(Timestamp::EPOCH, &mut buf, builder);
        let mut parser = "json";
        if builder.has_error() {
            builder.reset();
            let mut buf = LineBuf::new(line, &mut self.scratch);
            self.logfmt.process(Timestamp::EPOCH, &mut buf, builder);
            parser = "logfmt";
            if builder.has_error() {
                return;
            }
        }
        builder.for_each_label(|n, v, c| {
            if c == LabelCategory::Parsed && !is_error_label(n) {
                out.pairs.push((n.to_string(), v.to_string()));
            }
        });
        out.parser = Some(parser);
    }
}

/// The accumulator of `name`, created while fewer than `limit` exist.
fn field<'a>(
    fields: &'a mut HashMap<String, FieldAcc>,
    limit: usize,
    name: &str,
    parsers: &[&'static str],
) -> Option<&'a mut FieldAcc> {
    if !fields.contains_key(name) {
        if fields.len() >= limit {
            return None;
        }
        fields.insert(name.to_string(), FieldAcc::new(parsers));
    }
    fields.get_mut(name)
}

/// Accumulates detected fields over a query's result streams.
pub struct FieldDetector {
    limit: usize,
    fields: HashMap<String, FieldAcc>,
    parser: EntryParser,
    parsed: Parsed,
}

impl FieldDetector {
    /// At most `limit` fields are detected (Loki's `field_limit`).
    pub fn new(limit: usize) -> Self {
        FieldDetector {
            limit,
            fields: HashMap::new(),
            parser: EntryParser::new(),
            parsed: Parsed {
                pairs: Vec::new(),
                parser: None,
            },
        }
    }

    /// Adds the entries of one result stream (categorize-labels shape:
    /// stream labels only, metadata and parsed labels per entry).
    pub fn add_stream(&mut self, stream: &StreamResult) {
        for e in &stream.entries {
            self.add_entry(&stream.labels, e);
        }
    }

    fn add_entry(&mut self, stream: &Labels, e: &ResultEntry) {
        for l in e.structured_metadata.iter() {
            if let Some(f) = field(&mut self.fields, self.limit, &l.name, &[]) {
                f.field_type = determine_type(&l.value);
                f.values.insert(hash(&l.value));
            }
        }
        let mut builder = entry_builder(stream, &e.parsed);
        let mut parsed = std::mem::replace(
            &mut self.parsed,
            Parsed {
                pairs: Vec::new(),
                parser: None,
            },
        );
        self.parser.parse(&mut builder, &e.line, &mut parsed);
        let parsers: &[&'static str] = match &parsed.parser {
            Some(p) => std::slice::from_ref(p),
            None => &[],
        };
        // Labels the query's parsers extracted count as parsed values too.
        let from_query = e
            .parsed
            .iter()
            .filter(|l| !is_error_label(&l.name))
            .map(|l| (l.name.as_str(), l.value.as_str()));
        let from_line = parsed.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let json_paths = self.parser.json.json_paths();
        let mut typed: HashSet<&str> = HashSet::new();
        for (name, value) in from_query.chain(from_line) {
            let Some(f) = field(&mut self.fields, self.limit, name, parsers) else {
                continue;
            };
            if f.json_path.is_none() && parsed.parser == Some("json") {
                f.json_path = json_paths
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, p)| p.clone());
            }
            for p in parsers {
                if !f.parsers.contains(p) {
                    f.parsers.push(p);
                }
            }
            if typed.insert(name) {
                f.field_type = determine_type(value);
            }
            f.values.insert(hash(value));
        }
        self.parsed = parsed;
    }

    /// The detected fields, sorted by name.
    pub fn finish(self) -> Vec<DetectedField> {
        let mut v: Vec<DetectedField> = self
            .fields
            .into_iter()
            .map(|(label, f)| DetectedField {
                label,
                field_type: f.field_type,
                cardinality: f.values.len() as u64,
                parsers: (!f.parsers.is_empty()).then_some(f.parsers),
                json_path: f.json_path,
            })
            .collect();
        v.sort_by(|a, b| a.label.cmp(&b.label));
        v
    }
}

/// The builder an entry is re-parsed with: stream labels minus the names
/// the query's own parsers extracted.
fn entry_builder(stream: &Labels, query_parsed: &Labels) -> LabelsBuilder {
    if query_parsed.is_empty() {
        return LabelsBuilder::new(stream);
    }
    let mut base = stream.clone();
    for l in query_parsed.iter() {
        base.remove(&l.name);
    }
    LabelsBuilder::new(&base)
}

/// SI and IEC unit suffixes after which Loki rewrites a bytes value.
const BYTES_UNITS: &[&str] = &[
    "b", "kib", "kb", "mib", "mb", "gib", "gb", "tib", "tb", "pib", "pb", "eib", "eb", "ki", "k",
    "mi", "m", "gi", "g", "ti", "t", "pi", "p", "ei", "e",
];

/// Loki's value rewrite: a parsed bytes value (`1024KiB`) becomes
/// humanize's form (`1.0MB`) so it can be pasted into a query.
fn normalize_value(v: &str) -> String {
    let lower = v.to_ascii_lowercase();
    match parse_humanize_bytes(v) {
        Ok(b) if BYTES_UNITS.iter().any(|u| lower.ends_with(u)) => humanize_bytes(b),
        _ => v.to_string(),
    }
}

/// Distinct values of one field over a query's result streams.
pub struct FieldValues {
    name: String,
    limit: usize,
    values: HashSet<String>,
    parser: EntryParser,
    parsed: Parsed,
}

impl FieldValues {
    pub fn new(name: &str, limit: usize) -> Self {
        FieldValues {
            name: name.to_string(),
            limit,
            values: HashSet::new(),
            parser: EntryParser::new(),
            parsed: Parsed {
                pairs: Vec::new(),
                parser: None,
            },
        }
    }

    /// Adds one result stream; stops once `limit` values are held (checked
    /// per entry, as Loki, so the last entry may add a few more).
    pub fn add_stream(&mut self, stream: &StreamResult) {
        for e in &stream.entries {
            if self.values.len() >= self.limit {
                return;
            }
            if let Some(v) = e.structured_metadata.get(&self.name) {
                self.values.insert(v.to_string());
            }
            if let Some(v) = e.parsed.get(&self.name) {
                self.values.insert(normalize_value(v));
            }
            let mut builder = entry_builder(&stream.labels, &e.parsed);
            let mut parsed = std::mem::replace(
                &mut self.parsed,
                Parsed {
                    pairs: Vec::new(),
                    parser: None,
                },
            );
            self.parser.parse(&mut builder, &e.line, &mut parsed);
            for (n, v) in &parsed.pairs {
                if *n == self.name {
                    self.values.insert(normalize_value(v));
                }
            }
            self.parsed = parsed;
        }
    }

    /// The values, sorted.
    pub fn finish(self) -> Vec<String> {
        let mut v: Vec<String> = self.values.into_iter().collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn types_like_loki() {
        let cases = [
            ("42", FieldType::Int),
            ("-7", FieldType::Int),
            ("+7", FieldType::Int),
            ("3.25", FieldType::Float),
            ("1e3", FieldType::Float),
            ("true", FieldType::Boolean),
            ("F", FieldType::Boolean),
            ("1", FieldType::Int),
            ("150ms", FieldType::Duration),
            ("1h30m", FieldType::Duration),
            ("10MB", FieldType::Bytes),
            ("2 KiB", FieldType::Bytes),
            ("GET", FieldType::String),
            ("", FieldType::String),
        ];
        for (v, want) in cases {
            assert_eq!(determine_type(v), want, "{v:?}");
        }
    }

    #[test]
    fn label_rejection() {
        assert!(should_reject_label(&[]));
        assert!(should_reject_label(&["1", "2", "3.5"]));
        assert!(should_reject_label(&[
            "123e4567-e89b-12d3-a456-426614174000",
            "7"
        ]));
        assert!(!should_reject_label(&["0", "1"]));
        assert!(!should_reject_label(&["1", "api"]));
        assert!(!should_reject_label(&["api", "web", "db"]));
        assert!(is_uuid("{123e4567-e89b-12d3-a456-426614174000}"));
        assert!(is_uuid("123e4567e89b12d3a456426614174000"));
        assert!(!is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn entry(line: &str, sm: &[(&str, &str)], parsed: &[(&str, &str)]) -> ResultEntry {
        ResultEntry {
            ts: Timestamp::from_secs(1),
            line: Bytes::copy_from_slice(line.as_bytes()),
            structured_metadata: labels(sm),
            parsed: labels(parsed),
        }
    }

    #[test]
    fn fields_from_json_logfmt_and_metadata() {
        let stream = StreamResult {
            labels: labels(&[("app", "web"), ("status", "stream")]),
            entries: vec![
                entry(
                    r#"{"status":200,"latency":"15ms","user":{"id":"u1"}}"#,
                    &[("detected_level", "info"), ("trace_id", "abc")],
                    &[],
                ),
                entry(
                    r#"{"status":404,"latency":"3ms","user":{"id":"u2"}}"#,
                    &[("detected_level", "warn")],
                    &[],
                ),
                entry("method=GET size=10KB ok=true", &[], &[]),
                entry("method=POST size=1MB ok=false", &[], &[]),
            ],
        };
        let mut d = FieldDetector::new(100);
        d.add_stream(&stream);
        let got = d.finish();
        let by = |n: &str| got.iter().find(|f| f.label == n).unwrap().clone();
        let level = by("detected_level");
        assert_eq!((level.cardinality, level.parsers.clone()), (2, None));
        assert_eq!(by("trace_id").cardinality, 1);
        let status = by("status_extracted");
        assert_eq!(status.field_type, FieldType::Int);
        assert_eq!(status.cardinality, 2);
        assert_eq!(status.parsers, Some(vec!["json"]));
        assert_eq!(status.json_path, Some(vec!["status".to_string()]));
        let uid = by("user_id");
        assert_eq!(
            uid.json_path,
            Some(vec!["user".to_string(), "id".to_string()])
        );
        assert_eq!(by("latency").field_type, FieldType::Duration);
        let size = by("size");
        assert_eq!(
            (
                size.field_type,
                size.parsers.clone(),
                size.json_path.clone()
            ),
            (FieldType::Bytes, Some(vec!["logfmt"]), None)
        );
        assert_eq!(by("ok").field_type, FieldType::Boolean);
        assert_eq!(by("method").cardinality, 2);
    }

    #[test]
    fn field_limit_caps_new_fields() {
        let stream = StreamResult {
            labels: labels(&[("app", "web")]),
            entries: vec![entry("a=1 b=2 c=3 d=4", &[], &[])],
        };
        let mut d = FieldDetector::new(2);
        d.add_stream(&stream);
        assert_eq!(d.finish().len(), 2);
    }

    #[test]
    fn values_with_bytes_rewritten() {
        let stream = StreamResult {
            labels: labels(&[("app", "web")]),
            entries: vec![
                entry("size=1024KiB method=GET", &[], &[]),
                entry("size=20kb method=PUT", &[], &[]),
                entry("size=5 method=GET", &[], &[]),
            ],
        };
        let mut v = FieldValues::new("size", 100);
        v.add_stream(&stream);
        assert_eq!(v.finish(), ["1.0MB", "20kB", "5"]);
        let mut v = FieldValues::new("method", 1);
        v.add_stream(&stream);
        assert_eq!(v.finish(), ["GET"]);
    }
}
