//! `| drop …` and `| keep …` (`pkg/logql/log/drop_labels.go`, `keep_labels.go`).
//!
//! Owns: removing labels by name or by matcher from every category.
//! `drop __error__` clears the error (and `drop __error_details__` the
//! details) instead of deleting a label; `keep` never removes the error
//! labels or `__preserve_error__`.
//!
//! Does not own: merging streams whose labels became equal (the evaluator
//! groups by the result hash).
//!
//! Invariants: matchers are Prometheus matchers (anchored regexes, an
//! absent label matching as `""`).

use crate::model::{Matcher, Timestamp};

use super::{
    ERROR_DETAILS_LABEL, ERROR_LABEL, LabelsBuilder, LineBuf, PRESERVE_ERROR_LABEL, Stage,
};

/// One item of a `drop`/`keep` list: a bare name or a matcher.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelSelector {
    Name(String),
    Matcher(Matcher),
}

impl LabelSelector {
    fn name(&self) -> &str {
        match self {
            LabelSelector::Name(n) => n,
            LabelSelector::Matcher(m) => &m.name,
        }
    }
}

/// `| drop a, b="x", c=~"y.*"`.
#[derive(Clone, Debug)]
pub struct DropLabels {
    selectors: Vec<LabelSelector>,
}

impl DropLabels {
    pub fn new(selectors: Vec<LabelSelector>) -> Self {
        DropLabels { selectors }
    }
}

impl Stage for DropLabels {
    fn process(
        &mut self,
        _ts: Timestamp,
        _line: &mut LineBuf<'_>,
        lbs: &mut LabelsBuilder,
    ) -> bool {
        for sel in &self.selectors {
            let name = sel.name();
            let matches = |value: &str| match sel {
                LabelSelector::Name(_) => true,
                LabelSelector::Matcher(m) => m.matches(value),
            };
            match name {
                ERROR_LABEL => {
                    if matches(lbs.error().unwrap_or("")) {
                        lbs.reset_error();
                    }
                }
                ERROR_DETAILS_LABEL => {
                    if matches(lbs.error_details().unwrap_or("")) {
                        lbs.reset_error_details();
                    }
                }
                _ => {
                    let drop = match (sel, lbs.get(name)) {
                        (LabelSelector::Name(_), found) => found.is_some(),
                        (LabelSelector::Matcher(m), found) => m.matches(found.unwrap_or("")),
                    };
                    if drop {
                        lbs.delete(name);
                    }
                }
            }
        }
        true
    }
}

/// `| keep a, b="x"`.
#[derive(Clone, Debug)]
pub struct KeepLabels {
    selectors: Vec<LabelSelector>,
    /// Names to delete, as spans of `names`.
    doomed: Vec<(usize, usize)>,
    names: String,
}

impl KeepLabels {
    pub fn new(selectors: Vec<LabelSelector>) -> Self {
        KeepLabels {
            selectors,
            doomed: Vec::new(),
            names: String::new(),
        }
    }
}

impl Stage for KeepLabels {
    fn process(
        &mut self,
        _ts: Timestamp,
        _line: &mut LineBuf<'_>,
        lbs: &mut LabelsBuilder,
    ) -> bool {
        if self.selectors.is_empty() {
            return true;
        }
        let KeepLabels {
            selectors,
            doomed,
            names,
        } = self;
        doomed.clear();
        names.clear();
        lbs.for_each_label(|name, value, _| {
            if name == PRESERVE_ERROR_LABEL {
                return;
            }
            let keep = selectors.iter().any(|sel| match sel {
                LabelSelector::Name(n) => n == name,
                LabelSelector::Matcher(m) => m.name == name && m.matches(value),
            });
            if !keep {
                let start = names.len();
                names.push_str(name);
                doomed.push((start, names.len()));
            }
        });
        for &(s, e) in doomed.iter() {
            lbs.delete(&names[s..e]);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::log::LineScratch;
    use crate::model::{Labels, MatchOp, MetadataPair};

    fn run(stage: &mut dyn Stage, b: &mut LabelsBuilder) -> String {
        let mut scratch = LineScratch::default();
        let mut lb = LineBuf::new(b"line", &mut scratch);
        assert!(stage.process(Timestamp::EPOCH, &mut lb, b));
        b.labels_result().labels().to_string()
    }

    fn builder() -> LabelsBuilder {
        let mut b = LabelsBuilder::new(
            &Labels::parse(r#"{app="foo", namespace="prod", level="warn"}"#).unwrap(),
        );
        b.reset();
        b.add_structured_metadata(&[MetadataPair::new("pod", "p1")]);
        b.set_parsed("method", "GET");
        b.set_parsed("status", "200");
        b
    }

    fn m(name: &str, op: MatchOp, v: &str) -> LabelSelector {
        LabelSelector::Matcher(Matcher::new(name, op, v).unwrap())
    }

    #[test]
    fn drop_by_name_and_matcher() {
        let mut b = builder();
        let mut d = DropLabels::new(vec![
            LabelSelector::Name("namespace".into()),
            LabelSelector::Name("pod".into()),
            m("method", MatchOp::Eq, "GET"),
            m("status", MatchOp::Re, "2.."),
            m("level", MatchOp::Re, "warn|error"),
            m("app", MatchOp::Eq, "nope"),
        ]);
        assert_eq!(run(&mut d, &mut b), r#"{app="foo"}"#);
    }

    #[test]
    fn drop_error_clears_the_error() {
        let mut b = builder();
        b.set_error("JSONParserErr");
        b.set_error_details("bad");
        let mut d = DropLabels::new(vec![
            LabelSelector::Name(ERROR_LABEL.into()),
            LabelSelector::Name(ERROR_DETAILS_LABEL.into()),
        ]);
        let out = run(&mut d, &mut b);
        assert!(!out.contains("__error"), "{out}");
        let mut b = builder();
        b.set_error("JSONParserErr");
        let mut d = DropLabels::new(vec![m(ERROR_LABEL, MatchOp::Eq, "LabelFilterErr")]);
        assert!(
            run(&mut d, &mut b).contains("__error__"),
            "matcher did not match"
        );
    }

    #[test]
    fn keep_keeps_errors() {
        let mut b = builder();
        b.set_error("JSONParserErr");
        let mut k = KeepLabels::new(vec![
            LabelSelector::Name("method".into()),
            m("level", MatchOp::Re, "warn|error"),
            m("app", MatchOp::Eq, "other"),
        ]);
        assert_eq!(
            run(&mut k, &mut b),
            r#"{__error__="JSONParserErr", level="warn", method="GET"}"#
        );
        let mut b = builder();
        assert_eq!(
            run(&mut KeepLabels::new(vec![]), &mut b),
            r#"{app="foo", level="warn", method="GET", namespace="prod", pod="p1", status="200"}"#
        );
    }
}
