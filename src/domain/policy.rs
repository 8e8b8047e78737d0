//! The closed sets a policy is built from (effect, subject type, resource type) and its name.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::NameError;

closed_enum!(
    /// What a matching policy decides.
    Effect, "effect" {
        Allow = "allow",
        Deny = "deny",
    }
);

closed_enum!(
    /// Who a policy subject names.
    SubjectType, "subject_type" {
        /// Every authenticated caller; carries no value.
        Everyone = "everyone",
        Role = "role",
        Group = "group",
        /// A user, by id or by email.
        User = "user",
    }
);

closed_enum!(
    /// Which kind of item a policy covers.
    ResourceType, "resource_type" {
        /// Tools, resources and prompts alike.
        All = "all",
        Tool = "tool",
        Resource = "resource",
        Prompt = "prompt",
    }
);

/// A policy name: 1–64 of `a-z`, `0-9`, `-` and `_`. Names are the identity `policy apply`
/// matches on, so they are kept to a shape that survives YAML and shells unquoted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PolicyName(String);

impl PolicyName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(NameError {
                field: "name",
                message: format!(
                    "{raw:?} is not a valid policy name: use 1 to 64 of a-z, 0-9, '-' and '_'"
                ),
            })
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PolicyName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Self::parse(&s)
    }
}

impl From<PolicyName> for String {
    fn from(v: PolicyName) -> Self {
        v.0
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_enums_and_names() {
        assert_eq!(Effect::parse("deny").unwrap(), Effect::Deny);
        assert_eq!(
            SubjectType::parse("team").unwrap_err().field,
            "subject_type"
        );
        assert_eq!(
            ResourceType::parse("tools").unwrap_err().field,
            "resource_type"
        );
        assert!(PolicyName::parse("admin-all_2").is_ok());
        for bad in ["", "Admin", "a b", "a.b", &"x".repeat(65)] {
            assert_eq!(PolicyName::parse(bad).unwrap_err().field, "name", "{bad:?}");
        }
    }
}
