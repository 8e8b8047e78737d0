//! Identifiers and closed value sets shared by every layer; validated on construction.

mod ids;
mod names;
mod target;

pub use ids::{ApiTokenId, TargetId, UserId};
pub use names::{Email, GroupName, NameError, Role, TokenName};
pub use target::{AuthType, IsolationBoundary, Statefulness, TargetName, Transport};
