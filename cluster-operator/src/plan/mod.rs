//! Decisions: pure functions from the desired model and the observed state to what the act
//! stage must do next (restart which node, refuse which scale-down, delete which RBAC in
//! other namespaces). Pure: no I/O, no clock.

pub mod partitions;
pub mod rbac_elsewhere;
pub mod roll;
pub mod scale_down;
