//! Label sets: parsing Loki's label strings, validation, canonical printing.
//!
//! A [`Labels`] is always sorted by name with unique, valid names
//! (`[a-zA-Z_][a-zA-Z0-9_]*`) and no empty values — Loki drops empty-valued
//! labels when it parses a stream's labels. Its canonical text is Prometheus'
//! `{a="b", c="d"}`, which is also the form hashed into a [`StreamId`].

use std::fmt;

/// One label pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A sorted set of label pairs with unique names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<Label>);

/// A stream's identity within a tenant: the xxh3 hash of its canonical labels.
///
/// Used to name chunk objects and to key per-stream state; the label set stays
/// the authority wherever two streams must be told apart.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("{0}")]
    Syntax(String),
    #[error("invalid label name {name:?}")]
    InvalidName { name: String },
    #[error("duplicate label name {name:?}")]
    DuplicateName { name: String },
}

/// Whether `name` is a valid (legacy Prometheus) label name.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Labels {
    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    /// Builds a label set from pairs in any order. Empty values are dropped;
    /// invalid or duplicate names are an error.
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Self, LabelsError>
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<Label> = Vec::new();
        for (n, val) in pairs {
            let (name, value) = (n.into(), val.into());
            if !is_valid_label_name(&name) {
                return Err(LabelsError::InvalidName { name });
            }
            if value.is_empty() {
                continue;
            }
            v.push(Label { name, value });
        }
        Self::from_unsorted(v)
    }

    fn from_unsorted(mut v: Vec<Label>) -> Result<Self, LabelsError> {
        v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = v.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(LabelsError::DuplicateName {
                name: w[0].name.clone(),
            });
        }
        Ok(Labels(v))
    }

    /// Builds from labels already known to be valid, sorted and unique (for
    /// example, read back from our own storage). Sorting is re-checked in debug
    /// builds.
    pub fn from_sorted_unchecked(v: Vec<Label>) -> Self {
        debug_assert!(v.windows(2).all(|w| w[0].name < w[1].name));
        Labels(v)
    }

    /// Parses a Prometheus-style label string as sent in Loki pushes:
    /// `{a="b", c="d"}`. Names may be quoted (`{"a"="b"}`); values are Go
    /// strings in double quotes, single quotes or backticks; a trailing comma
    /// is allowed. Empty-valued labels are dropped.
    pub fn parse(s: &str) -> Result<Self, LabelsError> {
        LabelParser { src: s, pos: 0 }.parse()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` to `value` (removing it when `value` is empty). The name
    /// must be valid; callers validate user input first.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].value = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, Label::new(name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => Some(self.0.remove(i).value),
            Err(_) => None,
        }
    }

    /// The canonical text `{a="b", c="d"}`.
    pub fn canonical(&self) -> String {
        self.to_string()
    }

    pub fn stream_id(&self) -> StreamId {
        StreamId(xxhash_rust::xxh3::xxh3_64(self.canonical().as_bytes()))
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&l.name)?;
            f.write_str("=")?;
            write_go_quoted(f, &l.value)?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Writes `s` quoted as Go's `strconv.Quote` does for printable text:
/// backslash escapes for quotes, backslashes and control characters.
pub fn write_go_quoted(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\x07' => out.write_str("\\a")?,
            '\x08' => out.write_str("\\b")?,
            '\x0c' => out.write_str("\\f")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\x0b' => out.write_str("\\v")?,
            c if (c as u32) < 0x20 || c == '\x7f' => write!(out, "\\x{:02x}", c as u32)?,
            c if !go_is_print(c) && (c as u32) < 0x10000 => write!(out, "\\u{:04x}", c as u32)?,
            c if !go_is_print(c) => write!(out, "\\U{:08x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// Go's `strconv.IsPrint`, approximated without Unicode category tables:
/// letters, marks, numbers, punctuation, symbols and the ASCII space are
/// printable; control, format, separator and private-use characters are not.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0xFFFE | 0xFFFF | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF)
}

/// Go-quotes `s` into a new string.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // Writing into a String cannot fail.
    let _ = write_go_quoted(&mut out, s);
    out
}

/// Decodes the body of a Go double-quoted string (`\n`, `\t`, `\xNN`, `\uNNNN`,
/// `\UNNNNNNNN`, octal `\NNN`, `\"`, `\\`, ...). Returns `None` on a bad escape.
pub fn go_unescape(body: &str) -> Option<String> {
    if !body.contains('\\') {
        return Some(body.to_string());
    }
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let esc = *b.get(i + 1)?;
        i += 2;
        match esc {
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\\' => out.push(b'\\'),
            b'"' => out.push(b'"'),
            b'\'' => out.push(b'\''),
            b'x' => {
                let h = body.get(i..i + 2)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if esc == b'u' { 4 } else { 8 };
                let h = body.get(i..i + n)?;
                let c = char::from_u32(u32::from_str_radix(h, 16).ok()?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            b'0'..=b'7' => {
                let h = body.get(i - 1..i + 2)?;
                let v = u32::from_str_radix(h, 8).ok()?;
                out.push(u8::try_from(v).ok()?);
                i += 2;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

struct LabelParser<'a> {
    src: &'a str,
    pos: usize,
}

impl LabelParser<'_> {
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, LabelsError> {
        Err(LabelsError::Syntax(format!(
            "1:{}: parse error: {}",
            self.pos + 1,
            msg.into()
        )))
    }

    fn skip_ws(&mut self) {
        let rest = &self.src[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn parse(mut self) -> Result<Labels, LabelsError> {
        self.skip_ws();
        // Prometheus allows a metric name before the braces; Loki never sends one.
        if !self.eat('{') {
            return self.err("unexpected input, expected \"{\"");
        }
        let mut pairs = Vec::new();
        loop {
            self.skip_ws();
            if self.eat('}') {
                break;
            }
            let name = match self.peek() {
                Some('"') | Some('\'') | Some('`') => self.string()?,
                _ => self.identifier()?,
            };
            self.skip_ws();
            if !self.eat('=') {
                return self.err(format!(
                    "unexpected character after label name {name:?}, expected \"=\""
                ));
            }
            self.skip_ws();
            let value = self.string()?;
            pairs.push((name, value));
            self.skip_ws();
            if self.eat(',') {
                continue;
            }
            if self.eat('}') {
                break;
            }
            return self.err("unexpected character inside braces, expected \",\" or \"}\"");
        }
        self.skip_ws();
        if self.pos != self.src.len() {
            return self.err("unexpected input after closing brace");
        }
        Labels::from_pairs(pairs)
    }

    fn identifier(&mut self) -> Result<String, LabelsError> {
        let rest = &self.src[self.pos..];
        let len = rest
            .char_indices()
            .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            return self.err("expected label name");
        }
        self.pos += len;
        Ok(rest[..len].to_string())
    }

    fn string(&mut self) -> Result<String, LabelsError> {
        let Some(q) = self.peek() else {
            return self.err("unexpected end of input, expected string");
        };
        if !matches!(q, '"' | '\'' | '`') {
            return self.err("expected quoted string");
        }
        let start = self.pos + 1;
        let bytes = self.src.as_bytes();
        let mut i = start;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if q != '`' => i += 2,
                c if c == q as u8 => {
                    let body = &self.src[start..i];
                    self.pos = i + 1;
                    if q == '`' {
                        return Ok(body.to_string());
                    }
                    return match go_unescape(body) {
                        Some(s) => Ok(s),
                        None => self.err("invalid escape sequence in string"),
                    };
                }
                _ => i += 1,
            }
        }
        self.err("unterminated quoted string")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_sorts() {
        let l = Labels::parse(r#"{level="info",app="x", component="db"}"#).unwrap();
        assert_eq!(l.to_string(), r#"{app="x", component="db", level="info"}"#);
        assert_eq!(l.get("level"), Some("info"));
        assert_eq!(l.get("nope"), None);
    }

    #[test]
    fn accepts_loki_variants() {
        let l = Labels::parse(r#"{"foo"="bar", x='y', z=`a\b`,}"#).unwrap();
        assert_eq!(l.to_string(), r#"{foo="bar", x="y", z="a\\b"}"#);
        let l = Labels::parse(r#"{a="", b="1"}"#).unwrap();
        assert_eq!(l.len(), 1, "empty values are dropped");
        let l = Labels::parse(r#"{a="tab\there \u00e9 \x41"}"#).unwrap();
        assert_eq!(l.get("a"), Some("tab\there é A"));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "{",
            r#"{a="b""#,
            r#"{a=b}"#,
            r#"{a.b="c"}"#,
            r#"{"a.b"="c"}"#,
            r#"{1a="c"}"#,
            r#"{a="b"} x"#,
            r#"{a="\q"}"#,
        ] {
            assert!(Labels::parse(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(
            Labels::parse(r#"{a="1", a="2"}"#),
            Err(LabelsError::DuplicateName { name: "a".into() })
        );
    }

    #[test]
    fn quoting_round_trips() {
        let v = "quote\" back\\ nl\n tab\t ctl\x01 é";
        let quoted = go_quote(v);
        assert_eq!(quoted, r#""quote\" back\\ nl\n tab\t ctl\x01 é""#);
        assert_eq!(
            go_unescape(&quoted[1..quoted.len() - 1]).as_deref(),
            Some(v)
        );
    }

    #[test]
    fn set_and_remove_keep_order() {
        let mut l = Labels::parse(r#"{b="2"}"#).unwrap();
        l.set("a", "1");
        l.set("c", "3");
        assert_eq!(l.to_string(), r#"{a="1", b="2", c="3"}"#);
        l.set("b", "");
        assert_eq!(l.remove("c").as_deref(), Some("3"));
        assert_eq!(l.to_string(), r#"{a="1"}"#);
    }
}
