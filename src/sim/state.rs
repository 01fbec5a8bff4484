//! Shared state of a running simulator: the two workspaces, faults, the request log.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    time::Instant,
};

use tokio_util::sync::CancellationToken;

use super::{SimConfig, data, faults::FaultState, record::RequestLog, world::World};

/// A workspace the simulator serves, with the API keys valid for it.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub id: String,
    pub name: &'static str,
    /// Compared to the bearer token; never logged or echoed.
    api_key: String,
    /// Further keys of the same workspace (`SIM_EXTRA_API_KEYS`).
    extra_keys: Vec<String>,
    world: Mutex<World>,
    /// Instants of the upserts of the last minute (Dust's per-workspace upsert limit).
    pub upserts: Mutex<VecDeque<Instant>>,
    /// Instants of the file creations of the last minute (Dust's per-workspace upload limit).
    file_creations: Mutex<VecDeque<Instant>>,
}

impl Workspace {
    fn new(id: String, name: &'static str, api_key: String, world: World) -> Self {
        Self {
            id,
            name,
            api_key,
            extra_keys: Vec::new(),
            world: Mutex::new(world),
            upserts: Mutex::default(),
            file_creations: Mutex::default(),
        }
    }

    /// Locks the world. A poisoned lock is recovered: the simulator must keep answering.
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a file creation; false when `per_minute` were made in the last minute.
    pub(crate) fn allow_file_creation(&self, per_minute: usize) -> bool {
        let mut recent = self
            .file_creations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= std::time::Duration::from_secs(60))
        {
            recent.pop_front();
        }
        if recent.len() >= per_minute {
            return false;
        }
        recent.push_back(now);
        true
    }

    pub(crate) fn key_matches(&self, token: &str) -> bool {
        self.api_key == token || self.extra_keys.iter().any(|k| k == token)
    }
}

/// Everything the handlers share, behind [`AppState`].
#[derive(Debug)]
pub(crate) struct SimState {
    pub config: SimConfig,
    /// `http://host:port` of this simulator, for the conversation `url`.
    pub base_url: String,
    /// The seeded workspace first, then the other one.
    pub workspaces: [Arc<Workspace>; 2],
    pub faults: FaultState,
    pub requests: RequestLog,
    /// Cancelled at shutdown: ends hanging requests, streams and agent runs.
    pub shutdown: CancellationToken,
}

/// The router state: cheap to clone.
pub(crate) type AppState = Arc<SimState>;

impl SimState {
    pub(crate) fn new(config: SimConfig, base_url: String) -> Self {
        let mut primary = Workspace::new(
            config.workspace_id.clone(),
            "Acme (simulated)",
            config.api_key.clone(),
            data::seeded_world(),
        );
        primary.extra_keys = config.extra_api_keys.clone();
        let other = Workspace::new(
            config.other_workspace_id.clone(),
            "Other Corp (simulated)",
            config.other_api_key.clone(),
            data::other_world(),
        );
        let faults = FaultState::new(config.faults());
        Self {
            config,
            base_url,
            workspaces: [Arc::new(primary), Arc::new(other)],
            faults,
            requests: RequestLog::default(),
            shutdown: CancellationToken::new(),
        }
    }

    pub(crate) fn workspace_by_id(&self, w_id: &str) -> Option<&Arc<Workspace>> {
        self.workspaces.iter().find(|w| w.id == w_id)
    }

    pub(crate) fn workspace_by_key(&self, token: &str) -> Option<&Arc<Workspace>> {
        self.workspaces.iter().find(|w| w.key_matches(token))
    }
}
