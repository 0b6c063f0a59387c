//! Builders: pure functions from the validated model ([`crate::model::ResolvedCluster`]) to what
//! the operator writes, one file per kind of output. Pure: no I/O.

pub mod entity_operator;
pub mod kafka_config;
pub mod listeners;
pub mod meta;
pub mod network_policy;
pub mod node_config;
pub mod pdb;
pub mod pod;
pub mod service_account;
pub mod services;
pub mod storage;
