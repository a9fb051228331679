//! Shared by the process-level tests: a `weir serve` child process started on a free loopback
//! port, and running client commands with a deadline. Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `weir serve`; killed on drop, `stop` for a checked clean shutdown.
pub struct ServeProcess {
    child: Option<Child>,
    /// The address from the ready line (what clients bootstrap with).
    pub addr: String,
    stderr_path: PathBuf,
}

impl ServeProcess {
    /// `weir serve --data-dir DATA --kafka-addr 127.0.0.1:0 EXTRA...`, run in `cwd` (so a relative
    /// `data` is resolved the way a user's shell would), with its stderr kept beside `cwd`.
    pub fn start_in(cwd: &Path, data: &Path, extra: &[&str]) -> ServeProcess {
        let stderr_path = cwd.join(format!(
            "serve-{}.stderr",
            data.file_name()
                .map_or("data".into(), |n| n.to_string_lossy())
        ));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .expect("stderr file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .current_dir(cwd)
            .args(["serve", "--data-dir"])
            .arg(data)
            .args(["--kafka-addr", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawning weir serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("weir serve did not become ready: {}", read(&stderr_path)));
        let addr = line
            .strip_prefix("weir: serving Kafka on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
            .to_string();
        ServeProcess {
            child: Some(child),
            addr,
            stderr_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything the broker logged so far.
    pub fn log(&self) -> String {
        read(&self.stderr_path)
    }

    /// SIGTERM; the exit status must be success and the log must say every log closed cleanly.
    pub fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = wait_for(&mut child, Duration::from_secs(30), "weir serve to stop");
        let log = self.log();
        assert!(status.success(), "weir serve exited with {status}: {log}");
        assert!(log.contains("stopped cleanly"), "{log}");
    }

    /// SIGKILL: no flush, no clean-shutdown marker.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub fn wait_for(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a client command with `input` on stdin; returns stdout; fails on a non-zero exit.
pub fn run(cmd: &mut Command, input: &[u8], limit: Duration) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmd:?} (is it installed? scripts/test installs it): {e}")
        });
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = wait_for(&mut child, limit, &format!("{cmd:?}"));
    let _ = writer.join();
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    assert!(
        status.success(),
        "{cmd:?} failed with {status}\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}
