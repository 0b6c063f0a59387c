//! Oxbow's testbed: a real Kubernetes control plane (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler built from the upstream Go modules) and a real Apache
//! Kafka (KRaft, from Maven Central jars) started as local processes on loopback, plus what tests
//! need to reach them. May touch: processes, files under its state and cache folders, loopback ports.

pub mod agent;
pub mod cache;
pub mod env;
pub mod images;
pub mod k8s;
pub mod kafka;
pub mod objects;
pub mod operator;
pub mod pki;
pub mod procs;
pub mod stack;
pub mod testbed;
pub mod versions;
