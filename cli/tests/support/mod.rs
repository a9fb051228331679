//! Shared by the process-level tests: a `weir serve` child process, running client commands with
//! a deadline, and raw Kafka frames on a socket. Each test binary uses a part of it; each keeps
//! its own thin wrappers (which arguments, where the log goes).
#![allow(dead_code)]

pub mod fault_proxy;
pub mod zk;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `weir serve`; killed on drop, `stop` for a checked clean shutdown.
pub struct ServeProcess {
    child: Option<Child>,
    /// The address from the ready line (what clients bootstrap with).
    pub addr: String,
    /// HOST:PORT the ready line says is advertised.
    pub advertised: String,
    stderr_path: PathBuf,
}

impl ServeProcess {
    /// `weir serve ARGS`, its stderr written to `stderr_path`; waits for the ready line.
    pub fn start(stderr_path: &Path, args: &[&str]) -> ServeProcess {
        ServeProcess::try_start(stderr_path, None, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A one-shard broker on a free loopback port with one partition per auto-created topic, its
    /// data in `DIR/data` and its log in `DIR/serve.stderr`, plus `extra` flags.
    pub fn one_shard(dir: &Path, extra: &[&str]) -> ServeProcess {
        ServeProcess::one_shard_at(&dir.join("data"), &dir.join("serve.stderr"), extra)
    }

    /// `one_shard` with its data in `data` and its log in `stderr_path`.
    pub fn one_shard_at(data: &Path, stderr_path: &Path, extra: &[&str]) -> ServeProcess {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut args = vec![
            "--data-dir",
            data.to_str().expect("utf-8 temp path"),
            "--shards",
            "1",
            "--kafka-addr",
            &addr,
            "--num-partitions",
            "1",
        ];
        args.extend_from_slice(extra);
        ServeProcess::start(stderr_path, &args)
    }

    /// As `start`, run in `cwd` (so relative paths in ARGS resolve the way a user's shell would).
    pub fn start_in(cwd: &Path, stderr_path: &Path, args: &[&str]) -> ServeProcess {
        ServeProcess::try_start(stderr_path, Some(cwd), args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As `start` (in `cwd` if given), but a broker that exits or stays silent instead of
    /// printing its ready line is an `Err` with its log, for tests that expect a refusal.
    pub fn try_start(
        stderr_path: &Path,
        cwd: Option<&Path>,
        args: &[&str],
    ) -> Result<ServeProcess, String> {
        let stderr = std::fs::File::create(stderr_path).expect("stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        let mut child = cmd
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "0")
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
        let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "weir serve did not become ready: {}",
                read(stderr_path)
            ));
        };
        // `weir: serving Kafka on ADDR (advertised HOST:PORT), ...`
        let field = |prefix: &str| {
            line.split_once(prefix)
                .and_then(|(_, rest)| rest.split([' ', ')', ',']).next())
                .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
                .to_string()
        };
        Ok(ServeProcess {
            addr: field("weir: serving Kafka on "),
            advertised: field("(advertised "),
            child: Some(child),
            stderr_path: stderr_path.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything the broker logged so far.
    pub fn log(&self) -> String {
        read(&self.stderr_path)
    }

    /// A new connection to `addr`, with a 10 s read timeout.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    /// `run`, but a failing client shows the broker's log too.
    pub fn run_client(&self, cmd: &mut Command, input: &[u8], limit: Duration) -> String {
        try_run(cmd, input, limit).unwrap_or_else(|e| panic!("{e}\nbroker log:\n{}", self.log()))
    }

    /// SIGTERM; the exit status must be success and the log must say every log closed cleanly.
    pub fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        eprintln!(
            "test {}: SIGTERM to weir serve pid {}",
            std::process::id(),
            child.id()
        );
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

/// A file's text, or "" if it cannot be read.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A loopback port that was free a moment ago.
/// A port nobody listens on, for a test that needs to know it before the process binds it.
/// Taken from 20000..32000, below the kernel's ephemeral range (32768..), so the port-0 binds of
/// brokers started meanwhile by other tests cannot be handed the same port; one counter per test
/// binary (tests in it run on threads) so two calls never return the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + step) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN)
}

/// Waits for `child` to exit; past `limit` it is killed and the test fails naming `what`.
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
    try_run(cmd, input, limit).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a client command with `input` on stdin; returns stdout, or what went wrong on a non-zero
/// exit or past `limit` (then with what it printed so far: a Python client is first sent SIGABRT
/// so that `PYTHONFAULTHANDLER` dumps where it hung). A command that cannot be started (not
/// installed) fails the test.
pub fn try_run(cmd: &mut Command, input: &[u8], limit: Duration) -> Result<String, String> {
    let mut child = cmd
        .env("PYTHONFAULTHANDLER", "1")
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
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGABRT) };
            std::thread::sleep(Duration::from_millis(500));
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    match status {
        None => Err(format!(
            "{cmd:?} timed out after {limit:?}\nstdout:\n{out}\nstderr:\n{err}"
        )),
        Some(status) if !status.success() => Err(format!(
            "{cmd:?} failed with {status}\nstdout:\n{out}\nstderr:\n{err}"
        )),
        Some(_) => Ok(out),
    }
}

/// kcat reading `topic` from the beginning to the end offsets it sees at start (`-e`), a line per
/// record as `format` (kcat's `-f`) says; returns stdout.
pub fn kcat_consume(addr: &str, topic: &str, format: &str, limit: Duration) -> String {
    run(
        Command::new("kcat").args([
            "-b",
            addr,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            format,
        ]),
        b"",
        limit,
    )
}

/// kcat's read of `topic` once it shows at least `expected` records, or the last read after
/// `wait` (kcat reads to the end offsets it sees at start; records produced with acks=0 may still
/// be on their way). Each read is bounded by `limit`.
pub fn kcat_consume_at_least(
    addr: &str,
    topic: &str,
    format: &str,
    expected: usize,
    wait: Duration,
    limit: Duration,
) -> String {
    let deadline = Instant::now() + wait;
    loop {
        let out = kcat_consume(addr, topic, format, limit);
        if out.lines().count() >= expected || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Returns once `topic` holds `expected` records (60 s at most). A new producer's connection may
/// land on another shard than the previous one's, and nothing orders the previous connection's
/// requests (acks=0 ones are not waited for) before the new one's: a test that checks per-key
/// order across producer runs waits with this between runs (seen once as "record … after …";
/// the clients' scripts wait the same way).
pub fn kcat_wait_stored(addr: &str, topic: &str, expected: usize, what: &str, limit: Duration) {
    let wait = Duration::from_secs(60);
    let out = kcat_consume_at_least(addr, topic, "%o\\n", expected, wait, limit);
    let stored = out.lines().count();
    assert!(
        stored >= expected,
        "{what}: {stored} of {expected} records stored after 60 s"
    );
}

/// Sends one raw frame and reads one response frame (None if the broker closed the connection).
pub fn roundtrip(stream: &mut TcpStream, body: &[u8]) -> Option<Vec<u8>> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    stream.write_all(&frame).ok()?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut resp = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut resp).ok()?;
    Some(resp)
}

/// Request header v1 (api key, version, correlation id, null client id).
pub fn header(api_key: i16, version: i16, correlation: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&api_key.to_be_bytes());
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&correlation.to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b
}

/// Every batch in a partition's segment files under a `weir serve --data-dir`: (codec id, records count, lastOffsetDelta),
/// read from the on-disk v2 headers.
pub fn disk_batches(data: &Path, topic: &str, partition: i32) -> Vec<(i16, i32, i32)> {
    let dir = data.join("logs").join(format!("{topic}-{partition}"));
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("partition dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for path in logs {
        let bytes = std::fs::read(&path).expect("segment");
        let mut at = 0;
        while at + 61 <= bytes.len() {
            let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            if len <= 0 {
                break; // preallocated zeros after the last batch
            }
            let codec = i16::from_be_bytes(bytes[at + 21..at + 23].try_into().unwrap()) & 7;
            let last_delta = i32::from_be_bytes(bytes[at + 23..at + 27].try_into().unwrap());
            let count = i32::from_be_bytes(bytes[at + 57..at + 61].try_into().unwrap());
            out.push((codec, count, last_delta));
            at += 12 + len as usize;
        }
    }
    out
}
