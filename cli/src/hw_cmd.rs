//! `weir hw`: the host — probe it, tune it, calibrate its disk, list EC2 instance types.
//!
//! Owns: argv for `weir hw …` and printing. Must not: read or change the host itself; everything
//! goes through the `hardware` crate and its `HostRoot`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Subcommand};
use hardware::root::HostRoot;
use hardware::tune::run::{Outcome, TunerOutcome};
use hardware::tune::TuneContext;

#[derive(Debug, Args)]
pub struct HwArgs {
    #[command(subcommand)]
    cmd: HwCmd,
}

/// Where the host is read: the real one, or a tree laid out like `/` (`--root DIR`).
#[derive(Debug, Args)]
struct RootArg {
    /// Read (and tune) the host through this directory instead of `/` (a fake or copied tree
    /// with `sys/`, `proc/`, `etc/`).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

impl RootArg {
    fn host(&self) -> HostRoot {
        match &self.root {
            Some(dir) => HostRoot::fake(dir),
            None => HostRoot::real(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum HwCmd {
    /// What the host is and how it compares with what weir recommends (like `rpk redpanda
    /// check`). The JSON form follows hardware/probe.schema.json.
    Probe {
        #[command(flatten)]
        root: RootArg,
        /// The broker's data directory: its disk and filesystem are probed.
        #[arg(long, default_value = ".")]
        data_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check, apply or revert the host tuners (nothing changes without --apply or --revert).
    Tune(TuneArgs),
    /// Calibrate the disk under --dir (O_DIRECT through io_uring) and write io-properties.
    Iotune(IotuneArgs),
    /// The EC2 instance catalogue (hardware/data/ec2.toml): figures with their sources.
    Catalogue {
        /// Print JSON (every figure with its source) instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this family (`i4i`) or type (`i4i.xlarge`).
        #[arg(long)]
        only: Option<String>,
    },
}

fn catalogue(json: bool, only: Option<String>) -> anyhow::Result<()> {
    let mut c = hardware::catalogue::Catalogue::shipped()?;
    if let Some(only) = &only {
        c.instance.retain(|i| &i.family == only || &i.name == only);
        if c.instance.is_empty() {
            bail!("no instance type or family {only:?} in the catalogue");
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        print!("{}", c.table());
        println!("region {}; sources:", c.region);
        for s in &c.source {
            println!("  {} ({}): {}", s.id, s.date, s.url);
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
struct IotuneArgs {
    /// Directory on the disk to measure (a scratch file is written there and removed).
    #[arg(long)]
    dir: PathBuf,
    /// Where to write the io-properties file (default DIR/io-properties.toml, where `weir serve
    /// --data-dir DIR` reads it at startup; elsewhere, name it with `--io-properties`).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Size of the scratch file.
    #[arg(long, default_value_t = 1 << 30)]
    file_bytes: u64,
    /// Queue depths of the 4 KiB random passes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    depths: Vec<usize>,
    /// Duration of each random pass and of the fdatasync pass.
    #[arg(long, default_value_t = 3000)]
    pass_ms: u64,
    /// Print the io-properties as JSON too.
    #[arg(long)]
    json: bool,
}

fn iotune(a: IotuneArgs) -> anyhow::Result<()> {
    use hardware::iotune::{run, IotuneConfig};
    let mut config = IotuneConfig::new(&a.dir);
    config.file_bytes = a.file_bytes;
    config.random_depths = a.depths.clone();
    config.pass_duration = std::time::Duration::from_millis(a.pass_ms);
    let props = run(&config).with_context(|| format!("calibrating {}", a.dir.display()))?;
    let out = a
        .out
        .unwrap_or_else(|| a.dir.join(crate::serve_io::DEFAULT_NAME));
    props.write(&out)?;
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    println!(
        "seq write {:.0} MiB/s, seq read {:.0} MiB/s ({} KiB blocks, depth {})",
        mib(props.seq_write.bytes_per_s),
        mib(props.seq_read.bytes_per_s),
        props.seq_write.block_bytes >> 10,
        props.seq_write.queue_depth
    );
    for (kind, rows) in [("read", &props.random_read), ("write", &props.random_write)] {
        for r in rows.iter() {
            let l = &r.latency_us;
            println!(
                "random 4 KiB {kind:<5} depth {:>3}: {:>8} IOPS  \
                 p50 {:>8.1} us  p99 {:>8.1} us  p99.9 {:>8.1} us",
                r.queue_depth, r.iops, l.p50_us, l.p99_us, l.p999_us
            );
        }
    }
    let s = &props.fdatasync;
    println!(
        "fdatasync after a 4 KiB append: p50 {:.1} us  p99 {:.1} us  ({} samples)",
        s.p50_us, s.p99_us, s.samples
    );
    println!(
        "suggested: writes_in_flight {}, write_group_bytes {}",
        props.suggested.writes_in_flight, props.suggested.write_group_bytes
    );
    println!("wrote {}", out.display());
    if a.json {
        println!("{}", serde_json::to_string_pretty(&props)?);
    }
    Ok(())
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["check", "apply", "revert"])))]
struct TuneArgs {
    #[command(flatten)]
    root: RootArg,
    /// Say what each tuner would change.
    #[arg(long)]
    check: bool,
    /// Apply the tuners, recording what was there in the state file.
    #[arg(long)]
    apply: bool,
    /// Put back everything the state file records, newest first.
    #[arg(long)]
    revert: bool,
    /// Only these tuners (comma separated; `weir hw tune --check` lists them).
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// With --apply or --revert: print what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The broker's data directory (its disk, the ballast file, fstrim).
    #[arg(long, default_value = "/var/lib/weir")]
    data_dir: PathBuf,
    /// The undo records (default /var/lib/weir/hw-tune-state.json under the root).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// CPUs that take NIC and disk interrupts, comma separated (default: every online CPU).
    #[arg(long, value_delimiter = ',')]
    irq_cpus: Option<Vec<usize>>,
    /// Size of the ballast file.
    #[arg(long, default_value_t = hardware::recommended::BALLAST_BYTES)]
    ballast_bytes: u64,
    /// Where kernel.core_pattern sends cores.
    #[arg(long, default_value = hardware::recommended::COREDUMP_DIR)]
    coredump_dir: String,
}

fn print_outcomes(outcomes: &[TunerOutcome], verb: &str) -> bool {
    let mut failed = false;
    for o in outcomes {
        match &o.outcome {
            Outcome::NotApplicable(why) => println!("{:<22} n/a: {why}", o.tuner),
            Outcome::Tuned => println!("{:<22} ok", o.tuner),
            Outcome::Changes(lines) => {
                println!("{:<22} {verb}:", o.tuner);
                for l in lines {
                    println!("    {l}");
                }
            }
            Outcome::Failed { done, error } => {
                failed = true;
                println!("{:<22} FAILED: {error}", o.tuner);
                for l in done {
                    println!("    changed {l}");
                }
            }
        }
    }
    failed
}

fn tune(a: TuneArgs) -> anyhow::Result<()> {
    let root = a.root.host();
    let state = a
        .state
        .clone()
        .unwrap_or_else(|| root.path(hardware::tune::state::STATE_PATH));
    let tuners = hardware::tune::select(a.only.as_deref())?;
    let mut ctx = TuneContext::new(&a.data_dir);
    ctx.irq_cpus = a.irq_cpus.clone();
    ctx.ballast_bytes = a.ballast_bytes;
    ctx.coredump_dir = a.coredump_dir.clone();
    if a.check {
        print_outcomes(
            &hardware::tune::run::check(&root, &ctx, &tuners),
            "would change",
        );
        return Ok(());
    }
    if a.revert {
        let lines = hardware::tune::run::revert(&root, a.only.as_deref(), &state, a.dry_run)?;
        if lines.is_empty() {
            println!("nothing to revert ({} records nothing)", state.display());
        }
        for l in &lines {
            println!("{l}");
        }
        if lines.iter().any(|l| l.contains("FAILED")) {
            bail!(
                "some changes could not be reverted; they stay in {}",
                state.display()
            );
        }
        return Ok(());
    }
    let outcomes = hardware::tune::run::apply(&root, &ctx, &tuners, &state, a.dry_run)?;
    let verb = if a.dry_run { "would change" } else { "changed" };
    if print_outcomes(&outcomes, verb) {
        bail!("some tuners failed; `weir hw tune --revert` undoes what was applied");
    }
    Ok(())
}

pub fn run(args: HwArgs) -> anyhow::Result<()> {
    match args.cmd {
        HwCmd::Probe {
            root,
            data_dir,
            json,
        } => {
            let report = hardware::probe::probe(&root.host(), Some(&data_dir));
            if json {
                let text = serde_json::to_string_pretty(&report).context("encoding the probe")?;
                println!("{text}");
            } else {
                print!("{}", report.table());
                println!("worst: {}", report.worst().as_str());
            }
            Ok(())
        }
        HwCmd::Tune(a) => tune(a),
        HwCmd::Iotune(a) => iotune(a),
        HwCmd::Catalogue { json, only } => catalogue(json, only),
    }
}
