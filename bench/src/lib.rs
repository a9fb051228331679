//! bench — load generation and measurement.
