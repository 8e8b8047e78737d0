//! Validated names: emails, roles, groups, token names.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct NameError {
    pub field: &'static str,
    pub message: String,
}

impl NameError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// An email address, NFKC-normalised and lower-cased so lookups are case-insensitive and a
/// compatibility form (fullwidth `ａ`, ligatures) is the same address as its plain form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        use unicode_normalization::UnicodeNormalization;
        let email = raw.trim().nfkc().collect::<String>().to_lowercase();
        let err = |m: &str| NameError::new("email", format!("{m} (got {raw:?})"));
        if email.is_empty() {
            return Err(NameError::new("email", "is required"));
        }
        if email.len() > 254 {
            return Err(err("is longer than 254 characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(err("is not an email address: it has no @"));
        };
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(err("is not an email address"));
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(err("has no valid domain"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err("contains whitespace"));
        }
        Ok(Self(email))
    }

    /// The address of a new account: as `parse`, and ASCII only. A Cyrillic `а` or a Greek `ο`
    /// looks like its Latin twin, so such an address could pass for another user's in the UI
    /// and in the audit log; existing accounts are not affected.
    pub fn parse_new(raw: &str) -> Result<Self, NameError> {
        let email = Self::parse(raw)?;
        if let Some(c) = email.0.chars().find(|c| !c.is_ascii()) {
            return Err(NameError::new(
                "email",
                format!(
                    "contains {c:?} (U+{:04X}), which is not ASCII: new accounts use ASCII addresses, \
                     so that no address can imitate another with look-alike letters (got {raw:?})",
                    c as u32
                ),
            ));
        }
        Ok(email)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks the shape shared by roles and groups: policies and isolation keys embed them.
fn simple_name(field: &'static str, raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(NameError::new(
            field,
            format!("must be 1 to 64 characters (got {raw:?})"),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(NameError::new(
            field,
            format!("may contain only letters, digits, '-', '_' and '.' (got {raw:?})"),
        ));
    }
    Ok(name.to_string())
}

macro_rules! simple_name_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, NameError> {
                simple_name($field, raw).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> Self {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

simple_name_type!(
    /// A role. `admin` and `user` are built in; any other name may be used by policies.
    Role,
    "role"
);
simple_name_type!(
    /// A group a user belongs to.
    GroupName,
    "groups"
);

impl Role {
    pub const ADMIN: &'static str = "admin";
    pub const USER: &'static str = "user";

    pub fn admin() -> Self {
        Self(Self::ADMIN.into())
    }
    pub fn user() -> Self {
        Self(Self::USER.into())
    }
    pub fn is_admin(&self) -> bool {
        self.0 == Self::ADMIN
    }
}

/// The label of an API token, shown in listings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenName(String);

impl TokenName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(NameError::new(
                "name",
                format!("must be 1 to 100 characters (got {raw:?})"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TokenName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TokenName> for String {
    fn from(v: TokenName) -> Self {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            Email::parse(" Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@b.com",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad:?}");
        }
    }

    #[test]
    fn compatibility_forms_are_one_address_and_look_alikes_cannot_sign_up() {
        // Fullwidth letters and the fullwidth @ are NFKC-equal to their ASCII forms.
        assert_eq!(
            Email::parse("\u{ff21}lice\u{ff20}example.com")
                .unwrap()
                .as_str(),
            "alice@example.com"
        );
        assert_eq!(
            Email::parse_new("\u{ff21}LICE@Example.com")
                .unwrap()
                .as_str(),
            "alice@example.com"
        );
        // A Cyrillic а is another letter: refused for a new account, naming it.
        let err = Email::parse_new("\u{430}lice@example.com").unwrap_err();
        assert!(err.message.contains("U+0430"), "{}", err.message);
        assert!(Email::parse("\u{430}lice@example.com").is_ok());
    }

    #[test]
    fn roles_and_groups_are_simple_names() {
        assert!(Role::parse("dev-ops_1.x").is_ok());
        assert!(Role::parse("admin").unwrap().is_admin());
        assert!(!Role::parse("user").unwrap().is_admin());
        assert_eq!(Role::parse("a b").unwrap_err().field, "role");
        assert_eq!(GroupName::parse("").unwrap_err().field, "groups");
        assert!(GroupName::parse(&"g".repeat(65)).is_err());
    }
}
