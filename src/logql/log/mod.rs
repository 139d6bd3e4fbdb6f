//! The log pipeline stage library: lokal's `pkg/logql/log`.
//!
//! Owns the per-entry machinery a LogQL log pipeline runs, with Loki 3.8's
//! observable semantics (quirks included where users see them):
//!
//! - [`LabelsBuilder`]: an entry's label state in three categories (stream,
//!   structured metadata, parsed) plus `__error__`/`__error_details__`, and
//!   the final, hashed and cached [`LabelsResult`].
//! - [`LineFilter`]: `|=`, `!=`, `|~`, `!~`, `|>`, `!>`, `ip()`, `or` chains,
//!   with Loki's regex simplifier ([`regex_simplify`]) and push-down literals.
//! - Parsers: [`JsonParser`], [`JsonExpressionParser`], [`LogfmtParser`],
//!   [`LogfmtExpressionParser`], [`RegexpParser`], [`PatternParser`],
//!   [`UnpackParser`].
//! - [`LabelFilter`] (string, number, duration, bytes, `ip()`, and/or),
//!   [`DropLabels`], [`KeepLabels`], [`Decolorizer`].
//! - [`Pipeline`] / [`StreamPipeline`]: stages chained per stream, with a
//!   tail hook for sample extraction ([`StreamPipeline::process_with`]) and
//!   the [`ParserHints`] of metric queries.
//! - Go-compatible conversions in [`convert`].
//!
//! Does not own: the LogQL AST (every stage is built from plain values by the
//! evaluator), `line_format`/`label_format` (the template engine implements
//! [`Stage`] against [`TemplateContext`]), metric extraction, I/O.
//!
//! Invariants: stages never mutate the line they are given; an unchanged line
//! is never copied ([`LineBuf`]); the per-entry path does not allocate once
//! the reusable buffers have grown; everything here is `Send` and cheap to
//! clone so each query worker owns its copy.

#[cfg(test)]
mod conformance_tests;
pub mod convert;
mod decolorize;
mod drop_keep;
mod hints;
mod ip;
mod json;
pub(crate) mod jsonscan;
mod label_filter;
mod labels;
mod line_filter;
pub mod logfmt;
mod parsers;
mod pattern;
mod pipeline;
#[cfg(test)]
mod proptests;
pub mod regex_simplify;

use std::fmt;

use crate::model::Timestamp;

pub use decolorize::Decolorizer;
pub use drop_keep::{DropLabels, KeepLabels, LabelSelector};
pub use hints::ParserHints;
pub use ip::IpMatcher;
pub use json::{
    JsonExpressionParser, JsonParser, JsonPathElem, LabelExtraction, UnpackParser, parse_json_path,
};
pub use label_filter::{CompareOp, LabelFilter, LabelFilterStage};
pub use labels::{EntryContext, LabelCategory, LabelsBuilder, LabelsResult};
pub use line_filter::{ChainValue, LineFilter, LineFilterOp, LineFilterStage};
pub use logfmt::{LogfmtExpressionParser, LogfmtParser};
pub use parsers::{PatternParser, RegexpParser};
pub use pattern::PatternMatcher;
pub use pipeline::{Pipeline, ProcessedEntry, StreamPipeline};

/// `__error__`: the pipeline error label.
pub const ERROR_LABEL: &str = "__error__";
/// `__error_details__`: the Go error text behind `__error__`.
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";
/// `__preserve_error__`: set when grouping references `__error__`.
pub const PRESERVE_ERROR_LABEL: &str = "__preserve_error__";

/// `__error__` value of a JSON parser failure.
pub const ERR_JSON: &str = "JSONParserErr";
/// `__error__` value of a strict logfmt parser failure.
pub const ERR_LOGFMT: &str = "LogfmtParserErr";
/// `__error__` value of a failed unwrap conversion.
pub const ERR_SAMPLE_EXTRACTION: &str = "SampleExtractionErr";
/// `__error__` value of a label filter conversion failure.
pub const ERR_LABEL_FILTER: &str = "LabelFilterErr";
/// `__error__` value of a template execution failure.
pub const ERR_TEMPLATE_FORMAT: &str = "TemplateFormatErr";

/// Errors building a stage from user input. Messages follow Loki's where
/// Loki has one, so users see familiar text in the 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("invalid regex {pattern:?}: {message}")]
    InvalidRegex { pattern: String, message: String },
    #[error("at least one named capture must be supplied")]
    MissingCapture,
    #[error("invalid extracted label name '{name}'")]
    InvalidExtractedLabelName { name: String },
    #[error("duplicate extracted label name '{name}'")]
    DuplicateExtractedLabelName { name: String },
    #[error("invalid capture label name '{name}'")]
    InvalidCaptureLabelName { name: String },
    #[error("parse error at line 1, col 1: {message}")]
    PatternSyntax { pattern: String, message: String },
    #[error("at least one capture is required")]
    PatternNoCapture,
    #[error("found consecutive capture '{found}': invalid expression")]
    PatternConsecutiveCapture { found: String },
    #[error("duplicate capture name ({name}): invalid expression")]
    PatternDuplicateCapture { name: String },
    #[error("named captures are not allowed: found '{found}'")]
    PatternCaptureNotAllowed { found: String },
    #[error("cannot parse expression [{expression}]: syntax error: {message}")]
    ExpressionSyntax { expression: String, message: String },
    #[error("no logfmt expression provided")]
    NoLogfmtExpression,
    #[error("ip: invalid pattern: {pattern:?}")]
    IpInvalidPattern { pattern: String },
    #[error("ip: invalid operation")]
    IpInvalidOperation,
}

/// What a template engine (`line_format`, `label_format`) reads from the
/// entry being processed.
pub trait TemplateContext {
    /// The value of a label as the entry currently has it (parsed over
    /// structured metadata over stream), including `__error__` and
    /// `__error_details__` when set. `None` when absent.
    fn label(&self, name: &str) -> Option<&str>;
    /// The current line as text (invalid UTF-8 replaced by U+FFFD).
    fn line(&self) -> &str;
    /// The entry's timestamp.
    fn timestamp(&self) -> Timestamp;
}

/// One step of a pipeline. `process` returns `false` to drop the entry.
///
/// Implementations never mutate the bytes they are given: a stage that
/// changes the line writes the new line through [`LineBuf::rewrite`]. They
/// are `Send + Sync` so a [`Pipeline`] template can be shared between query
/// workers, each of which clones its own [`StreamPipeline`]s.
pub trait Stage: StageClone + Send + Sync + fmt::Debug {
    fn process(
        &mut self,
        ts: Timestamp,
        line: &mut LineBuf<'_>,
        labels: &mut LabelsBuilder,
    ) -> bool;

    /// The line filter this stage applies, if it is only a line filter. Lets
    /// the evaluator push leading line filters down into chunk reads.
    fn as_line_filter(&self) -> Option<&LineFilter> {
        None
    }
}

/// Cloning of boxed stages; implemented for every `Stage + Clone`.
pub trait StageClone {
    fn clone_box(&self) -> Box<dyn Stage>;
}

impl<T: Stage + Clone + 'static> StageClone for T {
    fn clone_box(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn Stage> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Two reusable buffers for rewritten lines, owned by whoever runs stages
/// (one per stream pipeline), so rewriting does not allocate per entry.
#[derive(Debug, Default, Clone)]
pub struct LineScratch {
    bufs: [Vec<u8>; 2],
}

/// The line flowing through a pipeline: the original bytes until a stage
/// rewrites it, then one of the scratch buffers. The original is never
/// copied or mutated.
#[derive(Debug)]
pub struct LineBuf<'a> {
    original: &'a [u8],
    scratch: &'a mut LineScratch,
    current: Option<usize>,
}

impl<'a> LineBuf<'a> {
    pub fn new(original: &'a [u8], scratch: &'a mut LineScratch) -> Self {
        LineBuf {
            original,
            scratch,
            current: None,
        }
    }

    /// The current line.
    pub fn as_bytes(&self) -> &[u8] {
        match self.current {
            None => self.original,
            Some(i) => &self.scratch.bufs[i],
        }
    }

    /// Whether a stage has rewritten the line.
    pub fn is_changed(&self) -> bool {
        self.current.is_some()
    }

    /// Replaces the line: `f` receives the current line and an empty output
    /// buffer to write the new line into.
    pub fn rewrite<R>(&mut self, f: impl FnOnce(&[u8], &mut Vec<u8>) -> R) -> R {
        let [a, b] = &mut self.scratch.bufs;
        let (src, dst): (&[u8], &mut Vec<u8>) = match self.current {
            None => (self.original, a),
            Some(0) => (a.as_slice(), b),
            Some(_) => (b.as_slice(), a),
        };
        dst.clear();
        let r = f(src, dst);
        self.current = Some(match self.current {
            None | Some(1) => 0,
            Some(_) => 1,
        });
        r
    }

    /// Replaces the line with `bytes`.
    pub fn set(&mut self, bytes: &[u8]) {
        self.rewrite(|_, out| out.extend_from_slice(bytes));
    }

    /// The final line, borrowed from the original or from the scratch.
    pub fn into_bytes(self) -> &'a [u8] {
        match self.current {
            None => self.original,
            Some(i) => &self.scratch.bufs[i],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_cross_threads() {
        fn shareable<T: Send + Sync>() {}
        fn sendable<T: Send>() {}
        shareable::<Pipeline>();
        shareable::<LabelsResult>();
        sendable::<StreamPipeline>();
        sendable::<LabelsBuilder>();
    }

    #[test]
    fn line_buf_rewrites_without_touching_the_original() {
        let original = b"hello".to_vec();
        let mut scratch = LineScratch::default();
        let mut line = LineBuf::new(&original, &mut scratch);
        assert!(!line.is_changed());
        line.rewrite(|cur, out| {
            out.extend_from_slice(cur);
            out.extend_from_slice(b" world");
        });
        assert_eq!(line.as_bytes(), b"hello world");
        line.rewrite(|cur, out| out.extend(cur.iter().map(u8::to_ascii_uppercase)));
        assert_eq!(line.as_bytes(), b"HELLO WORLD");
        line.set(b"x");
        assert!(line.is_changed());
        assert_eq!(line.into_bytes(), b"x");
        assert_eq!(original, b"hello");
    }
}
