//! Newtypes for entity ids, so a user id can never be passed where a token id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId
);
uuid_id!(
    /// An API token row (not the token's secret, not its jti).
    ApiTokenId
);
uuid_id!(
    /// A target (upstream MCP server).
    TargetId
);
uuid_id!(
    /// A policy.
    PolicyId
);
uuid_id!(
    /// One subject row of a policy.
    PolicySubjectId
);
uuid_id!(
    /// One stored upstream credential (token or env entry).
    CredentialId
);
uuid_id!(
    /// One run of a stdio upstream's process (a row of `instances`).
    InstanceId
);
