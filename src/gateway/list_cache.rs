//! Each caller's merged lists: filtered by their policies, renamed and merged across targets,
//! kept until the policies, the targets or an upstream's list change. A warm `tools/list` (and
//! every further page of it) is a lookup and a copy of the page's JSON text, serialized the
//! first time the page was asked for; no policy decision runs and no item is copied again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::Value;
use serde_json::value::RawValue;

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
    page_size: usize,
    /// Each page's items as a JSON array, serialized on first use.
    pages: Vec<OnceLock<Arc<RawValue>>>,
}

impl Merged {
    pub fn new(sources: Sources, items: Vec<Value>, page_size: usize) -> Self {
        let page_size = page_size.max(1);
        Self {
            sources,
            pages: (0..items.len().div_ceil(page_size))
                .map(|_| OnceLock::new())
                .collect(),
            items,
            page_size,
        }
    }

    /// The items from `offset` on (at most a page of them) as a JSON array, and where the
    /// next page starts if any remain. A page that starts on a page boundary (every offset
    /// reflow's own cursors carry) is serialized once and kept.
    pub fn page(&self, offset: usize) -> (Arc<RawValue>, Option<usize>) {
        let end = offset.saturating_add(self.page_size).min(self.items.len());
        let next = (end < self.items.len()).then_some(end);
        let serialize = || {
            let items = self.items.get(offset..end).unwrap_or_default();
            Arc::from(serde_json::value::to_raw_value(items).expect("JSON values serialize"))
        };
        let text = match self.pages.get(offset / self.page_size) {
            Some(slot) if offset.is_multiple_of(self.page_size) => {
                slot.get_or_init(serialize).clone()
            }
            _ => serialize(),
        };
        (text, next)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(n: usize, page_size: usize) -> Merged {
        let sources = Sources {
            policy_revision: 1,
            principal: Principal::test_admin(),
            upstream: Vec::new(),
        };
        let items = (0..n).map(|i| json!({ "name": format!("t{i}") })).collect();
        Merged::new(sources, items, page_size)
    }

    fn names(text: &RawValue) -> Vec<String> {
        let items: Vec<Value> = serde_json::from_str(text.get()).unwrap();
        items
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn pages_are_the_items_and_are_serialized_once() {
        let m = merged(5, 2);
        let (first, next) = m.page(0);
        assert_eq!(names(&first), ["t0", "t1"]);
        assert_eq!(next, Some(2));
        let (again, _) = m.page(0);
        assert!(Arc::ptr_eq(&first, &again), "a page's text is kept");
        let (last, next) = m.page(4);
        assert_eq!((names(&last), next), (vec!["t4".to_string()], None));
        // An offset off the page grid (a cursor from a differently configured replica) is
        // served, just not kept.
        let (odd, next) = m.page(1);
        assert_eq!(
            (names(&odd), next),
            (vec!["t1".into(), "t2".into()], Some(3))
        );
        assert!(!Arc::ptr_eq(&odd, &m.page(1).0));
        for past in [5, 6, usize::MAX] {
            let (text, next) = m.page(past);
            assert_eq!((text.get(), next), ("[]", None));
        }
        assert_eq!(merged(0, 500).page(0).0.get(), "[]");
    }
}
