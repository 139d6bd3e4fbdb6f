//! Property tests for the decoders and converters of the pipeline: they
//! never panic on arbitrary input, and they round-trip what a well-behaved
//! writer produces.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::convert::{parse_go_duration, parse_go_float, sanitize_label_key};
use super::*;
use crate::model::{Labels, Timestamp};

/// The labels and the line after a stage.
type Outcome = (Vec<(String, String)>, Vec<u8>);

fn run(stage: &mut dyn Stage, line: &[u8]) -> Option<Outcome> {
    let mut b = LabelsBuilder::new(&Labels::empty());
    b.reset();
    let mut scratch = LineScratch::default();
    let mut lb = LineBuf::new(line, &mut scratch);
    if !stage.process(Timestamp::EPOCH, &mut lb, &mut b) {
        return None;
    }
    let out = lb.as_bytes().to_vec();
    let labels = b
        .labels_result()
        .labels()
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    Some((labels, out))
}

fn key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,8}"
}

/// Regex pieces whose simplified and compiled forms must agree on every
/// line: literals, `.*` around them, alternations of such branches.
fn simplifiable_regex() -> impl Strategy<Value = String> {
    let lit = prop::sample::select(vec!["a", "b", "ab", "ba", "abc", "x.y", "(?i)ab"]);
    let branch = (any::<bool>(), lit, any::<bool>()).prop_map(|(pre, l, post)| {
        let l = l.replace('.', r"\.");
        format!(
            "{}{}{}",
            if pre { ".*" } else { "" },
            l,
            if post { ".*" } else { "" }
        )
    });
    prop::collection::vec(branch, 1..4).prop_map(|b| b.join("|"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_parser_never_panics(line in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = run(&mut JsonParser::new(), &line);
        let _ = run(&mut UnpackParser::new(), &line);
        let exprs = [LabelExtraction::new("a", "a.b[0]"), LabelExtraction::new("c", "c")];
        let _ = run(&mut JsonExpressionParser::new(&exprs).unwrap(), &line);
    }

    #[test]
    fn json_like_lines_never_panic(line in r#"[{}\[\]",:a-c0-9 \\]{0,80}"#) {
        let _ = run(&mut JsonParser::new(), line.as_bytes());
        let exprs = [LabelExtraction::new("a", "a[1].b"), LabelExtraction::new("x", r#"["a"][0]"#)];
        let _ = run(&mut JsonExpressionParser::new(&exprs).unwrap(), line.as_bytes());
    }

    #[test]
    fn json_round_trips_flat_objects(obj in prop::collection::btree_map(key(), ".{0,12}", 0..8)) {
        let line = serde_json::to_string(&obj).unwrap();
        let (labels, out) = run(&mut JsonParser::new(), line.as_bytes()).unwrap();
        prop_assert_eq!(out, line.as_bytes());
        let want: Vec<(String, String)> = obj
            .iter()
            .map(|(k, v)| (sanitize_label_key(k, true), v.replace('\u{fffd}', " ")))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        prop_assert_eq!(labels, want);
    }

    #[test]
    fn logfmt_never_panics(line in prop::collection::vec(any::<u8>(), 0..200)) {
        for strict in [false, true] {
            for keep in [false, true] {
                let _ = run(&mut LogfmtParser::new(strict, keep), &line);
            }
        }
    }

    #[test]
    fn logfmt_round_trips(pairs in prop::collection::btree_map(key(), "[ -~]{0,12}", 0..8)) {
        let line: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                if v.is_empty() || v.contains([' ', '=', '"', '\\']) {
                    format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        let line = line.join(" ");
        let (labels, _) = run(&mut LogfmtParser::new(true, true), line.as_bytes()).unwrap();
        let want: Vec<(String, String)> = pairs.into_iter().collect();
        prop_assert_eq!(labels, want);
    }

    #[test]
    fn pattern_never_panics(p in "[<>_a-c ]{0,20}", line in "[<>_a-c ]{0,40}") {
        if let Ok(mut parser) = PatternParser::new(&p) {
            let _ = run(&mut parser, line.as_bytes());
        }
        if let Ok(f) = LineFilter::new(LineFilterOp::Pattern, &p) {
            let _ = f.matches(line.as_bytes());
        }
    }

    #[test]
    fn simplified_line_regexes_agree_with_the_regex(
        re in simplifiable_regex(),
        lines in prop::collection::vec("[abcxyAB. \n]{0,12}", 1..16),
    ) {
        // Mostly simplified; single-character alternatives (`a|b`) become a
        // class in Go's parser and stay a regex.
        let simplified = LineFilter::new(LineFilterOp::Regex, &re).unwrap();
        let plain = regex::bytes::Regex::new(&re).unwrap();
        for line in &lines {
            prop_assert_eq!(
                simplified.matches(line.as_bytes()),
                plain.is_match(line.as_bytes()),
                "{} on {:?}", re, line
            );
        }
    }

    #[test]
    fn floats_round_trip(v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
        prop_assert_eq!(parse_go_float(&format!("{v}")), Ok(v));
        prop_assert_eq!(parse_go_float(&format!("{v:e}")), Ok(v));
        prop_assert_eq!(parse_go_float(&format!("{v:E}")), Ok(v));
    }

    #[test]
    fn durations_round_trip(h in 0i64..1000, m in 0i64..60, s in 0i64..60, ms in 0i64..1000, us in 0i64..1000, neg in any::<bool>()) {
        let text = format!("{}{h}h{m}m{s}s{ms}ms{us}us", if neg { "-" } else { "" });
        let nanos = ((h * 3600 + m * 60 + s) * 1_000_000_000 + ms * 1_000_000 + us * 1_000) * if neg { -1 } else { 1 };
        prop_assert_eq!(parse_go_duration(&text), Ok(nanos));
    }

    #[test]
    fn converters_never_panic(s in "\\PC{0,16}") {
        let _ = parse_go_float(&s);
        let _ = parse_go_duration(&s);
        let _ = convert::parse_humanize_bytes(&s);
        let _ = IpMatcher::parse(&s);
        let _ = regex_simplify::describe(&s, true);
    }
}
