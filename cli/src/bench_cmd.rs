//! `weir bench …`: runs the benchmarks of the bench crate from the command line.
//!
//! Owns the flags of the bench subcommands (`run` and `compare`, and the output flags every
//! measuring produce shares, are in `cli::bench_run`) and how the other commands' results are
//! printed and saved. Must not measure anything itself: the measurement lives in
//! `bench::log_bench`, `bench::runner` (over `kclient::producer`),
//! `kclient::consumer`, `kclient::e2e` and `bench::null_sink`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use std::time::Duration;

use bench::log_bench::{self, LogBenchConfig};
use bench::null_sink::{NullSink, NullSinkConfig};
use clap::{Args, Subcommand};
use kclient::batch::Compression;
use kclient::consumer::{self, ConsumerConfig, StartAt};
use kclient::e2e::{self, E2eConfig};
use kclient::producer::ProducerConfig;
use storage::LogConfig;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Partition-log append and cold-read bandwidth beside the raw O_DIRECT bandwidth of the disk.
    Log(LogArgs),
    /// Produce records to any Kafka-compatible broker and measure rate and publish latency.
    Produce(ProduceCmd),
    /// Consume records from any Kafka-compatible broker (Fetch, partitions assigned, no group)
    /// and measure the consume rate (and, with --e2e, the end-to-end latency of records that
    /// `produce --stamp-send-time` stamped).
    Consume(ConsumeArgs),
    /// Producers and consumers of one topic together: publish rate, latency and delay, consume
    /// rate, and end-to-end latency from the send time each record carries.
    E2e(E2eArgs),
    /// A Kafka server that acknowledges produces without storing them (the generator's ceiling).
    NullSink(NullSinkArgs),
    /// Run an OpenMessaging-Benchmark-style workload file against a broker (creates its topics).
    Run(crate::bench_run::RunArgs),
    /// Run one workload against several brokers and print a side-by-side table.
    Compare(crate::bench_run::CompareArgs),
    /// ZooKeeper-protocol load (create-seq, set, get; leader kill) against any ensemble.
    Zk(crate::bench_zk_cmd::ZkArgs),
}

/// The consumer's fetch settings (Kafka's names).
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// fetch.min.bytes
    #[arg(long, default_value_t = 1)]
    pub fetch_min_bytes: i32,
    /// fetch.max.wait.ms
    #[arg(long, default_value_t = 500)]
    pub fetch_max_wait_ms: u64,
    /// max.partition.fetch.bytes
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub max_partition_fetch_bytes: u64,
    /// fetch.max.bytes
    #[arg(long, default_value = "50MiB", value_parser = parse_size)]
    pub fetch_max_bytes: u64,
    /// Consumers (clients), the partitions dealt among them (p % consumers).
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// glommio executors (threads) the consumers are spread over.
    #[arg(long, default_value_t = 1)]
    pub consumer_executors: usize,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// bootstrap.servers: one host:port.
    #[arg(long)]
    pub bootstrap: String,
    #[arg(long)]
    pub topic: String,
    /// Partitions to read, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub partitions: Option<Vec<u32>>,
    /// Where to start: earliest or latest.
    #[arg(long, default_value = "earliest")]
    pub from: StartAt,
    /// Stop after this many records in all.
    #[arg(long)]
    pub records: Option<u64>,
    /// Stop after this many seconds in any case.
    #[arg(long, default_value_t = 60.0)]
    pub duration_s: f64,
    /// Stop once no record arrived for this many seconds after the first (default: never).
    #[arg(long)]
    pub idle_s: Option<f64>,
    /// Read each value's first 8 bytes as its send time (µs since the Unix epoch, big-endian, as
    /// `weir bench e2e` writes it) and report end-to-end latency.
    #[arg(long)]
    pub e2e: bool,
    #[command(flatten)]
    pub fetch: FetchArgs,
    /// Write the result to this file as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct E2eArgs {
    #[command(flatten)]
    pub produce: ProduceArgs,
    #[command(flatten)]
    pub fetch: FetchArgs,
    /// The consumers give up this many seconds after the last record they read.
    #[arg(long, default_value_t = 10.0)]
    pub idle_s: f64,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// bootstrap.servers: one host:port (the other brokers are learnt from Metadata; each
    /// partition is sent to its leader).
    #[arg(long)]
    pub bootstrap: String,
    #[arg(long)]
    pub topic: String,
    /// Records to send in all.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Offered rate in records/s over all connections (default: as fast as possible). With a
    /// rate the publish delay (lag behind the intended send times) is reported too.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Value bytes per record.
    #[arg(long, default_value = "1KiB", value_parser = parse_size)]
    pub record_size: u64,
    /// Distinct keys (murmur2 partitioning); without it keys are null (sticky partitioning).
    #[arg(long)]
    pub keys: Option<u64>,
    /// Draw each record's key uniformly at random from the --keys (OMB's RANDOM_NANO; each
    /// producer's generator is seeded from the clock, so runs differ) instead of cycling through
    /// them (ROUND_ROBIN).
    #[arg(long, requires = "keys")]
    pub random_keys: bool,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// linger.ms
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// batch.size
    #[arg(long, default_value = "16384", value_parser = parse_size)]
    pub batch_size: u64,
    /// compression.type: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    pub compression: Compression,
    /// compression level (gzip 1-9, zstd 1-22; default Kafka's).
    #[arg(long)]
    pub compression_level: Option<i32>,
    /// max.in.flight.requests.per.connection
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    /// buffer.memory of each connection.
    #[arg(long, default_value = "32MiB", value_parser = parse_size)]
    pub buffer_memory: u64,
    /// max.block.ms: how long a record may wait for buffer.memory before it fails (counted).
    #[arg(long, default_value_t = 60_000)]
    pub max_block_ms: u64,
    /// request.timeout.ms: a request unanswered this long closes its connection (and is retried).
    #[arg(long, default_value_t = 30_000)]
    pub request_timeout_ms: i32,
    /// delivery.timeout.ms: a record unacknowledged this long after its batch was created fails
    /// (counted).
    #[arg(long, default_value_t = 120_000)]
    pub delivery_timeout_ms: u64,
    /// retries: resends of a batch after a retriable error (default: unbounded, as Kafka's).
    #[arg(long, default_value_t = i32::MAX as u32)]
    pub retries: u32,
    /// retry.backoff.ms
    #[arg(long, default_value_t = 100)]
    pub retry_backoff_ms: u64,
    /// enable.idempotence: producer id and sequences, so retries never duplicate (needs
    /// --acks all and --max-in-flight ≤ 5).
    #[arg(long)]
    pub idempotence: bool,
    /// Write each record's send time (µs since the Unix epoch, big-endian) into the first 8 bytes
    /// of its value, for `weir bench consume --e2e` in another process (`e2e` always does).
    #[arg(long)]
    pub stamp_send_time: bool,
    /// Connections (one producer client each).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// glommio executors (threads) the connections are spread over.
    #[arg(long, default_value_t = 1)]
    pub executors: usize,
    /// Write the result document (docs/bench-results.md) to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `weir bench produce`: the producer flags and the output and honesty flags.
#[derive(Debug, Args)]
pub struct ProduceCmd {
    #[command(flatten)]
    pub produce: ProduceArgs,
    #[command(flatten)]
    pub out: crate::bench_run::OutputArgs,
}

#[derive(Debug, Args)]
pub struct NullSinkArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub listen: std::net::SocketAddr,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
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
        BenchCommand::Produce(args) => run_produce(args),
        BenchCommand::Consume(args) => run_consume(args),
        BenchCommand::E2e(args) => run_e2e(args),
        BenchCommand::NullSink(args) => run_null_sink(args),
        BenchCommand::Run(args) => crate::bench_run::run(args),
        BenchCommand::Compare(args) => crate::bench_run::compare(args),
        BenchCommand::Zk(args) => crate::bench_zk_cmd::run(args),
    }
}

fn parse_acks(text: &str) -> anyhow::Result<i16> {
    match text {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        other => bail!("--acks {other:?}: use 0, 1 or all"),
    }
}

fn producer_config(args: &ProduceArgs) -> anyhow::Result<ProducerConfig> {
    Ok(ProducerConfig {
        records: args.records,
        rate: args.rate,
        record_size: usize::try_from(args.record_size).context("--record-size")?,
        keys: args.keys,
        random_keys: args.random_keys,
        acks: parse_acks(&args.acks)?,
        linger: Duration::from_millis(args.linger_ms),
        batch_size: usize::try_from(args.batch_size).context("--batch-size")?,
        compression: args.compression,
        compression_level: args.compression_level,
        max_in_flight: args.max_in_flight,
        buffer_memory: usize::try_from(args.buffer_memory).context("--buffer-memory")?,
        max_block: Duration::from_millis(args.max_block_ms),
        request_timeout_ms: args.request_timeout_ms,
        delivery_timeout: Duration::from_millis(args.delivery_timeout_ms),
        retries: args.retries,
        retry_backoff: Duration::from_millis(args.retry_backoff_ms),
        idempotence: args.idempotence,
        stamp_send_time: args.stamp_send_time,
        connections: args.connections,
        executors: args.executors,
        ..ProducerConfig::new(&args.bootstrap, &args.topic)
    })
}

fn consumer_config(bootstrap: &str, topic: &str, f: &FetchArgs) -> anyhow::Result<ConsumerConfig> {
    Ok(ConsumerConfig {
        fetch_min_bytes: f.fetch_min_bytes,
        fetch_max_wait: Duration::from_millis(f.fetch_max_wait_ms),
        max_partition_fetch_bytes: i32::try_from(f.max_partition_fetch_bytes)
            .context("--max-partition-fetch-bytes")?,
        fetch_max_bytes: i32::try_from(f.fetch_max_bytes).context("--fetch-max-bytes")?,
        consumers: f.consumers,
        executors: f.consumer_executors,
        ..ConsumerConfig::new(bootstrap, topic)
    })
}

fn seconds(s: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{flag} {s}"))
}

fn write_json(path: Option<&PathBuf>, value: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(path) = path {
        let json = serde_json::to_string_pretty(value)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn run_consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let config = ConsumerConfig {
        partitions: args.partitions.clone(),
        start: args.from,
        records: args.records,
        duration: seconds(args.duration_s, "--duration-s")?,
        idle: args.idle_s.map(|s| seconds(s, "--idle-s")).transpose()?,
        e2e: args.e2e,
        ..consumer_config(&args.bootstrap, &args.topic, &args.fetch)?
    };
    let report = consumer::run(config)
        .with_context(|| format!("consuming {} from {}", args.topic, args.bootstrap))?;
    print!("{}", report.summary());
    write_json(args.json.as_ref(), &report)?;
    if let Some(n) = args.records.filter(|&n| report.records < n) {
        bail!("read {} of the {n} records asked for", report.records);
    }
    Ok(())
}

fn run_e2e(args: E2eArgs) -> anyhow::Result<()> {
    let p = &args.produce;
    let config = E2eConfig {
        producer: producer_config(p)?,
        consumer: consumer_config(&p.bootstrap, &p.topic, &args.fetch)?,
        idle: seconds(args.idle_s, "--idle-s")?,
    };
    let report = e2e::run(config)
        .with_context(|| format!("end to end on {} via {}", p.topic, p.bootstrap))?;
    print!("{}", report.summary());
    write_json(p.json.as_ref(), &report)?;
    let (sent, read) = (report.produce.records_acked, report.consume.records);
    if report.produce.records_failed > 0 {
        bail!(
            "{} records failed (first error code {:?})",
            report.produce.records_failed,
            report.produce.first_error
        );
    }
    if read < sent {
        bail!("the consumers read {read} of the {sent} records acknowledged");
    }
    Ok(())
}

fn run_produce(cmd: ProduceCmd) -> anyhow::Result<()> {
    let config = producer_config(&cmd.produce)?;
    crate::bench_run::produce(config, cmd.produce.json.as_deref(), &cmd.out)
}

fn run_null_sink(args: NullSinkArgs) -> anyhow::Result<()> {
    let sink = NullSink::start(NullSinkConfig {
        listen: args.listen,
        partitions: args.partitions,
    })?;
    println!("null sink listening on {}", sink.addr());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
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
