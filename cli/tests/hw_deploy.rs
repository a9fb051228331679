//! `weir deploy render`: a three-host file renders per-host configs and units that parse back
//! consistently; bad hosts files are refused by name; the units pass `systemd-analyze verify`
//! (where installed); and one rendered host really runs: its coordinator and broker started in a
//! network namespace at the host's fixed IP, reached by kcat from another namespace.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

fn render(hosts: &str) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.toml");
    std::fs::write(&file, hosts).unwrap();
    let out = weir()
        .args(["deploy", "render", "--hosts"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    (dir, out)
}

fn three_hosts(binary: &str) -> String {
    let mut s = format!("[cluster]\nzk_port = 2181\nweir_binary = \"{binary}\"\n\n");
    for (id, az) in [(1, "a"), (2, "b"), (3, "c")] {
        s.push_str(&format!(
            "[[host]]\nnode_id = {id}\naddress = \"10.0.{id}.10\"\nrack = \"us-east-1{az}\"\n\
             coordinator = true\ncores = [1, 2, 3]\ncoord_core = 0\nirq_cores = [0]\n\n"
        ));
    }
    s
}

/// `KEY="a b c"` → the words.
fn env_words(text: &str, key: &str) -> Vec<String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {text}"));
    line.trim_matches('"')
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn flags(words: &[String]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut it = words.iter().peekable();
    while let Some(w) = it.next() {
        let value = match it.peek() {
            Some(v) if !v.starts_with("--") => it.next().unwrap().clone(),
            _ => String::new(),
        };
        m.insert(w.clone(), value);
    }
    m
}

#[test]
fn three_hosts_render_configs_and_units_that_parse_back() {
    let (dir, out) = render(&three_hosts("/usr/local/bin/weir"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out_dir = dir.path().join("out");
    let mut peers = Vec::new();
    for id in 1..=3 {
        let node = out_dir.join(format!("node-{id}"));
        let broker: toml::Table =
            toml::from_str(&std::fs::read_to_string(node.join("weir-broker.toml")).unwrap())
                .unwrap();
        let addr = format!("10.0.{id}.10:9092");
        assert_eq!(broker["kafka"]["addr"].as_str(), Some(addr.as_str()));
        assert_eq!(broker["advertised"]["addr"].as_str(), Some(addr.as_str()));
        assert_eq!(broker["node"]["id"].as_integer(), Some(id));
        let az = ["us-east-1a", "us-east-1b", "us-east-1c"][id as usize - 1];
        assert_eq!(broker["broker"]["rack"].as_str(), Some(az));
        let servers: Vec<&str> = broker["coord"]["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            servers,
            ["10.0.1.10:2281", "10.0.2.10:2281", "10.0.3.10:2281"]
        );
        let env = std::fs::read_to_string(node.join("weir-coord.env")).unwrap();
        let f = flags(&env_words(&env, "WEIR_COORD_ARGS"));
        assert_eq!(f["--id"], id.to_string());
        assert_eq!(f["--listen"], format!("10.0.{id}.10:2281"));
        assert_eq!(f["--zk-addr"], format!("10.0.{id}.10:2181"));
        assert_eq!(f["--cores"], "0");
        peers.push(f["--peers"].clone());
        let unit = std::fs::read_to_string(node.join("weir-broker.service")).unwrap();
        for line in [
            "CPUAffinity=1 2 3",
            "LimitMEMLOCK=infinity",
            "LimitNOFILE=1048576",
            concat!(
                "ExecStartPre=-+/usr/local/bin/weir hw tune --apply",
                " --data-dir /var/lib/weir/broker --irq-cpus 0"
            ),
            "ExecStart=/usr/local/bin/weir serve --config /etc/weir/weir-broker.toml",
            "After=network-online.target weir-coord.service",
        ] {
            assert!(
                unit.lines().any(|l| l == line),
                "{line:?} missing from\n{unit}"
            );
        }
        let coord = std::fs::read_to_string(node.join("weir-coord.service")).unwrap();
        assert!(coord.contains("CPUAffinity=0\n") && coord.contains("coord $WEIR_COORD_ARGS"));
    }
    assert!(
        peers
            .iter()
            .all(|p| p == "1=10.0.1.10:2281,2=10.0.2.10:2281,3=10.0.3.10:2281"),
        "{peers:?}"
    );
}

/// The second host's tail up to the third host's id: replaced to leave two coordinators.
const THIRD_COORDINATOR: &str =
    "coordinator = true\ncores = [1, 2, 3]\ncoord_core = 0\nirq_cores = [0]\n\n[[host]]\nnode_id = 3";

#[test]
fn wildcard_loopback_duplicate_and_unnamed_hosts_are_refused() {
    let base = three_hosts("/usr/local/bin/weir");
    for (from, to, named) in [
        ("10.0.1.10", "0.0.0.0", "0.0.0.0"),
        ("10.0.1.10", "127.0.0.1", "127.0.0.1"),
        ("10.0.1.10", "::1", "::1"),
        ("10.0.1.10", "localhost", "localhost"),
        ("10.0.2.10", "10.0.1.10", "10.0.1.10"),
        ("node_id = 2", "node_id = 1", "node_id 1"),
        ("10.0.3.10", "kafka-3.internal", "listen_ip"),
        (
            THIRD_COORDINATOR,
            "coordinator = false\n[[host]]\nnode_id = 3",
            "odd number",
        ),
    ] {
        let bad = base.replacen(from, to, 1);
        assert_ne!(bad, base, "{from} not found");
        let (_dir, out) = render(&bad);
        assert!(!out.status.success(), "{from} -> {to} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{from} -> {to}: {err}");
    }
    let (_dir, out) = render(&base.replacen("rack", "rak", 1));
    assert!(!out.status.success(), "a misspelt key must be refused");
}

#[test]
fn rendered_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze not installed: skipped");
        return;
    }
    let (dir, out) = render(&three_hosts(env!("CARGO_BIN_EXE_weir")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node = dir.path().join("out/node-1");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(node.join("weir-coord.service"))
        .arg(node.join("weir-broker.service"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Only complaints about these files count (the host's own units may have warnings).
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("weir-")).collect();
    assert!(out.status.success() && ours.is_empty(), "{err}");
}

/// Two network namespaces joined by a veth pair; deleted on drop.
struct Namespaces {
    names: [String; 2],
}

impl Namespaces {
    fn new(tag: &str, ips: [&str; 2]) -> Namespaces {
        let names = [format!("whw-{tag}-a"), format!("whw-{tag}-b")];
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("ip");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        for n in &names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
            ip(&["netns", "add", n]);
        }
        let (va, vb) = (format!("whw{tag}a"), format!("whw{tag}b"));
        ip(&[
            "link", "add", &va, "netns", &names[0], "type", "veth", "peer", "name", &vb, "netns",
            &names[1],
        ]);
        for (n, v, addr) in [(&names[0], &va, ips[0]), (&names[1], &vb, ips[1])] {
            ip(&["-n", n, "addr", "add", &format!("{addr}/24"), "dev", v]);
            ip(&["-n", n, "link", "set", v, "up"]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        Namespaces { names }
    }

    fn exec(&self, which: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.names[which], program]);
        c
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_line(child: &mut Child, prefix: &str, log: &Path) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(_) => panic!(
                "no {prefix:?} line: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }
}

fn kcat(ns: &Namespaces, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = ns.exec(1, "kcat");
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .expect("kcat is missing: scripts/test installs it");
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kcat {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn one_rendered_host_runs_at_its_fixed_ip_and_kcat_reaches_it_from_another_namespace() {
    let tag = format!("{}", std::process::id() % 100_000);
    let ns = Namespaces::new(&tag, ["10.231.7.11", "10.231.7.12"]);
    let data = tempfile::tempdir().unwrap();
    let hosts = format!(
        "[cluster]\ndata_dir = \"{}\"\n\n[[host]]\nnode_id = 7\naddress = \"10.231.7.11\"\n\
         rack = \"us-east-1a\"\ncoordinator = true\ncores = [0]\n",
        data.path().display()
    );
    let (dir, out) = render(&hosts);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node: PathBuf = dir.path().join("out/node-7");
    let env = std::fs::read_to_string(node.join("weir-coord.env")).unwrap();
    let coord_log = dir.path().join("coord.log");
    let mut coord = ns.exec(0, env!("CARGO_BIN_EXE_weir"));
    coord
        .arg("coord")
        .args(env_words(&env, "WEIR_COORD_ARGS"))
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&coord_log).unwrap());
    let _coord = Killed(coord.spawn().unwrap());
    let serve_log = dir.path().join("serve.log");
    let mut serve = ns.exec(0, env!("CARGO_BIN_EXE_weir"));
    serve
        .args(["serve", "--config"])
        .arg(node.join("weir-broker.toml"))
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&serve_log).unwrap());
    let mut serve = Killed(serve.spawn().unwrap());
    let ready = wait_for_line(&mut serve.0, "weir: serving Kafka on", &serve_log);
    assert!(ready.contains("10.231.7.11:9092"), "{ready}");
    let metadata = kcat(&ns, &["-b", "10.231.7.11:9092", "-L", "-m", "10"], None);
    assert!(
        metadata.contains("broker 7 at 10.231.7.11:9092"),
        "{metadata}"
    );
    kcat(
        &ns,
        &["-b", "10.231.7.11:9092", "-P", "-t", "fixed-ip", "-m", "10"],
        Some("hello from b\n"),
    );
    let got = kcat(
        &ns,
        &[
            "-b",
            "10.231.7.11:9092",
            "-C",
            "-t",
            "fixed-ip",
            "-o",
            "beginning",
            "-e",
            "-m",
            "10",
        ],
        None,
    );
    assert_eq!(got.trim(), "hello from b");
}
