//! Identifiers and closed value sets shared by every layer; validated on construction.

/// Declares a closed set of values with its wire names; `parse` failures name `$field`.
macro_rules! closed_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(raw: &str) -> Result<Self, $crate::domain::NameError> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::NameError {
                        field: $field,
                        message: format!(
                            "{raw:?} is not one of {}",
                            [$($text),+].join(", ")
                        ),
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::NameError;
            fn from_str(s: &str) -> Result<Self, $crate::domain::NameError> {
                Self::parse(s)
            }
        }
    };
}

mod credential;
mod ids;
mod names;
mod policy;
mod target;

pub use credential::{CredentialKind, CredentialScope};
pub use ids::{ApiTokenId, CredentialId, InstanceId, PolicyId, PolicySubjectId, TargetId, UserId};
pub use names::{Email, GroupName, NameError, Role, TokenName};
pub use policy::{Effect, PolicyName, ResourceType, SubjectType};
pub use target::{
    AuthType, InstanceStatus, IsolationBoundary, Statefulness, TargetName, TargetResources,
    Transport,
};
