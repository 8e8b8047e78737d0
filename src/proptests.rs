//! Property tests of the parsers that face input (issue: resilience): the JSON-RPC envelope, the
//! `Mcp-Param` header codec, pagination cursors, exposed tool names, policy patterns,
//! `requestState` tokens and the YAML config. Each property says what must hold for every input
//! proptest can think of, most of all: no input makes a parser panic.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::gateway::cursor::Cursors;
use crate::gateway::naming::{expose, match_prefix};
use crate::gateway::request_state::RequestStates;
use crate::mcp::jsonrpc::{Kind, classify};
use crate::mcp::modern::{decode_header_value, encode_header_value};

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("jsonrpc".to_string()),
                    Just("id".to_string()),
                    Just("method".to_string()),
                    Just("params".to_string()),
                    Just("result".to_string()),
                    Just("error".to_string()),
                    ".{0,6}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn principal() -> Principal {
    Principal::test_admin()
}

proptest! {
    #[test]
    fn classify_never_panics_and_keeps_request_ids(
        v in json_value(),
        id in prop_oneof![any::<i64>().prop_map(|n| json!(n)), "[a-z0-9-]{1,12}".prop_map(Value::String)],
        method in "[a-z]{1,8}/[a-zA-Z_]{1,10}",
    ) {
        let _ = classify(&v);
        let req = json!({"jsonrpc": "2.0", "id": id.clone(), "method": method.clone(), "params": v});
        match classify(&req) {
            Kind::Request { id: got, method: m } => {
                prop_assert_eq!(got, &id);
                prop_assert_eq!(m, method.as_str());
            }
            other => prop_assert!(false, "a well-formed request classified as {:?}", other),
        }
    }

    #[test]
    fn the_header_codec_round_trips_any_text_into_a_valid_header(s in any::<String>()) {
        let encoded = encode_header_value(&s);
        prop_assert!(axum::http::HeaderValue::from_str(&encoded).is_ok(), "{:?}", encoded);
        prop_assert_eq!(decode_header_value(&encoded), Some(s));
    }

    #[test]
    fn header_decoding_never_panics(raw in any::<String>()) {
        let _ = decode_header_value(&raw);
        let _ = decode_header_value(&format!("=?base64?{raw}?="));
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else(
        offset in 0usize..1_000_000,
        junk in any::<String>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let c = Cursors::new(&[3; 32]);
        let cursor = c.encode("tools/list", offset);
        prop_assert_eq!(c.decode("tools/list", &cursor).ok(), Some(offset));
        prop_assert!(c.decode("prompts/list", &cursor).is_err(), "a cursor is bound to its list");
        prop_assert!(c.decode("tools/list", &junk).is_err() || junk == cursor);
        // Any one changed character is refused.
        let mut bytes = cursor.clone().into_bytes();
        let i = flip.index(bytes.len());
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        prop_assert!(tampered == cursor || c.decode("tools/list", &tampered).is_err());
        prop_assert!(Cursors::new(&[4; 32]).decode("tools/list", &cursor).is_err(), "another key");
    }

    #[test]
    fn exposed_names_map_back_to_their_target_and_name(
        prefixes in prop::collection::hash_set("[a-z][a-z0-9]{0,6}", 1..6),
        pick in any::<prop::sample::Index>(),
        name in "[a-zA-Z][a-zA-Z0-9_-]{0,20}",
    ) {
        let prefixes: Vec<String> = prefixes.into_iter().collect();
        let prefix = &prefixes[pick.index(prefixes.len())];
        let exposed = expose(prefix, "__", &name, 64);
        let found = match_prefix(&exposed, "__", prefixes.iter().map(String::as_str));
        // The longest matching prefix wins; with other prefixes that are prefixes of this one's
        // exposed name, the mapping must still lead back to a name that exposes to the same.
        let (p, rest) = found.expect("an exposed name has a target");
        prop_assert_eq!(expose(p, "__", &rest, 64), exposed.clone());
        let unique: HashSet<&str> = prefixes.iter().map(String::as_str).collect();
        if unique.iter().all(|q| *q == prefix.as_str() || !exposed.starts_with(&format!("{q}__"))) {
            prop_assert_eq!(p, prefix.as_str());
            prop_assert_eq!(rest, name);
        }
    }

    #[test]
    fn policy_patterns_compile_or_fail_cleanly_and_are_anchored(pattern in ".{0,24}", probe in ".{0,24}") {
        if let Ok(re) = crate::policy::compile_pattern(&pattern) {
            // Anchored: a match is a match of the whole name.
            if let Some(m) = re.find(&probe) {
                prop_assert_eq!(m.start(), 0);
                prop_assert_eq!(m.end(), probe.len());
            }
        }
    }

    #[test]
    fn request_states_refuse_every_forgery(junk in any::<String>(), flip in any::<prop::sample::Index>()) {
        let states = RequestStates::new(&[9; 32], Duration::from_secs(60));
        let p = principal();
        let params = json!({"name": "t"});
        prop_assert!(states.redeem(&junk, &p, "tools/call", Some(&params)).is_err());
        let token = states.seal(&states.claims(&p, "tools/call", Some(&params), BTreeMap::new()));
        let mut bytes = token.clone().into_bytes();
        let i = flip.index(bytes.len());
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        if tampered != token {
            prop_assert!(states.redeem(&tampered, &p, "tools/call", Some(&params)).is_err());
        }
        prop_assert!(states.redeem(&token, &p, "tools/call", Some(&params)).is_ok());
        prop_assert!(states.redeem(&token, &p, "tools/call", Some(&params)).is_err(), "used once");
    }
}

proptest! {
    // Each case writes a file: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_yaml_config_loads_or_fails_with_an_error(text in "[ -~\n]{0,120}") {
        let mut file = tempfile::Builder::new().prefix("reflow-prop-").suffix(".yaml").tempfile().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        let overrides = crate::config::Overrides {
            config_file: Some(file.path().to_path_buf()),
            ..Default::default()
        };
        let _ = crate::config::Settings::load(&overrides, &BTreeMap::new());
    }
}
