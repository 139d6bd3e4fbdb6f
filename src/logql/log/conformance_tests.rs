//! Entries taken from the conformance corpus (Loki 3.8's recorded answers):
//! the input line, its stream labels and structured metadata, and the
//! labels and line Loki returned, for each pipeline below. Loki's
//! ingest-time `service_name` and `detected_level` are left out.

use crate::model::{Labels, MatchOp, MetadataPair, Timestamp};

use super::*;

struct Row {
    case: &'static str,
    stream: &'static [(&'static str, &'static str)],
    metadata: &'static [(&'static str, &'static str)],
    line: &'static str,
    out: &'static str,
    want: &'static [(&'static str, &'static str)],
}

/// The pipeline each case's query describes.
fn pipeline(case: &str) -> Pipeline {
    let mut p = Pipeline::default();
    let json_with = |p: &mut Pipeline, f: LabelFilter| {
        p.push(JsonParser::new());
        p.push(LabelFilterStage::new(f));
    };
    match case {
        "json-005" => p.push(JsonParser::new()),
        "json-002" => p.push(
            JsonExpressionParser::new(&[
                LabelExtraction::new("method", "req.method"),
                LabelExtraction::new("ua", r#"req.headers["user-agent"]"#),
                LabelExtraction::new("first_tag", "tags[0]"),
                LabelExtraction::new("model", "meta.model.name"),
            ])
            .unwrap(),
        ),
        "json-009" => json_with(
            &mut p,
            LabelFilter::string("__error__", MatchOp::Eq, "JSONParserErr").unwrap(),
        ),
        "json-011" => json_with(
            &mut p,
            LabelFilter::string("weird_key", MatchOp::Neq, "").unwrap(),
        ),
        "logfmt-002" => p.push(LogfmtParser::new(true, false)),
        "label_filter-001" => json_with(
            &mut p,
            LabelFilter::numeric("latency_ms", CompareOp::Gt, 500.0),
        ),
        "label_filter-011" => json_with(
            &mut p,
            LabelFilter::string("msg", MatchOp::Re, "Slow query.*").unwrap(),
        ),
        "label_filter-013" => {
            p.push(LogfmtParser::new(false, false));
            p.push(LabelFilterStage::new(LabelFilter::duration(
                "duration",
                CompareOp::Gte,
                10_000_000_000,
            )));
        }
        "label_filter-014" => json_with(
            &mut p,
            LabelFilter::duration("duration", CompareOp::Gt, 60_000_000_000),
        ),
        "regexp_pattern-004" => p.push(
            RegexpParser::new(
                r#"(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<method>\w+) (?P<path>\S+)"#,
            )
            .unwrap(),
        ),
        "regexp_pattern-009" => p.push(UnpackParser::new()),
        "drop_keep-009" => p.push(Decolorizer::new()),
        other => panic!("no pipeline for {other}"),
    }
    p
}

#[test]
fn entries_match_lokis_answers() {
    for row in ROWS {
        let stream = Labels::from_pairs(row.stream.iter().copied()).unwrap();
        let metadata: Vec<MetadataPair> = row
            .metadata
            .iter()
            .map(|(n, v)| MetadataPair::new(n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let mut sp = pipeline(row.case).for_stream(&stream);
        let e = sp
            .process(Timestamp::EPOCH, row.line.as_bytes(), &metadata)
            .unwrap_or_else(|| panic!("{}: entry dropped", row.case));
        assert_eq!(e.line, row.out.as_bytes(), "{}: line", row.case);
        let got: Vec<(&str, &str)> = e
            .labels
            .labels()
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(got, row.want, "{}: labels", row.case);
    }
}

const ROWS: &[Row] = &[
    Row {
        case: "json-002",
        stream: &[
            ("app", "api"),
            ("container", "backend-canary"),
            ("env", "prod"),
            ("job", "api-server"),
            ("service", "api"),
        ],
        metadata: &[],
        line: "ts=2026-11-01T11:59:48.931Z level=info caller=canary/queue.go:367 msg=\"lease renewed\" job_id=J-0046 queue=high duration=3.2s size=12KB attempt=1 user= dry_run err=\"lock held by \\\"worker-3\\\"\"",
        out: "ts=2026-11-01T11:59:48.931Z level=info caller=canary/queue.go:367 msg=\"lease renewed\" job_id=J-0046 queue=high duration=3.2s size=12KB attempt=1 user= dry_run err=\"lock held by \\\"worker-3\\\"\"",
        want: &[
            ("__error__", "JSONParserErr"),
            ("app", "api"),
            ("container", "backend-canary"),
            ("env", "prod"),
            ("job", "api-server"),
            ("service", "api"),
        ],
    },
    Row {
        case: "json-002",
        stream: &[
            ("app", "api"),
            ("container", "backend"),
            ("env", "prod"),
            ("job", "api-server"),
            ("service", "api"),
        ],
        metadata: &[],
        line: "{\"level\":30,\"time\":1793534358401,\"pid\":4242,\"hostname\":\"api-7f9c5d-abcde\",\"msg\":\"request completed\",\"event\":\"http.request\",\"reqId\":\"req-684ccc07\",\"userId\":\"u-1011\",\"traceId\":\"e06b064370c3c9f5cbaf076ec3b195f1\",\"latency_ms\":600.2,\"statusCode\":200,\"req\":{\"method\":\"DELETE\",\"url\":\"/api/v1/tasks\",\"headers\":{\"user-agent\":\"Go-http-client/1.1\",\"x-request-id\":\"a973c919dd5a8010\",\"accept\":\"application/json\"}},\"res\":{\"statusCode\":200}}",
        out: "{\"level\":30,\"time\":1793534358401,\"pid\":4242,\"hostname\":\"api-7f9c5d-abcde\",\"msg\":\"request completed\",\"event\":\"http.request\",\"reqId\":\"req-684ccc07\",\"userId\":\"u-1011\",\"traceId\":\"e06b064370c3c9f5cbaf076ec3b195f1\",\"latency_ms\":600.2,\"statusCode\":200,\"req\":{\"method\":\"DELETE\",\"url\":\"/api/v1/tasks\",\"headers\":{\"user-agent\":\"Go-http-client/1.1\",\"x-request-id\":\"a973c919dd5a8010\",\"accept\":\"application/json\"}},\"res\":{\"statusCode\":200}}",
        want: &[
            ("app", "api"),
            ("container", "backend"),
            ("env", "prod"),
            ("first_tag", ""),
            ("job", "api-server"),
            ("method", "DELETE"),
            ("model", ""),
            ("service", "api"),
            ("ua", "Go-http-client/1.1"),
        ],
    },
    Row {
        case: "json-005",
        stream: &[
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "prod"),
            ("job", "content"),
            ("service", "content"),
        ],
        metadata: &[],
        line: "{\"level\":30,\"time\":1793534359063,\"service\":\"content-renderer\",\"msg\":\"rendered page\",\"page\":\"/p/47\",\"trace_id\":\"2052dedfc59ee30064cf37c563b9314a\",\"latency_ms\":11,\"statusCode\":200,\"resp_size\":\"900B\",\"http.status\":200}",
        out: "{\"level\":30,\"time\":1793534359063,\"service\":\"content-renderer\",\"msg\":\"rendered page\",\"page\":\"/p/47\",\"trace_id\":\"2052dedfc59ee30064cf37c563b9314a\",\"latency_ms\":11,\"statusCode\":200,\"resp_size\":\"900B\",\"http.status\":200}",
        want: &[
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "prod"),
            ("http_status", "200"),
            ("job", "content"),
            ("latency_ms", "11"),
            ("level", "30"),
            ("msg", "rendered page"),
            ("page", "/p/47"),
            ("resp_size", "900B"),
            ("service", "content"),
            ("service_extracted", "content-renderer"),
            ("statusCode", "200"),
            ("time", "1793534359063"),
            ("trace_id", "2052dedfc59ee30064cf37c563b9314a"),
        ],
    },
    Row {
        case: "json-005",
        stream: &[
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "prod"),
            ("job", "content"),
            ("service", "content"),
        ],
        metadata: &[
            ("trace_id", "a691abb9825a2a769e4842228a7c7c02"),
            ("pod", "content-0"),
        ],
        line: "{\"level\":30,\"time\":1793534362586,\"service\":\"content-renderer\",\"msg\":\"rendered page\",\"page\":\"/p/29\",\"trace_id\":\"a691abb9825a2a769e4842228a7c7c02\",\"latency_ms\":111,\"statusCode\":200,\"resp_size\":\"12KB\"}",
        out: "{\"level\":30,\"time\":1793534362586,\"service\":\"content-renderer\",\"msg\":\"rendered page\",\"page\":\"/p/29\",\"trace_id\":\"a691abb9825a2a769e4842228a7c7c02\",\"latency_ms\":111,\"statusCode\":200,\"resp_size\":\"12KB\"}",
        want: &[
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "prod"),
            ("job", "content"),
            ("latency_ms", "111"),
            ("level", "30"),
            ("msg", "rendered page"),
            ("page", "/p/29"),
            ("pod", "content-0"),
            ("resp_size", "12KB"),
            ("service", "content"),
            ("service_extracted", "content-renderer"),
            ("statusCode", "200"),
            ("time", "1793534362586"),
            ("trace_id", "a691abb9825a2a769e4842228a7c7c02"),
            ("trace_id_extracted", "a691abb9825a2a769e4842228a7c7c02"),
        ],
    },
    Row {
        case: "json-009",
        stream: &[
            ("app", "api"),
            ("container", "backend"),
            ("env", "development"),
            ("job", "api-server"),
            ("service", "api"),
        ],
        metadata: &[],
        line: "{\"level\":\"info\",\"msg\":\"truncated line",
        out: "{\"level\":\"info\",\"msg\":\"truncated line",
        want: &[
            ("__error__", "JSONParserErr"),
            (
                "__error_details__",
                "Value is string, but can't find closing '\"' symbol",
            ),
            ("app", "api"),
            ("container", "backend"),
            ("env", "development"),
            ("job", "api-server"),
            ("level", "info"),
            ("service", "api"),
        ],
    },
    Row {
        case: "json-009",
        stream: &[
            ("app", "api"),
            ("container", "backend"),
            ("env", "development"),
            ("job", "api-server"),
            ("service", "api"),
        ],
        metadata: &[],
        line: "Debugger attached.",
        out: "Debugger attached.",
        want: &[
            ("__error__", "JSONParserErr"),
            (
                "__error_details__",
                "Value looks like object, but can't find closing '}' symbol",
            ),
            ("app", "api"),
            ("container", "backend"),
            ("env", "development"),
            ("job", "api-server"),
            ("service", "api"),
        ],
    },
    Row {
        case: "json-011",
        stream: &[
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "development"),
            ("job", "content"),
            ("service", "content"),
        ],
        metadata: &[],
        line: "{\"level\":30,\"time\":1793533946925,\"service\":\"content-renderer\",\"msg\":\"generation finished\",\"page\":\"/p/121\",\"trace_id\":\"c0c04d21de8528994fac7ce49bf82ddb\",\"latency_ms\":226,\"statusCode\":200,\"resp_size\":\"1.5MB\",\" weird key \":\"spaces\"}",
        out: "{\"level\":30,\"time\":1793533946925,\"service\":\"content-renderer\",\"msg\":\"generation finished\",\"page\":\"/p/121\",\"trace_id\":\"c0c04d21de8528994fac7ce49bf82ddb\",\"latency_ms\":226,\"statusCode\":200,\"resp_size\":\"1.5MB\",\" weird key \":\"spaces\"}",
        want: &[
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "development"),
            ("job", "content"),
            ("latency_ms", "226"),
            ("level", "30"),
            ("msg", "generation finished"),
            ("page", "/p/121"),
            ("resp_size", "1.5MB"),
            ("service", "content"),
            ("service_extracted", "content-renderer"),
            ("statusCode", "200"),
            ("time", "1793533946925"),
            ("trace_id", "c0c04d21de8528994fac7ce49bf82ddb"),
            ("weird_key", "spaces"),
        ],
    },
    Row {
        case: "logfmt-002",
        stream: &[
            ("app", "worker"),
            ("container", "scheduler"),
            ("env", "prod"),
            ("job", "scheduler"),
            ("service", "scheduler"),
        ],
        metadata: &[],
        line: "ts=2026-11-01T11:58:46.026Z level=debug caller=scheduler/queue.go:241 msg=\"lease renewed\" job_id=J-0160 queue=high duration=272us size=1MiB attempt=1 err=\"lock held by \\\"worker-3\\\"\" broken=\"unterminated value",
        out: "ts=2026-11-01T11:58:46.026Z level=debug caller=scheduler/queue.go:241 msg=\"lease renewed\" job_id=J-0160 queue=high duration=272us size=1MiB attempt=1 err=\"lock held by \\\"worker-3\\\"\" broken=\"unterminated value",
        want: &[
            ("__error__", "LogfmtParserErr"),
            (
                "__error_details__",
                "logfmt syntax error at pos 209 : unterminated quoted value",
            ),
            ("app", "worker"),
            ("attempt", "1"),
            ("caller", "scheduler/queue.go:241"),
            ("container", "scheduler"),
            ("duration", "272us"),
            ("env", "prod"),
            ("err", "lock held by \"worker-3\""),
            ("job", "scheduler"),
            ("job_id", "J-0160"),
            ("level", "debug"),
            ("msg", "lease renewed"),
            ("queue", "high"),
            ("service", "scheduler"),
            ("size", "1MiB"),
            ("ts", "2026-11-01T11:58:46.026Z"),
        ],
    },
    Row {
        case: "regexp_pattern-004",
        stream: &[
            ("app", "web"),
            ("container", "apache"),
            ("env", "prod"),
            ("job", "apache"),
            ("service", "web"),
        ],
        metadata: &[],
        line: "10.0.0.12 - - [01/Nov/2026:11:59:39 +0000] \"GET /index.html HTTP/1.0\" 200 9588 \"-\" \"curl/8.5.0\"",
        out: "10.0.0.12 - - [01/Nov/2026:11:59:39 +0000] \"GET /index.html HTTP/1.0\" 200 9588 \"-\" \"curl/8.5.0\"",
        want: &[
            ("app", "web"),
            ("container", "apache"),
            ("env", "prod"),
            ("ip", "10.0.0.12"),
            ("job", "apache"),
            ("method", "GET"),
            ("path", "/index.html"),
            ("service", "web"),
            ("ts", "01/Nov/2026:11:59:39 +0000"),
            ("user", "-"),
        ],
    },
    Row {
        case: "regexp_pattern-009",
        stream: &[
            ("app", "web"),
            ("container", "packer"),
            ("env", "prod"),
            ("job", "packed"),
            ("service", "web"),
        ],
        metadata: &[],
        line: "{\"pod\":\"web-0\",\"node\":\"node-a\",\"_entry\":\"172.16.0.3 - - [01/Nov/2026:11:54:05 +0000] \\\"HEAD /index.html HTTP/1.0\\\" 200 2989 \\\"http://example.com/start.html\\\" \\\"curl/8.5.0\\\"\",\"level\":\"info\"}",
        out: "172.16.0.3 - - [01/Nov/2026:11:54:05 +0000] \"HEAD /index.html HTTP/1.0\" 200 2989 \"http://example.com/start.html\" \"curl/8.5.0\"",
        want: &[
            ("app", "web"),
            ("container", "packer"),
            ("env", "prod"),
            ("job", "packed"),
            ("level", "info"),
            ("node", "node-a"),
            ("pod", "web-0"),
            ("service", "web"),
        ],
    },
    Row {
        case: "label_filter-001",
        stream: &[
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "staging"),
            ("job", "content"),
            ("service", "content"),
        ],
        metadata: &[],
        line: "{\"level\":30,\"time\":1793534108310,\"service\":\"content-renderer\",\"msg\":\"cache refresh\",\"page\":\"/p/120\",\"trace_id\":\"27ec9fb834e08077072348d36c500648\",\"latency_ms\":\"55ms\",\"statusCode\":200,\"resp_size\":\"3MB\",\"2fa\":true}",
        out: "{\"level\":30,\"time\":1793534108310,\"service\":\"content-renderer\",\"msg\":\"cache refresh\",\"page\":\"/p/120\",\"trace_id\":\"27ec9fb834e08077072348d36c500648\",\"latency_ms\":\"55ms\",\"statusCode\":200,\"resp_size\":\"3MB\",\"2fa\":true}",
        want: &[
            ("_2fa", "true"),
            ("__error__", "LabelFilterErr"),
            (
                "__error_details__",
                "strconv.ParseFloat: parsing \"55ms\": invalid syntax",
            ),
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "staging"),
            ("job", "content"),
            ("latency_ms", "55ms"),
            ("level", "30"),
            ("msg", "cache refresh"),
            ("page", "/p/120"),
            ("resp_size", "3MB"),
            ("service", "content"),
            ("service_extracted", "content-renderer"),
            ("statusCode", "200"),
            ("time", "1793534108310"),
            ("trace_id", "27ec9fb834e08077072348d36c500648"),
        ],
    },
    Row {
        case: "label_filter-001",
        stream: &[
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "development"),
            ("job", "content"),
            ("service", "content"),
        ],
        metadata: &[],
        line: "{\"level\":30,\"time\":1793534033570,\"service\":\"content-renderer\",\"msg\":\"generation finished\",\"page\":\"/p/125\",\"trace_id\":\"144ef765a55912f68c66957cf6a49355\",\"latency_ms\":816,\"statusCode\":200,\"resp_size\":\"900B\",\"2fa\":true}",
        out: "{\"level\":30,\"time\":1793534033570,\"service\":\"content-renderer\",\"msg\":\"generation finished\",\"page\":\"/p/125\",\"trace_id\":\"144ef765a55912f68c66957cf6a49355\",\"latency_ms\":816,\"statusCode\":200,\"resp_size\":\"900B\",\"2fa\":true}",
        want: &[
            ("_2fa", "true"),
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "development"),
            ("job", "content"),
            ("latency_ms", "816"),
            ("level", "30"),
            ("msg", "generation finished"),
            ("page", "/p/125"),
            ("resp_size", "900B"),
            ("service", "content"),
            ("service_extracted", "content-renderer"),
            ("statusCode", "200"),
            ("time", "1793534033570"),
            ("trace_id", "144ef765a55912f68c66957cf6a49355"),
        ],
    },
    Row {
        case: "label_filter-001",
        stream: &[
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "prod"),
            ("job", "content"),
            ("service", "content"),
        ],
        metadata: &[
            ("trace_id", "ad9e16bc7f01ab1bdd02d6da1e1805a6"),
            ("pod", "content-2"),
        ],
        line: "{\"level\":30,\"time\":1793534241984,\"service\":\"content-renderer\",\"msg\":\"cache refresh\",\"page\":\"/p/136\",\"trace_id\":\"ad9e16bc7f01ab1bdd02d6da1e1805a6\",\"latency_ms\":1596,\"statusCode\":200,\"resp_size\":\"3MB\",\"2fa\":true}",
        out: "{\"level\":30,\"time\":1793534241984,\"service\":\"content-renderer\",\"msg\":\"cache refresh\",\"page\":\"/p/136\",\"trace_id\":\"ad9e16bc7f01ab1bdd02d6da1e1805a6\",\"latency_ms\":1596,\"statusCode\":200,\"resp_size\":\"3MB\",\"2fa\":true}",
        want: &[
            ("_2fa", "true"),
            ("app", "content"),
            ("container", "content-svc"),
            ("env", "prod"),
            ("job", "content"),
            ("latency_ms", "1596"),
            ("level", "30"),
            ("msg", "cache refresh"),
            ("page", "/p/136"),
            ("pod", "content-2"),
            ("resp_size", "3MB"),
            ("service", "content"),
            ("service_extracted", "content-renderer"),
            ("statusCode", "200"),
            ("time", "1793534241984"),
            ("trace_id", "ad9e16bc7f01ab1bdd02d6da1e1805a6"),
            ("trace_id_extracted", "ad9e16bc7f01ab1bdd02d6da1e1805a6"),
        ],
    },
    Row {
        case: "label_filter-011",
        stream: &[
            ("app", "api"),
            ("container", "backend"),
            ("env", "development"),
            ("job", "api-server"),
            ("service", "api"),
        ],
        metadata: &[],
        line: "{\"level\":\"debug\",\"time\":1793533987262,\"pid\":4242,\"hostname\":\"dev-laptop\",\"msg\":\"Slow query detected\",\"event\":\"db.slow_query\",\"query\":\"SELECT * FROM \\\"tasks\\\" WHERE \\\"userId\\\" = $1 AND status = 'open'\",\"duration_ms\":2658,\"latency_ms\":2658,\"traceId\":\"013c0cb24041edcaa9c8f682e1641bd0\",\"rows\":4012}",
        out: "{\"level\":\"debug\",\"time\":1793533987262,\"pid\":4242,\"hostname\":\"dev-laptop\",\"msg\":\"Slow query detected\",\"event\":\"db.slow_query\",\"query\":\"SELECT * FROM \\\"tasks\\\" WHERE \\\"userId\\\" = $1 AND status = 'open'\",\"duration_ms\":2658,\"latency_ms\":2658,\"traceId\":\"013c0cb24041edcaa9c8f682e1641bd0\",\"rows\":4012}",
        want: &[
            ("app", "api"),
            ("container", "backend"),
            ("duration_ms", "2658"),
            ("env", "development"),
            ("event", "db.slow_query"),
            ("hostname", "dev-laptop"),
            ("job", "api-server"),
            ("latency_ms", "2658"),
            ("level", "debug"),
            ("msg", "Slow query detected"),
            ("pid", "4242"),
            (
                "query",
                "SELECT * FROM \"tasks\" WHERE \"userId\" = $1 AND status = 'open'",
            ),
            ("rows", "4012"),
            ("service", "api"),
            ("time", "1793533987262"),
            ("traceId", "013c0cb24041edcaa9c8f682e1641bd0"),
        ],
    },
    Row {
        case: "label_filter-013",
        stream: &[
            ("app", "worker"),
            ("container", "scheduler"),
            ("env", "prod"),
            ("job", "scheduler"),
            ("service", "scheduler"),
        ],
        metadata: &[],
        line: "ts=2026-11-01T11:58:41.811Z level=warn caller=scheduler/lease.go:176 msg=\"could not acquire lock\" job_id=J-0172 queue=low duration=10.9s size=12KB attempt=1 user= dry_run =orphan",
        out: "ts=2026-11-01T11:58:41.811Z level=warn caller=scheduler/lease.go:176 msg=\"could not acquire lock\" job_id=J-0172 queue=low duration=10.9s size=12KB attempt=1 user= dry_run =orphan",
        want: &[
            ("app", "worker"),
            ("attempt", "1"),
            ("caller", "scheduler/lease.go:176"),
            ("container", "scheduler"),
            ("duration", "10.9s"),
            ("env", "prod"),
            ("job", "scheduler"),
            ("job_id", "J-0172"),
            ("level", "warn"),
            ("msg", "could not acquire lock"),
            ("queue", "low"),
            ("service", "scheduler"),
            ("size", "12KB"),
            ("ts", "2026-11-01T11:58:41.811Z"),
        ],
    },
    Row {
        case: "label_filter-014",
        stream: &[
            ("app", "worker"),
            ("container", "worker"),
            ("env", "prod"),
            ("job", "worker"),
            ("level", "debug"),
            ("service", "worker"),
        ],
        metadata: &[],
        line: "{\"event\":\"heartbeat\",\"level\":\"debug\",\"timestamp\":\"2026-11-01T11:58:31.205432Z\",\"logger\":\"worker.tasks\",\"taskId\":\"task-0143\",\"queue\":\"high\",\"attempts\":1,\"duration\":\"2m18s\",\"ok\":true}",
        out: "{\"event\":\"heartbeat\",\"level\":\"debug\",\"timestamp\":\"2026-11-01T11:58:31.205432Z\",\"logger\":\"worker.tasks\",\"taskId\":\"task-0143\",\"queue\":\"high\",\"attempts\":1,\"duration\":\"2m18s\",\"ok\":true}",
        want: &[
            ("app", "worker"),
            ("attempts", "1"),
            ("container", "worker"),
            ("duration", "2m18s"),
            ("env", "prod"),
            ("event", "heartbeat"),
            ("job", "worker"),
            ("level", "debug"),
            ("level_extracted", "debug"),
            ("logger", "worker.tasks"),
            ("ok", "true"),
            ("queue", "high"),
            ("service", "worker"),
            ("taskId", "task-0143"),
            ("timestamp", "2026-11-01T11:58:31.205432Z"),
        ],
    },
    Row {
        case: "drop_keep-009",
        stream: &[
            ("app", "web"),
            ("container", "frontend"),
            ("env", "development"),
            ("job", "webpack"),
            ("service", "web"),
        ],
        metadata: &[],
        line: "\u{001b}[1m\u{001b}[31mERROR\u{001b}[39m\u{001b}[22m in ./src/components/LogRow.tsx",
        out: "ERROR in ./src/components/LogRow.tsx",
        want: &[
            ("app", "web"),
            ("container", "frontend"),
            ("env", "development"),
            ("job", "webpack"),
            ("service", "web"),
        ],
    },
];
