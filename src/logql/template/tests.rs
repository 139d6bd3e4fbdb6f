//! Engine tests: Loki's `fmt_test.go` tables, the conformance `format-*`
//! cases' template parts, and Go/sprig semantics per function.

use super::*;

/// A test entry: labels, line and timestamp.
struct Entry {
    labels: Vec<(&'static str, &'static str)>,
    line: &'static str,
    ts: i64,
}

impl TemplateContext for Entry {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
    fn line(&self) -> &str {
        self.line
    }
    fn timestamp(&self) -> Timestamp {
        Timestamp::from_nanos(self.ts)
    }
    fn for_each_label<'s>(&'s self, visit: &mut dyn FnMut(&'s str, &'s str)) {
        for (k, v) in &self.labels {
            visit(k, v);
        }
    }
}

fn entry(labels: &[(&'static str, &'static str)]) -> Entry {
    Entry {
        labels: labels.to_vec(),
        line: "",
        ts: 0,
    }
}

fn render(tmpl: &str, e: &Entry) -> Result<String, TemplateError> {
    let t = Template::parse(tmpl)?;
    let mut out = String::from("stale");
    t.execute(e, &mut out)?;
    Ok(out)
}

#[track_caller]
fn ok(tmpl: &str, e: &Entry) -> String {
    match render(tmpl, e) {
        Ok(s) => s,
        Err(err) => panic!("template {tmpl:?} failed: {err}"),
    }
}

#[test]
fn smoke() {
    let e = entry(&[("foo", "blip"), ("bar", "blop")]);
    assert_eq!(ok("foo{{.foo}}buzz{{  .bar  }}", &e), "fooblipbuzzblop");
}

/// Loki's `Test_lineFormatter_Format` table (`pkg/logql/log/fmt_test.go`).
#[test]
fn loki_line_formatter_table() {
    let blip = entry(&[("foo", "blip"), ("bar", "blop")]);
    let blip_upper = entry(&[("foo", "BLIp"), ("bar", "blop")]);
    let cases: &[(&str, &Entry, &str)] = &[
        ("foo{{.foo}}buzz{{  .bar  }}", &blip, "fooblipbuzzblop"),
        (
            r#"foo{{.foo}}buzz{{ Replace .bar "blop" "bar" -1 }}"#,
            &blip,
            "fooblipbuzzbar",
        ),
        (
            r#"foo{{.foo}}buzz{{ .bar | replace "blop" "bar" }}"#,
            &blip,
            "fooblipbuzzbar",
        ),
        ("{{.foo | title }}", &blip, "Blip"),
        (
            "{{.foo | substr 1 3 }} {{ .bar  | trunc 1 }} {{ .bar  | trunc 3 }}",
            &blip,
            "li b blo",
        ),
        (
            "{{.foo | lower }} {{ .bar  | upper }}",
            &blip_upper,
            "blip BLOP",
        ),
        (r#"{{ "foo" | repeat 3 }}"#, &blip_upper, "foofoofoo"),
        (
            r#"{{ "foo\n bar" | indent 4 }}"#,
            &blip_upper,
            "    foo\n     bar",
        ),
        (r#"{{ "foo" | nindent 2 }}"#, &blip_upper, "\n  foo"),
        (
            r#"{{ if  .foo | contains "p"}}yes{{end}}-{{ if  .foo | contains "z"}}no{{end}}"#,
            &blip_upper,
            "yes-",
        ),
        (
            r#"{{ if  .foo | hasPrefix "BL" }}yes{{end}}-{{ if  .foo | hasPrefix "p"}}no{{end}}"#,
            &blip_upper,
            "yes-",
        ),
        (
            r#"{{ if  .foo | hasSuffix "Ip" }}yes{{end}}-{{ if  .foo | hasSuffix "pw"}}no{{end}}"#,
            &blip_upper,
            "yes-",
        ),
        (
            r#"{{ regexReplaceAll "(p)" .foo "t" }}"#,
            &blip_upper,
            "BLIt",
        ),
        (
            r#"{{ regexReplaceAllLiteral "(p)" .foo "${1}" }}"#,
            &blip_upper,
            "BLI${1}",
        ),
        (
            "foo {{.foo | ToUpper }} buzz{{  .bar  }}",
            &blip,
            "foo BLIP buzzblop",
        ),
        (
            "{{ sub (unixEpoch (toDate \"2006-01-02\" \"2021-11-02\")) (unixEpoch (toDate \"2006-01-02\" \"2021-11-01\")) }}",
            &blip,
            "86400",
        ),
        (
            "{{ date \"2006-01-02\" (toDate \"2006-01-02\" \"2021-11-02\") }}",
            &blip,
            "2021-11-02",
        ),
        ("{{ div (unixEpoch now) (unixEpoch now) }}", &blip, "1"),
        ("{{ \"2.5\" | float64 | int | add 10}}", &blip, "12"),
    ];
    for (tmpl, e, want) in cases {
        assert_eq!(ok(tmpl, e), *want, "template {tmpl:?}");
    }
    let trim = entry(&[("foo", "  blip "), ("bar", "blop")]);
    assert_eq!(
        ok(
            r#"{{.foo | trim }} {{ .bar  | trimAll "op" }} {{ .bar  | trimPrefix "b" }} {{ .bar  | trimSuffix "p" }}"#,
            &trim
        ),
        "blip bl lop blo"
    );
    let missing = entry(&[("bar", "blop")]);
    assert_eq!(ok("foo {{.foo}}buzz{{  .bar  }}", &missing), "foo buzzblop");
    let math = entry(&[("foo", "1"), ("bar", "3"), ("baz", "10"), ("bazz", "20")]);
    assert_eq!(
        ok("{{ add .foo 1 | sub .bar | mul .baz | div .bazz}}", &math),
        "2"
    );
    let mathf = entry(&[
        ("foo", "1.5"),
        ("bar", "5"),
        ("baz", "10.5"),
        ("bazz", "20.2"),
    ]);
    assert_eq!(
        ok(
            "{{ addf .foo 1.5 | subf .bar 1.5 | mulf .baz | divf .bazz }}",
            &mathf
        ),
        "3.8476190476190477"
    );
    let round = entry(&[
        ("foo", "1.5"),
        ("bar", "3.5"),
        ("baz", "10.5"),
        ("bazz", "20.4"),
    ]);
    assert_eq!(
        ok(
            "{{ round (addf .foo 1.5 | subf .bar | mulf .baz | divf .bazz) 5 .2}}",
            &round
        ),
        "3.88572"
    );
    let minmax = entry(&[("foo", "5"), ("bar", "10"), ("baz", "15")]);
    assert_eq!(
        ok(
            "min is {{ min .foo .bar .baz }} and max is {{ max .foo .bar .baz }}",
            &minmax
        ),
        "min is 5 and max is 15"
    );
    let minmaxf = entry(&[("foo", "5.3"), ("bar", "10.5"), ("baz", "15.2")]);
    assert_eq!(
        ok(
            "minf is {{ minf .foo .bar .baz }} and maxf is {{maxf .foo .bar .baz}}",
            &minmaxf
        ),
        "minf is 5.3 and maxf is 15.2"
    );
    let ceil = entry(&[("foo", "5.3")]);
    assert_eq!(
        ok(
            "ceil is {{ ceil .foo }} and floor is {{floor .foo }}",
            &ceil
        ),
        "ceil is 6 and floor is 5"
    );
    assert_eq!(
        ok("mod is {{ mod .foo 3 }}", &entry(&[("foo", "20")])),
        "mod is 2"
    );
    let line = Entry {
        labels: vec![("bar", "2")],
        line: "1",
        ts: 1_656_353_124_120_000_000,
    };
    assert_eq!(ok("{{ __line__ }} bar {{ .bar }}", &line), "1 bar 2");
    assert_eq!(
        ok(
            "{{ __timestamp__ | date \"2006-01-02T15:04:05.00Z00:00\" }} bar {{ .bar }}",
            &line
        ),
        "2022-06-27T18:05:24.12Z00:00 bar 2"
    );
    assert_eq!(
        ok("{{ __timestamp__ | unixEpoch }} bar {{ .bar }}", &line),
        "1656353124 bar 2"
    );
    let dflt = entry(&[("foo", "blip"), ("bar", "")]);
    assert_eq!(
        ok(
            r#"{{.foo | default "-" }}{{.bar | default "-"}}{{.unknown | default "-"}}"#,
            &dflt
        ),
        "blip--"
    );
    // "err": a field given arguments fails at execution.
    let err = render(r#"{{.foo Replace "foo"}}"#, &blip).unwrap_err();
    assert!(matches!(err, TemplateError::Exec { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("foo is not a method but has arguments"),
        "{err}"
    );
}

/// Loki's `Test_labelsFormatter_Format` template parts (named `label`).
#[test]
fn loki_label_formatter_table() {
    let label = |tmpl: &str, e: &Entry| {
        let t = Template::parse_named("label", tmpl).unwrap();
        let mut out = String::new();
        t.execute(e, &mut out).unwrap();
        out
    };
    let e = entry(&[("foo", "blip"), ("bar", "blop")]);
    assert_eq!(label("{{.foo}} and {{.bar}}", &e), "blip and blop");
    assert_eq!(
        label("{{.foo | ToUpper }} and {{.bar}}", &e),
        "BLIP and blop"
    );
    assert_eq!(
        label("{{div .status 100 }}", &entry(&[("status", "200")])),
        "2"
    );
    assert_eq!(
        label(
            r#"{{.foo | default "-" }} and {{.bar}}"#,
            &entry(&[("bar", "blop")])
        ),
        "- and blop"
    );
    let err = Template::parse_named("label", "{{ div 1 0 }}")
        .unwrap()
        .execute(&e, &mut String::new())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "template: label:1:3: executing \"label\" at <div 1 0>: error calling div: runtime error: integer divide by zero"
    );
}

/// Loki's `TestLineFormatter_RequiredLabelNames`.
#[test]
fn loki_required_label_names() {
    let cases: &[(&str, &[&str])] = &[
        ("{{.foo}} and {{.bar}}", &["foo", "bar"]),
        (
            "{{ .foo | ToUpper | .buzz }} and {{.bar}}",
            &["foo", "buzz", "bar"],
        ),
        (
            r#"{{ regexReplaceAllLiteral "(p)" .foo "${1}" }}"#,
            &["foo"],
        ),
        (
            r#"{{ if  .foo | hasSuffix "Ip" }} {{.bar}} {{end}}-{{ if  .foo | hasSuffix "pw"}}no{{end}}"#,
            &["foo", "bar"],
        ),
        (r#"{{with .foo}}{{printf "%q" .}} {{end}}"#, &["foo"]),
        (
            r#"{{with .foo}}{{printf "%q" .}} {{else}} {{ .buzz | lower }} {{end}}"#,
            &["foo", "buzz"],
        ),
        // Like Loki, fields inside a chain (`(…).b`) are not listed.
        ("{{ (upper .a).b }} {{ $x := .c }}", &["c"]),
    ];
    for (tmpl, want) in cases {
        assert_eq!(
            Template::parse(tmpl).unwrap().referenced_labels(),
            *want,
            "{tmpl}"
        );
    }
}

#[test]
fn single_field_fast_path() {
    assert_eq!(
        Template::parse("{{.message}}").unwrap().single_field(),
        Some("message")
    );
    assert_eq!(
        Template::parse("{{ .message }}").unwrap().single_field(),
        Some("message")
    );
    for t in [
        "{{.a.b}}",
        "x{{.a}}",
        "{{.a | upper}}",
        "{{$x := .a}}",
        "{{ . }}",
    ] {
        assert_eq!(Template::parse(t).unwrap().single_field(), None, "{t}");
    }
    let e = entry(&[("message", "hello")]);
    assert_eq!(ok("{{.message}}", &e), "hello");
    assert_eq!(ok("{{.nope}}", &e), "");
}

fn scheduler_entry() -> Entry {
    Entry {
        labels: vec![
            ("caller", "scheduler/lease.go:295"),
            ("duration", "598ms"),
            ("job_id", "J-0384"),
            ("level", "info"),
            ("msg", "job finished"),
            ("queue", "high"),
            ("size", "1MiB"),
        ],
        line: "CRON[20119]: (root) CMD (/usr/local/bin/rotate-logs --keep 7) run=119 exit=1",
        ts: 1_793_534_340_000_000_000,
    }
}

/// The template parts of the conformance `format-*` cases, with Loki's outputs.
#[test]
fn conformance_format_cases() {
    let e = scheduler_entry();
    // format-002
    assert_eq!(
        ok(
            "{{ .level | upper }} {{ .msg | lower }} {{ trunc 5 .job_id }}",
            &e
        ),
        "INFO job finished J-038"
    );
    // format-004
    let status = |s: &'static str| entry(&[("statusCode", s)]);
    let t = "{{ if gt (int .statusCode) 499 }}ERR{{ else }}ok{{ end }} {{.statusCode}}";
    assert_eq!(ok(t, &status("204")), "ok 204");
    assert_eq!(ok(t, &status("503")), "ERR 503");
    // format-006
    let t = r#"{{ regexReplaceAll "(\\d+)ms" .duration "${1} milliseconds" }}"#;
    assert_eq!(ok(t, &e), "598 milliseconds");
    assert_eq!(ok(t, &entry(&[("duration", "731us")])), "731us");
    // format-007
    assert_eq!(
        ok("{{.missing}}|{{.job}}", &entry(&[("job", "cron")])),
        "|cron"
    );
    // format-009
    assert_eq!(
        ok(
            r#"{{ __timestamp__ | date "2006-01-02T15:04:05.000Z07:00" }} {{ __line__ | trunc 8 }}"#,
            &e
        ),
        "2026-11-01T11:59:00.000Z CRON[201"
    );
    // format-010
    assert_eq!(
        ok(
            r#"{{ .caller | urlencode }} {{ "a%2Fb" | urldecode }} {{ .queue | b64enc }}"#,
            &e
        ),
        "scheduler%2Flease.go%3A295 a/b aGlnaA=="
    );
    // format-011
    let t = "{{ bytes .size }} {{ duration .duration }}";
    let cases = [
        ("3KiB", "731us", "3072 0.000731"),
        ("900B", "5.7s", "900 5.7"),
        ("1MiB", "598ms", "1.048576e+06 0.598"),
        ("0.5MB", "257us", "500000 0.000257"),
        ("1.5KB", "941ms", "1500 0.941"),
        ("2MB", "198ms", "2e+06 0.198"),
        ("0.5MB", "10.8s", "500000 10.8"),
    ];
    for (size, dur, want) in cases {
        assert_eq!(ok(t, &entry(&[("size", size), ("duration", dur)])), want);
    }
    // format-013
    assert_eq!(ok("{{.msg}}", &e), "job finished");
    // format-015 / format-021
    assert_eq!(ok("{{.queue}}/{{.level}}", &e), "high/info");
    assert_eq!(ok("{{.queue}}-{{.level}}", &e), "high-info");
    // format-019
    assert_eq!(
        ok(
            r#"{{ toDateInZone "2006-01-02" "UTC" "2026-11-01" | unixEpoch }}"#,
            &e
        ),
        "1793491200"
    );
    // format-020
    assert_eq!(
        ok(r#"{{ unixToTime "1793527200" | date "15:04" }}"#, &e),
        "10:00"
    );
    // grafana-009
    let packed = Entry {
        labels: vec![("pod", "web-2")],
        line: "10.0.0.7 - - GET",
        ts: 0,
    };
    assert_eq!(
        ok("{{.pod}}: {{__line__}}", &packed),
        "web-2: 10.0.0.7 - - GET"
    );
}

/// Examples from Loki's `docs/sources/query/template_functions.md`.
#[test]
fn loki_docs_examples() {
    let e = entry(&[("path", "/a b/c d"), ("foo", "55")]);
    let cases: &[(&str, &str)] = &[
        (
            r#"{{ .path | replace " " "_" | trunc 5 | upper }}"#,
            "/A_B/",
        ),
        (
            r#"{{ if and (contains "he" "hello") (contains "llo" "hello") }} yes {{end}}"#,
            " yes ",
        ),
        (
            r#"{{ if contains "x" "hello" }} timeout {{else if contains "he" "hello"}} yes {{else}} no {{end}}"#,
            " yes ",
        ),
        (r#"{{ alignLeft 5 "hello world"}}"#, "hello"),
        (r#"{{ alignLeft 5 "hi"}}"#, "hi   "),
        (r#"{{ alignRight 5 "hello world"}}"#, "world"),
        (r#"{{ alignRight 5 "hi"}}"#, "   hi"),
        (r#"{{ default "-" "" }}"#, "-"),
        (r#"{{ default "-" "foo" }}"#, "foo"),
        (r#"{{fromJson "{\"foo\": 55}"}}"#, "map[foo:55]"),
        (r#"{{ lower  "HELLO"}}"#, "hello"),
        (r#"{{ repeat 3 "hello" }}"#, "hellohellohello"),
        (
            r#"{{ replace "hello" "world" "hello world" }}"#,
            "world world",
        ),
        (r#"{{ substr 0 5 "hello world"}}"#, "hello"),
        (r#"{{ substr 6 11 "hello world"}}"#, "world"),
        (r#"{{ title "hello world"}}"#, "Hello World"),
        (r#"{{ trim "   hello    " }}"#, "hello"),
        (r#"{{ trimAll "$" "$5.00" }}"#, "5.00"),
        (r#"{{ trimPrefix "-" "-hello" }}"#, "hello"),
        (r#"{{ trimSuffix "-" "hello-" }}"#, "hello"),
        (r#"{{ trunc 5 "hello world"}}"#, "hello"),
        (r#"{{ trunc -5 "hello world"}}"#, "world"),
        (r#"{{ upper  "hello"}}"#, "HELLO"),
        (r#"{{ if eq "hello" "hello" }} yes {{end}}"#, " yes "),
        (r#"{{ if hasPrefix "he" "hello" }} yes {{end}}"#, " yes "),
        ("{{ add 3 2 5 }}", "10"),
        ("{{ addf 3.5 2 5 }}", "10.5"),
        ("{{ ceil 123.001 }}", "124"),
        ("{{ div 10 2}}", "5"),
        ("{{ divf 10 2 4}}", "1.25"),
        (r#"{{ "3.5" | float64 }}"#, "3.5"),
        ("{{ floor 123.9999 }}", "123"),
        (r#"{{ "3" | int }}"#, "3"),
        ("{{ max 1 2 3 }}", "3"),
        ("{{ maxf 1 2.5 3 }}", "3"),
        ("{{ min 1 2 3 }}", "1"),
        ("{{ minf 1 2.5 3 }}", "1"),
        ("{{ mul 5 2 3}}", "30"),
        ("{{ mulf 5.5 2 2.5 }}", "27.5"),
        ("{{ mod 10 3}}", "1"),
        ("{{ round 123.555555 3 }}", "123.556"),
        ("{{ round 123.88571428571 5 .2 }}", "123.88572"),
        ("{{ round 123.88571428571 5 }}", "123.88571"),
        ("{{ sub 5 2 }}", "3"),
        ("{{ subf  5.5 2 1.5 }}", "2"),
        (r#"{{ count "a|b" "abab" }}"#, "4"),
        (r#"{{ count "o" "foo" }}"#, "2"),
        (r#"{{ regexReplaceAll "(a*)bc" "aabcx" "${1}a" }}"#, "aaax"),
        (
            r#"{{ printf "The IP address was %s" "129.168.1.1" }}"#,
            "The IP address was 129.168.1.1",
        ),
        (
            r#"{{printf "%-10.10s|%-5.5s|" "/a/509965767/alternative" "GET"}}"#,
            "/a/5099657|GET  |",
        ),
        (r#"{{ fromJson .foo }}"#, "55"),
        (
            r#"{{ toDateInZone "2006-01-02" "UTC" "2021-11-02" | unixEpochMillis }}"#,
            "1635811200000",
        ),
        (
            r#"{{ toDateInZone "2006-01-02" "UTC" "2021-11-02" | unixEpochNanos }}"#,
            "1635811200000000000",
        ),
    ];
    for (tmpl, want) in cases {
        assert_eq!(ok(tmpl, &e), *want, "template {tmpl:?}");
    }
}

#[test]
fn go_template_syntax() {
    let e = entry(&[("a", "1"), ("b", "two"), ("empty", "")]);
    let cases: &[(&str, &str)] = &[
        ("{{/* a comment */}}x", "x"),
        ("a  {{- /* trimmed */ -}}  b", "ab"),
        ("a \n {{- .b -}} \n c", "atwoc"),
        (
            "{{ $x := .b }}{{ $x }}-{{ $x = \"three\" }}{{ $x }}",
            "two-three",
        ),
        (
            "{{ if .empty }}yes{{ else if .a }}a{{ else }}no{{ end }}",
            "a",
        ),
        (
            "{{ with .b }}{{ . }}{{ end }}{{ with .empty }}x{{ else }}none{{ end }}",
            "twonone",
        ),
        ("{{ with $v := .b }}{{ $v }}{{ end }}", "two"),
        (
            "{{ range $i, $c := fromJson \"[\\\"x\\\",\\\"y\\\"]\" }}{{ $i }}={{ $c }};{{ end }}",
            "0=x;1=y;",
        ),
        (
            "{{ range fromJson \"[]\" }}x{{ else }}empty{{ end }}",
            "empty",
        ),
        (
            "{{ range $k, $v := fromJson \"{\\\"b\\\":1,\\\"a\\\":2}\" }}{{ $k }}{{ $v }}{{ end }}",
            "a2b1",
        ),
        (
            "{{ range $i := 5 }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if eq $i 3 }}{{ break }}{{ end }}{{ $i }}{{ end }}",
            "02",
        ),
        (
            "{{ range $k, $v := . }}{{ $k }}={{ $v }},{{ end }}",
            "a=1,b=two,empty=,",
        ),
        ("{{ . }}", "map[a:1 b:two empty:]"),
        ("{{ len . }} {{ len .b }}", "3 3"),
        ("{{ index . \"b\" }}{{ index . \"zz\" }}", "two"),
        (
            "{{ (fromJson \"{\\\"u\\\":{\\\"n\\\":\\\"x\\\"}}\").u.n }}",
            "x",
        ),
        (
            "{{ $m := fromJson \"{\\\"u\\\":{\\\"n\\\":3}}\" }}{{ $m.u.n }} {{ $m.u.zz }}",
            "3 <no value>",
        ),
        ("{{ `raw \\n` }}", "raw \\n"),
        (
            "{{ 'a' }} {{ 1.5 }} {{ 0x10 }} {{ 1e3 }} {{ true }} {{ -3 }}",
            "97 1.5 16 1000 true -3",
        ),
        (
            "{{ print 1 2 \"a\" 3 }}|{{ println \"a\" 1 }}",
            "1 2a3|a 1\n",
        ),
        (
            "{{ and 1 0 2 }} {{ or 0 \"\" \"x\" }} {{ not .empty }} {{ and .b .a }}",
            "0 x true 1",
        ),
        (
            "{{ eq .b \"x\" \"two\" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt 1.5 2.5 }} {{ ge \"b\" \"a\" }}",
            "true true true true false true",
        ),
        (
            "{{ html \"<a href='x'>&\" }}",
            "&lt;a href=&#39;x&#39;&gt;&amp;",
        ),
        ("{{ js \"it's <b>\" }}", "it\\'s \\u003Cb\\u003E"),
        ("{{ urlquery \"a b&c\" }}", "a+b%26c"),
        ("{{ slice \"hello\" 1 3 }} {{ index \"abc\" 1 }}", "el 98"),
        ("{{ .b | printf \"%s-%s\" \"x\" }}", "x-two"),
        (
            "{{ (__timestamp__).Unix }} {{ __timestamp__.Year }}",
            "0 1970",
        ),
        (
            "{{ printf \"%T %T %T %T\" (add 1 1) (int \"1\") (addf 1 1) now }}",
            "int64 int float64 time.Time",
        ),
        (
            "{{ fromJson \"not json\" }}|{{ fromJson \"null\" | default \"d\" }}",
            "<no value>|d",
        ),
        ("{{ __timestamp__ }}", "1970-01-01 00:00:00 +0000 UTC"),
    ];
    for (tmpl, want) in cases {
        assert_eq!(ok(tmpl, &e), *want, "template {tmpl:?}");
    }
}

#[test]
fn go_parse_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "{{ nope }}",
            "template: line:1: function \"nope\" not defined",
        ),
        ("{{ $x }}", "template: line:1: undefined variable \"$x\""),
        ("{{ end }}", "template: line:1: unexpected {{end}}"),
        ("{{ if .a }}", "template: line:1: unexpected EOF"),
        ("{{ }}", "template: line:1: missing value for command"),
        (
            "{{ if }}{{ end }}",
            "template: line:1: missing value for if",
        ),
        (
            "{{ break }}",
            "template: line:1: {{break}} outside {{range}}",
        ),
        (
            "{{ .a | \"x\" }}",
            "template: line:1: non executable command in pipeline stage 2",
        ),
        ("\n{{ .a", "template: line:2: unclosed action"),
        (
            "{{ define \"x\" }}{{ end }}",
            "template: line:1: {{define}} is not supported",
        ),
        (
            "{{ \"a\".b }}",
            "template: line:1: unexpected . after term \"\\\"a\\\"\"",
        ),
        (
            "{{ 99999999999999999999 }}",
            "template: line:1: integer overflow: \"99999999999999999999\"",
        ),
    ];
    for (tmpl, want) in cases {
        match Template::parse(tmpl) {
            Err(e) => assert_eq!(e.to_string(), *want, "template {tmpl:?}"),
            Ok(_) => panic!("template {tmpl:?} parsed"),
        }
    }
    // Variables declared inside a control structure end with it.
    assert!(Template::parse("{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}").is_err());
    assert!(Template::parse("{{ $x := 1 }}{{ if 1 }}{{ $x }}{{ end }}").is_ok());
    // Deep nesting is refused, not a stack overflow.
    let deep = "{{ if 1 }}".repeat(200) + &"{{ end }}".repeat(200);
    assert!(Template::parse(&deep).is_err());
}

#[test]
fn go_runtime_errors() {
    let e = entry(&[("a", "1"), ("s", "x")]);
    let cases: &[(&str, &str)] = &[
        (
            "{{ trunc .a .s }}",
            "wrong type for value; expected int; got string",
        ),
        (
            "{{ trunc (add 1 2) .s }}",
            "wrong type for value; expected int; got int64",
        ),
        ("{{ upper 5 }}", "expected string; found 5"),
        ("{{ trunc 1.5 .s }}", "expected integer; found 1.5"),
        ("{{ upper nil }}", "cannot assign nil to string"),
        (
            "{{ gt .a 5 }}",
            "error calling gt: incompatible types for comparison",
        ),
        (
            "{{ lt true false }}",
            "error calling lt: invalid type for comparison",
        ),
        (
            "{{ eq 1 }}",
            "error calling eq: missing argument for comparison",
        ),
        (
            "{{ upper }}",
            "wrong number of args for upper: want 1 got 0",
        ),
        (
            "{{ and }}",
            "wrong number of args for and: want at least 1 got 0",
        ),
        ("{{ .s.x }}", "can't evaluate field x in type string"),
        ("{{ nil }}", "nil is not a command"),
        (
            "{{ \"a\" \"b\" }}",
            "can't give argument to non-function \"a\"",
        ),
        (
            "{{ divf 1 0 }}",
            "error calling divf: decimal division by zero",
        ),
        (
            "{{ mod 1 0 }}",
            "error calling mod: runtime error: integer divide by zero",
        ),
        (
            "{{ regexReplaceAll \"(\" .s \"\" }}",
            "error calling regexReplaceAll: error parsing regexp",
        ),
        (
            "{{ bytes \"12 bananas\" }}",
            "error calling bytes: unhandled size name: bananas",
        ),
        (
            "{{ duration \"5\" }}",
            "error calling duration: time: missing unit in duration \"5\"",
        ),
        (
            "{{ urldecode \"%zz\" }}",
            "error calling urldecode: invalid URL escape \"%zz\"",
        ),
        (
            "{{ unixToTime \"123\" }}",
            "error calling unixToTime: unable to parse time '123': %!w(<nil>)",
        ),
        (
            "{{ repeat -1 \"a\" }}",
            "error calling repeat: strings: negative Repeat count",
        ),
        (
            "{{ substr 9 -1 \"abc\" }}",
            "error calling substr: runtime error: slice bounds out of range",
        ),
        (
            "{{ index . 1 }}",
            "error calling index: value has type int; should be string",
        ),
        ("{{ len 3 }}", "error calling len: len of type int"),
        (
            "{{ range $i, $e := 3 }}{{ end }}",
            "can't use 3 to iterate over more than one variable",
        ),
        ("{{ range true }}{{ end }}", "range can't iterate over true"),
        ("{{ repeat 100000000 \"abcd\" }}", "result larger than"),
    ];
    for (tmpl, want) in cases {
        match render(tmpl, &e) {
            Err(err @ TemplateError::Exec { .. }) => {
                assert!(err.to_string().contains(want), "template {tmpl:?}: {err}");
            }
            other => panic!("template {tmpl:?}: expected an execution error, got {other:?}"),
        }
    }
    let err = render("a\n  {{ upper 5 }}", &e).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template: line:2:11: executing \"line\" at <5>: expected string; found 5"
    );
}

#[test]
fn sprig_conversions_and_defaults() {
    let e = entry(&[
        ("n", "12"),
        ("f", "3.7"),
        ("hex", "0x1F"),
        ("z", "12.00"),
        ("bad", "abc"),
    ]);
    let cases: &[(&str, &str)] = &[
        (
            "{{ int .n }} {{ int .f }} {{ int .hex }} {{ int .z }} {{ int .bad }}",
            "12 0 31 12 0",
        ),
        (
            "{{ int 3.7 }} {{ int -3.7 }} {{ int true }} {{ int nil }}",
            "3 -3 1 0",
        ),
        (
            "{{ float64 .f }} {{ float64 .bad }} {{ float64 7 }}",
            "3.7 0 7",
        ),
        ("{{ add .n 1 }} {{ add .f 1 }} {{ add 1.9 1 }}", "13 1 2"),
        (
            "{{ addf .f 1 }} {{ addf 0.1 0.2 }} {{ subf 1 0.9 }}",
            "4.7 0.3 0.1",
        ),
        ("{{ max .n 5 30 }} {{ min .n \"x\" }}", "30 0"),
        (
            "{{ default 5 0 }} {{ default 5 3 }} {{ default \"d\" false }} {{ default \"d\" now | printf \"%T\" }}",
            "5 3 d time.Time",
        ),
        (
            "{{ 1e6 }} {{ mulf 1000 1000 }} {{ float64 0.00001 }}",
            "1e+06 1e+06 1e-05",
        ),
        (
            "{{ date \"2006\" 0 }} {{ date \"15:04\" (int \"90\") }}",
            "1970 00:01",
        ),
        (
            "{{ toDate \"2006-01-02\" \"bad\" | unixEpoch }}",
            "-62135596800",
        ),
        (
            "{{ eq (int .n) 12 }} {{ eq (add .n 0) 12 }} {{ eq 1.0 1.0 }}",
            "true true true",
        ),
    ];
    for (tmpl, want) in cases {
        assert_eq!(ok(tmpl, &e), *want, "template {tmpl:?}");
    }
}

#[test]
fn time_zones() {
    if jiff::tz::TimeZone::get("America/New_York").is_err() {
        // No tz database here: unknown zones fail with a clear message.
        let err = render(
            "{{ toDateInZone \"2006\" \"America/New_York\" \"2021\" }}",
            &entry(&[]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("time zone database not found"),
            "{err}"
        );
        return;
    }
    let e = entry(&[]);
    let cases: &[(&str, &str)] = &[
        (
            r#"{{ toDateInZone "2006-01-02 15:04" "America/New_York" "2021-07-01 12:00" | unixEpoch }}"#,
            "1625155200",
        ),
        (
            r#"{{ (toDateInZone "2006-01-02 15:04" "America/New_York" "2021-07-01 12:00").Format "15:04 MST -07:00" }}"#,
            "12:00 EDT -04:00",
        ),
        (
            r#"{{ toDateInZone "2006-01-02 15:04" "America/New_York" "2021-07-01 12:00" | date "15:04 MST" }}"#,
            "16:00 UTC",
        ),
        (
            r#"{{ toDateInZone "2006-01-02" "Not/AZone" "2021-07-01" | unixEpoch }}"#,
            "1625097600",
        ),
        (
            r#"{{ toDateInZone "2006-01-02T15:04:05Z07:00" "UTC" "2021-07-01T12:00:00+02:00" | unixEpoch }}"#,
            "1625133600",
        ),
    ];
    for (tmpl, want) in cases {
        assert_eq!(ok(tmpl, &e), *want, "template {tmpl:?}");
    }
}

#[test]
fn output_buffer_is_cleared_and_lines_borrowed() {
    let t = Template::parse("{{ .a }}-{{ __line__ }}").unwrap();
    let e = Entry {
        labels: vec![("a", "x")],
        line: "L",
        ts: 0,
    };
    let mut out = String::from("previous");
    t.execute(&e, &mut out).unwrap();
    assert_eq!(out, "x-L");
    t.execute(&e, &mut out).unwrap();
    assert_eq!(out, "x-L");
}

#[test]
fn template_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Template>();
}

mod properties {
    use proptest::prelude::*;

    use super::super::gotime::{GoTime, Zone, parse_duration};
    use super::super::value::{go_parse_float, write_go_float};
    use super::*;

    /// Characters that exercise every lexer and parser path.
    const ALPHABET: &[&str] = &[
        "{{",
        "}}",
        "{{- ",
        " -}}",
        "/*",
        "*/",
        "|",
        ".",
        ".a",
        ".b",
        "$",
        "$x",
        ":=",
        "=",
        "(",
        ")",
        "\"",
        "`",
        "'",
        ",",
        " ",
        "\n",
        "-",
        "1",
        "0x",
        "2.5e",
        "é",
        "世",
        "if",
        "else",
        "end",
        "range",
        "with",
        "break",
        "upper",
        "printf",
        "\"%d\"",
        "\"%s\"",
        "add",
        "eq",
        "index",
        "len",
        "nil",
        "true",
        "date",
        "trunc",
        "substr",
        "__line__",
        "__timestamp__",
        "fromJson",
        "\"{\\\"k\\\":[1]}\"",
        "default",
        "x",
    ];

    fn template_source() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(ALPHABET), 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn parse_and_execute_never_panic(src in template_source()) {
            if let Ok(t) = Template::parse(&src) {
                let e = Entry { labels: vec![("a", "é1"), ("b", "2")], line: "line 世", ts: 1 };
                let mut out = String::new();
                let _ = t.execute(&e, &mut out);
            }
        }

        #[test]
        fn time_layouts_never_panic(layout in "[-+ 0-9A-Za-z:.,_é]{0,24}", value in "[-+ 0-9A-Za-z:.,_é]{0,24}") {
            let _ = GoTime::parse_in(&layout, &value, &Zone::Utc);
            let _ = GoTime::from_unix(1_700_000_000).format(&layout);
            let _ = parse_duration(&value);
        }

        #[test]
        fn go_float_printing_round_trips(f in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            let mut s = String::new();
            write_go_float(&mut s, f);
            prop_assert_eq!(go_parse_float(&s), Some(f), "{}", s);
        }

        #[test]
        fn urlencode_then_urldecode_is_identity(s in "\\PC{0,20}") {
            let e = Entry { labels: vec![("s", Box::leak(s.clone().into_boxed_str()))], line: "", ts: 0 };
            prop_assert_eq!(ok("{{ .s | urlencode | urldecode }}", &e), s);
        }
    }
}
