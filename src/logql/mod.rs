//! LogQL: lexer, parser, AST and printer (pure: no I/O, no tokio, no store),
//! the log pipeline stages, the template engine, and evaluation.

pub mod eval;
pub mod log;
pub mod result;
pub mod syntax;
pub mod template;
