//! A bulkhead per principal: how many tool calls one caller may have running at once.
//!
//! Agent runs last up to `MCP_SERVER_TIMEOUT`; without a bound, one client looping on
//! `ask_agent` could hold every connection to Dust and starve everyone else. Each principal gets
//! [`MAX_CALLS_IN_FLIGHT`] slots; a call beyond them is answered at once with a tool error the
//! model can act on (wait for a call to finish), and nothing reaches Dust.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Tool calls one principal may have running at the same time.
pub const MAX_CALLS_IN_FLIGHT: usize = 8;

/// Slots per principal `user_id`. Idle entries (all slots free) are dropped as new ones come.
#[derive(Debug, Default)]
pub struct Bulkhead {
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Bulkhead {
    /// A slot for `user_id`, or `None` when all of its slots are taken.
    pub fn try_enter(&self, user_id: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut slots = self.slots.lock().ok()?;
            if slots.len() > 1024 {
                slots.retain(|_, s| s.available_permits() < MAX_CALLS_IN_FLIGHT);
            }
            slots
                .entry(user_id.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(MAX_CALLS_IN_FLIGHT)))
                .clone()
        };
        semaphore.try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_principal_is_bounded_and_others_are_not() {
        let bulkhead = Bulkhead::default();
        let held: Vec<_> = (0..MAX_CALLS_IN_FLIGHT)
            .map(|_| bulkhead.try_enter("usr_a").expect("a slot"))
            .collect();
        assert!(bulkhead.try_enter("usr_a").is_none());
        assert!(bulkhead.try_enter("usr_b").is_some());
        drop(held);
        assert!(bulkhead.try_enter("usr_a").is_some());
    }
}
