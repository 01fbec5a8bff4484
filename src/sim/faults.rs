//! Fault injection on the `/api/*` routes: latency, errors, hangs and dropped connections.
//!
//! The reliability work of the MCP server (timeouts, retries, reconnects) needs a Dust that
//! misbehaves on demand and reproducibly. Two kinds of faults, checked in this order:
//!
//! - a **fault plan**: scripted [`FaultRule`]s, each matching some requests (method, a piece of
//!   the path) a given number of times: "the first GET of `/spaces` answers 429 with
//!   `Retry-After: 1`", "every request of workspace X hangs", "cut the event stream after two
//!   events". Tests use it to build one precise situation and count what the client did. Set
//!   with [`SimHandle::push_fault`](super::SimHandle::push_fault) or `POST /_sim/fault-plan`.
//! - **random faults** ([`Faults`]): rates of errors, hangs and drops, with a seed so the
//!   sequence is the same on every run, for soak and demo runs. Set with `POST /_sim/faults` or
//!   [`SimHandle::set_faults`](super::SimHandle::set_faults).

use std::{sync::Mutex, time::Duration};

use futures::StreamExt;

use axum::{
    Json,
    body::Body,
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use super::{
    error::{ApiError, parse_json},
    state::AppState,
};

/// What goes wrong, and how often. Rates are probabilities in `0..=1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Delay before every answer, in ms.
    pub latency_ms: u64,
    /// Share of requests answered with an error envelope of status `error_status`.
    pub error_rate: f64,
    /// Status of injected errors (503 `service_unavailable` by default).
    pub error_status: u16,
    /// `Retry-After` sent with injected errors, when set.
    pub retry_after_secs: Option<u64>,
    /// Share of requests never answered (until the client gives up or the simulator stops).
    pub hang_rate: f64,
    /// Share of requests whose connection is closed without an answer.
    pub drop_rate: f64,
    /// Seed of the fault RNG; random when absent.
    pub seed: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            error_rate: 0.0,
            error_status: 503,
            retry_after_secs: None,
            hang_rate: 0.0,
            drop_rate: 0.0,
            seed: None,
        }
    }
}

/// The fault the dice chose for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Hang,
    Drop,
    Error,
}

/// One scripted fault of the fault plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Method to match (`GET`, `POST`, ...); any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// A piece of the raw path to match (a route, a workspace id); any path when absent.
    #[serde(default)]
    pub path_contains: Option<String>,
    /// How many matching requests it applies to; every one when absent.
    #[serde(default)]
    pub times: Option<u32>,
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule applying `action` to every request.
    pub fn always(action: FaultAction) -> Self {
        Self {
            method: None,
            path_contains: None,
            times: None,
            action,
        }
    }

    /// Only requests with this method.
    #[must_use]
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    /// Only requests whose raw path contains `fragment`.
    #[must_use]
    pub fn path(mut self, fragment: &str) -> Self {
        self.path_contains = Some(fragment.to_owned());
        self
    }

    /// Only the next `n` matching requests.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.times != Some(0)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|fragment| path.contains(fragment))
    }
}

/// What a [`FaultRule`] does to a request it matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum FaultAction {
    /// Waits `ms`, then answers normally.
    Delay { ms: u64 },
    /// Answers an error envelope with this status (and `Retry-After` when set).
    Status {
        status: u16,
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Never answers (until the client gives up or the simulator stops).
    Hang,
    /// Closes the connection without an answer (the client sees a reset).
    Drop,
    /// Runs the handler (so the request takes effect), then closes the connection without
    /// its answer: the case where a retry would do the thing twice.
    LoseAnswer,
    /// Answers 200 with a body that is not JSON.
    Malformed,
    /// Answers 200 with a JSON-looking body of `bytes` bytes, streamed without a length.
    Oversized { bytes: u64 },
    /// Answers 307 to `location` (another host, for the "key never leaves" test).
    Redirect { location: String },
    /// Runs the handler, then passes on the first `after_events` data frames of its event
    /// stream and breaks the connection in the middle of the next one.
    CutStream { after_events: usize },
}

/// The current faults, their RNG and the fault plan.
#[derive(Debug)]
pub(crate) struct FaultState {
    random: Mutex<(Faults, StdRng)>,
    plan: Mutex<Vec<FaultRule>>,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = rng_for(&faults);
        Self {
            random: Mutex::new((faults, rng)),
            plan: Mutex::default(),
        }
    }

    /// Appends a rule to the fault plan.
    pub(crate) fn push_rule(&self, rule: FaultRule) {
        self.plan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rule);
    }

    /// Empties the fault plan.
    pub(crate) fn clear_plan(&self) {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub(crate) fn plan(&self) -> Vec<FaultRule> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The action of the first rule matching this request, using up one of its `times`.
    fn planned(&self, method: &str, path: &str) -> Option<FaultAction> {
        let mut plan = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        let rule = plan.iter_mut().find(|rule| rule.matches(method, path))?;
        if let Some(times) = &mut rule.times {
            *times -= 1;
        }
        Some(rule.action.clone())
    }

    /// Replaces the faults (and reseeds the RNG).
    pub(crate) fn set(&self, faults: Faults) {
        let rng = rng_for(&faults);
        *self.random.lock().unwrap_or_else(|e| e.into_inner()) = (faults, rng);
    }

    pub(crate) fn get(&self) -> Faults {
        self.random
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Rolls the dice for one request: three draws, always, so a seed gives a stable sequence.
    fn roll(&self) -> (Faults, Fault) {
        let mut guard = self.random.lock().unwrap_or_else(|e| e.into_inner());
        let (faults, rng) = &mut *guard;
        let (hang, drop, error): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
        let fault = if hang < faults.hang_rate {
            Fault::Hang
        } else if drop < faults.drop_rate {
            Fault::Drop
        } else if error < faults.error_rate {
            Fault::Error
        } else {
            Fault::None
        };
        (faults.clone(), fault)
    }
}

fn rng_for(faults: &Faults) -> StdRng {
    match faults.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_rng(&mut rand::rng()),
    }
}

/// Middleware for `/api/*`: applies the current faults before the real handler runs.
pub(crate) async fn inject_faults(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let planned = state
        .faults
        .planned(request.method().as_str(), request.uri().path());
    if let Some(action) = planned {
        return apply(&state, action, request, next).await;
    }
    let (faults, fault) = state.faults.roll();
    if faults.latency_ms > 0 {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(faults.latency_ms)) => {}
            () = state.shutdown.cancelled() => return dropped_connection(),
        }
    }
    match fault {
        Fault::None => next.run(request).await,
        Fault::Hang => {
            state.shutdown.cancelled().await;
            dropped_connection()
        }
        Fault::Drop => dropped_connection(),
        Fault::Error => injected_error(&faults),
    }
}

/// Applies a planned fault.
async fn apply(state: &AppState, action: FaultAction, request: Request, next: Next) -> Response {
    match action {
        FaultAction::Delay { ms } => {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => next.run(request).await,
                () = state.shutdown.cancelled() => dropped_connection(),
            }
        }
        FaultAction::Status {
            status,
            retry_after_secs,
        } => error_response(status, retry_after_secs),
        FaultAction::Hang => {
            state.shutdown.cancelled().await;
            dropped_connection()
        }
        FaultAction::Drop => dropped_connection(),
        FaultAction::LoseAnswer => {
            let _answer = next.run(request).await;
            dropped_connection()
        }
        FaultAction::Malformed => json_200(Body::from("<html><body>Bad gateway</body></html>")),
        FaultAction::Oversized { bytes } => json_200(oversized_body(bytes)),
        FaultAction::Redirect { location } => Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(axum::http::header::LOCATION, location)
            .body(Body::empty())
            .unwrap_or_else(|_| dropped_connection()),
        FaultAction::CutStream { after_events } => {
            let (parts, body) = next.run(request).await.into_parts();
            Response::from_parts(parts, cut_after(body, after_events))
        }
    }
}

/// A 200 claiming JSON, with `body`.
fn json_200(body: Body) -> Response {
    Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap_or_else(|_| dropped_connection())
}

/// `{"x":"aaaa…"}` of `bytes` bytes, produced 64 KiB at a time (never held whole).
fn oversized_body(bytes: u64) -> Body {
    const CHUNK: u64 = 64 * 1024;
    let head = axum::body::Bytes::from_static(b"{\"x\":\"");
    let filler = axum::body::Bytes::from(vec![b'a'; CHUNK as usize]);
    let chunks = bytes.div_ceil(CHUNK);
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(head) })
        .chain(futures::stream::iter(0..chunks).map(move |_| Ok(filler.clone())));
    Body::from_stream(body)
}

/// Passes on `after_events` data frames, then half of the next one, then breaks the
/// connection: a stream dropped mid-answer, mid-frame.
fn cut_after(body: Body, after_events: usize) -> Body {
    /// How long the half frame is given to leave hyper's write buffer before the break (an
    /// error drops whatever is still buffered).
    const FLUSH: Duration = Duration::from_millis(50);
    #[derive(Clone, Copy)]
    enum Phase {
        Passing(usize),
        Breaking,
        Done,
    }
    let stream = body.into_data_stream();
    let cut = futures::stream::unfold(
        (stream, Phase::Passing(0)),
        move |(mut stream, phase)| async move {
            match phase {
                Phase::Done => None,
                Phase::Breaking => {
                    tokio::time::sleep(FLUSH).await;
                    let error = std::io::Error::other("simulated cut stream");
                    Some((Err(error), (stream, Phase::Done)))
                }
                Phase::Passing(seen) => match stream.next().await? {
                    Err(error) => Some((Err(std::io::Error::other(error)), (stream, Phase::Done))),
                    Ok(chunk) if chunk.starts_with(b"data: {") && seen >= after_events => {
                        // Let the frames before it leave first, so the cut is mid-frame.
                        tokio::time::sleep(FLUSH).await;
                        let half = chunk.slice(..chunk.len() / 2);
                        Some((Ok(half), (stream, Phase::Breaking)))
                    }
                    Ok(chunk) => {
                        let seen = seen + usize::from(chunk.starts_with(b"data: {"));
                        Some((Ok(chunk), (stream, Phase::Passing(seen))))
                    }
                },
            }
        },
    );
    Body::from_stream(cut)
}

fn injected_error(faults: &Faults) -> Response {
    error_response(faults.error_status, faults.retry_after_secs)
}

fn error_response(status: u16, retry_after_secs: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let (kind, message) = match status.as_u16() {
        429 => ("rate_limit_error", "Too many requests (simulated)."),
        500 => (
            "internal_server_error",
            "Unhandled internal server error: simulated fault",
        ),
        _ => (
            "service_unavailable",
            "Service is currently unavailable (simulated fault).",
        ),
    };
    ApiError::new(status, kind, message)
        .with_retry_after(retry_after_secs)
        .into_response()
}

/// A response whose body fails before its first byte: hyper then closes the connection
/// without writing the (still buffered) head, so the client sees a connection reset.
fn dropped_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<axum::body::Bytes, _>(std::io::Error::other("simulated dropped connection"))
    });
    Response::new(Body::from_stream(failing))
}

/// `GET /_sim/faults`: the current faults.
pub(crate) async fn get_faults(State(state): State<AppState>) -> Json<Faults> {
    Json(state.faults.get())
}

/// `POST /_sim/faults`: replaces the faults (absent members take their defaults).
pub(crate) async fn set_faults(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let parsed = parse_json(&body).and_then(|value| {
        serde_json::from_value::<Faults>(value)
            .map_err(|e| ApiError::invalid_request(format!("Invalid faults: {e}")))
    });
    match parsed {
        Ok(faults) => {
            state.faults.set(faults.clone());
            Json(faults).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /_sim/fault-plan`: the rules still in the plan.
pub(crate) async fn get_plan(State(state): State<AppState>) -> Json<Vec<FaultRule>> {
    Json(state.faults.plan())
}

/// `POST /_sim/fault-plan`: appends one rule.
pub(crate) async fn push_rule(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let parsed = parse_json(&body).and_then(|value| {
        serde_json::from_value::<FaultRule>(value)
            .map_err(|e| ApiError::invalid_request(format!("Invalid fault rule: {e}")))
    });
    match parsed {
        Ok(rule) => {
            state.faults.push_rule(rule.clone());
            Json(rule).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `DELETE /_sim/fault-plan`: empties the plan.
pub(crate) async fn clear_plan(State(state): State<AppState>) -> StatusCode {
    state.faults.clear_plan();
    StatusCode::NO_CONTENT
}
