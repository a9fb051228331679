//! `weir tune sweep|report`: the flags, the progress bar (indicatif; one line per point when
//! stderr is not a terminal), Ctrl-C (the first stops after the running repetition, leaving a
//! valid results file; the second quits at once), and the topic admin (CreateTopics and
//! DeleteTopics through `cli::admin`).
//!
//! Owns argv and printing for tuning. Must not measure, choose or render: that is the `tuning`
//! crate's.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kafka_protocol::messages::ApiKey;
use tuning::plan::SweepPlan;
use tuning::point::Point;
use tuning::recommend::Criteria;
use tuning::results::{PointRecord, Results};
use tuning::sweep::{self, Cluster, Observer, SweepOptions, Topics};

use kclient::admin::AdminError;
use kclient::blocking as admin;

#[derive(Debug, Args)]
pub struct TuneArgs {
    #[command(subcommand)]
    command: TuneCommand,
}

#[derive(Debug, Subcommand)]
enum TuneCommand {
    /// Run a sweep plan (docs/TUNING.md; shipped plans in tuning/plans/), appending each point
    /// to a JSON lines file as it finishes.
    Sweep(SweepArgs),
    /// Charts (one self-contained HTML file), a Markdown summary, a CSV and recommendations
    /// from a results file.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("cluster").required(true).args(["bootstrap", "local"])))]
struct SweepArgs {
    /// The plan (TOML).
    #[arg(long)]
    plan: PathBuf,
    /// Measure this existing Kafka-compatible cluster (HOST:PORT).
    #[arg(long)]
    bootstrap: Option<String>,
    /// Start `weir serve` (this binary) on a temporary data directory and a free port, once per
    /// broker variant of the plan.
    #[arg(long)]
    local: bool,
    /// The results file (JSON lines).
    #[arg(long)]
    out: PathBuf,
    /// Continue the results file: points it already holds are skipped.
    #[arg(long)]
    resume: bool,
    /// No progress bar or per-point lines.
    #[arg(long)]
    quiet: bool,
    /// Check the plan and print its points and time estimate; run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Seconds of each pass measuring the machine's limits before the first point (disk
    /// O_DIRECT write and read on the results' filesystem, loopback TCP), recorded in the results
    /// and stated on every chart; 0 skips them.
    #[arg(long, default_value_t = 1.5, value_name = "SECONDS")]
    limits_s: f64,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// A results file written by `weir tune sweep`.
    results: PathBuf,
    /// Directory for report.html, summary.md and points.csv (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Recommend the highest-throughput settings whose publish p99 stays under this (ms).
    #[arg(long)]
    slo_p99_ms: Option<f64>,
    /// Recommend the lowest-latency settings that sustain this rate (MB/s).
    #[arg(long)]
    target_mbps: Option<f64>,
}

pub fn run(args: TuneArgs) -> anyhow::Result<()> {
    match args.command {
        TuneCommand::Sweep(a) => run_sweep(a),
        TuneCommand::Report(a) => run_report(a),
    }
}

/// Set by the first SIGINT.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    // SAFETY: signal(2) is async-signal-safe; the next Ctrl-C quits at once.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
}

fn run_sweep(a: SweepArgs) -> anyhow::Result<()> {
    if !(a.limits_s >= 0.0 && a.limits_s <= 30.0) {
        bail!("--limits-s must be between 0 and 30 seconds");
    }
    let plan = SweepPlan::load(&a.plan)?;
    let cluster = match (&a.bootstrap, a.local) {
        (Some(b), false) => Cluster::Bootstrap(b.clone()),
        (None, true) => Cluster::Local {
            weir_exe: std::env::current_exe().context("finding the weir executable")?,
        },
        _ => bail!("give either --bootstrap HOST:PORT or --local"),
    };
    if a.dry_run {
        let estimate_s = plan.check_budget(a.local)?;
        let points = plan.points().map_err(tuning::TuneError::Plan)?;
        println!(
            "plan {:?}: {} points, at most {:.1} min (budget {} min)",
            plan.name,
            points.len(),
            estimate_s / 60.0,
            plan.budget_minutes
        );
        return Ok(());
    }
    // SAFETY: installs a handler that only stores an atomic and calls signal(2).
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        )
    };
    let observer = Progress::new(a.quiet);
    let options = SweepOptions {
        resume: a.resume,
        limits_pass: (a.limits_s > 0.0).then(|| Duration::from_secs_f64(a.limits_s)),
    };
    let outcome = sweep::sweep(
        &plan,
        &cluster,
        &a.out,
        &options,
        &AdminTopics,
        &observer,
        &STOP,
    )?;
    observer.finish();
    eprintln!(
        "weir tune: {} points run ({} failed), {} already in {}{}",
        outcome.ran,
        outcome.failed,
        outcome.skipped,
        a.out.display(),
        if outcome.stopped {
            " — stopped early: continue with --resume"
        } else {
            ""
        }
    );
    Ok(())
}

fn run_report(a: ReportArgs) -> anyhow::Result<()> {
    for (name, v) in [
        ("--slo-p99-ms", a.slo_p99_ms),
        ("--target-mbps", a.target_mbps),
    ] {
        if v.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
            bail!("{name} must be a positive number");
        }
    }
    let results = Results::read(&a.results)?;
    if results.torn_tail {
        eprintln!(
            "weir tune: the last line of {} is torn (an interrupted sweep): ignored",
            a.results.display()
        );
    }
    let criteria = Criteria {
        slo_p99_ms: a.slo_p99_ms,
        target_mbps: a.target_mbps,
    };
    let written = tuning::report::write(&results, &a.out, &criteria)?;
    print!("{}", written.summary_markdown);
    eprintln!(
        "weir tune: wrote {}",
        written
            .files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// CreateTopics and DeleteTopics through the admin client.
struct AdminTopics;

impl Topics for AdminTopics {
    fn create(&self, bootstrap: &str, names: &[String], partitions: u32) -> Result<(), String> {
        let run = || -> Result<(), AdminError> {
            if admin::supports(bootstrap, ApiKey::CreateTopics)? {
                admin::create_topics(bootstrap, names, partitions)?;
            }
            Ok(())
        };
        run().map_err(|e| e.to_string())
    }

    fn delete(&self, bootstrap: &str, names: &[String]) -> Result<(), String> {
        let run = || -> Result<(), AdminError> {
            if admin::supports(bootstrap, ApiKey::DeleteTopics)? {
                admin::delete_topics(bootstrap, names)?;
            }
            Ok(())
        };
        run().map_err(|e| e.to_string())
    }
}

/// The progress bar, measured in estimated seconds so its ETA follows the actual pace.
struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    done: std::cell::Cell<usize>,
    to_run: std::cell::Cell<usize>,
    current_s: std::cell::Cell<f64>,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        Progress {
            bar: None,
            lines: !quiet && !terminal,
            done: Default::default(),
            to_run: Default::default(),
            current_s: Default::default(),
        }
        .with_bar(!quiet && terminal)
    }

    fn with_bar(mut self, on: bool) -> Progress {
        if on {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {percent}% ETA {eta_precise}\n{msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(500));
            self.bar = Some(bar);
        }
        self
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn measuring_limits(&self, seconds: f64) {
        if self.lines || self.bar.is_some() {
            eprintln!("weir tune: measuring the machine's limits (about {seconds:.0} s)");
        }
    }

    fn limits(&self, limits: &bench::limits::Limits) {
        if self.lines || self.bar.is_some() {
            eprintln!("weir tune: {}", limits.caption());
        }
    }

    fn begin(&self, total: usize, to_run: usize, estimate_s: f64) {
        self.to_run.set(to_run);
        if let Some(bar) = &self.bar {
            bar.set_length(estimate_s.ceil() as u64);
        }
        if self.lines || self.bar.is_some() {
            eprintln!(
                "weir tune: {to_run} of {total} points to run, at most {:.1} min",
                estimate_s / 60.0
            );
        }
    }

    fn point_started(&self, point: &Point, seconds: f64) {
        self.current_s.set(seconds);
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "point {}/{}: {}",
                self.done.get() + 1,
                self.to_run.get(),
                point.id()
            ));
        }
    }

    fn point_done(&self, record: &PointRecord) {
        self.done.set(self.done.get() + 1);
        if let Some(bar) = &self.bar {
            bar.inc(self.current_s.get().ceil() as u64);
        }
        if self.lines {
            let figures = match (&record.summary, &record.error) {
                (_, Some(e)) => format!("error: {e}"),
                (Some(s), None) => format!(
                    "{:.2} MB/s, publish p99 {:.2} ms",
                    s.mb_per_s.median, s.publish_p99_ms.median
                ),
                (None, None) => "no figures".into(),
            };
            eprintln!(
                "weir tune: point {}/{} {}: {figures}",
                self.done.get(),
                self.to_run.get(),
                record.id
            );
        }
    }
}
