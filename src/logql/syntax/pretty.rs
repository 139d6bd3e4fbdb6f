//! Multi-line formatting of a query, as Loki's `prettier.go` does for
//! `GET/POST /loki/api/v1/format_query`.
//!
//! An expression whose canonical text fits in the line width (100 by
//! default) is printed on one line; otherwise its children go on their own
//! lines, indented two spaces per level. Owns nothing but that layout; the
//! one-line text comes from `print`.
//!
//! Deviations from Loki, where its output would change the query: a split
//! line filter keeps its `or` alternatives (Loki drops them), and `on ()` /
//! `ignoring () group_left` keep their modifiers.

use super::ast::{Expr, Grouping, LineFilter, LogExpr, LogRange, SampleExpr, Stage, Unwrap};
use super::golang::{self, quote};
use super::print::binary_op_text_pretty;

/// Loki's `MaxCharsPerLine`.
pub const DEFAULT_WIDTH: usize = 100;

/// The query formatted as Loki's `syntax.Prettify`.
pub fn pretty(expr: &Expr) -> String {
    pretty_with_width(expr, DEFAULT_WIDTH)
}

/// [`pretty`] with another line width.
pub fn pretty_with_width(expr: &Expr, width: usize) -> String {
    let p = Pretty { width };
    match expr {
        Expr::Log(l) => p.log(l, 0),
        Expr::Sample(s) => p.sample(s, 0),
    }
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

struct Pretty {
    width: usize,
}

impl Pretty {
    fn fits(&self, text: &str) -> bool {
        text.len() <= self.width
    }

    fn log(&self, l: &LogExpr, level: usize) -> String {
        let text = l.to_string();
        if l.pipeline.is_empty() || self.fits(&text) {
            return indent(level) + &text;
        }
        let mut out = indent(level) + &l.selector.to_string();
        let mut i = 0;
        while i < l.pipeline.len() {
            out.push('\n');
            if let Stage::LineFilter(_) = &l.pipeline[i] {
                let run: Vec<&LineFilter> = l.pipeline[i..]
                    .iter()
                    .map_while(|s| match s {
                        Stage::LineFilter(f) => Some(f),
                        _ => None,
                    })
                    .collect();
                i += run.len();
                out.push_str(&self.line_filters(&run, level + 1));
            } else {
                out.push_str(&self.stage(&l.pipeline[i], level + 1));
                i += 1;
            }
        }
        out
    }

    /// Consecutive line filters form one expression in Loki: on one line
    /// when they fit, else one filter per line at the same level.
    fn line_filters(&self, run: &[&LineFilter], level: usize) -> String {
        let texts: Vec<String> = run.iter().map(|f| f.to_string()).collect();
        let joined = texts.join(" ");
        if self.fits(&joined) {
            return indent(level) + &joined;
        }
        texts
            .iter()
            .map(|t| indent(level) + t)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn stage(&self, stage: &Stage, level: usize) -> String {
        match stage {
            // Loki's DecolorizeExpr.Pretty ignores the level.
            Stage::Decolorize(_) => stage.to_string(),
            _ => indent(level) + &stage.to_string(),
        }
    }

    fn unwrap(&self, u: &Unwrap, level: usize) -> String {
        let mut out = indent(level);
        match u.conversion {
            Some(c) => out.push_str(&format!("| unwrap {}({})", c.as_str(), u.label)),
            None => out.push_str(&format!("| unwrap {}", u.label)),
        }
        for f in &u.post_filters {
            out.push_str(&format!("\n{}| {f}", indent(level)));
        }
        out
    }

    fn log_range(&self, r: &LogRange, level: usize) -> String {
        let mut out = self.log(&r.log, level);
        if let Some(u) = &r.unwrap {
            out.push('\n');
            out.push_str(&self.unwrap(u, level + 1));
        }
        out.push_str(&format!(" [{}]", golang::format_prom_duration(r.range)));
        if r.offset != 0 {
            out.push_str(&format!(
                " offset {}",
                golang::format_prom_duration(r.offset)
            ));
        }
        out
    }

    fn grouping(g: &Grouping) -> String {
        let mut out = String::new();
        if g.without {
            out.push_str(" without");
        } else if !g.labels.is_empty() {
            out.push_str(" by");
        }
        if !g.labels.is_empty() {
            out.push_str(&format!(" ({})", g.labels.join(", ")));
        }
        out
    }

    /// Recurses once per level of a chain (up to
    /// [`super::MAX_EXPR_DEPTH`]), so the recursive frame is kept small:
    /// the variants' work is in functions of their own.
    fn sample(&self, e: &SampleExpr, level: usize) -> String {
        let text = e.to_string();
        if self.fits(&text) {
            return indent(level) + &text;
        }
        match e {
            SampleExpr::BinaryOp(b) => self.binary(b, level),
            _ => self.sample_broken(e, level, text),
        }
    }

    #[inline(never)]
    fn binary(&self, b: &super::ast::BinaryOp, level: usize) -> String {
        let lhs = self.sample(&b.lhs, level + 1);
        let rhs = self.sample(&b.rhs, level + 1);
        let mut out = lhs;
        out.push('\n');
        out.push_str(&indent(level));
        out.push_str(&binary_op_text_pretty(b));
        out.push('\n');
        out.push_str(&rhs);
        out
    }

    #[inline(never)]
    fn sample_broken(&self, e: &SampleExpr, level: usize, text: String) -> String {
        match e {
            SampleExpr::RangeAggregation(r) => {
                let mut out = indent(level) + r.op.as_str() + "(\n";
                if let Some(p) = r.param {
                    out.push_str(&format!(
                        "{}{},\n",
                        indent(level + 1),
                        golang::format_float_v(p)
                    ));
                }
                out.push_str(&self.log_range(&r.range, level + 1));
                out.push_str(&format!("\n{})", indent(level)));
                if let Some(g) = &r.grouping {
                    out.push_str(&Self::grouping(g));
                }
                out
            }
            SampleExpr::VectorAggregation(v) => {
                let mut out = indent(level) + v.op.as_str();
                out.push_str(&Self::grouping(&v.grouping));
                out.push_str("(\n");
                let mut params = Vec::new();
                if let Some(k) = v.param {
                    params.push(format!("{}{k}", indent(level + 1)));
                }
                params.push(self.sample(&v.inner, level + 1));
                out.push_str(&params.join(",\n"));
                out.push_str(&format!("\n{})", indent(level)));
                out
            }
            SampleExpr::BinaryOp(b) => self.binary(b, level),
            SampleExpr::LabelReplace(l) => {
                let args = [
                    self.sample(&l.inner, level + 1),
                    indent(level + 1) + &quote(&l.dst),
                    indent(level + 1) + &quote(&l.replacement),
                    indent(level + 1) + &quote(&l.src),
                    indent(level + 1) + &quote(&l.regex),
                ];
                format!(
                    "{}label_replace(\n{}\n{})",
                    indent(level),
                    args.join(",\n"),
                    indent(level)
                )
            }
            SampleExpr::Literal(_) | SampleExpr::Vector(_) => indent(level) + &text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::syntax::parse;

    fn pretty20(q: &str) -> String {
        pretty_with_width(&parse(q).unwrap(), 20)
    }

    // Loki's prettier_test.go, with MaxCharsPerLine = 20.
    #[test]
    fn loki_format_cases() {
        let cases = [
            (
                r#"{job="loki", instance="localhost"}"#,
                r#"{job="loki", instance="localhost"}"#,
            ),
            (
                r#"{job="loki", instance="localhost"}|logfmt|level="error" "#,
                "{job=\"loki\", instance=\"localhost\"}\n  | logfmt\n  | level=\"error\"",
            ),
            (
                r#"{job="loki", instance="localhost"}|= "error" != "memcached" |= ip("192.168.0.1") |logfmt"#,
                "{job=\"loki\", instance=\"localhost\"}\n  |= \"error\"\n  != \"memcached\"\n  |= ip(\"192.168.0.1\")\n  | logfmt",
            ),
            (
                r#"{job="loki", instance="localhost"}|logfmt|line_format "{{.error}}""#,
                "{job=\"loki\", instance=\"localhost\"}\n  | logfmt\n  | line_format \"{{.error}}\"",
            ),
            (
                r#"count_over_time({job="loki", instance="localhost"}|logfmt[1m])"#,
                "count_over_time(\n  {job=\"loki\", instance=\"localhost\"}\n    | logfmt [1m]\n)",
            ),
            (
                r#"count_over_time({job="loki", instance="localhost"}|= "error"[5m] offset 20m)"#,
                "count_over_time(\n  {job=\"loki\", instance=\"localhost\"}\n    |= \"error\" [5m] offset 20m\n)",
            ),
            (
                r#"quantile_over_time(0.99,{container="ingress-nginx",service="hosted-grafana"}| json| unwrap response_latency_seconds| __error__=""[1m]) by (cluster)"#,
                "quantile_over_time(\n  0.99,\n  {container=\"ingress-nginx\", service=\"hosted-grafana\"}\n    | json\n    | unwrap response_latency_seconds\n    | __error__=\"\" [1m]\n) by (cluster)",
            ),
            (
                r#"{job="loki", namespace="loki-prod", container="nginx-ingress"}| json first_server="servers[0]", ua="request.headers[\"User-Agent\"]" | level="error""#,
                "{job=\"loki\", namespace=\"loki-prod\", container=\"nginx-ingress\"}\n  | json first_server=\"servers[0]\",ua=\"request.headers[\\\"User-Agent\\\"]\"\n  | level=\"error\"",
            ),
            (
                r#"sum(count_over_time({foo="bar",namespace="loki",instance="localhost"}[5m])) by (container)"#,
                "sum by (container)(\n  count_over_time(\n    {foo=\"bar\", namespace=\"loki\", instance=\"localhost\"} [5m]\n  )\n)",
            ),
            (
                r#"topk(5, count_over_time({foo="bar",namespace="loki",instance="localhost"}[5m])) by (container)"#,
                "topk by (container)(\n  5,\n  count_over_time(\n    {foo=\"bar\", namespace=\"loki\", instance=\"localhost\"} [5m]\n  )\n)",
            ),
            (
                r#"label_replace(rate({job="api-server",service="a:c"}|= "err" [5m]), "foo", "$1", "service", "(.*):.*")"#,
                "label_replace(\n  rate(\n    {job=\"api-server\", service=\"a:c\"}\n      |= \"err\" [5m]\n  ),\n  \"foo\",\n  \"$1\",\n  \"service\",\n  \"(.*):.*\"\n)",
            ),
            (
                r#"sum(rate({job="loki"}[5m])) + sum(rate({job="loki-dev"}[5m])) / sum(rate({job="loki-prod"}[5m]))"#,
                "  sum(\n    rate(\n      {job=\"loki\"} [5m]\n    )\n  )\n+\n    sum(\n      rate(\n        {job=\"loki-dev\"} [5m]\n      )\n    )\n  /\n    sum(\n      rate(\n        {job=\"loki-prod\"} [5m]\n      )\n    )",
            ),
            (
                r#"sum(rate({job="loki"}[5m])) * on(instance, job) group_left (node) sum(rate({job="loki-prod"}[5m]))"#,
                "  sum(\n    rate(\n      {job=\"loki\"} [5m]\n    )\n  )\n* on (instance, job) group_left (node)\n  sum(\n    rate(\n      {job=\"loki-prod\"} [5m]\n    )\n  )",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(pretty20(input), want, "{input}");
        }
    }

    #[test]
    fn short_queries_stay_on_one_line() {
        let q = r#"sum by (level) (count_over_time({app="api"} | json [5m]))"#;
        assert_eq!(
            pretty(&parse(q).unwrap()),
            r#"sum by (level)(count_over_time({app="api"} | json[5m]))"#
        );
    }

    #[test]
    fn split_or_filters_keep_alternatives() {
        let out = pretty20(r#"{job="loki"} |= "aaaaaaaa" or "bbbbbbbbbbb" != "x" | json"#);
        assert!(out.contains(r#"|= "aaaaaaaa" or "bbbbbbbbbbb""#), "{out}");
    }
}
