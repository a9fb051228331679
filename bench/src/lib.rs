//! bench — load generation and measurement.

pub mod log_bench;
