//! Property: printing a tree and parsing the text gives the same tree, for
//! random valid trees covering every node kind.

use proptest::prelude::*;

use super::*;
use crate::model::{MatchOp, Matcher};

const NAMES: &[&str] = &[
    "app",
    "job",
    "level",
    "status_code",
    "x",
    "caf\u{e9}",
    "_y1",
    "rate",
    "count",
    "bytes",
    "ip",
    "duration",
    "sum",
    "__error__",
];
const REGEXES: &[&str] = &[
    "a.*", ".+", r"\d+", "(?i)err", "foo|bar", "api|web", r"\w.*", "a{2}", "[a-z]+`x", "",
];
const IPS: &[&str] = &[
    "192.168.0.1",
    "10.0.0.0/8",
    "10.0.0.1-10.0.0.9",
    "2001:db8::/32",
    "::1",
];
const PATTERNS: &[&str] = &["<_> foo <_>", "", "bar <_>", "<_>"];
const PARSER_PATTERNS: &[&str] = &["<ip> - <_>", "<a> <b>", "x <method> y"];
const PARSER_REGEXES: &[&str] = &[r"(?P<a>\w+)", "(?P<method>[A-Z]+) (?P<path>.*)"];

fn span() -> Span {
    Span::default()
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(str::to_string)
}

fn plain_name() -> impl Strategy<Value = String> {
    name().prop_filter("__error__ takes string matchers only", |n| n != "__error__")
}

fn text() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-zA-Z0-9 _\"\\\\`'{}|=~!<>.,()\\[\\]#\n\t\u{e9}\u{263a}\u{0}\u{7f}\u{200b}\u{1F600}]{0,10}")
        .expect("valid regex")
}

fn regex() -> impl Strategy<Value = String> {
    prop::sample::select(REGEXES).prop_map(str::to_string)
}

fn matcher() -> impl Strategy<Value = Matcher> {
    (name(), 0..4u8, text(), regex()).prop_map(|(n, op, text, re)| {
        match op {
            0 => Matcher::new(n, MatchOp::Eq, text),
            1 => Matcher::new(n, MatchOp::Neq, text),
            2 => Matcher::new(n, MatchOp::Re, re),
            _ => Matcher::new(n, MatchOp::Nre, re),
        }
        .expect("valid matcher")
    })
}

fn selector() -> impl Strategy<Value = Selector> {
    (name(), "[a-z]{1,6}", prop::collection::vec(matcher(), 0..3)).prop_map(|(n, v, rest)| {
        let mut matchers = vec![Matcher::new(n, MatchOp::Eq, v).expect("valid matcher")];
        matchers.extend(rest);
        let matcher_spans = vec![span(); matchers.len()];
        Selector {
            matchers,
            matcher_spans,
            span: span(),
        }
    })
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        Just(0.0),
        Just(-0.0),
        Just(1.5),
        Just(-3.0),
        Just(1e21),
    ]
}

fn bytes_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u64..1 << 62).prop_map(|b| b as f64 as u64),
        Just(0),
        Just(1024),
        Just(20_000)
    ]
}

fn cmp() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(
        &[
            CmpOp::Eq,
            CmpOp::Neq,
            CmpOp::Gt,
            CmpOp::Gte,
            CmpOp::Lt,
            CmpOp::Lte,
        ][..],
    )
}

fn label_filter_leaf() -> impl Strategy<Value = LabelFilter> {
    prop_oneof![
        matcher().prop_map(|matcher| LabelFilter::Matcher(MatcherFilter {
            matcher,
            span: span()
        })),
        (plain_name(), cmp(), finite()).prop_map(|(label, op, value)| LabelFilter::Number(
            NumberFilter {
                label,
                op,
                value,
                span: span()
            }
        )),
        (plain_name(), cmp(), any::<i64>()).prop_map(|(label, op, value)| LabelFilter::Duration(
            DurationFilter {
                label,
                op,
                value,
                span: span()
            }
        )),
        (plain_name(), cmp(), bytes_value()).prop_map(|(label, op, value)| LabelFilter::Bytes(
            BytesFilter {
                label,
                op,
                value,
                span: span()
            }
        )),
        (plain_name(), any::<bool>(), prop::sample::select(IPS)).prop_map(|(label, negated, p)| {
            LabelFilter::Ip(IpFilter {
                label,
                negated,
                pattern: p.to_string(),
                span: span(),
            })
        }),
    ]
}

fn label_filter() -> impl Strategy<Value = LabelFilter> {
    label_filter_leaf().prop_recursive(3, 8, 2, |inner| {
        (inner.clone(), inner, any::<bool>()).prop_map(|(left, right, and)| {
            let op = if and {
                LabelFilterJoin::And
            } else {
                LabelFilterJoin::Or
            };
            LabelFilter::Binary(Box::new(BinaryLabelFilter {
                op,
                left,
                right,
                span: span(),
            }))
        })
    })
}

fn extraction() -> impl Strategy<Value = LabelExtraction> {
    (plain_name(), text()).prop_map(|(label, expression)| LabelExtraction {
        label,
        expression,
        span: span(),
    })
}

fn line_filter() -> impl Strategy<Value = LineFilter> {
    let value = (text(), prop::sample::select(IPS), any::<bool>()).prop_map(|(t, ip, is_ip)| {
        LineFilterValue {
            value: if is_ip { ip.to_string() } else { t },
            ip: is_ip,
            span: span(),
        }
    });
    let op = prop::sample::select(
        &[
            LineFilterOp::Contains,
            LineFilterOp::NotContains,
            LineFilterOp::Regex,
            LineFilterOp::NotRegex,
            LineFilterOp::Pattern,
            LineFilterOp::NotPattern,
        ][..],
    );
    (
        op,
        prop::collection::vec(value, 1..4),
        regex(),
        prop::sample::select(PATTERNS),
    )
        .prop_map(|(op, mut values, re, pattern)| {
            if op.is_negated() {
                values.truncate(1);
            }
            for v in &mut values {
                match op {
                    LineFilterOp::Regex | LineFilterOp::NotRegex => {
                        v.ip = false;
                        v.value = re.clone();
                    }
                    LineFilterOp::Pattern | LineFilterOp::NotPattern => {
                        v.ip = false;
                        v.value = pattern.to_string();
                    }
                    LineFilterOp::Contains | LineFilterOp::NotContains => {}
                }
            }
            LineFilter {
                op,
                values,
                span: span(),
            }
        })
}

fn named_matcher() -> impl Strategy<Value = NamedMatcher> {
    (matcher(), any::<bool>()).prop_map(|(m, bare)| NamedMatcher {
        name: m.name.clone(),
        matcher: if bare { None } else { Some(m) },
        span: span(),
    })
}

fn stage() -> impl Strategy<Value = Stage> {
    prop_oneof![
        line_filter().prop_map(Stage::LineFilter),
        prop::collection::vec(extraction(), 0..3).prop_map(|params| Stage::Json(JsonParser {
            params,
            span: span()
        })),
        (
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(extraction(), 0..3)
        )
            .prop_map(|(strict, keep_empty, params)| {
                Stage::Logfmt(LogfmtParser {
                    strict,
                    keep_empty,
                    params,
                    span: span(),
                })
            }),
        prop::sample::select(PARSER_REGEXES).prop_map(|r| Stage::Regexp(RegexpParser {
            regex: r.to_string(),
            span: span()
        })),
        prop::sample::select(PARSER_PATTERNS).prop_map(|p| Stage::Pattern(PatternParser {
            pattern: p.to_string(),
            span: span()
        })),
        Just(Stage::Unpack(span())),
        Just(Stage::Decolorize(span())),
        label_filter().prop_map(|filter| Stage::LabelFilter(LabelFilterStage {
            filter,
            span: span()
        })),
        text().prop_map(|template| Stage::LineFormat(LineFormat {
            template,
            span: span()
        })),
        prop::collection::vec((plain_name(), any::<bool>(), text(), plain_name()), 1..3).prop_map(
            |fmts| {
                let mut formats: Vec<LabelFmt> = Vec::new();
                for (dst, rename, template, src) in fmts {
                    if formats.iter().any(|f| f.dst == dst) {
                        continue;
                    }
                    let value = if rename {
                        LabelFmtValue::Rename(src)
                    } else {
                        LabelFmtValue::Template(template)
                    };
                    formats.push(LabelFmt {
                        dst,
                        value,
                        span: span(),
                    });
                }
                Stage::LabelFormat(LabelFormat {
                    formats,
                    span: span(),
                })
            }
        ),
        prop::collection::vec(named_matcher(), 1..3).prop_map(|labels| Stage::Drop(
            LabelSelection {
                labels,
                span: span()
            }
        )),
        prop::collection::vec(named_matcher(), 1..3).prop_map(|labels| Stage::Keep(
            LabelSelection {
                labels,
                span: span()
            }
        )),
    ]
}

fn log_expr() -> impl Strategy<Value = LogExpr> {
    (selector(), prop::collection::vec(stage(), 0..4)).prop_map(|(selector, mut pipeline)| {
        // `| drop x != "y"` reads as the matcher `x!="y"` (in Loki too), so
        // a bare name is never followed by a `!=`/`!~` line filter.
        for i in 1..pipeline.len() {
            let bare_last = match &pipeline[i - 1] {
                Stage::Drop(s) | Stage::Keep(s) => {
                    s.labels.last().is_some_and(|l| l.matcher.is_none())
                }
                _ => false,
            };
            if let (true, Stage::LineFilter(f)) = (bare_last, &mut pipeline[i])
                && matches!(f.op, LineFilterOp::NotContains | LineFilterOp::NotRegex)
            {
                f.op = if f.op == LineFilterOp::NotRegex {
                    LineFilterOp::Regex
                } else {
                    LineFilterOp::Contains
                };
            }
        }
        LogExpr {
            selector,
            pipeline,
            span: span(),
        }
    })
}

fn unwrap() -> impl Strategy<Value = Unwrap> {
    let conversion = prop::option::of(prop::sample::select(
        &[
            UnwrapConversion::Bytes,
            UnwrapConversion::Duration,
            UnwrapConversion::DurationSeconds,
        ][..],
    ));
    (
        plain_name(),
        conversion,
        prop::collection::vec(label_filter(), 0..2),
    )
        .prop_map(|(label, conversion, post_filters)| Unwrap {
            label,
            conversion,
            post_filters,
            span: span(),
        })
}

const RANGE_OPS: &[RangeOp] = &[
    RangeOp::CountOverTime,
    RangeOp::Rate,
    RangeOp::RateCounter,
    RangeOp::BytesOverTime,
    RangeOp::BytesRate,
    RangeOp::AvgOverTime,
    RangeOp::SumOverTime,
    RangeOp::MinOverTime,
    RangeOp::MaxOverTime,
    RangeOp::StdvarOverTime,
    RangeOp::StddevOverTime,
    RangeOp::QuantileOverTime,
    RangeOp::FirstOverTime,
    RangeOp::LastOverTime,
    RangeOp::AbsentOverTime,
];

fn grouping() -> impl Strategy<Value = Grouping> {
    (any::<bool>(), prop::collection::vec(name(), 0..3)).prop_map(|(without, labels)| Grouping {
        without,
        labels,
        span: span(),
    })
}

fn range_aggregation() -> impl Strategy<Value = SampleExpr> {
    (
        prop::sample::select(RANGE_OPS),
        log_expr(),
        (1i64..3_000_000_000).prop_map(|ms| ms * 1_000_000),
        prop_oneof![Just(0i64), any::<i64>().prop_map(|o| o / 4)],
        unwrap(),
        any::<bool>(),
        prop::option::of(grouping()),
        0.0..1e6f64,
    )
        .prop_map(
            |(op, log, range, offset, unwrap, want_unwrap, grouping, param)| {
                let unwrap =
                    (op.requires_unwrap() || (op.allows_unwrap() && want_unwrap)).then_some(unwrap);
                let grouping = grouping.filter(|_| op.allows_grouping());
                let param = (op == RangeOp::QuantileOverTime).then_some(param);
                SampleExpr::RangeAggregation(Box::new(RangeAggregation {
                    op,
                    param,
                    range: LogRange {
                        log,
                        range,
                        offset,
                        unwrap,
                        span: span(),
                    },
                    grouping,
                    span: span(),
                }))
            },
        )
}

const VECTOR_OPS: &[VectorOp] = &[
    VectorOp::Sum,
    VectorOp::Avg,
    VectorOp::Count,
    VectorOp::Max,
    VectorOp::Min,
    VectorOp::Stddev,
    VectorOp::Stdvar,
    VectorOp::Bottomk,
    VectorOp::Topk,
    VectorOp::Sort,
    VectorOp::SortDesc,
    VectorOp::ApproxTopk,
];

const BIN_OPS: &[BinOp] = &[
    BinOp::Or,
    BinOp::And,
    BinOp::Unless,
    BinOp::Add,
    BinOp::Sub,
    BinOp::Mul,
    BinOp::Div,
    BinOp::Mod,
    BinOp::Pow,
    BinOp::Eq,
    BinOp::Neq,
    BinOp::Gt,
    BinOp::Gte,
    BinOp::Lt,
    BinOp::Lte,
];

fn matching() -> impl Strategy<Value = VectorMatching> {
    (
        any::<bool>(),
        prop::collection::vec(name(), 0..3),
        prop::sample::select(
            &[
                Cardinality::OneToOne,
                Cardinality::ManyToOne,
                Cardinality::OneToMany,
            ][..],
        ),
        prop::collection::vec(name(), 0..2),
    )
        .prop_map(|(on, labels, card, include)| {
            let include = if card == Cardinality::OneToOne {
                Vec::new()
            } else {
                include
            };
            VectorMatching {
                on,
                labels,
                card,
                include,
            }
        })
}

fn sample_expr() -> impl Strategy<Value = SampleExpr> {
    let leaf = prop_oneof![
        range_aggregation(),
        prop_oneof![
            finite(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY)
        ]
        .prop_map(|value| SampleExpr::Literal(Literal {
            value,
            span: span()
        })),
        finite().prop_map(|v| SampleExpr::Vector(VectorExpr {
            value: v.abs(),
            span: span()
        })),
    ];
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (
                prop::sample::select(VECTOR_OPS),
                inner.clone(),
                1i64..i64::MAX,
                grouping()
            )
                .prop_map(|(op, inner, k, mut grouping)| {
                    if matches!(op, VectorOp::Sort | VectorOp::SortDesc) {
                        grouping.labels.clear();
                    }
                    if op == VectorOp::ApproxTopk {
                        grouping = Grouping::default();
                    }
                    let param = op.takes_param().then_some(k);
                    SampleExpr::VectorAggregation(Box::new(VectorAggregation {
                        op,
                        param,
                        inner,
                        grouping,
                        span: span(),
                    }))
                }),
            (
                prop::sample::select(BIN_OPS),
                any::<bool>(),
                matching(),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, return_bool, matching, lhs, rhs)| {
                    // Loki folds two literals and rejects literals around set
                    // operators, so such trees never come out of the parser.
                    let needs_vector = op.is_set_op() || lhs.is_literal();
                    let rhs = if needs_vector && rhs.is_literal() {
                        SampleExpr::Vector(VectorExpr {
                            value: 1.0,
                            span: span(),
                        })
                    } else {
                        rhs
                    };
                    let lhs = if op.is_set_op() && lhs.is_literal() {
                        SampleExpr::Vector(VectorExpr {
                            value: 2.0,
                            span: span(),
                        })
                    } else {
                        lhs
                    };
                    SampleExpr::BinaryOp(Box::new(BinaryOp {
                        op,
                        return_bool,
                        matching,
                        lhs,
                        rhs,
                        span: span(),
                    }))
                }),
            (inner, text(), text(), text(), regex()).prop_map(
                |(inner, dst, replacement, src, regex)| {
                    SampleExpr::LabelReplace(Box::new(LabelReplace {
                        inner,
                        dst,
                        replacement,
                        src,
                        regex,
                        span: span(),
                    }))
                }
            ),
        ]
    })
}

fn expr() -> impl Strategy<Value = Expr> {
    prop_oneof![
        log_expr().prop_map(Expr::Log),
        sample_expr().prop_map(Expr::Sample)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn printed_trees_parse_back_to_themselves(expr in expr()) {
        let text = expr.to_string();
        let parsed = parse(&text);
        prop_assert_eq!(parsed.as_ref(), Ok(&expr), "text: {}", text);
        // The pretty form is not always parseable in Loki either (`by ()`
        // is dropped); it must at least be produced without panicking.
        let _ = pretty_with_width(&expr, 40);
    }
}
