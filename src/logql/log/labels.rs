//! Per-entry label state: Loki's `LabelsBuilder` and `LabelsResult`.
//!
//! Owns: the three label categories of an entry — stream labels (fixed per
//! stream), structured metadata (per entry) and parsed labels (set by
//! stages) — with Loki's precedence (parsed > structured metadata > stream),
//! deletions, the `__error__`/`__error_details__` state, the `_extracted`
//! collision rule and the "first extraction wins" rule for parsers, and the
//! final label set of an entry: sorted, categorised, hashed and cached by
//! hash so entries that end with the same labels share one result.
//!
//! Does not own: which stage sets what (the stages decide), grouping for
//! metric queries (the evaluator groups by [`LabelsResult::hash`]).
//!
//! Invariants:
//! - a name is present in at most one added category (setting a parsed label
//!   removes the same name from structured metadata and stream overrides);
//! - names and values of added labels live in one arena string that is
//!   truncated, not freed, by [`LabelsBuilder::reset`], so steady-state
//!   processing does not allocate;
//! - an entry whose labels were not touched gets the stream's base result
//!   (a reference-count increment, nothing else).

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::model::{Label, Labels, MetadataPair, Timestamp};

use super::hints::ParserHints;
use super::{ERROR_DETAILS_LABEL, ERROR_LABEL, PRESERVE_ERROR_LABEL, TemplateContext};

/// Loki's suffix for an extracted label whose name is taken.
pub(crate) const DUPLICATE_SUFFIX: &str = "_extracted";

/// Results kept per stream before new label sets stop being cached.
const MAX_CACHED_RESULTS: usize = 4096;

/// Where a label of an entry comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LabelCategory {
    Stream,
    StructuredMetadata,
    Parsed,
}

/// The final label set of an entry, with its parts by category.
///
/// `labels` is the merged, sorted set (stream, structured metadata and
/// parsed labels, plus `__error__`/`__error_details__` when set); the three
/// categories partition it, the error labels counting as parsed. Values may
/// be empty: parsers create empty labels and Loki returns them.
#[derive(Debug)]
pub struct LabelsResult {
    labels: Labels,
    stream: Labels,
    structured_metadata: Labels,
    parsed: Labels,
    hash: u64,
    canonical: OnceLock<String>,
}

impl LabelsResult {
    fn new(stream: Vec<Label>, structured_metadata: Vec<Label>, parsed: Vec<Label>) -> Self {
        let mut all: Vec<Label> = stream
            .iter()
            .chain(&structured_metadata)
            .chain(&parsed)
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let hash = hash_pairs(all.iter().map(|l| (l.name.as_str(), l.value.as_str())));
        LabelsResult {
            labels: Labels::from_sorted_unchecked(all),
            stream: Labels::from_sorted_unchecked(stream),
            structured_metadata: Labels::from_sorted_unchecked(structured_metadata),
            parsed: Labels::from_sorted_unchecked(parsed),
            hash,
            canonical: OnceLock::new(),
        }
    }

    /// All labels of the entry, sorted by name.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The stream labels that survived the pipeline.
    pub fn stream(&self) -> &Labels {
        &self.stream
    }

    /// The structured metadata of the entry.
    pub fn structured_metadata(&self) -> &Labels {
        &self.structured_metadata
    }

    /// Labels set by stages, and the error labels.
    pub fn parsed(&self) -> &Labels {
        &self.parsed
    }

    /// A hash of [`LabelsResult::labels`] (xxh3 over `name 0xff value 0xff`
    /// pairs). Equal label sets have equal hashes across streams; compare
    /// the labels when two hashes are equal.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// `{a="b", c="d"}`, computed once.
    pub fn canonical(&self) -> &str {
        self.canonical.get_or_init(|| self.labels.to_string())
    }

    /// The `__error__` value, if the entry carries one.
    pub fn error(&self) -> Option<&str> {
        self.parsed.get(ERROR_LABEL)
    }
}

fn hash_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (n, v) in pairs {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Copy, Clone, Debug)]
struct Added {
    category: LabelCategory,
    name: Span,
    value: Span,
}

/// A label of the merged view, by reference.
#[derive(Copy, Clone, Debug)]
enum Ref {
    Base(usize),
    Added(usize),
    Err,
    ErrDetails,
}

#[derive(Debug)]
struct StreamBase {
    labels: Labels,
    result: Arc<LabelsResult>,
}

/// The label state of the entry being processed, for one stream.
#[derive(Debug, Clone)]
pub struct LabelsBuilder {
    base: Arc<StreamBase>,
    arena: String,
    added: Vec<Added>,
    deleted: Vec<Span>,
    extracted: Vec<Span>,
    err: String,
    err_details: String,
    name_scratch: String,
    order: Vec<Ref>,
    hash_buf: Vec<u8>,
    cache: HashMap<u64, Arc<LabelsResult>>,
    hints: Arc<ParserHints>,
}

impl LabelsBuilder {
    /// A builder for the entries of the stream with `labels`.
    pub fn new(labels: &Labels) -> Self {
        let result = Arc::new(LabelsResult::new(
            labels.as_slice().to_vec(),
            Vec::new(),
            Vec::new(),
        ));
        LabelsBuilder {
            base: Arc::new(StreamBase {
                labels: labels.clone(),
                result,
            }),
            arena: String::new(),
            added: Vec::new(),
            deleted: Vec::new(),
            extracted: Vec::new(),
            err: String::new(),
            err_details: String::new(),
            name_scratch: String::new(),
            order: Vec::new(),
            hash_buf: Vec::new(),
            cache: HashMap::new(),
            hints: Arc::new(ParserHints::none()),
        }
    }

    /// Sets the parser hints of the query (metric queries only).
    pub fn set_hints(&mut self, hints: Arc<ParserHints>) {
        self.hints = hints;
    }

    /// The parser hints of the query.
    pub fn hints(&self) -> &ParserHints {
        &self.hints
    }

    /// Whether parsers should skip this entry entirely: the query needs no
    /// labels, or every label it needs is already extracted.
    pub fn parsers_idle(&self) -> bool {
        self.hints.no_labels(|n| self.was_extracted(n))
    }

    /// Whether the query wants a label named `name` extracted.
    pub fn should_extract(&self, name: &str) -> bool {
        self.hints.should_extract(name)
    }

    /// Whether every label the query needs has been extracted.
    pub fn all_required_extracted(&self) -> bool {
        self.hints.all_required_extracted(|n| self.was_extracted(n))
    }

    /// Clears the per-entry state. Keeps every buffer's capacity.
    pub fn reset(&mut self) {
        self.arena.clear();
        self.added.clear();
        self.deleted.clear();
        self.extracted.clear();
        self.err.clear();
        self.err_details.clear();
    }

    /// The stream's labels, as given at construction.
    pub fn stream_labels(&self) -> &Labels {
        &self.base.labels
    }

    /// The result of an entry whose labels are untouched.
    pub fn base_result(&self) -> &Arc<LabelsResult> {
        &self.base.result
    }

    fn span(&self, s: Span) -> &str {
        &self.arena[s.start as usize..s.end as usize]
    }

    fn push_arena(&mut self, s: &str) -> Span {
        let start = self.arena.len() as u32;
        self.arena.push_str(s);
        Span {
            start,
            end: self.arena.len() as u32,
        }
    }

    fn find_added(&self, category: LabelCategory, name: &str) -> Option<usize> {
        self.added
            .iter()
            .position(|a| a.category == category && self.span(a.name) == name)
    }

    fn remove_added(&mut self, category: LabelCategory, name: &str) {
        let arena = &self.arena;
        self.added.retain(|a| {
            a.category != category || &arena[a.name.start as usize..a.name.end as usize] != name
        });
    }

    fn is_deleted(&self, name: &str) -> bool {
        self.deleted.iter().any(|d| self.span(*d) == name)
    }

    /// Loki's `BaseHas`: whether the stream (as given, ignoring deletions)
    /// has a label `name`.
    pub fn stream_has(&self, name: &str) -> bool {
        self.base.labels.contains(name)
    }

    /// Whether the entry currently has structured metadata `name`.
    pub fn metadata_has(&self, name: &str) -> bool {
        self.find_added(LabelCategory::StructuredMetadata, name)
            .is_some()
    }

    /// Whether an extracted label named `name` would collide and take the
    /// `_extracted` suffix: the name is a stream label (even one dropped
    /// earlier) or current structured metadata.
    pub fn collides(&self, name: &str) -> bool {
        self.stream_has(name) || self.metadata_has(name)
    }

    /// Whether a parsed label `name` was set earlier in this entry (by any
    /// stage, even if deleted since). Parsers skip such names: the first
    /// extraction wins.
    pub fn was_extracted(&self, name: &str) -> bool {
        self.extracted.iter().any(|s| self.span(*s) == name)
    }

    /// The value of `name` (parsed over structured metadata over stream).
    /// The error labels are not visible here (see [`LabelsBuilder::error`]).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_with_category(name).map(|(v, _)| v)
    }

    /// The value of `name` and where it comes from.
    pub fn get_with_category(&self, name: &str) -> Option<(&str, LabelCategory)> {
        if let Some(a) = self.added.iter().find(|a| self.span(a.name) == name) {
            return Some((self.span(a.value), a.category));
        }
        if self.is_deleted(name) {
            return None;
        }
        self.base
            .labels
            .get(name)
            .map(|v| (v, LabelCategory::Stream))
    }

    /// Loki's `Set`: sets `name` in `category`, honouring precedence. A
    /// parsed label replaces structured metadata and stream overrides of the
    /// same name; structured metadata is ignored when a parsed label exists;
    /// a stream override is ignored when either exists. This is also the
    /// `label_format` overwrite.
    pub fn set(&mut self, category: LabelCategory, name: &str, value: &str) {
        match category {
            LabelCategory::Parsed => {
                self.remove_added(LabelCategory::StructuredMetadata, name);
                self.remove_added(LabelCategory::Stream, name);
            }
            LabelCategory::StructuredMetadata => {
                self.remove_added(LabelCategory::Stream, name);
                if self.find_added(LabelCategory::Parsed, name).is_some() {
                    return;
                }
            }
            LabelCategory::Stream => {
                if self
                    .find_added(LabelCategory::StructuredMetadata, name)
                    .is_some()
                    || self.find_added(LabelCategory::Parsed, name).is_some()
                {
                    return;
                }
            }
        }
        if let Some(i) = self.find_added(category, name) {
            let value = self.push_arena(value);
            self.added[i].value = value;
            return;
        }
        let name = self.push_arena(name);
        let value = self.push_arena(value);
        self.added.push(Added {
            category,
            name,
            value,
        });
        if category == LabelCategory::Parsed {
            self.extracted.push(name);
        }
    }

    /// [`LabelsBuilder::set`] in the parsed category.
    pub fn set_parsed(&mut self, name: &str, value: &str) {
        self.set(LabelCategory::Parsed, name, value);
    }

    /// The parser rule for a label extracted from the line: `name` takes the
    /// `_extracted` suffix when it [collides](LabelsBuilder::collides), and
    /// is ignored when that final name was already extracted in this entry
    /// or the query's hints do not want it. Returns whether it was set.
    pub fn add_extracted(&mut self, name: &str, value: &str) -> bool {
        let mut final_name = std::mem::take(&mut self.name_scratch);
        final_name.clear();
        final_name.push_str(name);
        if self.collides(name) {
            final_name.push_str(DUPLICATE_SUFFIX);
        }
        let set = !self.was_extracted(&final_name) && self.should_extract(&final_name);
        if set {
            self.set_parsed(&final_name, value);
        }
        self.name_scratch = final_name;
        set
    }

    /// Loki's `Add`: a name taken by a stream label gets the `_extracted`
    /// suffix; `__error__` and `__error_details__` set the error state.
    pub fn add(&mut self, category: LabelCategory, name: &str, value: &str) {
        let mut final_name = std::mem::take(&mut self.name_scratch);
        final_name.clear();
        final_name.push_str(name);
        if self.stream_has(name) {
            final_name.push_str(DUPLICATE_SUFFIX);
        }
        match final_name.as_str() {
            ERROR_LABEL => self.set_error(value),
            ERROR_DETAILS_LABEL => self.set_error_details(value),
            n => self.set(category, n, value),
        }
        self.name_scratch = final_name;
    }

    /// Adds the entry's structured metadata (call right after `reset`).
    pub fn add_structured_metadata(&mut self, pairs: &[MetadataPair]) {
        self.add_structured_metadata_pairs(pairs.iter().map(|p| (p.name_str(), p.value_str())));
    }

    /// Adds structured metadata given as name/value pairs (as decoded
    /// blocks yield them), without building `MetadataPair`s.
    pub fn add_structured_metadata_pairs<'m>(
        &mut self,
        pairs: impl Iterator<Item = (&'m str, &'m str)>,
    ) {
        for (name, value) in pairs {
            if self.stream_has(name) || name == ERROR_LABEL || name == ERROR_DETAILS_LABEL {
                self.add(LabelCategory::StructuredMetadata, name, value);
            } else {
                self.set(LabelCategory::StructuredMetadata, name, value);
            }
        }
    }

    /// Deletes `name` from every category (a stream label is hidden).
    pub fn delete(&mut self, name: &str) {
        let arena = &self.arena;
        self.added
            .retain(|a| &arena[a.name.start as usize..a.name.end as usize] != name);
        let span = self.push_arena(name);
        self.deleted.push(span);
    }

    /// Calls `f` for every label of the entry (no error labels), unsorted.
    pub fn for_each_label(&self, mut f: impl FnMut(&str, &str, LabelCategory)) {
        self.visit(false, |r| {
            let (n, v, c) = self.resolve(r);
            f(n, v, c);
        });
    }

    /// Sets `__error__`.
    pub fn set_error(&mut self, err: &str) {
        self.err.clear();
        self.err.push_str(err);
    }

    /// Sets `__error_details__`.
    pub fn set_error_details(&mut self, details: &str) {
        self.err_details.clear();
        self.err_details.push_str(details);
    }

    /// Sets `__error_details__` from a formatted value without allocating.
    pub fn set_error_details_fmt(&mut self, details: fmt::Arguments<'_>) {
        self.err_details.clear();
        // Writing into a String cannot fail.
        let _ = fmt::write(&mut self.err_details, details);
    }

    /// Loki's `addErrLabel`: sets `__error__` and, when given, the details;
    /// marks the error `__preserve_error__` when the query's hints ask.
    pub fn add_error(&mut self, err: &str, details: Option<&dyn fmt::Display>) {
        self.set_error(err);
        if let Some(d) = details {
            self.set_error_details_fmt(format_args!("{d}"));
        }
        if self.hints.preserve_error() {
            self.set_parsed(PRESERVE_ERROR_LABEL, "true");
        }
    }

    /// The `__error__` value, if set.
    pub fn error(&self) -> Option<&str> {
        (!self.err.is_empty()).then_some(self.err.as_str())
    }

    /// The `__error_details__` value, if set.
    pub fn error_details(&self) -> Option<&str> {
        (!self.err_details.is_empty()).then_some(self.err_details.as_str())
    }

    /// Whether `__error__` is set.
    pub fn has_error(&self) -> bool {
        !self.err.is_empty()
    }

    /// Clears `__error__` (not the details).
    pub fn reset_error(&mut self) {
        self.err.clear();
    }

    /// Clears `__error_details__`.
    pub fn reset_error_details(&mut self) {
        self.err_details.clear();
    }

    fn resolve(&self, r: Ref) -> (&str, &str, LabelCategory) {
        match r {
            Ref::Base(i) => {
                let l = &self.base.labels.as_slice()[i];
                (l.name.as_str(), l.value.as_str(), LabelCategory::Stream)
            }
            Ref::Added(i) => {
                let a = self.added[i];
                (self.span(a.name), self.span(a.value), a.category)
            }
            Ref::Err => (ERROR_LABEL, self.err.as_str(), LabelCategory::Parsed),
            Ref::ErrDetails => (
                ERROR_DETAILS_LABEL,
                self.err_details.as_str(),
                LabelCategory::Parsed,
            ),
        }
    }

    /// Loki's `UnsortedLabels` over all categories.
    fn collect_order(&self, order: &mut Vec<Ref>, with_errors: bool) {
        order.clear();
        self.visit(with_errors, |r| order.push(r));
    }

    fn visit(&self, with_errors: bool, mut f: impl FnMut(Ref)) {
        let has = |cat: LabelCategory, name: &str| self.find_added(cat, name).is_some();
        let untouched = self.added.is_empty() && self.deleted.is_empty();
        for (i, l) in self.base.labels.iter().enumerate() {
            if untouched {
                f(Ref::Base(i));
                continue;
            }
            if self.is_deleted(&l.name)
                || has(LabelCategory::StructuredMetadata, &l.name)
                || has(LabelCategory::Parsed, &l.name)
            {
                continue;
            }
            match self.find_added(LabelCategory::Stream, &l.name) {
                Some(j) => f(Ref::Added(j)),
                None => f(Ref::Base(i)),
            }
        }
        for (i, a) in self.added.iter().enumerate() {
            if a.category == LabelCategory::StructuredMetadata
                && !has(LabelCategory::Parsed, self.span(a.name))
            {
                f(Ref::Added(i));
            }
        }
        for (i, a) in self.added.iter().enumerate() {
            if a.category != LabelCategory::Parsed {
                continue;
            }
            // A parsed label literally named like a set error label would
            // repeat the name; the error state wins.
            let name = self.span(a.name);
            if with_errors
                && ((name == ERROR_LABEL && !self.err.is_empty())
                    || (name == ERROR_DETAILS_LABEL && !self.err_details.is_empty()))
            {
                continue;
            }
            f(Ref::Added(i));
        }
        if with_errors {
            if !self.err.is_empty() {
                f(Ref::Err);
            }
            if !self.err_details.is_empty() {
                f(Ref::ErrDetails);
            }
        }
    }

    /// The entry's final labels. Untouched entries get the stream's base
    /// result; others are looked up by hash in the stream's cache and built
    /// only the first time a label set is seen.
    pub fn labels_result(&mut self) -> Arc<LabelsResult> {
        // Loki's unchanged path also ignores details without an error.
        if self.added.is_empty() && self.deleted.is_empty() && self.err.is_empty() {
            return Arc::clone(&self.base.result);
        }
        let mut order = std::mem::take(&mut self.order);
        self.collect_order(&mut order, true);
        // Unstable: no allocation, and names are unique (see `visit`).
        order.sort_unstable_by(|a, b| self.resolve(*a).0.cmp(self.resolve(*b).0));
        debug_assert!(
            order
                .windows(2)
                .all(|w| self.resolve(w[0]).0 != self.resolve(w[1]).0)
        );

        let mut hash_buf = std::mem::take(&mut self.hash_buf);
        hash_buf.clear();
        for r in &order {
            let (n, v, _) = self.resolve(*r);
            hash_buf.extend_from_slice(n.as_bytes());
            hash_buf.push(0xff);
            hash_buf.extend_from_slice(v.as_bytes());
            hash_buf.push(0xff);
        }
        let hash = xxhash_rust::xxh3::xxh3_64(&hash_buf);
        self.hash_buf = hash_buf;
        let result = match self.cache.get(&hash) {
            Some(cached) if self.same_as(cached, &order) => Arc::clone(cached),
            cached => {
                let fresh = Arc::new(self.build_result(&order));
                if cached.is_none() && self.cache.len() < MAX_CACHED_RESULTS {
                    self.cache.insert(hash, Arc::clone(&fresh));
                }
                fresh
            }
        };
        self.order = order;
        result
    }

    fn same_as(&self, cached: &LabelsResult, order: &[Ref]) -> bool {
        if cached.labels.len() != order.len() {
            return false;
        }
        let mut cursors = [
            cached.stream.iter(),
            cached.structured_metadata.iter(),
            cached.parsed.iter(),
        ];
        order.iter().all(|r| {
            let (n, v, c) = self.resolve(*r);
            let idx = match c {
                LabelCategory::Stream => 0,
                LabelCategory::StructuredMetadata => 1,
                LabelCategory::Parsed => 2,
            };
            cursors[idx]
                .next()
                .is_some_and(|l| l.name == n && l.value == v)
        })
    }

    fn build_result(&self, order: &[Ref]) -> LabelsResult {
        let mut parts: [Vec<Label>; 3] = Default::default();
        for r in order {
            let (n, v, c) = self.resolve(*r);
            let idx = match c {
                LabelCategory::Stream => 0,
                LabelCategory::StructuredMetadata => 1,
                LabelCategory::Parsed => 2,
            };
            parts[idx].push(Label::new(n, v));
        }
        let [stream, metadata, parsed] = parts;
        LabelsResult::new(stream, metadata, parsed)
    }

    /// A [`TemplateContext`] over this entry.
    pub fn template_context<'a>(&'a self, line: &'a [u8], ts: Timestamp) -> EntryContext<'a> {
        EntryContext {
            labels: self,
            line,
            ts,
            lossy: OnceCell::new(),
        }
    }
}

/// The entry a template stage renders: labels, line and timestamp.
#[derive(Debug)]
pub struct EntryContext<'a> {
    labels: &'a LabelsBuilder,
    line: &'a [u8],
    ts: Timestamp,
    lossy: OnceCell<String>,
}

impl<'a> EntryContext<'a> {
    pub fn new(labels: &'a LabelsBuilder, line: &'a [u8], ts: Timestamp) -> Self {
        labels.template_context(line, ts)
    }
}

impl TemplateContext for EntryContext<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        match name {
            ERROR_LABEL => self.labels.error(),
            ERROR_DETAILS_LABEL => self.labels.error_details(),
            _ => self.labels.get(name),
        }
    }

    fn line(&self) -> &str {
        match std::str::from_utf8(self.line) {
            Ok(s) => s,
            Err(_) => self
                .lossy
                .get_or_init(|| String::from_utf8_lossy(self.line).into_owned()),
        }
    }

    fn timestamp(&self) -> Timestamp {
        self.ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lbs(s: &str) -> Labels {
        Labels::parse(s).unwrap()
    }

    fn text(l: &Labels) -> String {
        // Labels::to_string drops nothing, but Labels::parse drops empty
        // values, so compare on the printed form.
        l.to_string()
    }

    #[test]
    fn untouched_entries_share_the_base_result() {
        let mut b = LabelsBuilder::new(&lbs(r#"{app="a", env="prod"}"#));
        b.reset();
        let r1 = b.labels_result();
        b.reset();
        let r2 = b.labels_result();
        assert!(Arc::ptr_eq(&r1, &r2));
        assert!(Arc::ptr_eq(&r1, b.base_result()));
        assert_eq!(r1.canonical(), r#"{app="a", env="prod"}"#);
    }

    #[test]
    fn precedence_parsed_over_metadata_over_stream() {
        let mut b = LabelsBuilder::new(&lbs(r#"{app="a", level="info"}"#));
        b.reset();
        b.add_structured_metadata(&[
            MetadataPair::new("pod", "p1"),
            MetadataPair::new("trace_id", "t1"),
        ]);
        assert_eq!(
            b.get_with_category("pod"),
            Some(("p1", LabelCategory::StructuredMetadata))
        );
        b.set_parsed("trace_id", "t2");
        b.set_parsed("level", "error");
        assert_eq!(b.get("trace_id"), Some("t2"));
        assert_eq!(b.get("level"), Some("error"));
        // Structured metadata cannot overwrite a parsed label.
        b.set(LabelCategory::StructuredMetadata, "trace_id", "t3");
        assert_eq!(b.get("trace_id"), Some("t2"));
        let r = b.labels_result();
        assert_eq!(
            text(r.labels()),
            r#"{app="a", level="error", pod="p1", trace_id="t2"}"#
        );
        assert_eq!(text(r.stream()), r#"{app="a"}"#);
        assert_eq!(text(r.structured_metadata()), r#"{pod="p1"}"#);
        assert_eq!(text(r.parsed()), r#"{level="error", trace_id="t2"}"#);
    }

    #[test]
    fn metadata_colliding_with_stream_is_renamed() {
        let mut b = LabelsBuilder::new(&lbs(r#"{app="a"}"#));
        b.reset();
        b.add_structured_metadata(&[MetadataPair::new("app", "meta")]);
        assert_eq!(b.get("app"), Some("a"));
        assert_eq!(b.get("app_extracted"), Some("meta"));
    }

    #[test]
    fn extraction_rules() {
        let mut b = LabelsBuilder::new(&lbs(r#"{service="s"}"#));
        b.reset();
        b.add_structured_metadata(&[MetadataPair::new("trace_id", "m")]);
        assert!(b.add_extracted("service", "x"));
        assert!(b.add_extracted("trace_id", "y"));
        assert!(b.add_extracted("msg", "first"));
        assert!(!b.add_extracted("msg", "second"), "first extraction wins");
        let r = b.labels_result();
        assert_eq!(
            text(r.labels()),
            r#"{msg="first", service="s", service_extracted="x", trace_id="m", trace_id_extracted="y"}"#
        );
        // A dropped stream label still forces the rename (BaseHas reads the
        // original labels); dropped metadata no longer collides.
        b.reset();
        b.add_structured_metadata(&[MetadataPair::new("m", "v")]);
        b.delete("service");
        b.delete("m");
        assert!(b.collides("service"));
        assert!(!b.collides("m"));
    }

    #[test]
    fn delete_and_errors() {
        let mut b = LabelsBuilder::new(&lbs(r#"{app="a", env="e"}"#));
        b.reset();
        b.delete("env");
        assert_eq!(b.get("env"), None);
        b.set_parsed("env", "again");
        assert_eq!(b.get("env"), Some("again"));
        b.add_error("JSONParserErr", Some(&"bad json"));
        let r = b.labels_result();
        assert_eq!(
            text(r.labels()),
            r#"{__error__="JSONParserErr", __error_details__="bad json", app="a", env="again"}"#
        );
        assert_eq!(r.error(), Some("JSONParserErr"));
        assert_eq!(
            text(r.parsed()),
            r#"{__error__="JSONParserErr", __error_details__="bad json", env="again"}"#
        );
        b.reset();
        b.set_error_details("only details");
        assert!(
            Arc::ptr_eq(&b.labels_result(), b.base_result()),
            "details without an error are dropped on the unchanged path"
        );
    }

    #[test]
    fn results_are_cached_by_label_set() {
        let mut b = LabelsBuilder::new(&lbs(r#"{app="a"}"#));
        b.reset();
        b.set_parsed("x", "1");
        let r1 = b.labels_result();
        b.reset();
        b.set_parsed("x", "1");
        let r2 = b.labels_result();
        assert!(Arc::ptr_eq(&r1, &r2));
        b.reset();
        b.set_parsed("x", "2");
        let r3 = b.labels_result();
        assert_ne!(r1.hash(), r3.hash());
        // Same merged labels, different category: not served from the cache.
        b.reset();
        b.add_structured_metadata(&[MetadataPair::new("x", "1")]);
        let r4 = b.labels_result();
        assert_eq!(r4.hash(), r1.hash());
        assert_eq!(text(r4.structured_metadata()), r#"{x="1"}"#);
        assert!(r4.parsed().is_empty());
    }

    #[test]
    fn an_error_named_parsed_label_yields_to_the_error() {
        let mut b = LabelsBuilder::new(&lbs(r#"{app="a"}"#));
        b.reset();
        b.set_parsed("__error__", "from the line");
        assert_eq!(
            text(b.labels_result().labels()),
            r#"{__error__="from the line", app="a"}"#
        );
        b.set_error("JSONParserErr");
        assert_eq!(
            text(b.labels_result().labels()),
            r#"{__error__="JSONParserErr", app="a"}"#
        );
    }

    #[test]
    fn empty_values_are_kept() {
        let mut b = LabelsBuilder::new(&lbs(r#"{app="a"}"#));
        b.reset();
        b.set_parsed("user", "");
        let r = b.labels_result();
        assert_eq!(text(r.labels()), r#"{app="a", user=""}"#);
    }

    #[test]
    fn template_context_sees_labels_and_errors() {
        let mut b = LabelsBuilder::new(&lbs(r#"{app="a"}"#));
        b.reset();
        b.set_parsed("x", "1");
        b.set_error("E");
        let ctx = b.template_context(b"li\xffne", Timestamp::from_nanos(7));
        assert_eq!(ctx.label("x"), Some("1"));
        assert_eq!(ctx.label("app"), Some("a"));
        assert_eq!(ctx.label("__error__"), Some("E"));
        assert_eq!(ctx.label("nope"), None);
        assert_eq!(ctx.line(), "li\u{fffd}ne");
        assert_eq!(ctx.timestamp(), Timestamp::from_nanos(7));
    }
}
