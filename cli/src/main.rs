//! weir — the one binary. Only this crate reads argv and the environment.

use clap::{Parser, Subcommand};

mod bench_cmd;
mod bench_run;
mod bench_zk_cmd;
mod coord_cmd;
mod deploy_cmd;
mod group_cmd;
mod hw_cmd;
mod serve_cmd;
mod serve_config;
mod serve_io;
mod tune_cmd;

#[derive(Debug, Parser)]
#[command(name = "weir", version, about = "weir, a Kafka-compatible broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmarks (`weir bench log|produce|run|compare|null-sink`).
    Bench(bench_cmd::BenchArgs),
    /// The quorum coordinator: run a node (`weir coord --id N --data-dir DIR ...`; ZooKeeper
    /// clients connect to its --zk-addr, 127.0.0.1:2181 by default) or talk to one.
    Coord(coord_cmd::CoordArgs),
    /// Fixed-IP deployment (`weir deploy render --hosts hosts.toml --out DIR`).
    Deploy(deploy_cmd::DeployArgs),
    /// Consumer groups (`weir group list|describe GROUP --bootstrap HOST:PORT`).
    Group(group_cmd::GroupArgs),
    /// The host: probe, tune, iotune, catalogue (`weir hw probe [--json]`).
    Hw(hw_cmd::HwArgs),
    /// The Kafka broker (`weir serve --data-dir DIR [--kafka-addr 0.0.0.0:9092] [--config FILE]`).
    Serve(serve_cmd::ServeArgs),
    /// Producer tuning sweeps and their reports (`weir tune sweep|report`; docs/TUNING.md).
    Tune(tune_cmd::TuneArgs),
}

/// Report commands end quietly when their reader goes away (`weir hw catalogue | head`), as Unix
/// tools do, instead of panicking in `println!` on EPIPE. Only for commands that write reports:
/// the network-facing ones keep SIGPIPE ignored (a peer closing a socket must not kill them).
fn quiet_on_closed_pipe() {
    // SAFETY: restores the default disposition of one signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    match Cli::parse().command {
        Command::Bench(args) => bench_cmd::run(args),
        Command::Coord(args) => coord_cmd::run(args),
        Command::Deploy(args) => {
            quiet_on_closed_pipe();
            deploy_cmd::run(args)
        }
        Command::Group(args) => group_cmd::run(args),
        Command::Hw(args) => {
            quiet_on_closed_pipe();
            hw_cmd::run(args)
        }
        Command::Serve(args) => serve_cmd::run(args),
        Command::Tune(args) => tune_cmd::run(args),
    }
}
