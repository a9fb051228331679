//! A single `weir coord` node with its ZooKeeper frontend (`--zk-addr`), for the tests that
//! drive it with ZooKeeper clients (zk_cli.rs, zk_load.rs).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, try_run};

/// A running `weir coord --zk-addr` node (single-member ensemble); killed on drop.
pub struct CoordNode {
    child: Child,
    dir: tempfile::TempDir,
    /// weir's native coordinator address.
    pub native: String,
    /// The ZooKeeper frontend's address.
    pub zk: String,
}

impl CoordNode {
    pub fn start() -> CoordNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let native = format!("127.0.0.1:{}", free_port());
        let zk = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("coord.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["coord", "--id", "1", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen", &native, "--zk-addr", &zk])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning weir coord");
        let node = CoordNode {
            child,
            dir,
            native,
            zk,
        };
        // Serving: the native side knows a leader and the ZooKeeper port accepts connections.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = try_run(
                Command::new(env!("CARGO_BIN_EXE_weir")).args([
                    "coord",
                    "status",
                    "--server",
                    &node.native,
                ]),
                b"",
                Duration::from_secs(10),
            );
            if status.is_ok_and(|s| s.contains("\"is_leader\":true"))
                && TcpStream::connect(&node.zk).is_ok()
            {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "weir coord not serving: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        super::read(&self.dir.path().join("coord.log"))
    }

    /// `weir coord SUBCOMMAND --server NATIVE ARGS` (the native protocol).
    pub fn native(&self, sub: &str, args: &[&str]) -> Result<String, String> {
        try_run(
            Command::new(env!("CARGO_BIN_EXE_weir"))
                .args(["coord", sub, "--server", &self.native])
                .args(args),
            b"",
            Duration::from_secs(10),
        )
    }
}

impl Drop for CoordNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
