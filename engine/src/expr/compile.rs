//! From CEL source to a resolved, type-checked [`Node`] tree.
//!
//! Invariants of a compiled tree:
//! - no names are left: every variable is a slot (`Attr`, `EventProp`, `Counter`, `Local`…);
//! - literal-only calls that can fail (`duration('3x')`, `timestamp('noon')`, bad regexes) were
//!   evaluated or rejected here, so they cannot fail at run time;
//! - operand kinds that are known statically were checked: `customer.points > "abc"` never
//!   compiles. Only `Ty::Dyn` operands (event properties, list elements) are checked at run time.

use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, SourceInfo};
use cel::parser::Parser;

use super::{CounterId, ExprEnv, ExprError};
use crate::customers::AttrId;
use crate::value::{AttrType, Value};

/// The statically known type of an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// Boolean.
    Bool,
    /// Integer.
    Int,
    /// Unsigned integer (CEL `uint`).
    Uint,
    /// Float.
    Float,
    /// String.
    Str,
    /// Timestamp.
    Timestamp,
    /// Duration.
    Duration,
    /// List.
    List,
    /// Map.
    Map,
    /// The null literal.
    Null,
    /// Known only at run time.
    Dyn,
}

impl Ty {
    /// The type of an attribute of `ty`.
    pub fn of_attr(ty: AttrType) -> Ty {
        match ty {
            AttrType::String => Ty::Str,
            AttrType::Int => Ty::Int,
            AttrType::Float => Ty::Float,
            AttrType::Bool => Ty::Bool,
            AttrType::Timestamp => Ty::Timestamp,
            AttrType::StringList => Ty::List,
        }
    }

    fn of_value(v: &Value) -> Ty {
        match v {
            Value::Null => Ty::Null,
            Value::Bool(_) => Ty::Bool,
            Value::Int(_) => Ty::Int,
            Value::Uint(_) => Ty::Uint,
            Value::Float(_) => Ty::Float,
            Value::Str(_) => Ty::Str,
            Value::Timestamp(_) => Ty::Timestamp,
            Value::Duration(_) => Ty::Duration,
            Value::List(_) => Ty::List,
            Value::Map(_) => Ty::Map,
        }
    }

    /// Numbers: compared with each other across kinds.
    fn is_numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Float)
    }

    /// Numbers that mix in arithmetic (a Fusebox convenience; `uint` mixes with nothing).
    fn mixes(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }

    /// Human name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Uint => "uint",
            Ty::Float => "float",
            Ty::Str => "string",
            Ty::Timestamp => "timestamp",
            Ty::Duration => "duration",
            Ty::List => "list",
            Ty::Map => "map",
            Ty::Null => "null",
            Ty::Dyn => "dyn",
        }
    }
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
        }
    }
}

/// Built-in functions (receiver first when called as a method).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Size,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Timestamp,
    Duration,
    Dyn,
    StartsWith,
    EndsWith,
    Contains,
    LowerAscii,
    UpperAscii,
    GetHours,
    GetMinutes,
    GetSeconds,
    GetMilliseconds,
    GetDayOfWeek,
    GetDate,
    GetDayOfMonth,
    GetDayOfYear,
    GetMonth,
    GetFullYear,
}

/// Which event field a node reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventField {
    Id,
    Type,
    Timestamp,
    CustomerId,
    Process,
    Properties,
}

/// A compiled expression node.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Const(Value),
    Attr(AttrId),
    Event(EventField),
    EventProp(Arc<str>),
    Now,
    Counter(CounterId),
    Coupon,
    Local(usize),
    Select(Box<Node>, Arc<str>),
    HasKey(Box<Node>, Arc<str>),
    NotNull(Box<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<(Node, Node, Node)>),
    Bin(BinOp, Box<Node>, Box<Node>),
    Index(Box<Node>, Box<Node>),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Call(Func, Vec<Node>),
    Matches(Box<Node>, Arc<regex::Regex>),
    NotStrictlyFalse(Box<Node>),
    Comprehension(Box<Comprehension>),
    /// `segment('id')`: read from the batch's membership snapshot through the scope.
    Segment(Arc<str>),
}

impl Node {
    /// Fuel of one evaluation: one unit per node, a comprehension's iterations excepted
    /// (they are charged when it runs: its length times `body_cost`).
    pub(crate) fn static_cost(&self) -> u64 {
        1 + match self {
            Node::Const(_)
            | Node::Attr(_)
            | Node::Event(_)
            | Node::EventProp(_)
            | Node::Now
            | Node::Counter(_)
            | Node::Coupon
            | Node::Segment(_)
            | Node::Local(_) => 0,
            Node::Select(a, _)
            | Node::HasKey(a, _)
            | Node::NotNull(a)
            | Node::Not(a)
            | Node::Neg(a)
            | Node::Matches(a, _)
            | Node::NotStrictlyFalse(a) => a.static_cost(),
            Node::And(a, b) | Node::Or(a, b) | Node::Bin(_, a, b) | Node::Index(a, b) => {
                a.static_cost() + b.static_cost()
            }
            Node::Cond(parts) => {
                parts.0.static_cost() + parts.1.static_cost() + parts.2.static_cost()
            }
            Node::List(items) | Node::Call(_, items) => items.iter().map(Node::static_cost).sum(),
            Node::Map(entries) => entries
                .iter()
                .map(|(k, v)| k.static_cost() + v.static_cost())
                .sum(),
            Node::Comprehension(c) => {
                c.range.static_cost() + c.init.static_cost() + c.result.static_cost()
            }
        }
    }

    /// Whether `pred` holds for this node or any node below it.
    pub(crate) fn any(&self, pred: &dyn Fn(&Node) -> bool) -> bool {
        if pred(self) {
            return true;
        }
        match self {
            Node::Const(_)
            | Node::Attr(_)
            | Node::Event(_)
            | Node::EventProp(_)
            | Node::Now
            | Node::Counter(_)
            | Node::Coupon
            | Node::Segment(_)
            | Node::Local(_) => false,
            Node::Select(a, _)
            | Node::HasKey(a, _)
            | Node::NotNull(a)
            | Node::Not(a)
            | Node::Neg(a)
            | Node::Matches(a, _)
            | Node::NotStrictlyFalse(a) => a.any(pred),
            Node::And(a, b) | Node::Or(a, b) | Node::Bin(_, a, b) | Node::Index(a, b) => {
                a.any(pred) || b.any(pred)
            }
            Node::Cond(parts) => parts.0.any(pred) || parts.1.any(pred) || parts.2.any(pred),
            Node::List(items) | Node::Call(_, items) => items.iter().any(|n| n.any(pred)),
            Node::Map(entries) => entries.iter().any(|(k, v)| k.any(pred) || v.any(pred)),
            Node::Comprehension(c) => [&c.range, &c.init, &c.cond, &c.step, &c.result]
                .iter()
                .any(|n| n.any(pred)),
        }
    }
}

/// A CEL comprehension (what `exists`, `all`, `map`, `filter` expand to).
#[derive(Clone, Debug)]
pub(crate) struct Comprehension {
    pub range: Node,
    pub iter_slot: usize,
    pub accu_slot: usize,
    pub init: Node,
    pub cond: Node,
    pub step: Node,
    pub result: Node,
    /// Fuel of one iteration: the static size of `cond` and `step` (at least 1).
    pub body_cost: u64,
}

struct Compiler<'a, 'e> {
    env: &'a ExprEnv<'e>,
    info: &'a SourceInfo,
    source: &'a str,
    locals: Vec<(String, usize)>,
    next_slot: usize,
}

/// Stack for parsing and compiling. The `cel` parser recurses deeply per nesting level (a
/// debug build needs about 16 MiB for the 90 nested parentheses its depth limit lets
/// through, more than a main thread's 8 MiB), so it runs on a thread of its own with room
/// to spare: a deeply nested expression is a located error or a compiled expression, never
/// a stack overflow. Only touched pages of the stack are ever committed.
const COMPILE_STACK: usize = 64 << 20;

pub(super) fn compile(source: &str, env: &ExprEnv<'_>) -> Result<super::CompiledExpr, ExprError> {
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("cel-compile".into())
            .stack_size(COMPILE_STACK)
            .spawn_scoped(scope, || compile_here(source, env));
        match spawned {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: compile on this one (fine for all but extreme nesting).
            Err(_) => compile_here(source, env),
        }
    })
}

fn compile_here(source: &str, env: &ExprEnv<'_>) -> Result<super::CompiledExpr, ExprError> {
    if source.trim().is_empty() {
        return Err(ExprError {
            message: "empty expression".into(),
            span: None,
            help: Some("write a CEL expression, e.g. `event.properties.total > 50`".into()),
        });
    }
    let (ast, info) = Parser::new()
        .parse_with_source_info(source)
        .map_err(|errors| parse_error(source, &errors))?;
    let mut compiler = Compiler {
        env,
        info: &info,
        source,
        locals: Vec::new(),
        next_slot: 0,
    };
    let (root, ty) = compiler.node(&ast)?;
    Ok(super::CompiledExpr {
        source: source.to_string(),
        cost: root.static_cost(),
        root,
        ty,
        locals: compiler.next_slot,
    })
}

fn parse_error(source: &str, errors: &cel::parser::ParseErrors) -> ExprError {
    let first = errors.errors.first();
    let (message, help) = super::describe_syntax_error(first.map_or("", |e| e.msg.as_str()));
    let span = first.and_then(|e| {
        let (line, col) = e.pos;
        if line < 1 || col < 0 {
            return None;
        }
        let line_start: usize = source
            .split_inclusive('\n')
            .take(line as usize - 1)
            .map(str::len)
            .sum();
        let rest = source.get(line_start..)?;
        let byte_col = rest
            .char_indices()
            .nth(col as usize)
            .map_or(rest.len(), |(i, _)| i);
        let start = line_start + byte_col;
        Some((start, (start + 1).min(source.len()).max(start)))
    });
    ExprError {
        message,
        span,
        help: help.map(str::to_string),
    }
}

/// Edit distance for "did you mean" hints.
pub(crate) fn closest<'n>(
    name: &str,
    candidates: impl Iterator<Item = &'n str>,
) -> Option<&'n str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1; b.len() + 1];
            for (j, cb) in b.iter().enumerate() {
                let cost = usize::from(ca != *cb);
                cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }
    candidates
        .map(|c| (distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c)
}

type Compiled = (Node, Ty);

impl Compiler<'_, '_> {
    fn span(&self, id: u64) -> Option<(usize, usize)> {
        let (start, stop) = self.info.offset_for(id)?;
        let to_byte = |chars: u32| {
            self.source
                .char_indices()
                .nth(chars as usize)
                .map_or(self.source.len(), |(i, _)| i)
        };
        let (s, e) = (to_byte(start), to_byte(stop));
        Some((s, e.max(s + 1).min(self.source.len()).max(s)))
    }

    fn err(&self, id: u64, message: impl Into<String>, help: Option<String>) -> ExprError {
        ExprError {
            message: message.into(),
            span: self.span(id),
            help,
        }
    }

    fn node(&mut self, e: &IdedExpr) -> Result<Compiled, ExprError> {
        match &e.expr {
            Expr::Literal(lit) => self.literal(e.id, lit),
            Expr::Ident(name) => self.ident(e.id, name),
            Expr::Select(sel) => {
                if sel.test {
                    return self.has(e.id, &sel.operand, &sel.field);
                }
                self.select(e.id, &sel.operand, &sel.field)
            }
            Expr::Call(call) => {
                self.call(e.id, &call.func_name, call.target.as_deref(), &call.args)
            }
            Expr::List(list) => {
                if !list.optional_indices.is_empty() {
                    return Err(self.err(e.id, "optional list elements are not supported", None));
                }
                let items = list
                    .elements
                    .iter()
                    .map(|x| self.node(x).map(|c| c.0))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((fold_list(items), Ty::List))
            }
            Expr::Map(map) => {
                let mut entries = Vec::with_capacity(map.entries.len());
                for entry in &map.entries {
                    let EntryExpr::MapEntry(me) = &entry.expr else {
                        return Err(self.err(entry.id, "struct fields are not supported", None));
                    };
                    if me.optional {
                        return Err(self.err(
                            entry.id,
                            "optional map entries are not supported",
                            None,
                        ));
                    }
                    let (k, kt) = self.node(&me.key)?;
                    if !matches!(kt, Ty::Str | Ty::Int | Ty::Uint | Ty::Bool | Ty::Dyn) {
                        return Err(self.err(
                            me.key.id,
                            format!(
                                "map keys must be strings, ints, uints or bools, got {}",
                                kt.name()
                            ),
                            None,
                        ));
                    }
                    let (v, _) = self.node(&me.value)?;
                    entries.push((k, v));
                }
                Ok((fold_map(entries), Ty::Map))
            }
            Expr::Comprehension(c) => self.comprehension(e.id, c),
            Expr::Struct(_) => Err(self.err(e.id, "message construction is not supported", None)),
            Expr::Unspecified => Err(self.err(e.id, "incomplete expression", None)),
        }
    }

    fn literal(&self, id: u64, lit: &LiteralValue) -> Result<Compiled, ExprError> {
        let v = match lit {
            LiteralValue::Boolean(b) => Value::Bool(*b.inner()),
            LiteralValue::Int(i) => Value::Int(*i.inner()),
            LiteralValue::UInt(u) => Value::Uint(*u.inner()),
            LiteralValue::Double(d) => Value::Float(*d.inner()),
            LiteralValue::String(s) => Value::str(s.inner()),
            LiteralValue::Null => Value::Null,
            LiteralValue::Bytes(_) => {
                return Err(self.err(id, "bytes literals are not supported", None))
            }
        };
        let ty = Ty::of_value(&v);
        Ok((Node::Const(v), ty))
    }

    fn ident(&self, id: u64, name: &str) -> Result<Compiled, ExprError> {
        if let Some((_, slot)) = self.locals.iter().rev().find(|(n, _)| n == name) {
            return Ok((Node::Local(*slot), Ty::Dyn));
        }
        match name {
            "now" => Ok((Node::Now, Ty::Timestamp)),
            "coupon" if self.env.coupon_available => Ok((Node::Coupon, Ty::Str)),
            "coupon" => Err(self.err(
                id,
                "`coupon` is only available after an `issue_coupon` action of the same trigger",
                Some("move this action after the `issue_coupon` action".into()),
            )),
            "customer" | "event" | "counters" => Err(self.err(
                id,
                format!(
                    "`{name}` must be followed by a field, e.g. `{name}.{}`",
                    match name {
                        "customer" => "points",
                        "event" => "type",
                        _ => "orders_total",
                    }
                ),
                None,
            )),
            _ => Err(self.err(
                id,
                format!("unknown name `{name}`"),
                Some(
                    closest(
                        name,
                        ["now", "customer", "event", "counters", "coupon"].into_iter(),
                    )
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| {
                        "names available: customer, event, now, counters, coupon".into()
                    }),
                ),
            )),
        }
    }

    fn root_name<'x>(&self, e: &'x IdedExpr) -> Option<&'x str> {
        match &e.expr {
            Expr::Ident(n) if !self.locals.iter().any(|(l, _)| l == n) => Some(n.as_str()),
            _ => None,
        }
    }

    fn is_event_properties(&self, e: &IdedExpr) -> bool {
        matches!(&e.expr, Expr::Select(s) if !s.test && s.field == "properties" && self.root_name(&s.operand) == Some("event"))
    }

    fn select(&mut self, id: u64, operand: &IdedExpr, field: &str) -> Result<Compiled, ExprError> {
        match self.root_name(operand) {
            Some("customer") => {
                if let Some((attr, ty)) = self.env.schema.attr(field) {
                    return Ok((Node::Attr(attr), Ty::of_attr(ty)));
                }
                if field == "id" {
                    return Ok((Node::Event(EventField::CustomerId), Ty::Int));
                }
                if self.env.lenient_customer {
                    return Ok((Node::Const(Value::Null), Ty::Dyn));
                }
                let help = closest(field, self.env.schema.iter().map(|(_, n, _)| n))
                    .map(|c| format!("did you mean `customer.{c}`?"))
                    .unwrap_or_else(|| {
                        let names: Vec<&str> = self.env.schema.iter().map(|(_, n, _)| n).collect();
                        format!("customer attributes: {}", names.join(", "))
                    });
                let mut e = self.err(
                    id,
                    format!("unknown customer attribute `{field}`"),
                    Some(help),
                );
                // Point at the whole `customer.field`, not at the dot the parser reports.
                if let (Some((start, _)), Some((dot, _))) = (self.span(operand.id), self.span(id)) {
                    e.span = Some((start, (dot + 1 + field.len()).min(self.source.len())));
                }
                return Err(e);
            }
            Some("event") => {
                let (f, ty) = match field {
                    "id" => (EventField::Id, Ty::Str),
                    "type" => (EventField::Type, Ty::Str),
                    "timestamp" => (EventField::Timestamp, Ty::Timestamp),
                    "customer_id" => (EventField::CustomerId, Ty::Int),
                    "process" => (EventField::Process, Ty::Str),
                    "properties" => (EventField::Properties, Ty::Map),
                    _ => {
                        let fields = [
                            "id",
                            "type",
                            "timestamp",
                            "customer_id",
                            "process",
                            "properties",
                        ];
                        return Err(self.err(
                            id,
                            format!("unknown event field `{field}`"),
                            Some(match closest(field, fields.into_iter()) {
                                Some(c) => format!("did you mean `event.{c}`? (properties are under `event.properties.{field}`)"),
                                None => format!("event fields: {}; properties are under `event.properties.<key>`", fields.join(", ")),
                            }),
                        ));
                    }
                };
                return Ok((Node::Event(f), ty));
            }
            Some("counters") => {
                return match self.env.counters.get(field) {
                    Some(&(c, ty)) => Ok((Node::Counter(c), ty)),
                    None => Err(self.err(
                        id,
                        format!("unknown counter `{field}`"),
                        Some(
                            closest(field, self.env.counters.keys().map(String::as_str))
                                .map(|c| format!("did you mean `counters.{c}`?"))
                                .unwrap_or_else(|| {
                                    "declare counters under `counters:` in the triggers file".into()
                                }),
                        ),
                    )),
                };
            }
            _ => {}
        }
        if self.is_event_properties(operand) {
            return Ok((Node::EventProp(Arc::from(field)), Ty::Dyn));
        }
        let (inner, ty) = self.node(operand)?;
        if !matches!(ty, Ty::Map | Ty::Dyn) {
            return Err(self.err(
                id,
                format!("cannot select field `{field}` of a {}", ty.name()),
                None,
            ));
        }
        Ok((Node::Select(Box::new(inner), Arc::from(field)), Ty::Dyn))
    }

    fn has(&mut self, id: u64, operand: &IdedExpr, field: &str) -> Result<Compiled, ExprError> {
        match self.root_name(operand) {
            Some("customer") | Some("event") | Some("counters") => {
                let (node, _) = self.select(id, operand, field)?;
                Ok((Node::NotNull(Box::new(node)), Ty::Bool))
            }
            _ => {
                let (inner, ty) = if self.is_event_properties(operand) {
                    (Node::Event(EventField::Properties), Ty::Map)
                } else {
                    self.node(operand)?
                };
                if !matches!(ty, Ty::Map | Ty::Dyn) {
                    return Err(self.err(
                        id,
                        format!("has() needs a map field, got a {}", ty.name()),
                        None,
                    ));
                }
                Ok((Node::HasKey(Box::new(inner), Arc::from(field)), Ty::Bool))
            }
        }
    }

    fn comprehension(
        &mut self,
        id: u64,
        c: &cel::common::ast::ComprehensionExpr,
    ) -> Result<Compiled, ExprError> {
        if c.iter_var2.is_some() {
            return Err(self.err(id, "two-variable comprehensions are not supported", None));
        }
        let (range, range_ty) = self.node(&c.iter_range)?;
        if !matches!(range_ty, Ty::List | Ty::Map | Ty::Dyn) {
            return Err(self.err(
                c.iter_range.id,
                format!("cannot iterate over a {}", range_ty.name()),
                None,
            ));
        }
        let (init, _) = self.node(&c.accu_init)?;
        let iter_slot = self.next_slot;
        let accu_slot = self.next_slot + 1;
        self.next_slot += 2;
        self.locals.push((c.accu_var.clone(), accu_slot));
        self.locals.push((c.iter_var.clone(), iter_slot));
        let body = (|| {
            let (cond, _) = self.node(&c.loop_cond)?;
            let (step, _) = self.node(&c.loop_step)?;
            Ok::<_, ExprError>((cond, step))
        })();
        self.locals.pop(); // iter var is out of scope in the result
        let (cond, step) = body?;
        let result = self.node(&c.result);
        self.locals.pop();
        let (result, ty) = result?;
        Ok((
            Node::Comprehension(Box::new(Comprehension {
                range,
                iter_slot,
                accu_slot,
                init,
                body_cost: (cond.static_cost() + step.static_cost()).max(1),
                cond,
                step,
                result,
            })),
            ty,
        ))
    }

    fn call(
        &mut self,
        id: u64,
        name: &str,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
    ) -> Result<Compiled, ExprError> {
        use cel::common::ast::operators as op;
        let bin = match name {
            op::ADD => Some(BinOp::Add),
            op::SUBSTRACT => Some(BinOp::Sub),
            op::MULTIPLY => Some(BinOp::Mul),
            op::DIVIDE => Some(BinOp::Div),
            op::MODULO => Some(BinOp::Rem),
            op::EQUALS => Some(BinOp::Eq),
            op::NOT_EQUALS => Some(BinOp::Ne),
            op::LESS => Some(BinOp::Lt),
            op::LESS_EQUALS => Some(BinOp::Le),
            op::GREATER => Some(BinOp::Gt),
            op::GREATER_EQUALS => Some(BinOp::Ge),
            op::IN => Some(BinOp::In),
            _ => None,
        };
        if let (Some(bop), [a, b], None) = (bin, args, target) {
            // `customer in segment('vip')` is the spelled-out form of `segment('vip')`.
            let segment_call = matches!(&b.expr, Expr::Call(c)
                if c.target.is_none() && is_segment_call(&c.func_name));
            if bop == BinOp::In && segment_call && self.root_name(a) == Some("customer") {
                return self.node(b);
            }
            let (na, ta) = self.node(a)?;
            let (nb, tb) = self.node(b)?;
            let ty = self.bin_type(id, bop, ta, tb)?;
            return Ok((fold(Node::Bin(bop, Box::new(na), Box::new(nb))), ty));
        }
        match (name, args, target) {
            (op::LOGICAL_AND | op::LOGICAL_OR, [a, b], None) => {
                let (na, ta) = self.node(a)?;
                let (nb, tb) = self.node(b)?;
                for (t, x) in [(ta, a), (tb, b)] {
                    if !matches!(t, Ty::Bool | Ty::Dyn) {
                        return Err(self.err(
                            x.id,
                            format!(
                                "`{}` needs bool operands, got {}",
                                if name == op::LOGICAL_AND { "&&" } else { "||" },
                                t.name()
                            ),
                            None,
                        ));
                    }
                }
                let node = if name == op::LOGICAL_AND {
                    Node::And(Box::new(na), Box::new(nb))
                } else {
                    Node::Or(Box::new(na), Box::new(nb))
                };
                Ok((node, Ty::Bool))
            }
            (op::LOGICAL_NOT, [a], None) => {
                let (na, ta) = self.node(a)?;
                if !matches!(ta, Ty::Bool | Ty::Dyn) {
                    return Err(self.err(
                        a.id,
                        format!("`!` needs a bool, got {}", ta.name()),
                        None,
                    ));
                }
                Ok((fold(Node::Not(Box::new(na))), Ty::Bool))
            }
            (op::NEGATE, [a], None) => {
                let (na, ta) = self.node(a)?;
                if !matches!(ta, Ty::Int | Ty::Float | Ty::Duration | Ty::Dyn) {
                    return Err(self.err(a.id, format!("cannot negate a {}", ta.name()), None));
                }
                Ok((fold(Node::Neg(Box::new(na))), ta))
            }
            (op::NOT_STRICTLY_FALSE, [a], None) => {
                let (na, _) = self.node(a)?;
                Ok((Node::NotStrictlyFalse(Box::new(na)), Ty::Bool))
            }
            (op::CONDITIONAL, [c, a, b], None) => {
                let (nc, tc) = self.node(c)?;
                if !matches!(tc, Ty::Bool | Ty::Dyn) {
                    return Err(self.err(
                        c.id,
                        format!("the condition of `?:` must be a bool, got {}", tc.name()),
                        None,
                    ));
                }
                let (na, ta) = self.node(a)?;
                let (nb, tb) = self.node(b)?;
                let ty = if ta == tb { ta } else { Ty::Dyn };
                Ok((Node::Cond(Box::new((nc, na, nb))), ty))
            }
            (op::INDEX, [a, b], None) => {
                if self.is_event_properties(a) {
                    if let Expr::Literal(LiteralValue::String(key)) = &b.expr {
                        return Ok((Node::EventProp(Arc::from(key.inner())), Ty::Dyn));
                    }
                }
                let (na, ta) = self.node(a)?;
                let (nb, tb) = self.node(b)?;
                // Lists take an int, a uint or an integral float; maps take their key kinds
                // (and a float that equals an integer key, as in CEL).
                let list_index = matches!(tb, Ty::Int | Ty::Uint | Ty::Float | Ty::Dyn);
                let map_key = list_index || matches!(tb, Ty::Str | Ty::Bool);
                match ta {
                    Ty::List if list_index => {}
                    Ty::Map | Ty::Dyn if map_key => {}
                    _ => {
                        return Err(self.err(
                            id,
                            format!("cannot index a {} with a {}", ta.name(), tb.name()),
                            None,
                        ))
                    }
                }
                Ok((Node::Index(Box::new(na), Box::new(nb)), Ty::Dyn))
            }
            _ => self.function(id, name, target, args),
        }
    }

    fn bin_type(&self, id: u64, op: BinOp, a: Ty, b: Ty) -> Result<Ty, ExprError> {
        use Ty::*;
        let mismatch = || {
            self.err(
                id,
                format!("operator `{}` cannot combine {} and {}", op.symbol(), a.name(), b.name()),
                match (a, b) {
                    (Str, Int | Float) | (Int | Float, Str) => Some("compare numbers with numbers, e.g. `customer.points > 100`; use int(...) or double(...) to convert a string".into()),
                    (Uint, Int | Float) | (Int | Float, Uint) => Some("uint does not mix with int or float in arithmetic: convert with int(...), uint(...) or double(...)".into()),
                    _ => None,
                },
            )
        };
        if a == Dyn || b == Dyn {
            return Ok(match op {
                BinOp::Eq
                | BinOp::Ne
                | BinOp::Lt
                | BinOp::Le
                | BinOp::Gt
                | BinOp::Ge
                | BinOp::In => Bool,
                _ => Dyn,
            });
        }
        match op {
            BinOp::Eq | BinOp::Ne => {
                let ok = a == b || a == Null || b == Null || (a.is_numeric() && b.is_numeric());
                if ok {
                    Ok(Bool)
                } else {
                    Err(mismatch())
                }
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let ok = (a.is_numeric() && b.is_numeric())
                    || (a == b && matches!(a, Str | Timestamp | Duration | Bool));
                if ok {
                    Ok(Bool)
                } else {
                    Err(mismatch())
                }
            }
            BinOp::In => {
                if matches!(b, List | Map) {
                    Ok(Bool)
                } else {
                    Err(mismatch())
                }
            }
            BinOp::Add => match (a, b) {
                (Int, Int) => Ok(Int),
                (Uint, Uint) => Ok(Uint),
                _ if a.mixes() && b.mixes() => Ok(Float),
                (Str, Str) => Ok(Str),
                (List, List) => Ok(List),
                (Timestamp, Duration) | (Duration, Timestamp) => Ok(Timestamp),
                (Duration, Duration) => Ok(Duration),
                _ => Err(mismatch()),
            },
            BinOp::Sub => match (a, b) {
                (Int, Int) => Ok(Int),
                (Uint, Uint) => Ok(Uint),
                _ if a.mixes() && b.mixes() => Ok(Float),
                (Timestamp, Timestamp) => Ok(Duration),
                (Timestamp, Duration) => Ok(Timestamp),
                (Duration, Duration) => Ok(Duration),
                _ => Err(mismatch()),
            },
            BinOp::Mul | BinOp::Div => match (a, b) {
                (Int, Int) => Ok(Int),
                (Uint, Uint) => Ok(Uint),
                _ if a.mixes() && b.mixes() => Ok(Float),
                _ => Err(mismatch()),
            },
            BinOp::Rem => match (a, b) {
                (Int, Int) => Ok(Int),
                (Uint, Uint) => Ok(Uint),
                _ => Err(mismatch()),
            },
        }
    }

    fn function(
        &mut self,
        id: u64,
        name: &str,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
    ) -> Result<Compiled, ExprError> {
        let mut all: Vec<&IdedExpr> = Vec::with_capacity(args.len() + 1);
        all.extend(target);
        all.extend(args.iter());
        // `matches` with a literal pattern compiles the regex once, here.
        if name == "matches" && all.len() == 2 {
            let (subject, st) = self.node(all[0])?;
            if !matches!(st, Ty::Str | Ty::Dyn) {
                return Err(self.err(
                    all[0].id,
                    format!("matches() needs a string, got {}", st.name()),
                    None,
                ));
            }
            let Expr::Literal(LiteralValue::String(pattern)) = &all[1].expr else {
                return Err(self.err(
                    all[1].id,
                    "matches() needs a literal pattern",
                    Some("write the regular expression as a string literal".into()),
                ));
            };
            let re = regex::Regex::new(pattern.inner()).map_err(|e| {
                self.err(all[1].id, format!("invalid regular expression: {e}"), None)
            })?;
            return Ok((Node::Matches(Box::new(subject), Arc::new(re)), Ty::Bool));
        }
        if is_segment_call(name) && target.is_none() && args.len() == 1 {
            let Expr::Literal(LiteralValue::String(seg)) = &args[0].expr else {
                return Err(self.err(
                    args[0].id,
                    "segment() takes the segment id as a string literal",
                    Some("e.g. `segment('vip')`".into()),
                ));
            };
            return Ok((Node::Segment(Arc::from(seg.inner())), Ty::Bool));
        }
        // (function, fewest and most arguments counting the receiver, result type)
        let (func, min, max, ty) = match name {
            "size" => (Func::Size, 1, 1, Ty::Int),
            "bool" => (Func::Bool, 1, 1, Ty::Bool),
            "int" => (Func::Int, 1, 1, Ty::Int),
            "uint" => (Func::Uint, 1, 1, Ty::Uint),
            "double" => (Func::Double, 1, 1, Ty::Float),
            "string" => (Func::String, 1, 1, Ty::Str),
            "timestamp" => (Func::Timestamp, 1, 1, Ty::Timestamp),
            "duration" => (Func::Duration, 1, 1, Ty::Duration),
            "dyn" => (Func::Dyn, 1, 1, Ty::Dyn),
            "startsWith" => (Func::StartsWith, 2, 2, Ty::Bool),
            "endsWith" => (Func::EndsWith, 2, 2, Ty::Bool),
            "contains" => (Func::Contains, 2, 2, Ty::Bool),
            "lowerAscii" => (Func::LowerAscii, 1, 1, Ty::Str),
            "upperAscii" => (Func::UpperAscii, 1, 1, Ty::Str),
            // Timestamp getters take an optional time zone.
            "getHours" => (Func::GetHours, 1, 2, Ty::Int),
            "getMinutes" => (Func::GetMinutes, 1, 2, Ty::Int),
            "getSeconds" => (Func::GetSeconds, 1, 2, Ty::Int),
            "getMilliseconds" => (Func::GetMilliseconds, 1, 2, Ty::Int),
            "getDayOfWeek" => (Func::GetDayOfWeek, 1, 2, Ty::Int),
            "getDate" => (Func::GetDate, 1, 2, Ty::Int),
            "getDayOfMonth" => (Func::GetDayOfMonth, 1, 2, Ty::Int),
            "getDayOfYear" => (Func::GetDayOfYear, 1, 2, Ty::Int),
            "getMonth" => (Func::GetMonth, 1, 2, Ty::Int),
            "getFullYear" => (Func::GetFullYear, 1, 2, Ty::Int),
            _ => {
                let known = [
                    "size",
                    "bool",
                    "int",
                    "uint",
                    "double",
                    "string",
                    "timestamp",
                    "duration",
                    "dyn",
                    "startsWith",
                    "endsWith",
                    "contains",
                    "matches",
                    "lowerAscii",
                    "upperAscii",
                    "getHours",
                    "getMinutes",
                    "getSeconds",
                    "getMilliseconds",
                    "getDayOfWeek",
                    "getDate",
                    "getDayOfMonth",
                    "getDayOfYear",
                    "getMonth",
                    "getFullYear",
                    "has",
                    "exists",
                    "all",
                    "exists_one",
                    "map",
                    "filter",
                ];
                return Err(self.err(
                    id,
                    format!("unknown function `{name}`"),
                    Some(
                        closest(name, known.into_iter())
                            .map(|c| format!("did you mean `{c}`?"))
                            .unwrap_or_else(|| format!("functions: {}", known.join(", "))),
                    ),
                ));
            }
        };
        if all.len() < min || all.len() > max {
            let takes = if min == max {
                format!("{min}")
            } else {
                format!("{min} or {max}")
            };
            return Err(self.err(
                id,
                format!("`{name}` takes {takes} argument(s), got {}", all.len()),
                None,
            ));
        }
        let mut nodes = Vec::with_capacity(all.len());
        let mut types = Vec::with_capacity(all.len());
        for (i, a) in all.iter().enumerate() {
            let (n, t) = self.node(a)?;
            let getter = matches!(
                func,
                Func::GetHours
                    | Func::GetMinutes
                    | Func::GetSeconds
                    | Func::GetMilliseconds
                    | Func::GetDayOfWeek
                    | Func::GetDate
                    | Func::GetDayOfMonth
                    | Func::GetDayOfYear
                    | Func::GetMonth
                    | Func::GetFullYear
            );
            let ok = match func {
                _ if getter && i == 1 => {
                    // The time zone: a string, checked now when it is a literal.
                    if let Node::Const(Value::Str(zone)) = &n {
                        super::eval::parse_zone(zone)
                            .map_err(|e| self.err(a.id, e.to_string(), None))?;
                    }
                    matches!(t, Ty::Str | Ty::Dyn)
                }
                Func::Size => matches!(t, Ty::Str | Ty::List | Ty::Map | Ty::Dyn),
                Func::Int | Func::Double | Func::String | Func::Uint => {
                    !matches!(t, Ty::List | Ty::Map)
                }
                Func::Timestamp => {
                    matches!(t, Ty::Str | Ty::Int | Ty::Dyn | Ty::Timestamp)
                }
                Func::Duration => matches!(t, Ty::Str | Ty::Dyn | Ty::Duration),
                Func::Dyn => true,
                Func::Bool => matches!(t, Ty::Bool | Ty::Str | Ty::Dyn),
                Func::StartsWith
                | Func::EndsWith
                | Func::Contains
                | Func::LowerAscii
                | Func::UpperAscii => matches!(t, Ty::Str | Ty::Dyn),
                // Durations have hours, minutes, seconds and milliseconds, without a zone.
                Func::GetHours | Func::GetMinutes | Func::GetSeconds | Func::GetMilliseconds
                    if all.len() == 1 =>
                {
                    matches!(t, Ty::Timestamp | Ty::Duration | Ty::Dyn)
                }
                _ => matches!(t, Ty::Timestamp | Ty::Dyn),
            };
            if !ok {
                return Err(self.err(a.id, format!("`{name}` cannot take a {}", t.name()), None));
            }
            nodes.push(n);
            types.push(t);
        }
        if func == Func::Dyn {
            // `dyn(x)` only hides x's type from the compile-time checks, as in CEL.
            return Ok((nodes.pop().unwrap_or(Node::Const(Value::Null)), Ty::Dyn));
        }
        let node = Node::Call(func, nodes);
        // Calls on literals are evaluated now, so `duration('3x')` is a compile error.
        if let Node::Call(_, args) = &node {
            if args.iter().all(|a| matches!(a, Node::Const(_))) && !matches!(func, Func::Size) {
                let value = node
                    .eval(&mut super::eval::NoScope, &mut Vec::new())
                    .map_err(|e| self.err(id, e.to_string(), None))?;
                return Ok((Node::Const(value), ty));
            }
        }
        Ok((node, ty))
    }
}

/// Folds a constant-only subtree (errors stay for run time, where they are reported).
/// Whether a function name is the segment-membership call (`segment` or its alias).
fn is_segment_call(name: &str) -> bool {
    matches!(name, "segment" | "in_segment")
}

fn fold(node: Node) -> Node {
    let constant = match &node {
        Node::Bin(_, a, b) => matches!(**a, Node::Const(_)) && matches!(**b, Node::Const(_)),
        Node::Not(a) | Node::Neg(a) => matches!(**a, Node::Const(_)),
        _ => false,
    };
    if constant {
        if let Ok(v) = node.eval(&mut super::eval::NoScope, &mut Vec::new()) {
            return Node::Const(v);
        }
    }
    node
}

/// A map literal of constants is built once, here (if it builds: a repeated key stays an
/// error of the evaluation).
fn fold_map(entries: Vec<(Node, Node)>) -> Node {
    if entries
        .iter()
        .all(|(k, v)| matches!(k, Node::Const(_)) && matches!(v, Node::Const(_)))
    {
        let node = Node::Map(entries);
        return match node.eval(&mut super::eval::NoScope, &mut Vec::new()) {
            Ok(v) => Node::Const(v),
            Err(_) => node,
        };
    }
    Node::Map(entries)
}

fn fold_list(items: Vec<Node>) -> Node {
    if items.iter().all(|n| matches!(n, Node::Const(_))) {
        let values: Vec<Value> = items
            .into_iter()
            .map(|n| match n {
                Node::Const(v) => v,
                _ => Value::Null,
            })
            .collect();
        Node::Const(Value::List(values.into()))
    } else {
        Node::List(items)
    }
}

/// Parses a CEL duration string: an optional sign, then numbers with units, e.g. `720h`,
/// `1h30m`, `-1.5h`, `90s`, `250ms`, `10us` (`µs`), `1000ns`. The value is computed exactly
/// (integers, no floating point); it must be a whole number of microseconds (Fusebox's
/// precision: `1ns` is refused, not rounded) and within CEL's duration range.
pub(crate) fn parse_duration(text: &str) -> Result<Value, super::EvalError> {
    use super::EvalError;
    let bad = || {
        EvalError::Type(format!(
            "{text:?} is not a duration (e.g. \"720h\", \"1h30m\", \"90s\", \"250ms\")"
        ))
    };
    let out_of_range = || EvalError::Arithmetic(format!("duration {text:?} is out of range"));
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(Value::Duration(0));
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_nanos: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let int_digits = &rest[..int_len];
        rest = &rest[int_len..];
        let frac_digits = match rest.strip_prefix('.') {
            Some(r) => {
                let len = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                rest = &r[len..];
                &r[..len]
            }
            None => "",
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(bad());
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_nanos: i128 = match &rest[..unit_len] {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ns" => 1,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        // More than 30 integer digits cannot be in range whatever the unit.
        let int_digits = int_digits.trim_start_matches('0');
        if int_digits.len() > 30 {
            return Err(out_of_range());
        }
        let whole: i128 = if int_digits.is_empty() {
            0
        } else {
            int_digits.parse().map_err(|_| bad())?
        };
        let frac_digits = frac_digits.trim_end_matches('0');
        if frac_digits.len() > 24 {
            return Err(EvalError::Arithmetic(format!(
                "duration {text:?} is finer than a microsecond (Fusebox's precision)"
            )));
        }
        let frac: i128 = if frac_digits.is_empty() {
            0
        } else {
            frac_digits.parse().map_err(|_| bad())?
        };
        let scale = 10i128.pow(frac_digits.len() as u32);
        let frac_nanos = frac * unit_nanos;
        if frac_nanos % scale != 0 {
            return Err(EvalError::Arithmetic(format!(
                "duration {text:?} is finer than a microsecond (Fusebox's precision)"
            )));
        }
        total_nanos = whole
            .checked_mul(unit_nanos)
            .and_then(|w| w.checked_add(frac_nanos / scale))
            .and_then(|c| total_nanos.checked_add(c))
            .ok_or_else(out_of_range)?;
    }
    if total_nanos % 1000 != 0 {
        return Err(EvalError::Arithmetic(format!(
            "duration {text:?} is finer than a microsecond (Fusebox's precision)"
        )));
    }
    let micros = total_nanos / 1000;
    super::eval::duration_value(if negative { -micros } else { micros })
}
