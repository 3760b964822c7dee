//! The quota side of the generated workload: which process sent an event, and a
//! `quotas.yaml` for those processes.
//!
//! The story is the one from the field: a CRM sync meant to run once a day that re-sends
//! customer updates all day long. Its daily limit is sized for the intended schedule, a
//! fifth of what it actually sends, so a run with these quotas holds most of its events
//! every day while the order import, the signup feed and everything without a process carry
//! on. The web tracker runs in shadow mode: its tighter limit is being tried out, so it is
//! reported (`shadow_would_deny`) but never held.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::GenSpec;

/// The runaway process: every `customer.updated` event comes from it.
pub(super) const CRM_SYNC: &str = "crm-sync";

/// Share of events per process, as drawn in `write_events` and [`process_for`]; used to
/// size the limits relative to the traffic.
const CRM_SHARE: f64 = 0.15;
const ORDERS_SHARE: f64 = 0.30 * 0.25;
const TRACKER_SHARE: f64 = 0.37 * 0.5;
const SIGNUP_SHARE: f64 = 0.03 * 0.3;
/// The workload's events span about this many days.
const DAYS: f64 = 30.0;

/// The process that sent an event of type `ty`, for types not already tied to one.
pub(super) fn process_for(ty: &str, rng: &mut ChaCha8Rng) -> Option<&'static str> {
    match ty {
        "order.completed" => rng.random_bool(0.25).then_some("shop-orders-import"),
        "page.viewed" => rng.random_bool(0.5).then_some("web-tracker"),
        "customer.registered" => rng.random_bool(0.3).then_some("newsletter-signup"),
        _ => None,
    }
}

/// Expected events a day for a process with this share of the traffic (at least 1).
fn per_day(spec: &GenSpec, share: f64) -> u64 {
    ((spec.events as f64 * share / DAYS).ceil() as u64).max(1)
}

/// `quotas.yaml` for the workload.
pub(super) fn quotas_yaml(spec: &GenSpec) -> String {
    let crm = (per_day(spec, CRM_SHARE) / 5).max(1);
    let orders = per_day(spec, ORDERS_SHARE) * 10;
    let tracker = (per_day(spec, TRACKER_SHARE) / 2).max(1);
    let signup = per_day(spec, SIGNUP_SHARE) * 20;
    format!(
        r#"# Daily transfer quotas per automated process (see README: "Quotas").
# The quota day is the calendar day in each process's time_zone; the run's clock is the
# event timestamps. An exhausted process's events are held (held.jsonl) until its next day
# or an operator runs `fusebox quota raise|resume|reset`; its owner is notified.
unknown_process: deny            # events from processes not listed here are held
processes:
  # Meant to sync changed customers once a day; misconfigured, it re-sends updates all day
  # (about 5x the daily limit) and is stopped every day part-way through.
  - id: {CRM_SYNC}
    owner: data-team@shop.example
    time_zone: Europe/Berlin
    limits: {{ records: {crm}, bytes: {crm_bytes} }}
    warn_at: 0.8
    on_backend_unavailable: fail_closed
  # Orders imported from the web shop: plenty of headroom.
  - id: shop-orders-import
    owner: ecommerce@shop.example
    time_zone: America/New_York
    limits: {{ records: {orders}, bytes: {orders_bytes} }}
  # Page views from the web tracker: trying a tighter limit before enforcing it.
  - id: web-tracker
    owner: growth@shop.example
    time_zone: Asia/Tokyo
    limits: {{ records: {tracker} }}
    shadow: true
    on_backend_unavailable: fail_open
  # Newsletter sign-ups forwarded by the mailing-list provider.
  - id: newsletter-signup
    owner: crm@shop.example
    time_zone: UTC
    limits: {{ records: {signup} }}
    warn_at: 0.9
  # The nightly loyalty export has not sent anything in this workload.
  - id: loyalty-export
    owner: bi@shop.example
    time_zone: Europe/Moscow
    limits: {{ records: 500000, bytes: 250000000 }}
"#,
        crm_bytes = crm * 256,
        orders_bytes = orders * 512,
    )
}
