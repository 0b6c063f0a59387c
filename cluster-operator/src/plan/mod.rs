//! Decisions: pure functions from the desired model and the observed state to what the act
//! stage must do next (restart which node, refuse which scale-down). Pure: no I/O, no clock.

pub mod partitions;
pub mod roll;
pub mod scale_down;
