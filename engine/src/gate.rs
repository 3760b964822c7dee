//! The quota gate: the admission step that charges each process's daily transfer quota.
//!
//! Automated processes (a CRM sync, an order import) send events like everyone else; a
//! misconfigured one can send far too many and starve the rest. When a batch is run with
//! [`RunOptions::quotas`](crate::RunOptions::quotas), every admitted event that carries a
//! `process` is charged against that process's quota ([`fusebox_quotas::Quotas`]) **before
//! execution**, one event at a time in input order:
//!
//! - **amount:** 1 record and [`charged_bytes`] bytes — the length of the event's canonical
//!   JSON encoding ([`canonical_json`]), which is also the `event` written to `held.jsonl`, so
//!   anyone can recompute what an event cost;
//! - **clock:** the event's timestamp, so replaying a log crosses quota days (local midnight
//!   in each process's time zone) exactly as the live run did. Every `i64` timestamp has a
//!   quota day (`fusebox_quotas::QuotaDay` is total), so no timestamp a Parquet file can
//!   carry panics the gate;
//! - **too far ahead:** an event stamped more than the configuration's `max_event_lead`
//!   (default one day) after the quotas' reference clock ([`Quotas::with_reference_clock`]:
//!   the wall clock, or a fixed instant for deterministic replays) is **held** with
//!   [`Denial::AheadOfClock`] without touching the ledger — charging it would move its
//!   process's quota day to that far day and keep it there. Held, it stays replayable;
//! - **granted:** the reservation is committed in full and the event runs;
//! - **denied** (quota exhausted, process stopped, unknown process under `deny`, ledger down
//!   and failing closed, stamped too far ahead): the event is **held** — not run, outcome
//!   [`RecordStatus::Held`] with the denial as reason, and returned in
//!   [`BatchResult::held`](crate::BatchResult::held) for the caller to persist. Nothing is
//!   dropped.
//!
//! Events without a `process` are never charged and never held; records already rejected by
//! admission are not charged either. Because the gate runs in input order before any
//! executor sees the batch, the held set and the notifications (in order) are a function of
//! the input and the ledger's prior state alone — the same for every executor and thread
//! count.
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use fusebox_engine::{config::compile_triggers, customers::*, io::events::read_jsonl,
//!                      outcome::RecordStatus, state::State, value::AttrType, Engine, RunOptions};
//! use fusebox_quotas::{CollectingNotifier, MemoryLedger, NotificationKind, QuotaConfig, Quotas};
//!
//! let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
//! let customers = CustomerTable::new(schema, vec![1], vec![Column::Int(vec![Some(0)])]).unwrap();
//! let triggers = compile_triggers(
//!     "triggers:\n  - { id: t, owner: o, on: customer.updated, actions: [ { award_points: { amount: \"1\" } } ] }\n",
//!     "triggers.yaml", Some(customers.schema())).unwrap();
//! let engine = Engine::new(triggers).unwrap();
//! let mut state = State::new(customers, engine.triggers());
//!
//! // crm-sync may send 2 events a day (Berlin time).
//! let config = QuotaConfig::from_yaml_str("processes:
//!   - { id: crm-sync, owner: data@example.com, time_zone: Europe/Berlin, limits: { records: 2 } }
//! ", "quotas.yaml").unwrap();
//! let notifier = Arc::new(CollectingNotifier::new());
//! let quotas = Quotas::new(config, Box::new(MemoryLedger::new()), notifier.clone()).unwrap();
//!
//! let log: String = (1..=3).map(|i| format!(
//!     r#"{{"id":"u{i}","customer_id":1,"type":"customer.updated","timestamp":"2026-03-01T1{i}:00:00Z","process":"crm-sync"}}"#
//! ) + "\n").collect();
//! let records = read_jsonl(log.as_bytes()).unwrap();
//! let options = RunOptions { quotas: Some(&quotas), ..RunOptions::default() };
//! let result = engine.run_batch(&mut state, &records, &options).unwrap();
//!
//! assert!(matches!(result.outcomes[2].status, RecordStatus::Held { .. }));
//! assert_eq!(&*result.held[0].event_id, "u3");
//! assert_eq!(result.report.events.processed, 2);
//! assert!(notifier.take().iter().any(|n| n.kind == NotificationKind::Exhausted));
//! ```
//!
//! Reservations go to the ledger in chunks of [`CHUNK`] through
//! [`Quotas::reserve_many`], which equals reserving one by one in order but costs one round
//! trip per chunk on Redis and one group commit per chunk on the durable ledger. Each
//! reservation is exactly the event's cost and is committed in full, so nothing is ever
//! refunded and reserving a whole chunk before committing it changes no decision.

use std::io;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fusebox_quotas::{Denial, ProcessHandle, Quotas, ReserveItem};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::event::{Event, LineNo};
use crate::exec::Admitted;
use crate::outcome::{RecordOutcome, RecordStatus};
use crate::value::{format_timestamp, Map};

/// Reservations sent to the ledger per round trip.
pub const CHUNK: usize = 1024;

/// An input event the gate did not let through.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldEvent {
    /// Position in the input records.
    pub record: usize,
    /// 1-based input line (or row).
    pub line: LineNo,
    /// The event id.
    pub event_id: Arc<str>,
    /// The process the event names (an unknown id charged to the shared bucket under
    /// `unknown_process: default` keeps its own name here; the denial names the bucket).
    pub process: Arc<str>,
    /// What it would have cost in bytes ([`charged_bytes`]).
    pub bytes: u64,
    /// Why it was held.
    pub denial: Denial,
}

/// The canonical JSON form of an event, as charged and as written to `held.jsonl`;
/// serializes to [`canonical_json`].
#[derive(Debug, Serialize)]
pub struct Canonical<'a> {
    id: &'a str,
    customer_id: u64,
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<&'a str>,
    properties: &'a Map,
}

impl<'a> Canonical<'a> {
    /// Borrows an event for serialization.
    pub fn of(e: &'a Event) -> Canonical<'a> {
        Canonical {
            id: &e.id,
            customer_id: e.customer_id,
            event_type: &e.event_type,
            timestamp: format_timestamp(e.timestamp),
            process: e.process.as_deref(),
            properties: &e.properties,
        }
    }
}

/// The event as compact JSON with a fixed field order:
/// `{"id":…,"customer_id":…,"type":…,"timestamp":…,"process":…,"properties":{…}}` —
/// `timestamp` in RFC 3339 UTC (fractional seconds only when non-zero), `process` omitted
/// when absent, `properties` always present with keys sorted. For an event read from a
/// compact JSONL line in this form, it is that line byte for byte.
///
/// ```
/// use fusebox_engine::{gate::{canonical_json, charged_bytes}, io::events::read_jsonl};
/// let line = r#"{"id":"e1","customer_id":7,"type":"customer.updated","timestamp":"2026-03-01T10:00:00Z","process":"crm-sync","properties":{"fields":3}}"#;
/// let records = read_jsonl(line.as_bytes()).unwrap();
/// let event = records[0].event.as_ref().unwrap();
/// assert_eq!(canonical_json(event), line);
/// assert_eq!(charged_bytes(event), line.len() as u64);
/// ```
pub fn canonical_json(event: &Event) -> String {
    serde_json::to_string(&Canonical::of(event)).unwrap_or_default()
}

/// The bytes an event is charged: the length of [`canonical_json`], counted without
/// allocating it.
pub fn charged_bytes(event: &Event) -> u64 {
    struct Count(u64);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serializing plain strings, numbers and maps of those into a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, &Canonical::of(event));
    count.0
}

/// The quota clock of an event: its timestamp. Timestamps beyond chrono's range (only
/// possible from Parquet input) are clamped to it; they are beyond any reference clock's
/// horizon too, so they are held as ahead of the clock.
fn clock(event: &Event) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(event.timestamp).unwrap_or(if event.timestamp < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// A charge waiting for its chunk to be sent.
struct Pending {
    /// Index into `admitted`.
    at: usize,
    bytes: u64,
    process: Arc<str>,
}

/// The gate's working state over one batch.
struct Gate<'q, 'a, 'r> {
    quotas: &'q Quotas,
    admitted: &'a [Admitted<'r>],
    outcomes: &'a mut [Option<RecordOutcome>],
    /// `keep[i]`: `admitted[i]` runs.
    keep: Vec<bool>,
    held: Vec<HeldEvent>,
    /// The chunk being filled: requests and what they are for, in input order.
    items: Vec<ReserveItem>,
    pending: Vec<Pending>,
}

impl Gate<'_, '_, '_> {
    fn hold(&mut self, i: usize, process: Arc<str>, bytes: u64, denial: Denial) {
        let a = &self.admitted[i];
        self.keep[i] = false;
        self.outcomes[a.record] = Some(RecordOutcome {
            line: a.line,
            event_id: Some(a.event.id.clone()),
            lane: None,
            status: RecordStatus::Held {
                reason: denial.to_string(),
            },
        });
        self.held.push(HeldEvent {
            record: a.record,
            line: a.line,
            event_id: a.event.id.clone(),
            process,
            bytes,
            denial,
        });
    }

    fn queue(&mut self, i: usize, handle: ProcessHandle, process: &Arc<str>, bytes: u64) {
        self.items.push(ReserveItem {
            process: handle,
            records: 1,
            bytes,
            at: clock(self.admitted[i].event),
        });
        self.pending.push(Pending {
            at: i,
            bytes,
            process: process.clone(),
        });
        if self.items.len() == CHUNK {
            self.flush();
        }
    }

    /// Sends the chunk: grants are committed in full, denials held.
    fn flush(&mut self) {
        if self.items.is_empty() {
            return;
        }
        let _span = tracing::debug_span!("quota_chunk", items = self.items.len()).entered();
        let results = {
            let _reserve = tracing::trace_span!("quota_reserve").entered();
            self.quotas.reserve_many(&self.items)
        };
        let _commit = tracing::trace_span!("quota_commit").entered();
        self.items.clear();
        let pending = std::mem::take(&mut self.pending);
        for (p, result) in pending.into_iter().zip(results) {
            match result {
                Ok(reservation) => {
                    reservation.commit(1, p.bytes);
                }
                Err(denial) => self.hold(p.at, p.process, p.bytes, denial),
            }
        }
    }
}

/// Charges every admitted event that has a process; returns the events that may run (in
/// order) and the held ones (in order). Held outcomes are written into `outcomes`.
pub(crate) fn charge<'r>(
    quotas: &Quotas,
    admitted: Vec<Admitted<'r>>,
    outcomes: &mut [Option<RecordOutcome>],
) -> (Vec<Admitted<'r>>, Vec<HeldEvent>) {
    let mut handles: FxHashMap<Arc<str>, Option<ProcessHandle>> = FxHashMap::default();
    let mut gate = Gate {
        quotas,
        admitted: &admitted,
        outcomes,
        keep: vec![true; admitted.len()],
        held: Vec::new(),
        items: Vec::with_capacity(CHUNK),
        pending: Vec::with_capacity(CHUNK),
    };
    for (i, a) in admitted.iter().enumerate() {
        let Some(process) = &a.event.process else {
            continue;
        };
        let bytes = charged_bytes(a.event);
        // Look up first: cloning the key (an atomic increment) only for a new process.
        let handle = match handles.get(process) {
            Some(&h) => h,
            None => *handles
                .entry(process.clone())
                .or_insert_with(|| quotas.process_handle(process)),
        };
        match handle {
            Some(handle) => gate.queue(i, handle, process, bytes),
            None => {
                // Unknown processes are denied without a ledger call. Queued charges go
                // first so held events stay in input order.
                gate.flush();
                let denial = Denial::UnknownProcess {
                    process: process.to_string(),
                };
                gate.hold(i, process.clone(), bytes, denial);
            }
        }
    }
    gate.flush();
    let Gate { keep, held, .. } = gate;
    let kept = admitted
        .into_iter()
        .zip(keep)
        .filter_map(|(a, k)| k.then_some(a))
        .collect();
    (kept, held)
}
