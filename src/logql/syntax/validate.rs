//! The checks Loki runs on pieces of a query that are not grammar: regex,
//! pattern and `ip()` validity, and the pipeline-stage checks Loki performs
//! when it builds a query's pipeline (reported as `stage '<stage>' : ...`).
//!
//! Owns Loki's error texts for those checks (Go's `regexp/syntax` messages,
//! the pattern parser's, `ip: invalid ...`, `label_format` rules). It does
//! not compile anything for evaluation: the pipeline library does that, and
//! errors it finds later (templates, json paths) are wrapped with
//! [`ParseError::stage`].

use std::net::IpAddr;

use regex_syntax::ast::{self, Ast, ErrorKind, GroupKind};

use super::ast::{Expr, LabelFilter, LineFilter, LineFilterOp, Stage, Unwrap};
use super::error::ParseError;
use super::golang::quote;
use crate::model::matcher::translate_perl_classes;

/// Go's `regexp.Compile` error for `pattern`, as `error parsing regexp:
/// <code>: `<expr>``, or `None` when RE2 accepts it.
///
/// The check runs regex-syntax on the RE2-compatible form of the pattern
/// (see [`translate_perl_classes`]) and maps its error kinds onto Go's
/// codes; the quoted excerpt follows Go's choice (the whole pattern for
/// parentheses, the class for brackets, the escape for escapes).
pub fn go_regex_error(pattern: &str) -> Option<String> {
    let translated = translate_perl_classes(pattern);
    let parsed = ast::parse::ParserBuilder::new()
        .nest_limit(1000)
        .build()
        .parse(&translated);
    let err = match parsed {
        Ok(ast) => return repetition_error(&ast, &translated),
        Err(err) => err,
    };
    let span = err.span();
    let mut excerpt = translated
        .get(span.start.offset..span.end.offset)
        .unwrap_or("")
        .to_string();
    if excerpt.is_empty()
        && let Some(c) = translated
            .get(span.start.offset..)
            .and_then(|s| s.chars().next())
    {
        excerpt.push(c);
    }
    let from_start = translated
        .get(span.start.offset..)
        .unwrap_or("")
        .to_string();
    let (code, expr) = match err.kind() {
        ErrorKind::GroupUnclosed => ("missing closing )", pattern.to_string()),
        ErrorKind::GroupUnopened => ("unexpected )", pattern.to_string()),
        ErrorKind::ClassUnclosed => ("missing closing ]", from_start),
        ErrorKind::ClassRangeInvalid
        | ErrorKind::ClassRangeLiteral
        | ErrorKind::UnicodeClassInvalid => ("invalid character class range", excerpt),
        ErrorKind::EscapeUnexpectedEof => {
            ("trailing backslash at end of expression", String::new())
        }
        ErrorKind::EscapeUnrecognized
        | ErrorKind::EscapeHexEmpty
        | ErrorKind::EscapeHexInvalid
        | ErrorKind::EscapeHexInvalidDigit
        | ErrorKind::ClassEscapeInvalid
        | ErrorKind::UnsupportedBackreference => ("invalid escape sequence", excerpt),
        ErrorKind::RepetitionMissing => ("missing argument to repetition operator", excerpt),
        ErrorKind::RepetitionCountInvalid
        | ErrorKind::RepetitionCountDecimalEmpty
        | ErrorKind::RepetitionCountUnclosed
        | ErrorKind::DecimalEmpty
        | ErrorKind::DecimalInvalid => ("invalid repeat count", excerpt),
        ErrorKind::GroupNameDuplicate { .. } => ("duplicate capture group name", excerpt),
        ErrorKind::GroupNameEmpty
        | ErrorKind::GroupNameInvalid
        | ErrorKind::GroupNameUnexpectedEof => ("invalid named capture", excerpt),
        ErrorKind::NestLimitExceeded(_) => ("expression nests too deeply", pattern.to_string()),
        ErrorKind::CaptureLimitExceeded => ("expression too large", pattern.to_string()),
        _ => ("invalid or unsupported Perl syntax", excerpt),
    };
    Some(go_error(code, &expr))
}

fn go_error(code: &str, expr: &str) -> String {
    format!("error parsing regexp: {code}: `{expr}`")
}

/// Repetitions RE2 rejects and regex-syntax accepts: counts above 1000
/// (`a{1001}`) and stacked operators (`a**`).
fn repetition_error(ast: &Ast, src: &str) -> Option<String> {
    let mut found = None;
    let _ = ast::visit(
        ast,
        RepeatVisitor {
            src,
            found: &mut found,
        },
    );
    found
}

struct RepeatVisitor<'a, 'b> {
    src: &'a str,
    found: &'b mut Option<String>,
}

impl ast::Visitor for RepeatVisitor<'_, '_> {
    type Output = ();
    type Err = ();

    fn finish(self) -> Result<(), ()> {
        Ok(())
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), ()> {
        if let Ast::Repetition(rep) = ast
            && let Ast::Repetition(inner) = &*rep.ast
            && self.found.is_none()
        {
            let text = &self.src[inner.op.span.start.offset..rep.op.span.end.offset];
            *self.found = Some(go_error("invalid nested repetition operator", text));
        }
        Ok(())
    }

    fn visit_post(&mut self, ast: &Ast) -> Result<(), ()> {
        if let Ast::Repetition(rep) = ast
            && let ast::RepetitionKind::Range(range) = &rep.op.kind
        {
            let (min, max) = match *range {
                ast::RepetitionRange::Exactly(n) => (n, n),
                ast::RepetitionRange::AtLeast(n) => (n, n),
                ast::RepetitionRange::Bounded(a, b) => (a, b),
            };
            if (min > 1000 || max > 1000 || max < min) && self.found.is_none() {
                let span = rep.op.span;
                let text = &self.src[span.start.offset..span.end.offset];
                *self.found = Some(go_error("invalid repeat count", text));
            }
        }
        Ok(())
    }
}

/// Loki's `log.NewRegexpParser`: a valid regex with at least one named
/// capture and no name used twice. Returns the reason without the
/// `invalid regexp parser: ` prefix.
pub fn check_regexp_parser(regex: &str) -> Result<(), String> {
    let translated = translate_perl_classes(regex);
    let parsed = ast::parse::Parser::new().parse(&translated);
    if let Err(err) = &parsed
        && let ErrorKind::GroupNameDuplicate { original } = err.kind()
    {
        let name = translated
            .get(original.start.offset..original.end.offset)
            .unwrap_or("");
        return Err(format!("duplicate extracted label name '{name}'"));
    }
    if let Some(err) = go_regex_error(regex) {
        return Err(err);
    }
    let Ok(ast) = parsed else {
        return Err(go_error("invalid or unsupported Perl syntax", regex));
    };
    let mut captures = 0usize;
    let mut names: Vec<String> = Vec::new();
    let _ = ast::visit(
        &ast,
        CaptureVisitor {
            captures: &mut captures,
            names: &mut names,
        },
    );
    if captures == 0 || names.is_empty() {
        return Err("at least one named capture must be supplied".to_string());
    }
    Ok(())
}

struct CaptureVisitor<'a> {
    captures: &'a mut usize,
    names: &'a mut Vec<String>,
}

impl ast::Visitor for CaptureVisitor<'_> {
    type Output = ();
    type Err = ();

    fn finish(self) -> Result<(), ()> {
        Ok(())
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), ()> {
        if let Ast::Group(group) = ast {
            match &group.kind {
                GroupKind::CaptureIndex(_) => *self.captures += 1,
                GroupKind::CaptureName { name, .. } => {
                    *self.captures += 1;
                    self.names.push(name.name.clone());
                }
                GroupKind::NonCapturing(_) => {}
            }
        }
        Ok(())
    }
}

/// One node of a Loki pattern: a capture `<name>` (`<_>` is unnamed) or a
/// run of literal text.
#[derive(Debug, PartialEq)]
enum PatternNode<'a> {
    Capture(&'a str),
    Literal,
}

/// Loki's pattern lexer: `<` ASCII-letter-or-`_` then letters, digits, `_`
/// and `>` is a capture; everything else is literal text.
fn pattern_nodes(pattern: &str) -> Vec<PatternNode<'_>> {
    let b = pattern.as_bytes();
    let mut nodes = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<' && i + 1 < b.len() && (b[i + 1].is_ascii_alphabetic() || b[i + 1] == b'_') {
            let mut j = i + 2;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j < b.len() && b[j] == b'>' {
                nodes.push(PatternNode::Capture(&pattern[i + 1..j]));
                i = j + 1;
                continue;
            }
        }
        if nodes.last() != Some(&PatternNode::Literal) {
            nodes.push(PatternNode::Literal);
        }
        i += 1;
    }
    nodes
}

fn consecutive_captures(nodes: &[PatternNode<'_>]) -> Result<(), String> {
    for pair in nodes.windows(2) {
        if let [PatternNode::Capture(a), PatternNode::Capture(b)] = pair {
            return Err(format!(
                "found consecutive capture '<{a}><{b}>': invalid expression"
            ));
        }
    }
    Ok(())
}

/// Loki's `pattern.New` (the `| pattern` parser): at least one named
/// capture, no two adjacent captures, no name used twice. Returns the reason
/// without the `invalid pattern parser: ` prefix.
pub fn check_pattern_parser(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err(
            "parse error at line 1, col 1: syntax error: unexpected $end, expecting IDENTIFIER or LITERAL"
                .to_string(),
        );
    }
    let nodes = pattern_nodes(pattern);
    let named: Vec<&str> = nodes
        .iter()
        .filter_map(|n| match n {
            PatternNode::Capture(name) if *name != "_" => Some(*name),
            _ => None,
        })
        .collect();
    if named.is_empty() {
        return Err("at least one capture is required".to_string());
    }
    consecutive_captures(&nodes)?;
    for (i, name) in named.iter().enumerate() {
        if named[..i].contains(name) {
            return Err(format!(
                "duplicate capture name ({name}): invalid expression"
            ));
        }
    }
    Ok(())
}

/// Loki's `pattern.ParseLineFilter` (the `|>`/`!>` filters): only `<_>`
/// captures, never adjacent. The empty pattern is allowed.
pub fn check_pattern_line_filter(pattern: &str) -> Result<(), String> {
    let nodes = pattern_nodes(pattern);
    consecutive_captures(&nodes)?;
    if let Some(name) = nodes.iter().find_map(|n| match n {
        PatternNode::Capture(name) if *name != "_" => Some(*name),
        _ => None,
    }) {
        return Err(format!("named captures are not allowed: found '<{name}>'"));
    }
    Ok(())
}

/// Loki's `ip()` pattern: a single address, a CIDR prefix or an `a-b` range
/// (Go's `netip.ParseAddr`, `netip.ParsePrefix`, `netipx.ParseIPRange`).
pub fn check_ip_pattern(pattern: &str) -> Result<(), String> {
    if ip_pattern_ok(pattern) {
        Ok(())
    } else {
        Err(format!("ip: invalid pattern: {}", quote(pattern)))
    }
}

fn parse_addr(s: &str, allow_zone: bool) -> Option<IpAddr> {
    let s = match s.split_once('%') {
        Some((addr, zone)) if allow_zone && addr.contains(':') && !zone.is_empty() => addr,
        Some(_) => return None,
        None => s,
    };
    s.parse().ok()
}

fn ip_pattern_ok(pattern: &str) -> bool {
    if parse_addr(pattern, true).is_some() {
        return true;
    }
    if let Some((addr, bits)) = pattern.split_once('/') {
        let Some(addr) = parse_addr(addr, false) else {
            return false;
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let well_formed = !bits.is_empty()
            && bits.bytes().all(|b| b.is_ascii_digit())
            && (bits.len() == 1 || !bits.starts_with('0'));
        return well_formed && bits.parse::<u32>().is_ok_and(|n| n <= max);
    }
    if let Some((from, to)) = pattern.split_once('-') {
        let (Some(from), Some(to)) = (parse_addr(from, false), parse_addr(to, false)) else {
            return false;
        };
        return from.is_ipv4() == to.is_ipv4() && from <= to;
    }
    false
}

/// Loki's checks when building a query's pipelines, in Loki's order: stages
/// are visited as `reorderStages` arranges them (each run of line filters
/// first, reported under the text of the whole run), and within a run of
/// line filters from the last filter to the first.
pub fn validate_stages(expr: &Expr) -> Result<(), ParseError> {
    match expr {
        Expr::Log(log) => validate_pipeline(&log.pipeline, None),
        Expr::Sample(sample) => {
            for range in sample.log_ranges() {
                validate_pipeline(&range.log.pipeline, range.unwrap.as_ref())?;
            }
            Ok(())
        }
    }
}

fn validate_pipeline(stages: &[Stage], unwrap: Option<&Unwrap>) -> Result<(), ParseError> {
    let mut filters: Vec<&LineFilter> = Vec::new();
    let mut others: Vec<&Stage> = Vec::new();
    let flush =
        |filters: &mut Vec<&LineFilter>, others: &mut Vec<&Stage>| -> Result<(), ParseError> {
            if !filters.is_empty() {
                check_line_filters(filters)?;
            }
            for stage in others.iter() {
                check_stage(stage)?;
            }
            filters.clear();
            others.clear();
            Ok(())
        };
    for stage in stages {
        match stage {
            Stage::LabelFilter(_) => {
                flush(&mut filters, &mut others)?;
                check_stage(stage)?;
            }
            Stage::LineFilter(f) => filters.push(f),
            Stage::LineFormat(_) | Stage::Unpack(_) => {
                others.push(stage);
                flush(&mut filters, &mut others)?;
            }
            _ => others.push(stage),
        }
    }
    flush(&mut filters, &mut others)?;
    if let Some(unwrap) = unwrap {
        for filter in &unwrap.post_filters {
            check_label_filter(filter, &format!("| {filter}"))?;
        }
    }
    Ok(())
}

fn check_line_filters(filters: &[&LineFilter]) -> Result<(), ParseError> {
    let text = || {
        filters
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    for filter in filters.iter().rev() {
        for value in &filter.values {
            let result = if value.ip {
                if matches!(
                    filter.op,
                    LineFilterOp::Contains | LineFilterOp::NotContains
                ) {
                    check_ip_pattern(&value.value)
                } else {
                    Err("ip: invalid operation".to_string())
                }
            } else {
                match filter.op {
                    LineFilterOp::Regex | LineFilterOp::NotRegex => {
                        go_regex_error(&value.value).map_or(Ok(()), Err)
                    }
                    LineFilterOp::Pattern | LineFilterOp::NotPattern => {
                        check_pattern_line_filter(&value.value)
                    }
                    LineFilterOp::Contains | LineFilterOp::NotContains => Ok(()),
                }
            };
            if let Err(reason) = result {
                return Err(ParseError::stage(text(), reason, Some(filter.span)));
            }
        }
    }
    Ok(())
}

fn check_stage(stage: &Stage) -> Result<(), ParseError> {
    match stage {
        Stage::LabelFilter(f) => check_label_filter(&f.filter, &stage.to_string()),
        Stage::LabelFormat(lf) => {
            for (i, f) in lf.formats.iter().enumerate() {
                let reason = if f.dst == "__error__" {
                    Some(format!("{} cannot be formatted", f.dst))
                } else if lf.formats[..i].iter().any(|g| g.dst == f.dst) {
                    Some(format!(
                        "multiple label name '{}' not allowed in a single format operation",
                        f.dst
                    ))
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(ParseError::stage(stage, reason, Some(f.span)));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_label_filter(filter: &LabelFilter, text: &str) -> Result<(), ParseError> {
    let mut result = Ok(());
    filter.for_each_leaf(&mut |leaf| {
        if let LabelFilter::Ip(ip) = leaf
            && result.is_ok()
            && let Err(reason) = check_ip_pattern(&ip.pattern)
        {
            result = Err(ParseError::stage(text, reason, Some(ip.span)));
        }
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_regex_errors() {
        assert_eq!(
            go_regex_error("(unclosed").as_deref(),
            Some("error parsing regexp: missing closing ): `(unclosed`")
        );
        assert_eq!(
            go_regex_error("([").as_deref(),
            Some("error parsing regexp: missing closing ]: `[`")
        );
        assert_eq!(
            go_regex_error(r"^(?:^^^^x43\q)$").as_deref(),
            Some(r"error parsing regexp: invalid escape sequence: `\q`")
        );
        assert_eq!(
            go_regex_error("a)").as_deref(),
            Some("error parsing regexp: unexpected ): `a)`")
        );
        assert_eq!(
            go_regex_error("*a").as_deref(),
            Some("error parsing regexp: missing argument to repetition operator: `*`")
        );
        assert_eq!(
            go_regex_error("a{1001}").as_deref(),
            Some("error parsing regexp: invalid repeat count: `{1001}`")
        );
        assert_eq!(go_regex_error(r"\d+\w*\S"), None);
        assert_eq!(
            go_regex_error("{foo}"),
            None,
            "RE2 reads a stray brace as a literal"
        );
        assert_eq!(go_regex_error("(?i)err.*"), None);
    }

    #[test]
    fn regexp_parser_rules() {
        assert_eq!(
            check_regexp_parser(r"(?P<method>\w+) (?P<path>\S+)"),
            Ok(())
        );
        assert_eq!(
            check_regexp_parser("abc"),
            Err("at least one named capture must be supplied".to_string())
        );
        assert_eq!(
            check_regexp_parser("(x)"),
            Err("at least one named capture must be supplied".to_string())
        );
        assert_eq!(
            check_regexp_parser("(?P<a>x)(?P<a>y)"),
            Err("duplicate extracted label name 'a'".to_string())
        );
        assert_eq!(
            check_regexp_parser("(["),
            Err("error parsing regexp: missing closing ]: `[`".to_string())
        );
        assert_eq!(check_regexp_parser("(?P<a>x)(y)"), Ok(()));
    }

    #[test]
    fn pattern_parser_rules() {
        assert_eq!(check_pattern_parser("<f>"), Ok(()));
        assert_eq!(check_pattern_parser("<f> <a>"), Ok(()));
        assert_eq!(
            check_pattern_parser(""),
            Err("parse error at line 1, col 1: syntax error: unexpected $end, expecting IDENTIFIER or LITERAL".to_string())
        );
        for no_capture in ["<_>", "foo <_> bar <_>", "foo bar buzz", "<1a> x", "<a"] {
            assert_eq!(
                check_pattern_parser(no_capture),
                Err("at least one capture is required".to_string()),
                "{no_capture}"
            );
        }
        assert_eq!(
            check_pattern_parser("<f><f>"),
            Err("found consecutive capture '<f><f>': invalid expression".to_string())
        );
        assert_eq!(
            check_pattern_parser("<f> f<d><b>"),
            Err("found consecutive capture '<d><b>': invalid expression".to_string())
        );
        assert_eq!(
            check_pattern_parser("f<f><_>"),
            Err("found consecutive capture '<f><_>': invalid expression".to_string())
        );
        assert_eq!(
            check_pattern_parser("<f> f<f>"),
            Err("duplicate capture name (f): invalid expression".to_string())
        );
    }

    #[test]
    fn pattern_line_filter_rules() {
        assert_eq!(check_pattern_line_filter("<_>"), Ok(()));
        assert_eq!(check_pattern_line_filter(""), Ok(()));
        assert_eq!(check_pattern_line_filter("foo <_> bar <_>"), Ok(()));
        assert_eq!(
            check_pattern_line_filter("<foo <foo> bar <_>"),
            Err("named captures are not allowed: found '<foo>'".to_string())
        );
        assert_eq!(
            check_pattern_line_filter("<_><_>"),
            Err("found consecutive capture '<_><_>': invalid expression".to_string())
        );
    }

    #[test]
    fn ip_patterns() {
        for ok in [
            "192.168.4.5",
            "192.168.4.0/24",
            "10.0.0.1-10.0.0.9",
            "2001:db8::/32",
            "::1",
            "fe80::1%eth0",
            "::1-::ff",
        ] {
            assert_eq!(check_ip_pattern(ok), Ok(()), "{ok}");
        }
        for bad in [
            "192.168.4",
            "1.2.3.4/33",
            "1.2.3.4/08",
            "10.0.0.9-10.0.0.1",
            "1.2.3.4-::1",
            "foo",
            "",
        ] {
            assert_eq!(
                check_ip_pattern(bad),
                Err(format!("ip: invalid pattern: {}", quote(bad))),
                "{bad}"
            );
        }
    }
}
