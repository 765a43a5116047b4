//! How a batch flows: [`sort`] runs each record through the transform and groups it by
//! partition, [`pipeline`] encodes, stores and reports, and the [`handler`] is what every
//! deployment mode hands its batches to; [`metrics`] turns a batch's report into CloudWatch
//! metrics.

pub mod config;
pub mod handler;
pub mod metrics;
pub mod pipeline;
pub mod sort;
