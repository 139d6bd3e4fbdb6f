//! The JSON parsers: `| json`, `| json a="path", …` and `| unpack`.
//!
//! Owns, with Loki 3.8 semantics:
//! - `| json`: flattening nested objects with `_`, label names sanitised
//!   per path part (parts are trimmed, blank parts vanish, a leading digit
//!   gets `_`), the `_extracted` rename on a collision with a stream label or
//!   current structured metadata (on the sanitised key at the top level, on
//!   the raw last part for nested keys), "first extraction wins", raw number
//!   text, `true`/`false`, `null` and arrays skipped, invalid UTF-8 and
//!   U+FFFD in strings turned into spaces, and `JSONParserErr` with
//!   jsonparser's error text, keeping the labels extracted before the error;
//! - `| json` with parameters: jsonexpr paths (`a.b`, `["x"]`, `[0]`),
//!   objects as raw JSON text, arrays as unescaped JSON text, `null` and
//!   missing paths as `""`;
//! - `| unpack`: string members become labels and `_entry` replaces the
//!   line, only when the line is a packed entry.
//!
//! Does not own: JSON scanning (`jsonscan.rs`).
//!
//! Invariants: labels are written into the builder's arena; steady state
//! allocates nothing per line.

use crate::model::Timestamp;
use crate::model::labels::is_valid_label_name;

use super::convert::{append_sanitized_part, push_go_text, sanitize_label_key_into};
use super::jsonscan::{self, JsonError, Value, ValueType};
use super::labels::DUPLICATE_SUFFIX;
use super::{ERR_JSON, LabelsBuilder, LineBuf, LogError, Stage};

/// Nesting beyond this depth is not flattened (guards the stack against
/// hostile lines; Loki has no limit).
const MAX_DEPTH: usize = 128;

/// Text of the error `| unpack` reports for a line that is not an object.
const NOT_AN_OBJECT: &str = "expecting json object(6), but it is not";

/// A label requested by a parser with parameters: `identifier="expression"`
/// (a bare `identifier` has the same expression).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelExtraction {
    pub identifier: String,
    pub expression: String,
}

impl LabelExtraction {
    pub fn new(identifier: impl Into<String>, expression: impl Into<String>) -> Self {
        LabelExtraction {
            identifier: identifier.into(),
            expression: expression.into(),
        }
    }
}

/// Why a JSON walk stopped early.
enum Stop {
    Json(JsonError),
    /// Every label the query needs is extracted (parser hints).
    FoundAll,
}

impl From<JsonError> for Stop {
    fn from(e: JsonError) -> Self {
        Stop::Json(e)
    }
}

/// `| json` without parameters.
#[derive(Clone, Debug, Default)]
pub struct JsonParser {
    /// Raw (unescaped) keys of the enclosing objects, as spans of `part_bytes`.
    parts: Vec<(usize, usize)>,
    part_bytes: Vec<u8>,
    key_bufs: Vec<Vec<u8>>,
    name: String,
    value: String,
    scratch: Vec<u8>,
    /// With [`JsonParser::with_json_paths`]: the key path of every label
    /// set by the last `process` (Loki's `captureJSONPath`, which detected
    /// fields report as `jsonPath`).
    json_paths: Option<Vec<(String, Vec<String>)>>,
}

impl JsonParser {
    pub fn new() -> Self {
        JsonParser::default()
    }

    /// A parser that records the JSON key path of each label it sets.
    /// Records allocate: for field detection, not for query pipelines.
    pub fn with_json_paths() -> Self {
        JsonParser {
            json_paths: Some(Vec::new()),
            ..JsonParser::default()
        }
    }

    /// `(label, key path)` of the labels set by the last `process`, when
    /// built with [`JsonParser::with_json_paths`].
    pub fn json_paths(&self) -> &[(String, Vec<String>)] {
        self.json_paths.as_deref().unwrap_or(&[])
    }

    fn walk(&mut self, data: &[u8], depth: usize, lbs: &mut LabelsBuilder) -> Result<(), Stop> {
        if self.key_bufs.len() <= depth {
            self.key_bufs.resize_with(depth + 1, Vec::new);
        }
        let mut key_buf = std::mem::take(&mut self.key_bufs[depth]);
        let result = jsonscan::object_each(data, &mut key_buf, |key, value| match value.kind {
            ValueType::String | ValueType::Number | ValueType::Boolean => {
                self.leaf(key, value, lbs);
                if lbs.all_required_extracted() {
                    return Err(Stop::FoundAll);
                }
                Ok(())
            }
            ValueType::Object if depth < MAX_DEPTH => {
                if lbs.hints().has_required() {
                    self.nested_name(key, false);
                    if !lbs.hints().should_extract_prefix(&self.name) {
                        return Ok(());
                    }
                }
                let mark = self.part_bytes.len();
                self.part_bytes.extend_from_slice(key);
                self.parts.push((mark, self.part_bytes.len()));
                let r = self.walk(value.bytes, depth + 1, lbs);
                self.parts.pop();
                self.part_bytes.truncate(mark);
                r
            }
            _ => Ok(()),
        });
        self.key_bufs[depth] = key_buf;
        result
    }

    /// Builds the flattened name of `key` under the current parts into
    /// `self.name`; with `suffix`, the last part is `key + "_extracted"`.
    fn nested_name(&mut self, key: &[u8], suffix: bool) {
        self.name.clear();
        let push_part = |name: &mut String, part: &[u8]| {
            let mark = name.len();
            if mark > 0 {
                name.push('_');
            }
            let before = name.len();
            append_sanitized_part(name, part);
            if name.len() == before {
                // The part trimmed to nothing: no separator either.
                name.truncate(mark);
            }
        };
        for &(s, e) in &self.parts {
            push_part(&mut self.name, &self.part_bytes[s..e]);
        }
        if suffix {
            self.scratch.clear();
            self.scratch.extend_from_slice(key);
            self.scratch.extend_from_slice(DUPLICATE_SUFFIX.as_bytes());
            push_part(&mut self.name, &self.scratch);
        } else {
            push_part(&mut self.name, key);
        }
        if self.name.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            self.name.insert(0, '_');
        }
    }

    fn leaf(&mut self, key: &[u8], value: Value<'_>, lbs: &mut LabelsBuilder) {
        if self.parts.is_empty() {
            self.name.clear();
            sanitize_label_key_into(&mut self.name, key, true);
            if self.name.is_empty() {
                return;
            }
            if lbs.collides(&self.name) {
                self.name.push_str(DUPLICATE_SUFFIX);
            }
        } else {
            self.nested_name(key, false);
            if self.name.is_empty() {
                return;
            }
            if lbs.collides(&self.name) {
                self.nested_name(key, true);
            }
        }
        if lbs.was_extracted(&self.name) || !lbs.should_extract(&self.name) {
            return;
        }
        self.value.clear();
        match value.kind {
            ValueType::String => {
                unescape_json_string(value.bytes, &mut self.scratch, &mut self.value)
            }
            ValueType::Boolean => self.value.push_str(if value.bytes == b"true" {
                "true"
            } else {
                "false"
            }),
            _ => push_go_text(&mut self.value, value.bytes, '\u{fffd}', false),
        }
        lbs.set_parsed(&self.name, &self.value);
        if let Some(paths) = &mut self.json_paths {
            let mut path: Vec<String> = self
                .parts
                .iter()
                .map(|&(s, e)| String::from_utf8_lossy(&self.part_bytes[s..e]).into_owned())
                .collect();
            path.push(String::from_utf8_lossy(key).into_owned());
            paths.push((self.name.clone(), path));
        }
    }
}

/// Loki's `unescapeJSONString`: unescaped text, `""` on a bad escape, and
/// every invalid byte or U+FFFD turned into a space.
fn unescape_json_string(raw: &[u8], scratch: &mut Vec<u8>, out: &mut String) {
    scratch.clear();
    if jsonscan::unescape(raw, scratch).is_err() {
        return;
    }
    push_go_text(out, scratch, ' ', true);
}

impl Stage for JsonParser {
    fn process(&mut self, _ts: Timestamp, line: &mut LineBuf<'_>, lbs: &mut LabelsBuilder) -> bool {
        if lbs.parsers_idle() {
            return true;
        }
        self.parts.clear();
        self.part_bytes.clear();
        if let Some(paths) = &mut self.json_paths {
            paths.clear();
        }
        if let Err(Stop::Json(e)) = self.walk(line.as_bytes(), 0, lbs) {
            lbs.add_error(ERR_JSON, Some(&e));
        }
        true
    }
}

/// One step of a jsonexpr path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonPathElem {
    Field(String),
    Index(usize),
}

/// Parses Loki's jsonexpr syntax: `a.b`, `a["b c"]`, `a[0].b`.
pub fn parse_json_path(expr: &str) -> Result<Vec<JsonPathElem>, LogError> {
    let err = |message: String| LogError::ExpressionSyntax {
        expression: expr.to_string(),
        message,
    };
    let tokens = lex_json_path(expr);
    let mut path = Vec::new();
    let mut i = 0;
    let tok = |i: usize| tokens.get(i).cloned().unwrap_or(Tok::End);
    // values: (field | access) (access | DOT field)*
    match tok(i) {
        Tok::Field(f) => {
            path.push(JsonPathElem::Field(f));
            i += 1;
        }
        Tok::Lsb => {}
        t => {
            return Err(err(format!(
                "unexpected {}, expecting LSB or FIELD",
                t.name()
            )));
        }
    }
    loop {
        match tok(i) {
            Tok::End => break,
            Tok::LexError(m) => return Err(err(m)),
            Tok::Dot => match tok(i + 1) {
                Tok::Field(f) => {
                    path.push(JsonPathElem::Field(f));
                    i += 2;
                }
                t => return Err(err(format!("unexpected {}, expecting FIELD", t.name()))),
            },
            Tok::Lsb => {
                match tok(i + 1) {
                    Tok::Str(s) => path.push(JsonPathElem::Field(s)),
                    Tok::Index(n) => path.push(JsonPathElem::Index(n)),
                    Tok::LexError(m) => return Err(err(m)),
                    t => {
                        return Err(err(format!(
                            "unexpected {}, expecting STRING or INDEX",
                            t.name()
                        )));
                    }
                }
                match tok(i + 2) {
                    Tok::Rsb => i += 3,
                    t => return Err(err(format!("unexpected {}, expecting RSB", t.name()))),
                }
            }
            t => return Err(err(format!("unexpected {}", t.name()))),
        }
    }
    Ok(path)
}

#[derive(Clone, Debug)]
enum Tok {
    Field(String),
    Str(String),
    Index(usize),
    Dot,
    Lsb,
    Rsb,
    End,
    LexError(String),
}

impl Tok {
    fn name(&self) -> &'static str {
        match self {
            Tok::Field(_) => "FIELD",
            Tok::Str(_) => "STRING",
            Tok::Index(_) => "INDEX",
            Tok::Dot => "DOT",
            Tok::Lsb => "LSB",
            Tok::Rsb => "RSB",
            Tok::End | Tok::LexError(_) => "$end",
        }
    }
}

fn lex_json_path(expr: &str) -> Vec<Tok> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        if c == '\0' {
            break;
        }
        if matches!(c, ' ' | '\t' | '\n') {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            match chars.get(i) {
                None | Some(' ' | '\t' | '\n' | ']') => {}
                Some('.') => {
                    out.push(Tok::LexError("cannot use float as array index".into()));
                    return out;
                }
                Some(other) => {
                    out.push(Tok::LexError(format!("non-integer value: {other}")));
                    return out;
                }
            }
            let digits: String = chars[start..i].iter().collect();
            match digits.parse() {
                Ok(n) => out.push(Tok::Index(n)),
                Err(e) => {
                    out.push(Tok::LexError(e.to_string()));
                    return out;
                }
            }
            continue;
        }
        match c {
            '[' => out.push(Tok::Lsb),
            ']' => out.push(Tok::Rsb),
            '.' => out.push(Tok::Dot),
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && ident(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Field(chars[start..i].iter().collect()));
                continue;
            }
            '"' => {
                // Up to the closing quote or `]`, both consumed.
                let mut s = String::new();
                i += 1;
                while i < chars.len() && !matches!(chars[i], '"' | ']' | '\0') {
                    s.push(chars[i]);
                    i += 1;
                }
                out.push(Tok::Str(s));
            }
            other => {
                out.push(Tok::LexError(format!("unexpected char {other}")));
                return out;
            }
        }
        i += 1;
    }
    out
}

/// `| json label="path", …`.
#[derive(Clone, Debug)]
pub struct JsonExpressionParser {
    ids: Vec<String>,
    paths: Vec<Vec<String>>,
    name: String,
    value: String,
    scratch: Vec<u8>,
}

impl JsonExpressionParser {
    pub fn new(expressions: &[LabelExtraction]) -> Result<Self, LogError> {
        let mut ids = Vec::with_capacity(expressions.len());
        let mut paths = Vec::with_capacity(expressions.len());
        for e in expressions {
            let path = parse_json_path(&e.expression)?;
            if !is_valid_label_name(&e.identifier) {
                return Err(LogError::InvalidExtractedLabelName {
                    name: e.identifier.clone(),
                });
            }
            ids.push(e.identifier.clone());
            paths.push(
                path.into_iter()
                    .map(|p| match p {
                        JsonPathElem::Field(f) => f,
                        JsonPathElem::Index(n) => format!("[{n}]"),
                    })
                    .collect(),
            );
        }
        Ok(JsonExpressionParser {
            ids,
            paths,
            name: String::new(),
            value: String::new(),
            scratch: Vec::new(),
        })
    }
}

impl Stage for JsonExpressionParser {
    fn process(&mut self, _ts: Timestamp, line: &mut LineBuf<'_>, lbs: &mut LabelsBuilder) -> bool {
        let data = line.as_bytes();
        let Some(&first) = data.first() else {
            return true;
        };
        if lbs.parsers_idle() {
            return true;
        }
        if !matches!(first, b'"' | b'{' | b'[') {
            lbs.add_error(ERR_JSON, None);
            return true;
        }
        let JsonExpressionParser {
            ids,
            paths,
            name,
            value,
            scratch,
        } = self;
        let mut matches = 0;
        jsonscan::each_key(data, paths, |idx, res| {
            let v = match res {
                Ok(v) => v,
                Err(e) => {
                    lbs.add_error(ERR_JSON, Some(&e));
                    return;
                }
            };
            let Some(idx) = idx else { return };
            let id = &ids[idx];
            name.clear();
            name.push_str(id);
            if lbs.collides(id) {
                name.push_str(DUPLICATE_SUFFIX);
            }
            value.clear();
            match v.kind {
                ValueType::Null => {}
                ValueType::Object => push_go_text(value, v.bytes, '\u{fffd}', false),
                _ => unescape_json_string(v.bytes, scratch, value),
            }
            lbs.set_parsed(name, value);
            matches += 1;
        });
        if matches < ids.len() {
            for id in ids.iter() {
                if lbs.get(id).is_none() {
                    lbs.set_parsed(id, "");
                }
            }
        }
        true
    }
}

/// `| unpack`: the inverse of Promtail's `pack` stage.
#[derive(Clone, Debug, Default)]
pub struct UnpackParser {
    key_buf: Vec<u8>,
    entry: Vec<u8>,
    text: String,
    pairs: Vec<(usize, usize, usize)>,
    field: String,
    scratch: Vec<u8>,
}

impl UnpackParser {
    pub fn new() -> Self {
        UnpackParser::default()
    }
}

impl Stage for UnpackParser {
    fn process(&mut self, _ts: Timestamp, line: &mut LineBuf<'_>, lbs: &mut LabelsBuilder) -> bool {
        let data = line.as_bytes();
        let Some(&first) = data.first() else {
            return true;
        };
        if lbs.parsers_idle() {
            return true;
        }
        if first != b'{' {
            lbs.add_error(ERR_JSON, Some(&NOT_AN_OBJECT));
            return true;
        }
        let UnpackParser {
            key_buf,
            entry,
            text,
            pairs,
            field,
            scratch,
        } = self;
        text.clear();
        pairs.clear();
        let mut packed = false;
        let result = jsonscan::object_each(data, key_buf, |key, value| {
            if value.kind != ValueType::String {
                return Ok(());
            }
            if key == b"_entry" {
                entry.clear();
                jsonscan::unescape(value.bytes, entry)
                    .map_err(|_| JsonError::MalformedStringEscape)?;
                packed = true;
                return Ok(());
            }
            field.clear();
            push_go_text(field, key, '\u{fffd}', false);
            if lbs.collides(field) {
                field.push_str(DUPLICATE_SUFFIX);
            }
            if !lbs.should_extract(field) {
                return Ok(());
            }
            let name_start = text.len();
            sanitize_label_key_into(text, field.as_bytes(), true);
            let value_start = text.len();
            unescape_json_string(value.bytes, scratch, text);
            if value_start > name_start {
                pairs.push((name_start, value_start, text.len()));
            } else {
                text.truncate(name_start);
            }
            Ok::<(), JsonError>(())
        });
        if let Err(e) = result {
            lbs.add_error(ERR_JSON, Some(&e));
            return true;
        }
        if packed {
            for &(n, v, end) in pairs.iter() {
                let name = &text[n..v];
                if !lbs.was_extracted(name) {
                    lbs.set_parsed(name, &text[v..end]);
                }
            }
            line.set(entry);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::log::LineScratch;
    use crate::model::{Labels, MetadataPair};

    fn run(
        stage: &mut dyn Stage,
        stream: &str,
        meta: &[(&str, &str)],
        line: &str,
    ) -> (String, String) {
        let labels = Labels::parse(stream).unwrap();
        let mut b = LabelsBuilder::new(&labels);
        b.reset();
        let meta: Vec<MetadataPair> = meta
            .iter()
            .map(|(n, v)| MetadataPair::new(n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        b.add_structured_metadata(&meta);
        let mut scratch = LineScratch::default();
        let mut lb = LineBuf::new(line.as_bytes(), &mut scratch);
        assert!(stage.process(Timestamp::EPOCH, &mut lb, &mut b));
        let out = String::from_utf8_lossy(lb.as_bytes()).into_owned();
        (b.labels_result().labels().to_string(), out)
    }

    fn json(stream: &str, line: &str) -> String {
        run(&mut JsonParser::new(), stream, &[], line).0
    }

    /// Loki's `Test_jsonParser_Parse` table, with the 3.x naming rules.
    #[test]
    fn loki_json_parser_table() {
        assert_eq!(
            json(
                "{}",
                r#"{"app":"foo","namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar"}}}"#
            ),
            r#"{app="foo", namespace="prod", pod_deployment_ref="foobar", pod_uuid="foo"}"#
        );
        assert_eq!(
            json("{}", r#"{"counter":1, "price": {"_net_":5.56909}}"#),
            r#"{counter="1", price__net_="5.56909"}"#
        );
        assert_eq!(json("{}", r#"{" ": {"foo":"bar"}}"#), r#"{foo="bar"}"#);
        assert_eq!(json("{}", r#"{" ": {" ":"bar"}}"#), "{}");
        assert_eq!(
            json(
                "{}",
                r#"{"counter":1,"foo":"foo\\\"bar", "price": {"_net_":5.56909}}"#
            ),
            r#"{counter="1", foo="foo\\\"bar", price__net_="5.56909"}"#
        );
        assert_eq!(
            json(
                "{}",
                "{\"counter\":1,\"foo\":\"\u{fffd}\", \"price\": {\"_net_\":5.56909}}"
            ),
            r#"{counter="1", foo=" ", price__net_="5.56909"}"#
        );
        assert_eq!(
            json("{}", r#"{"counter":1, "price": {"net_":["10","20"]}}"#),
            r#"{counter="1"}"#
        );
        assert_eq!(json("{}", r#"{"cou-nter":1}"#), r#"{cou_nter="1"}"#);
        assert_eq!(
            json("{}", "{n}"),
            r#"{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol"}"#
        );
        assert_eq!(
            json(
                r#"{app="bar"}"#,
                r#"{"app":"foo","namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar"}},"next":{"err":false}}"#
            ),
            r#"{app="bar", app_extracted="foo", namespace="prod", next_err="false", pod_deployment_ref="foobar", pod_uuid="foo"}"#
        );
    }

    #[test]
    fn json_values_and_skips() {
        assert_eq!(
            json(
                "{}",
                r#"{"n":null,"a":[1],"t":true,"f":false,"num":1.0e3,"neg":-5}"#
            ),
            r#"{f="false", neg="-5", num="1.0e3", t="true"}"#
        );
        assert_eq!(json("{}", r#"{"s":"caf\u00e9"}"#), r#"{s="café"}"#);
        assert_eq!(json("{}", r#"{"bad":"x\q"}"#), r#"{bad=""}"#);
        // Errors keep the labels extracted before them.
        assert_eq!(
            json("{}", r#"{"level":"info","msg":"truncated line"#),
            r#"{__error__="JSONParserErr", __error_details__="Value is string, but can't find closing '\"' symbol", level="info"}"#
        );
        assert_eq!(
            json("{}", "Debugger attached."),
            r#"{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol"}"#
        );
    }

    /// The naming and collision rules captured from Loki 3.7 (trimmed parts,
    /// blank parts vanishing, the digit guard, nested renames on the raw
    /// part, structured metadata collisions, first extraction wins).
    #[test]
    fn naming_and_collisions() {
        let j = |stream: &str, line: &str| json(stream, line);
        assert_eq!(j("{}", r#"{" a ": 1}"#), r#"{a="1"}"#);
        assert_eq!(j("{}", r#"{"x": {" b ": 1}}"#), r#"{x_b="1"}"#);
        assert_eq!(j("{}", r#"{"  ": {"2b": 1}}"#), r#"{_2b="1"}"#);
        assert_eq!(j("{}", r#"{"x": {"": 1}}"#), r#"{x="1"}"#);
        assert_eq!(j("{}", r#"{"": {"": {"z": 1}}}"#), r#"{z="1"}"#);
        assert_eq!(j("{}", r#"{"": 1}"#), "{}");
        assert_eq!(j("{}", "{\"\\t\": 1}"), "{}");
        assert_eq!(j("{}", r#"{"2a": {"2b": 1}}"#), r#"{_2a_2b="1"}"#);
        assert_eq!(j("{}", r#"{"é": {"ü": 1}}"#), r#"{___="1"}"#);
        assert_eq!(j("{}", r#"{"a.b": {"c-d": 1}}"#), r#"{a_b_c_d="1"}"#);
        // Collisions.
        assert_eq!(
            j(r#"{x="s"}"#, r#"{"x":{"":1}}"#),
            r#"{x="s", x__extracted="1"}"#
        );
        assert_eq!(
            j(r#"{x="s"}"#, r#"{" x ":1}"#),
            r#"{x="s", x_extracted="1"}"#
        );
        assert_eq!(
            j(r#"{x_y="s"}"#, r#"{"x":{" y ":1}}"#),
            r#"{x_y="s", x_y__extracted="1"}"#
        );
        assert_eq!(
            j(r#"{b="s"}"#, r#"{"  ":{" b ":1}}"#),
            r#"{b="s", b__extracted="1"}"#
        );
        assert_eq!(j(r#"{x="s"}"#, r#"{"x":{"y":1}}"#), r#"{x="s", x_y="1"}"#);
        // First extraction wins, at both depths.
        assert_eq!(j("{}", r#"{"a-b":1,"a.b":2}"#), r#"{a_b="1"}"#);
        assert_eq!(j("{}", r#"{"x":{"y":1},"x_y":2}"#), r#"{x_y="1"}"#);
        // Structured metadata collides like a stream label.
        let (labels, _) = run(
            &mut JsonParser::new(),
            r#"{service="content"}"#,
            &[("trace_id", "t1")],
            r#"{"service":"content-renderer","trace_id":"t1","msg":"ok"}"#,
        );
        assert_eq!(
            labels,
            r#"{msg="ok", service="content", service_extracted="content-renderer", trace_id="t1", trace_id_extracted="t1"}"#
        );
    }

    #[test]
    fn json_path_syntax() {
        use JsonPathElem::{Field, Index};
        let p = |s| parse_json_path(s).unwrap();
        assert_eq!(p("app"), vec![Field("app".into())]);
        assert_eq!(
            p(r#"["field with space"]"#),
            vec![Field("field with space".into())]
        );
        assert_eq!(p("[0]"), vec![Index(0)]);
        assert_eq!(
            p("pod.uuid"),
            vec![Field("pod".into()), Field("uuid".into())]
        );
        assert_eq!(
            p(r#"pod["uuid"]"#),
            vec![Field("pod".into()), Field("uuid".into())]
        );
        assert_eq!(
            p(r#"pod.deployment.params[0]["param"]"#),
            vec![
                Field("pod".into()),
                Field("deployment".into()),
                Field("params".into()),
                Index(0),
                Field("param".into())
            ]
        );
        assert_eq!(p("utf8"), vec![Field("utf8".into())]);
        let err = |s| parse_json_path(s).unwrap_err().to_string();
        assert_eq!(
            err("field with space"),
            "cannot parse expression [field with space]: syntax error: unexpected FIELD"
        );
        assert_eq!(
            err(r#""pod"]"#),
            r#"cannot parse expression ["pod"]]: syntax error: unexpected STRING, expecting LSB or FIELD"#
        );
        assert_eq!(
            err(r#"["pod""#),
            r#"cannot parse expression [["pod"]: syntax error: unexpected $end, expecting RSB"#
        );
        assert_eq!(
            err(r#"["pod""uuid"]"#),
            r#"cannot parse expression [["pod""uuid"]]: syntax error: unexpected STRING, expecting RSB"#
        );
        assert_eq!(
            err("pod..uuid"),
            "cannot parse expression [pod..uuid]: syntax error: unexpected DOT, expecting FIELD"
        );
    }

    fn jexpr(stream: &str, exprs: &[(&str, &str)], line: &str) -> String {
        let exprs: Vec<LabelExtraction> = exprs
            .iter()
            .map(|(i, e)| LabelExtraction::new(*i, *e))
            .collect();
        run(
            &mut JsonExpressionParser::new(&exprs).unwrap(),
            stream,
            &[],
            line,
        )
        .0
    }

    /// Loki's `TestJSONExpressionParser` table.
    #[test]
    fn loki_json_expression_table() {
        let line = r#"{"app":"foo","field with space":"value","field with ÜFT8👌":"value","null_field":null,"bool_field":false,"namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar", "params": [1,2,3,"string_value"]}}}"#;
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[("app", "app")], "{}", r#"{app="foo"}"#),
            (
                &[("test", r#"["field with space"]"#)],
                "{}",
                r#"{test="value"}"#,
            ),
            (
                &[("app", "app"), ("namespace", "namespace")],
                "{}",
                r#"{app="foo", namespace="prod"}"#,
            ),
            (
                &[("utf8", r#"["field with ÜFT8👌"]"#)],
                "{}",
                r#"{utf8="value"}"#,
            ),
            (&[("uuid", "pod.uuid")], "{}", r#"{uuid="foo"}"#),
            (&[("uuid", r#"pod["uuid"]"#)], "{}", r#"{uuid="foo"}"#),
            (&[("uuid", r#"["pod"]["uuid"]"#)], "{}", r#"{uuid="foo"}"#),
            (&[("uuid", r#"["pod"].uuid"#)], "{}", r#"{uuid="foo"}"#),
            (
                &[("param", "pod.deployment.params[0]")],
                "{}",
                r#"{param="1"}"#,
            ),
            (&[("undefined", r#"pod[""]"#)], "{}", r#"{undefined=""}"#),
            (
                &[("param", "pod.deployment.params[3]")],
                "{}",
                r#"{param="string_value"}"#,
            ),
            (
                &[("params", "pod.deployment.params")],
                "{}",
                r#"{params="[1,2,3,\"string_value\"]"}"#,
            ),
            (
                &[("deployment", "pod.deployment")],
                "{}",
                r#"{deployment="{\"ref\":\"foobar\", \"params\": [1,2,3,\"string_value\"]}"}"#,
            ),
            (&[("nope", "pod.nope")], "{}", r#"{nope=""}"#),
            (&[("nf", "null_field")], "{}", r#"{nf=""}"#),
            (&[("bool", "bool_field")], "{}", r#"{bool="false"}"#),
            (
                &[("uuid", "pod.uuid")],
                r#"{uuid="bar"}"#,
                r#"{uuid="bar", uuid_extracted="foo"}"#,
            ),
            (
                &[("request_size", "request.size.invalid")],
                r#"{uuid="bar"}"#,
                r#"{request_size="", uuid="bar"}"#,
            ),
        ];
        for (exprs, stream, want) in cases {
            assert_eq!(jexpr(stream, exprs, line), *want, "{exprs:?}");
        }
        assert_eq!(jexpr("{}", &[("uuid", "pod.uuid")], "{}"), r#"{uuid=""}"#);
        assert_eq!(
            jexpr(
                r#"{foo="bar"}"#,
                &[("uuid", "will.not.work")],
                "invalid json"
            ),
            r#"{__error__="JSONParserErr", foo="bar"}"#
        );
        assert_eq!(
            jexpr(r#"{foo="bar"}"#, &[("uuid", "will.not.work")], ""),
            r#"{foo="bar"}"#
        );
        assert_eq!(
            jexpr(
                "{}",
                &[("app", "app")],
                r#"{"app":"{ \"key\": \"value\", \"key2\":\"value2\"}"}"#
            ),
            r#"{app="{ \"key\": \"value\", \"key2\":\"value2\"}"}"#
        );
        assert_eq!(
            jexpr(
                "{}",
                &[("app", "app")],
                r#"{"app":{"name":"great \"loki\""}}"#
            ),
            r#"{app="{\"name\":\"great \\\"loki\\\"\"}"}"#
        );
        assert!(JsonExpressionParser::new(&[LabelExtraction::new("a-b", "x")]).is_err());
    }

    fn unpack(stream: &str, line: &str) -> (String, String) {
        run(&mut UnpackParser::new(), stream, &[], line)
    }

    /// Loki's `Test_unpackParser_Parse` table.
    #[test]
    fn loki_unpack_table() {
        assert_eq!(
            unpack(
                r#"{cluster="us-central1"}"#,
                r#"{"bar":1,"app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}}"#
            ),
            (
                r#"{app="foo", cluster="us-central1", namespace="prod"}"#.into(),
                "some message".into()
            )
        );
        let wrong = r#""app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}"#;
        assert_eq!(
            unpack("{}", wrong),
            (
                r#"{__error__="JSONParserErr", __error_details__="expecting json object(6), but it is not"}"#.into(),
                wrong.into()
            )
        );
        assert_eq!(
            unpack(r#"{cluster="us-central1"}"#, ""),
            (r#"{cluster="us-central1"}"#.into(), String::new())
        );
        assert_eq!(
            unpack(
                r#"{app="bar", cluster="us-central1"}"#,
                r#"{"bar":1,"app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}}"#
            )
            .0,
            r#"{app="bar", app_extracted="foo", cluster="us-central1", namespace="prod"}"#
        );
        let not_packed = r#"{"bar":1,"app":"foo","namespace":"prod","pod":{"uid":"1"}}"#;
        assert_eq!(
            unpack(r#"{app="bar"}"#, not_packed),
            (r#"{app="bar"}"#.into(), not_packed.into())
        );
        assert_eq!(
            unpack(
                "{}",
                r#"{"_entry":"I0303 \"Pod status updated\" pod=\"openshift\" status=Running"}"#
            )
            .1,
            r#"I0303 "Pod status updated" pod="openshift" status=Running"#
        );
        assert_eq!(
            unpack(
                r#"{foo="bar"}"#,
                r#"{"foo.bar":"10ms","test-dash":"foo","_entry":"some message"}"#
            ),
            (
                r#"{foo="bar", foo_bar="10ms", test_dash="foo"}"#.into(),
                "some message".into()
            )
        );
    }
}
