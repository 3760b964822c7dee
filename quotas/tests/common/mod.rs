//! Behaviour every ledger backend must show, written once and run against
//! each backend by `tests/memory.rs`, `tests/durable.rs` and `tests/redis.rs`;
//! the same for every notifier sink in [`notifier_suite`] (with the loopback
//! HTTP server of [`http_server`] for the webhook).
#![allow(dead_code)]

pub mod http_server;
pub mod notifier_suite;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fusebox_quotas::{
    CollectingNotifier, Denial, Ledger, Limits, NotificationKind, QuotaConfig, QuotaState, Quotas,
    Usage,
};

pub type MakeLedger<'a> = &'a dyn Fn() -> Box<dyn Ledger>;

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test timestamp")
        .with_timezone(&Utc)
}

pub const CONFIG: &str = "\
unknown_process: deny
processes:
  - id: sync
    owner: data@example.com
    time_zone: Europe/Berlin
    limits: { records: 100, bytes: 10000 }
  - id: export
    owner: bi@example.com
    time_zone: America/New_York
    limits: { records: 50 }
  - id: trial
    owner: growth@example.com
    time_zone: UTC
    limits: { records: 10 }
    shadow: true
";

pub fn config() -> QuotaConfig {
    QuotaConfig::from_yaml_str(CONFIG, "test.yaml").expect("test config")
}

pub fn quotas(ledger: Box<dyn Ledger>) -> (Quotas, Arc<CollectingNotifier>) {
    let n = Arc::new(CollectingNotifier::new());
    let q = Quotas::new(config(), ledger, n.clone()).expect("quotas");
    (q, n)
}

pub fn kinds(n: &CollectingNotifier) -> Vec<(String, NotificationKind)> {
    n.take()
        .into_iter()
        .map(|x| (x.subject.id().to_string(), x.kind))
        .collect()
}

fn used(q: &Quotas, p: &str, at: DateTime<Utc>) -> Usage {
    q.status(Some(p), at).expect("status")[0].used
}

/// active → warned → exhausted (stopped) → next day active, with one
/// notification per transition; refunds on drop and commit.
pub fn lifecycle(make: MakeLedger) {
    let (q, n) = quotas(make());
    let t = utc("2026-11-23T10:00:00Z");
    let r = q.reserve("sync", 70, 100, t).expect("fits");
    assert_eq!(used(&q, "sync", t), Usage::new(70, 100));
    drop(r);
    assert_eq!(used(&q, "sync", t), Usage::ZERO, "drop refunds all");
    let s = q.reserve("sync", 70, 100, t).expect("fits").commit(60, 90);
    assert_eq!(s.committed, Usage::new(60, 90));
    assert_eq!(s.refunded, Usage::new(10, 10));
    assert_eq!(used(&q, "sync", t), Usage::new(60, 90));
    assert!(kinds(&n).is_empty());
    // 80 of 100 records: warned, once.
    q.reserve("sync", 20, 0, t).expect("fits").commit(20, 0);
    q.reserve("sync", 5, 0, t).expect("fits").commit(5, 0);
    assert_eq!(kinds(&n), vec![("sync".into(), NotificationKind::Warned)]);
    assert_eq!(
        q.status(Some("sync"), t).unwrap()[0].state,
        QuotaState::Warned
    );
    // 85 + 20 > 100: exhausted and stopped.
    let d = q.reserve("sync", 20, 0, t).unwrap_err();
    assert!(
        matches!(
            d,
            Denial::Exhausted {
                used: 85,
                limit: 100,
                requested: 20,
                ..
            }
        ),
        "{d:?}"
    );
    // Stopped: even a request that fits is denied; no second notification.
    let d = q.reserve("sync", 1, 0, t).unwrap_err();
    assert!(matches!(d, Denial::Stopped { .. }), "{d:?}");
    assert_eq!(
        kinds(&n),
        vec![("sync".into(), NotificationKind::Exhausted)]
    );
    let st = &q.status(Some("sync"), t).unwrap()[0];
    assert_eq!(st.state, QuotaState::Exhausted);
    assert_eq!(st.remaining, Limits::new(Some(15), Some(10000 - 90)));
    // Other processes carry on.
    q.reserve("export", 10, 0, t)
        .expect("independent")
        .commit(10, 0);
    // Next Berlin day (midnight CET = 23:00Z).
    let next = utc("2026-11-23T23:00:00Z");
    assert!(q
        .reserve("sync", 1, 0, utc("2026-11-23T22:59:59Z"))
        .is_err());
    q.reserve("sync", 1, 0, next).expect("new day").commit(1, 0);
    assert_eq!(
        kinds(&n),
        vec![("sync".into(), NotificationKind::RolledOver)]
    );
    assert_eq!(used(&q, "sync", next), Usage::new(1, 0));
    // A late event stamped on the old day counts against the newest day.
    q.reserve("sync", 1, 0, t).expect("late event").commit(1, 0);
    assert_eq!(used(&q, "sync", next), Usage::new(2, 0));
    // Unknown process: denied by default.
    assert!(matches!(
        q.reserve("nope", 1, 1, t),
        Err(Denial::UnknownProcess { .. })
    ));
}

/// Operator actions: raise, resume, reset.
pub fn operator_actions(make: MakeLedger) {
    let (q, n) = quotas(make());
    let t = utc("2026-11-23T10:00:00Z");
    q.reserve("export", 50, 0, t).unwrap().commit(50, 0);
    assert!(q.reserve("export", 1, 0, t).is_err());
    n.take();
    // Lowering is refused.
    assert!(q.raise("export", Limits::new(Some(10), None), t).is_err());
    let st = q.raise("export", Limits::new(Some(100), None), t).unwrap();
    assert_eq!(
        (st.state, st.raised, st.limit.records),
        (QuotaState::Active, true, Some(100))
    );
    assert_eq!(
        kinds(&n),
        vec![("export".into(), NotificationKind::LimitRaised)]
    );
    q.reserve("export", 20, 0, t).unwrap().commit(20, 0);
    assert_eq!(
        kinds(&n),
        vec![],
        "70/100 is below the 80% warning of the raised limit"
    );
    q.reserve("export", 15, 0, t).unwrap().commit(15, 0);
    assert_eq!(kinds(&n), vec![("export".into(), NotificationKind::Warned)]);
    assert!(q.reserve("export", 20, 0, t).is_err());
    n.take();
    // Resume: runs again with the same usage and limit.
    q.resume("export", t).unwrap();
    q.reserve("export", 5, 0, t).unwrap().commit(5, 0);
    assert!(q.reserve("export", 20, 0, t).is_err());
    assert_eq!(
        kinds(&n),
        vec![
            ("export".into(), NotificationKind::Resumed),
            ("export".into(), NotificationKind::Exhausted)
        ]
    );
    // Reset: zero usage; an open reservation's refund is dropped.
    q.resume("export", t).unwrap();
    let open = q.reserve("export", 0, 0, t).unwrap();
    let st = q.reset("export", t).unwrap();
    assert_eq!((st.used, st.state), (Usage::ZERO, QuotaState::Active));
    q.reserve("export", 30, 0, t).unwrap().commit(30, 0);
    drop(open);
    assert_eq!(q.status(Some("export"), t).unwrap()[0].used.records, 30);
    // The raise lapses with the New York day (05:00Z in November).
    let next = utc("2026-11-24T05:00:00Z");
    let st = &q.status(Some("export"), next).unwrap()[0];
    assert_eq!(
        (st.used, st.limit.records, st.raised),
        (Usage::ZERO, Some(50), false)
    );
    assert!(q.reset("nope", t).is_err());
}

/// Shadow mode never denies but reports what it would have done.
pub fn shadow_mode(make: MakeLedger) {
    let (q, n) = quotas(make());
    let t = utc("2026-11-23T10:00:00Z");
    for _ in 0..5 {
        q.reserve("trial", 4, 0, t)
            .expect("shadow never denies")
            .commit(4, 0);
    }
    let st = &q.status(Some("trial"), t).unwrap()[0];
    assert_eq!((st.used.records, st.state), (20, QuotaState::Exhausted));
    assert_eq!(
        kinds(&n),
        vec![
            ("trial".into(), NotificationKind::Warned),
            ("trial".into(), NotificationKind::ShadowWouldDeny)
        ]
    );
}

/// Day rollover and DST in two zones, driven purely by the caller's clock.
pub fn dst_rollover(make: MakeLedger) {
    let (q, n) = quotas(make());
    // Berlin springs forward on 2026-03-29: that quota day is 23 h long,
    // 2026-03-28T23:00Z .. 2026-03-29T22:00Z.
    q.reserve("sync", 100, 0, utc("2026-03-28T23:00:00Z"))
        .unwrap()
        .commit(100, 0);
    assert!(q
        .reserve("sync", 1, 0, utc("2026-03-28T23:00:01Z"))
        .is_err());
    assert!(matches!(
        q.reserve("sync", 1, 0, utc("2026-03-29T21:59:59Z")),
        Err(Denial::Stopped { .. })
    ));
    // 22:00Z is midnight CEST: a new day (a fixed +1 h offset would wait until 23:00Z).
    let r = q
        .reserve("sync", 1, 0, utc("2026-03-29T22:00:00Z"))
        .expect("new Berlin day");
    assert_eq!(r.quota_day().unwrap().to_string(), "2026-03-30");
    r.commit(1, 0);
    // New York falls back on 2026-11-01: that day is 25 h long,
    // 2026-11-01T04:00Z .. 2026-11-02T05:00Z.
    q.reserve("export", 50, 0, utc("2026-11-01T04:00:00Z"))
        .unwrap()
        .commit(50, 0);
    assert!(q
        .reserve("export", 1, 0, utc("2026-11-01T12:00:00Z"))
        .is_err());
    // 04:30Z on Nov 2 is still 23:30 EST on Nov 1 (a fixed −4 h offset would say Nov 2).
    assert!(matches!(
        q.reserve("export", 1, 0, utc("2026-11-02T04:30:00Z")),
        Err(Denial::Stopped { .. })
    ));
    let r = q
        .reserve("export", 1, 0, utc("2026-11-02T05:00:00Z"))
        .expect("new New York day");
    assert_eq!(r.quota_day().unwrap().to_string(), "2026-11-02");
    drop(r);
    let k = kinds(&n);
    assert_eq!(
        k.iter()
            .filter(|(_, k)| *k == NotificationKind::RolledOver)
            .count(),
        2,
        "{k:?}"
    );
    assert_eq!(
        k.iter()
            .filter(|(_, k)| *k == NotificationKind::Exhausted)
            .count(),
        2,
        "{k:?}"
    );
    // status reports when the day resets.
    let st = &q
        .status(Some("export"), utc("2026-11-01T12:00:00Z"))
        .unwrap()[0];
    assert_eq!(
        st.resets_at,
        Some(utc("2026-11-03T05:00:00Z")),
        "status shows the newest day"
    );
}

/// Many threads reserve / commit / drop at random on few processes; nothing
/// is ever over-granted and, once all reservations are settled, the ledger
/// holds exactly the sum of what was committed.
pub fn stress(make: MakeLedger, threads: usize, ops_per_thread: usize) {
    let (q, _n) = quotas(make());
    let t = utc("2026-11-23T10:00:00Z");
    // Large enough to reach the limits, small enough for several stops.
    let limits: HashMap<&str, (u64, u64)> = [("sync", (100, 10_000)), ("export", (50, u64::MAX))]
        .into_iter()
        .collect();
    let committed: Vec<(AtomicU64, AtomicU64)> = (0..2)
        .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
        .collect();
    let stop = AtomicBool::new(false);
    let granted_ops = AtomicU64::new(0);
    std::thread::scope(|s| {
        // A watcher checks the invariant while the workers run.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                for st in q.status(None, t).unwrap() {
                    if let Some(&(r, b)) = limits.get(st.process.as_str()) {
                        assert!(
                            st.used.records <= r && st.used.bytes <= b,
                            "over-grant: {st:?}"
                        );
                    }
                }
                std::thread::yield_now();
            }
        });
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let (q, committed, granted_ops) = (&q, &committed, &granted_ops);
                s.spawn(move || {
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1);
                    let mut next = move || {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng
                    };
                    let mut held = Vec::new();
                    for _ in 0..ops_per_thread {
                        let x = next();
                        let (pi, p) = if x & 1 == 0 {
                            (0, "sync")
                        } else {
                            (1, "export")
                        };
                        match (x >> 8) % 4 {
                            0 | 1 => {
                                if let Ok(r) = q.reserve(p, (x >> 16) % 7, (x >> 24) % 700, t) {
                                    granted_ops.fetch_add(1, Ordering::Relaxed);
                                    held.push((pi, r));
                                }
                            }
                            2 => {
                                if let Some((pi, r)) = held.pop() {
                                    let a = r.amount();
                                    let (cr, cb) =
                                        ((x >> 32) % (a.records + 1), (x >> 40) % (a.bytes + 1));
                                    let s = r.commit(cr, cb);
                                    assert_eq!(s.committed, Usage::new(cr, cb));
                                    committed[pi].0.fetch_add(cr, Ordering::Relaxed);
                                    committed[pi].1.fetch_add(cb, Ordering::Relaxed);
                                }
                            }
                            _ => {
                                if !held.is_empty() {
                                    let idx = (x >> 32) as usize % held.len();
                                    drop(held.swap_remove(idx));
                                }
                            }
                        }
                        if (x >> 48) % 97 == 0 {
                            // Operators resume stopped processes so work continues.
                            let _ = q.resume(p, t);
                        }
                    }
                    drop(held);
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(granted_ops.load(Ordering::Relaxed) > 0);
    for (pi, p) in ["sync", "export"].into_iter().enumerate() {
        let st = &q.status(Some(p), t).unwrap()[0];
        let want = Usage::new(
            committed[pi].0.load(Ordering::Relaxed),
            committed[pi].1.load(Ordering::Relaxed),
        );
        assert_eq!(st.used, want, "exact accounting for {p}");
    }
}

/// Several managers (engine instances) on one shared backend: zero over-grant
/// across all of them. `make` must return ledgers on the same storage.
pub fn shared_backend(make: MakeLedger, instances: usize, attempts: usize) {
    let managers: Vec<(Quotas, Arc<CollectingNotifier>)> =
        (0..instances).map(|_| quotas(make())).collect();
    let t = utc("2026-11-23T10:00:00Z");
    let granted = AtomicU64::new(0);
    std::thread::scope(|s| {
        for (q, _) in &managers {
            let granted = &granted;
            s.spawn(move || {
                for i in 0..attempts {
                    if let Ok(r) = q.reserve("export", 1 + (i as u64 % 3), 0, t) {
                        let a = r.amount().records;
                        r.commit(a, 0);
                        granted.fetch_add(a, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let total = granted.load(Ordering::Relaxed);
    for (q, _) in &managers {
        assert_eq!(q.status(Some("export"), t).unwrap()[0].used.records, total);
    }
    assert!(total <= 50, "over-grant across instances: {total}");
    assert!(total >= 48, "the limit should be (nearly) used up: {total}");
    let exhausted: usize = managers
        .iter()
        .map(|(_, n)| {
            kinds(n)
                .iter()
                .filter(|(_, k)| *k == NotificationKind::Exhausted)
                .count()
        })
        .sum();
    assert_eq!(exhausted, 1, "exactly one instance reports the exhaustion");
}

/// `reserve_many` / `commit_many` give exactly the results of one-by-one
/// calls: same grants, denials, notifications and final usage.
pub fn batching_matches_sequential(make: MakeLedger) {
    use fusebox_quotas::ReserveItem;
    let (seq, seq_n) = quotas(make());
    let (bat, bat_n) = quotas(make());
    let times = [utc("2026-11-23T10:00:00Z"), utc("2026-11-23T23:30:00Z")];
    let mut items = Vec::new();
    for i in 0..120u64 {
        let p = ["sync", "export", "trial"][(i % 3) as usize];
        items.push((p, 1 + i % 7, 10 * (i % 5), times[usize::from(i >= 80)]));
    }
    let mut seq_res = Vec::new();
    for (p, r, b, t) in &items {
        seq_res.push(seq.reserve(p, *r, *b, *t));
    }
    let batch: Vec<ReserveItem> = items
        .iter()
        .map(|(p, r, b, t)| ReserveItem {
            process: bat.process_handle(p).expect("known"),
            records: *r,
            bytes: *b,
            at: *t,
        })
        .collect();
    let mut bat_res = Vec::new();
    for chunk in batch.chunks(16) {
        bat_res.extend(bat.reserve_many(chunk));
    }
    assert_eq!(seq_res.len(), bat_res.len());
    for (i, (a, b)) in seq_res.iter().zip(&bat_res).enumerate() {
        match (a, b) {
            (Ok(x), Ok(y)) => assert_eq!(
                (x.amount(), x.quota_day()),
                (y.amount(), y.quota_day()),
                "item {i}"
            ),
            (Err(x), Err(y)) => assert_eq!(x, y, "item {i}"),
            _ => panic!("item {i}: sequential {a:?} vs batched {b:?}"),
        }
    }
    fn commit(
        r: Result<fusebox_quotas::Reservation<'_>, Denial>,
    ) -> Option<(fusebox_quotas::Reservation<'_>, u64, u64)> {
        r.ok().map(|r| {
            let a = r.amount();
            (r, a.records / 2, a.bytes / 2)
        })
    }
    for r in seq_res.into_iter().filter_map(commit) {
        r.0.commit(r.1, r.2);
    }
    let settled = bat.commit_many(bat_res.into_iter().filter_map(commit).collect());
    assert!(settled.iter().all(|s| s.refund_error.is_none()));
    assert_eq!(kinds(&seq_n), kinds(&bat_n));
    for t in times {
        let a: Vec<_> = seq
            .status(None, t)
            .unwrap()
            .into_iter()
            .map(|s| (s.process, s.used, s.state))
            .collect();
        let b: Vec<_> = bat
            .status(None, t)
            .unwrap()
            .into_iter()
            .map(|s| (s.process, s.used, s.state))
            .collect();
        assert_eq!(a, b);
    }
}

/// Requests stamped beyond `max_event_lead` (default 1d) after the reference
/// clock are denied without touching the ledger — shadow processes and
/// batches included — and operator actions there are refused.
pub fn future_events_are_held(make: MakeLedger) {
    use fusebox_quotas::{QuotasError, ReferenceClock, ReserveItem};
    let (q, n) = quotas(make());
    let now = utc("2026-11-23T10:00:00Z");
    let q = q.with_reference_clock(ReferenceClock::Fixed(now));
    q.reserve("sync", 1, 0, utc("2026-11-23T11:00:00Z"))
        .expect("within the lead")
        .commit(1, 0);
    // Exactly at the horizon is accepted, a microsecond later is not.
    let horizon = q.horizon();
    assert_eq!(horizon, utc("2026-11-24T10:00:00Z"));
    drop(q.reserve("export", 1, 0, horizon).expect("at the horizon"));
    let far = utc("9999-12-31T00:00:00Z");
    for (p, at) in [
        ("sync", far),
        ("trial", far),
        ("export", horizon + chrono::TimeDelta::microseconds(1)),
        ("sync", DateTime::<Utc>::MAX_UTC),
    ] {
        match q.reserve(p, 1, 0, at) {
            Err(Denial::AheadOfClock {
                process,
                at: got,
                now: seen,
                max_lead,
            }) => {
                assert_eq!((process.as_str(), got, seen), (p, at, now));
                assert_eq!(max_lead, "1d");
            }
            other => panic!("{p} at {at}: expected AheadOfClock, got {other:?}"),
        }
    }
    // In a batch only the far item is denied; the others are charged in order.
    let h = q.process_handle("sync").unwrap();
    let item = |at| ReserveItem {
        process: h,
        records: 2,
        bytes: 0,
        at,
    };
    let res = q.reserve_many(&[item(now), item(far), item(now)]);
    assert!(matches!(res[1], Err(Denial::AheadOfClock { .. })));
    for r in res.into_iter().flatten() {
        r.commit(2, 0);
    }
    // The ledger never saw the far requests: same day, only the near usage.
    let st = &q.status(Some("sync"), now).unwrap()[0];
    assert_eq!(
        (st.quota_day.to_string().as_str(), st.used.records),
        ("2026-11-23", 5)
    );
    assert_eq!(q.status(Some("trial"), now).unwrap()[0].used, Usage::ZERO);
    assert!(kinds(&n).is_empty(), "a held far event notifies nobody");
    // Operator actions on a far day are refused, not applied.
    assert!(matches!(
        q.reset("sync", far),
        Err(QuotasError::AheadOfClock { .. })
    ));
    assert!(matches!(
        q.raise("sync", Limits::new(Some(500), None), far),
        Err(QuotasError::AheadOfClock { .. })
    ));
    assert_eq!(
        q.status(Some("sync"), now).unwrap()[0]
            .quota_day
            .to_string(),
        "2026-11-23"
    );
}

/// A process pinned to a far day (an event stamped 9999-12-31 let through by
/// a clock that far ahead) is charged every later request on that day, and
/// `reset` cannot undo it; `rewind` moves it back, keeping its usage.
pub fn a_pinned_day_is_rewound(make: MakeLedger) {
    use fusebox_quotas::{QuotaDay, QuotasError, ReferenceClock};
    let (q, n) = quotas(make());
    let now = utc("2026-11-23T10:00:00Z");
    let far = utc("9999-12-31T12:00:00Z");
    let q = q.with_reference_clock(ReferenceClock::Fixed(far));
    q.reserve("export", 5, 0, far).unwrap().commit(5, 0);
    let q = q.with_reference_clock(ReferenceClock::Fixed(now));
    let pinned = q.reserve("export", 1, 0, now).unwrap();
    assert_eq!(pinned.quota_day().unwrap().to_string(), "9999-12-31");
    pinned.commit(1, 0);
    // reset zeroes the pinned day's usage but leaves the process on it.
    let st = q.reset("export", now).unwrap();
    assert_eq!(st.quota_day.to_string(), "9999-12-31");
    q.reserve("export", 2, 0, now).unwrap().commit(2, 0);
    n.take();
    // rewind: back on today, with the usage charged since.
    let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let today = QuotaDay::of(now, tz);
    let st = q.rewind("export", today).unwrap();
    assert_eq!((st.quota_day, st.used.records), (today, 2));
    assert_eq!(
        kinds(&n),
        vec![("export".into(), NotificationKind::Rewound)]
    );
    let r = q.reserve("export", 1, 0, now).unwrap();
    assert_eq!(r.quota_day(), Some(today));
    r.commit(1, 0);
    assert_eq!(q.status(Some("export"), now).unwrap()[0].used.records, 3);
    // Days advance again: 06:00Z on the 24th is 01:00 in New York.
    let next = utc("2026-11-24T06:00:00Z");
    let r = q.reserve("export", 1, 0, next).unwrap();
    assert_eq!(r.quota_day().unwrap().to_string(), "2026-11-24");
    r.commit(1, 0);
    assert_eq!(q.status(Some("export"), next).unwrap()[0].used.records, 1);
    // Not earlier than the current day, or beyond the horizon: refused.
    assert!(matches!(
        q.rewind("export", QuotaDay::of(next, tz)),
        Err(QuotasError::NotARewind { .. })
    ));
    assert!(matches!(
        q.rewind("sync", QuotaDay::of(far, tz)),
        Err(QuotasError::AheadOfClock { .. })
    ));
    assert!(
        matches!(q.rewind("sync", today), Err(QuotasError::NotARewind { .. })),
        "never charged: nothing to rewind"
    );
}

/// An operator sets a day's usage by hand: a new period with that usage;
/// open reservations' refunds no longer apply.
pub fn usage_is_set_by_hand(make: MakeLedger) {
    use fusebox_quotas::{QuotasError, MAX_AMOUNT};
    let (q, n) = quotas(make());
    let t = utc("2026-11-23T10:00:00Z");
    q.reserve("sync", 30, 0, t).unwrap().commit(30, 0);
    let open = q.reserve("sync", 10, 0, t).unwrap();
    let st = q.set_usage("sync", Usage::new(95, 500), t).unwrap();
    assert_eq!(
        (st.used, st.state),
        (Usage::new(95, 500), QuotaState::Active)
    );
    assert_eq!(kinds(&n), vec![("sync".into(), NotificationKind::UsageSet)]);
    drop(open);
    assert_eq!(
        used(&q, "sync", t),
        Usage::new(95, 500),
        "refund of the old period dropped"
    );
    q.reserve("sync", 5, 0, t).unwrap().commit(5, 0);
    assert!(matches!(
        q.reserve("sync", 1, 0, t),
        Err(Denial::Exhausted { used: 100, .. })
    ));
    assert!(matches!(
        q.set_usage("sync", Usage::new(MAX_AMOUNT + 1, 0), t),
        Err(QuotasError::InvalidUsage { .. })
    ));
    // Setting it lower lets the process run again (the stop is cleared).
    q.set_usage("sync", Usage::new(10, 0), t).unwrap();
    q.reserve("sync", 5, 0, t).unwrap().commit(5, 0);
    assert_eq!(used(&q, "sync", t), Usage::new(15, 0));
}

/// The frame ends (record boundaries) of a ledger file, read per the format
/// documented in `ledger::wal`: the header is 16 bytes in version 1, and 80
/// (header + two superblock slots) from version 2 on.
pub fn record_ends(bytes: &[u8]) -> Vec<usize> {
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    let mut at = if version == 1 { 16 } else { 80 };
    let mut ends = vec![at];
    while at + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 || at + 12 + len > bytes.len() {
            break;
        }
        at += 12 + len;
        ends.push(at);
    }
    ends
}
