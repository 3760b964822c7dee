//! Quota configuration: YAML in, validated [`QuotaConfig`] out.
//!
//! ```yaml
//! unknown_process: deny          # deny (default) | default
//! default_limits: { records: 100000, bytes: 50000000 }   # required with `default`
//! default_owner: ops@example.com  # optional: who hears about the unknown bucket
//! default_time_zone: UTC          # optional: for processes without time_zone
//! max_event_lead: 1d              # default 1d: how far an event may be stamped ahead of the clock
//! processes:
//!   - id: crm-sync
//!     owner: data-team@example.com
//!     time_zone: Europe/Berlin    # IANA name; the quota day is this zone's calendar day
//!     limits: { records: 2000000, bytes: 1500000000 }   # either or both
//!     warn_at: 0.8                # default 0.8, in (0, 1]
//!     shadow: false               # default false: evaluate + notify, never deny
//!     on_backend_unavailable: fail_closed   # default fail_closed | fail_open
//! ```
//!
//! **Unknown processes are denied by default.** A batch job whose id is
//! missing from the config is a configuration error, and holding its
//! transfer is the reversible choice. With `unknown_process: default`, every
//! unknown id draws from **one shared bucket** (reported as
//! [`UNKNOWN_BUCKET_ID`]) limited by `default_limits`, so a misconfigured job
//! cannot multiply its allowance by varying its id.
//!
//! **Events from the future are held.** An event stamped more than
//! `max_event_lead` after the quota manager's reference clock (the wall
//! clock unless the caller fixes it, see [`crate::ReferenceClock`]) is denied
//! with [`crate::Denial::AheadOfClock`] without touching the ledger: a
//! single event stamped `9999-12-31` would otherwise move its process's
//! quota day to that date, and since a ledger never moves backwards, charge
//! every later event to it. Durations are written in the syntax of segment
//! windows: a sequence of whole numbers with units `w`, `d`, `h`, `m`, `s`
//! (`36h`, `1d12h`, `90m`).
//!
//! Validation never stops at the first problem: the document is parsed into a
//! location-carrying tree and every field is checked, so [`ConfigError`]
//! lists all diagnostics, each with line, column, byte span and a hint.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use chrono::TimeDelta;
use chrono_tz::Tz;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::usage::{Limits, MAX_AMOUNT};

/// The id under which unknown processes share the default quota.
pub const UNKNOWN_BUCKET_ID: &str = "*unknown*";

/// Default warning threshold (fraction of the limit).
pub const DEFAULT_WARN_AT: f64 = 0.8;

/// Default of `max_event_lead`: one day.
pub const DEFAULT_MAX_EVENT_LEAD: TimeDelta = TimeDelta::days(1);

/// Units of the duration syntax, largest first, in microseconds.
const DURATION_UNITS: &[(&str, i64)] = &[
    ("w", 7 * 86_400_000_000),
    ("d", 86_400_000_000),
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
];

/// Parses a positive duration such as `24h`, `1d`, `90m` or `1d12h` (whole
/// numbers with units `w d h m s`, the syntax of segment windows). `None`
/// for anything else, zero, or more than `i64` microseconds.
pub fn parse_duration(text: &str) -> Option<TimeDelta> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, micros) = DURATION_UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total = total.checked_add(n.checked_mul(*micros)?)?;
    }
    (total > 0).then(|| TimeDelta::microseconds(total))
}

/// Formats a duration in the syntax [`parse_duration`] reads (largest
/// exact unit, e.g. `1d`, `36h`).
pub fn format_duration(d: TimeDelta) -> String {
    let micros = d.num_microseconds().unwrap_or(i64::MAX);
    for (unit, m) in DURATION_UNITS {
        if micros % m == 0 {
            return format!("{}{unit}", micros / m);
        }
    }
    format!("{}s", micros as f64 / 1e6)
}

mod duration_text {
    use chrono::TimeDelta;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &TimeDelta, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TimeDelta, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid duration `{text}`")))
    }
}

fn default_max_event_lead() -> TimeDelta {
    DEFAULT_MAX_EVENT_LEAD
}

/// What to do with a process id that the configuration does not list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownProcess {
    /// Deny every reservation ([`crate::Denial::UnknownProcess`]). The default.
    #[default]
    Deny,
    /// Charge the shared [`UNKNOWN_BUCKET_ID`] bucket, limited by `default_limits`.
    Default,
}

/// What a reservation does when the ledger backend cannot be reached or
/// answers garbage. Either way the owner is notified once per outage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendPolicy {
    /// Deny ([`crate::Denial::BackendUnavailable`]). The default: a batch
    /// sync that cannot prove it has quota should assume it has none.
    #[default]
    FailClosed,
    /// Grant without metering for the duration of the outage.
    FailOpen,
}

/// One metered process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessConfig {
    /// Unique id: 1–128 characters of `A-Z a-z 0-9 . _ - : /`.
    pub id: String,
    /// Who is notified (free text, usually an e-mail address).
    pub owner: String,
    /// The zone whose calendar day is the quota day.
    #[serde(with = "tz_name")]
    pub time_zone: Tz,
    /// Daily limits (at least one dimension).
    pub limits: Limits,
    /// Warn when usage reaches this fraction of a limit; in `(0, 1]`.
    pub warn_at: f64,
    /// Evaluate and notify, never deny.
    pub shadow: bool,
    /// Behaviour when the ledger backend is unavailable.
    pub on_backend_unavailable: BackendPolicy,
}

impl ProcessConfig {
    /// A process with the defaults for everything but id, owner, zone and limits.
    pub fn new(
        id: impl Into<String>,
        owner: impl Into<String>,
        time_zone: Tz,
        limits: Limits,
    ) -> Self {
        ProcessConfig {
            id: id.into(),
            owner: owner.into(),
            time_zone,
            limits,
            warn_at: DEFAULT_WARN_AT,
            shadow: false,
            on_backend_unavailable: BackendPolicy::FailClosed,
        }
    }
}

mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A validated quota configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuotaConfig {
    /// Policy for ids not listed in `processes`.
    pub unknown_process: UnknownProcess,
    /// Limits of the shared unknown-process bucket (required with `default`).
    pub default_limits: Option<Limits>,
    /// Owner notified about the unknown bucket.
    pub default_owner: Option<String>,
    /// Zone for processes without one and for the unknown bucket (UTC if unset).
    #[serde(with = "opt_tz_name")]
    pub default_time_zone: Option<Tz>,
    /// The metered processes, ids unique.
    pub processes: Vec<ProcessConfig>,
    /// How far an event may be stamped ahead of the reference clock; later
    /// ones are held without touching the ledger. Positive; default one day.
    #[serde(with = "duration_text", default = "default_max_event_lead")]
    pub max_event_lead: TimeDelta,
}

mod opt_tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
        match tz {
            Some(tz) => s.serialize_some(tz.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tz>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|n| n.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl QuotaConfig {
    /// Parses and validates YAML. `source_name` (usually the file name) is
    /// carried into the error for rendering.
    ///
    /// Parsing runs on a thread with a large stack: a deeply nested file (up to the 64 levels
    /// the YAML reader allows) needs more than a small thread's stack (a test thread's or a
    /// tokio worker's 2 MiB), and must be an error, never a stack overflow.
    pub fn from_yaml_str(text: &str, source_name: &str) -> Result<QuotaConfig, ConfigError> {
        on_parsing_stack(|| QuotaConfig::parse(text, source_name))
    }

    fn parse(text: &str, source_name: &str) -> Result<QuotaConfig, ConfigError> {
        let mut diags = Vec::new();
        let root: Spanned<Node> = match serde_saphyr::from_str(text) {
            Ok(root) => root,
            Err(e) => {
                let loc = e.location();
                diags.push(Diag {
                    message: format!("not valid YAML: {}", yaml_message(&e)),
                    path: String::new(),
                    line: loc.map(|l| l.line()),
                    column: loc.map(|l| l.column()),
                    byte_offset: loc.and_then(|l| l.span().byte_offset()),
                    byte_len: loc.and_then(|l| l.span().byte_len()),
                    help: Some("fix the YAML syntax first; the quota schema is documented in fusebox_quotas::config".into()),
                });
                return Err(ConfigError::new(source_name, diags));
            }
        };
        let cfg = Validator { diags: &mut diags }.config(&root);
        match cfg {
            Some(cfg) if diags.is_empty() => Ok(cfg),
            _ => Err(ConfigError::new(source_name, diags)),
        }
    }

    /// Reads and validates a YAML file.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<QuotaConfig, ConfigError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => QuotaConfig::from_yaml_str(&text, &name),
            Err(e) => Err(ConfigError::new(
                &name,
                vec![Diag {
                    message: format!("cannot read quota config: {e}"),
                    path: String::new(),
                    line: None,
                    column: None,
                    byte_offset: None,
                    byte_len: None,
                    help: None,
                }],
            )),
        }
    }

    /// Looks a process up by id.
    pub fn process(&self, id: &str) -> Option<&ProcessConfig> {
        self.processes.iter().find(|p| p.id == id)
    }

    /// The synthetic process that meters unknown ids, when `unknown_process: default`.
    pub fn unknown_bucket(&self) -> Option<ProcessConfig> {
        if self.unknown_process != UnknownProcess::Default {
            return None;
        }
        let limits = self.default_limits?;
        let mut p = ProcessConfig::new(
            UNKNOWN_BUCKET_ID,
            self.default_owner.clone().unwrap_or_default(),
            self.default_time_zone.unwrap_or(Tz::UTC),
            limits,
        );
        p.on_backend_unavailable = BackendPolicy::FailClosed;
        Some(p)
    }
}

/// One validation problem, ready for a diagnostic renderer (miette or
/// plain text). Lines and columns are 1-based.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigDiagnostic {
    /// What is wrong.
    pub message: String,
    /// Where in the document, e.g. `processes[2].limits.records`.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// Byte offset of the offending node in the source text, when known.
    pub byte_offset: Option<u64>,
    /// Byte length of the offending node, when known.
    pub byte_len: Option<u64>,
    /// How to fix it.
    pub help: Option<String>,
}

type Diag = ConfigDiagnostic;

impl fmt::Display for ConfigDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: ")?,
            (Some(l), None) => write!(f, "line {l}: ")?,
            _ => {}
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.help {
            write!(f, " (help: {h})")?;
        }
        Ok(())
    }
}

/// The configuration is invalid; every problem found is listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ConfigError {
    /// The `source_name` given to the parser.
    pub source_name: String,
    /// All problems, in document order. Never empty.
    pub diagnostics: Vec<ConfigDiagnostic>,
}

impl ConfigError {
    fn new(source_name: &str, mut diagnostics: Vec<ConfigDiagnostic>) -> ConfigError {
        diagnostics.sort_by_key(|d| (d.line.unwrap_or(0), d.column.unwrap_or(0)));
        ConfigError {
            source_name: source_name.to_string(),
            diagnostics,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        write!(
            f,
            "{}: invalid quota configuration ({n} problem{})",
            self.source_name,
            if n == 1 { "" } else { "s" }
        )?;
        for d in &self.diagnostics {
            write!(f, "\n  {}:{d}", self.source_name)?;
        }
        Ok(())
    }
}

/// A YAML node with locations on every key and value, so validation can
/// report each problem where it is.
#[derive(Debug, Clone)]
enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
                Ok(Node::Int(i128::try_from(v).unwrap_or(i128::MAX)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element::<Spanned<Node>>()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = a.next_key::<Spanned<Node>>()? {
                    let v = a.next_value::<Spanned<Node>>()?;
                    entries.push((k, v));
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

struct Validator<'a> {
    diags: &'a mut Vec<Diag>,
}

/// Known keys of a mapping, for unknown-key detection and suggestions.
const TOP_KEYS: &[&str] = &[
    "unknown_process",
    "default_limits",
    "default_owner",
    "default_time_zone",
    "max_event_lead",
    "processes",
];
const PROCESS_KEYS: &[&str] = &[
    "id",
    "owner",
    "time_zone",
    "limits",
    "warn_at",
    "shadow",
    "on_backend_unavailable",
];
const LIMIT_KEYS: &[&str] = &["records", "bytes"];

impl Validator<'_> {
    fn err(&mut self, at: &Spanned<Node>, path: &str, message: String, help: Option<String>) {
        let loc = at.referenced;
        // serde-saphyr reports 0/0 for nodes without a location.
        let known = loc.line() > 0;
        self.diags.push(Diag {
            message,
            path: path.to_string(),
            line: known.then(|| loc.line()),
            column: known.then(|| loc.column()),
            byte_offset: loc.span().byte_offset().filter(|_| known),
            byte_len: loc.span().byte_len().filter(|_| known),
            help,
        });
    }

    /// Splits a mapping into known fields, reporting unknown and duplicate keys.
    fn fields<'n>(
        &mut self,
        node: &'n Spanned<Node>,
        path: &str,
        known: &[&'static str],
    ) -> Option<HashMap<&'static str, &'n Spanned<Node>>> {
        let Node::Map(entries) = &node.value else {
            self.err(
                node,
                path,
                format!("expected a mapping, found {}", node.value.kind()),
                Some(format!("expected keys: {}", known.join(", "))),
            );
            return None;
        };
        let mut out: HashMap<&'static str, &'n Spanned<Node>> = HashMap::new();
        for (k, v) in entries {
            let Node::Str(key) = &k.value else {
                self.err(
                    k,
                    path,
                    format!("keys must be strings, found {}", k.value.kind()),
                    None,
                );
                continue;
            };
            let sub = join(path, key);
            let Some(&name) = known.iter().find(|n| **n == key.as_str()) else {
                let help = match suggest(key, known) {
                    Some(s) => format!("did you mean `{s}`? known keys: {}", known.join(", ")),
                    None => format!("known keys: {}", known.join(", ")),
                };
                self.err(k, &sub, format!("unknown key `{key}`"), Some(help));
                continue;
            };
            if out.insert(name, v).is_some() {
                self.err(
                    k,
                    &sub,
                    format!("key `{key}` appears twice"),
                    Some("keep one".into()),
                );
            }
        }
        Some(out)
    }

    fn string(&mut self, node: &Spanned<Node>, path: &str) -> Option<String> {
        match &node.value {
            Node::Str(s) if !s.trim().is_empty() => Some(s.clone()),
            Node::Str(_) => {
                self.err(node, path, "must not be empty".into(), None);
                None
            }
            other => {
                self.err(
                    node,
                    path,
                    format!("expected a string, found {}", other.kind()),
                    None,
                );
                None
            }
        }
    }

    fn time_zone(&mut self, node: &Spanned<Node>, path: &str) -> Option<Tz> {
        let name = self.string(node, path)?;
        match name.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let lower = name.to_ascii_lowercase();
                let close = chrono_tz::TZ_VARIANTS
                    .iter()
                    .find(|t| t.name().to_ascii_lowercase() == lower)
                    .map(|t| t.name());
                let help = match close {
                    Some(c) => format!("did you mean `{c}`? (zone names are case-sensitive)"),
                    None => "use an IANA zone name such as Europe/Berlin, America/New_York or UTC"
                        .into(),
                };
                self.err(
                    node,
                    path,
                    format!("unknown time zone `{name}`"),
                    Some(help),
                );
                None
            }
        }
    }

    fn limit(&mut self, node: &Spanned<Node>, path: &str) -> Option<u64> {
        let value: Option<i128> = match &node.value {
            Node::Int(i) => Some(*i),
            Node::Float(f) if f.fract() == 0.0 && f.abs() < 1e30 => Some(*f as i128),
            _ => None,
        };
        let help = Some(format!(
            "a whole number from 1 to {MAX_AMOUNT}; omit the key to leave it unmetered"
        ));
        match value {
            None => {
                self.err(
                    node,
                    path,
                    format!("expected a whole number, found {}", node.value.kind()),
                    help,
                );
                None
            }
            Some(v) if v <= 0 => {
                self.err(
                    node,
                    path,
                    format!("limit must be positive, found {v}"),
                    help,
                );
                None
            }
            Some(v) if v > i128::from(MAX_AMOUNT) => {
                self.err(
                    node,
                    path,
                    format!("limit {v} is above the maximum {MAX_AMOUNT}"),
                    help,
                );
                None
            }
            Some(v) => u64::try_from(v).ok(),
        }
    }

    fn limits(&mut self, node: &Spanned<Node>, path: &str) -> Option<Limits> {
        let f = self.fields(node, path, LIMIT_KEYS)?;
        let records = f
            .get("records")
            .map(|n| self.limit(n, &join(path, "records")));
        let bytes = f.get("bytes").map(|n| self.limit(n, &join(path, "bytes")));
        if records.is_none() && bytes.is_none() {
            self.err(
                node,
                path,
                "no limit given".into(),
                Some("set `records`, `bytes` or both".into()),
            );
            return None;
        }
        // A present-but-invalid key was already reported.
        if matches!(records, Some(None)) || matches!(bytes, Some(None)) {
            return None;
        }
        Some(Limits::new(records.flatten(), bytes.flatten()))
    }

    fn warn_at(&mut self, node: &Spanned<Node>, path: &str) -> Option<f64> {
        let v = match &node.value {
            Node::Float(f) => *f,
            Node::Int(i) => *i as f64,
            other => {
                self.err(
                    node,
                    path,
                    format!("expected a number, found {}", other.kind()),
                    None,
                );
                return None;
            }
        };
        if v > 0.0 && v <= 1.0 {
            Some(v)
        } else {
            self.err(
                node,
                path,
                format!("warn_at must be in (0, 1], found {v}"),
                Some("a fraction of the limit, e.g. 0.8 warns at 80%".into()),
            );
            None
        }
    }

    fn duration(&mut self, node: &Spanned<Node>, path: &str) -> Option<TimeDelta> {
        let help = Some(
            "a positive duration: whole numbers with units w, d, h, m, s, e.g. 24h, 1d, 1d12h"
                .to_string(),
        );
        match &node.value {
            Node::Str(text) => match parse_duration(text) {
                Some(d) => Some(d),
                None => {
                    self.err(node, path, format!("invalid duration `{text}`"), help);
                    None
                }
            },
            other => {
                self.err(
                    node,
                    path,
                    format!("expected a duration, found {}", other.kind()),
                    help,
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Spanned<Node>, path: &str) -> Option<bool> {
        match node.value {
            Node::Bool(b) => Some(b),
            ref other => {
                self.err(
                    node,
                    path,
                    format!("expected true or false, found {}", other.kind()),
                    None,
                );
                None
            }
        }
    }

    fn choice<T: Copy>(
        &mut self,
        node: &Spanned<Node>,
        path: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let help = Some(format!("one of: {}", names.join(", ")));
        match &node.value {
            Node::Str(s) => match options.iter().find(|(n, _)| n == s) {
                Some((_, v)) => Some(*v),
                None => {
                    self.err(node, path, format!("unknown value `{s}`"), help);
                    None
                }
            },
            other => {
                self.err(
                    node,
                    path,
                    format!("expected a string, found {}", other.kind()),
                    help,
                );
                None
            }
        }
    }

    fn config(&mut self, root: &Spanned<Node>) -> Option<QuotaConfig> {
        let f = self.fields(root, "", TOP_KEYS)?;
        let unknown_process = match f.get("unknown_process") {
            Some(n) => self.choice(
                n,
                "unknown_process",
                &[
                    ("deny", UnknownProcess::Deny),
                    ("default", UnknownProcess::Default),
                ],
            ),
            None => Some(UnknownProcess::Deny),
        };
        let default_limits = f
            .get("default_limits")
            .map(|n| self.limits(n, "default_limits"));
        let default_owner = f
            .get("default_owner")
            .map(|n| self.string(n, "default_owner"));
        let default_time_zone = f
            .get("default_time_zone")
            .map(|n| self.time_zone(n, "default_time_zone"));
        if unknown_process == Some(UnknownProcess::Default) && default_limits.is_none() {
            if let Some(n) = f.get("unknown_process") {
                self.err(
                    n,
                    "unknown_process",
                    "`unknown_process: default` needs `default_limits`".into(),
                    Some("add e.g. `default_limits: { records: 100000 }` or use `deny`".into()),
                );
            }
        }
        let max_event_lead = match f.get("max_event_lead") {
            Some(n) => self.duration(n, "max_event_lead"),
            None => Some(DEFAULT_MAX_EVENT_LEAD),
        };
        let tz_fallback = default_time_zone.flatten();
        let mut processes = Vec::new();
        match f.get("processes") {
            None => {}
            Some(list) => match &list.value {
                Node::Seq(items) => {
                    let mut seen: HashMap<String, u64> = HashMap::new();
                    for (i, item) in items.iter().enumerate() {
                        let path = format!("processes[{i}]");
                        if let Some(p) = self.process(item, &path, tz_fallback, &mut seen) {
                            processes.push(p);
                        }
                    }
                }
                Node::Null => {}
                other => self.err(
                    list,
                    "processes",
                    format!("expected a list of processes, found {}", other.kind()),
                    Some("write each process as `- id: ...`".into()),
                ),
            },
        }
        Some(QuotaConfig {
            unknown_process: unknown_process?,
            default_limits: default_limits.flatten(),
            default_owner: default_owner.flatten(),
            default_time_zone: tz_fallback,
            processes,
            max_event_lead: max_event_lead?,
        })
    }

    fn process(
        &mut self,
        node: &Spanned<Node>,
        path: &str,
        tz_fallback: Option<Tz>,
        seen: &mut HashMap<String, u64>,
    ) -> Option<ProcessConfig> {
        let f = self.fields(node, path, PROCESS_KEYS)?;
        let id = match f.get("id") {
            Some(n) => {
                let p = join(path, "id");
                let id = self.string(n, &p);
                match id {
                    Some(id) if !valid_id(&id) => {
                        self.err(
                            n,
                            &p,
                            format!("invalid process id `{id}`"),
                            Some("1-128 characters of A-Z a-z 0-9 . _ - : /".into()),
                        );
                        None
                    }
                    Some(id) => {
                        let line = n.referenced.line();
                        if let Some(first) = seen.get(&id) {
                            self.err(
                                n,
                                &p,
                                format!("duplicate process id `{id}`"),
                                Some(format!("first defined on line {first}; ids must be unique")),
                            );
                            None
                        } else {
                            seen.insert(id.clone(), line);
                            Some(id)
                        }
                    }
                    None => None,
                }
            }
            None => {
                self.err(
                    node,
                    path,
                    "missing `id`".into(),
                    Some("add `id: <unique name>`".into()),
                );
                None
            }
        };
        let owner = match f.get("owner") {
            Some(n) => self.string(n, &join(path, "owner")),
            None => {
                self.err(
                    node,
                    path,
                    "missing `owner`".into(),
                    Some("add `owner: <who is notified>`".into()),
                );
                None
            }
        };
        let time_zone = match f.get("time_zone") {
            Some(n) => self.time_zone(n, &join(path, "time_zone")),
            None => {
                if tz_fallback.is_none() {
                    self.err(
                        node,
                        path,
                        "missing `time_zone`".into(),
                        Some("the quota day is the calendar day in this zone; add e.g. `time_zone: Europe/Berlin` or a top-level `default_time_zone`".into()),
                    );
                }
                tz_fallback
            }
        };
        let limits = match f.get("limits") {
            Some(n) => self.limits(n, &join(path, "limits")),
            None => {
                self.err(
                    node,
                    path,
                    "missing `limits`".into(),
                    Some("add e.g. `limits: { records: 1000000, bytes: 500000000 }`".into()),
                );
                None
            }
        };
        let warn_at = match f.get("warn_at") {
            Some(n) => self.warn_at(n, &join(path, "warn_at")),
            None => Some(DEFAULT_WARN_AT),
        };
        let shadow = match f.get("shadow") {
            Some(n) => self.boolean(n, &join(path, "shadow")),
            None => Some(false),
        };
        let policy = match f.get("on_backend_unavailable") {
            Some(n) => self.choice(
                n,
                &join(path, "on_backend_unavailable"),
                &[
                    ("fail_closed", BackendPolicy::FailClosed),
                    ("fail_open", BackendPolicy::FailOpen),
                ],
            ),
            None => Some(BackendPolicy::FailClosed),
        };
        Some(ProcessConfig {
            id: id?,
            owner: owner?,
            time_zone: time_zone?,
            limits: limits?,
            warn_at: warn_at?,
            shadow: shadow?,
            on_backend_unavailable: policy?,
        })
    }
}

/// Process ids appear in ledger keys and log lines; keep them plain.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/'))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The known key closest to `key` by edit distance, if it is close enough to
/// be a typo.
fn suggest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Stack size of the parsing thread (only touched pages are committed).
const PARSING_STACK: usize = 64 << 20;

/// Runs `f` on a thread with a [`PARSING_STACK`]-byte stack (on the caller's thread if no
/// thread can be started); a panic in `f` is resumed on the caller's thread.
fn on_parsing_stack<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let f = std::sync::Mutex::new(Some(f));
    let run = || {
        f.lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(|f| f())
    };
    std::thread::scope(|scope| {
        let result = match std::thread::Builder::new()
            .name("quota-config".into())
            .stack_size(PARSING_STACK)
            .spawn_scoped(scope, run)
        {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => run(),
        };
        match result {
            Some(r) => r,
            None => unreachable!("`f` runs exactly once: on the thread, or here"),
        }
    })
}

/// The message of a YAML error alone: the location is the diagnostic's own, and
/// serde-saphyr's `Display` would repeat it ("line 3 column 8: …") with a snippet of its own
/// pointing at `<input>`. A nesting or size limit is said in words. (The same rules as the
/// triggers and segments front ends, `fusebox_engine::config::from_yaml_error`; this crate
/// does not depend on the engine.)
fn yaml_message(err: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter;
    let mut inner = err;
    while let serde_saphyr::Error::WithSnippet { error, .. }
    | serde_saphyr::Error::AliasError { error, .. } = inner
    {
        inner = error;
    }
    if let serde_saphyr::Error::Budget { breach, .. } = inner {
        return match breach {
            serde_saphyr::budget::BudgetBreach::Depth { depth } => format!(
                "the YAML nests too deep ({depth} levels; at most {} are read)",
                depth.saturating_sub(1)
            ),
            other => format!("the file is too large to read as configuration ({other:?})"),
        };
    }
    serde_saphyr::DefaultMessageFormatter
        .format_message(inner)
        .chars()
        .flat_map(|c| {
            let escape = c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
            let mut out = Vec::new();
            if escape {
                out.extend(c.escape_debug());
            } else {
                out.push(c);
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
unknown_process: default
default_limits: { records: 100000, bytes: 50000000 }
processes:
  - id: crm-sync
    owner: data-team@example.com
    time_zone: Europe/Berlin
    limits: { records: 2000000, bytes: 1500000000 }
    warn_at: 0.9
    shadow: true
    on_backend_unavailable: fail_open
  - id: nightly-export
    owner: bi@example.com
    time_zone: America/New_York
    limits:
      bytes: 1.5e9
";

    #[test]
    fn parses_the_documented_schema() {
        let c = QuotaConfig::from_yaml_str(GOOD, "quotas.yaml").unwrap();
        assert_eq!(c.unknown_process, UnknownProcess::Default);
        assert_eq!(
            c.default_limits,
            Some(Limits::new(Some(100_000), Some(50_000_000)))
        );
        assert_eq!(c.processes.len(), 2);
        let crm = c.process("crm-sync").unwrap();
        assert_eq!(crm.time_zone, chrono_tz::Europe::Berlin);
        assert_eq!(crm.warn_at, 0.9);
        assert!(crm.shadow);
        assert_eq!(crm.on_backend_unavailable, BackendPolicy::FailOpen);
        let exp = c.process("nightly-export").unwrap();
        assert_eq!(exp.limits, Limits::new(None, Some(1_500_000_000)));
        assert_eq!(exp.warn_at, DEFAULT_WARN_AT);
        assert!(!exp.shadow);
        assert_eq!(exp.on_backend_unavailable, BackendPolicy::FailClosed);
        assert_eq!(c.unknown_bucket().unwrap().id, UNKNOWN_BUCKET_ID);
    }

    #[test]
    fn the_example_file_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/quotas.example.yaml");
        let c = QuotaConfig::from_yaml_file(path).unwrap();
        assert_eq!(c.processes.len(), 4);
        assert!(c.process("loyalty-export").unwrap().shadow);
        assert!(QuotaConfig::from_yaml_file("/nonexistent/q.yaml").is_err());
    }

    #[test]
    fn unknown_process_defaults_to_deny() {
        let c = QuotaConfig::from_yaml_str("processes: []\n", "q.yaml").unwrap();
        assert_eq!(c.unknown_process, UnknownProcess::Deny);
        assert!(c.unknown_bucket().is_none());
    }

    #[test]
    fn reports_every_problem_with_location_and_help() {
        let bad = "\
unknown_proces: deny
processes:
  - id: a
    owner: x@example.com
    time_zone: Europe/Berln
    limits: { records: 0, bytes: -5 }
    warn_at: 1.5
  - id: a
    owner: y@example.com
    time_zone: europe/berlin
    limits: {}
    colour: red
";
        let e = QuotaConfig::from_yaml_str(bad, "bad.yaml").unwrap_err();
        let msgs: Vec<String> = e.diagnostics.iter().map(|d| d.to_string()).collect();
        let all = msgs.join("\n");
        assert_eq!(e.diagnostics.len(), 9, "{all}");
        for needle in [
            "unknown key `unknown_proces`",
            "did you mean `unknown_process`",
            "unknown time zone `Europe/Berln`",
            "limit must be positive, found 0",
            "limit must be positive, found -5",
            "warn_at must be in (0, 1]",
            "duplicate process id `a`",
            "first defined on line 3",
            "did you mean `Europe/Berlin`",
            "no limit given",
            "unknown key `colour`",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in\n{all}");
        }
        let first = &e.diagnostics[0];
        assert_eq!((first.line, first.column), (Some(1), Some(1)));
        assert_eq!(first.byte_offset, Some(0));
        let tz = e
            .diagnostics
            .iter()
            .find(|d| d.message.contains("Berln"))
            .unwrap();
        assert_eq!(tz.line, Some(5));
        assert_eq!(tz.path, "processes[0].time_zone");
        assert_eq!(tz.column, Some(16));
        assert!(e
            .to_string()
            .starts_with("bad.yaml: invalid quota configuration (9 problems)"));
    }

    #[test]
    fn syntax_error_has_a_location() {
        let e = QuotaConfig::from_yaml_str("processes: [\n  - id: x\n", "s.yaml").unwrap_err();
        assert_eq!(e.diagnostics.len(), 1);
        assert!(e.diagnostics[0].line.is_some());
    }

    #[test]
    fn missing_fields_and_default_without_limits() {
        let e = QuotaConfig::from_yaml_str(
            "unknown_process: default\nprocesses:\n  - id: p\n",
            "m.yaml",
        )
        .unwrap_err();
        let all = e.to_string();
        for needle in [
            "needs `default_limits`",
            "missing `owner`",
            "missing `time_zone`",
            "missing `limits`",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in\n{all}");
        }
    }

    #[test]
    fn limits_above_max_and_bad_ids_are_rejected() {
        let e = QuotaConfig::from_yaml_str(
            "default_time_zone: UTC\nprocesses:\n  - id: 'bad id'\n    owner: o\n    limits: { records: 999999999999999999 }\n",
            "x.yaml",
        )
        .unwrap_err();
        let all = e.to_string();
        assert!(all.contains("invalid process id"), "{all}");
        assert!(all.contains("above the maximum"), "{all}");
    }

    #[test]
    fn default_time_zone_fills_in() {
        let c = QuotaConfig::from_yaml_str(
            "default_time_zone: Asia/Tokyo\nprocesses:\n  - id: p\n    owner: o\n    limits: { records: 5 }\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(c.processes[0].time_zone, chrono_tz::Asia::Tokyo);
    }

    #[test]
    fn max_event_lead_defaults_to_a_day_and_reads_the_window_syntax() {
        let c = QuotaConfig::from_yaml_str("processes: []\n", "q.yaml").unwrap();
        assert_eq!(c.max_event_lead, TimeDelta::days(1));
        let c =
            QuotaConfig::from_yaml_str("max_event_lead: 1d12h\nprocesses: []\n", "q.yaml").unwrap();
        assert_eq!(c.max_event_lead, TimeDelta::hours(36));
        assert_eq!(format_duration(c.max_event_lead), "36h");
        for (text, want) in [("90m", 90 * 60), ("2w", 14 * 86_400), ("45s", 45)] {
            assert_eq!(
                parse_duration(text),
                Some(TimeDelta::seconds(want)),
                "{text}"
            );
        }
        for bad in ["0h", "1.5h", "-1d", "1x", "", "h", "99999999999999w"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let e = QuotaConfig::from_yaml_str("max_event_lead: 1.5h\nprocesses: []\n", "q.yaml")
            .unwrap_err();
        let d = &e.diagnostics[0];
        assert_eq!((d.line, d.path.as_str()), (Some(1), "max_event_lead"));
        assert!(d.message.contains("invalid duration `1.5h`"), "{d}");
        assert!(d.help.as_deref().unwrap().contains("24h"), "{d}");
        let e = QuotaConfig::from_yaml_str("max_event_lead: 3600\nprocesses: []\n", "q.yaml")
            .unwrap_err();
        assert!(e.to_string().contains("expected a duration"), "{e}");
        // Suggested for a typo, like every key.
        let e =
            QuotaConfig::from_yaml_str("max_event_led: 1d\nprocesses: []\n", "q.yaml").unwrap_err();
        assert!(
            e.to_string().contains("did you mean `max_event_lead`"),
            "{e}"
        );
    }

    #[test]
    fn yaml_errors_say_what_without_repeating_where() {
        let err = QuotaConfig::from_yaml_str("{", "q.yaml").unwrap_err();
        let message = &err.diagnostics[0].message;
        assert!(
            !message.contains("<input>") && !message.contains("line 1"),
            "{message}"
        );
        let deep = format!(
            "processes:\n  - id: p\n    owner: o\n    limits: {}1{}\n",
            "[".repeat(70),
            "]".repeat(70)
        );
        let err = QuotaConfig::from_yaml_str(&deep, "q.yaml").unwrap_err();
        assert!(
            err.diagnostics[0].message.contains("nests too deep"),
            "{}",
            err.diagnostics[0].message
        );
    }
}
