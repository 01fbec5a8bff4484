//! The live-token cap (K13) over any [`TokenStore`] backend: a rule of the caller's
//! ([`save_capped`]), checked against memory here and against Redis in
//! `tests/all/shared_state.rs`. The store's own contract is `store::tokens::contract`.

use super::{MAX_LIVE_TOKENS_PER_USER, new_token_id, save_capped};
use crate::store::tokens::{
    TokenStore,
    contract::{NOW, record},
};

/// Saves more than the cap for one user and checks that the oldest live tokens went.
///
/// # Panics
/// On any departure from the rule.
pub async fn live_token_cap(store: &dyn TokenStore) {
    let ws = new_token_id();
    let capped_user = new_token_id();
    let mut ids = Vec::new();
    for i in 0..MAX_LIVE_TOKENS_PER_USER + 2 {
        let r = record(&ws, &capped_user, 100 - i64::try_from(i).unwrap(), 3600);
        ids.push(r.token_id.clone());
        save_capped(store, r, MAX_LIVE_TOKENS_PER_USER, NOW)
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .count_live_for_user(&ws, &capped_user, NOW)
            .await
            .unwrap(),
        MAX_LIVE_TOKENS_PER_USER
    );
    for old in &ids[..2] {
        let r = store.get(old, NOW).await.unwrap().unwrap();
        assert_eq!(
            r.revoked_at,
            Some(NOW),
            "the oldest tokens are revoked first"
        );
    }
    assert!(
        store
            .get(ids.last().unwrap(), NOW)
            .await
            .unwrap()
            .unwrap()
            .is_live(NOW)
    );
}
