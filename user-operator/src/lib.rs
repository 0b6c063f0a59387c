//! The Oxbow user operator: turns each KafkaUser into SCRAM credentials or a TLS client
//! certificate, ACL bindings, client quotas and a user Secret.
//!
//! `plan` is the pure core (no I/O, no clock, randomness passed in). The observe, act and
//! controller stages that feed it and carry out its plans belong beside it as their own modules.

pub mod plan;
