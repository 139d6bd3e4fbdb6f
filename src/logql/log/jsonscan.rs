//! A streaming JSON scanner with `github.com/grafana/jsonparser` semantics.
//!
//! Owns: the byte-level JSON walking Loki's parsers rely on — `ObjectEach`
//! (iterate an object's members without building a DOM), `Get` (the value at
//! the start of a buffer), `ArrayEach`, `EachKey` (fetch values at several
//! key paths in one pass) and string `Unescape` — including their leniency
//! (numbers are any token starting with a digit or `-`; nested containers
//! are only bracket-matched until visited) and their exact error texts,
//! which Loki reports as `__error_details__`.
//!
//! Does not own: label naming (see `json.rs`).
//!
//! Invariants: values are returned as sub-slices of the input; nothing here
//! allocates except unescaping into a caller-provided buffer.

use std::fmt;

/// The type of a JSON value, as jsonparser reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum ValueType {
    NotExist,
    String,
    Number,
    Object,
    Array,
    Boolean,
    Null,
}

/// jsonparser's errors; `Display` is the library's text.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum JsonError {
    UnknownValueType,
    MalformedJson,
    MalformedString,
    MalformedArray,
    MalformedObject,
    MalformedStringEscape,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonError::UnknownValueType => "Unknown value type",
            JsonError::MalformedJson => "Malformed JSON error",
            JsonError::MalformedString => "Value is string, but can't find closing '\"' symbol",
            JsonError::MalformedArray => "Value is array, but can't find closing ']' symbol",
            JsonError::MalformedObject => {
                "Value looks like object, but can't find closing '}' symbol"
            }
            JsonError::MalformedStringEscape => {
                "Encountered an invalid escape sequence in a string"
            }
        })
    }
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

/// Offset of the first non-whitespace byte.
pub(crate) fn next_token(data: &[u8]) -> Option<usize> {
    data.iter().position(|&c| !is_ws(c))
}

fn token_end(data: &[u8]) -> usize {
    data.iter()
        .position(|&c| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b',' | b'}' | b']'))
        .unwrap_or(data.len())
}

/// Offset just past the closing quote of a string whose opening quote was
/// already consumed, and whether the string holds a backslash.
pub(crate) fn string_end(data: &[u8]) -> (Option<usize>, bool) {
    let mut escaped = false;
    for (i, &c) in data.iter().enumerate() {
        if c == b'"' {
            if !escaped {
                return (Some(i + 1), false);
            }
            // Count the backslashes before the quote.
            let mut j = i;
            let mut odd = false;
            while j > 0 && data[j - 1] == b'\\' {
                odd = !odd;
                j -= 1;
            }
            if !odd {
                return (Some(i + 1), true);
            }
        } else if c == b'\\' {
            escaped = true;
        }
    }
    (None, escaped)
}

/// Offset just past the bracket closing the block that starts at `data[0]`.
fn block_end(data: &[u8], open: u8, close: u8) -> Option<usize> {
    let mut level = 0i32;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'"' => {
                let (se, _) = string_end(&data[i + 1..]);
                i += se?;
            }
            c if c == open => level += 1,
            c if c == close => {
                level -= 1;
                if level == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A value found by [`get`]: its bytes (strings without their quotes), its
/// type, and the offset just past it.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Value<'a> {
    pub bytes: &'a [u8],
    pub kind: ValueType,
    pub end: usize,
}

/// jsonparser's `getType` at `offset`: returns (start, end, type).
fn get_type(data: &[u8], offset: usize) -> Result<(usize, usize, ValueType), JsonError> {
    match data[offset] {
        b'"' => match string_end(&data[offset + 1..]).0 {
            Some(idx) => Ok((offset, offset + idx + 1, ValueType::String)),
            None => Err(JsonError::MalformedString),
        },
        b'[' => match block_end(&data[offset..], b'[', b']') {
            Some(e) => Ok((offset, offset + e, ValueType::Array)),
            None => Err(JsonError::MalformedArray),
        },
        b'{' => match block_end(&data[offset..], b'{', b'}') {
            Some(e) => Ok((offset, offset + e, ValueType::Object)),
            None => Err(JsonError::MalformedObject),
        },
        first => {
            let end = offset + token_end(&data[offset..]);
            let value = &data[offset..end];
            let kind = match first {
                b't' | b'f' if value == b"true" || value == b"false" => ValueType::Boolean,
                b'u' | b'n' if value == b"null" => ValueType::Null,
                b'0'..=b'9' | b'-' => ValueType::Number,
                _ => return Err(JsonError::UnknownValueType),
            };
            Ok((offset, end, kind))
        }
    }
}

/// jsonparser's `Get` without keys: the first value in `data`.
pub(crate) fn get(data: &[u8]) -> Result<Value<'_>, JsonError> {
    let offset = next_token(data).ok_or(JsonError::MalformedJson)?;
    let (start, end, kind) = get_type(data, offset)?;
    let bytes = if kind == ValueType::String {
        &data[start + 1..end - 1]
    } else {
        &data[start..end]
    };
    Ok(Value { bytes, kind, end })
}

/// jsonparser's `ObjectEach`: calls `f(key, value)` for each member of the
/// object at the start of `data`, keys unescaped (into `key_buf` when they
/// hold escapes). Stops at the first error, the callback's included.
pub(crate) fn object_each<E: From<JsonError>>(
    data: &[u8],
    key_buf: &mut Vec<u8>,
    mut f: impl FnMut(&[u8], Value<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let mut offset = match next_token(data) {
        Some(off) if data[off] == b'{' => off + 1,
        _ => return Err(JsonError::MalformedObject.into()),
    };
    match next_token(&data[offset..]) {
        None => return Err(JsonError::MalformedJson.into()),
        Some(off) => {
            offset += off;
            if data[offset] == b'}' {
                return Ok(());
            }
        }
    }
    let mut last_comma: Option<usize> = None;
    while offset < data.len() {
        match data[offset] {
            b'"' => offset += 1,
            b'}' => {
                if last_comma.is_some_and(|c| c + 1 == offset) {
                    return Err(JsonError::MalformedObject.into());
                }
                return Ok(());
            }
            _ => return Err(JsonError::MalformedObject.into()),
        }
        let (Some(off), escaped) = string_end(&data[offset..]) else {
            return Err(JsonError::MalformedJson.into());
        };
        let raw_key = &data[offset..offset + off - 1];
        offset += off;
        let key: &[u8] = if escaped {
            key_buf.clear();
            if unescape(raw_key, key_buf).is_err() {
                return Err(JsonError::MalformedStringEscape.into());
            }
            key_buf
        } else {
            raw_key
        };
        match next_token(&data[offset..]) {
            Some(off) if data[offset + off] == b':' => offset += off + 1,
            _ => return Err(JsonError::MalformedJson.into()),
        }
        let value = get(&data[offset..])?;
        f(key, value)?;
        offset += value.end;
        match next_token(&data[offset..]) {
            None => return Err(JsonError::MalformedArray.into()),
            Some(off) => {
                offset += off;
                match data[offset] {
                    b'}' => return Ok(()),
                    b',' => {
                        last_comma = Some(offset);
                        offset += 1;
                    }
                    _ => return Err(JsonError::MalformedObject.into()),
                }
            }
        }
        match next_token(&data[offset..]) {
            None => return Err(JsonError::MalformedArray.into()),
            Some(off) => {
                if off > 0
                    && let Some(c) = last_comma.as_mut()
                {
                    *c += off - 1;
                }
                offset += off;
            }
        }
    }
    Err(JsonError::MalformedObject.into())
}

/// jsonparser's `ArrayEach`: calls `f(value, kind, offset)` for each
/// element of the array at the start of `data`, `offset` being jsonparser's
/// (for strings it points one byte past the opening quote's successor).
/// Returns the offset reached, and the error that stopped the walk.
fn array_each(
    data: &[u8],
    mut f: impl FnMut(&[u8], ValueType, usize),
) -> (usize, Result<(), JsonError>) {
    if data.is_empty() {
        return (0, Err(JsonError::MalformedObject));
    }
    let Some(nt) = next_token(data) else {
        return (0, Err(JsonError::MalformedJson));
    };
    let mut offset = nt + 1;
    let Some(no) = next_token(&data[offset..]) else {
        return (offset, Err(JsonError::MalformedJson));
    };
    offset += no;
    if data[offset] == b']' {
        return (offset, Ok(()));
    }
    loop {
        let v = match get(&data[offset..]) {
            Ok(v) => v,
            Err(e) => return (offset, Err(e)),
        };
        if v.end == 0 {
            break;
        }
        if v.kind != ValueType::NotExist {
            f(v.bytes, v.kind, offset + v.end - v.bytes.len());
        }
        offset += v.end;
        let Some(skip) = next_token(&data[offset..]) else {
            return (offset, Err(JsonError::MalformedArray));
        };
        offset += skip;
        match data[offset] {
            b']' => break,
            b',' => offset += 1,
            _ => return (offset, Err(JsonError::MalformedArray)),
        }
    }
    (offset, Ok(()))
}

/// Where `sub` starts inside `data` (`sub` must be a sub-slice of `data`).
fn offset_in(data: &[u8], sub: &[u8]) -> usize {
    (sub.as_ptr() as usize).saturating_sub(data.as_ptr() as usize)
}

fn unescape_key_eq(raw: &[u8], escaped: bool, want: &str, buf: &mut Vec<u8>) -> Option<bool> {
    if !escaped {
        return Some(raw == want.as_bytes());
    }
    buf.clear();
    unescape(raw, buf).ok()?;
    Some(buf.as_slice() == want.as_bytes())
}

/// jsonparser's `searchKeys`: the offset just past the `:` of the value at
/// `keys` (an array index is written `[n]`), or `None`.
fn search_keys(data: &[u8], keys: &[String]) -> Option<usize> {
    let mut key_level = 0usize;
    let mut level = 0usize;
    let mut i = 0;
    let ln = data.len();
    let lk = keys.len();
    let mut last_matched = true;
    if lk == 0 {
        return Some(0);
    }
    let mut buf = Vec::new();
    while i < ln {
        match data[i] {
            b'"' => {
                i += 1;
                let key_begin = i;
                let (se, escaped) = string_end(&data[i..]);
                i += se?;
                let key_end = i - 1;
                i += next_token(&data[i..])?;
                if data[i] == b':' {
                    if level < 1 {
                        return None;
                    }
                    let key = &data[key_begin..key_end];
                    if level <= keys.len() {
                        if unescape_key_eq(key, escaped, &keys[level - 1], &mut buf)? {
                            last_matched = true;
                            if key_level == level - 1 {
                                key_level += 1;
                                if key_level == lk {
                                    return Some(i + 1);
                                }
                            }
                        } else {
                            last_matched = false;
                        }
                    } else {
                        return None;
                    }
                } else {
                    i -= 1;
                }
            }
            b'{' => {
                if !last_matched {
                    let end = block_end(&data[i..], b'{', b'}')?;
                    i += end - 1;
                } else {
                    level += 1;
                }
            }
            b'}' => {
                level = level.wrapping_sub(1);
                if level == key_level {
                    key_level = key_level.wrapping_sub(1);
                }
            }
            b'[' => {
                if key_level == level && keys.get(level).is_some_and(|k| k.starts_with('[')) {
                    let k = &keys[level];
                    if k.len() < 3 || !k.ends_with(']') {
                        return None;
                    }
                    let idx: usize = k[1..k.len() - 1].parse().ok()?;
                    let mut cur = 0usize;
                    let mut found: Option<(usize, usize)> = None;
                    let base = i;
                    let _ = array_each(&data[i..], |value, kind, offset| {
                        if cur == idx {
                            let mut start = offset;
                            let mut len = value.len();
                            if kind == ValueType::String {
                                start -= 2;
                                len += 2;
                            }
                            found = Some((start, len));
                        }
                        cur += 1;
                    });
                    let (start, len) = found?;
                    let value = &data[base + start..base + start + len];
                    let sub = search_keys(value, &keys[level + 1..])?;
                    return Some(i + start + sub);
                }
                let skip = block_end(&data[i..], b'[', b']')?;
                i += skip - 1;
            }
            b':' => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// jsonparser's `EachKey`: walks `data` once and calls `f(index, result)`
/// for each of `paths` found, where `result` is the value or the error met
/// reading it. An index of `None` reports malformed JSON.
pub(crate) fn each_key(
    data: &[u8],
    paths: &[Vec<String>],
    mut f: impl FnMut(Option<usize>, Result<Value<'_>, JsonError>),
) {
    let mut level: i64 = 0;
    let mut paths_matched = 0usize;
    let mut i = 0usize;
    let ln = data.len();
    let mut path_flags = vec![false; paths.len()];
    let max_path = paths.iter().map(Vec::len).max().unwrap_or(0);
    let mut paths_buf: Vec<Vec<u8>> = vec![Vec::new(); max_path];
    let mut buf = Vec::new();

    let same_tree = |p: &[String], prefix: &[Vec<u8>]| {
        p.iter()
            .zip(prefix)
            .all(|(a, b)| a.as_bytes() == b.as_slice())
    };

    while i < ln {
        match data[i] {
            b'"' => {
                i += 1;
                let key_begin = i;
                let (Some(se), escaped) = string_end(&data[i..]) else {
                    return;
                };
                i += se;
                let key_end = i - 1;
                let Some(vo) = next_token(&data[i..]) else {
                    return;
                };
                i += vo;
                if data[i] == b':' {
                    let mut matched = false;
                    let raw = &data[key_begin..key_end];
                    let key: &[u8] = if escaped {
                        buf.clear();
                        if unescape(raw, &mut buf).is_err() {
                            return;
                        }
                        &buf
                    } else {
                        raw
                    };
                    if max_path as i64 >= level {
                        if level < 1 {
                            f(None, Err(JsonError::MalformedJson));
                            return;
                        }
                        let lvl = level as usize;
                        paths_buf[lvl - 1].clear();
                        paths_buf[lvl - 1].extend_from_slice(key);
                        for (pi, p) in paths.iter().enumerate() {
                            if p.len() != lvl
                                || path_flags[pi]
                                || p[lvl - 1].as_bytes() != key
                                || !same_tree(p, &paths_buf[..lvl])
                            {
                                continue;
                            }
                            matched = true;
                            paths_matched += 1;
                            path_flags[pi] = true;
                            f(Some(pi), get(&data[i + 1..]));
                            if paths_matched == paths.len() {
                                break;
                            }
                        }
                        if paths_matched == paths.len() {
                            return;
                        }
                    }
                    if !matched {
                        let Some(to) = next_token(&data[i + 1..]) else {
                            return;
                        };
                        i += to;
                        if data[i] == b'{' {
                            // Go adds blockEnd's -1 on failure; keep that.
                            let skip = block_end(&data[i..], b'{', b'}').map_or(-1, |e| e as i64);
                            i = (i as i64 + skip + 1).max(0) as usize;
                        }
                    }
                    if i < ln && matches!(data[i], b'{' | b'}' | b'[' | b'"') {
                        i -= 1;
                    }
                } else {
                    i -= 1;
                }
            }
            b'{' => level += 1,
            b'}' => level -= 1,
            b'[' => {
                if level < 0 {
                    f(None, Err(JsonError::MalformedJson));
                    return;
                }
                let lvl = level as usize;
                let mut wanted: Vec<(usize, usize)> = Vec::new();
                for (pi, p) in paths.iter().enumerate() {
                    if p.len() < lvl + 1
                        || path_flags[pi]
                        || !p[lvl].starts_with('[')
                        || !same_tree(p, &paths_buf[..lvl.min(paths_buf.len())])
                    {
                        continue;
                    }
                    if p[lvl].len() >= 2 {
                        // Go's strconv.Atoi error is ignored: index 0.
                        let idx = p[lvl]
                            .get(1..p[lvl].len() - 1)
                            .and_then(|d| d.parse::<usize>().ok())
                            .unwrap_or(0);
                        wanted.push((pi, idx));
                    }
                }
                if wanted.is_empty() {
                    match block_end(&data[i..], b'[', b']') {
                        Some(skip) => i += skip - 1,
                        None => return,
                    }
                } else {
                    level += 1;
                    let mut cur = 0usize;
                    let mut results: Vec<(usize, usize, usize, ValueType)> = Vec::new();
                    let arr = &data[i..];
                    let (arr_off, _) = array_each(arr, |value, kind, _| {
                        for &(pi, idx) in &wanted {
                            if idx == cur {
                                results.push((pi, offset_in(arr, value), value.len(), kind));
                            }
                        }
                        cur += 1;
                    });
                    for (pi, start, len, kind) in results {
                        let value = &arr[start..start + len];
                        let rest = &paths[pi][lvl + 1..];
                        paths_matched += 1;
                        path_flags[pi] = true;
                        if let Some(of) = search_keys(value, rest) {
                            if kind == ValueType::String {
                                f(
                                    Some(pi),
                                    Ok(Value {
                                        bytes: &value[of..],
                                        kind,
                                        end: value.len(),
                                    }),
                                );
                            } else {
                                f(Some(pi), get(&value[of..]));
                            }
                        }
                    }
                    if paths_matched == paths.len() {
                        return;
                    }
                    i = (i + arr_off).saturating_sub(1);
                }
            }
            b']' => level -= 1,
            _ => {}
        }
        i += 1;
    }
}

/// jsonparser's `Unescape`: decodes JSON escapes of `input` into `out`.
/// Surrogate pairs combine; a lone high surrogate is an error.
pub(crate) fn unescape(input: &[u8], out: &mut Vec<u8>) -> Result<(), JsonError> {
    let mut rest = input;
    loop {
        let Some(bs) = memchr::memchr(b'\\', rest) else {
            out.extend_from_slice(rest);
            return Ok(());
        };
        out.extend_from_slice(&rest[..bs]);
        rest = &rest[bs..];
        let esc = *rest.get(1).ok_or(JsonError::MalformedStringEscape)?;
        let consumed = match esc {
            b'"' | b'\\' | b'/' => {
                out.push(esc);
                2
            }
            b'b' => {
                out.push(8);
                2
            }
            b'f' => {
                out.push(12);
                2
            }
            b'n' => {
                out.push(b'\n');
                2
            }
            b'r' => {
                out.push(b'\r');
                2
            }
            b't' => {
                out.push(b'\t');
                2
            }
            b'u' => {
                let (r, n) = decode_unicode_escape(rest).ok_or(JsonError::MalformedStringEscape)?;
                let c = char::from_u32(r).unwrap_or('\u{fffd}');
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                n
            }
            _ => return Err(JsonError::MalformedStringEscape),
        };
        rest = &rest[consumed..];
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    if b.len() < 6 {
        return None;
    }
    let mut v = 0u32;
    for &c in &b[2..6] {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

fn decode_unicode_escape(b: &[u8]) -> Option<(u32, usize)> {
    let r = hex4(b)?;
    if r <= 0xffff && !(0xd800..=0xdfff).contains(&r) {
        return Some((r, 6));
    }
    let r2 = hex4(&b[6..])?;
    if r2 < 0xdc00 {
        return None;
    }
    Some((0x10000 + ((r - 0xd800) << 10) + (r2 - 0xdc00), 12))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(data: &str) -> Result<Vec<(String, String, ValueType)>, JsonError> {
        let mut out = Vec::new();
        let mut kb = Vec::new();
        object_each(data.as_bytes(), &mut kb, |k, v| {
            out.push((
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v.bytes).into_owned(),
                v.kind,
            ));
            Ok::<(), JsonError>(())
        })?;
        Ok(out)
    }

    #[test]
    fn object_each_values() {
        let m =
            members(r#" {"a":"x\"y", "b": 12.5e3 ,"c":true,"d":null,"e":[1,{"f":2}],"g":{"h":1}}"#)
                .unwrap();
        let kinds: Vec<_> = m
            .iter()
            .map(|(k, v, t)| (k.as_str(), v.as_str(), *t))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("a", r#"x\"y"#, ValueType::String),
                ("b", "12.5e3", ValueType::Number),
                ("c", "true", ValueType::Boolean),
                ("d", "null", ValueType::Null),
                ("e", r#"[1,{"f":2}]"#, ValueType::Array),
                ("g", r#"{"h":1}"#, ValueType::Object),
            ]
        );
        assert_eq!(members("{}").unwrap(), vec![]);
        assert_eq!(
            members(r#"{"k\u0041":1}"#).unwrap()[0].0,
            "kA",
            "escaped keys are unescaped"
        );
        // Lenient number tokens, as in jsonparser.
        assert_eq!(members(r#"{"a":1x}"#).unwrap()[0].1, "1x");
    }

    #[test]
    fn object_each_errors_have_jsonparser_texts() {
        let err = |s: &str| members(s).unwrap_err().to_string();
        assert_eq!(
            err("Debugger attached."),
            "Value looks like object, but can't find closing '}' symbol"
        );
        assert_eq!(
            err("{n}"),
            "Value looks like object, but can't find closing '}' symbol"
        );
        assert_eq!(
            err(r#"{"level":"info","msg":"truncated line"#),
            "Value is string, but can't find closing '\"' symbol"
        );
        assert_eq!(
            err(r#"{"a":1,}"#),
            "Value looks like object, but can't find closing '}' symbol"
        );
        assert_eq!(err(r#"{"a":tru}"#), "Unknown value type");
        assert_eq!(err("{"), "Malformed JSON error");
        // jsonparser reports a missing closing brace after a value this way.
        assert_eq!(
            err(r#"{"a":{"b":1}"#),
            "Value is array, but can't find closing ']' symbol"
        );
    }

    #[test]
    fn unescape_like_jsonparser() {
        let u = |s: &str| {
            let mut out = Vec::new();
            unescape(s.as_bytes(), &mut out).map(|_| String::from_utf8_lossy(&out).into_owned())
        };
        assert_eq!(u(r#"a\"b\\c\/d\n"#).unwrap(), "a\"b\\c/d\n");
        assert_eq!(u(r"\u00e9\ud83d\ude00").unwrap(), "é😀");
        assert!(u(r"\x").is_err());
        assert!(u(r"\ud83d").is_err(), "lone high surrogate");
        assert!(u(r"\u12").is_err());
    }

    #[test]
    fn each_key_finds_paths() {
        let line = br#"{"app":"foo","pod":{"uuid":"u","deployment":{"ref":"r","params":[1,2,3,"s"]}},"n":null}"#;
        let paths: Vec<Vec<String>> = vec![
            vec!["app".into()],
            vec!["pod".into(), "uuid".into()],
            vec![
                "pod".into(),
                "deployment".into(),
                "params".into(),
                "[0]".into(),
            ],
            vec![
                "pod".into(),
                "deployment".into(),
                "params".into(),
                "[3]".into(),
            ],
            vec!["n".into()],
            vec!["pod".into(), "deployment".into()],
            vec!["nope".into()],
        ];
        let mut got = vec![None; paths.len()];
        each_key(line, &paths, |idx, res| {
            if let (Some(i), Ok(v)) = (idx, res) {
                got[i] = Some((String::from_utf8_lossy(v.bytes).into_owned(), v.kind));
            }
        });
        assert_eq!(got[0], Some(("foo".into(), ValueType::String)));
        assert_eq!(got[1], Some(("u".into(), ValueType::String)));
        assert_eq!(got[2], Some(("1".into(), ValueType::Number)));
        assert_eq!(got[3], Some(("s".into(), ValueType::String)));
        assert_eq!(got[4], Some(("null".into(), ValueType::Null)));
        assert_eq!(
            got[5],
            Some((
                r#"{"ref":"r","params":[1,2,3,"s"]}"#.into(),
                ValueType::Object
            ))
        );
        assert_eq!(got[6], None);
    }
}
