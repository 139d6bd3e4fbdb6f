//! LogQL: lexer, parser, AST and printer (pure: no I/O, no tokio, no store),
//! the log pipeline stages, and evaluation.

pub mod syntax;
