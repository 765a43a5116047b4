//! How a batch flows: [`sort`] runs each record through the transform and groups it by
//! partition, [`pipeline`] encodes, stores and reports, and the [`handler`] is what every
//! deployment mode hands its batches to; [`metrics`] turns a batch's report into CloudWatch
//! metrics. With a [`ledger`], [`exactly_once`] stores each batch exactly once however the
//! event source mapping re-cuts, bisects or redelivers it. [`tables`] keeps each table to the
//! layout its descriptor records.

pub mod config;
pub mod exactly_once;
pub mod handler;
pub mod ledger;
pub mod metrics;
pub mod pipeline;
pub mod sort;
pub mod tables;
