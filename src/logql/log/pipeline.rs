//! Pipelines: stages chained, instantiated per stream.
//!
//! Owns: running the stages of a query's log pipeline over the entries of a
//! stream in order, stopping at the first stage that drops the entry, and
//! handing back the (possibly rewritten) line with the entry's cached
//! [`LabelsResult`]. Loki's `pipeline.go`.
//!
//! Does not own: building stages from the AST (the evaluator), iterating
//! entries, grouping by labels (the evaluator, by `LabelsResult::hash`).
//!
//! Invariants: a [`Pipeline`] is a template cloned into one
//! [`StreamPipeline`] per stream, so each query worker owns its stages and
//! their scratch buffers; an unchanged line is returned as the caller's
//! slice, never copied.

use std::sync::Arc;

use crate::model::{Labels, MetadataPair, Timestamp};

use super::{LabelsBuilder, LabelsResult, LineBuf, LineFilter, LineScratch, ParserHints, Stage};

/// The stages of a log pipeline, in order, and the parser hints of the
/// query they belong to.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
    hints: Arc<ParserHints>,
}

impl Pipeline {
    pub fn new(stages: Vec<Box<dyn Stage>>) -> Self {
        Pipeline {
            stages,
            hints: Arc::new(ParserHints::none()),
        }
    }

    /// Sets the parser hints (metric queries; see [`ParserHints::new`]).
    pub fn with_hints(mut self, hints: ParserHints) -> Self {
        self.hints = Arc::new(hints);
        self
    }

    /// Appends a stage.
    pub fn push(&mut self, stage: impl Stage + 'static) {
        self.stages.push(Box::new(stage));
    }

    /// Whether the pipeline has no stages.
    pub fn is_noop(&self) -> bool {
        self.stages.is_empty()
    }

    pub fn stages(&self) -> &[Box<dyn Stage>] {
        &self.stages
    }

    /// The line filters at the head of the pipeline (before any stage that
    /// may change the line or the labels): safe to evaluate while reading
    /// chunks, before the pipeline runs.
    pub fn leading_line_filters(&self) -> Vec<&LineFilter> {
        self.stages
            .iter()
            .map_while(|s| s.as_line_filter())
            .collect()
    }

    /// This pipeline without its [`Pipeline::leading_line_filters`], for a
    /// caller that runs those on the raw lines first. Line filters change
    /// neither the line nor the labels, so the result is the same.
    pub fn without_leading_line_filters(&self) -> Pipeline {
        let skip = self.leading_line_filters().len();
        Pipeline {
            stages: self.stages[skip..].to_vec(),
            hints: Arc::clone(&self.hints),
        }
    }

    /// A pipeline instance for the stream with `labels`.
    pub fn for_stream(&self, labels: &Labels) -> StreamPipeline {
        let mut builder = LabelsBuilder::new(labels);
        builder.set_hints(Arc::clone(&self.hints));
        StreamPipeline {
            stages: self.stages.clone(),
            builder,
            scratch: LineScratch::default(),
        }
    }
}

/// The pipeline of one stream.
#[derive(Clone, Debug)]
pub struct StreamPipeline {
    stages: Vec<Box<dyn Stage>>,
    builder: LabelsBuilder,
    scratch: LineScratch,
}

/// An entry that passed the pipeline.
#[derive(Debug)]
pub struct ProcessedEntry<'a> {
    /// The final line: the caller's slice when `line_changed` is false.
    pub line: &'a [u8],
    pub line_changed: bool,
    pub labels: Arc<LabelsResult>,
}

impl StreamPipeline {
    /// Runs the stages over one entry. `None` when a stage dropped it.
    pub fn process<'a>(
        &'a mut self,
        ts: Timestamp,
        line: &'a [u8],
        metadata: &[MetadataPair],
    ) -> Option<ProcessedEntry<'a>> {
        self.process_with(
            ts,
            line,
            metadata.iter().map(|m| (m.name_str(), m.value_str())),
            |_, _| Some(()),
        )
        .map(|(entry, ())| entry)
    }

    /// Like [`StreamPipeline::process`], with a `tail` run after the stages
    /// and before the final labels are computed. The tail sees the label
    /// state and the final line and may drop the entry (`None`); it is where
    /// a sample extractor reads and converts an `unwrap` label, sets
    /// `SampleExtractionErr`, runs the label filters that follow `unwrap`
    /// and deletes the unwrapped label.
    pub fn process_with<'a, 'm, R>(
        &'a mut self,
        ts: Timestamp,
        line: &'a [u8],
        metadata: impl IntoIterator<Item = (&'m str, &'m str)>,
        tail: impl FnOnce(&mut LabelsBuilder, &[u8]) -> Option<R>,
    ) -> Option<(ProcessedEntry<'a>, R)> {
        self.builder.reset();
        self.builder
            .add_structured_metadata_pairs(metadata.into_iter());
        let mut buf = LineBuf::new(line, &mut self.scratch);
        for stage in &mut self.stages {
            if !stage.process(ts, &mut buf, &mut self.builder) {
                return None;
            }
        }
        let extra = tail(&mut self.builder, buf.as_bytes())?;
        let line_changed = buf.is_changed();
        let labels = self.builder.labels_result();
        Some((
            ProcessedEntry {
                line: buf.into_bytes(),
                line_changed,
                labels,
            },
            extra,
        ))
    }

    /// The stream's labels.
    pub fn stream_labels(&self) -> &Labels {
        self.builder.stream_labels()
    }

    /// The result of entries whose labels the pipeline leaves untouched.
    pub fn base_result(&self) -> &Arc<LabelsResult> {
        self.builder.base_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::log::{
        CompareOp, Decolorizer, DropLabels, JsonParser, LabelFilter, LabelFilterStage,
        LabelSelector, LineFilterOp, LineFilterStage, LogfmtParser,
    };
    use crate::model::MatchOp;

    fn labels(s: &str) -> Labels {
        Labels::parse(s).unwrap()
    }

    #[test]
    fn stages_chain_and_drop() {
        let mut p = Pipeline::default();
        p.push(LineFilterStage::new(
            LineFilter::new(LineFilterOp::Contains, "level").unwrap(),
        ));
        p.push(LogfmtParser::new(false, false));
        p.push(LabelFilterStage::new(LabelFilter::numeric(
            "latency",
            CompareOp::Gt,
            100.0,
        )));
        assert_eq!(p.leading_line_filters().len(), 1);
        let mut sp = p.for_stream(&labels(r#"{app="a"}"#));
        assert!(sp.process(Timestamp::EPOCH, b"no match", &[]).is_none());
        assert!(
            sp.process(Timestamp::EPOCH, b"level=info latency=5", &[])
                .is_none()
        );
        let e = sp
            .process(Timestamp::EPOCH, b"level=info latency=500", &[])
            .unwrap();
        assert!(!e.line_changed);
        assert_eq!(e.line, b"level=info latency=500");
        assert_eq!(
            e.labels.labels().to_string(),
            r#"{app="a", latency="500", level="info"}"#
        );
        let e = sp
            .process(Timestamp::EPOCH, b"level=x latency=ms", &[])
            .unwrap();
        assert_eq!(e.labels.error(), Some("LabelFilterErr"));
    }

    #[test]
    fn untouched_entries_share_results_and_lines_are_not_copied() {
        let p = Pipeline::default();
        let mut sp = p.for_stream(&labels(r#"{app="a"}"#));
        let line = b"hello".to_vec();
        let e = sp.process(Timestamp::EPOCH, &line, &[]).unwrap();
        assert_eq!(e.line.as_ptr(), line.as_ptr());
        assert!(Arc::ptr_eq(&e.labels, sp.base_result()));
    }

    #[test]
    fn metadata_and_rewrites() {
        let mut p = Pipeline::default();
        p.push(Decolorizer::new());
        p.push(JsonParser::new());
        p.push(DropLabels::new(vec![
            LabelSelector::Name("__error__".into()),
            LabelSelector::Name("__error_details__".into()),
        ]));
        p.push(LabelFilterStage::new(
            LabelFilter::string("pod", MatchOp::Eq, "p1").unwrap(),
        ));
        let mut sp = p.for_stream(&labels(r#"{app="a"}"#));
        let meta = [MetadataPair::new("pod", "p1")];
        let e = sp
            .process(Timestamp::EPOCH, b"\x1b[31m{\"msg\":\"hi\"}\x1b[0m", &meta)
            .unwrap();
        assert!(e.line_changed);
        assert_eq!(e.line, br#"{"msg":"hi"}"#);
        assert_eq!(
            e.labels.labels().to_string(),
            r#"{app="a", msg="hi", pod="p1"}"#
        );
        assert_eq!(e.labels.structured_metadata().to_string(), r#"{pod="p1"}"#);
        assert_eq!(e.labels.parsed().to_string(), r#"{msg="hi"}"#);
        // Not JSON: the error is dropped, the entry kept.
        let e = sp.process(Timestamp::EPOCH, b"plain", &meta).unwrap();
        assert_eq!(e.labels.labels().to_string(), r#"{app="a", pod="p1"}"#);
        assert!(sp.process(Timestamp::EPOCH, b"plain", &[]).is_none());
    }

    #[test]
    fn parser_hints_change_what_parsers_do() {
        use crate::logql::log::ParserHints;
        let strs = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let mut p = Pipeline::default();
        p.push(JsonParser::new());
        p.push(LogfmtParser::new(true, false));
        // sum(count_over_time(… | json | logfmt --strict [5m])): no labels
        // needed, parsers do not run, no error.
        let idle = p
            .clone()
            .with_hints(ParserHints::new(&[], &[], false, true, None));
        let mut sp = idle.for_stream(&labels(r#"{app="a"}"#));
        let e = sp.process(Timestamp::EPOCH, b"not json", &[]).unwrap();
        assert!(Arc::ptr_eq(&e.labels, sp.base_result()));
        // sum by (level) (…): only level, and the strict logfmt parser is
        // skipped once level is found.
        let by_level =
            p.clone()
                .with_hints(ParserHints::new(&[], &strs(&["level"]), false, false, None));
        let mut sp = by_level.for_stream(&labels(r#"{app="a"}"#));
        let e = sp
            .process(Timestamp::EPOCH, br#"{"level":"info","msg":"x"}"#, &[])
            .unwrap();
        assert_eq!(e.labels.labels().to_string(), r#"{app="a", level="info"}"#);
        // Without the hint the strict logfmt parser would fail on that line.
        let e = sp
            .process(Timestamp::EPOCH, b"b=\"x level=warn", &[])
            .unwrap();
        assert_eq!(
            e.labels.error(),
            Some("LogfmtParserErr"),
            "level not found by json"
        );
        // sum(count_over_time(… | json | __error__="JSONParserErr" [1h])).
        let preserve = p.with_hints(ParserHints::new(
            &strs(&["__error__"]),
            &[],
            false,
            true,
            None,
        ));
        let mut sp = preserve.for_stream(&labels(r#"{app="a"}"#));
        let e = sp.process(Timestamp::EPOCH, b"{oops", &[]).unwrap();
        assert_eq!(e.labels.parsed().get("__preserve_error__"), Some("true"));
    }

    #[test]
    fn a_tail_can_extract_samples() {
        use crate::logql::log::convert::parse_go_float;
        let mut p = Pipeline::default();
        p.push(LogfmtParser::new(false, false));
        let mut sp = p.for_stream(&labels(r#"{app="a"}"#));
        let unwrap = |lbs: &mut LabelsBuilder, _: &[u8]| {
            let v = lbs.get("bytes")?;
            let parsed = parse_go_float(v);
            lbs.delete("bytes");
            match parsed {
                Ok(v) => Some(v),
                Err(e) => {
                    lbs.set_error("SampleExtractionErr");
                    lbs.set_error_details(&e.to_string());
                    Some(0.0)
                }
            }
        };
        let (e, v) = sp
            .process_with(Timestamp::EPOCH, b"bytes=42 x=1", [], unwrap)
            .unwrap();
        assert_eq!(v, 42.0);
        assert_eq!(e.labels.labels().to_string(), r#"{app="a", x="1"}"#);
        assert!(
            sp.process_with(Timestamp::EPOCH, b"x=1", [], unwrap)
                .is_none()
        );
        let (e, _) = sp
            .process_with(Timestamp::EPOCH, b"bytes=lots", [], unwrap)
            .unwrap();
        assert_eq!(e.labels.error(), Some("SampleExtractionErr"));
    }
}
