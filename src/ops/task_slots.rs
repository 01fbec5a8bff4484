//! How many agent tasks one principal may have running at once, on this instance.
//!
//! A task (`ask_agent` under the MCP Tasks extension) holds nothing on the server while its run
//! goes on in Dust, so the bulkhead that bounds calls in flight does not see it; without a bound
//! of its own, a client looping on tasks could start any number of Dust runs. Each instance
//! remembers the runs it started per principal until they are seen to end (`tasks/get`,
//! `tasks/cancel`) or their task expires; a principal at [`MAX_TASKS_RUNNING`] is asked Dust
//! whether the runs it remembers still run before a new one is refused. The bound is per
//! instance, like the bulkhead's; memory is bounded by [`MAX_TASKS_RUNNING`] runs per principal
//! and [`MAX_PRINCIPALS`] principals.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Agent tasks one principal may have running at once (per instance).
pub const MAX_TASKS_RUNNING: usize = 8;

/// Principals remembered at once; beyond it, those with no live run are forgotten first, and a
/// new principal is refused a slot until some are.
pub const MAX_PRINCIPALS: usize = 4096;

/// One remembered run: where it is, and until when its task lives.
#[derive(Debug, Clone)]
struct Running {
    conversation_id: String,
    message_id: String,
    until: Instant,
}

/// The runs each principal started as tasks here.
#[derive(Debug, Default)]
pub struct TaskSlots {
    running: Mutex<HashMap<String, Vec<Running>>>,
}

impl TaskSlots {
    /// The runs of `user_id` that may still be going: `(conversation_id, message_id)`.
    pub fn live(&self, user_id: &str) -> Vec<(String, String)> {
        let now = Instant::now();
        let Ok(mut running) = self.running.lock() else {
            return Vec::new();
        };
        let Some(runs) = running.get_mut(user_id) else {
            return Vec::new();
        };
        runs.retain(|r| r.until > now);
        runs.iter()
            .map(|r| (r.conversation_id.clone(), r.message_id.clone()))
            .collect()
    }

    /// Remembers a run `user_id` started as a task living `ttl`. `false` when it cannot be
    /// remembered (the principal is at the bound, or too many principals are), and the task
    /// must not start.
    pub fn start(
        &self,
        user_id: &str,
        conversation_id: &str,
        message_id: &str,
        ttl: Duration,
    ) -> bool {
        let now = Instant::now();
        let Ok(mut running) = self.running.lock() else {
            return false;
        };
        if running.len() >= MAX_PRINCIPALS && !running.contains_key(user_id) {
            running.retain(|_, runs| {
                runs.retain(|r| r.until > now);
                !runs.is_empty()
            });
            if running.len() >= MAX_PRINCIPALS {
                return false;
            }
        }
        let runs = running.entry(user_id.to_owned()).or_default();
        runs.retain(|r| r.until > now);
        if runs.len() >= MAX_TASKS_RUNNING {
            return false;
        }
        runs.push(Running {
            conversation_id: conversation_id.to_owned(),
            message_id: message_id.to_owned(),
            until: now + ttl,
        });
        true
    }

    /// How many principals are remembered (the `store_entries` gauge).
    pub fn principals(&self) -> usize {
        self.running.lock().map_or(0, |r| r.len())
    }

    /// Forgets a run of `user_id` that ended (or was cancelled).
    pub fn ended(&self, user_id: &str, message_id: &str) {
        if let Ok(mut running) = self.running.lock()
            && let Some(runs) = running.get_mut(user_id)
        {
            runs.retain(|r| r.message_id != message_id);
            if runs.is_empty() {
                running.remove(user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_principal_is_bounded_until_a_run_ends_and_others_are_not() {
        let slots = TaskSlots::default();
        for i in 0..MAX_TASKS_RUNNING {
            assert!(slots.start("usr_a", "c", &format!("m{i}"), HOUR));
        }
        assert!(!slots.start("usr_a", "c", "one-more", HOUR));
        assert!(slots.start("usr_b", "c", "m0", HOUR));
        assert_eq!(slots.live("usr_a").len(), MAX_TASKS_RUNNING);
        slots.ended("usr_a", "m3");
        assert!(slots.start("usr_a", "c", "one-more", HOUR));
    }

    #[test]
    fn an_expired_task_frees_its_slot() {
        let slots = TaskSlots::default();
        for i in 0..MAX_TASKS_RUNNING {
            assert!(slots.start("usr_a", "c", &format!("m{i}"), Duration::ZERO));
        }
        assert!(slots.live("usr_a").is_empty());
        assert!(slots.start("usr_a", "c", "fresh", HOUR));
    }
}
