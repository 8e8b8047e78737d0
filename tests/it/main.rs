//! Integration tests: one binary; every test gets its own database and port.

mod auth_api;
mod cli;
mod store_suite;
mod support;
mod upstream_client;
