//! The simulator's settings: `mcp-dust-server sim` flags (and `SIM_*` variables).

use std::{fmt, net::SocketAddr};

use rand::Rng;

use super::faults::Faults;

/// Where `mcp-dust-server sim` listens by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:18080";

/// Settings of one simulator. Credentials are random per start unless given, so a leaked
/// banner is worthless after a restart.
#[derive(Clone, clap::Args)]
pub struct SimConfig {
    /// Address to listen on (used by the CLI; `spawn` always binds 127.0.0.1:0).
    #[arg(long, env = "SIM_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Id of the seeded workspace (10 alphanumerics). Random when not given.
    #[arg(long, env = "SIM_WORKSPACE_ID", default_value_t = random_s_id(), hide_default_value = true)]
    pub workspace_id: String,
    /// API key of the seeded workspace (`sk-` + 32 hex). Random when not given.
    #[arg(long, env = "SIM_API_KEY", default_value_t = random_api_key(), hide_default_value = true,
          hide_env_values = true, value_parser = parse_api_key)]
    pub api_key: String,
    /// More API keys of the seeded workspace, comma-separated: each is another caller of the
    /// same workspace (the load generator spreads its load over several, docs/PERFORMANCE.md).
    #[arg(long, env = "SIM_EXTRA_API_KEYS", value_delimiter = ',', hide_env_values = true,
          value_parser = parse_api_key)]
    pub extra_api_keys: Vec<String>,
    /// Id of a second, almost empty workspace (for "key of another workspace" tests).
    #[arg(long, env = "SIM_OTHER_WORKSPACE_ID", default_value_t = random_s_id(), hide_default_value = true)]
    pub other_workspace_id: String,
    /// API key of the second workspace.
    #[arg(long, env = "SIM_OTHER_API_KEY", default_value_t = random_api_key(), hide_default_value = true,
          hide_env_values = true, value_parser = parse_api_key)]
    pub other_api_key: String,
    /// Delay between two generated token events, in ms.
    #[arg(long, env = "SIM_TOKEN_DELAY_MS", default_value_t = 15)]
    pub token_delay_ms: u64,
    /// An event-stream connection lasts at most this many seconds (Dust: 60).
    #[arg(long, env = "SIM_STREAM_MAX_SECS", default_value_t = 60)]
    pub stream_max_secs: u64,
    /// Close every event-stream connection after this many events (to exercise reconnects).
    #[arg(long, env = "SIM_DROP_STREAM_AFTER")]
    pub drop_stream_after: Option<usize>,
    /// Document upserts allowed per minute and workspace before 429 (Dust: 120).
    #[arg(long, env = "SIM_UPSERT_LIMIT_PER_MINUTE", default_value_t = 120)]
    pub upsert_limit_per_minute: u32,
    /// Fault injection: delay before every `/api` answer, in ms.
    #[arg(long, env = "SIM_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Fault injection: share (0..1) of `/api` requests answered with an error.
    #[arg(long, env = "SIM_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub error_rate: f64,
    /// Fault injection: status of injected errors.
    #[arg(long, env = "SIM_ERROR_STATUS", default_value_t = 503)]
    pub error_status: u16,
    /// Fault injection: `Retry-After` seconds sent with injected errors.
    #[arg(long, env = "SIM_RETRY_AFTER_SECS")]
    pub retry_after_secs: Option<u64>,
    /// Fault injection: share (0..1) of `/api` requests never answered.
    #[arg(long, env = "SIM_HANG_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub hang_rate: f64,
    /// Fault injection: share (0..1) of `/api` requests whose connection is dropped.
    #[arg(long, env = "SIM_DROP_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub drop_rate: f64,
    /// Fault injection: RNG seed, for a reproducible sequence of faults.
    #[arg(long, env = "SIM_FAULT_SEED")]
    pub fault_seed: Option<u64>,
}

impl SimConfig {
    /// The fault settings of this config.
    pub fn faults(&self) -> Faults {
        Faults {
            latency_ms: self.latency_ms,
            error_rate: self.error_rate,
            error_status: self.error_status,
            retry_after_secs: self.retry_after_secs,
            hang_rate: self.hang_rate,
            drop_rate: self.drop_rate,
            seed: self.fault_seed,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 18080))),
            workspace_id: random_s_id(),
            api_key: random_api_key(),
            extra_api_keys: Vec::new(),
            other_workspace_id: random_s_id(),
            other_api_key: random_api_key(),
            token_delay_ms: 15,
            stream_max_secs: 60,
            drop_stream_after: None,
            upsert_limit_per_minute: 120,
            latency_ms: 0,
            error_rate: 0.0,
            error_status: 503,
            retry_after_secs: None,
            hang_rate: 0.0,
            drop_rate: 0.0,
            fault_seed: None,
        }
    }
}

/// Keys are redacted: `Debug` output ends up in logs.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field("workspace_id", &self.workspace_id)
            .field("api_key", &"[REDACTED]")
            .field(
                "extra_api_keys",
                &format_args!("[{} REDACTED]", self.extra_api_keys.len()),
            )
            .field("other_workspace_id", &self.other_workspace_id)
            .field("other_api_key", &"[REDACTED]")
            .field("token_delay_ms", &self.token_delay_ms)
            .field("stream_max_secs", &self.stream_max_secs)
            .field("drop_stream_after", &self.drop_stream_after)
            .field("upsert_limit_per_minute", &self.upsert_limit_per_minute)
            .field("faults", &self.faults())
            .finish()
    }
}

/// A 10-character alphanumeric sId, like Dust's `generateRandomModelSId()`.
pub fn random_s_id() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(10)
        .map(char::from)
        .collect()
}

/// A fresh API key: `sk-` + 32 lowercase hex characters.
pub fn random_api_key() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    format!("sk-{}", hex::encode(bytes))
}

fn parse_api_key(raw: &str) -> Result<String, String> {
    match raw.strip_prefix("sk-") {
        Some(rest) if !rest.is_empty() => Ok(raw.to_owned()),
        _ => Err("an API key starts with `sk-`".to_owned()),
    }
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err("a rate is a number between 0 and 1".to_owned()),
    }
}
