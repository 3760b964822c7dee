//! Model-based test of the durable ledger, in the spirit of redb's storage fuzzing.
//!
//! Random sequences of operations — reserve, refund, raise, resume, reset, set, rewind, day
//! changes, clean close and reopen, crashes at arbitrary byte offsets, and damage to the
//! closed file — run against a [`DurableLedger`] and against a simple in-memory model: per
//! process, the reference state machine [`PeriodState`] and the list of states it went
//! through since the last reopen, with the last *acknowledged* one marked (a reserve that
//! changed the state, or an operator action, that returned `Ok`; refunds are never waited
//! for, and neither is a reserve that changed nothing, such as a zero amount or a repeated
//! denial, so its answer acknowledges nothing new).
//!
//! A crash is injected with [`DurableLedger::crash_after`]: the log stops after a given
//! number of bytes — inside a group's records, between the records and their mark, or
//! inside a compaction's temporary file — and the ledger fails from then on, as if its
//! process had died there. Checked at every reopen:
//!
//! * **clean close:** the ledger reproduces the model exactly (every refund included);
//! * **crash:** every process's recovered state is one the model went through at or after
//!   its last acknowledged state: nothing acknowledged is lost, so usage is never lower
//!   than acknowledged (the states after it differ only by unacknowledged refunds, which
//!   lower usage, and by the operation the crash interrupted);
//! * **damage below the mark** (the file cut at a record boundary, zero-filled from one,
//!   cut to its superblock, or into its header): the open is refused — `TailLost`, or
//!   `Corrupt` when the superblock itself is gone — and leaves the file as found; restored,
//!   the file reopens exactly.
//!
//! Every operation's answer is also compared with the model's. The default run is 64
//! cases of up to 60 operations (a few seconds in debug). A long campaign:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test -p fusebox-quotas --release --test ledger_model
//! cargo test -p fusebox-quotas --release --test ledger_model -- --ignored  # 300-op sequences
//! ```

mod common;

use std::path::PathBuf;

use fusebox_quotas::ledger::Ledger;
use fusebox_quotas::state::{Operation, Period, PeriodState, ReserveRequest, Verdict};
use fusebox_quotas::{
    Durability, DurableLedger, DurableOptions, LedgerError, Limits, ProcessConfig, QuotaDay, Usage,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

/// Processes; the last one is a shadow process (never denied).
const SLOTS: u32 = 3;
const BASE_DAY: i32 = 20_000;
const CAPS: Usage = Usage::new(30, 600);
const WARN: Usage = Usage::new(24, 480);

fn processes() -> Vec<ProcessConfig> {
    (0..SLOTS)
        .map(|i| {
            ProcessConfig::new(
                format!("p{i}"),
                "o",
                chrono_tz::UTC,
                Limits::new(Some(CAPS.records), Some(CAPS.bytes)),
            )
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Damage {
    /// Cut at a record boundary below the mark.
    Cut(Index),
    /// Zero everything from a record boundary below the mark.
    Zero(Index),
    /// Keep only the header and superblock.
    ToSuperblock,
    /// Cut inside the header or superblock.
    IntoHeader(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Reserve {
        slot: u32,
        ahead: i32,
        records: u64,
        bytes: u64,
    },
    Refund {
        which: Index,
        records: u64,
        bytes: u64,
    },
    Raise {
        slot: u32,
        records: u64,
        bytes: u64,
    },
    Resume {
        slot: u32,
    },
    Reset {
        slot: u32,
    },
    Set {
        slot: u32,
        records: u64,
        bytes: u64,
    },
    Rewind {
        slot: u32,
        back: i32,
    },
    NextDay,
    Reopen,
    Crash {
        after: u64,
    },
    Damage(Damage),
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        10 => (slot.clone(), 0..2i32, 0..12u64, 0..200u64)
            .prop_map(|(slot, ahead, records, bytes)| Op::Reserve { slot, ahead, records, bytes }),
        5 => (any::<Index>(), 0..12u64, 0..200u64)
            .prop_map(|(which, records, bytes)| Op::Refund { which, records, bytes }),
        1 => (slot.clone(), 0..20u64, 0..300u64)
            .prop_map(|(slot, records, bytes)| Op::Raise { slot, records, bytes }),
        1 => slot.clone().prop_map(|slot| Op::Resume { slot }),
        1 => slot.clone().prop_map(|slot| Op::Reset { slot }),
        1 => (slot.clone(), 0..40u64, 0..700u64)
            .prop_map(|(slot, records, bytes)| Op::Set { slot, records, bytes }),
        1 => (slot, 0..3i32).prop_map(|(slot, back)| Op::Rewind { slot, back }),
        2 => Just(Op::NextDay),
        1 => Just(Op::Reopen),
        2 => (0..400u64).prop_map(|after| Op::Crash { after }),
        1 => prop_oneof![
            any::<Index>().prop_map(Damage::Cut),
            any::<Index>().prop_map(Damage::Zero),
            Just(Damage::ToSuperblock),
            (0..80usize).prop_map(Damage::IntoHeader),
        ]
        .prop_map(Op::Damage),
    ]
}

fn options() -> impl Strategy<Value = DurableOptions> {
    (any::<bool>(), 0..8u8).prop_map(|(compact, fsync)| DurableOptions {
        // A tiny threshold compacts every few records, crashes included.
        compact_at_bytes: if compact { 600 } else { 64 << 20 },
        durability: if fsync == 0 {
            Durability::PowerLoss
        } else {
            Durability::ProcessCrash
        },
        ..DurableOptions::default()
    })
}

/// The ledger under test, the model, and the reservations still open.
struct Harness {
    path: PathBuf,
    opts: DurableOptions,
    ledger: Option<DurableLedger>,
    /// Per process: the states since the last reopen; the last is the current one.
    history: Vec<Vec<PeriodState>>,
    /// Per process: index into `history` of the last acknowledged state.
    acked: Vec<usize>,
    /// Granted reservations not yet refunded: process, period, amount.
    open: Vec<(u32, Period, Usage)>,
    today: i32,
    /// A crash is injected and has not hit yet.
    armed: bool,
    _dir: tempfile::TempDir,
}

type Step = Result<(), TestCaseError>;

impl Harness {
    fn new(opts: DurableOptions) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.ledger");
        let ledger = DurableLedger::open_with(&path, opts).expect("new ledger");
        ledger.bind(&processes()).expect("bind");
        Harness {
            path,
            opts,
            ledger: Some(ledger),
            history: vec![vec![PeriodState::default()]; SLOTS as usize],
            acked: vec![0; SLOTS as usize],
            open: Vec::new(),
            today: BASE_DAY,
            armed: false,
            _dir: dir,
        }
    }

    fn ledger(&self) -> &DurableLedger {
        self.ledger
            .as_ref()
            .expect("the ledger is open between steps")
    }

    fn current(&self, slot: u32) -> PeriodState {
        *self.history[slot as usize].last().expect("never empty")
    }

    /// Records the model's next state of `slot`, acknowledged or not.
    fn push(&mut self, slot: u32, state: PeriodState, acked: bool) {
        let h = &mut self.history[slot as usize];
        h.push(state);
        if acked {
            self.acked[slot as usize] = h.len() - 1;
        }
    }

    fn day(&self, offset: i32) -> QuotaDay {
        QuotaDay::from_days_since_epoch(self.today + offset)
    }

    /// The ledger answered an error: only an injected crash may cause one. The operation's
    /// effect may or may not be on disk (its state is in the history, unacknowledged).
    fn crashed(&mut self, slot: u32, state: PeriodState, e: LedgerError) -> Step {
        prop_assert!(self.armed, "error without an injected crash: {e}");
        self.push(slot, state, false);
        self.reopen()
    }

    fn apply(&mut self, op: &Op) -> Step {
        match *op {
            Op::Reserve {
                slot,
                ahead,
                records,
                bytes,
            } => {
                let req = ReserveRequest {
                    day: self.day(ahead),
                    amount: Usage::new(records, bytes),
                    caps: CAPS,
                    warn: WARN,
                    shadow: slot == SLOTS - 1,
                };
                let before = self.current(slot);
                let mut state = before;
                let want = state.reserve(&req);
                match self.ledger().reserve(slot, &req) {
                    Ok(got) => {
                        prop_assert_eq!(got, want);
                        // A reserve that changed nothing writes nothing and waits for
                        // nothing: its answer certifies no state newer than the last
                        // certified one (an earlier refund may still be unwritten).
                        self.push(slot, state, state != before);
                        if got.verdict == Verdict::Granted {
                            self.open.push((slot, got.period, req.amount));
                        }
                    }
                    Err(e) => self.crashed(slot, state, e)?,
                }
            }
            Op::Refund {
                ref which,
                records,
                bytes,
            } => {
                if self.open.is_empty() {
                    return Ok(());
                }
                let (slot, period, amount) = self.open.swap_remove(which.index(self.open.len()));
                let back = Usage::new(records, bytes).min(amount);
                let mut state = self.current(slot);
                state.refund(period, back);
                match self.ledger().refund(slot, period, back) {
                    Ok(()) => self.push(slot, state, false),
                    Err(e) => self.crashed(slot, state, e)?,
                }
            }
            Op::Raise {
                slot,
                records,
                bytes,
            } => {
                let caps = self
                    .current(slot)
                    .snapshot(self.day(0))
                    .raised
                    .unwrap_or(CAPS);
                let raised = Usage::new(caps.records + records, caps.bytes + bytes);
                self.operate(slot, self.day(0), Operation::Raise(raised))?;
            }
            Op::Resume { slot } => self.operate(slot, self.day(0), Operation::Resume)?,
            Op::Reset { slot } => self.operate(slot, self.day(0), Operation::Reset)?,
            Op::Set {
                slot,
                records,
                bytes,
            } => self.operate(
                slot,
                self.day(0),
                Operation::SetUsage(Usage::new(records, bytes)),
            )?,
            Op::Rewind { slot, back } => {
                let day = self.current(slot).day.days_since_epoch();
                if day < BASE_DAY {
                    return Ok(()); // never charged: nothing to rewind
                }
                let to = QuotaDay::from_days_since_epoch(day - back);
                self.operate(slot, to, Operation::Rewind(to))?;
            }
            Op::NextDay => self.today += 1,
            Op::Reopen => self.reopen()?,
            Op::Crash { after } => {
                self.ledger().crash_after(after);
                self.armed = true;
            }
            Op::Damage(ref d) => self.damage(d)?,
        }
        Ok(())
    }

    fn operate(&mut self, slot: u32, day: QuotaDay, op: Operation) -> Step {
        let mut state = self.current(slot);
        let want = state.operate(day, op);
        match self.ledger().operate(slot, day, op) {
            Ok(got) => {
                prop_assert_eq!(got, want);
                self.push(slot, state, true);
                Ok(())
            }
            Err(e) => self.crashed(slot, state, e),
        }
    }

    /// Closes (cleanly, or as far as an injected crash lets it) and reopens, then checks
    /// every process against the model and starts the model afresh from what was found.
    fn reopen(&mut self) -> Step {
        drop(self.ledger.take());
        let ledger = DurableLedger::open_with(&self.path, self.opts)
            .map_err(|e| TestCaseError::fail(format!("reopen failed: {e}")))?;
        ledger.bind(&processes()).expect("bind");
        for slot in 0..SLOTS {
            let found = ledger.period_state(slot).expect("bound slot");
            let h = &self.history[slot as usize];
            if self.armed {
                let since = &h[self.acked[slot as usize]..];
                prop_assert!(
                    since.contains(&found),
                    "p{}: recovered {:?}, not among the states since the last acknowledged one {:?}",
                    slot,
                    found,
                    since
                );
            } else {
                prop_assert_eq!(&found, h.last().expect("never empty"), "p{}", slot);
                prop_assert!(ledger.recovery().clean_close);
            }
            self.history[slot as usize] = vec![found];
            self.acked[slot as usize] = 0;
        }
        self.ledger = Some(ledger);
        self.armed = false;
        Ok(())
    }

    /// Closes, damages the file below its mark, checks the open refuses it and leaves it as
    /// found, then restores it and reopens.
    fn damage(&mut self, d: &Damage) -> Step {
        self.reopen()?; // settles a pending crash, then closes cleanly below
        drop(self.ledger.take());
        let good = std::fs::read(&self.path).expect("read ledger");
        // A clean close seals the mark at the end of the file.
        let below: Vec<usize> = common::record_ends(&good)
            .into_iter()
            .filter(|e| *e < good.len())
            .collect();
        let bad = match d {
            Damage::Cut(i) if !below.is_empty() => good[..below[i.index(below.len())]].to_vec(),
            Damage::Zero(i) if !below.is_empty() => {
                let mut z = good.clone();
                z[below[i.index(below.len())]..].fill(0);
                z
            }
            Damage::ToSuperblock if good.len() > 80 => good[..80].to_vec(),
            Damage::IntoHeader(n) => good[..*n].to_vec(),
            _ => good.clone(), // nothing below the mark to damage
        };
        if bad != good {
            std::fs::write(&self.path, &bad).expect("write damage");
            match DurableLedger::open_with(&self.path, self.opts) {
                Err(LedgerError::TailLost { .. }) if bad.len() >= 80 => {}
                Err(LedgerError::Corrupt { .. }) if bad.len() < 80 => {}
                Err(e) => prop_assert!(false, "{:?}: unexpected refusal {}", d, e),
                Ok(_) => prop_assert!(false, "{:?}: the damaged ledger opened", d),
            }
            prop_assert_eq!(
                std::fs::read(&self.path).expect("read"),
                bad,
                "left as found"
            );
            std::fs::write(&self.path, &good).expect("restore");
        }
        self.reopen()
    }

    fn finish(mut self) -> Step {
        self.reopen()
    }
}

fn run(opts: DurableOptions, ops: &[Op]) -> Step {
    let mut h = Harness::new(opts);
    for op in ops {
        h.apply(op)?;
    }
    h.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_durable_ledger_matches_the_model_across_crashes_and_refuses_lost_tails(
        opts in options(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run(opts, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The long campaign: longer sequences, more cases (`-- --ignored`, in release).
    #[test]
    #[ignore = "long campaign: cargo test -p fusebox-quotas --release --test ledger_model -- --ignored"]
    fn long_campaign(
        opts in options(),
        ops in prop::collection::vec(op(), 1..300),
    ) {
        run(opts, &ops)?;
    }
}
