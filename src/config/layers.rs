//! The machinery behind layering: the defaults and schema trees, the YAML file with `${VAR}`
//! expansion, unknown-key checks naming the dotted path, merging, and environment values.

use super::*;

pub(super) fn defaults_tree() -> Value {
    serde_json::to_value(Settings::default()).expect("default settings serialize")
}

/// The defaults tree plus the leaves of sections that default to absent, so
/// key checking and env mapping also cover `auth.oidc.*`.
pub(super) fn schema_tree() -> Value {
    let mut tree = defaults_tree();
    let oidc = OidcSettings {
        issuer: String::new(),
        audience: String::new(),
        jwks_url: None,
        role_claim: default_role_claim(),
        groups_claim: default_groups_claim(),
    };
    tree["auth"]["oidc"] = serde_json::to_value(oidc).expect("oidc settings serialize");
    // Optional, but a boolean when set: its env variable reads as one.
    tree["auth"]["allow_registration"] = Value::Bool(true);
    tree
}

pub(super) fn parse_file(
    text: &str,
    path: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Value, ConfigError> {
    let expanded = expand_vars(text, env).map_err(|e| match e {
        ExpandError::Undefined(var) => ConfigError::UndefinedVariable(var),
        ExpandError::Unterminated(line) => ConfigError::Yaml {
            path: path.to_path_buf(),
            message: format!("line {line}: unterminated ${{ (write $$ for a literal $)"),
        },
    })?;
    let value: Value = serde_saphyr::from_str(&expanded).map_err(|e| ConfigError::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        _ => Err(ConfigError::Yaml {
            path: path.to_path_buf(),
            message: "the top level must be a mapping of settings".into(),
        }),
    }
}

pub(super) enum ExpandError {
    Undefined(String),
    Unterminated(usize),
}

/// Expands `${VAR}` / `${VAR:-default}` and turns `$$` into `$`. Whole-line
/// comments are left alone so commented-out examples need no variables set.
pub(super) fn expand_vars(
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{') {
                let end = body.find('}').ok_or(ExpandError::Unterminated(n + 1))?;
                let (name, default) = match body[..end].split_once(":-") {
                    Some((name, default)) => (name, Some(default)),
                    None => (&body[..end], None),
                };
                match (env.get(name), default) {
                    (Some(v), _) => out.push_str(v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => return Err(ExpandError::Undefined(name.to_string())),
                }
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Rejects keys that are not settings, with the full dotted path, before
/// serde's message (which names only the last segment) would.
pub(super) fn check_keys(
    schema: &Value,
    value: &Value,
    prefix: &str,
    layer: &Layer,
) -> Result<(), ConfigError> {
    let (Value::Object(known), Value::Object(given)) = (schema, value) else {
        return Ok(());
    };
    for (key, v) in given {
        let path = join(prefix, key);
        match known.get(key) {
            Some(s) => check_keys(s, v, &path, layer)?,
            None => {
                return Err(ConfigError::UnknownKey {
                    key: path,
                    layer: layer.to_string(),
                    expected: known.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
    }
    Ok(())
}

pub(super) fn merge(
    base: &mut Value,
    overlay: Value,
    path: &str,
    layer: &Layer,
    sources: &mut BTreeMap<String, Layer>,
) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, v) in overlay {
                let child = join(path, &key);
                merge(
                    base.entry(key).or_insert(Value::Null),
                    v,
                    &child,
                    layer,
                    sources,
                );
            }
        }
        // An empty section (`server:` with everything commented out) means "no changes".
        (Value::Object(_), Value::Null) => {}
        (base, overlay) => {
            *base = overlay;
            sources.insert(path.to_string(), layer.clone());
        }
    }
}

pub(super) fn collect_leaves<'a>(
    tree: &'a Value,
    prefix: &str,
    out: &mut Vec<(String, &'a Value)>,
) {
    match tree {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| collect_leaves(v, &join(prefix, k), out)),
        leaf => out.push((prefix.to_string(), leaf)),
    }
}

/// Interprets an env string by the type of the setting it targets, so a
/// numeric-looking secret or host stays a string.
pub(super) fn env_value(raw: &str, template: &Value) -> Value {
    match template {
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Value::from)
                .collect(),
        ),
        Value::Number(_) | Value::Bool(_) => serde_saphyr::from_str::<Value>(raw)
            .ok()
            .filter(|v| v.is_number() || v.is_boolean())
            .unwrap_or_else(|| Value::from(raw)),
        // Optional settings: an empty variable means "unset", as shells often export empties.
        Value::Null if raw.is_empty() => Value::Null,
        _ => Value::from(raw),
    }
}

pub(super) fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let mut segments = path.split('.').peekable();
    while let Some(seg) = segments.next() {
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
        // A non-object here came from the file; leave it so deserialization reports it.
        let Value::Object(map) = node else { return };
        if segments.peek().is_none() {
            map.insert(seg.to_string(), value);
            return;
        }
        node = map.entry(seg.to_string()).or_insert(Value::Null);
    }
}

pub(super) fn layer_of<'a>(sources: &'a BTreeMap<String, Layer>, key: &str) -> Option<&'a Layer> {
    let key = key.split('[').next().unwrap_or(key);
    let mut prefix = key;
    loop {
        if let Some(layer) = sources.get(prefix) {
            return Some(layer);
        }
        match prefix.rsplit_once('.') {
            Some((parent, _)) => prefix = parent,
            None => break,
        }
    }
    // A missing-field error names the section; blame whichever layer created it.
    let nested = format!("{key}.");
    sources
        .iter()
        .find(|(k, _)| k.starts_with(&nested))
        .map(|(_, l)| l)
}
