//! `weir bench …`: runs the benchmarks of the bench crate from the command line.
//!
//! Owns the flags of the bench subcommands and how their results are printed and saved. Must not
//! measure anything itself: the measurement lives in `bench::log_bench`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use bench::log_bench::{self, LogBenchConfig};
use clap::{Args, Subcommand};
use engine::LogConfig;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Partition-log append and cold-read bandwidth beside the raw O_DIRECT bandwidth of the disk.
    Log(LogArgs),
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Directory on the disk under test (a scratch subdirectory is created and removed in it).
    #[arg(long)]
    pub dir: PathBuf,
    /// Bytes per raw loop and per no-fsync append run, e.g. 1GiB, 64MiB, 1000000.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub bytes: u64,
    /// Write every figure to this file as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Time cap in seconds of each fdatasync-per-batch and group-commit run.
    #[arg(long, default_value_t = 20.0)]
    pub case_seconds: f64,
    /// Concurrent producers of the group-commit run.
    #[arg(long, default_value_t = 32)]
    pub producers: usize,
    /// Raw DMA operations in flight (fio's iodepth).
    #[arg(long, default_value_t = 8)]
    pub raw_depth: usize,
    /// No-fsync runs: how far appends may run ahead of the written watermark.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub written_lag: u64,
    /// Tuning: the log's largest single DMA write (default: the engine's default).
    #[arg(long, value_parser = parse_size)]
    pub write_bytes_max: Option<u64>,
    /// Tuning: whether the log preallocates its segments (default: the engine's default).
    #[arg(long)]
    pub preallocate: Option<bool>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Log(args) => run_log(args),
    }
}

fn run_log(args: LogArgs) -> anyhow::Result<()> {
    let mut log = LogConfig::default();
    if let Some(bytes) = args.write_bytes_max {
        log.write_bytes_max = usize::try_from(bytes).context("--write-bytes-max")?;
    }
    if let Some(preallocate) = args.preallocate {
        log.preallocate = preallocate;
    }
    let config = LogBenchConfig {
        log,
        bytes: args.bytes,
        case_seconds: args.case_seconds,
        producers: args.producers,
        raw_depth: args.raw_depth,
        written_lag_bytes: args.written_lag,
        ..LogBenchConfig::new(&args.dir)
    };
    let report = log_bench::run(config)
        .with_context(|| format!("log benchmark in {}", args.dir.display()))?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Parses a byte count with an optional binary (KiB, MiB, GiB) or decimal (KB, MB, GB) suffix.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .with_context(|| format!("{text:?} does not start with a number"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => bail!("unknown size unit {other:?} (use KiB, MiB, GiB, KB, MB, GB)"),
    };
    n.checked_mul(scale)
        .with_context(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("2 MB").unwrap(), 2_000_000);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }
}
