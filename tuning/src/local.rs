//! local — the broker `--local` runs: `weir serve` as a child process on a fresh data directory
//! (`RESULTS.broker/`, next to the results file, marked as ours) and a free loopback port, with
//! one broker variant's weir.toml settings; killed with the sweep (SIGTERM on drop, and the
//! kernel's parent-death signal if the sweep itself is killed). The directory is removed when
//! the broker stops, and — when a killed sweep left it behind — when the next one starts.
//!
//! Owns starting, watching and stopping that process and its directory. Must not measure.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::TuneError;

/// How long a starting broker may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping broker may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// The file that marks a directory as a `--local` broker's (only such a directory is removed).
const MARKER: &str = ".weir-tune-broker";

/// A running local broker.
pub struct LocalBroker {
    child: Child,
    /// Where clients bootstrap (from the ready line).
    pub addr: String,
    pub pid: u32,
    /// The data directory, the config file and the log live here; removed on drop.
    dir: PathBuf,
}

impl LocalBroker {
    /// Starts `weir_exe serve` with `settings` (weir.toml keys) in `dir` (created; a previous
    /// broker's directory there is removed first; anything else there is refused).
    pub fn start(
        weir_exe: &Path,
        settings: &BTreeMap<String, toml::Value>,
        dir: &Path,
    ) -> Result<LocalBroker, TuneError> {
        let fail = |what: String| TuneError::Broker(what);
        fresh_dir(dir)?;
        let dir = dir.to_path_buf();
        let mut table = toml::Table::new();
        for (k, v) in settings {
            table.insert(k.clone(), v.clone());
        }
        let data_dir = dir.join("data");
        table.insert(
            "data.dir".into(),
            toml::Value::String(data_dir.display().to_string()),
        );
        table.insert(
            "kafka.addr".into(),
            toml::Value::String("127.0.0.1:0".into()),
        );
        let config = dir.join("weir.toml");
        let text = toml::to_string(&table)
            .map_err(|e| fail(format!("writing the broker settings: {e}")))?;
        std::fs::write(&config, text)
            .map_err(|e| fail(format!("writing {}: {e}", config.display())))?;
        let log = dir.join("serve.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|e| fail(format!("creating {}: {e}", log.display())))?;
        let mut cmd = Command::new(weir_exe);
        cmd.arg("serve")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            // Its own process group: a Ctrl-C at the terminal stops the sweep (which then stops
            // the broker), not the broker under a running repetition.
            .process_group(0);
        // SAFETY: prctl(2) only, between fork and exec: the broker dies with the sweep even when
        // the sweep is killed with SIGKILL.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("starting {} serve: {e}", weir_exe.display())))?;
        let pid = child.id();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(fail("no stdout from weir serve".into()));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        // `weir: serving Kafka on ADDR (advertised HOST:PORT), ...`
        let ready = rx.recv_timeout(READY_TIMEOUT).ok().and_then(|line| {
            line.split_once("serving Kafka on ")
                .and_then(|(_, rest)| rest.split([' ', ',', ')']).next())
                .map(str::to_string)
        });
        match ready {
            Some(addr) => Ok(LocalBroker {
                child,
                addr,
                pid,
                dir,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let log = tail(&log);
                let _ = std::fs::remove_dir_all(&dir);
                Err(fail(format!("weir serve did not become ready: {log}")))
            }
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The end of its log (for errors).
    pub fn log_tail(&self) -> String {
        tail(&self.dir.join("serve.log"))
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) {
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Makes `dir` an empty broker directory: removes a previous broker's (it holds [`MARKER`]),
/// refuses anything else that exists.
fn fresh_dir(dir: &Path) -> Result<(), TuneError> {
    let fail = |what: String| TuneError::Broker(format!("{}: {what}", dir.display()));
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            return Err(fail(
                "exists and is not a weir tune broker directory: move it away".into(),
            ));
        }
        std::fs::remove_dir_all(dir).map_err(|e| fail(format!("removing it: {e}")))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("creating it: {e}")))?;
    std::fs::write(
        dir.join(MARKER),
        "a `weir tune sweep --local` broker's data; removed with it\n",
    )
    .map_err(|e| fail(format!("marking it: {e}")))
}

/// The last 2 KB of a log file.
fn tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let start = text.len().saturating_sub(2048);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Bytes the process has written to storage (/proc/PID/io write_bytes), if readable.
pub fn write_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}
