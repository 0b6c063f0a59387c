//! The Oxbow user operator: turns each KafkaUser into SCRAM credentials or a TLS client
//! certificate, ACL bindings, client quotas and a user Secret.
//!
//! - [`config`]: the `OXBOW_*` settings.
//! - [`plan`]: the pure core (no I/O, no clock, randomness passed in).
//! - [`convert`]: the KafkaUser resource mapped onto the plan's model and the admin types.
//! - [`kafka`]: batched, cached reads and batched writes of ACLs, SCRAM credentials, quotas.
//! - [`controller`]: the sync loop (watches, passes, Secrets, status, Events).

pub mod config;
pub mod controller;
pub mod convert;
pub mod kafka;
pub mod plan;
