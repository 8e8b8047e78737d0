//! reflow: an MCP gateway. The binary in `main.rs` is a thin shell over this library.

pub mod access;
pub mod activity;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bridge;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod domain;
pub mod gateway;
pub mod heap;
pub mod http;
pub mod mcp;
pub mod policy;
#[cfg(test)]
mod proptests;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod upstream;
