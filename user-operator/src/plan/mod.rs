//! The plan stage of the user operator: pure functions from (desired, observed) to what must
//! change in Kafka and Kubernetes. Pure: no I/O, no clock (`now` is an argument), and
//! randomness only from a `ring::rand::SecureRandom` the caller passes in.
//!
//! The types here are the operator's own model; the controller maps the KafkaUser custom
//! resource onto them, so these functions never see raw, unvalidated YAML.

pub mod acl;
pub mod certificate;
pub mod password;
pub mod principal;
pub mod quota;
pub mod secret;
