//! Builds runnable pipelines from the AST: every AST stage becomes a stage of
//! the pipeline library, and `line_format` / `label_format` run templates.
//! Also derives what Loki derives from a metric query: the parser hints and
//! how sample labels are grouped.

use std::sync::Arc;

use super::QueryError;
use crate::logql::log::{
    self, ChainValue, CompareOp, DropLabels, JsonExpressionParser, JsonParser, KeepLabels,
    LabelCategory, LabelFilter, LabelFilterStage, LabelSelector, LabelsBuilder, LineBuf,
    LineFilter, LineFilterOp, LineFilterStage, LogfmtExpressionParser, LogfmtParser, ParserHints,
    PatternParser, Pipeline, RegexpParser, Stage, UnpackParser,
};
use crate::logql::syntax::ast;
use crate::logql::template::{Template, TemplateContext};
use crate::model::Timestamp;

fn bad(e: impl std::fmt::Display) -> QueryError {
    QueryError::BadRequest(e.to_string())
}

fn line_op(op: ast::LineFilterOp) -> LineFilterOp {
    match op {
        ast::LineFilterOp::Contains => LineFilterOp::Contains,
        ast::LineFilterOp::NotContains => LineFilterOp::NotContains,
        ast::LineFilterOp::Regex => LineFilterOp::Regex,
        ast::LineFilterOp::NotRegex => LineFilterOp::NotRegex,
        ast::LineFilterOp::Pattern => LineFilterOp::Pattern,
        ast::LineFilterOp::NotPattern => LineFilterOp::NotPattern,
    }
}

fn cmp_op(op: ast::CmpOp) -> CompareOp {
    match op {
        ast::CmpOp::Eq => CompareOp::Eq,
        ast::CmpOp::Neq => CompareOp::Neq,
        ast::CmpOp::Gt => CompareOp::Gt,
        ast::CmpOp::Gte => CompareOp::Gte,
        ast::CmpOp::Lt => CompareOp::Lt,
        ast::CmpOp::Lte => CompareOp::Lte,
    }
}

/// A compiled line filter of the AST.
pub(crate) fn line_filter(f: &ast::LineFilter) -> Result<LineFilter, QueryError> {
    let values: Vec<ChainValue> = f
        .values
        .iter()
        .map(|v| {
            if v.ip {
                ChainValue::Ip(v.value.clone())
            } else {
                ChainValue::Str(v.value.clone())
            }
        })
        .collect();
    LineFilter::chain(line_op(f.op), &values).map_err(bad)
}

/// A compiled label filter expression of the AST. Iterative (post-order
/// with an explicit stack): `or` chains make trees up to
/// [`crate::logql::syntax::MAX_EXPR_DEPTH`] tall.
pub(crate) fn label_filter(f: &ast::LabelFilter) -> Result<LabelFilter, QueryError> {
    enum Step<'a> {
        Visit(&'a ast::LabelFilter),
        Join(ast::LabelFilterJoin),
    }
    let mut todo = vec![Step::Visit(f)];
    let mut built: Vec<LabelFilter> = Vec::new();
    while let Some(step) = todo.pop() {
        match step {
            Step::Visit(ast::LabelFilter::Binary(b)) => {
                todo.push(Step::Join(b.op));
                todo.push(Step::Visit(&b.right));
                todo.push(Step::Visit(&b.left));
            }
            Step::Visit(leaf) => built.push(label_filter_leaf(leaf)?),
            Step::Join(op) => {
                let (Some(r), Some(l)) = (built.pop(), built.pop()) else {
                    return Err(QueryError::Internal("unbalanced label filter".into()));
                };
                built.push(match op {
                    ast::LabelFilterJoin::And => LabelFilter::and(l, r),
                    ast::LabelFilterJoin::Or => LabelFilter::or(l, r),
                });
            }
        }
    }
    built
        .pop()
        .ok_or_else(|| QueryError::Internal("empty label filter".into()))
}

/// A label filter other than `and`/`or`.
fn label_filter_leaf(f: &ast::LabelFilter) -> Result<LabelFilter, QueryError> {
    Ok(match f {
        ast::LabelFilter::Binary(_) => label_filter(f)?,
        ast::LabelFilter::Matcher(m) => {
            LabelFilter::string(&m.matcher.name, m.matcher.op, &m.matcher.value).map_err(bad)?
        }
        ast::LabelFilter::Number(n) => LabelFilter::numeric(&n.label, cmp_op(n.op), n.value),
        ast::LabelFilter::Duration(d) => LabelFilter::duration(&d.label, cmp_op(d.op), d.value),
        ast::LabelFilter::Bytes(b) => LabelFilter::bytes(&b.label, cmp_op(b.op), b.value),
        ast::LabelFilter::Ip(i) => LabelFilter::ip(
            &i.label,
            if i.negated {
                CompareOp::Neq
            } else {
                CompareOp::Eq
            },
            &i.pattern,
        )
        .map_err(bad)?,
    })
}

fn extractions(params: &[ast::LabelExtraction]) -> Vec<log::LabelExtraction> {
    params
        .iter()
        .map(|p| log::LabelExtraction::new(p.label.clone(), p.expression.clone()))
        .collect()
}

fn selectors(sel: &ast::LabelSelection) -> Vec<LabelSelector> {
    sel.labels
        .iter()
        .map(|n| match &n.matcher {
            Some(m) => LabelSelector::Matcher(m.clone()),
            None => LabelSelector::Name(n.name.clone()),
        })
        .collect()
}

/// The pipeline of a log expression, with `hints` for metric queries.
pub(crate) fn pipeline(stages: &[ast::Stage], hints: ParserHints) -> Result<Pipeline, QueryError> {
    let mut built: Vec<Box<dyn Stage>> = Vec::with_capacity(stages.len());
    for s in stages {
        built.push(stage(s)?);
    }
    Ok(Pipeline::new(built).with_hints(hints))
}

/// Post-unwrap label filters as a pipeline (no parsers, no hints).
pub(crate) fn post_filters(filters: &[ast::LabelFilter]) -> Result<Pipeline, QueryError> {
    let mut built: Vec<Box<dyn Stage>> = Vec::with_capacity(filters.len());
    for f in filters {
        built.push(Box::new(LabelFilterStage::new(label_filter(f)?)));
    }
    Ok(Pipeline::new(built))
}

fn stage(s: &ast::Stage) -> Result<Box<dyn Stage>, QueryError> {
    Ok(match s {
        ast::Stage::LineFilter(f) => Box::new(LineFilterStage::new(line_filter(f)?)),
        ast::Stage::Json(j) if j.params.is_empty() => Box::new(JsonParser::new()),
        ast::Stage::Json(j) => {
            Box::new(JsonExpressionParser::new(&extractions(&j.params)).map_err(bad)?)
        }
        ast::Stage::Logfmt(l) if l.params.is_empty() => {
            Box::new(LogfmtParser::new(l.strict, l.keep_empty))
        }
        ast::Stage::Logfmt(l) => {
            Box::new(LogfmtExpressionParser::new(&extractions(&l.params), l.strict).map_err(bad)?)
        }
        ast::Stage::Regexp(r) => Box::new(RegexpParser::new(&r.regex).map_err(bad)?),
        ast::Stage::Pattern(p) => Box::new(PatternParser::new(&p.pattern).map_err(bad)?),
        ast::Stage::Unpack(_) => Box::new(UnpackParser::new()),
        ast::Stage::LabelFilter(f) => Box::new(LabelFilterStage::new(label_filter(&f.filter)?)),
        ast::Stage::LineFormat(f) => Box::new(LineFormat {
            template: Arc::new(
                Template::parse(&f.template)
                    .map_err(|e| bad(format!("invalid line template: {e}")))?,
            ),
        }),
        ast::Stage::LabelFormat(f) => {
            let mut formats = Vec::with_capacity(f.formats.len());
            for fmt in &f.formats {
                formats.push(match &fmt.value {
                    ast::LabelFmtValue::Rename(src) => LabelFmt::Rename {
                        dst: fmt.dst.clone(),
                        src: src.clone(),
                    },
                    ast::LabelFmtValue::Template(t) => LabelFmt::Template {
                        dst: fmt.dst.clone(),
                        template: Arc::new(
                            Template::parse_named("label", t)
                                .map_err(|e| bad(format!("invalid label template: {e}")))?,
                        ),
                    },
                });
            }
            Box::new(LabelFormat {
                formats: Arc::new(formats),
            })
        }
        ast::Stage::Drop(sel) => Box::new(DropLabels::new(selectors(sel))),
        ast::Stage::Keep(sel) => Box::new(KeepLabels::new(selectors(sel))),
        ast::Stage::Decolorize(_) => Box::new(log::Decolorizer::new()),
    })
}

/// The template engine's view of the entry being processed.
struct EntryView<'a> {
    labels: &'a LabelsBuilder,
    line: &'a str,
    ts: Timestamp,
}

impl TemplateContext for EntryView<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        match name {
            log::ERROR_LABEL => self.labels.error(),
            log::ERROR_DETAILS_LABEL => self.labels.error_details(),
            _ => self.labels.get(name),
        }
    }

    fn line(&self) -> &str {
        self.line
    }

    fn timestamp(&self) -> Timestamp {
        self.ts
    }
}

/// `| line_format "<template>"`: replaces the line; on a template error the
/// line is kept and `__error__=TemplateFormatErr` is set (Loki's behaviour).
#[derive(Clone, Debug)]
struct LineFormat {
    template: Arc<Template>,
}

thread_local! {
    static RENDER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl Stage for LineFormat {
    fn process(
        &mut self,
        ts: Timestamp,
        line: &mut LineBuf<'_>,
        labels: &mut LabelsBuilder,
    ) -> bool {
        let text = String::from_utf8_lossy(line.as_bytes());
        let result = RENDER.with(|buf| {
            let mut out = buf.borrow_mut();
            let r = self.template.execute(
                &EntryView {
                    labels,
                    line: &text,
                    ts,
                },
                &mut out,
            );
            r.map(|()| out.clone())
        });
        drop(text);
        match result {
            Ok(rendered) => line.set(rendered.as_bytes()),
            Err(e) => {
                labels.set_error(log::ERR_TEMPLATE_FORMAT);
                labels.set_error_details(&e.to_string());
            }
        }
        true
    }
}

#[derive(Clone, Debug)]
enum LabelFmt {
    Rename {
        dst: String,
        src: String,
    },
    Template {
        dst: String,
        template: Arc<Template>,
    },
}

/// `| label_format dst=src, dst="{{tmpl}}"`: renames keep the source's
/// category and remove it; templates see the labels as they were when the
/// stage started and set parsed labels. Errors set `TemplateFormatErr`.
#[derive(Clone, Debug)]
struct LabelFormat {
    formats: Arc<Vec<LabelFmt>>,
}

impl Stage for LabelFormat {
    fn process(
        &mut self,
        ts: Timestamp,
        line: &mut LineBuf<'_>,
        labels: &mut LabelsBuilder,
    ) -> bool {
        let text = String::from_utf8_lossy(line.as_bytes()).into_owned();
        // Templates render against the labels as they were before this stage.
        let rendered: Vec<Option<Result<String, String>>> = self
            .formats
            .iter()
            .map(|f| match f {
                LabelFmt::Template { template, .. } => {
                    let mut out = String::new();
                    Some(
                        template
                            .execute(
                                &EntryView {
                                    labels,
                                    line: &text,
                                    ts,
                                },
                                &mut out,
                            )
                            .map(|()| out)
                            .map_err(|e| e.to_string()),
                    )
                }
                LabelFmt::Rename { .. } => None,
            })
            .collect();
        for (f, r) in self.formats.iter().zip(rendered) {
            match (f, r) {
                (LabelFmt::Rename { dst, src }, _) => {
                    if let Some((v, cat)) = labels
                        .get_with_category(src)
                        .map(|(v, c)| (v.to_string(), c))
                    {
                        labels.set(cat, dst, &v);
                        if src != dst {
                            labels.delete(src);
                        }
                    }
                }
                (LabelFmt::Template { dst, .. }, Some(Ok(v))) => {
                    labels.set(LabelCategory::Parsed, dst, &v)
                }
                (LabelFmt::Template { .. }, Some(Err(e))) => {
                    labels.set_error(log::ERR_TEMPLATE_FORMAT);
                    labels.set_error_details(&e);
                }
                (LabelFmt::Template { .. }, None) => {}
            }
        }
        true
    }
}

/// Labels a stage list reads after parsing (label filters, formatters,
/// drop/keep): Loki's `RequiredLabelNames`, feeding the parser hints.
pub(crate) fn required_labels(stages: &[ast::Stage]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    for s in stages {
        match s {
            ast::Stage::LabelFilter(f) => f.filter.for_each_leaf(&mut |leaf| {
                if let Some(l) = leaf.label() {
                    push(l);
                }
            }),
            ast::Stage::LineFormat(f) => {
                if let Ok(t) = Template::parse(&f.template) {
                    t.referenced_labels().iter().for_each(|l| push(l));
                }
            }
            ast::Stage::LabelFormat(f) => {
                for fmt in &f.formats {
                    push(&fmt.dst);
                    match &fmt.value {
                        ast::LabelFmtValue::Rename(src) => push(src),
                        ast::LabelFmtValue::Template(t) => {
                            if let Ok(t) = Template::parse(t) {
                                t.referenced_labels().iter().for_each(|l| push(l));
                            }
                        }
                    }
                }
            }
            ast::Stage::Drop(sel) | ast::Stage::Keep(sel) => {
                sel.labels.iter().for_each(|n| push(&n.name))
            }
            _ => {}
        }
    }
    out
}
