//! Test support: fresh databases (SQLite always, Postgres when configured), a real server on
//! port 0, and a small JSON client.

#![allow(dead_code)]

pub mod bridge;
pub mod bridge_token;
pub mod cli;
pub mod db;
pub mod fixture;
pub mod gw;
pub mod kmock;
pub mod mcp_client;
pub mod otlp;
pub mod proxy;
pub mod requests;
pub mod server;
pub mod stdio;
pub mod upstream;

pub use db::{TestDb, backends, test_db};
pub use server::{TestServer, TestServerOptions};
