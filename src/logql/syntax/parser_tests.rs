//! Loki's parser test tables (`pkg/logql/syntax/parser_test.go`), error
//! texts verified against Loki, and the tree shapes the evaluator relies on.
//! Trees are compared through their canonical text, which spells out every
//! grouping (`( a , b )`, `(x + y)`).

use super::*;
use crate::model::MatchOp;

const EMPTY: &str = "parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

fn err(q: &str) -> String {
    match parse(q) {
        Ok(e) => panic!("{q:?} parsed as {e}"),
        Err(e) => e.to_string(),
    }
}

fn canon(q: &str) -> String {
    match parse(q) {
        Ok(e) => e.to_string(),
        Err(e) => panic!("{q:?} failed: {e}"),
    }
}

#[test]
fn loki_parse_errors() {
    let cases: &[(&str, &str)] = &[
        (
            r#"unk({ foo = "bar" }[5m])"#,
            "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
        ),
        (
            r#"absent_over_time({ foo = "bar" }[5h]) by (foo)"#,
            "parse error : grouping not allowed for absent_over_time aggregation",
        ),
        (
            r#"approx_topk(2, count_over_time({ foo = "bar" }[5h])) by (foo)"#,
            "parse error : grouping not allowed for approx_topk aggregation",
        ),
        (
            r#"rate({ foo = "bar" }[5minutes])"#,
            r#"parse error at line 0, col 21: unknown unit "minutes" in duration "5minutes""#,
        ),
        (
            r#"label_replace(rate({ foo = "bar" }[5m]),"")"#,
            "parse error at line 1, col 43: syntax error: unexpected ), expecting ,",
        ),
        (
            r#"label_replace(rate({ foo = "bar" }[5m]),"foo","$1","bar","^^^^x43\\q")"#,
            r"parse error : invalid regex in label_replace: error parsing regexp: invalid escape sequence: `\q`",
        ),
        (
            r#"rate({ foo = "bar" }[5)"#,
            "parse error at line 0, col 21: missing closing ']' in duration",
        ),
        (
            r#"min({ foo = "bar" }[5m])"#,
            "parse error at line 0, col 20: syntax error: unexpected RANGE",
        ),
        (
            r#"{ foo = "bar" }|logfmt|addr>=ip("1.2.3.4")"#,
            "parse error at line 1, col 30: syntax error: unexpected ip",
        ),
        (
            r#"{ foo = "bar" }|logfmt|addr>ip("1.2.3.4")"#,
            "parse error at line 1, col 29: syntax error: unexpected ip",
        ),
        (
            r#"{ foo = "bar" }|logfmt|addr<=ip("1.2.3.4")"#,
            "parse error at line 1, col 30: syntax error: unexpected ip",
        ),
        (
            r#"sum(3 ,count_over_time({ foo = "bar" }[5h]))"#,
            "parse error : unsupported parameter for operation sum(3,",
        ),
        (
            r#"topk(count_over_time({ foo = "bar" }[5h]))"#,
            "parse error : parameter required for operation topk",
        ),
        (
            r#"bottomk(he,count_over_time({ foo = "bar" }[5h]))"#,
            "parse error at line 1, col 9: syntax error: unexpected IDENTIFIER",
        ),
        (
            r#"bottomk(1.2,count_over_time({ foo = "bar" }[5h]))"#,
            "parse error : invalid parameter bottomk(1.2,",
        ),
        (
            r#"stddev({ foo = "bar" })"#,
            "parse error at line 1, col 23: syntax error: unexpected )",
        ),
        (
            r#"{foo="bar}"#,
            "parse error at line 1, col 6: literal not terminated",
        ),
        (
            r#"{foo="bar""#,
            "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,",
        ),
        (
            r#"{foo="bar"} |~"#,
            "parse error at line 1, col 15: syntax error: unexpected $end, expecting STRING or ip",
        ),
        (
            r#"{foo="bar"} "foo""#,
            "parse error at line 1, col 13: syntax error: unexpected STRING",
        ),
        (
            r#"{foo="bar"} foo"#,
            "parse error at line 1, col 13: syntax error: unexpected IDENTIFIER",
        ),
        (
            r#"count_over_time({app="foo"} |= "foo" | json | unwrap foo [5m])"#,
            "parse error : invalid aggregation count_over_time with unwrap",
        ),
        (
            r#"sum_over_time({app="foo"} |= "bar" | json | latency >= 250ms | label_format foo=bar[5m])"#,
            "parse error : invalid aggregation sum_over_time without unwrap",
        ),
        (
            r#"{foo="bar"} + {foo="bar"}"#,
            "parse error : unexpected type for left leg of binary operation (+): *syntax.MatchersExpr",
        ),
        (
            r#"sum(count_over_time({foo="bar"}[5m])) by (foo) - {foo="bar"}"#,
            "parse error : unexpected type for right leg of binary operation (-): *syntax.MatchersExpr",
        ),
        (
            r#"{foo="bar"} |= "x" / sum(count_over_time({foo="bar"}[5m])) by (foo)"#,
            "parse error : unexpected type for left leg of binary operation (/): *syntax.PipelineExpr",
        ),
        (
            r#"sum(count_over_time({foo="bar"}[5m])) by (foo) or 1"#,
            "parse error : unexpected literal for right leg of logical/set binary operation (or): 1.000000",
        ),
        (
            r#"1 unless sum(count_over_time({foo="bar"}[5m])) by (foo)"#,
            "parse error : unexpected literal for left leg of logical/set binary operation (unless): 1.000000",
        ),
        (
            r#"sum(count_over_time({foo="bar"}[5m])) by (foo) + 1 or 1"#,
            "parse error : unexpected literal for right leg of logical/set binary operation (or): 1.000000",
        ),
        (
            r#"count_over_time({ foo = "bar" }[12m]) > { foo = "bar" }"#,
            "parse error : unexpected type for right leg of binary operation (>): *syntax.MatchersExpr",
        ),
        (
            r#"bool 1 > 1 > bool 1"#,
            "parse error at line 1, col 1: syntax error: unexpected bool",
        ),
        (
            r#"sum_over_time({namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms| unwrap latency [5m]) by (foo)"#,
            "parse error : grouping not allowed for sum_over_time aggregation",
        ),
        (
            r#"sum_over_time(50,{namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms| unwrap latency [5m])"#,
            "parse error : parameter 50 not supported for operation sum_over_time",
        ),
        (
            r#"quantile_over_time({namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms| unwrap latency [5m])"#,
            "parse error : parameter required for operation quantile_over_time",
        ),
        (
            r#"quantile_over_time(foo,{namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms| unwrap latency [5m])"#,
            "parse error at line 1, col 20: syntax error: unexpected IDENTIFIER, expecting NUMBER or { or (",
        ),
        (
            "vector(abc)",
            "parse error at line 1, col 8: syntax error: unexpected IDENTIFIER, expecting NUMBER",
        ),
        (
            r#"#{app="foo"} | json"#,
            "parse error at line 1, col 20: syntax error: unexpected $end",
        ),
        (
            r#"count without (rate({namespace="apps"}[15s]))"#,
            "parse error at line 1, col 16: syntax error: unexpected RATE, expecting IDENTIFIER or )",
        ),
        // Verified against Loki 3.7/3.8 answers.
        (
            r#"max_over_time(sum(rate({app="a"}[1m]))[30m:5m])"#,
            "parse error at line 1, col 15: syntax error: unexpected SUM, expecting NUMBER or { or (",
        ),
        (
            r#"rate(count_over_time({app="a"}[5m])[30m:5m])"#,
            "parse error at line 1, col 6: syntax error: unexpected COUNT_OVER_TIME, expecting NUMBER or { or (",
        ),
        (
            r#"quantile_over_time(0.5, rate({app="a"}[1m])[30m:5m])"#,
            "parse error at line 1, col 25: syntax error: unexpected RATE, expecting { or (",
        ),
        (
            r#"max_over_time((rate({app="a"}[1m]))[30m:5m])"#,
            "parse error at line 1, col 16: syntax error: unexpected RATE, expecting { or (",
        ),
        (
            "sum_over_time(vector(1)[5m:1m])",
            "parse error at line 1, col 15: syntax error: unexpected VECTOR, expecting NUMBER or { or (",
        ),
        (
            r#"max_over_time(label_replace(rate({app="a"}[1m]),"a","b","c","d")[30m:5m])"#,
            "parse error at line 1, col 15: syntax error: unexpected label_replace, expecting NUMBER or { or (",
        ),
        (
            r#"count_over_time({app="a"}[30m:5m])"#,
            r#"parse error at line 0, col 26: unknown unit "m:" in duration "30m:5m""#,
        ),
        (
            r#"topk(0, count_over_time({app="a"}[5m]))"#,
            "parse error : invalid parameter (must be greater than 0) topk(0",
        ),
        (
            r#"topk(00, count_over_time({app="a"}[5m]))"#,
            "parse error : invalid parameter (must be greater than 0) topk(00",
        ),
        (
            r#"topk by (pod) (0, count_over_time({app="a"}[5m]))"#,
            "parse error : invalid parameter (must be greater than 0) topk(0",
        ),
        (
            r#"sum(topk(0, count_over_time({app="a"}[5m])))"#,
            "parse error : invalid parameter (must be greater than 0) topk(0",
        ),
        (
            r#"topk(0.5, count_over_time({app="a"}[5m]))"#,
            "parse error : invalid parameter topk(0.5,",
        ),
        (
            r#"{app="a"} | label_format x="a", x="b""#,
            r#"parse error : stage '| label_format x="a",x="b"' : multiple label name 'x' not allowed in a single format operation"#,
        ),
        (
            r#"{app="a"} | label_format __error__="a""#,
            r#"parse error : stage '| label_format __error__="a"' : __error__ cannot be formatted"#,
        ),
        (
            r#"{app="a"} | label_format x="a","#,
            "parse error at line 1, col 32: syntax error: unexpected $end, expecting IDENTIFIER",
        ),
        (
            r#"{app="a"} | label_format x"#,
            "parse error at line 1, col 27: syntax error: unexpected $end, expecting =",
        ),
        (
            r#"{app="a"} | json foo="#,
            "parse error at line 1, col 22: syntax error: unexpected $end, expecting STRING",
        ),
        (
            r#"{app="a"} | regexp "([""#,
            "parse error : invalid regexp parser: error parsing regexp: missing closing ]: `[`",
        ),
        (
            r#"{app="a"} | regexp "abc""#,
            "parse error : invalid regexp parser: at least one named capture must be supplied",
        ),
        (
            r#"{app="a"} | regexp "(x)""#,
            "parse error : invalid regexp parser: at least one named capture must be supplied",
        ),
        (
            r#"{app="a"} | regexp "(?P<a>x)(?P<a>y)""#,
            "parse error : invalid regexp parser: duplicate extracted label name 'a'",
        ),
        (
            r#"{app="a"} | pattern "<_><_>""#,
            "parse error : invalid pattern parser: at least one capture is required",
        ),
        (
            r#"{app="a"} | pattern "abc""#,
            "parse error : invalid pattern parser: at least one capture is required",
        ),
        (
            r#"{app="a"} | pattern "<a> <a>""#,
            "parse error : invalid pattern parser: duplicate capture name (a): invalid expression",
        ),
        (
            r#"{app="a"} | pattern "<a><b>""#,
            "parse error : invalid pattern parser: found consecutive capture '<a><b>': invalid expression",
        ),
        (
            r#"{app="a"} | pattern """#,
            "parse error : invalid pattern parser: parse error at line 1, col 1: syntax error: unexpected $end, expecting IDENTIFIER or LITERAL",
        ),
        // More grammar positions.
        (
            r#"{app="api"} | jsonn"#,
            "parse error at line 1, col 20: syntax error: unexpected $end",
        ),
        (
            r#"{app="api"} | unwrap latency_ms"#,
            "parse error at line 1, col 15: syntax error: unexpected unwrap",
        ),
        (
            r#"sum(count_over_time({app="gateway"}[10m])) offset 10m"#,
            "parse error at line 1, col 44: syntax error: unexpected offset",
        ),
        (
            r#"{service.name="x"}"#,
            "parse error at line 1, col 9: syntax error: unexpected ., expecting = or =~ or !~ or !=",
        ),
        (
            "{app='x'}",
            "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting STRING",
        ),
        (
            "{'x'=\"y\"}",
            "parse error at line 1, col 2: syntax error: unexpected 'x', expecting IDENTIFIER or }",
        ),
        (
            r#"{@="x"}"#,
            "parse error at line 1, col 2: syntax error: unexpected @, expecting IDENTIFIER or }",
        ),
        (
            "@",
            "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
        ),
        ("{}", EMPTY),
        (
            "{",
            "parse error at line 1, col 2: syntax error: unexpected $end, expecting IDENTIFIER or }",
        ),
        (
            r#"{a="b",}"#,
            "parse error at line 1, col 8: syntax error: unexpected }, expecting IDENTIFIER",
        ),
        (
            r#"sum_over_time({a="b"} | unwrap bytes(x [5m])"#,
            "parse error at line 0, col 40: syntax error: unexpected RANGE, expecting )",
        ),
        (
            r#"sum_over_time({a="b"} | unwrap x)"#,
            "parse error at line 1, col 33: syntax error: unexpected ), expecting RANGE or |",
        ),
        (
            r#"count_over_time({a="b"}[5m] offset 5)"#,
            "parse error at line 1, col 36: syntax error: unexpected NUMBER, expecting DURATION",
        ),
        (
            r#"{a="b"} | drop"#,
            "parse error at line 1, col 15: syntax error: unexpected $end, expecting IDENTIFIER",
        ),
        (
            r#"{a="b"} | line_format x"#,
            "parse error at line 1, col 23: syntax error: unexpected IDENTIFIER, expecting STRING",
        ),
        (
            r#"{a="b"} | x=~5"#,
            "parse error at line 1, col 14: syntax error: unexpected NUMBER, expecting STRING",
        ),
        (
            r#"{a="b"} | x > -y"#,
            "parse error at line 1, col 16: syntax error: unexpected IDENTIFIER, expecting NUMBER",
        ),
        (
            r#"x * on(a) group_left (sum(y))"#,
            "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
        ),
        (
            r#"1 * on(a) group_left (sum(rate({a="b"}[1m])))"#,
            "parse error at line 1, col 23: syntax error: unexpected SUM, expecting IDENTIFIER or )",
        ),
        (
            r#"variants(count_over_time({app="api"}[5m])) of ({app="api"}[5m])"#,
            "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
        ),
        // __error__ is a string-only label.
        (
            r#"{a="b"} | json | __error__ > 0"#,
            "parse error : __error__ can only be compared with a string matcher (=, !=, =~, !~), e.g. __error__!=\"\"",
        ),
        (
            r#"sum_over_time({a="b"} | unwrap x | __error_details__ = ip("1.2.3.4") [5m])"#,
            "parse error : __error_details__ can only be compared with a string matcher (=, !=, =~, !~), e.g. __error_details__!=\"\"",
        ),
        // Numeric literals must be valid floats.
        (
            r#"{a="b"} | x > 0x10"#,
            "parse error : unable to parse literal as a float: strconv.ParseFloat: parsing \"0x10\": invalid syntax",
        ),
        (
            "0x10",
            "parse error : unable to parse literal as a float: strconv.ParseFloat: parsing \"0x10\": invalid syntax",
        ),
        (
            "vector(1e999)",
            "parse error : unable to parse vectorExpr as a float: strconv.ParseFloat: parsing \"1e999\": value out of range",
        ),
        // Sort takes no grouping labels.
        (
            r#"sort by (a) (count_over_time({a="b"}[1m]))"#,
            "parse error : sort and sort_desc doesn't allow grouping by ",
        ),
        // Stage checks.
        (
            r#"{a="b"} |= "x" |~ "(" | json"#,
            "parse error : stage '|= \"x\" |~ \"(\"' : error parsing regexp: missing closing ): `(`",
        ),
        (
            r#"{a="b"} |> "<a> x""#,
            "parse error : stage '|> \"<a> x\"' : named captures are not allowed: found '<a>'",
        ),
        (
            r#"{a="b"} |= ip("1.2.3")"#,
            "parse error : stage '|= ip(\"1.2.3\")' : ip: invalid pattern: \"1.2.3\"",
        ),
        (
            r#"{a="b"} | addr = ip("10.0.0.0/33")"#,
            "parse error : stage '| addr=ip(\"10.0.0.0/33\")' : ip: invalid pattern: \"10.0.0.0/33\"",
        ),
        (
            r#"{a=~"("}"#,
            "parse error : error parsing regexp: missing closing ): `(`",
        ),
        (
            r#"{a="b"} | x=~"a**""#,
            "parse error : error parsing regexp: invalid nested repetition operator: `**`",
        ),
    ];
    let mut failures = Vec::new();
    for (query, want) in cases {
        let got = match parse(query) {
            Ok(e) => format!("parsed: {e}"),
            Err(e) => e.to_string(),
        };
        if got != *want {
            failures.push(format!("{query}\n   got: {got}\n  want: {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn empty_compatible_selectors_are_rejected_anywhere() {
    for q in [
        r#"{app=""}"#,
        r#"{app=~""}"#,
        r#"{app=~".*"}"#,
        r#"{app!="x"}"#,
        r#"{app!~".+"}"#,
        r#"{app=~"a|"}"#,
        r#"{app=~"(?i)"}"#,
        r#"sum(count_over_time({app=""}[5m]))"#,
        r#"count_over_time({app="a"}[5m]) / count_over_time({app=""}[5m])"#,
        r#"vector(1) + count_over_time({app=~".*"}[5m])"#,
        r#"1 + count_over_time({app=~".+"}[5m]) + count_over_time({app=~".*"}[5m]) + 1"#,
        r#"count_over_time({app!~"bar|baz"}[5m])"#,
    ] {
        assert_eq!(err(q), EMPTY, "{q}");
    }
    for q in [
        r#"{app=~".+"}"#,
        r#"{app="", pod="a"}"#,
        r#"{app="a", pod=~".*"}"#,
        r#"{app=~"", pod!=""}"#,
        r#"max by(level)(rate({__error__!=""}[5m]))"#,
        r#"count_over_time({app=~"bar|baz"}[5m])"#,
    ] {
        assert!(parse(q).is_ok(), "{q}");
    }
}

#[test]
fn accepted_queries() {
    for q in [
        r#"topk(1, count_over_time({app="a"}[5m]))"#,
        r#"count_over_time(({app="a"})[5m])"#,
        r#"count_over_time(({app="a"} |= "x")[5m])"#,
        r#"count_over_time(({app="a"}[5m]))"#,
        r#"count_over_time((({app="a"} |= "x"[5m])))"#,
        r#"sum_over_time(({app="a"} | unwrap x)[5m])"#,
        r#"sum_over_time(({app="a"})[5m] offset 1m | unwrap x)"#,
        r#"sum_over_time({app="a"}[5m] offset 1m | json | unwrap x | x > 1)"#,
        r#"sum_over_time({app="a"} | unwrap x [5m] offset 1m)"#,
        r#"{app="a"} | label_format x=pod, y="{{.app}}""#,
        r#"{app="a"} | json foo="a", foo="b""#,
        "{app=\"a\"} | json status=`http.status`, method",
        r#"{app="a"} | logfmt foo, bar="baz""#,
        r#"{app="a"} | regexp "(?P<a>x)(y)""#,
        r#"{app="a"} | pattern "<_> <a> <_>""#,
        r#"{ foo = "bar" }|logfmt|rate="a""#,
        r#"{app="a"} | offsetx > 5"#,
        "SUM BY (env) (COUNT_OVER_TIME({app=\"web\"}[1h]))",
        r#"{app="a"} // a Go comment
           /* and a block comment */ |= "x""#,
        "1 > bool 2",
        r#"sum(count_over_time({a="b"}[1m])) > bool 1"#,
        r#"{a="b"} |= "x" or ip("1.2.3.4")"#,
        r#"{a="b"} |> "<_> foo <_>" !> "bar <_>""#,
        r#"sum(1)"#,
        r#"sum(1 + count_over_time({a="b"}[1m]))"#,
    ] {
        if let Err(e) = parse(q) {
            panic!("{q}: {e}");
        }
    }
}

#[test]
fn canonical_text_matches_loki_string() {
    let cases: &[(&str, &str)] = &[
        (r#"{ foo = "bar" }"#, r#"{foo="bar"}"#),
        (
            r#"{ namespace="buzz", foo !~ "bar" }"#,
            r#"{namespace="buzz", foo!~"bar"}"#,
        ),
        (
            r#"{app="foo"} |= "bar" | json | latency >= 250ms or ( status_code < 500 and status_code > 200)"#,
            r#"{app="foo"} |= "bar" | json | ( latency>=250ms or ( status_code<500 , status_code>200 ) )"#,
        ),
        (
            r#"{app="foo"} |= "bar" | json | latency >= 250ms or ( status_code < 500 and status_code > 200)
            | foo="bar" buzz!="blip", blop=~"boop" or fuzz==5"#,
            r#"{app="foo"} |= "bar" | json | ( latency>=250ms or ( status_code<500 , status_code>200 ) ) | ( foo="bar" , ( buzz!="blip" , ( blop=~"boop" or fuzz==5 ) ) )"#,
        ),
        (
            r#"{app="foo"} |= "bar" | json |  status_code < 500 or status_code > 200 and latency >= 250ms "#,
            r#"{app="foo"} |= "bar" | json | ( status_code<500 or ( status_code>200 , latency>=250ms ) )"#,
        ),
        (
            r#"{app="foo"} | json | (duration > 1s or status!= 200) and method!="POST""#,
            r#"{app="foo"} | json | ( ( duration>1s or status!=200 ) , method!="POST" )"#,
        ),
        (
            r#"{a="b"} | x="1" and y="2" or z="3""#,
            r#"{a="b"} | ( ( x="1" , y="2" ) or z="3" )"#,
        ),
        (
            r#"{a="b"} | x="1" , y="2" or z="3""#,
            r#"{a="b"} | ( x="1" , ( y="2" or z="3" ) )"#,
        ),
        (
            r#"{a="b"} | x="1" y="2" and z="3""#,
            r#"{a="b"} | ( x="1" , ( y="2" , z="3" ) )"#,
        ),
        (
            r#"{app="foo"} |= "bar" | json |  status_code < 500 or status_code > 200 and size >= 2.5KiB "#,
            r#"{app="foo"} |= "bar" | json | ( status_code<500 or ( status_code>200 , size>=2560B ) )"#,
        ),
        (
            r#"{app="foo"} |= "foo" or "bar" |= "buzz" or "fizz""#,
            r#"{app="foo"} |= "foo" or "bar" |= "buzz" or "fizz""#,
        ),
        (
            r#"{app="foo"} |> "foo" or "bar" or "baz""#,
            r#"{app="foo"} |> "foo" or "bar" or "baz""#,
        ),
        (
            r#"{app="foo"} != "a" or "b" or "c""#,
            r#"{app="foo"} != "a" != "b" != "c""#,
        ),
        (
            r#"{app="foo"} != "a" or ip("1.2.3.4")"#,
            r#"{app="foo"} != "a" != ip("1.2.3.4")"#,
        ),
        (
            "sum(count_over_time({foo=\"bar\"}[5m])) by (foo) + 1 / 2",
            r#"(sum by (foo)(count_over_time({foo="bar"}[5m])) + 0.5)"#,
        ),
        ("1 + -2 / 1", "-1"),
        ("1 + 1 - -1", "3"),
        ("1 >= 1 > 1", "0"),
        ("1 > 1 > bool 1", "0"),
        ("1 > 1 < 1", "1"),
        ("2 ^ 3 ^ 2", "512"),
        ("1 / 0", "(0 / 0)"),
        ("(1 + 2) * 3", "9"),
        ("-1.5e3", "-1500"),
        ("1000000", "1e+06"),
        ("vector(1)", "vector(1.000000)"),
        ("sum(vector(0))", "sum(vector(0.000000))"),
        (
            r#"label_replace(vector(0), "foo", "bar", "", "")"#,
            r#"label_replace(vector(0.000000),"foo","bar","","")"#,
        ),
        (
            r#"count_over_time({foo="bar"}[12h] |= "error")"#,
            r#"count_over_time({foo="bar"} |= "error"[12h])"#,
        ),
        (
            r#"count_over_time(({foo="bar"} |= "baz" |~ "blip" != "flip" !~ "flap")[5m])"#,
            r#"count_over_time({foo="bar"} |= "baz" |~ "blip" != "flip" !~ "flap"[5m])"#,
        ),
        (
            r#"max_over_time({app="foo"} | unwrap bar [5m] offset -5m) without (foo,bar)"#,
            r#"max_over_time({app="foo"} | unwrap bar[5m] offset -5m0s) without (foo,bar)"#,
        ),
        (
            r#"quantile_over_time(0.99998,{app="foo"} | unwrap duration(foo) | __error__ !~".+"[5m]) by (namespace,instance)"#,
            r#"quantile_over_time(0.99998,{app="foo"} | unwrap duration(foo) | __error__!~".+"[5m]) by (namespace,instance)"#,
        ),
        (
            r#"sum without (foo) (quantile_over_time(.99998,{app="foo"} | unwrap duration_seconds(foo) [5m]) by (a))"#,
            r#"sum without (foo)(quantile_over_time(0.99998,{app="foo"} | unwrap duration_seconds(foo)[5m]) by (a))"#,
        ),
        (
            r#"sum_over_time({namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms| unwrap bytes(foo) [5m])"#,
            r#"sum_over_time({namespace="tns"} |= "level=error" | json | ( foo>=5 , bar<25ms ) | unwrap bytes(foo)[5m])"#,
        ),
        (
            r#"min_over_time({app="foo"} | unwrap bar [5m]) by ()"#,
            r#"min_over_time({app="foo"} | unwrap bar[5m]) by ()"#,
        ),
        (
            r#"avg(count_over_time({ foo = "bar" }[5h])) by ()"#,
            r#"avg(count_over_time({foo="bar"}[5h]))"#,
        ),
        (
            r#"max without () (count_over_time({ foo = "bar" }[5h]))"#,
            r#"max without ()(count_over_time({foo="bar"}[5h]))"#,
        ),
        (
            r#"topk(10,count_over_time({ foo = "bar" }[5h])) without (bar)"#,
            r#"topk without (bar)(10,count_over_time({foo="bar"}[5h]))"#,
        ),
        (
            r#"bottomk(30 ,sum(rate({ foo = "bar" }[5h])) by (foo))"#,
            r#"bottomk(30,sum by (foo)(rate({foo="bar"}[5h])))"#,
        ),
        (
            r#"sum by (env) (count_over_time({app="api"}[10m])) / ignoring (app) sum by (env, app) (count_over_time({app="api"}[10m]))"#,
            r#"(sum by (env)(count_over_time({app="api"}[10m])) / ignoring (app)  sum by (env,app)(count_over_time({app="api"}[10m])))"#,
        ),
        (
            r#"sum by (env) (count_over_time({app="api"}[10m])) * on (env) group_left (app) max by (env, app) (count_over_time({app="api"}[10m]))"#,
            r#"(sum by (env)(count_over_time({app="api"}[10m])) * on (env) group_left (app) max by (env,app)(count_over_time({app="api"}[10m])))"#,
        ),
        (
            r#"sum(count_over_time({a="b"}[1m])) / on() group_right sum(count_over_time({a="b"}[1m]))"#,
            r#"(sum(count_over_time({a="b"}[1m])) / on () group_right sum(count_over_time({a="b"}[1m])))"#,
        ),
        (
            r#"sum(count_over_time({a="b"}[1m])) > bool 1"#,
            r#"(sum(count_over_time({a="b"}[1m])) > bool 1)"#,
        ),
        (
            r#"{ foo = "bar" , ip="foo"}|logfmt|= ip("127.0.0.1")|ip="2.3.4.5"|ip="abc"|ipaddr=ip("4.5.6.7")|ip=ip("6.7.8.9")"#,
            r#"{foo="bar", ip="foo"} | logfmt |= ip("127.0.0.1") | ip="2.3.4.5" | ip="abc" | ipaddr=ip("4.5.6.7") | ip=ip("6.7.8.9")"#,
        ),
        (
            r#"{addr="x"} | logfmt | addr!=ip("1.2.3.4")"#,
            r#"{addr="x"} | logfmt | addr!=ip("1.2.3.4")"#,
        ),
        (
            r#"{ foo = "bar" }|logfmt --strict --keep-empty|length>5d"#,
            r#"{foo="bar"} | logfmt --strict --keep-empty | length>120h0m0s"#,
        ),
        (
            r#"{app="foo"} | logfmt --strict --keep-empty msg="message", apiKey="api_key""#,
            r#"{app="foo"} | logfmt --strict --keep-empty msg="message",apiKey="api_key""#,
        ),
        (
            r#"{app="foo"} | json response_code, api_key="request.headers[\"X-API-KEY\"]""#,
            r#"{app="foo"} | json response_code="response_code",api_key="request.headers[\"X-API-KEY\"]""#,
        ),
        (
            r#"{app="foo"} | regexp "(?P<a>\\w+)" | pattern `<ip> <_>` | unpack | decolorize"#,
            r#"{app="foo"} | regexp "(?P<a>\\w+)" | pattern "<ip> <_>" | unpack | decolorize"#,
        ),
        (
            r#"{app="foo"} | line_format "blip{{ .foo }}blop" | label_format foo=bar,status_code="buzz{{.bar}}""#,
            r#"{app="foo"} | line_format "blip{{ .foo }}blop" | label_format foo=bar,status_code="buzz{{.bar}}""#,
        ),
        (
            r#"{a="b"} | drop level, method="GET", app=~"some-api.*", __error__"#,
            r#"{a="b"} | drop level,method="GET",app=~"some-api.*",__error__"#,
        ),
        (
            r#"{a="b"} | keep level, tenant"#,
            r#"{a="b"} | keep level,tenant"#,
        ),
        (
            "{app=\"foo\"}\n # |= \"bar\"\n | json",
            r#"{app="foo"} | json"#,
        ),
        (r#"{app="foo"} # |= "bar" | json"#, r#"{app="foo"}"#),
        (r#"{app="foo"} | json #"#, r#"{app="foo"} | json"#),
        (r##"{app="#"} | bar="#""##, r##"{app="#"} | bar="#""##),
        (
            r#"{container_name="app"} | foo=~".*""#,
            r#"{container_name="app"} | foo=~".*""#,
        ),
        (
            r#"{cluster="beep", namespace="boop"} | msg=~"\\w.*""#,
            r#"{cluster="beep", namespace="boop"} | msg=~`\w.*`"#,
        ),
        (
            "sum(rate({cluster=\"beep\", namespace=\"boop\"} | msg=~`.*?(GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) /loki/api/(?i)(\\d+[a-z]|[a-z]+\\d)\\w*/query_range`[1d]))",
            "sum(rate({cluster=\"beep\", namespace=\"boop\"} | msg=~`.*?(GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) /loki/api/(?i)(\\d+[a-z]|[a-z]+\\d)\\w*/query_range`[1d]))",
        ),
        (
            r#"{a="b"} | x > 1e21 | y == -0.5 | z = +3"#,
            r#"{a="b"} | x>1000000000000000000000 | y==-0.5 | z==3"#,
        ),
        (
            r#"{a="b"} | d > 1.5h | s >= 5MB | t < 1kB"#,
            r#"{a="b"} | d>1h30m0s | s>=5.0MB | t<1.0kB"#,
        ),
        (r#"{a="b"} | x > 0KB"#, r#"{a="b"} | x>0kB"#),
    ];
    let mut failures = Vec::new();
    for (query, want) in cases {
        match parse(query) {
            Ok(e) if e.to_string() == *want => {}
            Ok(e) => failures.push(format!("{query}\n   got: {e}\n  want: {want}")),
            Err(e) => failures.push(format!("{query}\n  error: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn binary_operators_follow_loki_precedence() {
    let q = |s: &str| s.replace('X', r#"count_over_time({a="b"}[1m])"#);
    let c = |s: &str| canon(&q(s));
    assert_eq!(c("X / X / X"), q("((X / X) / X)"));
    assert_eq!(c("X ^ X / X"), q("((X ^ X) / X)"));
    assert_eq!(c("X + X / X"), q("(X + (X / X))"));
    assert_eq!(c("X ^ X ^ X"), q("(X ^ (X ^ X))"));
    assert_eq!(c("X or X and X"), q("(X or (X and X))"));
    assert_eq!(c("X and X unless X"), q("((X and X) unless X)"));
    assert_eq!(c("X > X + X"), q("(X > (X + X))"));
    assert_eq!(c("X == X or X"), q("((X == X) or X)"));
    assert_eq!(c("X % X * X"), q("((X % X) * X)"));
}

#[test]
fn tree_shapes_for_the_evaluator() {
    let Expr::Log(log) = parse(r#"{app="api", env!="dev"} |= "a" or ip("10.0.0.0/8") != "b" | json x="a.b" | logfmt --strict | drop y"#).unwrap() else {
        panic!("log query expected")
    };
    assert_eq!(log.matchers().len(), 2);
    assert_eq!(log.matchers()[1].op, MatchOp::Neq);
    let filters: Vec<_> = log.line_filters().collect();
    assert_eq!(filters.len(), 2);
    assert_eq!(filters[0].op, LineFilterOp::Contains);
    assert_eq!(filters[0].values.len(), 2);
    assert!(!filters[0].values[0].ip && filters[0].values[1].ip);
    assert_eq!(filters[1].op, LineFilterOp::NotContains);
    assert!(
        matches!(&log.pipeline[2], Stage::Json(j) if j.params[0].label == "x" && j.params[0].expression == "a.b")
    );
    assert!(
        matches!(&log.pipeline[3], Stage::Logfmt(l) if l.strict && !l.keep_empty && l.params.is_empty())
    );
    assert!(
        matches!(&log.pipeline[4], Stage::Drop(d) if d.labels[0].name == "y" && d.labels[0].matcher.is_none())
    );

    let Expr::Sample(SampleExpr::RangeAggregation(r)) =
        parse(r#"quantile_over_time(0.9, {a="b"} | logfmt | unwrap bytes(size) | __error__="" [5m] offset -1h) by (x)"#).unwrap()
    else {
        panic!("range aggregation expected")
    };
    assert_eq!(r.op, RangeOp::QuantileOverTime);
    assert_eq!(r.param, Some(0.9));
    assert_eq!(r.range.range, 300_000_000_000);
    assert_eq!(r.range.offset, -3_600_000_000_000);
    let unwrap = r.range.unwrap.as_ref().unwrap();
    assert_eq!(unwrap.label, "size");
    assert_eq!(unwrap.conversion, Some(UnwrapConversion::Bytes));
    assert_eq!(unwrap.post_filters.len(), 1);
    assert_eq!(r.grouping.as_ref().unwrap().labels, vec!["x"]);

    let Expr::Sample(SampleExpr::VectorAggregation(v)) =
        parse(r#"topk(3, sum(rate({a="b"}[1m])))"#).unwrap()
    else {
        panic!("vector aggregation expected")
    };
    assert_eq!((v.op, v.param), (VectorOp::Topk, Some(3)));
    assert!(v.grouping.is_singleton());

    let Expr::Log(log) = parse(r#"{a="b"} | size > 2.5KiB | took <= 250ms | n != -3"#).unwrap()
    else {
        panic!()
    };
    let leaves: Vec<_> = log
        .pipeline
        .iter()
        .map(|s| match s {
            Stage::LabelFilter(f) => f.filter.clone(),
            _ => panic!("label filter expected"),
        })
        .collect();
    assert!(matches!(&leaves[0], LabelFilter::Bytes(b) if b.value == 2560 && b.op == CmpOp::Gt));
    assert!(
        matches!(&leaves[1], LabelFilter::Duration(d) if d.value == 250_000_000 && d.op == CmpOp::Lte)
    );
    assert!(matches!(&leaves[2], LabelFilter::Number(n) if n.value == -3.0 && n.op == CmpOp::Neq));

    let expr =
        parse(r#"sum(count_over_time({a="b"}[5m])) / sum(count_over_time({c="d"}[1h] offset 5m))"#)
            .unwrap();
    let groups = expr.as_sample().unwrap().matcher_groups();
    assert_eq!(groups.len(), 2);
    assert_eq!(
        (groups[1].range, groups[1].offset),
        (3_600_000_000_000, 300_000_000_000)
    );
}

#[test]
fn spans_point_into_the_query() {
    let q = r#"sum(count_over_time({app="api"} |= "x" [5m]))"#;
    let Expr::Sample(SampleExpr::VectorAggregation(v)) = parse(q).unwrap() else {
        panic!()
    };
    assert_eq!(&q[v.span.range()], q);
    let SampleExpr::RangeAggregation(r) = &v.inner else {
        panic!()
    };
    assert_eq!(
        &q[r.span.range()],
        r#"count_over_time({app="api"} |= "x" [5m])"#
    );
    assert_eq!(&q[r.range.log.selector.span.range()], r#"{app="api"}"#);
    assert_eq!(
        &q[r.range.log.selector.matcher_spans[0].range()],
        r#"app="api""#
    );
    assert_eq!(&q[r.range.log.pipeline[0].span().range()], r#"|= "x""#);
}

#[test]
fn api_entry_points() {
    let m = parse_matchers(r#"{app="foo",cluster=~".+bar"}"#, true).unwrap();
    assert_eq!(m.len(), 2);
    assert!(parse_matchers("{}", false).unwrap().is_empty());
    assert_eq!(parse_matchers("{}", true).unwrap_err().to_string(), EMPTY);
    let e = parse_matchers(r#"{app="a"} |= "x""#, false).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::NotMatchers);
    assert_eq!(e.to_string(), "only label matchers are supported");
    assert_eq!(
        parse_matchers(r#"{app=""} |= "foo""#, true)
            .unwrap_err()
            .to_string(),
        EMPTY
    );
    assert_eq!(
        parse_matchers(r#"{app="api""#, false)
            .unwrap_err()
            .to_string(),
        "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,"
    );
    assert!(parse_log_selector(r#"{app="a"} | logfmt"#, true).is_ok());
    assert_eq!(
        parse_log_selector("{}", true).unwrap_err().to_string(),
        EMPTY
    );
    assert!(parse_log_selector("{}", false).is_ok());
    assert_eq!(
        parse_log_selector(r#"count_over_time({app="a"}[5m])"#, true)
            .unwrap_err()
            .to_string(),
        "only log selector is supported"
    );
    assert_eq!(
        parse_sample_expr(r#"{app="a"}"#).unwrap_err().to_string(),
        "only sample expression supported"
    );
    assert!(parse_sample_expr("1").is_ok());
}

#[test]
fn input_size_is_limited() {
    let big = format!(r#"{{app="{}"}}"#, "x".repeat(MAX_QUERY_BYTES));
    assert_eq!(
        err(&big),
        "parse error : input size too long (131080 > 131072)"
    );
    let just_below = format!(r#"{{app="{}"}}"#, "x".repeat(MAX_QUERY_BYTES - 9));
    assert_eq!(just_below.len(), MAX_QUERY_BYTES - 1);
    assert!(parse(&just_below).is_ok());
}

#[test]
fn hostile_nesting_is_an_error_not_a_crash() {
    let deep_parens = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(err(&deep_parens).contains("nests too deeply"));
    let x = r#"count_over_time({a="b"}[1m])"#;
    let aggs = format!("{}{x}{}", "sum(".repeat(400), ")".repeat(400));
    assert!(err(&aggs).contains("nests too deeply"));
    let filters = format!(r#"{{a="b"}} | {}a="b"{}"#, "(".repeat(400), ")".repeat(400));
    assert!(err(&filters).contains("nests too deeply"));
    // Chains are not nesting, but their trees are bounded.
    let too_deep = "the query's expression tree is too deep (more than 512 chained operators or label filters); split the query";
    let long_chain = vec![x; 2000].join(" + ");
    assert!(err(&long_chain).contains(too_deep));
    let filters = vec![r#"a="b""#; 5000].join(" ");
    assert!(err(&format!(r#"{{a="b"}} | {filters}"#)).contains(too_deep));
    let ands = vec![r#"a="b""#; 5000].join(" and ");
    assert!(err(&format!(r#"{{a="b"}} | {ands}"#)).contains(too_deep));
}

/// Regression (audit of issue 3): every `+` and every `or` of a label
/// filter counted as a nesting level, so 129 terms were "too deep"; Loki
/// accepts them.
#[test]
fn regression_flat_chains_are_not_nesting() {
    let ones = vec!["1"; 129].join("+");
    assert_eq!(canon(&ones), "129");
    let ors = vec![r#"a="b""#; 129].join(" or ");
    assert!(parse(&format!(r#"{{app="api"}} | {ors}"#)).is_ok());
    let commas = vec!["a>1"; 129].join(", ");
    assert!(parse(&format!(r#"{{app="api"}} | {commas}"#)).is_ok());
    let x = r#"count_over_time({a="b"}[1m])"#;
    for op in [" + ", " ^ ", " or ", " * "] {
        let chain = vec![x; 129].join(op);
        let parsed = parse(&chain).unwrap();
        // Printing spells out every level, which is nesting when read back.
        assert!(parsed.to_string().matches('(').count() >= 2 * 129 - 1);
    }
    // At the bound exactly.
    let at_limit = vec![r#"a="b""#; MAX_EXPR_DEPTH + 1].join(" or ");
    assert!(parse(&format!(r#"{{app="api"}} | {at_limit}"#)).is_ok());
    let over = vec![r#"a="b""#; MAX_EXPR_DEPTH + 2].join(" or ");
    assert!(err(&format!(r#"{{app="api"}} | {over}"#)).contains("expression tree is too deep"));
}

/// The shift-reduce parser builds the trees precedence climbing and yacc
/// built: precedence, left and right associativity, and yacc's shifting on
/// `,` and juxtaposition.
#[test]
fn chains_keep_their_shape() {
    let x = |n: &str| format!(r#"count_over_time({{a="{n}"}}[1m])"#);
    let (a, b, c, d) = (x("a"), x("b"), x("c"), x("d"));
    let shape = |q: String| {
        canon(&q)
            .replace(&x("a"), "a")
            .replace(&x("b"), "b")
            .replace(&x("c"), "c")
            .replace(&x("d"), "d")
    };
    assert_eq!(shape(format!("{a} - {b} - {c}")), "((a - b) - c)");
    assert_eq!(shape(format!("{a} ^ {b} ^ {c}")), "(a ^ (b ^ c))");
    assert_eq!(
        shape(format!("{a} + {b} * {c} ^ {d}")),
        "(a + (b * (c ^ d)))"
    );
    assert_eq!(
        shape(format!("{a} * {b} + {c} * {d}")),
        "((a * b) + (c * d))"
    );
    assert_eq!(
        shape(format!("{a} or {b} and {c} > {d}")),
        "(a or (b and (c > d)))"
    );
    assert_eq!(
        shape(format!("{a} > bool {b} + {c} == {d}")),
        "((a > bool (b + c)) == d)"
    );
    let f = |q: &str| canon(&format!(r#"{{app="x"}} | {q}"#)).replace(r#"{app="x"} | "#, "");
    assert_eq!(f("a=1 or b=1 or c=1"), "( ( a==1 or b==1 ) or c==1 )");
    assert_eq!(f("a=1, b=1 or c=1"), "( a==1 , ( b==1 or c==1 ) )");
    assert_eq!(f("a=1 or b=1, c=1"), "( a==1 or ( b==1 , c==1 ) )");
    assert_eq!(
        f("a=1 or b=1 and c=1 or d=1"),
        "( ( a==1 or ( b==1 , c==1 ) ) or d==1 )"
    );
    assert_eq!(f("a=1 b=1 c=1"), "( a==1 , ( b==1 , c==1 ) )");
}

/// At the nesting limit, parsing fits in a 1 MiB stack even in debug builds
/// (tokio workers have 2 MiB).
#[test]
fn nesting_limit_fits_a_small_stack() {
    let x = r#"count_over_time({a="b"}[1m])"#;
    let n = MAX_NESTING - 3;
    let queries = [
        format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        format!("{}{x}{}", "sum(".repeat(n), ")".repeat(n)),
        format!(
            "{}{x}{}",
            "label_replace(".repeat(n),
            r#","a","b","c","d")"#.repeat(n)
        ),
        format!(r#"{{a="b"}} | {}a="b"{}"#, "(".repeat(n), ")".repeat(n)),
        format!(
            "{}{x}{}",
            "sum(1 + 2 * 3 ^ 4 > bool ".repeat(n),
            ")".repeat(n)
        ),
    ];
    for q in queries {
        let handle = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || parse(&q).map(|e| e.to_string().len()))
            .unwrap();
        assert!(handle.join().unwrap().is_ok());
    }
}

/// Runs `f` on a thread with a stack of `kib` KiB (tokio workers have
/// 2 MiB): a stack overflow aborts the test binary.
pub(crate) fn on_stack<T: Send + 'static>(kib: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(kib << 10)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// Queries of the maximum size made of one long chain parse on a 256 KiB
/// stack: parsing never recurses per operator. A tree at
/// [`MAX_EXPR_DEPTH`] prints, clones, compares and drops on a 1 MiB stack
/// in a debug build (derived `Clone` and `Drop` recurse per level).
#[test]
fn max_size_chains_fit_a_small_stack() {
    let terms = (MAX_QUERY_BYTES - 2) / 2;
    let ones = format!("1{}", "+1".repeat(terms));
    assert!(ones.len() < MAX_QUERY_BYTES);
    let pows = format!("1{}", "^1".repeat(terms));
    for (q, sum) in [(ones, terms + 1), (pows, 1)] {
        let text = on_stack(256, move || parse(&q).map(|e| e.to_string()));
        assert_eq!(text.unwrap(), sum.to_string());
    }
    let ors = format!(
        r#"{{app="api"}} | a="b"{}"#,
        r#" or a="b""#.repeat((MAX_QUERY_BYTES - 30) / 9)
    );
    assert!(ors.len() < MAX_QUERY_BYTES);
    let error = on_stack(256, move || parse(&ors).map(|e| e.to_string()));
    assert!(
        error
            .unwrap_err()
            .to_string()
            .contains("expression tree is too deep")
    );

    let x = r#"count_over_time({a="b"} | a="b"[1m])"#;
    let filters = vec![r#"a="b""#; MAX_EXPR_DEPTH + 1].join(" or ");
    let queries = [
        format!(r#"{{app="api"}} | {filters}"#),
        format!(
            r#"{{app="api"}} | {}"#,
            vec![r#"a="b""#; MAX_EXPR_DEPTH + 1].join(", ")
        ),
        vec![x; MAX_EXPR_DEPTH + 1].join(" + "),
        vec![x; MAX_EXPR_DEPTH + 1].join(" ^ "),
        format!(r#"sum(rate({{app="api"}} | {filters} [1m]))"#),
    ];
    for q in queries {
        on_stack(1024, move || {
            let e = parse(&q).unwrap();
            let copy = e.clone();
            assert_eq!(copy, e);
            assert!(!format!("{e:?}").is_empty());
            assert!(!e.to_string().is_empty());
            assert!(!pretty(&e).is_empty());
            drop(copy);
            drop(e);
        });
    }
}

/// Found by fuzzing: Loki's lexer turns a stray `!` into an IDENTIFIER, so
/// `| json!` parsed as a json parameter named `!`, which printed as
/// `| json !="!"` and read back as a line filter.
#[test]
fn fuzz_regression_stray_character_is_not_a_label_name() {
    let q = r#"min_over_time({service="content"} | json!| unwrap latency_ms | __error__="" [30m]) by (env)"#;
    assert_eq!(
        err(q),
        "parse error at line 1, col 41: syntax error: unexpected IDENTIFIER"
    );
    assert_eq!(
        err(r#"{a="b"} | drop @"#),
        "parse error at line 1, col 16: syntax error: unexpected @, expecting IDENTIFIER"
    );
}
