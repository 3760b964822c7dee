//! The in-memory ledger: shared conformance behaviour, an 8-thread stress
//! test, and a property test against the sequential reference model
//! (`state::PeriodState`).

mod common;

use fusebox_quotas::ledger::{Ledger, MemoryLedger};
use fusebox_quotas::state::{Operation, Period, PeriodState, ReserveRequest, Verdict};
use fusebox_quotas::{ProcessConfig, QuotaDay, Usage, MAX_AMOUNT};
use proptest::prelude::*;

fn make() -> Box<dyn Ledger> {
    Box::new(MemoryLedger::new())
}

#[test]
fn lifecycle() {
    common::lifecycle(&make);
}

#[test]
fn operator_actions() {
    common::operator_actions(&make);
}

#[test]
fn shadow_mode() {
    common::shadow_mode(&make);
}

#[test]
fn batching_matches_sequential() {
    common::batching_matches_sequential(&make);
}

#[test]
fn dst_rollover_in_berlin_and_new_york() {
    common::dst_rollover(&make);
}

#[test]
fn future_events_are_held() {
    common::future_events_are_held(&make);
}

#[test]
fn a_pinned_day_is_rewound() {
    common::a_pinned_day_is_rewound(&make);
}

#[test]
fn usage_is_set_by_hand() {
    common::usage_is_set_by_hand(&make);
}

#[test]
fn stress_8_threads_zero_over_grant_exact_accounting() {
    common::stress(&make, 8, 20_000);
}

#[test]
#[ignore = "heavy: run with --ignored"]
fn stress_8_threads_heavy() {
    for _ in 0..20 {
        common::stress(&make, 8, 200_000);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Reserve {
        day: i32,
        records: u64,
        bytes: u64,
    },
    Refund {
        which: usize,
        records: u64,
        bytes: u64,
    },
    Raise {
        records: u64,
        bytes: u64,
    },
    Resume,
    Reset,
    Set {
        records: u64,
        bytes: u64,
    },
    Rewind {
        back: i32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4i32, 0..12u64, 0..30u64).prop_map(|(day, records, bytes)| Op::Reserve { day, records, bytes }),
        3 => (0..64usize, 0..12u64, 0..30u64).prop_map(|(which, records, bytes)| Op::Refund { which, records, bytes }),
        1 => (0..20u64, 0..40u64).prop_map(|(records, bytes)| Op::Raise { records, bytes }),
        1 => Just(Op::Resume),
        1 => Just(Op::Reset),
        1 => (0..40u64, 0..70u64).prop_map(|(records, bytes)| Op::Set { records, bytes }),
        1 => (0..3i32).prop_map(|back| Op::Rewind { back }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Sequentially, the lock-free ledger behaves exactly like the reference
    /// state machine: same verdicts, usage, caps, events and snapshots.
    #[test]
    fn memory_ledger_matches_reference_model(ops in prop::collection::vec(op(), 1..80), shadow in any::<bool>()) {
        let ledger = MemoryLedger::new();
        let tz = chrono_tz::UTC;
        ledger.bind(&[ProcessConfig::new("p", "o", tz, fusebox_quotas::Limits::new(Some(30), Some(60)))]).unwrap();
        let mut model = PeriodState::default();
        let caps = Usage::new(30, 60);
        let warn = Usage::new(24, 48);
        let base = 20_000;
        let mut day_now = base;
        // (ledger period, model period, amount) of granted reservations.
        let mut granted: Vec<(Period, Period, Usage)> = Vec::new();
        for op in ops {
            match op {
                Op::Reserve { day, records, bytes } => {
                    let req = ReserveRequest {
                        day: QuotaDay::from_days_since_epoch(base + day),
                        amount: Usage::new(records, bytes),
                        caps,
                        warn,
                        shadow,
                    };
                    let got = ledger.reserve(0, &req).unwrap();
                    let want = model.reserve(&req);
                    prop_assert_eq!(got.verdict, want.verdict);
                    prop_assert_eq!(got.used, want.used);
                    prop_assert_eq!(got.caps, want.caps);
                    prop_assert_eq!(got.events, want.events);
                    prop_assert_eq!(got.period.day, want.period.day);
                    day_now = want.period.day.days_since_epoch();
                    if got.verdict == Verdict::Granted {
                        granted.push((got.period, want.period, req.amount));
                    }
                    // Zero over-grant (an operator may set usage above the cap;
                    // then nothing is granted).
                    if !shadow && got.verdict == Verdict::Granted {
                        prop_assert!(got.used.records <= got.caps.records && got.used.bytes <= got.caps.bytes);
                    }
                }
                Op::Refund { which, records, bytes } => {
                    if granted.is_empty() { continue; }
                    let (lp, mp, amount) = granted.swap_remove(which % granted.len());
                    let back = Usage::new(records, bytes).min(amount);
                    ledger.refund(0, lp, back).unwrap();
                    model.refund(mp, back);
                }
                Op::Raise { records, bytes } => {
                    let d = QuotaDay::from_days_since_epoch(day_now);
                    let cur = model.snapshot(d).raised.unwrap_or(caps);
                    let new = Usage::new(cur.records + records, (cur.bytes + bytes).min(MAX_AMOUNT));
                    let got = ledger.operate(0, d, Operation::Raise(new)).unwrap();
                    let want = model.operate(d, Operation::Raise(new));
                    prop_assert_eq!(got, want);
                }
                Op::Resume | Op::Reset | Op::Set { .. } => {
                    let o = match op {
                        Op::Resume => Operation::Resume,
                        Op::Set { records, bytes } => Operation::SetUsage(Usage::new(records, bytes)),
                        _ => Operation::Reset,
                    };
                    let d = QuotaDay::from_days_since_epoch(day_now);
                    prop_assert_eq!(ledger.operate(0, d, o).unwrap(), model.operate(d, o));
                }
                Op::Rewind { back } => {
                    let to = QuotaDay::from_days_since_epoch(day_now - back);
                    let got = ledger.operate(0, to, Operation::Rewind(to)).unwrap();
                    let want = model.operate(to, Operation::Rewind(to));
                    prop_assert_eq!(got, want);
                    if want.day > QuotaDay::from_days_since_epoch(0) {
                        day_now = want.day.days_since_epoch();
                    }
                }
            }
            for probe in [day_now, day_now + 1] {
                let d = QuotaDay::from_days_since_epoch(probe);
                prop_assert_eq!(ledger.snapshot(0, d).unwrap(), model.snapshot(d));
            }
        }
    }
}

#[test]
fn unknown_processes_share_the_default_bucket_when_configured() {
    use fusebox_quotas::{
        CollectingNotifier, Denial, NotificationKind, QuotaConfig, Quotas, UNKNOWN_BUCKET_ID,
    };
    use std::sync::Arc;
    let yaml = "
unknown_process: default
default_limits: { records: 10 }
default_owner: ops@example.com
default_time_zone: America/New_York
processes:
  - id: known
    owner: a@example.com
    limits: { records: 5 }
";
    let n = Arc::new(CollectingNotifier::new());
    let q = Quotas::new(
        QuotaConfig::from_yaml_str(yaml, "u.yaml").unwrap(),
        make(),
        n.clone(),
    )
    .unwrap();
    let t = common::utc("2026-11-23T10:00:00Z");
    assert_eq!(q.process_handle("ghost-a"), q.process_handle("ghost-b"));
    q.reserve("ghost-a", 6, 0, t).unwrap().commit(6, 0);
    q.reserve("ghost-b", 3, 0, t).unwrap().commit(3, 0);
    assert!(matches!(
        q.reserve("ghost-c", 2, 0, t),
        Err(Denial::Exhausted { .. })
    ));
    q.reserve("known", 5, 0, t)
        .expect("configured processes are separate")
        .commit(5, 0);
    let st = &q.status(Some(UNKNOWN_BUCKET_ID), t).unwrap()[0];
    assert_eq!(
        (st.used.records, st.time_zone.as_str()),
        (9, "America/New_York")
    );
    let bucket: Vec<_> = n
        .take()
        .into_iter()
        .filter(|x| x.process() == Some(UNKNOWN_BUCKET_ID))
        .collect();
    assert_eq!(
        bucket.iter().map(|x| x.kind).collect::<Vec<_>>(),
        [NotificationKind::Warned, NotificationKind::Exhausted]
    );
    assert!(bucket.iter().all(|x| x.owner == "ops@example.com"));
    // Status of an id that is not configured is an error, not the bucket.
    assert!(q.status(Some("ghost-a"), t).is_err());
}
