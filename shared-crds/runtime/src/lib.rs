//! Plumbing that all three Oxbow operators need and that would otherwise be written three times:
//! reading settings from the environment with errors that name the variable, Kafka connection
//! settings (TLS, mTLS, SASL SCRAM) turned into client configurations, the `/metrics`,
//! `/healthz` and `/readyz` server, and tracing set-up. Operators depend on this crate and on
//! `shared-crds`, never on each other.

pub mod allocator;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod settings;
pub mod telemetry;
