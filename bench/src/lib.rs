//! bench — load generation and measurement.

pub mod broker_cpu;
pub mod client;
pub mod log_bench;
pub mod null_sink;
pub mod payload;
pub mod progress;
pub mod report;
pub mod runner;
pub mod workload;
pub mod zk_load;
