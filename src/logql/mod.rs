//! LogQL: lexer, parser, AST and printer (pure: no I/O, no tokio, no store),
//! the log pipeline stages, the template engine, evaluation, and Drilldown's
//! field detection (`detected`).

pub mod detected;
pub mod eval;
pub mod log;
pub mod result;
pub mod syntax;
pub mod template;
