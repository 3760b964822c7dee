//! An open loop against a live engine: events submitted at a fixed rate, whatever the
//! engine's pace, each awaited in its own task. Shared by `live` and `runaway`.

use std::time::{Duration, Instant};

use fusebox::engine::event::Event;
use fusebox::engine::live::{LiveEngine, Submitted};

/// One event's answer, its submit → answer latency and its latency from the time it was
/// scheduled (which also counts pacing lag), ns.
pub struct Answered {
    pub answer: Submitted,
    pub from_submit: u64,
    pub from_schedule: u64,
}

/// Submits `events` at `rate` per second (a 1 ms tick issues every event due by then); the
/// answers in issue order, and the seconds from the first submit to the last answer.
/// Panics if an accepted event is not run.
pub async fn run(live: &LiveEngine, events: &[Event], rate: f64) -> (Vec<Answered>, f64) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tasks = Vec::with_capacity(events.len());
    let mut issued = 0;
    while issued < events.len() {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate) as usize + 1).min(events.len());
        while issued < due {
            let scheduled = start + Duration::from_secs_f64(issued as f64 / rate);
            let live = live.clone();
            let event = events[issued].clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let answer = live.submit(event).await;
                let from_submit = t.elapsed().as_nanos() as u64;
                Answered {
                    answer: answer.unwrap_or_else(|e| panic!("not run: {e}")),
                    from_submit,
                    from_schedule: scheduled.elapsed().as_nanos() as u64,
                }
            }));
            issued += 1;
        }
    }
    let mut answered = Vec::with_capacity(tasks.len());
    for task in tasks {
        answered.push(task.await.expect("open-loop task"));
    }
    (answered, start.elapsed().as_secs_f64())
}
