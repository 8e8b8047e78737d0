//! Exposed tool and prompt names → (target name, original name), learned when a list is built,
//! so names the gateway shortened or kept from a collision map back to the item the list showed.
//! Read on every call, written only when a caller's merged list is (re)built.

use std::collections::HashMap;
use std::sync::RwLock;

use super::lists::ListKind;

/// Names kept at most (tools and prompts of every target, many times over).
const MAX_LEARNED_NAMES: usize = 100_000;

type Key = (ListKind, String);

#[derive(Default)]
pub struct LearnedNames(RwLock<HashMap<Key, (String, String)>>);

impl LearnedNames {
    /// (target name, original name) behind an exposed name.
    pub fn get(&self, kind: ListKind, exposed: &str) -> Option<(String, String)> {
        self.0
            .read()
            .unwrap()
            .get(&(kind, exposed.to_string()))
            .cloned()
    }

    /// Upstreams whose names keep changing cannot grow the map without bound: past the cap it
    /// starts over (lists teach the names again; unshortened names route by prefix anyway).
    pub fn learn(&self, learned: Vec<(Key, (String, String))>) {
        if learned.is_empty() {
            return;
        }
        let mut names = self.0.write().unwrap();
        if names.len() + learned.len() > MAX_LEARNED_NAMES {
            names.clear();
        }
        names.extend(learned);
    }

    /// Targets changed: the names may point at changed targets; lists will teach them again.
    pub fn clear(&self) {
        self.0.write().unwrap().clear();
    }

    pub fn shrink(&self) {
        self.0.write().unwrap().shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap().len()
    }
}
