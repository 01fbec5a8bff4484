//! Fault injection on the `/api/*` routes: latency, errors, hangs and dropped connections.
//!
//! The reliability work of the MCP server (timeouts, retries, reconnects) needs a Dust that
//! misbehaves on demand and reproducibly: with a seed, the sequence of faults is the same on
//! every run. Faults can be changed while running with `POST /_sim/faults` or
//! [`SimHandle::set_faults`](super::SimHandle::set_faults).

use std::{sync::Mutex, time::Duration};

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

/// The current faults and their RNG.
#[derive(Debug)]
pub(crate) struct FaultState(Mutex<(Faults, StdRng)>);

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = rng_for(&faults);
        Self(Mutex::new((faults, rng)))
    }

    /// Replaces the faults (and reseeds the RNG).
    pub(crate) fn set(&self, faults: Faults) {
        let rng = rng_for(&faults);
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = (faults, rng);
    }

    pub(crate) fn get(&self) -> Faults {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// Rolls the dice for one request: three draws, always, so a seed gives a stable sequence.
    fn roll(&self) -> (Faults, Fault) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
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

fn injected_error(faults: &Faults) -> Response {
    let status =
        StatusCode::from_u16(faults.error_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
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
        .with_retry_after(faults.retry_after_secs)
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
