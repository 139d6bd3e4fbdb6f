//! The one error type of the LogQL syntax layer, printed exactly as Loki
//! prints its `logqlmodel.ParseError`.
//!
//! Loki reports every query problem found before evaluation as a parse error:
//! `parse error at line L, col C: <msg>` when it knows a position, and
//! `parse error : <msg>` (line and column both 0) for validations run on the
//! finished tree. A few API-shape errors (`only label matchers are
//! supported`) are plain text. [`ParseErrorKind`] tells them apart so the API
//! layer can map each to its status code; all of them are HTTP 400 in Loki.
//!
//! Invariant: `Display` is byte-identical to Loki's message for the same
//! query; `line`/`col` follow Loki's conventions (1-based; the line is 0 when
//! Loki's scanner had already moved past the token start, e.g. for `[range]`
//! and two-character operators).

use std::fmt;

use super::ast::Span;

/// What went wrong, at the granularity the API layer needs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ParseErrorKind {
    /// A lexical or grammar error (`syntax error: unexpected ...`, bad
    /// string escape, bad `[range]`).
    Syntax,
    /// The query parsed but breaks a rule Loki checks on the tree (empty
    /// matchers, grouping, unwrap, parameters, invalid regexes, ...).
    Validation,
    /// A pipeline stage cannot be built (`stage '<stage>' : <reason>`).
    Stage,
    /// `parse_matchers` was given more than a stream selector.
    NotMatchers,
    /// `parse_log_selector` was given a metric query.
    NotLogSelector,
    /// `parse_sample_expr` was given a log query.
    NotSampleExpr,
}

/// A query that Loki would reject before evaluation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ParseError {
    /// Loki's line number (1-based; 0 when Loki reports none).
    pub line: u32,
    /// Loki's column (1-based, in characters; 0 when Loki reports none).
    pub col: u32,
    /// The message after Loki's `parse error ...:` prefix.
    pub msg: String,
    pub kind: ParseErrorKind,
    /// Byte range of the offending text in the query, when known.
    pub span: Option<Span>,
}

impl ParseError {
    /// An error Loki reports with a position.
    pub(crate) fn at(line: u32, col: u32, span: Span, msg: impl Into<String>) -> Self {
        ParseError {
            line,
            col,
            msg: msg.into(),
            kind: ParseErrorKind::Syntax,
            span: Some(span),
        }
    }

    /// A validation error, which Loki prints without a position.
    pub fn validation(msg: impl Into<String>, span: Option<Span>) -> Self {
        ParseError {
            line: 0,
            col: 0,
            msg: msg.into(),
            kind: ParseErrorKind::Validation,
            span,
        }
    }

    /// Loki's `NewStageError`: `stage '<stage>' : <reason>`. `stage` is the
    /// canonical text of the stage (its `Display`). The evaluator uses this
    /// for errors found while building stages (templates, json paths).
    pub fn stage(stage: impl fmt::Display, reason: impl fmt::Display, span: Option<Span>) -> Self {
        ParseError {
            line: 0,
            col: 0,
            msg: format!("stage '{stage}' : {reason}"),
            kind: ParseErrorKind::Stage,
            span,
        }
    }

    pub(crate) fn plain(kind: ParseErrorKind, msg: &str) -> Self {
        ParseError {
            line: 0,
            col: 0,
            msg: msg.to_string(),
            kind,
            span: None,
        }
    }

    /// Whether Loki treats this as a parse error (`errors.Is(err, ErrParse)`).
    pub fn is_parse_error(&self) -> bool {
        matches!(
            self.kind,
            ParseErrorKind::Syntax | ParseErrorKind::Validation | ParseErrorKind::Stage
        )
    }

    fn render(&self) -> String {
        if !self.is_parse_error() {
            return self.msg.clone();
        }
        if self.line == 0 && self.col == 0 {
            format!("parse error : {}", self.msg)
        } else {
            format!(
                "parse error at line {}, col {}: {}",
                self.line, self.col, self.msg
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_loki() {
        let e = ParseError::at(1, 11, Span::new(10, 10), "syntax error: unexpected $end");
        assert_eq!(
            e.to_string(),
            "parse error at line 1, col 11: syntax error: unexpected $end"
        );
        let e = ParseError::at(0, 28, Span::new(27, 33), "unknown unit");
        assert_eq!(e.to_string(), "parse error at line 0, col 28: unknown unit");
        let e = ParseError::validation("grouping not allowed for rate aggregation", None);
        assert_eq!(
            e.to_string(),
            "parse error : grouping not allowed for rate aggregation"
        );
        let e = ParseError::stage("| label_format a=b,a=c", "multiple label name 'a'", None);
        assert_eq!(
            e.to_string(),
            "parse error : stage '| label_format a=b,a=c' : multiple label name 'a'"
        );
        let e = ParseError::plain(
            ParseErrorKind::NotMatchers,
            "only label matchers are supported",
        );
        assert_eq!(e.to_string(), "only label matchers are supported");
        assert!(!e.is_parse_error());
    }
}
