//! Structure-aware generators of YAML configuration files, for the fuzz targets of the
//! configuration front ends (`engine/tests/fuzz_config.rs`, `segment/tests/fuzz_config.rs`).
//!
//! Only the stable toolchain is available, so there is no libFuzzer: inputs come from proptest
//! strategies instead. A document is generated from a grammar of the real schema (a
//! [`Y`] tree: mappings, lists, scalars), some of its nodes are mutated (a key deleted,
//! duplicated or misspelt, a value retyped to a wrong kind, a huge number, a long or unicode
//! string, deep nesting), it is rendered to text in a random mix of block and flow styles,
//! and the text itself may be mutated (a line deleted, duplicated, re-indented, junk
//! inserted, the end cut off). Pure noise (arbitrary text, YAML token soup) is generated too.
//!
//! [`assert_located`] states what every error must look like, whatever the input.

#![allow(dead_code)] // each fuzz target uses a different subset

use fusebox_engine::config::ConfigError;
use proptest::prelude::*;
use proptest::sample::Index;

/// How many cases a fuzz target runs: `PROPTEST_CASES` when set (long campaigns), else
/// `default` (a short budget for `cargo test`).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `test` on [`cases`]`(default_cases)` inputs from the strategy `make` builds,
/// shrinking a failure (a panic in `test`) to a minimal input, which the panic message
/// quotes. Runs on a thread with a big stack: proptest's own recursion through nested
/// strategies outgrows a test thread's 2 MiB in a debug build.
pub fn fuzz<S, F>(make: F, default_cases: u32, test: impl Fn(S::Value) + Sync)
where
    S: Strategy,
    F: FnOnce() -> S + Send,
{
    use proptest::test_runner::{Config, TestRunner};
    let config = Config {
        cases: cases(default_cases),
        failure_persistence: None,
        max_shrink_iters: 4000,
        ..Config::default()
    };
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("fuzz".into())
            .stack_size(256 << 20)
            .spawn_scoped(scope, || {
                let strategy = make();
                TestRunner::new(config)
                    .run(&strategy, |input| {
                        test(input);
                        Ok(())
                    })
                    .map_err(|e| e.to_string())
            })
            .expect("spawn the fuzz thread")
            .join()
    });
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => panic!("{failure}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A YAML node, before rendering. `bool` fields choose flow style (`[..]`, `{..}`).
#[derive(Clone, Debug)]
pub enum Y {
    /// A scalar, rendered plain when that is safe, double-quoted otherwise.
    Scalar(String),
    /// Text put in as is (may well be invalid YAML).
    Raw(String),
    /// A list.
    Seq(Vec<Y>, bool),
    /// A block list written at its key's indentation (`key:\n- a`).
    Indentless(Vec<Y>),
    /// A block list whose items start on the line after their `-`.
    Hanging(Vec<Y>),
    /// A mapping.
    Map(Vec<(String, Y)>, bool),
}

impl Y {
    pub fn s(v: impl Into<String>) -> Y {
        Y::Scalar(v.into())
    }

    /// Renders the document.
    pub fn render(&self) -> String {
        let mut out = String::new();
        match self {
            Y::Map(entries, false) if !entries.is_empty() => block_map(entries, 0, &mut out),
            Y::Seq(items, false) | Y::Indentless(items) if !items.is_empty() => {
                block_seq(items, 0, &mut out)
            }
            Y::Hanging(items) if !items.is_empty() => hanging_seq(items, 0, &mut out),
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
        out
    }

    fn node_count(&self) -> usize {
        1 + match self {
            Y::Seq(items, _) | Y::Indentless(items) | Y::Hanging(items) => {
                items.iter().map(Y::node_count).sum()
            }
            Y::Map(entries, _) => entries.iter().map(|(_, v)| v.node_count()).sum(),
            _ => 0,
        }
    }

    /// The `n`th node in pre-order.
    fn nth(&mut self, n: usize) -> Option<&mut Y> {
        if n == 0 {
            return Some(self);
        }
        let mut n = n - 1;
        let children: Vec<&mut Y> = match self {
            Y::Seq(items, _) | Y::Indentless(items) | Y::Hanging(items) => {
                items.iter_mut().collect()
            }
            Y::Map(entries, _) => entries.iter_mut().map(|(_, v)| v).collect(),
            _ => return None,
        };
        for child in children {
            let size = child.node_count();
            if n < size {
                return child.nth(n);
            }
            n -= size;
        }
        None
    }
}

fn plain_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '/' | '-' | ' '))
        && !s.starts_with(['-', ' '])
        && !s.ends_with(' ')
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", c as u32 & 0xffff))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn scalar(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        quote(s)
    }
}

fn inline(y: &Y) -> String {
    match y {
        Y::Scalar(s) => scalar(s),
        Y::Raw(s) => s.clone(),
        Y::Seq(items, _) | Y::Indentless(items) | Y::Hanging(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        Y::Map(entries, _) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar(k), inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn is_block(y: &Y) -> bool {
    match y {
        Y::Seq(items, flow) => !flow && !items.is_empty(),
        Y::Indentless(items) | Y::Hanging(items) => !items.is_empty(),
        Y::Map(entries, flow) => !flow && !entries.is_empty(),
        _ => false,
    }
}

fn block_map(entries: &[(String, Y)], indent: usize, out: &mut String) {
    for (k, v) in entries {
        out.push_str(&" ".repeat(indent));
        out.push_str(&scalar(k));
        out.push(':');
        match v {
            Y::Map(e, _) if is_block(v) => {
                out.push('\n');
                block_map(e, indent + 2, out);
            }
            Y::Seq(items, _) if is_block(v) => {
                out.push('\n');
                block_seq(items, indent + 2, out);
            }
            Y::Indentless(items) if is_block(v) => {
                out.push('\n');
                block_seq(items, indent, out);
            }
            Y::Hanging(items) if is_block(v) => {
                out.push('\n');
                hanging_seq(items, indent + 2, out);
            }
            other => {
                out.push(' ');
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

fn block_seq(items: &[Y], indent: usize, out: &mut String) {
    for item in items {
        match item {
            Y::Map(e, _) if is_block(item) => {
                let mut inner = String::new();
                block_map(e, indent + 2, &mut inner);
                out.push_str(&" ".repeat(indent));
                out.push_str("- ");
                out.push_str(&inner[indent + 2..]);
            }
            Y::Seq(items, _) | Y::Indentless(items) | Y::Hanging(items) if is_block(item) => {
                out.push_str(&" ".repeat(indent));
                out.push_str("-\n");
                block_seq(items, indent + 2, out);
            }
            other => {
                out.push_str(&" ".repeat(indent));
                out.push_str("- ");
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

fn hanging_seq(items: &[Y], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push_str("-\n");
        match item {
            Y::Map(e, _) if is_block(item) => block_map(e, indent + 2, out),
            Y::Seq(items, _) | Y::Indentless(items) | Y::Hanging(items) if is_block(item) => {
                block_seq(items, indent + 2, out)
            }
            other => {
                out.push_str(&" ".repeat(indent + 2));
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

/// A mapping from optional entries (absent ones dropped), in block or flow style.
pub fn map(entries: Vec<(&str, Option<Y>)>, flow: bool) -> Y {
    Y::Map(
        entries
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
        flow,
    )
}

/// Scalars that are valid somewhere and wrong elsewhere: numbers at and past every limit,
/// YAML's special words, unicode, control characters, long lines.
pub fn weird_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop_oneof![
            Just("~"), Just("null"), Just("true"), Just("no"), Just("0"), Just("-1"),
            Just("99999999999999999999999999999"), Just("-9223372036854775809"),
            Just("9223372036854775807"), Just("18446744073709551616"), Just("1e400"),
            Just("-0.0"), Just(".nan"), Just("-.inf"), Just("0x1F"), Just("0o17"), Just("1_000"),
            Just("2026-01-01T00:00:00Z"), Just("now-30d"), Just("30d"), Just("0d"), Just(""),
            Just(" "), Just("'"), Just("\""), Just("#"), Just("a: b"), Just("- x"), Just("*a"),
            Just("&a"), Just("!!str"), Just("{"), Just("é"), Just("日本語"), Just("\u{202e}rtl"),
            Just("\u{0}"), Just("tab\there"), Just("line\nbreak"), Just("\u{feff}bom"),
        ]
        .prop_map(String::from),
        2 => any::<i64>().prop_map(|i| i.to_string()),
        2 => any::<f64>().prop_map(|f| f.to_string()),
        2 => "\\PC{0,24}",
        1 => (1usize..4).prop_map(|k| "x".repeat(k * 30_000)),
    ]
}

/// A scalar or any other kind of node: what a mutation puts in a value's place.
pub fn weird_value() -> impl Strategy<Value = Y> {
    let leaf = prop_oneof![
        4 => weird_scalar().prop_map(Y::Scalar),
        1 => Just(Y::Seq(vec![], true)),
        1 => Just(Y::Raw(String::new())),
        1 => Just(Y::Map(vec![], true)),
        1 => prop_oneof![
            Just("&a x"), Just("*a"), Just("!!binary aGk="), Just("!custom x"), Just("|\n  lit"),
            Just("[1, [2, {a: 3}]]"), Just("{a: [b, {c: d}]}"), Just("? complex\n: key"),
        ]
        .prop_map(|s| Y::Raw(s.to_string())),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..4), any::<bool>())
                .prop_map(|(v, f)| Y::Seq(v, f)),
            (
                prop::collection::vec(("[a-z_]{1,8}", inner), 0..4),
                any::<bool>()
            )
                .prop_map(|(v, f)| Y::Map(v, f)),
        ]
    })
}

/// Nesting `depth` levels deep around `leaf` (lists and mappings alternating, either style).
pub fn deep(depth: usize, flow: bool, leaf: Y) -> Y {
    let mut y = leaf;
    for level in 0..depth {
        y = if level % 2 == 0 {
            Y::Seq(vec![y], flow)
        } else {
            Y::Map(vec![("k".to_string(), y)], flow)
        };
    }
    y
}

/// One change to a generated tree.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Remove an entry of a mapping (or an item of a list).
    Delete(Index, Index),
    /// Repeat an entry or item.
    Duplicate(Index, Index),
    /// Misspell a key.
    Rename(Index, Index, String),
    /// Put a value of another kind in a node's place.
    Retype(Index, Y),
    /// Wrap a node in deep nesting.
    Nest(Index, usize, bool),
    /// Write a list or mapping in another style (flow, block, indentless, hanging).
    Restyle(Index, u8),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
        3 => (any::<Index>(), any::<Index>(), prop_oneof!["[a-z_]{1,10}", weird_scalar()])
            .prop_map(|(a, b, k)| Mutation::Rename(a, b, k)),
        4 => (any::<Index>(), weird_value()).prop_map(|(a, y)| Mutation::Retype(a, y)),
        1 => (any::<Index>(), 1usize..120, any::<bool>()).prop_map(|(a, d, f)| Mutation::Nest(a, d, f)),
        2 => (any::<Index>(), 0u8..4).prop_map(|(a, k)| Mutation::Restyle(a, k)),
    ]
}

impl Mutation {
    pub fn apply(&self, root: &mut Y) {
        let count = root.node_count();
        match self {
            Mutation::Delete(at, entry) | Mutation::Duplicate(at, entry) => {
                let dup = matches!(self, Mutation::Duplicate(..));
                if let Some(node) = root.nth(at.index(count)) {
                    match node {
                        Y::Map(entries, _) if !entries.is_empty() => {
                            let i = entry.index(entries.len());
                            if dup {
                                let e = entries[i].clone();
                                entries.insert(i, e);
                            } else {
                                entries.remove(i);
                            }
                        }
                        Y::Seq(items, _) | Y::Indentless(items) | Y::Hanging(items)
                            if !items.is_empty() =>
                        {
                            let i = entry.index(items.len());
                            if dup {
                                let e = items[i].clone();
                                items.insert(i, e);
                            } else {
                                items.remove(i);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Mutation::Rename(at, entry, key) => {
                if let Some(Y::Map(entries, _)) = root.nth(at.index(count)) {
                    if !entries.is_empty() {
                        let i = entry.index(entries.len());
                        entries[i].0 = key.clone();
                    }
                }
            }
            Mutation::Retype(at, y) => {
                // Not the root: a document that is not a mapping is covered by the noise.
                let n = 1 + at.index(count.max(2) - 1);
                if let Some(node) = root.nth(n) {
                    *node = y.clone();
                }
            }
            Mutation::Restyle(at, style) => {
                if let Some(node) = root.nth(at.index(count)) {
                    let restyled = match std::mem::replace(node, Y::Raw(String::new())) {
                        Y::Seq(items, _) | Y::Indentless(items) | Y::Hanging(items) => {
                            match style {
                                0 => Y::Seq(items, true),
                                1 => Y::Seq(items, false),
                                2 => Y::Indentless(items),
                                _ => Y::Hanging(items),
                            }
                        }
                        Y::Map(entries, flow) => Y::Map(entries, !flow),
                        other => other,
                    };
                    *node = restyled;
                }
            }
            Mutation::Nest(at, depth, flow) => {
                let n = 1 + at.index(count.max(2) - 1);
                if let Some(node) = root.nth(n) {
                    let inner = std::mem::replace(node, Y::Seq(vec![], true));
                    *node = deep(*depth, *flow, inner);
                }
            }
        }
    }
}

/// One change to the rendered text.
#[derive(Clone, Debug)]
pub enum TextMutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Indent(Index, usize),
    Dedent(Index),
    Insert(Index, String),
    Truncate(Index),
}

pub fn text_mutation() -> impl Strategy<Value = TextMutation> {
    prop_oneof![
        any::<Index>().prop_map(TextMutation::DeleteLine),
        any::<Index>().prop_map(TextMutation::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| TextMutation::SwapLines(a, b)),
        (any::<Index>(), 1usize..5).prop_map(|(a, n)| TextMutation::Indent(a, n)),
        any::<Index>().prop_map(TextMutation::Dedent),
        (
            any::<Index>(),
            prop_oneof![token_soup(), "\\PC{0,6}", weird_scalar()]
        )
            .prop_map(|(a, s)| TextMutation::Insert(a, s)),
        any::<Index>().prop_map(TextMutation::Truncate),
    ]
}

impl TextMutation {
    pub fn apply(&self, text: &str) -> String {
        let mut lines: Vec<String> = text.split('\n').map(String::from).collect();
        let n = lines.len();
        match self {
            TextMutation::DeleteLine(i) => {
                lines.remove(i.index(n));
            }
            TextMutation::DuplicateLine(i) => {
                let l = lines[i.index(n)].clone();
                lines.insert(i.index(n), l);
            }
            TextMutation::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
            TextMutation::Indent(i, k) => {
                let l = &mut lines[i.index(n)];
                *l = format!("{}{l}", " ".repeat(*k));
            }
            TextMutation::Dedent(i) => {
                let l = &mut lines[i.index(n)];
                *l = l.trim_start().to_string();
            }
            TextMutation::Insert(at, s) => {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                return format!("{}{s}{}", &text[..at], &text[at..]);
            }
            TextMutation::Truncate(at) => {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                return text[..at].to_string();
            }
        }
        lines.join("\n")
    }
}

/// Text made of YAML's structural tokens in random order.
pub fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("- "),
            Just(": "),
            Just("\n"),
            Just("\n  "),
            Just("  "),
            Just("{"),
            Just("}"),
            Just("["),
            Just("]"),
            Just(", "),
            Just("triggers"),
            Just("segments"),
            Just("processes"),
            Just("id"),
            Just("filter"),
            Just("actions"),
            Just("&a "),
            Just("*a"),
            Just("!!str "),
            Just("|\n"),
            Just(">-\n"),
            Just("'"),
            Just("\""),
            Just(" # c"),
            Just("---\n"),
            Just("...\n"),
            Just("? "),
            Just("%YAML 1.2\n"),
            Just("\t"),
            Just("\r\n"),
            Just("\u{feff}"),
            Just("x"),
            Just("1"),
            Just("<<: "),
        ],
        0..40,
    )
    .prop_map(|t| t.concat())
}

/// Files that are not generated from a schema: arbitrary text, lossy bytes, token soup.
pub fn noise() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "[ -~\n]{0,200}",
        token_soup(),
    ]
}

/// A generated document, mutated, rendered, its text mutated.
pub fn mutated(doc: impl Strategy<Value = Y>) -> impl Strategy<Value = String> {
    (
        doc,
        prop::collection::vec(mutation(), 0..4),
        prop::collection::vec(text_mutation(), 0..2),
    )
        .prop_map(|(mut doc, muts, text_muts)| {
            for m in &muts {
                m.apply(&mut doc);
            }
            let mut text = doc.render();
            for m in &text_muts {
                text = m.apply(&text);
            }
            text
        })
}

/// A file for a front end: mostly structure-aware (valid or mutated), some pure noise.
pub fn config_text(doc: impl Strategy<Value = Y> + Clone) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => doc.clone().prop_map(|d| d.render()),
        6 => mutated(doc),
        1 => noise(),
    ]
}

/// A CEL expression over the trigger vocabulary, well-formed or not, some very deep.
pub fn cel_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("customer.points"),
        Just("customer.city"),
        Just("customer.tier"),
        Just("customer.pionts"),
        Just("event.properties.total"),
        Just("event.type"),
        Just("event.properties"),
        Just("counters.orders"),
        Just("counters.nope"),
        Just("coupon"),
        Just("now"),
        Just("1"),
        Just("2.5"),
        Just("-0.0"),
        Just("'gold'"),
        Just("\"x\""),
        Just("true"),
        Just("null"),
        Just("[1, 2]"),
        Just("{'a': 1}"),
        Just("9223372036854775807"),
        Just("18446744073709551615u"),
        Just("b'x'"),
        Just("duration('1h')"),
        Just("timestamp('2026-01-01T00:00:00Z')"),
        Just("x"),
        Just("1e308"),
        Just("0x7f"),
    ]
    .prop_map(String::from);
    let expr = leaf.prop_recursive(5, 48, 3, |inner| {
        let op = prop_oneof![
            Just("+"),
            Just("-"),
            Just("*"),
            Just("/"),
            Just("%"),
            Just("=="),
            Just("!="),
            Just("<"),
            Just("<="),
            Just(">"),
            Just(">="),
            Just("&&"),
            Just("||"),
            Just("in"),
        ];
        let func = prop_oneof![
            Just("int"),
            Just("double"),
            Just("string"),
            Just("size"),
            Just("has"),
            Just("timestamp"),
            Just("duration"),
            Just("uint"),
            Just("dyn"),
            Just("type"),
            Just("nope"),
        ];
        prop_oneof![
            (inner.clone(), op, inner.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("!{a}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            (func, inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("{a} ? {b} : {c}")),
            inner
                .clone()
                .prop_map(|a| format!("[{a}].exists(x, x > 1)")),
            (inner.clone(), "[a-z]{1,5}").prop_map(|(a, f)| format!("{a}.{f}")),
            (inner.clone(), inner).prop_map(|(a, i)| format!("{a}[{i}]")),
        ]
    });
    prop_oneof![
        8 => expr,
        1 => (1usize..400).prop_map(|n| format!("{}1{}", "(".repeat(n), ")".repeat(n))),
        1 => (1usize..400).prop_map(|n| format!("{}true", "!".repeat(n))),
        1 => "\\PC{0,30}",
    ]
}

/// Asserts what every error of a front end must look like: at least one error; every
/// diagnostic has a message and is either located (line and column from 1, a span inside
/// the text that starts on that line) or a file-level one whose message is in `file_level`.
pub fn assert_located(text: &str, err: &ConfigError, file_level: &[&str]) {
    assert!(
        err.errors().next().is_some(),
        "an Err without an error: {err:?}"
    );
    assert_eq!(&*err.source_text, text);
    let lines = line_of(text, text.len());
    for d in &err.diagnostics {
        assert!(!d.message.trim().is_empty(), "empty message: {d:?}");
        if d.line == 0 {
            assert!(
                d.span.is_none() && file_level.iter().any(|m| d.message.contains(m)),
                "an unlocated diagnostic that is not a documented file-level one: {d:?}"
            );
            continue;
        }
        assert!(
            d.column >= 1 && d.line <= lines,
            "{d:?} (the text has {lines} lines)"
        );
        let (start, end) = d
            .span
            .unwrap_or_else(|| panic!("located but no span: {d:?}"));
        assert!(
            start <= end && end <= text.len(),
            "span outside the text ({} bytes): {d:?}",
            text.len()
        );
        assert!(
            text.is_char_boundary(start) && text.is_char_boundary(end),
            "{d:?}"
        );
        assert_eq!(
            line_of(text, start),
            d.line,
            "the span starts on another line: {d:?}"
        );
    }
}

/// The 1-based line of byte `offset`, counting line breaks as YAML does (`\n`, `\r\n`, `\r`).
pub fn line_of(text: &str, offset: usize) -> u64 {
    let b = text.as_bytes();
    let mut line = 1;
    for i in 0..offset.min(b.len()) {
        if b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')) {
            line += 1;
        }
    }
    line
}
