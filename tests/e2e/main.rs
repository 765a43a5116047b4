//! End-to-end tests: the `weir` binary and the host library on real files, the real retail
//! transform built for wasm32-wasip1, and hand-written hostile guest modules.

mod authoring;
mod campaign;
mod catalog;
mod check_command;
mod compact;
mod components;
mod esm;
mod exactly_once;
mod faults;
mod hostile_records;
mod hostile_transforms;
mod kinesis_poller;
mod lambda;
mod registry;
mod run_command;
mod stack;
mod tables;
