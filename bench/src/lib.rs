//! bench — load generation and measurement (and the machine limits the figures are read against).

pub mod broker_cpu;
pub mod coord_load;
pub mod limits;
pub mod log_bench;
pub mod null_sink;
pub mod payload;
pub mod progress;
pub mod report;
pub mod runner;
pub mod workload;
pub mod zk_load;

/// The Kafka client moved to its own crate (`kclient`); this alias keeps `crate::client::…` paths
/// inside bench working (the runner's). Outside bench, use `kclient` directly.
pub(crate) use kclient as client;
