//! The Oxbow cluster operator as a library: the validated model of a Kafka cluster (`model`), the
//! pure builders of what the operator writes (`build`) and the pure decisions it takes
//! (`plan`: rolling restarts, broker scale-down). The binary in `main.rs` wires them to
//! Kubernetes and Kafka. Everything in these modules is pure: no I/O, no clock, no randomness.

pub mod act;
pub mod build;
pub mod config;
pub mod context;
pub mod controller;
pub mod kafka;
pub mod leader;
pub mod model;
pub mod observe;
pub mod pki;
pub mod plan;
pub mod rbac_elsewhere;
pub mod reconcile;
pub mod status;

#[cfg(test)]
pub(crate) mod test_fixtures;
