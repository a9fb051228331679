//! README's quickstart, as a user types it: `weir serve --data-dir ./data` (a relative data
//! directory, the embedded coordinator), kcat producing to a topic that does not exist yet
//! (auto-created) and consuming it back, then SIGTERM and a clean stop.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;
use support::{run, ServeProcess};

/// `weir serve --data-dir ./data` run in `cwd`, its stderr kept beside the data directory.
fn serve_in(cwd: &Path) -> ServeProcess {
    ServeProcess::start_in(
        cwd,
        &cwd.join("serve-data.stderr"),
        &["--data-dir", "./data", "--kafka-addr", "127.0.0.1:0"],
    )
}

fn kcat(addr: &str, args: &[&str], input: &[u8]) -> String {
    run(
        Command::new("kcat").args(["-b", addr]).args(args),
        input,
        Duration::from_secs(60),
    )
}

/// Every record of the quickstart topic, from the beginning, printed with `format`.
fn kcat_consume(addr: &str, format: &str) -> String {
    support::kcat_consume(addr, "quickstart", format, Duration::from_secs(60))
}

#[test]
fn quickstart_with_a_relative_data_dir_and_kcat() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let broker = serve_in(tmp.path());
    let addr = broker.addr.clone();

    kcat(
        &addr,
        &["-P", "-t", "quickstart", "-K", ":"],
        b"k1:hello\nk2:weir\nk1:again\n",
    );
    let out = kcat_consume(&addr, "%k=%s\n");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["k1=again", "k1=hello", "k2=weir"], "{out}");
    assert!(
        tmp.path().join("data/logs/quickstart-0").is_dir(),
        "the log lives under the relative data dir"
    );
    broker.stop();

    // A restart on the same relative data dir serves the same records.
    let broker = serve_in(tmp.path());
    let out = kcat_consume(&broker.addr, "%s\n");
    assert_eq!(out.lines().count(), 3, "{out}");
    broker.stop();
}
