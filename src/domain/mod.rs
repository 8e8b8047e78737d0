//! Identifiers and closed value sets shared by every layer; validated on construction.

mod ids;
mod names;

pub use ids::{ApiTokenId, UserId};
pub use names::{Email, GroupName, NameError, Role, TokenName};
