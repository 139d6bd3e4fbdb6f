//! Every query of the conformance corpus (`tests/data/conformance/cases.jsonl`,
//! answers recorded from Loki 3.8) parses or fails exactly as Loki did, and
//! every accepted query survives `parse(print(ast)) == ast`.

use super::{parse, parse_matchers};

struct Case {
    id: String,
    endpoint: String,
    query: String,
    status: u64,
    body: Option<String>,
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/conformance/cases.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("conformance cases");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).expect("valid json line");
        let params = &case["params"];
        let query = ["query", "match[]", "match"]
            .iter()
            .find_map(|k| params.get(*k).and_then(|v| v.as_str()));
        let Some(query) = query else { continue };
        out.push(Case {
            id: case["id"].as_str().unwrap_or_default().to_string(),
            endpoint: case["endpoint"].as_str().unwrap_or_default().to_string(),
            query: query.to_string(),
            status: case["expect"]["status"].as_u64().unwrap_or(0),
            body: case["expect"]["body"].as_str().map(str::to_string),
        });
    }
    out
}

/// Whether Loki's answer is a query-parsing error (as opposed to a limit,
/// a bad parameter or a pipeline error found while evaluating).
fn is_parse_rejection(case: &Case) -> bool {
    case.status == 400
        && case.body.as_deref().is_some_and(|b| {
            b.starts_with("parse error") || b == "only label matchers are supported"
        })
}

#[test]
fn corpus_queries_parse_or_fail_as_in_loki() {
    let cases = cases();
    assert!(cases.len() > 200, "corpus has {} queries", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let is_query = case.endpoint.ends_with("/query") || case.endpoint.ends_with("/query_range");
        let result: Result<String, String> = if is_query {
            parse(&case.query)
                .map(|e| e.to_string())
                .map_err(|e| e.to_string())
        } else {
            parse_matchers(&case.query, false)
                .map(|m| format!("{m:?}"))
                .map_err(|e| e.to_string())
        };
        match (is_parse_rejection(case), result) {
            (true, Err(got)) => {
                if Some(got.as_str()) != case.body.as_deref() {
                    failures.push(format!(
                        "{}: {:?}\n   got: {got}\n  want: {:?}",
                        case.id, case.query, case.body
                    ));
                }
            }
            (true, Ok(_)) => failures.push(format!(
                "{}: {:?} parsed, Loki rejected it: {:?}",
                case.id, case.query, case.body
            )),
            (false, Err(got)) => {
                failures.push(format!("{}: {:?} rejected: {got}", case.id, case.query))
            }
            (false, Ok(printed)) if is_query => {
                let again = parse(&printed);
                let original = parse(&case.query);
                if again.as_ref().ok() != original.as_ref().ok() {
                    failures.push(format!(
                        "{}: round trip of {:?} through {printed:?} gave {again:?}",
                        case.id, case.query
                    ));
                }
            }
            (false, Ok(_)) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_syntax_errors_are_covered() {
    let rejected = cases().iter().filter(|c| is_parse_rejection(c)).count();
    assert!(rejected >= 25, "only {rejected} rejections in the corpus");
}
