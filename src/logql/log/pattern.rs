//! Loki's pattern language (`| pattern "<ip> - <_>"`, `|> "<_> foo"`).
//!
//! Owns: parsing a pattern into alternating literals and captures, the two
//! validation flavours (parser: at least one named capture, no adjacent
//! captures, unique names; line filter: no named captures, no adjacent
//! captures), extraction (`Matches`) and the line-filter test (`Test`), each
//! a transcription of `pkg/logql/log/pattern`.
//!
//! Does not own: label naming and collisions (the parser stage in
//! `parsers.rs` does that).
//!
//! Invariants: a parsed pattern never holds two adjacent literal nodes;
//! matching never allocates (captures are returned as byte ranges into the
//! caller's buffer).

use memchr::memmem;

use super::LogError;

/// One element of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Literal(Vec<u8>),
    /// A capture; `None` is the unnamed `<_>`.
    Capture(Option<String>),
}

impl Node {
    fn display(&self) -> String {
        match self {
            Node::Literal(l) => String::from_utf8_lossy(l).into_owned(),
            Node::Capture(Some(n)) => format!("<{n}>"),
            Node::Capture(None) => "<_>".to_string(),
        }
    }
}

/// A compiled pattern.
#[derive(Clone, Debug, Default)]
pub struct PatternMatcher {
    nodes: Vec<Node>,
    names: Vec<String>,
}

fn parse_nodes(pattern: &[u8]) -> Result<Vec<Node>, LogError> {
    if pattern.is_empty() {
        return Err(LogError::PatternSyntax {
            pattern: String::new(),
            message: "syntax error: unexpected $end, expecting IDENTIFIER or LITERAL".into(),
        });
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        if pattern[i] == b'<'
            && let Some(len) = identifier_len(&pattern[i + 1..])
            && pattern.get(i + 1 + len) == Some(&b'>')
        {
            let name = String::from_utf8_lossy(&pattern[i + 1..i + 1 + len]).into_owned();
            nodes.push(Node::Capture((name != "_").then_some(name)));
            i += len + 2;
            continue;
        }
        match nodes.last_mut() {
            Some(Node::Literal(l)) => l.push(pattern[i]),
            _ => nodes.push(Node::Literal(vec![pattern[i]])),
        }
        i += 1;
    }
    Ok(nodes)
}

/// Length of `[A-Za-z_][A-Za-z0-9_]*` at the start of `b`, if any.
fn identifier_len(b: &[u8]) -> Option<usize> {
    let first = *b.first()?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    Some(
        b.iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
            .unwrap_or(b.len()),
    )
}

fn check_no_consecutive_captures(nodes: &[Node]) -> Result<(), LogError> {
    for w in nodes.windows(2) {
        if matches!(w[0], Node::Capture(_)) && matches!(w[1], Node::Capture(_)) {
            return Err(LogError::PatternConsecutiveCapture {
                found: format!("{}{}", w[0].display(), w[1].display()),
            });
        }
    }
    Ok(())
}

impl PatternMatcher {
    /// Compiles a `| pattern` expression: at least one named capture, no
    /// adjacent captures, unique names.
    pub fn new(pattern: &str) -> Result<Self, LogError> {
        let nodes = parse_nodes(pattern.as_bytes())?;
        let names: Vec<String> = nodes
            .iter()
            .filter_map(|n| match n {
                Node::Capture(Some(name)) => Some(name.clone()),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Err(LogError::PatternNoCapture);
        }
        check_no_consecutive_captures(&nodes)?;
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(LogError::PatternDuplicateCapture { name: n.clone() });
            }
        }
        Ok(PatternMatcher { nodes, names })
    }

    /// Compiles a `|>` / `!>` line filter: only unnamed `<_>` captures, never
    /// adjacent. The empty pattern is valid and matches only empty lines.
    pub fn new_line_filter(pattern: &str) -> Result<Self, LogError> {
        if pattern.is_empty() {
            return Ok(PatternMatcher::default());
        }
        let nodes = parse_nodes(pattern.as_bytes())?;
        check_no_consecutive_captures(&nodes)?;
        if let Some(named) = nodes.iter().find(|n| matches!(n, Node::Capture(Some(_)))) {
            return Err(LogError::PatternCaptureNotAllowed {
                found: named.display(),
            });
        }
        Ok(PatternMatcher {
            nodes,
            names: Vec::new(),
        })
    }

    /// The named captures, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The literal runs of the pattern, in order: each must appear in a line
    /// the line filter accepts.
    pub fn literals(&self) -> impl Iterator<Item = &[u8]> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Literal(l) => Some(l.as_slice()),
            Node::Capture(_) => None,
        })
    }

    /// Loki's `Matches`: extracts the named captures of `line` into
    /// `captures` as byte ranges, in name order. A leading literal must sit at
    /// offset 0; a literal that cannot be found ends matching, the pending
    /// capture taking the rest of the line. Fewer captures than names means
    /// only the first ones matched.
    pub fn matches_into(&self, line: &[u8], captures: &mut Vec<(usize, usize)>) {
        captures.clear();
        if line.is_empty() || self.nodes.is_empty() {
            return;
        }
        let mut nodes = self.nodes.as_slice();
        let mut pos = 0;
        if let Node::Literal(lit) = &nodes[0] {
            if memmem::find(line, lit) != Some(0) {
                return;
            }
            pos = lit.len();
            nodes = &nodes[1..];
        }
        if nodes.is_empty() {
            return;
        }
        while !nodes.is_empty() {
            let named = matches!(nodes[0], Node::Capture(Some(_)));
            let Some(Node::Literal(lit)) = nodes.get(1) else {
                // Ending on a capture: it takes the rest of the line.
                if named {
                    captures.push((pos, line.len()));
                }
                return;
            };
            nodes = &nodes[2..];
            let Some(i) = memmem::find(&line[pos..], lit) else {
                if named {
                    captures.push((pos, line.len()));
                }
                return;
            };
            if named {
                captures.push((pos, pos + i));
            }
            pos += i + lit.len();
        }
    }

    /// Loki's `Test` (the `|>` line filter): every literal must be found in
    /// order; a literal after the first must not follow its predecessor
    /// directly (an empty capture); a pattern ending in a literal needs the
    /// line to end there, one ending in a capture needs text left over. Note
    /// that a leading literal is searched for, not pinned to offset 0.
    pub fn test(&self, line: &[u8]) -> bool {
        if line.is_empty() || self.nodes.is_empty() {
            return line.is_empty() && self.nodes.is_empty();
        }
        let mut off = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            let Node::Literal(lit) = node else {
                continue;
            };
            let Some(j) = memmem::find(&line[off..], lit) else {
                return false;
            };
            if i != 0 && j == 0 {
                return false;
            }
            off += j + lit.len();
        }
        let ends_on_capture = matches!(self.nodes.last(), Some(Node::Capture(_)));
        ends_on_capture == (off != line.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(p: &str, line: &str) -> Vec<String> {
        let m = PatternMatcher::new(p).unwrap();
        let mut caps = Vec::new();
        m.matches_into(line.as_bytes(), &mut caps);
        caps.iter().map(|&(a, b)| line[a..b].to_string()).collect()
    }

    /// Loki's `pattern_test.go` fixtures: (pattern, line, captures, Test()).
    #[test]
    fn loki_fixtures() {
        let fixtures: &[(&str, &str, &[&str], bool)] = &[
            ("foo <foo> bar", "foo buzz bar", &["buzz"], true),
            ("foo <foo> bar<fuzz>", "foo buzz bar", &["buzz", ""], false),
            ("<foo>foo <bar> bar", "foo buzz bar", &["", "buzz"], false),
            ("<foo> bar<fuzz>", " bar", &["", ""], false),
            ("<foo>bar<baz>", " bar ", &[" ", " "], true),
            ("<foo> bar<baz>", " bar ", &["", " "], false),
            ("<foo>bar <baz>", " bar ", &[" ", ""], false),
            ("<foo>", " bar ", &[" bar "], true),
            (
                "<path>?<_>",
                "/api/plugins/versioncheck?slugIn=snuids-trafficlights-panel,input,gel&grafanaVersion=7.0.0-beta1",
                &["/api/plugins/versioncheck"],
                true,
            ),
            (
                "<path>?<_>",
                "/api/plugins/status",
                &["/api/plugins/status"],
                false,
            ),
            (
                r#"<ip> <userid> <user> [<_>] "<method> <path> <_>" <status> <size>"#,
                r#"127.0.0.1 user-identifier frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
                &[
                    "127.0.0.1",
                    "user-identifier",
                    "frank",
                    "GET",
                    "/apache_pb.gif",
                    "200",
                    "2326",
                ],
                true,
            ),
            (
                "<_> <id> [<level>] ",
                "2021-05-19T07:40:12.215792Z 42761518 [Note] Aborted connection 42761518 to db",
                &["42761518", "Note"],
                false,
            ),
            (
                "<level>  [<component>]<_> in <duration>.<_>",
                "INFO  [Service Thread] 2021-05-19 07:40:12,130 GCInspector.java:284 - ParNew GC in 248ms.  CMS Old Gen: 5043436640 -> 5091062064",
                &["INFO", "Service Thread", "248ms"],
                true,
            ),
            (
                r#"<_> msg="<method> <path> (<status>) <duration>""#,
                r#"level=debug ts=2021-05-19T07:54:26.864644382Z caller=logging.go:66 traceID=7fbb92fd0eb9c65d msg="POST /loki/api/v1/push (204) 1.238734ms""#,
                &["POST", "/loki/api/v1/push", "204", "1.238734ms"],
                true,
            ),
            (
                "unicode <emoji> character",
                "unicode 🤷 character",
                &["🤷"],
                true,
            ),
            (
                "unicode ▶ <what>",
                "unicode ▶ character",
                &["character"],
                true,
            ),
        ];
        for (p, line, want, test) in fixtures {
            assert_eq!(matches(p, line), *want, "matches {p:?} on {line:?}");
            let m = PatternMatcher::new(p).unwrap();
            assert_eq!(m.test(line.as_bytes()), *test, "test {p:?} on {line:?}");
        }
    }

    #[test]
    fn leading_literal_must_be_at_start() {
        assert!(matches("foo <f>\"", "bar").is_empty());
        assert!(matches("foo <f>", "xfoo bar").is_empty());
    }

    #[test]
    fn parser_validation_errors() {
        assert!(matches!(
            PatternMatcher::new(""),
            Err(LogError::PatternSyntax { .. })
        ));
        for p in ["<_>", "foo <_> bar <_>", "foo bar buzz"] {
            assert!(
                matches!(PatternMatcher::new(p), Err(LogError::PatternNoCapture)),
                "{p}"
            );
        }
        let err = |p| PatternMatcher::new(p).err().map(|e| e.to_string());
        assert_eq!(
            err("<f><f>").as_deref(),
            Some("found consecutive capture '<f><f>': invalid expression")
        );
        assert_eq!(
            err("<f> f<d><b>").as_deref(),
            Some("found consecutive capture '<d><b>': invalid expression")
        );
        assert_eq!(
            err("<f> f<f>").as_deref(),
            Some("duplicate capture name (f): invalid expression")
        );
        assert_eq!(
            err("f<f><_>").as_deref(),
            Some("found consecutive capture '<f><_>': invalid expression")
        );
        assert!(PatternMatcher::new("<f> <a>").is_ok());
        // `<1a>` and `< >` are literals, not captures.
        let m = PatternMatcher::new("<1a> <x>").unwrap();
        assert_eq!(m.names(), ["x".to_string()]);
    }

    #[test]
    fn line_filter_validation() {
        assert!(PatternMatcher::new_line_filter("<_>").is_ok());
        assert!(PatternMatcher::new_line_filter("foo <_> bar <_>").is_ok());
        let err = |p| {
            PatternMatcher::new_line_filter(p)
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(
            err("<foo <foo> bar <_>").as_deref(),
            Some("named captures are not allowed: found '<foo>'")
        );
        assert_eq!(
            err("<foo>").as_deref(),
            Some("named captures are not allowed: found '<foo>'")
        );
        let empty = PatternMatcher::new_line_filter("").unwrap();
        assert!(empty.test(b""));
        assert!(!empty.test(b"x"));
    }

    #[test]
    fn line_filter_test_semantics() {
        let m = PatternMatcher::new_line_filter("<_> bar").unwrap();
        assert!(!m.test(b"foo bar baz"), "must end on the trailing literal");
        assert!(
            PatternMatcher::new_line_filter("<_> baz")
                .unwrap()
                .test(b"foo bar baz")
        );
        assert!(
            PatternMatcher::new_line_filter("foo <_>")
                .unwrap()
                .test(b"foo bar baz")
        );
        let m = PatternMatcher::new_line_filter("<_> bar <_>").unwrap();
        assert!(!m.test(b" bar "), "empty captures do not match");
        assert!(
            PatternMatcher::new_line_filter("<_>bar<_>")
                .unwrap()
                .test(b" bar ")
        );
        // The leading literal is searched, not pinned (Loki quirk).
        assert!(
            PatternMatcher::new_line_filter("foo <_>")
                .unwrap()
                .test(b"xx foo y")
        );
        let m = PatternMatcher::new_line_filter("foo <_> bar <_>").unwrap();
        let lits: Vec<&[u8]> = m.literals().collect();
        assert_eq!(lits, [b"foo ".as_slice(), b" bar ".as_slice()]);
    }
}
