//! Go `text/template` engine for LogQL's `line_format` and `label_format`,
//! with Loki's function set (Go built-ins, Loki's functions, the sprig subset
//! Loki registers) and Loki's data model: labels as `.name` in a
//! `map[string]string` with `missingkey=zero` (a missing label renders `""`),
//! `__line__` and `__timestamp__` as functions.
//!
//! Owns: lexing, parsing (once per query) and executing (per entry) a
//! template; Go's value, conversion, comparison and printing rules; Go time
//! layouts. Does not own: the pipeline stages that call it (they keep the
//! original line and set `__error__=TemplateFormatErr` when execution fails),
//! label validation, or where labels come from ([`TemplateContext`]).
//!
//! Invariants: a [`Template`] is immutable after parsing and `Send + Sync`;
//! executing borrows labels and the line from the context (looking one up
//! allocates nothing) and writes into the caller's buffer.
//!
//! Deliberate differences from Go/Loki, all edge cases: Go's `Local` zone is
//! UTC; strings are UTF-8 (bytes a function cuts mid-character become
//! U+FFFD, which is what Loki's JSON output shows for them); `define`,
//! `template` and `block` are rejected; functions that build strings
//! (`repeat`, `indent`, `alignLeft`, …) fail beyond 16 MiB rather than
//! exhausting memory.

mod ast;
mod exec;
mod funcs;
mod gotime;
mod lexer;
mod parser;
mod printf;
mod value;

use crate::model::Timestamp;

/// Template errors: parse errors fail the query (HTTP 400); execution errors
/// fail one entry (`__error__=TemplateFormatErr`, details = the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// As Go prints it: `template: line:1: function "foo" not defined`.
    #[error("template: {name}:{line}: {message}")]
    Parse {
        name: String,
        line: usize,
        message: String,
    },
    /// As Go prints it:
    /// `template: line:1:3: executing "line" at <div 1 0>: error calling div: …`.
    #[error("template: {name}:{line}:{col}: executing \"{name}\" at <{context}>: {message}")]
    Exec {
        name: String,
        line: usize,
        /// Byte offset within the line, counted from 0 as Go does.
        col: usize,
        /// The failing node, printed back as template source.
        context: String,
        message: String,
    },
}

/// What a template reads from one entry. The pipeline implements it.
pub trait TemplateContext {
    /// The value of label `name` (stream, structured metadata or parsed).
    /// `None` renders as `""`.
    fn label(&self, name: &str) -> Option<&str>;
    /// The line as this stage received it (`__line__`).
    fn line(&self) -> &str;
    /// The entry's timestamp (`__timestamp__`).
    fn timestamp(&self) -> Timestamp;
    /// Visits every label, for templates that use the label map as a whole
    /// (`{{ range $k, $v := . }}`, `{{ . }}`, `len .`). The default visits
    /// none; implement it for full fidelity.
    fn for_each_label<'s>(&'s self, visit: &mut dyn FnMut(&'s str, &'s str)) {
        let _ = visit;
    }
}

/// A parsed template: parse once per query, execute per entry.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    source: String,
    root: Vec<ast::Node>,
    single_field: Option<String>,
    referenced: Vec<String>,
}

impl Template {
    /// Parses a `line_format` template (Go template name `line`).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        Template::parse_named("line", text)
    }

    /// Parses a template under a Go template name; Loki names `label_format`
    /// templates `label`, which shows in error messages.
    pub fn parse_named(name: &str, text: &str) -> Result<Template, TemplateError> {
        let root = parser::parse(name, text)?;
        let single_field = match root.as_slice() {
            [ast::Node::Action(pipe)] if pipe.decl.is_empty() && pipe.cmds.len() == 1 => {
                match pipe.cmds[0].args.as_slice() {
                    [ast::Arg::Field { idents, .. }] if idents.len() == 1 => {
                        Some(idents[0].clone())
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let mut referenced = Vec::new();
        ast::referenced_fields(&root, &mut referenced);
        Ok(Template {
            name: name.to_string(),
            source: text.to_string(),
            root,
            single_field,
            referenced,
        })
    }

    /// Renders into `out` (cleared first). Runtime errors are returned; the
    /// caller keeps the original line and sets `__error__=TemplateFormatErr`.
    pub fn execute(
        &self,
        ctx: &dyn TemplateContext,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        out.clear();
        if let Some(name) = &self.single_field {
            out.push_str(ctx.label(name).unwrap_or(""));
            return Ok(());
        }
        exec::Exec::new(self, ctx).run(out)
    }

    /// `Some("x")` when the template is exactly `{{.x}}` (fast path: the
    /// result is the label's value, or `""`).
    pub fn single_field(&self) -> Option<&str> {
        self.single_field.as_deref()
    }

    /// Label names referenced as `.name`, in order of first appearance
    /// (Loki's `RequiredLabelNames`; `label_format` keeps them).
    pub fn referenced_labels(&self) -> Vec<String> {
        self.referenced.clone()
    }

    /// The template source.
    pub fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests;
