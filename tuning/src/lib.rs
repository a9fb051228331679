//! tuning — the sweep harness (`weir tune`): a plan of producer settings (linger.ms ×
//! batch.size × compression × acks, and more) run against a cluster through the bench runner,
//! its results as JSON lines, a self-contained HTML report with charts, and recommendations
//! under a latency SLO or a target rate.
//!
//! Modules: [`plan`] (the plan file), [`point`] (one combination and its bench plan), [`sweep`]
//! (running and resuming), [`results`] (the JSON lines file), [`local`] (the `--local` broker),
//! [`machine`] (what it ran on), [`recommend`] (choosing), [`report`] (HTML, Markdown, CSV).
//! Must not parse argv or print: the `weir tune` command does.

pub mod local;
pub mod machine;
pub mod plan;
pub mod point;
pub mod recommend;
pub mod report;
pub mod results;
pub mod sweep;

/// Errors of planning, sweeping and reporting.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("plan: {0}")]
    Plan(String),
    #[error("results: {0}")]
    Results(String),
    #[error("broker: {0}")]
    Broker(String),
    #[error("report: {0}")]
    Report(String),
}
