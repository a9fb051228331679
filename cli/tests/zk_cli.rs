//! Apache ZooKeeper's own CLI (zkCli, `org.apache.zookeeper.ZooKeeperMain` from Debian's
//! `zookeeper` package) scripted against a `weir coord` node's ZooKeeper frontend (`--zk-addr`):
//! create/get/set/stat/ls/delete, an ephemeral node that dies with its session, sequential
//! names, the error messages of NODEEXISTS/NOTEMPTY/NONODE, and the same tree seen through
//! weir's native client.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;
use support::run;
use support::zk::CoordNode;

/// Classpath of the packaged ZooKeeper (the jar's manifest lists its dependencies).
fn zk_classpath() -> String {
    std::env::var("ZK_CLASSPATH")
        .unwrap_or_else(|_| "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar".into())
}

/// Runs zkCli against `server` with `script` on stdin; returns stdout and stderr together, in
/// order (zkCli prints "Created …" and errors on stderr, results on stdout). zkCli's exit status
/// is its last command's, so scripts end with one that succeeds.
fn zkcli(server: &str, script: &str) -> String {
    assert!(
        Path::new("/usr/share/java/zookeeper.jar").exists()
            || std::env::var("ZK_CLASSPATH").is_ok(),
        "ZooKeeper's jars are missing: apt-get install zookeeper (scripts/test installs it)"
    );
    let cmd = format!(
        "exec java -Xmx128m -XX:TieredStopAtLevel=1 -cp '{}' org.apache.zookeeper.ZooKeeperMain -server {server} 2>&1",
        zk_classpath()
    );
    run(
        Command::new("sh").args(["-c", &cmd]),
        script.as_bytes(),
        Duration::from_secs(60),
    )
}

/// Index of the first line equal to `want` (after trimming), or a failure showing `out`.
fn line_at(out: &str, want: &str) -> usize {
    out.lines()
        .position(|l| l.trim() == want)
        .unwrap_or_else(|| panic!("no line {want:?} in zkCli output:\n{out}"))
}

#[test]
fn zkcli_scripted_session_against_weir_coord() {
    let node = CoordNode::start();

    // Session 1: CRUD, an ephemeral and two sequential nodes, and three refusals.
    let out = zkcli(
        &node.zk,
        "create /zkcli hello\n\
         get /zkcli\n\
         set /zkcli world\n\
         get /zkcli\n\
         stat /zkcli\n\
         create -e /zkcli/eph e\n\
         stat /zkcli/eph\n\
         create -s /zkcli/seq- s1\n\
         create -s /zkcli/seq- s2\n\
         ls /zkcli\n\
         create /zkcli again\n\
         delete /zkcli\n\
         delete /zkcli/missing\n\
         ls /\n\
         quit\n",
    );
    let log = node.log();
    let ctx = format!("zkCli output:\n{out}\ncoord log:\n{log}");
    assert!(
        line_at(&out, "Created /zkcli") < line_at(&out, "hello"),
        "{ctx}"
    );
    assert!(line_at(&out, "hello") < line_at(&out, "world"), "{ctx}");
    // stat of /zkcli after one set: version 1, five bytes, no children, not ephemeral.
    let stat_at = line_at(&out, "dataVersion = 1");
    assert!(stat_at > line_at(&out, "world"), "{ctx}");
    for want in [
        "dataLength = 5",
        "numChildren = 0",
        "ephemeralOwner = 0x0",
        "aclVersion = 0",
    ] {
        line_at(&out, want);
    }
    // The ephemeral node's stat names its session.
    line_at(&out, "Created /zkcli/eph");
    let owners: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ephemeralOwner = "))
        .collect();
    assert_eq!(owners.len(), 2, "{ctx}");
    assert_ne!(owners[1], "0x0", "ephemeral node without an owner: {ctx}");
    // Sequential names follow the parent's cversion, as ZooKeeper's do (eph was child 0).
    line_at(&out, "Created /zkcli/seq-0000000001");
    line_at(&out, "Created /zkcli/seq-0000000002");
    line_at(&out, "[eph, seq-0000000001, seq-0000000002]");
    line_at(&out, "Node already exists: /zkcli");
    line_at(&out, "Node not empty: /zkcli");
    line_at(&out, "Node does not exist: /zkcli/missing");

    // The same tree through weir's native protocol.
    assert_eq!(node.native("get", &["/zkcli"]).unwrap().trim(), "world");

    // Session 2: session 1 closed, so its ephemeral node is gone; clean up and check.
    let out = zkcli(
        &node.zk,
        "ls /zkcli\n\
         get /zkcli/seq-0000000002\n\
         delete /zkcli/seq-0000000001\n\
         delete /zkcli/seq-0000000002\n\
         delete /zkcli\n\
         stat /zkcli\n\
         ls /\n\
         quit\n",
    );
    let ctx = format!("zkCli output:\n{out}\ncoord log:\n{}", node.log());
    assert!(
        line_at(&out, "[seq-0000000001, seq-0000000002]") < line_at(&out, "s2"),
        "{ctx}"
    );
    line_at(&out, "Node does not exist: /zkcli");
    let native = node.native("stat", &["/zkcli"]);
    assert!(
        native
            .as_ref()
            .is_err_and(|e| e.contains("NoNode") || e.contains("no node")),
        "/zkcli still exists for the native client: {native:?}"
    );

    // One-shot mode (command on the command line), as scripts use it.
    let out = {
        let cmd = format!(
            "exec java -Xmx128m -XX:TieredStopAtLevel=1 -cp '{}' org.apache.zookeeper.ZooKeeperMain -server {} create /oneshot x 2>&1",
            zk_classpath(),
            node.zk
        );
        run(
            Command::new("sh").args(["-c", &cmd]),
            b"",
            Duration::from_secs(60),
        )
    };
    line_at(&out, "Created /oneshot");
    assert_eq!(node.native("get", &["/oneshot"]).unwrap().trim(), "x");
}
