//! Fuzz target for the LogQL parser: any input must parse or fail without
//! panicking, and whatever parses must print to text that parses back to
//! the same tree (`parse(print(ast)) == ast`), and pretty-print.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run logql_parse` from the repository
//! root (cargo-fuzz needs nightly features; `RUSTC_BOOTSTRAP` enables them on
//! stable). Seed inputs: the queries of `tests/data/conformance/cases.jsonl`.
//! A crash found here becomes a named regression test in
//! `src/logql/syntax/parser_tests.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lokal::logql::syntax::{parse, pretty};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = parse(query) else {
        return;
    };
    let printed = expr.to_string();
    match parse(&printed) {
        Ok(again) => assert_eq!(again, expr, "round trip changed {query:?} (printed {printed:?})"),
        Err(err) => panic!("printed form of {query:?} does not parse: {printed:?}: {err}"),
    }
    let _ = pretty(&expr);
});
