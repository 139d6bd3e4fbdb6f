//! The `| regexp` and `| pattern` parser stages.
//!
//! Owns: extraction of named captures into parsed labels with Loki's rules —
//! unanchored leftmost-first matching (RE2 semantics via `regex::bytes`), no
//! match meaning no labels and no error, an unmatched optional group giving
//! `""`, names checked at build time (`at least one named capture`, valid,
//! unique), `_extracted` on collisions, first extraction wins.
//!
//! Does not own: the pattern language itself (`pattern.rs`).
//!
//! Invariants: matching reuses capture buffers; no allocation per line.

use regex_syntax::ast::{self, Ast, GroupKind};

use crate::model::Timestamp;
use crate::model::labels::is_valid_label_name;
use crate::model::matcher::go_bytes_regex;

use super::convert::push_go_text;
use super::pattern::PatternMatcher;
use super::{LabelsBuilder, LineBuf, LogError, Stage};

/// `| regexp "(?P<name>…)"`.
#[derive(Clone, Debug)]
pub struct RegexpParser {
    regex: regex::bytes::Regex,
    /// (capture group index, label name).
    names: Vec<(usize, String)>,
    locations: regex::bytes::CaptureLocations,
    value: String,
}

/// Capture groups in order: `None` for unnamed ones.
fn capture_names(ast: &Ast, out: &mut Vec<Option<String>>) {
    match ast {
        Ast::Group(g) => {
            match &g.kind {
                GroupKind::CaptureIndex(_) => out.push(None),
                GroupKind::CaptureName { name, .. } => out.push(Some(name.name.clone())),
                GroupKind::NonCapturing(_) => {}
            }
            capture_names(&g.ast, out);
        }
        Ast::Repetition(r) => capture_names(&r.ast, out),
        Ast::Alternation(a) => a.asts.iter().for_each(|x| capture_names(x, out)),
        Ast::Concat(c) => c.asts.iter().for_each(|x| capture_names(x, out)),
        _ => {}
    }
}

impl RegexpParser {
    pub fn new(pattern: &str) -> Result<Self, LogError> {
        let invalid = |message: String| LogError::InvalidRegex {
            pattern: pattern.to_string(),
            message,
        };
        let translated = crate::model::matcher::translate_perl_classes(pattern);
        let parsed = ast::parse::ParserBuilder::new()
            .nest_limit(250)
            .build()
            .parse(&translated)
            .map_err(|e| match e.kind() {
                ast::ErrorKind::GroupNameDuplicate { .. } => {
                    LogError::DuplicateExtractedLabelName {
                        name: translated
                            .get(e.span().start.offset..e.span().end.offset)
                            .unwrap_or_default()
                            .to_string(),
                    }
                }
                kind => invalid(kind.to_string()),
            })?;
        let mut groups = Vec::new();
        capture_names(&parsed, &mut groups);
        if groups.is_empty() {
            return Err(LogError::MissingCapture);
        }
        let mut seen: Vec<&str> = Vec::new();
        for name in groups.iter().flatten() {
            if !is_valid_label_name(name) {
                return Err(LogError::InvalidExtractedLabelName { name: name.clone() });
            }
            if seen.contains(&name.as_str()) {
                return Err(LogError::DuplicateExtractedLabelName { name: name.clone() });
            }
            seen.push(name);
        }
        if seen.is_empty() {
            return Err(LogError::MissingCapture);
        }
        let regex = go_bytes_regex(pattern).map_err(|e| invalid(e.to_string()))?;
        let names = regex
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i, n.to_string())))
            .collect();
        let locations = regex.capture_locations();
        Ok(RegexpParser {
            regex,
            names,
            locations,
            value: String::new(),
        })
    }
}

impl Stage for RegexpParser {
    fn process(&mut self, _ts: Timestamp, line: &mut LineBuf<'_>, lbs: &mut LabelsBuilder) -> bool {
        let line = line.as_bytes();
        if self
            .regex
            .captures_read(&mut self.locations, line)
            .is_none()
        {
            return true;
        }
        for (i, name) in &self.names {
            self.value.clear();
            if let Some((s, e)) = self.locations.get(*i) {
                push_go_text(&mut self.value, &line[s..e], '\u{fffd}', false);
            }
            lbs.add_extracted(name, &self.value);
        }
        true
    }
}

/// `| pattern "<ip> - <_> …"`.
#[derive(Clone, Debug)]
pub struct PatternParser {
    matcher: PatternMatcher,
    captures: Vec<(usize, usize)>,
    value: String,
}

impl PatternParser {
    pub fn new(pattern: &str) -> Result<Self, LogError> {
        let matcher = PatternMatcher::new(pattern)?;
        if let Some(bad) = matcher.names().iter().find(|n| !is_valid_label_name(n)) {
            return Err(LogError::InvalidCaptureLabelName { name: bad.clone() });
        }
        Ok(PatternParser {
            matcher,
            captures: Vec::new(),
            value: String::new(),
        })
    }
}

impl Stage for PatternParser {
    fn process(&mut self, _ts: Timestamp, line: &mut LineBuf<'_>, lbs: &mut LabelsBuilder) -> bool {
        let line = line.as_bytes();
        if lbs.parsers_idle() {
            return true;
        }
        self.matcher.matches_into(line, &mut self.captures);
        for (i, &(s, e)) in self.captures.iter().enumerate() {
            self.value.clear();
            push_go_text(&mut self.value, &line[s..e], '\u{fffd}', false);
            lbs.add_extracted(&self.matcher.names()[i], &self.value);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::log::LineScratch;
    use crate::model::Labels;

    fn run(stage: &mut dyn Stage, stream: &str, line: &str) -> String {
        let labels = Labels::parse(stream).unwrap();
        let mut b = LabelsBuilder::new(&labels);
        b.reset();
        let mut scratch = LineScratch::default();
        let mut lb = LineBuf::new(line.as_bytes(), &mut scratch);
        assert!(stage.process(Timestamp::EPOCH, &mut lb, &mut b));
        b.labels_result().labels().to_string()
    }

    /// Loki's `TestNewRegexpParser`.
    #[test]
    fn regexp_construction() {
        assert_eq!(
            RegexpParser::new("w.*").err(),
            Some(LogError::MissingCapture)
        );
        assert_eq!(
            RegexpParser::new("f(.*) (foo|bar|buzz)").err(),
            Some(LogError::MissingCapture)
        );
        assert!(RegexpParser::new("blah (.*) (?P<foo>)").is_ok());
        assert!(RegexpParser::new("blah (.*) (?P<foo>foo)(?P<bar>barr)").is_ok());
        assert!(RegexpParser::new("blah (.*) (?P<foo$>foo)(?P<bar>barr)").is_err());
        assert_eq!(
            RegexpParser::new("blah (.*) (?P<foo>foo)(?P<foo>barr)").err(),
            Some(LogError::DuplicateExtractedLabelName { name: "foo".into() })
        );
        assert_eq!(
            RegexpParser::new("(?P<a.b>x)").err(),
            Some(LogError::InvalidExtractedLabelName { name: "a.b".into() })
        );
    }

    /// Loki's `Test_regexpParser_Parse`.
    #[test]
    fn loki_regexp_table() {
        let p = |re: &str| RegexpParser::new(re).unwrap();
        assert_eq!(
            run(&mut p("(?P<foo>foo|bar)buzz"), r#"{app="foo"}"#, "blah"),
            r#"{app="foo"}"#
        );
        assert_eq!(
            run(
                &mut p("(?P<foo>.*)buzz"),
                r#"{app="bar"}"#,
                "matchebuzz barbuzz"
            ),
            r#"{app="bar", foo="matchebuzz bar"}"#
        );
        assert_eq!(
            run(&mut p("(?P<bar>bar)buzz"), r#"{bar="foo"}"#, "barbuzz"),
            r#"{bar="foo", bar_extracted="bar"}"#
        );
        assert_eq!(
            run(
                &mut p(r"status=(?P<status>\w+),latency=(?P<latency>\w+)(ms|ns)"),
                r#"{app="foo"}"#,
                "status=200,latency=500ms"
            ),
            r#"{app="foo", latency="500", status="200"}"#
        );
        assert_eq!(
            run(&mut p("a(?P<x>b)?c(?P<y>d)"), "{}", "acd"),
            r#"{x="", y="d"}"#,
            "an unmatched optional group is empty"
        );
        assert_eq!(
            run(
                &mut p(
                    r#"(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<method>\w+) (?P<path>\S+)"#
                ),
                "{}",
                r#"10.0.0.1 - frank [01/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 200"#
            ),
            r#"{ip="10.0.0.1", method="GET", path="/a", ts="01/Nov/2026:10:00:00 +0000", user="frank"}"#
        );
    }

    /// Loki's `Test_PatternParser`.
    #[test]
    fn loki_pattern_table() {
        let p = |s: &str| PatternParser::new(s).unwrap();
        assert_eq!(
            run(
                &mut p(r#"<ip> <userid> <user> [<_>] "<method> <path> <_>" <status> <size>"#),
                r#"{foo="bar"}"#,
                r#"127.0.0.1 user-identifier frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#
            ),
            r#"{foo="bar", ip="127.0.0.1", method="GET", path="/apache_pb.gif", size="2326", status="200", user="frank", userid="user-identifier"}"#
        );
        assert_eq!(
            run(
                &mut p(r#"<_> msg="<method> <path> (<status>) <duration>""#),
                r#"{method="bar"}"#,
                r#"level=debug ts=2021-05-19T07:54:26.864644382Z caller=logging.go:66 traceID=7fbb92fd0eb9c65d msg="POST /loki/api/v1/push (204) 1.238734ms""#
            ),
            r#"{duration="1.238734ms", method="bar", method_extracted="POST", path="/loki/api/v1/push", status="204"}"#
        );
        assert_eq!(
            run(&mut p(r#"foo <f>""#), r#"{method="bar"}"#, "bar"),
            r#"{method="bar"}"#
        );
        assert!(PatternParser::new("<a><b>").is_err());
        assert!(PatternParser::new("<_> foo").is_err());
    }
}
