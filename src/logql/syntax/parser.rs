//! The LogQL parser: Loki's yacc grammar (`syntax.y`) as hand-written
//! recursive descent over the token stream of [`super::lexer`].
//!
//! Owns the grammar, Loki's `syntax error: unexpected X, expecting Y` texts,
//! the rewrites Loki applies while parsing (literal folding, `!=`-or-chains
//! split into separate filters) and the rules Loki checks while building
//! nodes. It does not own lexing, printing or pipeline-stage checks
//! (`validate`).
//!
//! Faithfulness notes:
//! - One token of lookahead, like yacc, so lexical and syntax errors come in
//!   Loki's order and errors point at the same token.
//! - Binary operators use precedence climbing with Loki's precedence table.
//! - Label filters reproduce how yacc resolves the grammar's conflicts:
//!   `and` binds tighter than `or`, but `,` and juxtaposition have no
//!   precedence, so yacc shifts: `a, b or c` is `a and (b or c)`.
//! - Errors Loki stores on nodes and reports from its validation pass
//!   (parameters, grouping, unwrap, empty selectors, literal legs of set
//!   operators, ...) are carried as [`Value::Invalid`] and reported after a
//!   successful parse, in Loki's validation order.
//! - Operator chains (`a + b + c`, `x="1" or x="2" or ...`) are parsed with
//!   an explicit operator stack (shift-reduce), so their length costs no
//!   parser recursion. Only real nesting recurses: parentheses, function
//!   calls and aggregations, limited to [`MAX_NESTING`] levels so that
//!   hostile input cannot exhaust the stack.
//! - The trees built from chains are still binary, and printing, cloning,
//!   dropping and evaluating them recurse once per level. Their height is
//!   limited to [`MAX_EXPR_DEPTH`] (Loki has no such limit; a chain of two
//!   literals folds into one and does not count). Input is limited to
//!   [`MAX_QUERY_BYTES`].

use super::ast::{
    BinOp, BinaryLabelFilter, BinaryOp, BytesFilter, Cardinality, CmpOp, DurationFilter, Grouping,
    IpFilter, JsonParser, LabelExtraction, LabelFilter, LabelFilterJoin, LabelFilterStage,
    LabelFmt, LabelFmtValue, LabelFormat, LabelReplace, LabelSelection, LineFilter, LineFilterOp,
    LineFilterValue, LineFormat, Literal, LogExpr, LogRange, LogfmtParser, MatcherFilter,
    NamedMatcher, NumberFilter, PatternParser, RangeAggregation, RangeOp, RegexpParser, SampleExpr,
    Selector, Span, Stage, Unwrap, UnwrapConversion, VectorAggregation, VectorExpr, VectorMatching,
    VectorOp,
};
use super::error::ParseError;
use super::golang;
use super::lexer::{Lexer, Tok, Token, TokenValue};
use super::validate;
use crate::model::{MatchOp, Matcher};

/// Loki's `maxInputSize`: longer queries are rejected before parsing.
pub const MAX_QUERY_BYTES: usize = 131_072;

/// The deepest nesting (parentheses, function calls, aggregations) the
/// parser accepts. Operator chains do not count.
pub const MAX_NESTING: usize = 128;

/// The tallest expression tree the parser builds: a chain of binary
/// operators or label filter joins (`a or b or ...`) makes one level per
/// operator, and everything that later walks the tree (printing, cloning,
/// dropping, evaluation) recurses per level. 1,024 levels fit a 256 KiB
/// stack in debug builds (tokio workers have 2 MiB); Loki has no limit.
pub const MAX_EXPR_DEPTH: usize = 512;

pub(crate) const EMPTY_MATCHERS: &str = "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

/// A parsed query before Loki's validation pass.
pub(crate) enum Value {
    Log(LogExpr),
    Sample(SampleExpr),
    /// A metric expression carrying the error Loki's validation reports.
    Invalid(ParseError),
}

struct Node {
    value: Value,
    span: Span,
    /// Height of the tree below this node, bounded by [`MAX_EXPR_DEPTH`].
    depth: u32,
}

/// Parses `query` without Loki's validation pass (Loki's
/// `ParseExprWithoutValidation`): grammar errors and the errors Loki raises
/// while building nodes (bad regexes, patterns) are returned, the others
/// are left in [`Value::Invalid`].
pub(crate) fn parse_unvalidated(query: &str) -> Result<Value, ParseError> {
    if query.len() >= MAX_QUERY_BYTES {
        return Err(ParseError::validation(
            format!(
                "input size too long ({} > {})",
                query.len(),
                MAX_QUERY_BYTES
            ),
            None,
        ));
    }
    let mut p = Parser {
        lexer: Lexer::new(query),
        peeked: None,
        last_end: 0,
        nesting: 0,
    };
    let node = p.parse_expr()?;
    if p.peek_tok()? != Tok::Eof {
        return Err(p.error_here(&[]));
    }
    Ok(node.value)
}

/// Loki's `validateExpr` on a parsed query.
pub(crate) fn validate_value(value: Value) -> Result<super::ast::Expr, ParseError> {
    match value {
        Value::Invalid(err) => Err(err),
        Value::Log(log) => match selector_error(&log) {
            Some(err) => Err(err),
            None => Ok(super::ast::Expr::Log(log)),
        },
        Value::Sample(sample) => Ok(super::ast::Expr::Sample(sample)),
    }
}

/// Loki's `validateMatchers`: some matcher must not match the empty string.
fn selector_error(log: &LogExpr) -> Option<ParseError> {
    if log.selector.matchers.iter().any(|m| !m.matches_empty()) {
        None
    } else {
        Some(ParseError::validation(
            EMPTY_MATCHERS,
            Some(log.selector.span),
        ))
    }
}

/// How two label filters are joined, for yacc's conflict resolution.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Join {
    Juxtapose,
    Comma,
    And,
    Or,
}

impl Join {
    /// Yacc precedence; `,` and juxtaposition have none.
    fn precedence(self) -> Option<u8> {
        match self {
            Join::And => Some(2),
            Join::Or => Some(1),
            Join::Comma | Join::Juxtapose => None,
        }
    }
}

/// Whether yacc reduces `left <rule> right` before the lookahead `next`:
/// only when both have a precedence and the rule's is not lower (left
/// associativity); otherwise it shifts.
fn reduces(rule: Join, next: Join) -> bool {
    match (rule.precedence(), next.precedence()) {
        (Some(r), Some(n)) => r >= n,
        _ => false,
    }
}

fn binary_op(tok: Tok) -> Option<BinOp> {
    Some(match tok {
        Tok::Or => BinOp::Or,
        Tok::And => BinOp::And,
        Tok::Unless => BinOp::Unless,
        Tok::Add => BinOp::Add,
        Tok::Sub => BinOp::Sub,
        Tok::Mul => BinOp::Mul,
        Tok::Div => BinOp::Div,
        Tok::Mod => BinOp::Mod,
        Tok::Pow => BinOp::Pow,
        Tok::CmpEq => BinOp::Eq,
        Tok::Neq => BinOp::Neq,
        Tok::Gt => BinOp::Gt,
        Tok::Gte => BinOp::Gte,
        Tok::Lt => BinOp::Lt,
        Tok::Lte => BinOp::Lte,
        _ => return None,
    })
}

fn range_op(tok: Tok) -> Option<RangeOp> {
    Some(match tok {
        Tok::CountOverTime => RangeOp::CountOverTime,
        Tok::Rate => RangeOp::Rate,
        Tok::RateCounter => RangeOp::RateCounter,
        Tok::BytesOverTime => RangeOp::BytesOverTime,
        Tok::BytesRate => RangeOp::BytesRate,
        Tok::AvgOverTime => RangeOp::AvgOverTime,
        Tok::SumOverTime => RangeOp::SumOverTime,
        Tok::MinOverTime => RangeOp::MinOverTime,
        Tok::MaxOverTime => RangeOp::MaxOverTime,
        Tok::StdvarOverTime => RangeOp::StdvarOverTime,
        Tok::StddevOverTime => RangeOp::StddevOverTime,
        Tok::QuantileOverTime => RangeOp::QuantileOverTime,
        Tok::FirstOverTime => RangeOp::FirstOverTime,
        Tok::LastOverTime => RangeOp::LastOverTime,
        Tok::AbsentOverTime => RangeOp::AbsentOverTime,
        _ => return None,
    })
}

fn vector_op(tok: Tok) -> Option<VectorOp> {
    Some(match tok {
        Tok::Sum => VectorOp::Sum,
        Tok::Avg => VectorOp::Avg,
        Tok::Count => VectorOp::Count,
        Tok::Max => VectorOp::Max,
        Tok::Min => VectorOp::Min,
        Tok::Stddev => VectorOp::Stddev,
        Tok::Stdvar => VectorOp::Stdvar,
        Tok::Bottomk => VectorOp::Bottomk,
        Tok::Topk => VectorOp::Topk,
        Tok::Sort => VectorOp::Sort,
        Tok::SortDesc => VectorOp::SortDesc,
        Tok::ApproxTopk => VectorOp::ApproxTopk,
        _ => return None,
    })
}

fn line_filter_op(tok: Tok) -> Option<LineFilterOp> {
    Some(match tok {
        Tok::PipeExact => LineFilterOp::Contains,
        Tok::Neq => LineFilterOp::NotContains,
        Tok::PipeMatch => LineFilterOp::Regex,
        Tok::Nre => LineFilterOp::NotRegex,
        Tok::PipePattern => LineFilterOp::Pattern,
        Tok::Npa => LineFilterOp::NotPattern,
        _ => return None,
    })
}

fn match_op(tok: Tok) -> Option<MatchOp> {
    Some(match tok {
        Tok::Eq => MatchOp::Eq,
        Tok::Neq => MatchOp::Neq,
        Tok::Re => MatchOp::Re,
        Tok::Nre => MatchOp::Nre,
        _ => return None,
    })
}

fn cmp_op(tok: Tok) -> Option<CmpOp> {
    Some(match tok {
        Tok::Eq | Tok::CmpEq => CmpOp::Eq,
        Tok::Neq => CmpOp::Neq,
        Tok::Gt => CmpOp::Gt,
        Tok::Gte => CmpOp::Gte,
        Tok::Lt => CmpOp::Lt,
        Tok::Lte => CmpOp::Lte,
        _ => return None,
    })
}

fn string_value(token: Token<'_>) -> String {
    match token.value {
        TokenValue::Str(s) => s.into_owned(),
        _ => token.text.to_string(),
    }
}

fn duration_value(token: &Token<'_>) -> i64 {
    match token.value {
        TokenValue::Duration(d) => d,
        _ => 0,
    }
}

/// Builds a stream or label matcher, with Go's error text for a bad regex.
fn new_matcher(name: &str, op: MatchOp, value: String, span: Span) -> Result<Matcher, ParseError> {
    if matches!(op, MatchOp::Re | MatchOp::Nre)
        && let Some(err) = validate::go_regex_error(&value)
    {
        return Err(ParseError::validation(err, Some(span)));
    }
    Matcher::new(name, op, value).map_err(|e| ParseError::validation(e.0, Some(span)))
}

/// Go's `%T` of a log expression used as a binary operand.
fn go_type_name(log: &LogExpr) -> &'static str {
    if log.pipeline.is_empty() {
        "*syntax.MatchersExpr"
    } else {
        "*syntax.PipelineExpr"
    }
}

/// A binary operator waiting on the operator stack for its right operand.
struct PendingOp {
    op: BinOp,
    return_bool: bool,
    matching: VectorMatching,
}

/// What precedes the inner expression of a vector aggregation.
struct VectorHead<'a> {
    op: VectorOp,
    start: usize,
    op_end: usize,
    grouping: Option<Grouping>,
    /// The `k` of `topk(k, ...)` (any operation, checked later).
    param: Option<&'a str>,
    /// A NUMBER that starts the inner expression.
    literal: Option<Token<'a>>,
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token<'a>>,
    /// End offset of the last consumed token, for spans.
    last_end: usize,
    nesting: usize,
}

impl<'a> Parser<'a> {
    fn peek(&mut self) -> Result<&Token<'a>, ParseError> {
        let token = match self.peeked.take() {
            Some(t) => t,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn peek_tok(&mut self) -> Result<Tok, ParseError> {
        Ok(self.peek()?.tok)
    }

    fn bump(&mut self) -> Result<Token<'a>, ParseError> {
        let token = match self.peeked.take() {
            Some(t) => t,
            None => self.lexer.next_token()?,
        };
        self.last_end = token.end;
        Ok(token)
    }

    /// `syntax error: unexpected <tok>[, expecting A or B]`, listing the
    /// expected tokens only when there are at most four (as yacc does).
    fn unexpected(&self, token: &Token<'_>, expected: &[Tok]) -> ParseError {
        // Loki accepts a stray character as a label name (`{@="x"}`) and then
        // prints trees that do not parse back; lokal rejects it, naming it.
        let name = if token.tok == Tok::Stray && expected.contains(&Tok::Identifier) {
            token.text
        } else {
            token.tok.name()
        };
        let mut msg = format!("syntax error: unexpected {name}");
        if !expected.is_empty() && expected.len() <= 4 {
            let mut sorted = expected.to_vec();
            sorted.sort();
            sorted.dedup();
            for (i, t) in sorted.iter().enumerate() {
                msg.push_str(if i == 0 { ", expecting " } else { " or " });
                msg.push_str(t.name());
            }
        }
        let (line, col) = self.lexer.line_col(token.start);
        ParseError::at(
            if token.line_valid { line } else { 0 },
            col,
            token.span(),
            msg,
        )
    }

    /// A syntax error at the next token.
    fn error_here(&mut self, expected: &[Tok]) -> ParseError {
        match self.peek() {
            Ok(token) => {
                let token = token.clone();
                self.unexpected(&token, expected)
            }
            Err(err) => err,
        }
    }

    fn expect(&mut self, tok: Tok, expected: &[Tok]) -> Result<Token<'a>, ParseError> {
        if self.peek_tok()? == tok {
            self.bump()
        } else {
            Err(self.error_here(expected))
        }
    }

    fn expect_string(&mut self) -> Result<String, ParseError> {
        let token = self.expect(Tok::Str, &[Tok::Str])?;
        Ok(string_value(token))
    }

    fn too_deep(&mut self) -> ParseError {
        let start = self.peek().map(|t| t.start).unwrap_or(self.last_end);
        let (line, col) = self.lexer.line_col(start);
        ParseError::at(
            line,
            col,
            Span::new(start, start),
            format!("syntax error: the query nests too deeply (more than {MAX_NESTING} levels)"),
        )
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.too_deep());
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting -= 1;
    }

    /// The height of a tree built from operator chains is bounded by
    /// [`MAX_EXPR_DEPTH`] levels above its leaves (which have depth 1).
    fn check_depth(&mut self, depth: u32) -> Result<(), ParseError> {
        if depth as usize > MAX_EXPR_DEPTH + 1 {
            let start = self.peek().map(|t| t.start).unwrap_or(self.last_end);
            let (line, col) = self.lexer.line_col(start);
            return Err(ParseError::at(
                line,
                col,
                Span::new(start, start),
                format!(
                    "syntax error: the query's expression tree is too deep (more than {MAX_EXPR_DEPTH} chained operators or label filters); split the query"
                ),
            ));
        }
        Ok(())
    }

    // ---------------------------------------------------------------
    // Expressions

    /// An expression with its binary operators. Recurses only into the
    /// operands' own nesting (parentheses, calls), which [`Self::enter`]
    /// counts.
    fn parse_expr(&mut self) -> Result<Node, ParseError> {
        self.enter()?;
        let lhs = self.parse_unary()?;
        let node = self.parse_binary_rest(lhs)?;
        self.leave();
        Ok(node)
    }

    /// The operators and operands after `lhs`, by shift-reduce with Loki's
    /// precedences: the operator on the stack is reduced before the next
    /// one when it binds tighter, or as tight and is left-associative.
    /// This builds the tree precedence climbing would, without recursing
    /// per operator, so a chain of any length costs no stack.
    fn parse_binary_rest(&mut self, lhs: Node) -> Result<Node, ParseError> {
        if binary_op(self.peek_tok()?).is_none() {
            // No operator: no stacks to allocate.
            return Ok(lhs);
        }
        let mut operands = vec![lhs];
        let mut ops: Vec<PendingOp> = Vec::new();
        while let Some(op) = binary_op(self.peek_tok()?) {
            while let Some(top) = ops.last() {
                let (tp, np) = (top.op.precedence(), op.precedence());
                if tp > np || (tp == np && !top.op.is_right_associative()) {
                    self.reduce_binary(&mut operands, &mut ops)?;
                } else {
                    break;
                }
            }
            self.bump()?;
            let (return_bool, matching) = self.parse_bin_modifier()?;
            ops.push(PendingOp {
                op,
                return_bool,
                matching,
            });
            operands.push(self.parse_unary()?);
        }
        while !ops.is_empty() {
            self.reduce_binary(&mut operands, &mut ops)?;
        }
        match operands.pop() {
            Some(node) if operands.is_empty() => Ok(node),
            _ => Err(self.error_here(&[])),
        }
    }

    /// Replaces the top two operands with the top operator applied to them.
    fn reduce_binary(
        &mut self,
        operands: &mut Vec<Node>,
        ops: &mut Vec<PendingOp>,
    ) -> Result<(), ParseError> {
        let (Some(pending), Some(rhs), Some(lhs)) = (ops.pop(), operands.pop(), operands.pop())
        else {
            // The loop pushes one operand per operator after the first.
            return Err(self.error_here(&[]));
        };
        let node = self.make_binary(pending.op, pending.return_bool, pending.matching, lhs, rhs)?;
        operands.push(node);
        Ok(())
    }

    /// `[bool] [on|ignoring (labels) [group_left|group_right [(labels)]]]`.
    fn parse_bin_modifier(&mut self) -> Result<(bool, VectorMatching), ParseError> {
        let mut matching = VectorMatching::default();
        let return_bool = self.peek_tok()? == Tok::Bool;
        if return_bool {
            self.bump()?;
        }
        let tok = self.peek_tok()?;
        if matches!(tok, Tok::On | Tok::Ignoring) {
            self.bump()?;
            matching.on = tok == Tok::On;
            self.expect(Tok::OpenParen, &[Tok::OpenParen])?;
            matching.labels = self.parse_label_list()?;
            let group = self.peek_tok()?;
            if matches!(group, Tok::GroupLeft | Tok::GroupRight) {
                self.bump()?;
                matching.card = if group == Tok::GroupLeft {
                    Cardinality::ManyToOne
                } else {
                    Cardinality::OneToMany
                };
                if self.peek_tok()? == Tok::OpenParen {
                    self.bump()?;
                    matching.include = self.parse_label_list()?;
                }
            }
        }
        Ok((return_bool, matching))
    }

    /// The labels after an opening parenthesis, through the closing one.
    fn parse_label_list(&mut self) -> Result<Vec<String>, ParseError> {
        let mut labels = Vec::new();
        if self.peek_tok()? == Tok::CloseParen {
            self.bump()?;
            return Ok(labels);
        }
        loop {
            let expected: &[Tok] = if labels.is_empty() {
                &[Tok::Identifier, Tok::CloseParen]
            } else {
                &[Tok::Identifier]
            };
            let id = self.expect(Tok::Identifier, expected)?;
            labels.push(id.text.to_string());
            match self.peek_tok()? {
                Tok::Comma => {
                    self.bump()?;
                }
                Tok::CloseParen => {
                    self.bump()?;
                    return Ok(labels);
                }
                _ => return Err(self.error_here(&[Tok::Comma, Tok::CloseParen])),
            }
        }
    }

    /// Loki's `mustNewBinOpExpr`: operand types, literal legs of set
    /// operators, folding of two literals.
    fn make_binary(
        &mut self,
        op: BinOp,
        return_bool: bool,
        matching: VectorMatching,
        lhs: Node,
        rhs: Node,
    ) -> Result<Node, ParseError> {
        let span = lhs.span.to(rhs.span);
        let depth = lhs.depth.max(rhs.depth) + 1;
        let invalid = |msg: String| Value::Invalid(ParseError::validation(msg, Some(span)));
        let literal = |v: &Value| match v {
            Value::Sample(SampleExpr::Literal(l)) => Some(l.value),
            _ => None,
        };
        let folds = !op.is_set_op()
            && matches!(lhs.value, Value::Sample(SampleExpr::Literal(_)))
            && matches!(rhs.value, Value::Sample(SampleExpr::Literal(_)));
        if !folds {
            self.check_depth(depth)?;
        }
        let value = if let Value::Log(l) = &lhs.value {
            invalid(format!(
                "unexpected type for left leg of binary operation ({}): {}",
                op.as_str(),
                go_type_name(l)
            ))
        } else if let Value::Log(r) = &rhs.value {
            invalid(format!(
                "unexpected type for right leg of binary operation ({}): {}",
                op.as_str(),
                go_type_name(r)
            ))
        } else if let (true, Some(v)) = (op.is_set_op(), literal(&lhs.value)) {
            invalid(format!(
                "unexpected literal for left leg of logical/set binary operation ({}): {v:.6}",
                op.as_str()
            ))
        } else if let (true, Some(v)) = (op.is_set_op(), literal(&rhs.value)) {
            invalid(format!(
                "unexpected literal for right leg of logical/set binary operation ({}): {v:.6}",
                op.as_str()
            ))
        } else if let (Some(l), Some(r)) = (literal(&lhs.value), literal(&rhs.value)) {
            // Folded: a literal again, whatever the length of the chain.
            let value = match op.apply(l, r) {
                Some(value) => Value::Sample(SampleExpr::Literal(Literal { value, span })),
                None => invalid(format!("unexpected operation {}", op.as_str())),
            };
            return Ok(Node {
                value,
                span,
                depth: 1,
            });
        } else {
            match (lhs.value, rhs.value) {
                (Value::Invalid(err), _) | (_, Value::Invalid(err)) => Value::Invalid(err),
                (Value::Sample(l), Value::Sample(r)) => {
                    Value::Sample(SampleExpr::BinaryOp(Box::new(BinaryOp {
                        op,
                        return_bool,
                        matching,
                        lhs: l,
                        rhs: r,
                        span,
                    })))
                }
                // Log operands were handled above.
                _ => invalid(format!("unexpected operand of {}", op.as_str())),
            }
        };
        Ok(Node { value, span, depth })
    }

    fn parse_unary(&mut self) -> Result<Node, ParseError> {
        let tok = self.peek_tok()?;
        match tok {
            Tok::OpenBrace => self.parse_log_node(),
            Tok::OpenParen => {
                self.bump()?;
                let inner = self.parse_expr()?;
                self.expect(Tok::CloseParen, &[])?;
                Ok(inner)
            }
            Tok::Number | Tok::Add | Tok::Sub => self.parse_literal(),
            Tok::LabelReplace => self.parse_label_replace(),
            Tok::Vector => self.parse_vector(),
            _ if range_op(tok).is_some() => self.parse_range_aggregation(),
            _ if vector_op(tok).is_some() => self.parse_vector_aggregation(),
            _ => Err(self.error_here(&[])),
        }
    }

    #[inline(never)]
    fn parse_log_node(&mut self) -> Result<Node, ParseError> {
        let log = self.parse_log_expr()?;
        let span = log.span;
        Ok(Node {
            value: Value::Log(log),
            span,
            depth: 1,
        })
    }

    /// `NUMBER`, `+NUMBER`, `-NUMBER`.
    #[inline(never)]
    fn parse_literal(&mut self) -> Result<Node, ParseError> {
        let first = self.bump()?;
        if first.tok == Tok::Number {
            return Ok(literal_node(&first, first.start, false));
        }
        let number = self.expect(Tok::Number, &[Tok::Number])?;
        Ok(literal_node(&number, first.start, first.tok == Tok::Sub))
    }

    #[inline(never)]
    fn parse_vector(&mut self) -> Result<Node, ParseError> {
        let start = self.bump()?.start;
        self.expect(Tok::OpenParen, &[Tok::OpenParen])?;
        let number = self.expect(Tok::Number, &[Tok::Number])?;
        self.expect(Tok::CloseParen, &[Tok::CloseParen])?;
        let span = Span::new(start, self.last_end);
        let value = match golang::parse_float(number.text) {
            Ok(value) => Value::Sample(SampleExpr::Vector(VectorExpr { value, span })),
            Err(e) => Value::Invalid(ParseError::validation(
                format!("unable to parse vectorExpr as a float: {e}"),
                Some(span),
            )),
        };
        Ok(Node {
            value,
            span,
            depth: 1,
        })
    }

    fn parse_label_replace(&mut self) -> Result<Node, ParseError> {
        let start = self.bump()?.start;
        self.expect(Tok::OpenParen, &[Tok::OpenParen])?;
        let inner = self.parse_expr()?;
        self.finish_label_replace(start, inner)
    }

    #[inline(never)]
    fn finish_label_replace(&mut self, start: usize, inner: Node) -> Result<Node, ParseError> {
        if let Value::Log(_) = inner.value {
            return Err(self.error_here(&[]));
        }
        self.expect(Tok::Comma, &[])?;
        let mut args = Vec::with_capacity(4);
        for i in 0..4 {
            args.push(self.expect_string()?);
            let next = if i == 3 { Tok::CloseParen } else { Tok::Comma };
            self.expect(next, &[next])?;
        }
        let span = Span::new(start, self.last_end);
        let depth = inner.depth + 1;
        self.check_depth(depth)?;
        let regex = args.pop().unwrap_or_default();
        let src = args.pop().unwrap_or_default();
        let replacement = args.pop().unwrap_or_default();
        let dst = args.pop().unwrap_or_default();
        let value = if let Some(err) = validate::go_regex_error(&format!("^(?:{regex})$")) {
            Value::Invalid(ParseError::validation(
                format!("invalid regex in label_replace: {err}"),
                Some(span),
            ))
        } else {
            match inner.value {
                Value::Sample(inner) => {
                    Value::Sample(SampleExpr::LabelReplace(Box::new(LabelReplace {
                        inner,
                        dst,
                        replacement,
                        src,
                        regex,
                        span,
                    })))
                }
                other => other,
            }
        };
        Ok(Node { value, span, depth })
    }

    fn parse_grouping(&mut self) -> Result<Grouping, ParseError> {
        let kw = self.bump()?;
        self.expect(Tok::OpenParen, &[Tok::OpenParen])?;
        let labels = self.parse_label_list()?;
        Ok(Grouping {
            without: kw.tok == Tok::Without,
            labels,
            span: Span::new(kw.start, self.last_end),
        })
    }

    /// `op [grouping] ( [k,] expr ) [grouping]`. Split in three so that
    /// the frame that recurses into the inner expression stays small.
    fn parse_vector_aggregation(&mut self) -> Result<Node, ParseError> {
        let head = self.parse_vector_head()?;
        let inner = match self.take_leading_literal(&head) {
            Some(literal) => {
                self.enter()?;
                let node = self.parse_binary_rest(literal)?;
                self.leave();
                node
            }
            None => self.parse_expr()?,
        };
        self.finish_vector_aggregation(head, inner)
    }

    #[inline(never)]
    fn parse_vector_head(&mut self) -> Result<VectorHead<'a>, ParseError> {
        let op_token = self.bump()?;
        let Some(op) = vector_op(op_token.tok) else {
            return Err(self.unexpected(&op_token, &[]));
        };
        let mut grouping = None;
        if matches!(self.peek_tok()?, Tok::By | Tok::Without) {
            grouping = Some(self.parse_grouping()?);
            self.expect(Tok::OpenParen, &[Tok::OpenParen])?;
        } else {
            self.expect(Tok::OpenParen, &[Tok::OpenParen, Tok::By, Tok::Without])?;
        }
        let mut head = VectorHead {
            op,
            start: op_token.start,
            op_end: op_token.end,
            grouping,
            param: None,
            literal: None,
        };
        if self.peek_tok()? == Tok::Number {
            let number = self.bump()?;
            if self.peek_tok()? == Tok::Comma {
                self.bump()?;
                head.param = Some(number.text);
            } else {
                head.literal = Some(number);
            }
        }
        Ok(head)
    }

    /// A NUMBER right after `op(` that is not `k,` starts the inner expression.
    fn take_leading_literal(&self, head: &VectorHead<'a>) -> Option<Node> {
        head.literal
            .as_ref()
            .map(|n| literal_node(n, n.start, false))
    }

    #[inline(never)]
    fn finish_vector_aggregation(
        &mut self,
        head: VectorHead<'a>,
        inner: Node,
    ) -> Result<Node, ParseError> {
        let VectorHead {
            op,
            start,
            op_end,
            mut grouping,
            param,
            ..
        } = head;
        if let Value::Log(_) = inner.value {
            return Err(self.error_here(&[]));
        }
        self.expect(Tok::CloseParen, &[])?;
        if grouping.is_none() && matches!(self.peek_tok()?, Tok::By | Tok::Without) {
            grouping = Some(self.parse_grouping()?);
        }
        let span = Span::new(start, self.last_end);
        let depth = inner.depth + 1;
        self.check_depth(depth)?;
        let name = op.as_str();
        let mut k = None;
        let own_error = if op.takes_param() {
            match param.map(golang::parse_int) {
                None => Some(format!("parameter required for operation {name}")),
                Some(Err(_)) => Some(format!(
                    "invalid parameter {name}({},",
                    param.unwrap_or_default()
                )),
                Some(Ok(n)) if n <= 0 => Some(format!(
                    "invalid parameter (must be greater than 0) {name}({}",
                    param.unwrap_or_default()
                )),
                Some(Ok(_)) if op == VectorOp::ApproxTopk && grouping.is_some() => {
                    Some(format!("grouping not allowed for {name} aggregation"))
                }
                Some(Ok(n)) => {
                    k = Some(n);
                    None
                }
            }
        } else {
            param.map(|p| format!("unsupported parameter for operation {name}({p},"))
        };
        let grouping = grouping.unwrap_or(Grouping {
            without: false,
            labels: Vec::new(),
            span: Span::new(op_end, op_end),
        });
        let own_error = own_error.or_else(|| {
            (matches!(op, VectorOp::Sort | VectorOp::SortDesc) && !grouping.labels.is_empty())
                .then(|| "sort and sort_desc doesn't allow grouping by ".to_string())
        });
        let value = match (own_error, inner.value) {
            (Some(msg), _) => Value::Invalid(ParseError::validation(msg, Some(span))),
            (None, Value::Sample(inner)) => {
                Value::Sample(SampleExpr::VectorAggregation(Box::new(VectorAggregation {
                    op,
                    param: k,
                    inner,
                    grouping,
                    span,
                })))
            }
            (None, other) => other,
        };
        Ok(Node { value, span, depth })
    }

    #[inline(never)]
    fn parse_range_aggregation(&mut self) -> Result<Node, ParseError> {
        let op_token = self.bump()?;
        let Some(op) = range_op(op_token.tok) else {
            return Err(self.unexpected(&op_token, &[]));
        };
        self.expect(Tok::OpenParen, &[Tok::OpenParen])?;
        let mut param: Option<&'a str> = None;
        match self.peek_tok()? {
            Tok::Number => {
                param = Some(self.bump()?.text);
                self.expect(Tok::Comma, &[Tok::Comma])?;
                if !matches!(self.peek_tok()?, Tok::OpenBrace | Tok::OpenParen) {
                    return Err(self.error_here(&[Tok::OpenBrace, Tok::OpenParen]));
                }
            }
            Tok::OpenBrace | Tok::OpenParen => {}
            _ => return Err(self.error_here(&[Tok::Number, Tok::OpenBrace, Tok::OpenParen])),
        }
        let (range, can_continue) = self.parse_log_range()?;
        let expected: &[Tok] = if can_continue {
            &[]
        } else {
            &[Tok::CloseParen]
        };
        self.expect(Tok::CloseParen, expected)?;
        let grouping = if matches!(self.peek_tok()?, Tok::By | Tok::Without) {
            Some(self.parse_grouping()?)
        } else {
            None
        };
        let span = Span::new(op_token.start, self.last_end);
        let name = op.as_str();
        let mut value_param = None;
        let own_error = match param {
            Some(p) if op != RangeOp::QuantileOverTime => {
                Some(format!("parameter {p} not supported for operation {name}"))
            }
            Some(p) => match golang::parse_float(p) {
                Ok(v) => {
                    value_param = Some(v);
                    None
                }
                Err(e) => Some(format!("invalid parameter for operation {name}: {e}")),
            },
            None if op == RangeOp::QuantileOverTime => {
                Some(format!("parameter required for operation {name}"))
            }
            None => None,
        };
        let own_error = own_error
            .or_else(|| {
                (grouping.is_some() && !op.allows_grouping())
                    .then(|| format!("grouping not allowed for {name} aggregation"))
            })
            .or_else(|| match &range.unwrap {
                Some(_) if !op.allows_unwrap() => {
                    Some(format!("invalid aggregation {name} with unwrap"))
                }
                None if op.requires_unwrap() => {
                    Some(format!("invalid aggregation {name} without unwrap"))
                }
                _ => None,
            });
        let value = match own_error {
            Some(msg) => Value::Invalid(ParseError::validation(msg, Some(span))),
            None => match selector_error(&range.log) {
                Some(err) => Value::Invalid(err),
                None => Value::Sample(SampleExpr::RangeAggregation(Box::new(RangeAggregation {
                    op,
                    param: value_param,
                    range,
                    grouping,
                    span,
                }))),
            },
        };
        Ok(Node {
            value,
            span,
            depth: 1,
        })
    }

    /// A log range (`logRangeExpr` in Loki's grammar) inside a range
    /// aggregation. Also returns whether more pipeline text could have
    /// followed (which decides Loki's expected-token list at `)`).
    fn parse_log_range(&mut self) -> Result<(LogRange, bool), ParseError> {
        self.enter()?;
        let start = self.peek()?.start;
        let result = if self.peek_tok()? == Tok::OpenParen {
            self.bump()?;
            if self.peek_tok()? == Tok::OpenParen {
                // `( logRangeExpr )`
                let (mut inner, _) = self.parse_log_range()?;
                self.expect(Tok::CloseParen, &[Tok::CloseParen])?;
                inner.span = Span::new(start, self.last_end);
                (inner, false)
            } else {
                if self.peek_tok()? != Tok::OpenBrace {
                    return Err(self.error_here(&[Tok::OpenBrace, Tok::OpenParen]));
                }
                let selector = self.parse_selector()?;
                let (stages, unwrap) = self.parse_pipeline(true)?;
                if self.peek_tok()? == Tok::Range {
                    // `( selector ... RANGE ... )`: a parenthesised log range.
                    let (mut inner, can_continue) =
                        self.parse_range_tail(start, selector, stages, unwrap)?;
                    let expected: &[Tok] = if can_continue {
                        &[]
                    } else {
                        &[Tok::CloseParen]
                    };
                    self.expect(Tok::CloseParen, expected)?;
                    inner.span = Span::new(start, self.last_end);
                    (inner, false)
                } else {
                    // `( selector [pipeline] [unwrap] ) RANGE [offset] [unwrap]`
                    let expected: &[Tok] = if unwrap.is_some() {
                        &[Tok::Range, Tok::Pipe, Tok::CloseParen]
                    } else {
                        &[]
                    };
                    self.expect(Tok::CloseParen, expected)?;
                    let range_token = self.expect(Tok::Range, &[Tok::Range])?;
                    let range = duration_value(&range_token);
                    let offset = if self.peek_tok()? == Tok::Offset {
                        self.parse_offset()?
                    } else {
                        0
                    };
                    let mut unwrap = unwrap;
                    let bare = stages.is_empty() && unwrap.is_none();
                    if bare && self.peek_tok()? == Tok::Pipe {
                        let pipe = self.bump()?;
                        if self.peek_tok()? != Tok::Unwrap {
                            return Err(self.error_here(&[Tok::Unwrap]));
                        }
                        unwrap = Some(self.parse_unwrap(pipe.start)?);
                    }
                    let log = log_expr(selector, stages);
                    let range = LogRange {
                        log,
                        range,
                        offset,
                        unwrap,
                        span: Span::new(start, self.last_end),
                    };
                    (range, bare)
                }
            }
        } else {
            if self.peek_tok()? != Tok::OpenBrace {
                return Err(self.error_here(&[Tok::OpenBrace, Tok::OpenParen]));
            }
            let selector = self.parse_selector()?;
            let (stages, unwrap) = self.parse_pipeline(true)?;
            if self.peek_tok()? != Tok::Range {
                let expected: &[Tok] = if unwrap.is_some() {
                    &[Tok::Range, Tok::Pipe]
                } else {
                    &[]
                };
                return Err(self.error_here(expected));
            }
            self.parse_range_tail(start, selector, stages, unwrap)?
        };
        self.leave();
        Ok(result)
    }

    /// `RANGE [offset]`, then (when nothing came before the range)
    /// `[pipeline] [unwrap]`.
    fn parse_range_tail(
        &mut self,
        start: usize,
        selector: Selector,
        mut stages: Vec<Stage>,
        mut unwrap: Option<Unwrap>,
    ) -> Result<(LogRange, bool), ParseError> {
        let range_token = self.bump()?;
        let range = duration_value(&range_token);
        let offset = if self.peek_tok()? == Tok::Offset {
            self.parse_offset()?
        } else {
            0
        };
        let mut can_continue = false;
        if stages.is_empty() && unwrap.is_none() {
            let (more, after) = self.parse_pipeline(true)?;
            stages = more;
            unwrap = after;
            can_continue = true;
        }
        let log = log_expr(selector, stages);
        Ok((
            LogRange {
                log,
                range,
                offset,
                unwrap,
                span: Span::new(start, self.last_end),
            },
            can_continue,
        ))
    }

    fn parse_offset(&mut self) -> Result<i64, ParseError> {
        self.bump()?;
        let token = self.expect(Tok::Duration, &[Tok::Duration])?;
        Ok(duration_value(&token))
    }

    // ---------------------------------------------------------------
    // Log expressions

    fn parse_log_expr(&mut self) -> Result<LogExpr, ParseError> {
        let selector = self.parse_selector()?;
        let (pipeline, _) = self.parse_pipeline(false)?;
        Ok(log_expr(selector, pipeline))
    }

    fn parse_selector(&mut self) -> Result<Selector, ParseError> {
        let open = self.expect(Tok::OpenBrace, &[Tok::OpenBrace])?;
        let mut matchers = Vec::new();
        let mut matcher_spans = Vec::new();
        if self.peek_tok()? == Tok::CloseBrace {
            self.bump()?;
        } else {
            loop {
                let expected: &[Tok] = if matchers.is_empty() {
                    &[Tok::Identifier, Tok::CloseBrace]
                } else {
                    &[Tok::Identifier]
                };
                let (matcher, span) = self.parse_matcher(expected)?;
                matchers.push(matcher);
                matcher_spans.push(span);
                match self.peek_tok()? {
                    Tok::Comma => {
                        self.bump()?;
                    }
                    Tok::CloseBrace => {
                        self.bump()?;
                        break;
                    }
                    _ => return Err(self.error_here(&[Tok::CloseBrace, Tok::Comma])),
                }
            }
        }
        Ok(Selector {
            matchers,
            matcher_spans,
            span: Span::new(open.start, self.last_end),
        })
    }

    /// `name op "value"`.
    fn parse_matcher(&mut self, expected: &[Tok]) -> Result<(Matcher, Span), ParseError> {
        let name = self.expect(Tok::Identifier, expected)?;
        let Some(op) = match_op(self.peek_tok()?) else {
            return Err(self.error_here(&[Tok::Eq, Tok::Re, Tok::Nre, Tok::Neq]));
        };
        self.bump()?;
        let value = self.expect_string()?;
        let span = Span::new(name.start, self.last_end);
        Ok((new_matcher(name.text, op, value, span)?, span))
    }

    /// Pipeline stages until none follows. With `allow_unwrap`, a final
    /// `| unwrap ...` is parsed and returned separately.
    fn parse_pipeline(
        &mut self,
        allow_unwrap: bool,
    ) -> Result<(Vec<Stage>, Option<Unwrap>), ParseError> {
        let mut stages = Vec::new();
        loop {
            let tok = self.peek_tok()?;
            if line_filter_op(tok).is_some() {
                self.parse_line_filter(&mut stages)?;
                continue;
            }
            if tok != Tok::Pipe {
                return Ok((stages, None));
            }
            let pipe = self.bump()?;
            if allow_unwrap && self.peek_tok()? == Tok::Unwrap {
                let unwrap = self.parse_unwrap(pipe.start)?;
                return Ok((stages, Some(unwrap)));
            }
            let stage = self.parse_stage(pipe.start)?;
            stages.push(stage);
        }
    }

    /// A line filter with its `or` alternatives. Negated filters become one
    /// stage per value (`!= "a" or "b"` is `!= "a" != "b"`), as in Loki.
    fn parse_line_filter(&mut self, out: &mut Vec<Stage>) -> Result<(), ParseError> {
        let op_token = self.bump()?;
        let op = line_filter_op(op_token.tok).unwrap_or(LineFilterOp::Contains);
        let mut values = vec![self.parse_line_filter_value()?];
        while self.peek_tok()? == Tok::Or {
            self.bump()?;
            values.push(self.parse_line_filter_value()?);
        }
        if op.is_negated() {
            for (i, value) in values.into_iter().enumerate() {
                let span = if i == 0 {
                    Span::new(op_token.start, value.span.end as usize)
                } else {
                    value.span
                };
                out.push(Stage::LineFilter(LineFilter {
                    op,
                    values: vec![value],
                    span,
                }));
            }
        } else {
            out.push(Stage::LineFilter(LineFilter {
                op,
                values,
                span: Span::new(op_token.start, self.last_end),
            }));
        }
        Ok(())
    }

    fn parse_line_filter_value(&mut self) -> Result<LineFilterValue, ParseError> {
        match self.peek_tok()? {
            Tok::Str => {
                let token = self.bump()?;
                let span = token.span();
                Ok(LineFilterValue {
                    value: string_value(token),
                    ip: false,
                    span,
                })
            }
            Tok::Ip => {
                let start = self.bump()?.start;
                self.expect(Tok::OpenParen, &[Tok::OpenParen])?;
                let value = self.expect_string()?;
                self.expect(Tok::CloseParen, &[Tok::CloseParen])?;
                Ok(LineFilterValue {
                    value,
                    ip: true,
                    span: Span::new(start, self.last_end),
                })
            }
            _ => Err(self.error_here(&[Tok::Str, Tok::Ip])),
        }
    }

    /// The stage after a `|`.
    fn parse_stage(&mut self, start: usize) -> Result<Stage, ParseError> {
        let tok = self.peek_tok()?;
        let span = |p: &Self| Span::new(start, p.last_end);
        let stage = match tok {
            Tok::Logfmt => {
                self.bump()?;
                let (mut strict, mut keep_empty) = (false, false);
                while self.peek_tok()? == Tok::FunctionFlag {
                    match self.bump()?.text {
                        "--strict" => strict = true,
                        _ => keep_empty = true,
                    }
                }
                let params = if self.peek_tok()? == Tok::Identifier {
                    self.parse_extractions()?
                } else {
                    Vec::new()
                };
                Stage::Logfmt(LogfmtParser {
                    strict,
                    keep_empty,
                    params,
                    span: span(self),
                })
            }
            Tok::Json => {
                self.bump()?;
                let params = if self.peek_tok()? == Tok::Identifier {
                    self.parse_extractions()?
                } else {
                    Vec::new()
                };
                Stage::Json(JsonParser {
                    params,
                    span: span(self),
                })
            }
            Tok::Regexp => {
                self.bump()?;
                let regex = self.expect_string()?;
                if let Err(e) = validate::check_regexp_parser(&regex) {
                    return Err(ParseError::validation(
                        format!("invalid regexp parser: {e}"),
                        Some(span(self)),
                    ));
                }
                Stage::Regexp(RegexpParser {
                    regex,
                    span: span(self),
                })
            }
            Tok::Pattern => {
                self.bump()?;
                let pattern = self.expect_string()?;
                if let Err(e) = validate::check_pattern_parser(&pattern) {
                    return Err(ParseError::validation(
                        format!("invalid pattern parser: {e}"),
                        Some(span(self)),
                    ));
                }
                Stage::Pattern(PatternParser {
                    pattern,
                    span: span(self),
                })
            }
            Tok::Unpack => {
                self.bump()?;
                Stage::Unpack(span(self))
            }
            Tok::Decolorize => {
                self.bump()?;
                Stage::Decolorize(span(self))
            }
            Tok::LineFmt => {
                self.bump()?;
                let template = self.expect_string()?;
                Stage::LineFormat(LineFormat {
                    template,
                    span: span(self),
                })
            }
            Tok::LabelFmt => {
                self.bump()?;
                let formats = self.parse_label_formats()?;
                Stage::LabelFormat(LabelFormat {
                    formats,
                    span: span(self),
                })
            }
            Tok::Drop | Tok::Keep => {
                self.bump()?;
                let labels = self.parse_named_matchers()?;
                let selection = LabelSelection {
                    labels,
                    span: span(self),
                };
                if tok == Tok::Drop {
                    Stage::Drop(selection)
                } else {
                    Stage::Keep(selection)
                }
            }
            Tok::Identifier | Tok::OpenParen => {
                let (filter, _) = self.parse_label_filter()?;
                Stage::LabelFilter(LabelFilterStage {
                    filter,
                    span: span(self),
                })
            }
            _ => return Err(self.error_here(&[])),
        };
        Ok(stage)
    }

    /// `a="path", b` of `json`/`logfmt`.
    fn parse_extractions(&mut self) -> Result<Vec<LabelExtraction>, ParseError> {
        let mut out = Vec::new();
        loop {
            let id = self.expect(Tok::Identifier, &[Tok::Identifier])?;
            let expression = if self.peek_tok()? == Tok::Eq {
                self.bump()?;
                self.expect_string()?
            } else {
                id.text.to_string()
            };
            out.push(LabelExtraction {
                label: id.text.to_string(),
                expression,
                span: Span::new(id.start, self.last_end),
            });
            if self.peek_tok()? != Tok::Comma {
                return Ok(out);
            }
            self.bump()?;
        }
    }

    /// `dst=src, dst="{{template}}"` of `label_format`.
    fn parse_label_formats(&mut self) -> Result<Vec<LabelFmt>, ParseError> {
        let mut out = Vec::new();
        loop {
            let dst = self.expect(Tok::Identifier, &[Tok::Identifier])?;
            self.expect(Tok::Eq, &[Tok::Eq])?;
            let value = match self.peek_tok()? {
                Tok::Identifier => LabelFmtValue::Rename(self.bump()?.text.to_string()),
                Tok::Str => LabelFmtValue::Template(self.expect_string()?),
                _ => return Err(self.error_here(&[Tok::Identifier, Tok::Str])),
            };
            out.push(LabelFmt {
                dst: dst.text.to_string(),
                value,
                span: Span::new(dst.start, self.last_end),
            });
            if self.peek_tok()? != Tok::Comma {
                return Ok(out);
            }
            self.bump()?;
        }
    }

    /// `a, b="c", d=~"e"` of `drop`/`keep`.
    fn parse_named_matchers(&mut self) -> Result<Vec<NamedMatcher>, ParseError> {
        let mut out = Vec::new();
        loop {
            let id = self.expect(Tok::Identifier, &[Tok::Identifier])?;
            let matcher = match match_op(self.peek_tok()?) {
                Some(op) => {
                    self.bump()?;
                    let value = self.expect_string()?;
                    let span = Span::new(id.start, self.last_end);
                    Some(new_matcher(id.text, op, value, span)?)
                }
                None => None,
            };
            out.push(NamedMatcher {
                name: id.text.to_string(),
                matcher,
                span: Span::new(id.start, self.last_end),
            });
            if self.peek_tok()? != Tok::Comma {
                return Ok(out);
            }
            self.bump()?;
        }
    }

    /// `| unwrap label` or `| unwrap conv(label)`, then `| <label filter>`s.
    fn parse_unwrap(&mut self, start: usize) -> Result<Unwrap, ParseError> {
        self.bump()?;
        let conversion = match self.peek_tok()? {
            Tok::BytesConv => Some(UnwrapConversion::Bytes),
            Tok::DurationConv => Some(UnwrapConversion::Duration),
            Tok::DurationSecondsConv => Some(UnwrapConversion::DurationSeconds),
            _ => None,
        };
        let label = if conversion.is_some() {
            self.bump()?;
            self.expect(Tok::OpenParen, &[Tok::OpenParen])?;
            let id = self.expect(Tok::Identifier, &[Tok::Identifier])?;
            self.expect(Tok::CloseParen, &[Tok::CloseParen])?;
            id.text.to_string()
        } else {
            let expected = [
                Tok::Identifier,
                Tok::BytesConv,
                Tok::DurationConv,
                Tok::DurationSecondsConv,
            ];
            self.expect(Tok::Identifier, &expected)?.text.to_string()
        };
        let mut post_filters = Vec::new();
        while self.peek_tok()? == Tok::Pipe {
            self.bump()?;
            let (filter, _) = self.parse_label_filter()?;
            post_filters.push(filter);
        }
        Ok(Unwrap {
            label,
            conversion,
            post_filters,
            span: Span::new(start, self.last_end),
        })
    }

    // ---------------------------------------------------------------
    // Label filters

    /// A label filter, joining operands as yacc resolves Loki's ambiguous
    /// `labelFilter` rules: shift-reduce with an explicit stack, reducing
    /// the join on the stack before the next one only when yacc would
    /// ([`reduces`]). Only parentheses recurse.
    fn parse_label_filter(&mut self) -> Result<(LabelFilter, u32), ParseError> {
        let mut operands = vec![self.parse_label_filter_operand()?];
        let mut joins: Vec<Join> = Vec::new();
        loop {
            let join = match self.peek_tok()? {
                Tok::And => Join::And,
                Tok::Or => Join::Or,
                Tok::Comma => Join::Comma,
                Tok::Identifier | Tok::OpenParen => Join::Juxtapose,
                _ => break,
            };
            while joins.last().is_some_and(|&top| reduces(top, join)) {
                self.reduce_label_filter(&mut operands, &mut joins)?;
            }
            if join != Join::Juxtapose {
                self.bump()?;
            }
            joins.push(join);
            operands.push(self.parse_label_filter_operand()?);
        }
        while !joins.is_empty() {
            self.reduce_label_filter(&mut operands, &mut joins)?;
        }
        match operands.pop() {
            Some(filter) if operands.is_empty() => Ok(filter),
            _ => Err(self.error_here(&[])),
        }
    }

    /// Replaces the top two operands with the top join applied to them.
    fn reduce_label_filter(
        &mut self,
        operands: &mut Vec<(LabelFilter, u32)>,
        joins: &mut Vec<Join>,
    ) -> Result<(), ParseError> {
        let (Some(join), Some((right, right_depth)), Some((left, left_depth))) =
            (joins.pop(), operands.pop(), operands.pop())
        else {
            // The loop pushes one operand per join after the first.
            return Err(self.error_here(&[]));
        };
        let depth = left_depth.max(right_depth) + 1;
        self.check_depth(depth)?;
        let span = left.span().to(right.span());
        let op = if join == Join::Or {
            LabelFilterJoin::Or
        } else {
            LabelFilterJoin::And
        };
        let filter = LabelFilter::Binary(Box::new(BinaryLabelFilter {
            op,
            left,
            right,
            span,
        }));
        operands.push((filter, depth));
        Ok(())
    }

    fn parse_label_filter_operand(&mut self) -> Result<(LabelFilter, u32), ParseError> {
        match self.peek_tok()? {
            Tok::OpenParen => {
                self.enter()?;
                self.bump()?;
                let inner = self.parse_label_filter()?;
                self.expect(Tok::CloseParen, &[])?;
                self.leave();
                Ok(inner)
            }
            Tok::Identifier => self.parse_label_filter_leaf(),
            _ => Err(self.error_here(&[Tok::Identifier, Tok::OpenParen])),
        }
    }

    /// `name op value`.
    #[inline(never)]
    fn parse_label_filter_leaf(&mut self) -> Result<(LabelFilter, u32), ParseError> {
        let name = self.bump()?;
        let op_tok = self.peek_tok()?;
        let label = name.text.to_string();
        let filter = match op_tok {
            Tok::Re | Tok::Nre => {
                self.bump()?;
                let value = self.expect_string()?;
                let span = Span::new(name.start, self.last_end);
                let op = match_op(op_tok).unwrap_or(MatchOp::Re);
                LabelFilter::Matcher(MatcherFilter {
                    matcher: new_matcher(name.text, op, value, span)?,
                    span,
                })
            }
            Tok::Eq | Tok::Neq | Tok::Gt | Tok::Gte | Tok::Lt | Tok::Lte | Tok::CmpEq => {
                self.bump()?;
                let op = cmp_op(op_tok).unwrap_or(CmpOp::Eq);
                let equality = matches!(op_tok, Tok::Eq | Tok::Neq);
                let value_tok = self.peek_tok()?;
                match value_tok {
                    Tok::Str if equality => {
                        let value = self.expect_string()?;
                        let span = Span::new(name.start, self.last_end);
                        let op = match_op(op_tok).unwrap_or(MatchOp::Eq);
                        LabelFilter::Matcher(MatcherFilter {
                            matcher: new_matcher(name.text, op, value, span)?,
                            span,
                        })
                    }
                    Tok::Ip if equality => {
                        self.bump()?;
                        self.expect(Tok::OpenParen, &[Tok::OpenParen])?;
                        let pattern = self.expect_string()?;
                        self.expect(Tok::CloseParen, &[Tok::CloseParen])?;
                        LabelFilter::Ip(IpFilter {
                            label,
                            negated: op_tok == Tok::Neq,
                            pattern,
                            span: Span::new(name.start, self.last_end),
                        })
                    }
                    Tok::Number | Tok::Add | Tok::Sub => {
                        let value = self.parse_filter_number()?;
                        LabelFilter::Number(NumberFilter {
                            label,
                            op,
                            value,
                            span: Span::new(name.start, self.last_end),
                        })
                    }
                    Tok::Duration => {
                        let token = self.bump()?;
                        LabelFilter::Duration(DurationFilter {
                            label,
                            op,
                            value: duration_value(&token),
                            span: Span::new(name.start, self.last_end),
                        })
                    }
                    Tok::Bytes => {
                        let token = self.bump()?;
                        let value = match token.value {
                            TokenValue::Bytes(b) => b,
                            _ => 0,
                        };
                        LabelFilter::Bytes(BytesFilter {
                            label,
                            op,
                            value,
                            span: Span::new(name.start, self.last_end),
                        })
                    }
                    _ => return Err(self.error_here(&[])),
                }
            }
            _ => return Err(self.error_here(&[])),
        };
        if matches!(name.text, "__error__" | "__error_details__")
            && !matches!(filter, LabelFilter::Matcher(_))
        {
            return Err(ParseError::validation(
                format!(
                    "{0} can only be compared with a string matcher (=, !=, =~, !~), e.g. {0}!=\"\"",
                    name.text
                ),
                Some(filter.span()),
            ));
        }
        Ok((filter, 1))
    }

    /// `NUMBER`, `+NUMBER` or `-NUMBER` as the value of a label filter.
    fn parse_filter_number(&mut self) -> Result<f64, ParseError> {
        let first = self.bump()?;
        let (negate, number) = if first.tok == Tok::Number {
            (false, first)
        } else {
            let number = self.expect(Tok::Number, &[Tok::Number])?;
            (first.tok == Tok::Sub, number)
        };
        match golang::parse_float(number.text) {
            Ok(v) => Ok(if negate { -v } else { v }),
            Err(e) => Err(ParseError::validation(
                format!("unable to parse literal as a float: {e}"),
                Some(number.span()),
            )),
        }
    }
}

/// A literal from a NUMBER token (Loki's `mustNewLiteralExpr`).
fn literal_node(number: &Token<'_>, start: usize, negate: bool) -> Node {
    let span = Span::new(start, number.end);
    let value = match golang::parse_float(number.text) {
        Ok(v) => Value::Sample(SampleExpr::Literal(Literal {
            value: if negate { -v } else { v },
            span,
        })),
        Err(e) => Value::Invalid(ParseError::validation(
            format!("unable to parse literal as a float: {e}"),
            Some(span),
        )),
    };
    Node {
        value,
        span,
        depth: 1,
    }
}

fn log_expr(selector: Selector, pipeline: Vec<Stage>) -> LogExpr {
    let end = pipeline
        .iter()
        .map(|s| s.span().end)
        .max()
        .unwrap_or(selector.span.end)
        .max(selector.span.end);
    let span = Span {
        start: selector.span.start,
        end,
    };
    LogExpr {
        selector,
        pipeline,
        span,
    }
}
