//! bench — load generation and measurement.

pub mod client;
pub mod log_bench;
pub mod null_sink;
pub mod zk_load;
