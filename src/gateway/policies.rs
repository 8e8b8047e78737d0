//! The compiled policy set the data path decides with, swapped whole on reload, and its
//! revision: caches of per-caller results (lists) are valid for one revision only.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::auth::Principal;
use crate::domain::TargetId;
use crate::policy::{Decision, ItemType, PolicySet, Subject};
use crate::store::{PolicyRecord, Store, StoreError};

/// One compiled revision.
pub struct Compiled {
    /// Counts reloads that changed something; never reused, unlike a pointer.
    pub revision: u64,
    pub set: PolicySet,
}

pub struct Policies {
    current: ArcSwap<Compiled>,
    /// The records the current set was compiled from, to tell whether a reload changed anything.
    records: tokio::sync::Mutex<Vec<PolicyRecord>>,
}

pub(super) fn subject(p: &Principal) -> Subject<'_> {
    Subject {
        user_id: p.user_id,
        email: p.email.as_str(),
        role: p.role.as_str(),
        groups: &p.groups,
    }
}

impl Policies {
    pub fn new() -> Self {
        Self {
            current: ArcSwap::from_pointee(Compiled {
                revision: 0,
                set: PolicySet::compile(&[]).expect("an empty set compiles"),
            }),
            records: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// The current revision, for callers that decide many times (a list): one load, no
    /// reference count traffic per decision.
    pub fn load(&self) -> arc_swap::Guard<Arc<Compiled>> {
        self.current.load()
    }

    /// Compiles the stored policies into a new revision; true if they changed.
    pub async fn reload(&self, store: &Store) -> Result<bool, StoreError> {
        let records = store.list_policies().await?;
        let mut last = self.records.lock().await;
        if *last == records {
            return Ok(false);
        }
        match PolicySet::compile(&records) {
            Ok(set) => {
                let revision = self.current.load().revision + 1;
                self.current.store(Arc::new(Compiled { revision, set }));
            }
            // Validation keeps bad policies out; if one got in anyway, keep the last good set.
            Err(e) => {
                tracing::error!(error = %e, "policies do not compile; keeping the previous set");
                return Ok(false);
            }
        }
        *last = records;
        Ok(true)
    }
}

impl Compiled {
    pub fn target_visible(&self, principal: &Principal, target: TargetId) -> bool {
        self.set.target_visible(&subject(principal), target)
    }

    pub fn decide(
        &self,
        principal: &Principal,
        target: TargetId,
        item: ItemType,
        name: &str,
    ) -> Decision {
        self.set.decide(&subject(principal), target, item, name)
    }
}
