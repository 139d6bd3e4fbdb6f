//! LogQL syntax: lexer, parser, AST, canonical and pretty printers, and
//! the validations Loki performs before evaluating a query.
//!
//! Pure: no I/O, no runtime, no store. The evaluator builds on [`Expr`]; the
//! API layer calls [`parse`], [`parse_matchers`], [`parse_log_selector`] and
//! [`pretty`], and prints [`ParseError`] as Loki does.
//!
//! Compatibility contract (Loki 3.8, `pkg/logql/syntax`):
//! - The same queries are accepted and rejected, with the same error text
//!   (`parse error at line L, col C: syntax error: unexpected X, expecting Y`
//!   for grammar errors; `parse error : <msg>` for validation errors).
//! - `Display` of a tree is Loki's canonical `String()` text, and
//!   `parse(&expr.to_string()) == Ok(expr)` for every parsed `expr`.
//! - [`pretty`] is Loki's `Prettify` (used by `format_query`).
//!
//! Layout: `lexer` (tokens, Go scanner rules) → `parser` (grammar, node
//! construction) → `ast` (the tree) → `validate` (regex/pattern/ip and stage
//! checks) → `print`/`pretty` (text). `golang` holds the Go standard
//! library behaviours (number, duration and byte-size syntax and printing).

pub mod ast;
pub mod error;
pub mod golang;
pub mod lexer;
pub mod parser;
pub mod pretty;
pub mod print;
pub mod validate;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod parser_tests;
#[cfg(test)]
mod roundtrip_tests;

pub use ast::*;
pub use error::{ParseError, ParseErrorKind};
pub use parser::{MAX_EXPR_DEPTH, MAX_NESTING, MAX_QUERY_BYTES};
pub use pretty::{pretty, pretty_with_width};

use crate::model::Matcher;
use parser::Value;

/// Parses and validates a LogQL query, as Loki's `ParseExpr` followed by the
/// pipeline-stage checks Loki runs when it builds the query's pipelines
/// (line-filter regexes and patterns, `ip()` operators and patterns,
/// `label_format` destinations). Templates and json paths are checked by
/// the pipeline library; wrap its errors with [`ParseError::stage`].
pub fn parse(query: &str) -> Result<Expr, ParseError> {
    let expr = parser::validate_value(parser::parse_unvalidated(query)?)?;
    validate::validate_stages(&expr)?;
    Ok(expr)
}

/// [`parse`] for endpoints that only evaluate metric queries (Loki's
/// `ParseSampleExpr`).
pub fn parse_sample_expr(query: &str) -> Result<SampleExpr, ParseError> {
    match parse(query)? {
        Expr::Sample(s) => Ok(s),
        Expr::Log(_) => Err(ParseError::plain(
            ParseErrorKind::NotSampleExpr,
            "only sample expression supported",
        )),
    }
}

/// A log query (selector and pipeline), as Loki's `ParseLogSelector`: with
/// `validate`, the selector must have a non-empty matcher and the stages
/// must be valid.
pub fn parse_log_selector(query: &str, validate: bool) -> Result<LogExpr, ParseError> {
    let value = parser::parse_unvalidated(query)?;
    if !matches!(value, Value::Log(_)) {
        return Err(ParseError::plain(
            ParseErrorKind::NotLogSelector,
            "only log selector is supported",
        ));
    }
    let log = if validate {
        let expr = parser::validate_value(value)?;
        validate::validate_stages(&expr)?;
        expr
    } else {
        match value {
            Value::Log(log) => Expr::Log(log),
            Value::Sample(s) => Expr::Sample(s),
            Value::Invalid(err) => return Err(err),
        }
    };
    match log {
        Expr::Log(log) => Ok(log),
        Expr::Sample(_) => Err(ParseError::plain(
            ParseErrorKind::NotLogSelector,
            "only log selector is supported",
        )),
    }
}

/// The matchers of a bare stream selector `{...}`, as Loki's
/// `ParseMatchers` (used by `/series` `match[]`, `/labels` and
/// `/label/<name>/values` `query=`, `/index/*`). With `validate`, at least
/// one matcher must not match the empty string; `{}` is accepted without.
pub fn parse_matchers(query: &str, validate: bool) -> Result<Vec<Matcher>, ParseError> {
    let value = parser::parse_unvalidated(query)?;
    let value = if validate {
        match parser::validate_value(value)? {
            Expr::Log(log) => Value::Log(log),
            Expr::Sample(s) => Value::Sample(s),
        }
    } else {
        value
    };
    match value {
        Value::Log(log) if log.pipeline.is_empty() => Ok(log.selector.matchers),
        _ => Err(ParseError::plain(
            ParseErrorKind::NotMatchers,
            "only label matchers are supported",
        )),
    }
}
