//! The delivery thread: wakes submitters off the engine thread.
//!
//! The engine thread hands each finished batch's answers over in one message and goes on
//! with the next batch; this thread records their latency, sends each answer on its
//! oneshot (waking the submitter's task) and only then gives the batch's intake places
//! back. Invariants: answers leave in the order they were handed over (one FIFO channel,
//! one thread), so every submitter is answered in acceptance order; [`Answerer::finish`]
//! returns only after everything handed over was delivered, which a shutdown relies on
//! before it returns its final report. If the thread cannot be started, answers are
//! delivered inline on the engine thread — slower, never lost.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{self, Sender};
use metrics::{histogram, Histogram};
use tokio::sync::oneshot;

use super::{Monitor, SubmitError, Submitted};

/// A submitter to answer once its event's batch is done.
pub(crate) struct Waiter {
    pub accepted: Instant,
    pub reply: oneshot::Sender<Result<Submitted, SubmitError>>,
}

/// One batch's answers, in acceptance order.
pub(crate) type Answers = Vec<(Waiter, Result<Submitted, SubmitError>)>;

/// The handle the engine thread keeps on the delivery thread.
pub(crate) struct Answerer {
    tx: Option<Sender<Answers>>,
    thread: Option<JoinHandle<()>>,
    /// For inline delivery when there is no thread.
    inline: Delivery,
}

/// What delivering needs: the shared monitor and the latency histogram.
#[derive(Clone)]
struct Delivery {
    monitor: Arc<Monitor>,
    latency: Histogram,
}

impl Delivery {
    fn deliver(&self, answers: Answers) {
        let n = answers.len();
        {
            let mut tracker = self.monitor.tracker();
            for (waiter, answer) in &answers {
                if answer.is_ok() {
                    let elapsed = waiter.accepted.elapsed();
                    tracker.latency(elapsed);
                    self.latency.record(elapsed.as_secs_f64());
                }
            }
        }
        for (waiter, answer) in answers {
            // A submitter that stopped waiting has dropped its receiver: nothing to do.
            let _ = waiter.reply.send(answer);
        }
        self.monitor.permits.add_permits(n);
    }
}

impl Answerer {
    pub fn start(monitor: Arc<Monitor>) -> Answerer {
        let delivery = Delivery {
            monitor,
            latency: histogram!("fusebox_submit_to_outcome_seconds"),
        };
        let (tx, rx) = channel::unbounded::<Answers>();
        let worker = delivery.clone();
        let thread = std::thread::Builder::new()
            .name("fusebox-answers".into())
            .spawn(move || {
                for answers in rx {
                    worker.deliver(answers);
                }
            });
        match thread {
            Ok(thread) => Answerer {
                tx: Some(tx),
                thread: Some(thread),
                inline: delivery,
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the answer thread; answering inline");
                Answerer {
                    tx: None,
                    thread: None,
                    inline: delivery,
                }
            }
        }
    }

    /// Hands a batch's answers over (delivers them inline without a thread).
    pub fn deliver(&self, answers: Answers) {
        match &self.tx {
            Some(tx) => {
                if let Err(unsent) = tx.send(answers) {
                    // The thread is gone (it panicked): answer here.
                    self.inline.deliver(unsent.into_inner());
                }
            }
            None => self.inline.deliver(answers),
        }
    }

    /// Waits until everything handed over is delivered; later answers go inline.
    pub fn finish(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the answer thread panicked");
            }
        }
    }
}

impl Drop for Answerer {
    fn drop(&mut self) {
        self.finish();
    }
}
