//! The durable ledger: shared conformance behaviour, stress, restart
//! semantics, corruption refusal, and a SIGKILL crash test against a child
//! process.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fusebox_quotas::{
    CollectingNotifier, Durability, DurableLedger, DurableOptions, Ledger, LedgerError, Limits,
    NullNotifier, QuotaConfig, QuotaState, Quotas, Usage,
};

/// Each conformance test gets its own file in a temp dir that lives as long
/// as the test process (the dirs are few and small).
fn fresh_path() -> PathBuf {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    dir.join("quotas.ledger")
}

fn make() -> Box<dyn Ledger> {
    Box::new(DurableLedger::open(fresh_path()).expect("open ledger"))
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
    common::stress(&make, 8, 3_000);
}

#[test]
fn stress_with_fsync_and_tiny_compaction_threshold() {
    let make = || -> Box<dyn Ledger> {
        let opts = DurableOptions {
            durability: Durability::PowerLoss,
            compact_at_bytes: 16 * 1024,
            ..DurableOptions::default()
        };
        Box::new(DurableLedger::open_with(fresh_path(), opts).expect("open ledger"))
    };
    common::stress(&make, 4, 1_000);
}

#[test]
#[ignore = "heavy: run with --ignored"]
fn stress_8_threads_heavy() {
    common::stress(&make, 8, 100_000);
}

#[test]
fn usage_flags_and_raises_survive_restart_and_operators_work_without_the_yaml() {
    let path = fresh_path();
    let t = common::utc("2026-11-23T10:00:00Z");
    {
        let (q, n) = common::quotas(Box::new(DurableLedger::open(&path).unwrap()));
        q.reserve("sync", 100, 5, t).unwrap().commit(100, 5);
        assert!(q.reserve("sync", 1, 0, t).is_err());
        assert_eq!(n.take().len(), 2, "warned + exhausted");
    }
    // A separate "CLI invocation": no YAML, only the ledger.
    {
        let n = Arc::new(CollectingNotifier::new());
        let q =
            Quotas::from_ledger(Box::new(DurableLedger::open(&path).unwrap()), n.clone()).unwrap();
        let all = q.status(None, t).unwrap();
        assert_eq!(all.len(), 3);
        let st = &q.status(Some("sync"), t).unwrap()[0];
        assert_eq!(
            (st.used, st.state),
            (Usage::new(100, 5), QuotaState::Exhausted)
        );
        assert_eq!(st.owner, "data@example.com");
        assert_eq!(st.time_zone, "Europe/Berlin");
        assert!(st.backend.starts_with("file:"));
        q.raise("sync", Limits::new(Some(150), None), t).unwrap();
        assert_eq!(n.take().len(), 1);
    }
    // The engine restarts with its YAML: the raise, the usage and the
    // notify-once flags are all still there.
    let (q, n) = common::quotas(Box::new(DurableLedger::open(&path).unwrap()));
    let st = &q.status(Some("sync"), t).unwrap()[0];
    assert_eq!(
        (st.used.records, st.limit.records, st.raised),
        (100, Some(150), true)
    );
    q.reserve("sync", 10, 0, t).unwrap().commit(10, 0);
    assert!(
        n.take().is_empty(),
        "110/150 is below the re-armed 80% threshold"
    );
    // While the engine holds the ledger, a second opener is refused.
    assert!(matches!(
        DurableLedger::open(&path),
        Err(LedgerError::Locked { .. })
    ));
}

#[test]
fn corrupt_ledger_refuses_to_start_and_is_left_untouched() {
    let path = fresh_path();
    let t = common::utc("2026-11-23T10:00:00Z");
    {
        let (q, _) = common::quotas(Box::new(DurableLedger::open(&path).unwrap()));
        for _ in 0..10 {
            q.reserve("sync", 1, 1, t).unwrap().commit(1, 1);
        }
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let err = DurableLedger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("Refusing to start") && msg.contains("quotas.ledger"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a corrupt ledger is never rewritten"
    );
}

// ---- crash test -----------------------------------------------------------

const CHILD_ENV: &str = "FUSEBOX_QUOTAS_CRASH_CHILD";

const CRASH_CONFIG: &str = "\
processes:
  - id: hammer
    owner: ops@example.com
    time_zone: Europe/Berlin
    limits: { records: 100000000000, bytes: 100000000000000 }
";

/// Child side: hammers the ledger from two threads and acknowledges every
/// committed reservation on stdout, until killed (or 30 s pass).
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // not the child: nothing to do
    };
    let cfg = QuotaConfig::from_yaml_str(CRASH_CONFIG, "crash.yaml").unwrap();
    let ledger = DurableLedger::open(&path).unwrap();
    let q = Quotas::new(cfg, Box::new(ledger), Arc::new(NullNotifier)).unwrap();
    let out = Mutex::new(std::io::stdout());
    let start = Instant::now();
    let t = common::utc("2026-11-23T10:00:00Z");
    std::thread::scope(|s| {
        for th in 0..2u64 {
            let (q, out) = (&q, &out);
            s.spawn(move || {
                let h = q.process_handle("hammer").unwrap();
                let mut i = th;
                while start.elapsed() < Duration::from_secs(30) {
                    i += 2;
                    let (r, b) = (1 + i % 10, 100 + i % 1000);
                    let res = q.reserve_handle(h, r, b, t).unwrap();
                    // Commit a bit less than reserved every other time: refunds too.
                    let s = res.commit(r - (i % 2), b - (i % 2) * 50);
                    let line = format!("ACK {} {}\n", s.committed.records, s.committed.bytes);
                    let mut o = out.lock().unwrap();
                    o.write_all(line.as_bytes()).unwrap();
                    o.flush().unwrap();
                }
            });
        }
    });
}

fn run_child_and_kill(path: &Path, acks_before_kill: usize) -> Usage {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut acked = Usage::ZERO;
    let mut seen = 0usize;
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed = false;
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read child");
        if n == 0 {
            break;
        }
        // Only complete lines were acknowledged. The harness prints
        // "test crash_child ... " without a newline before the first one.
        if let Some(rest) = line
            .split_once("ACK ")
            .and_then(|(_, l)| l.strip_suffix('\n'))
        {
            let mut it = rest
                .split(' ')
                .map(|x| x.parse::<u64>().expect("ack number"));
            acked.records += it.next().unwrap();
            acked.bytes += it.next().unwrap();
            seen += 1;
        }
        if !killed && (seen >= acks_before_kill || Instant::now() > deadline) {
            child.kill().expect("SIGKILL child");
            killed = true;
            // Keep reading: lines already in the pipe were acknowledged.
        }
    }
    let status = child.wait().expect("wait child");
    assert!(killed, "child exited by itself: {status:?}");
    assert!(
        seen >= acks_before_kill.min(100),
        "child made too little progress: {seen}"
    );
    acked
}

#[test]
fn sigkill_mid_load_never_loses_acknowledged_usage() {
    let path = fresh_path();
    let cfg = || QuotaConfig::from_yaml_str(CRASH_CONFIG, "crash.yaml").unwrap();
    let t = common::utc("2026-11-23T10:00:00Z");
    let mut acked_total = Usage::ZERO;
    for (round, kill_after) in [1_500usize, 4_000, 700].into_iter().enumerate() {
        let acked = run_child_and_kill(&path, kill_after);
        acked_total.records += acked.records;
        acked_total.bytes += acked.bytes;
        let ledger = DurableLedger::open(&path)
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let report = ledger.recovery().clone();
        let q = Quotas::new(cfg(), Box::new(ledger), Arc::new(NullNotifier)).unwrap();
        let used = q.status(Some("hammer"), t).unwrap()[0].used;
        eprintln!("round {round}: acked {acked_total}, recorded {used}, recovery {report:?}");
        assert!(
            used.records >= acked_total.records && used.bytes >= acked_total.bytes,
            "round {round}: recorded usage {used} is below acknowledged {acked_total}"
        );
        // Lost refunds may over-count a little, never wildly: at most what
        // the refunds of one unflushed buffer could hold.
        assert!(
            used.records - acked_total.records < 100_000,
            "round {round}: {used} vs {acked_total}"
        );
        // The next round starts from what was recorded, as a restarted engine would.
        acked_total = used;
    }
}

// ---- tail loss: acknowledged records cut off the end ------------------------

/// A ledger where `sync` has charged 60 of its 100 records in six grants
/// (one state record each), cleanly closed. Returns the path and the end of
/// the record holding the second grant (usage 20).
fn ledger_with_six_grants() -> (PathBuf, usize) {
    let path = fresh_path();
    let t = common::utc("2026-11-23T10:00:00Z");
    let before;
    {
        let (q, _) = common::quotas(Box::new(DurableLedger::open(&path).unwrap()));
        q.reserve("sync", 10, 0, t).unwrap().commit(10, 0);
        q.reserve("sync", 10, 0, t).unwrap().commit(10, 0);
        q.sync().unwrap();
        before = std::fs::metadata(&path).unwrap().len() as usize;
        for _ in 0..4 {
            q.reserve("sync", 10, 0, t).unwrap().commit(10, 0);
        }
    }
    assert!(common::record_ends(&std::fs::read(&path).unwrap()).contains(&before));
    (path, before)
}

/// What a run would do with the damaged ledger: refuse, or (the bug) find
/// usage 20 and grant 60 more, 120 in all against a limit of 100.
fn assert_tail_loss_refused(path: &Path, what: &str) {
    match DurableLedger::open(path) {
        Err(LedgerError::TailLost { .. }) => {}
        Err(e) => panic!("{what}: expected TailLost, got {e}"),
        Ok(l) => {
            let (q, _) = common::quotas(Box::new(l));
            let t = common::utc("2026-11-23T10:00:00Z");
            let used = q.status(Some("sync"), t).unwrap()[0].used.records;
            let over = q.reserve("sync", 60, 0, t).is_ok();
            panic!("{what}: opened silently with usage {used} of the acknowledged 60 (a grant of 60 more: {over})");
        }
    }
}

#[test]
fn a_ledger_cut_at_a_record_boundary_is_refused() {
    let (path, cut) = ledger_with_six_grants();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..cut]).unwrap();
    assert_tail_loss_refused(&path, "cut at a record boundary");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        &bytes[..cut],
        "left as found"
    );
}

#[test]
fn a_ledger_zero_filled_from_a_record_boundary_is_refused() {
    let (path, cut) = ledger_with_six_grants();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[cut..].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    assert_tail_loss_refused(&path, "zero-filled from a record boundary");
}

#[test]
fn a_ledger_truncated_to_its_header_is_refused() {
    let (path, _) = ledger_with_six_grants();
    let bytes = std::fs::read(&path).unwrap();
    let header = common::record_ends(&bytes)[0];
    std::fs::write(&path, &bytes[..header]).unwrap();
    assert_tail_loss_refused(&path, "truncated to the header and superblock");
    // Cut to the 16 bytes of magic and version: the superblock is gone too.
    std::fs::write(&path, &bytes[..16]).unwrap();
    assert!(
        DurableLedger::open(&path).is_err(),
        "truncated to 16 bytes: refused"
    );
}

// ---- explicit recovery -------------------------------------------------------

const WAIT: Duration = Duration::from_millis(100);

#[test]
fn recovery_after_tail_loss_is_explicit_logged_and_survives_compaction() {
    use fusebox_quotas::RecoveryCause;
    let (path, cut) = ledger_with_six_grants();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let t = common::utc("2026-11-23T10:00:00Z");

    // Inspection reads without changing anything.
    let seen = DurableLedger::inspect(&path, WAIT).unwrap();
    assert_eq!(seen.cause, Some(RecoveryCause::TailLost));
    assert_eq!(seen.durable_end, Some(bytes.len() as u64));
    assert_eq!(seen.readable_end, cut as u64);
    let sync = seen.processes.iter().find(|p| p.process == "sync").unwrap();
    assert_eq!(sync.used.records, 20, "what the readable records say");
    assert!(seen
        .problem
        .as_deref()
        .unwrap()
        .contains("lost acknowledged usage"));
    assert_eq!(std::fs::read(&path).unwrap(), &bytes[..cut]);

    // The operator accepts the loss: rewritten, with an audit record.
    let audit = DurableLedger::recover(
        &path,
        WAIT,
        t,
        "ops",
        Some("restored from a truncated copy"),
    )
    .unwrap()
    .expect("there was something to recover");
    assert_eq!(audit.cause, RecoveryCause::TailLost);
    assert_eq!(audit.lost_bytes, Some((bytes.len() - cut) as u64));
    assert_eq!(audit.operator, "ops");
    assert!(
        audit.summary().contains("acknowledged tail lost"),
        "{}",
        audit.summary()
    );

    // It opens again, with the usage that was readable, and says it was recovered.
    let small = DurableOptions {
        compact_at_bytes: 1,
        ..DurableOptions::default()
    };
    {
        let l = DurableLedger::open_with(&path, small).unwrap();
        assert!(l.recovery().clean_close, "a recovery seals the new file");
        assert_eq!(l.recovery().audits, vec![audit.clone()]);
        let (q, _) = common::quotas(Box::new(l));
        assert_eq!(q.status(Some("sync"), t).unwrap()[0].used.records, 20);
        // Every append compacts: the audit must survive the rewrite.
        q.reserve("sync", 1, 0, t).unwrap().commit(1, 0);
    }
    let l = DurableLedger::open(&path).unwrap();
    assert_eq!(l.recovery().audits, vec![audit]);
    assert!(l
        .recovery()
        .to_string()
        .contains("recovered by an operator 1 time"));
    // Nothing left to recover: a healthy ledger is not touched.
    drop(l);
    let before = std::fs::read(&path).unwrap();
    assert_eq!(
        DurableLedger::recover(&path, WAIT, t, "ops", None).unwrap(),
        None
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_version_1_ledger_is_refused_and_upgraded_only_on_request() {
    use fusebox_quotas::RecoveryCause;
    let (path, _) = ledger_with_six_grants();
    // The same records under a version-1 header (records from byte 16, no superblock).
    let v2 = std::fs::read(&path).unwrap();
    let mut v1 = v2[..16].to_vec();
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    v1.extend_from_slice(&v2[80..]);
    std::fs::write(&path, &v1).unwrap();
    let err = DurableLedger::open(&path).unwrap_err();
    assert!(
        matches!(err, LedgerError::OldFormat { version: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("fusebox quota recover"), "{err}");
    let seen = DurableLedger::inspect(&path, WAIT).unwrap();
    assert_eq!(
        (seen.format_version, seen.cause),
        (1, Some(RecoveryCause::OldFormat))
    );
    let t = common::utc("2026-11-23T10:00:00Z");
    let audit = DurableLedger::recover(&path, WAIT, t, "ops", None)
        .unwrap()
        .unwrap();
    assert_eq!(
        (audit.cause, audit.lost_bytes, audit.dropped_bytes),
        (RecoveryCause::OldFormat, None, 0)
    );
    let (q, _) = common::quotas(Box::new(DurableLedger::open(&path).unwrap()));
    assert_eq!(
        q.status(Some("sync"), t).unwrap()[0].used.records,
        60,
        "all usage kept"
    );
}

#[test]
fn a_corrupt_ledger_can_be_recovered_to_the_records_before_the_damage() {
    use fusebox_quotas::RecoveryCause;
    let (path, cut) = ledger_with_six_grants();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[cut + 14] ^= 0x10; // inside the payload of the record after `cut`
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        DurableLedger::open(&path),
        Err(LedgerError::Corrupt { .. })
    ));
    let t = common::utc("2026-11-23T10:00:00Z");
    let audit = DurableLedger::recover(&path, WAIT, t, "ops", None)
        .unwrap()
        .unwrap();
    assert_eq!(audit.cause, RecoveryCause::Corrupt);
    assert_eq!(audit.readable_end, cut as u64);
    let (q, _) = common::quotas(Box::new(DurableLedger::open(&path).unwrap()));
    assert_eq!(q.status(Some("sync"), t).unwrap()[0].used.records, 20);
}
