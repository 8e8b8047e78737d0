//! Each caller's merged lists: filtered by their policies, renamed and merged across targets,
//! kept until the policies, the targets or an upstream's list change. A warm `tools/list` (and
//! every further page of it) is a lookup and a page copy; no policy decision runs again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::auth::Principal;
use crate::domain::UserId;

use super::Target;
use super::lists::ListKind;

/// Items kept over all callers. Past it the cache starts over: the next lists rebuild.
const MAX_ITEMS: usize = 200_000;

/// What a merged list was built from. It is valid for a request that sees exactly the same.
pub struct Sources {
    pub policy_revision: u64,
    /// The caller as policies see them: user, email, role, groups.
    pub principal: Principal,
    /// Each contributing target and the upstream list (an `Arc` held here, so comparing
    /// pointers is safe: the allocation cannot be reused while this entry lives).
    pub upstream: Vec<(Arc<Target>, Arc<Vec<Value>>)>,
}

impl Sources {
    fn same(&self, other: &Sources) -> bool {
        let (a, b) = (&self.principal, &other.principal);
        self.policy_revision == other.policy_revision
            && a.user_id == b.user_id
            && a.email == b.email
            && a.role == b.role
            && a.groups == b.groups
            && self.upstream.len() == other.upstream.len()
            && self
                .upstream
                .iter()
                .zip(&other.upstream)
                .all(|((ta, la), (tb, lb))| Arc::ptr_eq(ta, tb) && Arc::ptr_eq(la, lb))
    }
}

/// One caller's merged list.
pub struct Merged {
    pub sources: Sources,
    pub items: Vec<Value>,
}

#[derive(Default)]
pub struct ListCache {
    entries: RwLock<HashMap<(ListKind, UserId), Arc<Merged>>>,
    items: AtomicUsize,
}

impl ListCache {
    /// The caller's merged list of `kind`, if it was built from exactly `sources`.
    pub fn get(&self, kind: ListKind, sources: &Sources) -> Option<Arc<Merged>> {
        let entries = self.entries.read().unwrap();
        entries
            .get(&(kind, sources.principal.user_id))
            .filter(|m| m.sources.same(sources))
            .cloned()
    }

    pub fn put(&self, kind: ListKind, merged: Arc<Merged>) {
        let mut entries = self.entries.write().unwrap();
        let added = merged.items.len();
        if self.items.load(Ordering::Relaxed) + added > MAX_ITEMS {
            entries.clear();
            self.items.store(0, Ordering::Relaxed);
        }
        let key = (kind, merged.sources.principal.user_id);
        if let Some(old) = entries.insert(key, merged) {
            self.items.fetch_sub(old.items.len(), Ordering::Relaxed);
        }
        self.items.fetch_add(added, Ordering::Relaxed);
    }

    /// Drops every entry (targets or policies changed: none is valid any more).
    pub fn clear(&self) {
        let mut entries = self.entries.write().unwrap();
        entries.clear();
        entries.shrink_to_fit();
        self.items.store(0, Ordering::Relaxed);
    }

    /// Items held (the footprint and the memory tests read it).
    pub fn len(&self) -> usize {
        self.items.load(Ordering::Relaxed)
    }
}
