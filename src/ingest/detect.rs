//! Ingest-time enrichment, as Loki's distributor does it by default:
//! `service_name` discovery for the stream and `detected_level` structured
//! metadata for each entry (`pkg/distributor/field_detection.go`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::model::{Labels, MetadataPair};

pub const SERVICE_NAME: &str = "service_name";
pub const UNKNOWN_SERVICE: &str = "unknown_service";
pub const DETECTED_LEVEL: &str = "detected_level";

/// Adds `service_name` from the first present label of `discover` (or
/// `unknown_service`) when the stream has none. An empty list disables it.
pub fn discover_service_name(labels: &mut Labels, discover: &[String]) {
    if discover.is_empty() || labels.contains(SERVICE_NAME) {
        return;
    }
    let value = discover
        .iter()
        .find_map(|name| labels.get(name))
        .unwrap_or(UNKNOWN_SERVICE)
        .to_string();
    labels.set(SERVICE_NAME, &value);
}

/// Loki's level words, case-insensitively, to its normalized level names.
fn normalize_known(level: &[u8]) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("trace", "trace"),
        ("trc", "trace"),
        ("debug", "debug"),
        ("dbg", "debug"),
        ("info", "info"),
        ("inf", "info"),
        ("information", "info"),
        ("warn", "warn"),
        ("wrn", "warn"),
        ("warning", "warn"),
        ("error", "error"),
        ("err", "error"),
        ("critical", "critical"),
        ("fatal", "fatal"),
    ];
    TABLE
        .iter()
        .find(|(k, _)| level.eq_ignore_ascii_case(k.as_bytes()))
        .map(|(_, v)| *v)
}

/// Normalizes a level taken from a label or metadata: known words map to
/// Loki's names, anything else is kept as it is.
fn normalize_level(level: &str) -> String {
    normalize_known(level.as_bytes()).map_or_else(|| level.to_string(), str::to_string)
}

/// Finds the entry's level as Loki does. Returns `None` when the entry
/// already carries `detected_level` (whose value is normalized in place).
pub fn detect_level(
    labels: &Labels,
    metadata: &mut [MetadataPair],
    line: &[u8],
    level_fields: &[String],
) -> Option<String> {
    if let Some(sm) = metadata.iter_mut().find(|m| m.name_str() == DETECTED_LEVEL) {
        let normalized = normalize_level(sm.value_str());
        if normalized != sm.value_str() {
            sm.value = normalized.into();
        }
        return None;
    }
    if let Some(v) = level_fields.iter().find_map(|f| labels.get(f)) {
        return Some(normalize_level(v));
    }
    if let Some(v) = level_fields.iter().find_map(|f| {
        metadata
            .iter()
            .find(|m| m.name_str() == f)
            .map(|m| m.value_str())
    }) {
        return Some(normalize_level(v));
    }
    Some(level_from_line(line, level_fields).to_string())
}

fn level_from_line(line: &[u8], level_fields: &[String]) -> &'static str {
    let value: Option<Cow<'_, [u8]>> = if is_json(line) {
        json_level(line, level_fields, 2).map(|s| Cow::Owned(s.into_bytes()))
    } else if line.contains(&b'=') {
        logfmt_value(line, level_fields).map(Cow::Owned)
    } else {
        return level_from_keywords(line);
    };
    match value.as_deref().and_then(normalize_known) {
        Some(level) => level,
        None => level_from_keywords(line),
    }
}

fn is_json(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    let t = text.trim();
    t.starts_with('{') && t.ends_with('}')
}

/// Loki 3.8's keyword search: the first of these words (in this order) that
/// occurs on its own — no letter, digit or `_` on either side — anywhere in
/// the lower-cased line. (Checked against every level in the conformance
/// answers: `"msg":"request errored",..."type":"Error"` is `error`, an ANSI
/// `\x1b[32minfo` is not `info`.)
fn level_from_keywords(line: &[u8]) -> &'static str {
    const PATTERNS: [(&str, &str); 9] = [
        ("trace", "trace"),
        ("debug", "debug"),
        ("fatal", "fatal"),
        ("critical", "critical"),
        ("error", "error"),
        ("err", "error"),
        ("warning", "warn"),
        ("warn", "warn"),
        ("info", "info"),
    ];
    let lower = String::from_utf8_lossy(line).to_lowercase();
    let lower = lower.as_bytes();
    // Go looks at single bytes as runes: a byte >= 0x80 is a Latin-1 letter or not.
    let boundary = |pos: Option<usize>| match pos.and_then(|p| lower.get(p)) {
        None => true,
        Some(&b) => {
            !(b.is_ascii_alphanumeric()
                || b == b'_'
                || (b >= 0x80 && char::from(b).is_alphabetic()))
        }
    };
    for (word, level) in PATTERNS {
        let bounded = memchr::memmem::find_iter(lower, word.as_bytes())
            .any(|pos| boundary(pos.checked_sub(1)) && boundary(Some(pos + word.len())));
        if bounded {
            return level;
        }
    }
    "unknown"
}

/// The first string value, in document order, whose key is one of `fields`,
/// searching nested objects up to `max_depth` levels (jsonparser's
/// `ObjectEach` walk). Streams through the line without building a DOM.
fn json_level(line: &[u8], fields: &[String], max_depth: usize) -> Option<String> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let seed = LevelSeed {
        fields,
        depth: 0,
        max_depth,
    };
    seed.deserialize(&mut de).ok().flatten()
}

struct LevelSeed<'a> {
    fields: &'a [String],
    depth: usize,
    max_depth: usize,
}

impl<'de> DeserializeSeed<'de> for LevelSeed<'_> {
    type Value = Option<String>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LevelSeed<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if found.is_some() {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if self.fields.iter().any(|f| f == &*key) {
                found = map.next_value::<StringOnly>()?.0;
            } else if self.depth + 1 < self.max_depth {
                found = map.next_value_seed(LevelSeed {
                    depth: self.depth + 1,
                    ..self
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A JSON value that counts only when it is a string.
struct StringOnly(Option<String>);

impl<'de> de::Deserialize<'de> for StringOnly {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOnly;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringOnly, E> {
                Ok(StringOnly(Some(v.to_string())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<StringOnly, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StringOnly(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<StringOnly, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StringOnly(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<StringOnly, E> {
                Ok(StringOnly(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<StringOnly, E> {
                Ok(StringOnly(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<StringOnly, E> {
                Ok(StringOnly(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<StringOnly, E> {
                Ok(StringOnly(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<StringOnly, E> {
                Ok(StringOnly(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The value of the first key (in `hints` priority order, compared
/// case-insensitively) of a logfmt line.
fn logfmt_value(line: &[u8], hints: &[String]) -> Option<Vec<u8>> {
    let mut best: Option<(usize, Vec<u8>)> = None;
    crate::logql::log::logfmt::for_each_pair(line, |key, value| {
        let key = String::from_utf8_lossy(key);
        if let Some(pos) = hints.iter().position(|h| h.eq_ignore_ascii_case(&key))
            && best.as_ref().is_none_or(|(p, _)| pos < *p)
        {
            best = Some((pos, value.to_vec()));
            return pos != 0;
        }
        true
    });
    best.map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn fields() -> Vec<String> {
        Limits::default().log_level_fields
    }

    fn level(labels: &str, line: &str) -> Option<String> {
        detect_level(
            &Labels::parse(labels).unwrap(),
            &mut [],
            line.as_bytes(),
            &fields(),
        )
    }

    #[test]
    fn service_name_discovery() {
        let d = Limits::default().discover_service_name;
        let mut l = Labels::parse(r#"{app="api", job="x"}"#).unwrap();
        discover_service_name(&mut l, &d);
        assert_eq!(l.get(SERVICE_NAME), Some("api"));
        let mut l = Labels::parse(r#"{env="prod", filename="/x"}"#).unwrap();
        discover_service_name(&mut l, &d);
        assert_eq!(l.get(SERVICE_NAME), Some(UNKNOWN_SERVICE));
        let mut l = Labels::parse(r#"{service_name="mine", app="api"}"#).unwrap();
        discover_service_name(&mut l, &d);
        assert_eq!(l.get(SERVICE_NAME), Some("mine"));
        let mut l = Labels::parse(r#"{app="api"}"#).unwrap();
        discover_service_name(&mut l, &[]);
        assert_eq!(
            l.get(SERVICE_NAME),
            None,
            "an empty list disables discovery"
        );
    }

    #[test]
    fn default_level_fields_are_lokis() {
        assert_eq!(
            fields(),
            [
                "level",
                "LEVEL",
                "Level",
                "log.level",
                "severity",
                "SEVERITY",
                "Severity",
                "SeverityText",
                "lvl",
                "LVL",
                "Lvl"
            ]
        );
        assert_eq!(
            level(r#"{app="a"}"#, r#"{"SeverityText":"ERROR","msg":"x"}"#).as_deref(),
            Some("error")
        );
        assert_eq!(
            level(r#"{app="a"}"#, "SeverityText=warn msg=x").as_deref(),
            Some("warn")
        );
        assert_eq!(
            level(r#"{app="a", Severity="debug"}"#, "plain").as_deref(),
            Some("debug")
        );
    }

    #[test]
    fn levels_like_loki() {
        assert_eq!(level(r#"{level="WARNING"}"#, "x").as_deref(), Some("warn"));
        assert_eq!(level(r#"{level="custom"}"#, "x").as_deref(), Some("custom"));
        assert_eq!(
            level("{a=\"b\"}", r#"{"level":"ERR","msg":"x"}"#).as_deref(),
            Some("error")
        );
        // pino's numeric levels are not strings: fall back to keywords in the line.
        assert_eq!(
            level("{a=\"b\"}", r#"{"level":30,"msg":"request completed"}"#).as_deref(),
            Some("unknown")
        );
        assert_eq!(
            level("{a=\"b\"}", r#"{"level":30,"msg":"some info here"}"#).as_deref(),
            Some("info")
        );
        assert_eq!(
            level("{a=\"b\"}", r#"{"ctx":{"severity":"debug"}}"#).as_deref(),
            Some("debug")
        );
        assert_eq!(
            level("{a=\"b\"}", r#"{"a":{"b":{"level":"wrn"}}}"#).as_deref(),
            Some("unknown"),
            "depth 2"
        );
        assert_eq!(
            level("{a=\"b\"}", "ts=1 lvl=dbg msg=hello").as_deref(),
            Some("debug")
        );
        assert_eq!(
            level("{a=\"b\"}", "ts=1 msg=hello").as_deref(),
            Some("unknown")
        );
        assert_eq!(
            level("{a=\"b\"}", "[ERROR] disk full").as_deref(),
            Some("error")
        );
        assert_eq!(level("{a=\"b\"}", "all good").as_deref(), Some("unknown"));
    }

    #[test]
    fn existing_detected_level_is_normalized() {
        let mut md = vec![MetadataPair::new("detected_level", "WARN")];
        let l = Labels::parse(r#"{a="b"}"#).unwrap();
        assert_eq!(detect_level(&l, &mut md, b"x", &fields()), None);
        assert_eq!(md[0].value_str(), "warn");
    }
}
