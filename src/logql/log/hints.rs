//! Parser hints for metric queries (`pkg/logql/log/parser_hints.go`).
//!
//! Owns: what a metric query tells its parsers — which labels it needs (so
//! parsers extract only those and stop once all are found), whether it
//! needs no labels at all (parsers then do not run, so they report no
//! errors), and whether `__error__` is referenced (errors are then kept, and
//! parsers mark them with `__preserve_error__="true"`). These change what
//! users see: `sum(count_over_time({…} | json [5m]))` succeeds on lines
//! that are not JSON, `sum by (level) (…)` does not.
//!
//! Does not own: deciding the inputs (the evaluator derives them from the
//! query, as Loki's `newParserHint` callers do).
//!
//! Invariants: [`ParserHints::none`] (log queries) never restricts anything.

use super::ERROR_LABEL;
use super::labels::DUPLICATE_SUFFIX;

/// Hints given to the parsers of one query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParserHints {
    no_labels: bool,
    required: Vec<String>,
    preserve_error: bool,
}

impl ParserHints {
    /// No hints: extract everything (log queries).
    pub fn none() -> Self {
        ParserHints::default()
    }

    /// Loki's `NewParserHint`.
    ///
    /// - `required_label_names`: labels the pipeline after the parsers reads
    ///   (label filters, `unwrap`, …);
    /// - `groups`, `without`: the grouping of the enclosing aggregation;
    /// - `no_labels`: the query needs no labels in its output (e.g. `sum`
    ///   without grouping);
    /// - `metric_label_name`: the `unwrap` label, if any.
    pub fn new(
        required_label_names: &[String],
        groups: &[String],
        without: bool,
        no_labels: bool,
        metric_label_name: Option<&str>,
    ) -> Self {
        let mut hints: Vec<String> = Vec::new();
        let mut push = |l: &str| {
            for v in [Some(l), l.strip_suffix(DUPLICATE_SUFFIX)]
                .into_iter()
                .flatten()
            {
                if !v.is_empty() && !hints.iter().any(|h| h == v) {
                    hints.push(v.to_string());
                }
            }
        };
        required_label_names.iter().for_each(|l| push(l));
        groups.iter().for_each(|l| push(l));
        if let Some(m) = metric_label_name {
            push(m);
        }
        let preserve_error = hints.iter().any(|h| h == ERROR_LABEL);
        if no_labels {
            if hints.is_empty() {
                return ParserHints {
                    no_labels: true,
                    ..ParserHints::default()
                };
            }
            return ParserHints {
                no_labels: false,
                required: hints,
                preserve_error,
            };
        }
        if without || groups.is_empty() {
            return ParserHints::none();
        }
        ParserHints {
            no_labels: false,
            required: hints,
            preserve_error,
        }
    }

    /// Whether parsers should extract a label named `key`.
    pub fn should_extract(&self, key: &str) -> bool {
        self.required.is_empty() || self.required.iter().any(|r| r == key)
    }

    /// Whether any required label starts with `prefix` (JSON descends into
    /// an object only then).
    pub fn should_extract_prefix(&self, prefix: &str) -> bool {
        self.required.is_empty() || self.required.iter().any(|r| r.starts_with(prefix))
    }

    /// Whether parsers need not run: the query needs no labels, or every
    /// required label is already extracted (`was_extracted`).
    pub fn no_labels(&self, was_extracted: impl Fn(&str) -> bool) -> bool {
        self.no_labels || self.all_required_extracted(was_extracted)
    }

    /// Whether every required label has been extracted.
    pub fn all_required_extracted(&self, was_extracted: impl Fn(&str) -> bool) -> bool {
        !self.required.is_empty() && self.required.iter().all(|r| was_extracted(r))
    }

    /// Whether parser errors are kept and marked `__preserve_error__`.
    pub fn preserve_error(&self) -> bool {
        self.preserve_error
    }

    /// Whether only some labels are wanted.
    pub fn has_required(&self) -> bool {
        !self.required.is_empty()
    }

    /// Whether these hints restrict nothing.
    pub fn is_none(&self) -> bool {
        !self.no_labels && self.required.is_empty() && !self.preserve_error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn loki_new_parser_hint_rules() {
        // sum(count_over_time(… | json [5m])): nothing needed.
        let h = ParserHints::new(&[], &[], false, true, None);
        assert!(h.no_labels(|_| false));
        // sum by (level) (…): only level.
        let h = ParserHints::new(&[], &s(&["level"]), false, false, None);
        assert!(h.should_extract("level") && !h.should_extract("msg"));
        assert!(h.should_extract_prefix("lev") && !h.should_extract_prefix("req"));
        assert!(!h.preserve_error());
        assert!(h.all_required_extracted(|n| n == "level"));
        // sum(count_over_time(… | json | __error__="x" [1h])).
        let h = ParserHints::new(&s(&["__error__"]), &[], false, true, None);
        assert!(h.preserve_error());
        assert!(!h.no_labels(|_| false));
        // without, or no grouping: no hints.
        assert!(ParserHints::new(&s(&["a"]), &s(&["b"]), true, false, None).is_none());
        assert!(ParserHints::new(&s(&["a"]), &[], false, false, None).is_none());
        // The _extracted suffix is also hinted without it.
        let h = ParserHints::new(&[], &s(&["level_extracted"]), false, false, None);
        assert!(h.should_extract("level") && h.should_extract("level_extracted"));
        let h = ParserHints::new(&[], &s(&["a"]), false, false, Some("latency"));
        assert!(h.should_extract("latency"));
    }
}
