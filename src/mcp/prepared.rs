//! A JSON-RPC response whose result carries one member already serialized (a cached list
//! page): written out by copying those bytes, never rebuilt as a `Value` tree and walked again.

use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A result object with one member held as JSON text: `{<key>: <raw>, …members}`.
#[derive(Clone, Debug)]
pub struct PreparedResult {
    /// The member held as JSON text (e.g. `tools`: a list page's items).
    pub key: &'static str,
    pub raw: Arc<RawValue>,
    /// The result's other, small members (`nextCursor`; the 2026 era's `resultType`, …).
    pub members: Map<String, Value>,
}

impl PartialEq for PreparedResult {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.raw.get() == other.raw.get() && self.members == other.members
    }
}

impl Serialize for PreparedResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1 + self.members.len()))?;
        map.serialize_entry(self.key, &*self.raw)?;
        for (k, v) in &self.members {
            if k != self.key {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// `{"jsonrpc":"2.0","id":…,"result":<result>}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    pub id: Value,
    pub result: PreparedResult,
}

impl Serialize for Prepared {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("jsonrpc", "2.0")?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("result", &self.result)?;
        map.end()
    }
}

impl Prepared {
    /// The response as JSON text.
    pub fn to_json(&self) -> String {
        let r = &self.result;
        let mut out = Vec::with_capacity(r.raw.get().len() + 64 + 32 * r.members.len());
        serde_json::to_writer(&mut out, self).expect("JSON values always serialize");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// The response as a tree, for the rare path that edits or keeps messages as values.
    pub fn into_value(self) -> Value {
        let r = self.result;
        let items: Value =
            serde_json::from_str(r.raw.get()).expect("the raw member was serialized by us");
        let mut result = Map::with_capacity(1 + r.members.len());
        result.insert(r.key.into(), items);
        for (k, v) in r.members {
            result.entry(k).or_insert(v);
        }
        super::jsonrpc::response(self.id, Value::Object(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page() -> Prepared {
        let items = json!([{"name": "a\"b", "n": 1}, {"name": "ü"}]);
        let mut members = Map::new();
        members.insert("nextCursor".into(), json!("c1"));
        Prepared {
            id: json!("req-1"),
            result: PreparedResult {
                key: "tools",
                raw: Arc::from(serde_json::value::to_raw_value(&items).unwrap()),
                members,
            },
        }
    }

    #[test]
    fn writes_what_the_tree_would() {
        let p = page();
        let text = p.to_json();
        let tree = p.clone().into_value();
        assert_eq!(text, tree.to_string());
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"jsonrpc": "2.0", "id": "req-1",
                   "result": {"tools": [{"name": "a\"b", "n": 1}, {"name": "ü"}], "nextCursor": "c1"}})
        );
    }

    #[test]
    fn a_member_cannot_shadow_the_raw_one() {
        let mut p = page();
        p.result.members.insert("tools".into(), json!("forged"));
        let v: Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["result"]["tools"][0]["n"], 1);
        assert_eq!(p.into_value()["result"]["tools"][0]["n"], 1);
    }
}
