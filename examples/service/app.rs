//! The HTTP service around a [`LiveEngine`]: routes, request parsing, errors. Shared by the
//! example binary (`main.rs`) and its integration test (`tests/service.rs`).
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /events` | one event (a JSON object in the `fusebox run --events` format) or a JSON array of them | `200` with the outcome (or an array of outcomes, in order); `400` with the reason if the body or any event is malformed (then nothing is submitted); `503` while shutting down |
//! | `PUT /triggers` | a triggers file (YAML) | `200 {"version": n}`, or `422` with the located diagnostics (the old triggers keep running) |
//! | `POST /pause` | the reason (text) | `200`: the engine stops taking work; accepted events wait (the big red button) |
//! | `POST /resume` | | `200`: the backlog drains, then normal service |
//! | `POST /triggers/{id}/stop` | the reason (text) | `200 {"version": n}`: from the next batch the trigger's firings are recorded as `trigger_stopped` (the kill switch); `404` for an unknown trigger |
//! | `POST /triggers/{id}/resume` | | `200 {"version": n}`: an operator's or the governor's stop is lifted; `404` for an unknown trigger |
//! | `GET /status` | | `200` with `LiveEngine::status()` as JSON (`503` when stopped) |
//! | `GET /metrics` | | Prometheus text |

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use fusebox::engine::event::Event;
use fusebox::engine::live::{Health, LiveEngine, LiveError, SubmitError, Submitted};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    /// The engine.
    pub live: LiveEngine,
    /// Renders the metrics; `None`: `GET /metrics` answers 404.
    pub metrics: Option<Arc<PrometheusHandle>>,
}

/// The routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/events", post(post_events))
        .route("/triggers", put(put_triggers))
        .route("/triggers/{id}/stop", post(post_stop_trigger))
        .route("/triggers/{id}/resume", post(post_resume_trigger))
        .route("/pause", post(post_pause))
        .route("/resume", post(post_resume))
        .route("/status", get(get_status))
        .route("/metrics", get(get_metrics))
        .with_state(app)
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops taking requests,
/// finishes those in flight, and shuts the engine down (draining every accepted event).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<fusebox::engine::live::FinalReport, Box<dyn std::error::Error + Send + Sync>> {
    let live = app.live.clone();
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(live.shutdown().await?)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// One answer as JSON: the outcome line of `outcomes.jsonl` plus its effects.
fn answer_json(a: &Submitted) -> Value {
    let mut v = serde_json::to_value(&a.outcome).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert(
            "effects".into(),
            serde_json::to_value(&a.effects).unwrap_or(Value::Null),
        );
    }
    v
}

fn submit_error(e: &SubmitError) -> Response {
    let status = match e {
        SubmitError::TooMany { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        SubmitError::Full { .. } | SubmitError::ShuttingDown | SubmitError::Stopped(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    error(status, e.to_string())
}

/// Parses a body into events: every problem is reported, and any problem submits nothing.
fn parse_events(body: &[u8]) -> Result<(Vec<Event>, bool), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let (items, many) = match value {
        Value::Array(items) => (items, true),
        object @ Value::Object(_) => (vec![object], false),
        other => {
            return Err(format!(
                "the body must be an event object or an array of them, not {}",
                match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    _ => "a string",
                }
            ))
        }
    };
    let mut events = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match Event::from_json(&item.to_string()) {
            Ok(e) => events.push(e),
            Err(reason) if many => problems.push(format!("event [{i}]: {reason}")),
            Err(reason) => problems.push(reason),
        }
    }
    if problems.is_empty() {
        Ok((events, many))
    } else {
        Err(problems.join("; "))
    }
}

async fn post_events(State(app): State<App>, body: Bytes) -> Response {
    let (events, many) = match parse_events(&body) {
        Ok(parsed) => parsed,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    if !many {
        let Some(event) = events.into_iter().next() else {
            return error(StatusCode::BAD_REQUEST, "no event");
        };
        return match app.live.submit(event).await {
            Ok(a) => Json(answer_json(&a)).into_response(),
            Err(e) => submit_error(&e),
        };
    }
    match app.live.submit_many(events).await {
        Ok(answers) => {
            let mut out = Vec::with_capacity(answers.len());
            for a in &answers {
                match a {
                    Ok(a) => out.push(answer_json(a)),
                    Err(e) => out.push(json!({ "error": e.to_string() })),
                }
            }
            Json(Value::Array(out)).into_response()
        }
        Err(e) => submit_error(&e),
    }
}

async fn put_triggers(State(app): State<App>, body: String) -> Response {
    match app.live.reload_yaml(body, "triggers.yaml".into()).await {
        Ok(version) => Json(json!({ "version": version })).into_response(),
        Err(LiveError::Config(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn post_pause(State(app): State<App>, reason: String) -> Response {
    let reason = if reason.trim().is_empty() {
        "paused over HTTP".to_string()
    } else {
        reason.trim().to_string()
    };
    match app.live.pause(reason).await {
        Ok(()) => Json(json!({ "paused": true })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn post_stop_trigger(
    State(app): State<App>,
    Path(id): Path<String>,
    reason: String,
) -> Response {
    let reason = match reason.trim() {
        "" => "stopped over HTTP".to_string(),
        r => r.to_string(),
    };
    trigger_switch(app.live.stop_trigger(&id, reason).await)
}

async fn post_resume_trigger(State(app): State<App>, Path(id): Path<String>) -> Response {
    trigger_switch(app.live.resume_trigger(&id).await)
}

fn trigger_switch(result: Result<u64, LiveError>) -> Response {
    match result {
        Ok(version) => Json(json!({ "version": version })).into_response(),
        Err(e @ LiveError::UnknownTrigger { .. }) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn post_resume(State(app): State<App>) -> Response {
    match app.live.resume().await {
        Ok(()) => Json(json!({ "paused": false })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn get_status(State(app): State<App>) -> Response {
    let status = app.live.status();
    let code = if status.health == Health::Stopped {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(status)).into_response()
}

async fn get_metrics(State(app): State<App>) -> Response {
    match &app.metrics {
        Some(handle) => (
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, "metrics are not enabled"),
    }
}
