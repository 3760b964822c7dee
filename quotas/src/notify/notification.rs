//! The [`Notification`] record and its parts: [`Subject`], [`NotificationKind`],
//! [`Figures`] / [`Figure`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a notification is about: a quota process or a trigger. Serializes
/// tagged, `{"type":"process","id":"crm-sync"}` / `{"type":"trigger","id":"welcome"}`,
/// so a line read on its own says what kind of thing it names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Subject {
    /// A process with a daily quota (`quotas.yaml`).
    Process {
        /// The process id.
        id: String,
    },
    /// A trigger (`triggers.yaml`).
    Trigger {
        /// The trigger id.
        id: String,
    },
    /// A whole engine (its global pause, "the big red button"); `id` names the engine.
    Engine {
        /// The engine's name.
        id: String,
    },
}

impl Subject {
    /// A quota process.
    pub fn process(id: impl Into<String>) -> Subject {
        Subject::Process { id: id.into() }
    }

    /// A trigger.
    pub fn trigger(id: impl Into<String>) -> Subject {
        Subject::Trigger { id: id.into() }
    }

    /// The id, whatever the subject's type.
    pub fn id(&self) -> &str {
        match self {
            Subject::Process { id } | Subject::Trigger { id } | Subject::Engine { id } => id,
        }
    }

    /// `"process"` or `"trigger"`, as in the JSON `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Subject::Process { .. } => "process",
            Subject::Trigger { .. } => "trigger",
            Subject::Engine { .. } => "engine",
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.type_name(), self.id())
    }
}

/// What happened. Serializes as a snake_case string (`"exhausted"`,
/// `"backend_unavailable_denied"`, `"throttled"`).
///
/// Quota processes produce the first twelve; the last five (and
/// [`NotificationKind::Resumed`]) are for triggers, which the runaway
/// control stops, throttles and pauses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Quota: usage reached the warning threshold (once per quota day).
    Warned,
    /// Quota: a reserve exceeded the limit; the process is stopped until the
    /// next quota day or an operator raise / resume (once per quota day).
    Exhausted,
    /// Quota, shadow mode: the limit was exceeded and the process *would*
    /// have been stopped; it keeps running (once per quota day).
    ShadowWouldDeny,
    /// Quota: the first reserve of a new quota day found the process stopped
    /// from the previous day; it is active again.
    RolledOver,
    /// An operator resumed the process or trigger.
    Resumed,
    /// Quota: an operator raised the limit for the rest of the quota day.
    LimitRaised,
    /// Quota: an operator reset the day's usage to zero.
    Reset,
    /// Quota: an operator set the day's usage by hand (e.g. after a recovery).
    UsageSet,
    /// Quota: an operator moved the process back from a day it was pinned to
    /// (by an event stamped far ahead) to an earlier one, keeping its usage.
    Rewound,
    /// Quota: the ledger backend failed and the reserve was denied (fail
    /// closed). Once per outage per process.
    BackendUnavailableDenied,
    /// Quota: the ledger backend failed and the reserve was granted
    /// unmetered (fail open). Once per outage per process.
    BackendUnavailableAllowed,
    /// Quota: the backend answered again after an outage.
    BackendRecovered,
    /// Trigger: it went over a rate and its executions are being slowed or
    /// skipped.
    Throttled,
    /// Trigger: it went over its budget and was stopped.
    Stopped,
    /// Trigger: it is back under its limits on its own (after throttling).
    Recovered,
    /// An operator paused it (a trigger, or a whole engine: the global pause).
    Paused,
    /// An operator unpaused it.
    Unpaused,
}

impl NotificationKind {
    /// Every kind, in declaration order.
    pub const ALL: [NotificationKind; 17] = [
        NotificationKind::Warned,
        NotificationKind::Exhausted,
        NotificationKind::ShadowWouldDeny,
        NotificationKind::RolledOver,
        NotificationKind::Resumed,
        NotificationKind::LimitRaised,
        NotificationKind::Reset,
        NotificationKind::UsageSet,
        NotificationKind::Rewound,
        NotificationKind::BackendUnavailableDenied,
        NotificationKind::BackendUnavailableAllowed,
        NotificationKind::BackendRecovered,
        NotificationKind::Throttled,
        NotificationKind::Stopped,
        NotificationKind::Recovered,
        NotificationKind::Paused,
        NotificationKind::Unpaused,
    ];

    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Warned => "warned",
            NotificationKind::Exhausted => "exhausted",
            NotificationKind::ShadowWouldDeny => "shadow_would_deny",
            NotificationKind::RolledOver => "rolled_over",
            NotificationKind::Resumed => "resumed",
            NotificationKind::LimitRaised => "limit_raised",
            NotificationKind::Reset => "reset",
            NotificationKind::UsageSet => "usage_set",
            NotificationKind::Rewound => "rewound",
            NotificationKind::BackendUnavailableDenied => "backend_unavailable_denied",
            NotificationKind::BackendUnavailableAllowed => "backend_unavailable_allowed",
            NotificationKind::BackendRecovered => "backend_recovered",
            NotificationKind::Throttled => "throttled",
            NotificationKind::Stopped => "stopped",
            NotificationKind::Recovered => "recovered",
            NotificationKind::Paused => "paused",
            NotificationKind::Unpaused => "unpaused",
        }
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One figure of a notification: a JSON number or a string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Figure {
    /// A number (integer or finite float).
    Number(serde_json::Number),
    /// Text: a day, a zone, a window written out (`"1h"`).
    Text(String),
}

impl Figure {
    /// The value as an unsigned integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Figure::Number(n) => n.as_u64(),
            Figure::Text(_) => None,
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Figure::Number(n) => n.as_f64(),
            Figure::Text(_) => None,
        }
    }

    /// The value as text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Figure::Text(s) => Some(s),
            Figure::Number(_) => None,
        }
    }
}

impl fmt::Display for Figure {
    /// Numbers as JSON writes them, text as is (no quotes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Figure::Number(n) => write!(f, "{n}"),
            Figure::Text(s) => f.write_str(s),
        }
    }
}

impl From<u64> for Figure {
    fn from(v: u64) -> Figure {
        Figure::Number(v.into())
    }
}

impl From<u32> for Figure {
    fn from(v: u32) -> Figure {
        Figure::Number(v.into())
    }
}

impl From<i64> for Figure {
    fn from(v: i64) -> Figure {
        Figure::Number(v.into())
    }
}

impl From<f64> for Figure {
    /// A finite float is a number; NaN and the infinities, which JSON cannot
    /// carry as numbers, become their text (`"NaN"`, `"inf"`).
    fn from(v: f64) -> Figure {
        match serde_json::Number::from_f64(v) {
            Some(n) => Figure::Number(n),
            None => Figure::Text(v.to_string()),
        }
    }
}

impl From<&str> for Figure {
    fn from(v: &str) -> Figure {
        Figure::Text(v.to_string())
    }
}

impl From<String> for Figure {
    fn from(v: String) -> Figure {
        Figure::Text(v)
    }
}

/// The figures of a notification: named numbers and strings, **in the order
/// they were added**, serialized as one JSON object in that order
/// (`{"used_records":50,"limit_records":50,"quota_day":"2026-03-01"}`).
///
/// Invariant: names are unique; [`Figures::insert`] of an existing name
/// replaces its value in place, and a JSON object with a repeated name is
/// refused when read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures(Vec<(String, Figure)>);

impl Figures {
    /// No figures.
    pub fn new() -> Figures {
        Figures::default()
    }

    /// Adds (or replaces) a figure, builder style.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Figure>) -> Figures {
        self.insert(name, value);
        self
    }

    /// Adds a figure at the end, or replaces the value of an existing name
    /// where it stands.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Figure>) {
        let name = name.into();
        let value = value.into();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name, value)),
        }
    }

    /// The figure called `name`.
    pub fn get(&self, name: &str) -> Option<&Figure> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// `(name, value)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Figure)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// How many figures there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Figures {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Figures {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Figures, D::Error> {
        struct FiguresVisitor;

        impl<'de> Visitor<'de> for FiguresVisitor {
            type Value = Figures;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of named numbers and strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Figures, A::Error> {
                let mut figures = Figures::new();
                while let Some((name, value)) = access.next_entry::<String, Figure>()? {
                    if figures.get(&name).is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "figure `{name}` appears twice"
                        )));
                    }
                    figures.0.push((name, value));
                }
                Ok(figures)
            }
        }

        deserializer.deserialize_map(FiguresVisitor)
    }
}

/// One notification for an owner. Serializes to one self-describing JSON
/// object — the line of `notifications.jsonl` and the body of a webhook
/// request:
///
/// ```json
/// {"owner":"data-team@shop.example","subject":{"type":"process","id":"crm-sync"},
///  "kind":"exhausted","reason":"a transfer would exceed the daily records limit",
///  "figures":{"used_records":50,"limit_records":50,"used_bytes":7689,"limit_bytes":12800,
///             "quota_day":"2026-03-01","time_zone":"Europe/Berlin"},
///  "at":"2026-03-01T04:32:23.428552Z","message":"crm-sync exhausted its daily records quota …"}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Who to tell (free text, usually an e-mail address or a team).
    pub owner: String,
    /// What it is about.
    pub subject: Subject,
    /// What happened.
    pub kind: NotificationKind,
    /// Why, in one short sentence (the cause, without the consequences).
    pub reason: String,
    /// The numbers behind it (usage, limit, quota day, fuel, budget, window …).
    pub figures: Figures,
    /// When: the caller-supplied instant of the transition — the event's
    /// timestamp in a replay, so a replay notifies the same instants.
    pub at: DateTime<Utc>,
    /// The whole story for humans: what happened, why, and what happens next.
    pub message: String,
}

impl Notification {
    /// The process id, if the subject is a process.
    pub fn process(&self) -> Option<&str> {
        match &self.subject {
            Subject::Process { id } => Some(id),
            Subject::Trigger { .. } | Subject::Engine { .. } => None,
        }
    }

    /// The trigger id, if the subject is a trigger.
    pub fn trigger(&self) -> Option<&str> {
        match &self.subject {
            Subject::Trigger { id } => Some(id),
            Subject::Process { .. } | Subject::Engine { .. } => None,
        }
    }

    /// The figure called `name`.
    pub fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Notification {
        Notification {
            owner: "data@example.com".into(),
            subject: Subject::process("crm-sync"),
            kind: NotificationKind::Exhausted,
            reason: "a transfer would exceed the daily records limit".into(),
            figures: Figures::new()
                .with("used_records", 5u64)
                .with("limit_records", 5u64)
                .with("quota_day", "2024-10-04")
                .with("time_zone", "Europe/Berlin")
                .with("share", 0.5),
            at: DateTime::from_timestamp(1_728_000_000, 0).expect("in range"),
            message: "stopped".into(),
        }
    }

    #[test]
    fn serializes_as_one_self_describing_object_in_figure_order() {
        let text = serde_json::to_string(&sample()).unwrap();
        assert!(
            text.starts_with(r#"{"owner":"data@example.com","subject":{"type":"process","id":"crm-sync"},"kind":"exhausted","reason":"#),
            "{text}"
        );
        assert!(
            text.contains(r#""figures":{"used_records":5,"limit_records":5,"quota_day":"2024-10-04","time_zone":"Europe/Berlin","share":0.5}"#),
            "{text}"
        );
        let back: Notification = serde_json::from_str(&text).unwrap();
        assert_eq!(back, sample());
        assert_eq!(back.process(), Some("crm-sync"));
        assert_eq!(back.trigger(), None);
        assert_eq!(
            back.figure("used_records").and_then(Figure::as_u64),
            Some(5)
        );
        assert_eq!(
            back.figure("quota_day").map(|f| f.to_string()).as_deref(),
            Some("2024-10-04")
        );
    }

    #[test]
    fn kinds_serialize_as_their_names() {
        for kind in NotificationKind::ALL {
            let v = serde_json::to_value(kind).unwrap();
            assert_eq!(v, kind.as_str());
            let back: NotificationKind = serde_json::from_value(v).unwrap();
            assert_eq!(back, kind);
        }
    }

    #[test]
    fn subjects_are_tagged() {
        let v = serde_json::to_value(Subject::trigger("welcome")).unwrap();
        assert_eq!(v, serde_json::json!({"type": "trigger", "id": "welcome"}));
        assert_eq!(Subject::trigger("welcome").to_string(), "trigger welcome");
    }

    #[test]
    fn figures_replace_in_place_and_refuse_repeated_names() {
        let f = Figures::new()
            .with("a", 1u64)
            .with("b", "x")
            .with("a", 2u64);
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"a":2,"b":"x"}"#);
        assert!(serde_json::from_str::<Figures>(r#"{"a":1,"a":2}"#).is_err());
        assert_eq!(Figure::from(f64::NAN), Figure::Text("NaN".into()));
    }
}
