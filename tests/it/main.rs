//! Integration tests: one binary; every test gets its own database and port.

mod auth_api;
mod auth_surface;
mod cli;
mod credentials_api;
mod credentials_validation;
mod gateway;
mod gateway_credentials;
mod gateway_policies;
mod gateway_sessions;
mod gateway_wire;
mod logs_cli;
mod oidc;
mod policies_api;
mod policies_cli;
mod recycle;
mod replicas;
mod secrets_cli;
mod store_audit;
mod store_credentials;
mod store_policies;
mod store_suite;
mod store_targets;
mod support;
mod targets_api;
mod targets_cli;
mod upstream_client;
