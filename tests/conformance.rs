//! Conformance with real Loki: loads the corpus data set into a lokal started
//! like the Loki that recorded the answers, and runs every case through the
//! corpus' own checker (`tests/conformance/check.py`, Loki's normalisation).
//!
//! A case lokal deliberately answers differently is listed in
//! `KNOWN_DIFFERENCES` with the reason in docs/compatibility.md; the test
//! fails on any other failing case, and on a listed case that starts passing.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::Lokal;

/// Case ids where lokal follows Loki's documentation instead of its code
/// (docs/compatibility.md, "Entries on the edges of a query").
const KNOWN_DIFFERENCES: &[&str] = &["range_params-015", "range_params-022", "vector_agg-019"];

fn python(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("python3")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("python3 is needed to run the conformance corpus")
}

#[test]
fn loki_conformance_corpus() {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let data = tempfile::tempdir().unwrap();
    let out = python(
        &["gen_data.py", "--out", data.path().to_str().unwrap()],
        &kit,
    );
    assert!(
        out.status.success(),
        "gen_data.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let lokal = Lokal::start("  allow_structured_metadata: true\n  max_query_lookback: 0\n");
    let out = python(
        &[
            "push.py",
            "--url",
            &lokal.base,
            "--data",
            data.path().to_str().unwrap(),
        ],
        &kit,
    );
    assert!(
        out.status.success(),
        "push.py failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        lokal.logs()
    );

    let out = python(
        &["check.py", "--url", &lokal.base, "--cases", "cases.jsonl"],
        &kit,
    );
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{report}");
    let failed: Vec<&str> = report
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .filter_map(|l| l.split(':').next())
        .collect();
    let unexpected: Vec<&&str> = failed
        .iter()
        .filter(|id| !KNOWN_DIFFERENCES.contains(id))
        .collect();
    let fixed: Vec<&&str> = KNOWN_DIFFERENCES
        .iter()
        .filter(|id| !failed.contains(id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} cases differ from Loki: {unexpected:?}\n(see the report above)",
        unexpected.len()
    );
    assert!(
        fixed.is_empty(),
        "listed as known differences but now pass: {fixed:?}"
    );
    assert!(
        report.contains(" passed"),
        "check.py printed no summary:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
