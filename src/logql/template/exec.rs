//! Execution of a parsed template against one entry, following Go's
//! `text/template/exec.go`: pipelines pass their value as the last argument
//! of the next command, arguments are checked against the function's Go
//! signature, `if`/`with`/`range` scope their variables, and the data is the
//! entry's labels as a `map[string]string` with `missingkey=zero`.
//!
//! Looking up a label or the line borrows from the entry: no allocation
//! beyond what functions build and the output itself.

use smallvec::SmallVec;

use super::ast::{Arg, Branch, Command, Node, Pipe};
use super::funcs::{Env, Func, P, Sig, call};
use super::gotime::{GoTime, Zone};
use super::printf::write_v;
use super::value::{Value, is_true};
use super::{Template, TemplateContext, TemplateError};

type Args<'a> = SmallVec<[Value<'a>; 4]>;

/// How a walk ended: normally, or by `{{break}}`/`{{continue}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// A node to blame in an error message.
#[derive(Clone, Copy)]
enum At<'a> {
    Arg(&'a Arg),
    Cmd(&'a Command),
    Pipe(&'a Pipe),
}

impl At<'_> {
    fn pos(&self) -> usize {
        match self {
            At::Arg(a) => a.pos(),
            At::Cmd(c) => c.pos,
            At::Pipe(p) => p.pos,
        }
    }

    fn context(&self) -> String {
        match self {
            At::Arg(a) => a.to_string(),
            At::Cmd(c) => c.to_string(),
            At::Pipe(p) => p.to_string(),
        }
    }
}

/// Methods of `time.Time` a template may call (`{{ (__timestamp__).Unix }}`).
#[derive(Debug, Clone, Copy)]
enum TimeMethod {
    Unix,
    UnixMilli,
    UnixMicro,
    UnixNano,
    Year,
    YearDay,
    Day,
    Hour,
    Minute,
    Second,
    Nanosecond,
    Format,
    String,
    Utc,
    Local,
    IsZero,
}

impl TimeMethod {
    fn lookup(name: &str) -> Option<TimeMethod> {
        Some(match name {
            "Unix" => TimeMethod::Unix,
            "UnixMilli" => TimeMethod::UnixMilli,
            "UnixMicro" => TimeMethod::UnixMicro,
            "UnixNano" => TimeMethod::UnixNano,
            "Year" => TimeMethod::Year,
            "YearDay" => TimeMethod::YearDay,
            "Day" => TimeMethod::Day,
            "Hour" => TimeMethod::Hour,
            "Minute" => TimeMethod::Minute,
            "Second" => TimeMethod::Second,
            "Nanosecond" => TimeMethod::Nanosecond,
            "Format" => TimeMethod::Format,
            "String" => TimeMethod::String,
            "UTC" => TimeMethod::Utc,
            "Local" => TimeMethod::Local,
            "IsZero" => TimeMethod::IsZero,
            _ => return None,
        })
    }

    fn sig(self) -> Sig {
        match self {
            TimeMethod::Format => Sig {
                fixed: &[P::Str],
                variadic: None,
            },
            _ => Sig {
                fixed: &[],
                variadic: None,
            },
        }
    }

    fn call<'a>(self, t: &GoTime, args: &[Value<'a>]) -> Value<'a> {
        let field = |layout: &str| {
            let s = t.format(layout);
            s.trim().parse::<i64>().unwrap_or(0)
        };
        match self {
            TimeMethod::Unix => Value::Int64(t.unix()),
            TimeMethod::UnixMilli => Value::Int64(t.unix_milli()),
            TimeMethod::UnixMicro => Value::Int64(t.unix_nano() / 1000),
            TimeMethod::UnixNano => Value::Int64(t.unix_nano()),
            TimeMethod::Year => Value::Int(field("2006")),
            TimeMethod::YearDay => Value::Int(field("002")),
            TimeMethod::Day => Value::Int(field("2")),
            TimeMethod::Hour => Value::Int(field("15")),
            TimeMethod::Minute => Value::Int(field("4")),
            TimeMethod::Second => Value::Int(field("5")),
            TimeMethod::Nanosecond => Value::Int(t.unix_nano().rem_euclid(1_000_000_000)),
            TimeMethod::Format => match args.first() {
                Some(Value::Str(l)) => Value::string(t.format(l)),
                _ => Value::str(""),
            },
            TimeMethod::String => {
                let mut s = String::new();
                t.write_go_string(&mut s);
                Value::string(s)
            }
            TimeMethod::Utc | TimeMethod::Local => Value::Time(t.in_zone(Zone::Utc)),
            TimeMethod::IsZero => Value::Bool(t.same_instant(&GoTime::zero())),
        }
    }
}

/// What a command calls.
enum Callee {
    Func(Func),
    Method(TimeMethod, GoTime),
}

pub(crate) struct Exec<'a> {
    tmpl: &'a Template,
    ctx: &'a dyn TemplateContext,
    line: &'a str,
    timestamp_nanos: i64,
    vars: Vec<(&'a str, Value<'a>)>,
}

impl<'a> Exec<'a> {
    pub(crate) fn new(tmpl: &'a Template, ctx: &'a dyn TemplateContext) -> Self {
        Exec {
            tmpl,
            ctx,
            line: ctx.line(),
            timestamp_nanos: ctx.timestamp().nanos(),
            vars: Vec::new(),
        }
    }

    pub(crate) fn run(&mut self, out: &mut String) -> Result<(), TemplateError> {
        self.walk(&Value::Labels, &self.tmpl.root, out)?;
        Ok(())
    }

    fn fail(&self, at: At<'_>, message: impl Into<String>) -> TemplateError {
        let src = &self.tmpl.source;
        let pos = at.pos().min(src.len());
        let before = &src[..pos];
        let (line, col) = match before.rfind('\n') {
            Some(nl) => (1 + before.matches('\n').count(), pos - nl - 1),
            None => (1, pos),
        };
        TemplateError::Exec {
            name: self.tmpl.name.clone(),
            line,
            col,
            context: at.context(),
            message: message.into(),
        }
    }

    fn labels_len(&self) -> usize {
        let mut n = 0;
        self.ctx.for_each_label(&mut |_, _| n += 1);
        n
    }

    fn walk(
        &mut self,
        dot: &Value<'a>,
        nodes: &'a [Node],
        out: &mut String,
    ) -> Result<Flow, TemplateError> {
        for node in nodes {
            let flow = match node {
                Node::Text(t) => {
                    out.push_str(t);
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.print_value(&v, out);
                    }
                    Flow::Normal
                }
                Node::If(b) => self.walk_if_or_with(dot, b, false, out)?,
                Node::With(b) => self.walk_if_or_with(dot, b, true, out)?,
                Node::Range(b) => self.walk_range(dot, b, out)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn print_value(&self, v: &Value<'a>, out: &mut String) {
        match v {
            Value::Invalid => out.push_str("<no value>"),
            Value::Str(s) => out.push_str(s),
            _ => {
                let ctx = self.ctx;
                write_v(out, v, &|f: &mut dyn FnMut(&str, &str)| {
                    ctx.for_each_label(f)
                });
            }
        }
    }

    fn walk_if_or_with(
        &mut self,
        dot: &Value<'a>,
        b: &'a Branch,
        with: bool,
        out: &mut String,
    ) -> Result<Flow, TemplateError> {
        let mark = self.vars.len();
        let result = (|| {
            let val = self.eval_pipeline(dot, &b.pipe)?;
            if is_true(&val, || self.labels_len()) {
                if with {
                    self.walk(&val, &b.list, out)
                } else {
                    self.walk(dot, &b.list, out)
                }
            } else if let Some(e) = &b.else_list {
                self.walk(dot, e, out)
            } else {
                Ok(Flow::Normal)
            }
        })();
        self.vars.truncate(mark);
        result
    }

    fn walk_range(
        &mut self,
        dot: &Value<'a>,
        b: &'a Branch,
        out: &mut String,
    ) -> Result<Flow, TemplateError> {
        let mark = self.vars.len();
        let result = self.range_body(dot, b, out);
        self.vars.truncate(mark);
        result.map(|_| Flow::Normal)
    }

    fn range_body(
        &mut self,
        dot: &Value<'a>,
        b: &'a Branch,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let items: Vec<(Value<'a>, Value<'a>)> = match &val {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| (Value::string(k.clone()), v.clone()))
                .collect(),
            Value::Labels => {
                let mut pairs: Vec<(&'a str, &'a str)> = Vec::new();
                self.ctx.for_each_label(&mut |k, v| pairs.push((k, v)));
                pairs.sort_unstable();
                pairs
                    .into_iter()
                    .map(|(k, v)| (Value::str(k), Value::str(v)))
                    .collect()
            }
            Value::Int(n) | Value::Int64(n) => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.fail(
                        At::Pipe(&b.pipe),
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                (0..*n)
                    .map(|i| {
                        (
                            Value::Invalid,
                            if matches!(val, Value::Int(_)) {
                                Value::Int(i)
                            } else {
                                Value::Int64(i)
                            },
                        )
                    })
                    .collect()
            }
            Value::Invalid => Vec::new(),
            other => {
                let mut s = String::new();
                self.print_value(other, &mut s);
                return Err(self.fail(At::Pipe(&b.pipe), format!("range can't iterate over {s}")));
            }
        };
        if items.is_empty() {
            if let Some(e) = &b.else_list {
                self.walk(dot, e, out)?;
            }
            return Ok(());
        }
        let body_mark = self.vars.len();
        for (index, elem) in items {
            let decl = &b.pipe.decl;
            if !decl.is_empty() {
                if b.pipe.is_assign {
                    let target = if decl.len() > 1 {
                        index.clone()
                    } else {
                        elem.clone()
                    };
                    self.set_var(At::Pipe(&b.pipe), &decl[0], target)?;
                    if decl.len() > 1 {
                        self.set_var(At::Pipe(&b.pipe), &decl[1], elem.clone())?;
                    }
                } else {
                    let n = self.vars.len();
                    self.vars[n - 1].1 = elem.clone();
                    if decl.len() > 1 {
                        self.vars[n - 2].1 = index;
                    }
                }
            }
            let flow = self.walk(&elem, &b.list, out);
            self.vars.truncate(body_mark);
            if flow? == Flow::Break {
                break;
            }
        }
        Ok(())
    }

    fn set_var(&mut self, at: At<'_>, name: &str, value: Value<'a>) -> Result<(), TemplateError> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(self.fail(at, format!("undefined variable: {name}"))),
        }
    }

    fn var_value(&self, at: At<'_>, name: &str) -> Result<Value<'a>, TemplateError> {
        if name == "$" {
            return Ok(Value::Labels);
        }
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.fail(at, format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(
        &mut self,
        dot: &Value<'a>,
        pipe: &'a Pipe,
    ) -> Result<Value<'a>, TemplateError> {
        let mut value: Option<Value<'a>> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Invalid);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(At::Pipe(pipe), name, value.clone())?;
            } else {
                self.vars.push((name.as_str(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(
        &self,
        cmd: &'a Command,
        final_: &Option<Value<'a>>,
    ) -> Result<(), TemplateError> {
        if cmd.args.len() > 1 || final_.is_some() {
            return Err(self.fail(
                At::Cmd(cmd),
                format!("can't give argument to non-function {}", cmd.args[0]),
            ));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value<'a>,
        cmd: &'a Command,
        final_: Option<Value<'a>>,
    ) -> Result<Value<'a>, TemplateError> {
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        match first {
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), first, idents, rest, final_, Some(cmd))
            }
            Arg::Chain { node, fields, .. } => {
                let recv = self.eval_arg(dot, None, node)?;
                self.eval_field_chain(dot, recv, first, fields, rest, final_, Some(cmd))
            }
            Arg::Func { func, name, .. } => self.eval_call(
                dot,
                Callee::Func(*func),
                name,
                At::Cmd(cmd),
                Some(cmd),
                rest,
                final_,
            ),
            Arg::Pipe(p) => {
                self.not_a_function(cmd, &final_)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Variable { name, fields, .. } => {
                let v = self.var_value(At::Arg(first), name)?;
                if fields.is_empty() {
                    self.not_a_function(cmd, &final_)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, first, fields, rest, final_, Some(cmd))
            }
            Arg::Bool { value, .. } => {
                self.not_a_function(cmd, &final_)?;
                Ok(Value::Bool(*value))
            }
            Arg::Dot { .. } => {
                self.not_a_function(cmd, &final_)?;
                Ok(dot.clone())
            }
            Arg::Nil { .. } => Err(self.fail(At::Arg(first), "nil is not a command")),
            Arg::Number(n) => {
                self.not_a_function(cmd, &final_)?;
                self.ideal_constant(first, n)
            }
            Arg::Str { value, .. } => {
                self.not_a_function(cmd, &final_)?;
                Ok(Value::str(value))
            }
        }
    }

    fn ideal_constant(
        &self,
        at: &'a Arg,
        n: &super::ast::Number,
    ) -> Result<Value<'a>, TemplateError> {
        let t = &n.text;
        let is_hex_int = t.len() > 2
            && t.starts_with('0')
            && matches!(t.as_bytes()[1], b'x' | b'X')
            && !t.contains(['p', 'P']);
        let is_rune = t.starts_with('\'');
        if let Some(f) = n.float
            && !is_hex_int
            && !is_rune
            && t.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Value::Float(f));
        }
        if let Some(i) = n.int {
            return Ok(Value::Int(i));
        }
        Err(self.fail(At::Arg(at), format!("{t} overflows int")))
    }

    /// `.a.b.c` on `receiver`: every field but the last takes no arguments.
    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain(
        &mut self,
        dot: &Value<'a>,
        mut receiver: Value<'a>,
        node: &'a Arg,
        idents: &'a [String],
        args: &'a [Arg],
        final_: Option<Value<'a>>,
        cmd: Option<&'a Command>,
    ) -> Result<Value<'a>, TemplateError> {
        let n = idents.len();
        for ident in &idents[..n - 1] {
            receiver = self.eval_field(dot, ident, node, &[], None, receiver, None)?;
        }
        self.eval_field(dot, &idents[n - 1], node, args, final_, receiver, cmd)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field(
        &mut self,
        dot: &Value<'a>,
        name: &'a str,
        node: &'a Arg,
        args: &'a [Arg],
        final_: Option<Value<'a>>,
        receiver: Value<'a>,
        cmd: Option<&'a Command>,
    ) -> Result<Value<'a>, TemplateError> {
        let has_args = !args.is_empty() || final_.is_some();
        match &receiver {
            Value::Invalid => Ok(Value::Invalid),
            Value::Time(t) => match TimeMethod::lookup(name) {
                Some(m) => {
                    let at = cmd.map_or(At::Arg(node), At::Cmd);
                    self.eval_call(
                        dot,
                        Callee::Method(m, t.clone()),
                        name,
                        at,
                        cmd,
                        args,
                        final_,
                    )
                }
                None => Err(self.fail(
                    At::Arg(node),
                    format!("can't evaluate field {name} in type time.Time"),
                )),
            },
            Value::Labels => {
                if has_args {
                    return Err(self.fail(
                        At::Arg(node),
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                Ok(Value::str(self.ctx.label(name).unwrap_or("")))
            }
            Value::Map(m) => {
                if has_args {
                    return Err(self.fail(
                        At::Arg(node),
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                Ok(m.get(name).cloned().unwrap_or(Value::Invalid))
            }
            other => Err(self.fail(
                At::Arg(node),
                format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }

    /// Calls a function or method with Go's argument rules.
    #[allow(clippy::too_many_arguments)]
    fn eval_call(
        &mut self,
        dot: &Value<'a>,
        callee: Callee,
        name: &str,
        at: At<'a>,
        cmd: Option<&'a Command>,
        args: &'a [Arg],
        final_: Option<Value<'a>>,
    ) -> Result<Value<'a>, TemplateError> {
        let sig = match &callee {
            Callee::Func(f) => f.sig(),
            Callee::Method(m, _) => m.sig(),
        };
        let num_in = args.len() + usize::from(final_.is_some());
        let num_fixed = sig.fixed.len();
        if sig.variadic.is_some() {
            if num_in < num_fixed {
                return Err(self.fail(
                    at,
                    format!(
                        "wrong number of args for {name}: want at least {num_fixed} got {}",
                        args.len()
                    ),
                ));
            }
        } else if num_in != num_fixed {
            return Err(self.fail(
                at,
                format!("wrong number of args for {name}: want {num_fixed} got {num_in}"),
            ));
        }
        let param =
            |i: usize| -> P { sig.fixed.get(i).copied().or(sig.variadic).unwrap_or(P::Any) };
        // and/or evaluate their arguments lazily and return one of them.
        if let Callee::Func(f @ (Func::And | Func::Or)) = callee {
            let want = f == Func::Or;
            let mut v = Value::Invalid;
            for a in args {
                v = self.eval_arg(dot, Some(P::Val), a)?;
                if is_true(&v, || self.labels_len()) == want {
                    return Ok(v);
                }
            }
            if let Some(fin) = final_ {
                v = fin;
            }
            return Ok(v);
        }
        let mut argv: Args<'a> = SmallVec::new();
        for (i, a) in args.iter().enumerate() {
            argv.push(self.eval_arg(dot, Some(param(i)), a)?);
        }
        if let Some(fin) = final_ {
            let t = param(num_in - 1);
            let fin = self.validate_type(at, fin, t)?;
            argv.push(fin);
        }
        match callee {
            Callee::Method(m, t) => Ok(m.call(&t, &argv)),
            Callee::Func(f) => {
                let ctx = self.ctx;
                let labels = |visit: &mut dyn FnMut(&str, &str)| ctx.for_each_label(visit);
                let labels_len = || self.labels_len();
                let env = Env {
                    line: self.line,
                    timestamp_nanos: self.timestamp_nanos,
                    labels: &labels,
                    labels_len: &labels_len,
                };
                let regex = cmd.and_then(|c| c.regex.as_ref());
                call(f, &mut argv, &env, regex)
                    .map_err(|e| self.fail(at, format!("error calling {name}: {e}")))
            }
        }
    }

    fn validate_type(&self, at: At<'_>, v: Value<'a>, t: P) -> Result<Value<'a>, TemplateError> {
        let ok = match (t, &v) {
            (P::Any | P::Val, _) => true,
            (_, Value::Invalid) => {
                return Err(self.fail(at, format!("invalid value; expected {}", t.go_name())));
            }
            (P::Str, Value::Str(_))
            | (P::Int, Value::Int(_))
            | (P::Float, Value::Float(_))
            | (P::Time, Value::Time(_)) => true,
            _ => false,
        };
        if !ok {
            return Err(self.fail(
                at,
                format!(
                    "wrong type for value; expected {}; got {}",
                    t.go_name(),
                    v.type_name()
                ),
            ));
        }
        Ok(v)
    }

    /// Evaluates an argument for a parameter of type `t` (`None`: untyped,
    /// as for a chain's receiver).
    fn eval_arg(
        &mut self,
        dot: &Value<'a>,
        t: Option<P>,
        a: &'a Arg,
    ) -> Result<Value<'a>, TemplateError> {
        let check = |s: &Self, v: Value<'a>| match t {
            Some(t) => s.validate_type(At::Arg(a), v, t),
            None => Ok(v),
        };
        match a {
            Arg::Dot { .. } => return check(self, dot.clone()),
            Arg::Nil { .. } => {
                return match t {
                    Some(P::Any | P::Val) | None => Ok(Value::Invalid),
                    Some(t) => {
                        Err(self.fail(At::Arg(a), format!("cannot assign nil to {}", t.go_name())))
                    }
                };
            }
            Arg::Field { idents, .. } => {
                let v = self.eval_field_chain(dot, dot.clone(), a, idents, &[], None, None)?;
                return check(self, v);
            }
            Arg::Variable { name, fields, .. } => {
                let v = self.var_value(At::Arg(a), name)?;
                let v = if fields.is_empty() {
                    v
                } else {
                    self.eval_field_chain(dot, v, a, fields, &[], None, None)?
                };
                return check(self, v);
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(dot, p)?;
                return check(self, v);
            }
            Arg::Func { func, name, .. } => {
                let v =
                    self.eval_call(dot, Callee::Func(*func), name, At::Arg(a), None, &[], None)?;
                return check(self, v);
            }
            Arg::Chain { node, fields, .. } => {
                if matches!(**node, Arg::Nil { .. }) {
                    return Err(self.fail(
                        At::Arg(a),
                        format!("indirection through explicit nil in {a}"),
                    ));
                }
                let recv = self.eval_arg(dot, None, node)?;
                let v = self.eval_field_chain(dot, recv, a, fields, &[], None, None)?;
                return check(self, v);
            }
            Arg::Bool { .. } | Arg::Number(_) | Arg::Str { .. } => {}
        }
        match (t.unwrap_or(P::Any), a) {
            (P::Float, Arg::Number(n)) if n.float.is_some() => {
                Ok(Value::Float(n.float.unwrap_or(0.0)))
            }
            (P::Float, _) => Err(self.fail(At::Arg(a), format!("expected float; found {a}"))),
            (P::Int, Arg::Number(n)) if n.int.is_some() => Ok(Value::Int(n.int.unwrap_or(0))),
            (P::Int, _) => Err(self.fail(At::Arg(a), format!("expected integer; found {a}"))),
            (P::Str, Arg::Str { value, .. }) => Ok(Value::str(value)),
            (P::Str, _) => Err(self.fail(At::Arg(a), format!("expected string; found {a}"))),
            (P::Time, _) => Err(self.fail(
                At::Arg(a),
                format!("can't handle {a} for arg of type time.Time"),
            )),
            (P::Any | P::Val, Arg::Bool { value, .. }) => Ok(Value::Bool(*value)),
            (P::Any | P::Val, Arg::Str { value, .. }) => Ok(Value::str(value)),
            (P::Any | P::Val, Arg::Number(n)) => self.ideal_constant(a, n),
            (P::Any | P::Val, _) => Ok(Value::Invalid),
        }
    }
}
