//! Consumer groups with real clients against `weir serve` (issue #5): kafka-python, kafkajs and
//! confluent-kafka (range and cooperative-sticky) groups over a 6-partition topic — three members get two partitions each; one
//! leaves and the other two get three each (ListGroups and DescribeGroups show it through the
//! admin clients); every record is consumed exactly once across the
//! rebalance (members commit synchronously after each poll); committed offsets survive a SIGTERM
//! restart and a kill -9; a restarted member resumes from its commit.
//!
//! The group protocol's error codes and offsets expiry are tested in-process, request by request,
//! in `engine/tests/groups.rs`; these are the real-client conformance layer.
//!
//! Client code: `tests/clients/groups.py` (kafka-python, confluent-kafka, and the producer and
//! committed-offset reader) and `tests/clients/kafkajs_groups.js` (kafkajs members).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::ServeProcess;

const LIMIT: Duration = Duration::from_secs(90);
const PARTITIONS: usize = 6;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/groups.py")
}

fn start(data: &Path, tag: &str) -> ServeProcess {
    let d = data.to_str().expect("utf-8 path");
    ServeProcess::start(
        &data.with_extension(format!("{tag}.stderr")),
        &[
            "--data-dir",
            d,
            "--shards",
            "2",
            "--log-segment-bytes",
            "8388608",
            "--kafka-addr",
            "127.0.0.1:0",
        ],
    )
}

fn produce(b: &ServeProcess, topic: &str, first: usize, n: usize) {
    let mut c = Command::new("python3");
    c.arg(script()).args([
        "produce",
        &b.addr,
        topic,
        &PARTITIONS.to_string(),
        &first.to_string(),
        &n.to_string(),
    ]);
    b.run_client(&mut c, b"", LIMIT);
}

/// Committed offset of each partition, as the client reads it.
fn committed(b: &ServeProcess, lib: &str, group: &str, topic: &str) -> Vec<i64> {
    let mut c = Command::new("python3");
    c.arg(script()).args([
        "committed",
        lib,
        &b.addr,
        group,
        topic,
        &PARTITIONS.to_string(),
    ]);
    let out = b.run_client(&mut c, b"", LIMIT);
    let mut offsets = vec![-1; PARTITIONS];
    for line in out.lines() {
        let mut f = line.split_whitespace();
        if let (Some(p), Some(o)) = (f.next(), f.next()) {
            if let (Ok(p), Ok(o)) = (p.parse::<usize>(), o.parse::<i64>()) {
                if p < PARTITIONS {
                    offsets[p] = o;
                }
            }
        }
    }
    offsets
}

/// ListGroups and DescribeGroups through `lib`'s admin client: the group is listed and Stable,
/// with two members holding three partitions each, all six between them.
fn check_described(b: &ServeProcess, lib: &str, group: &str) {
    let mut c = Command::new("python3");
    c.arg(script()).args(["describe", lib, &b.addr, group]);
    let out = b.run_client(&mut c, b"", LIMIT);
    assert!(
        out.lines().any(|l| l == format!("listed {group} Stable")),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "state Stable"), "{out}");
    let mut members: Vec<Vec<i32>> = out
        .lines()
        .filter_map(|l| l.strip_prefix("member "))
        .map(|ps| ps.split(',').filter_map(|p| p.parse().ok()).collect())
        .collect();
    assert_eq!(members.len(), 2, "{out}");
    assert!(members.iter().all(|m| m.len() == 3), "{out}");
    let mut all: Vec<i32> = members.drain(..).flatten().collect();
    all.sort();
    assert_eq!(all, (0..PARTITIONS as i32).collect::<Vec<_>>(), "{out}");
}

/// A group member process: writes to `out`, leaves when `stop` exists; killed on drop.
struct Member {
    child: Child,
    out: PathBuf,
    stop: PathBuf,
}

impl Member {
    fn start(dir: &Path, name: &str, lib: &str, addr: &str, group: &str, topic: &str) -> Member {
        let out = dir.join(format!("{name}.out"));
        let stop = dir.join(format!("{name}.stop"));
        let err = std::fs::File::create(dir.join(format!("{name}.err"))).expect("stderr file");
        let mut cmd = if lib == "kafkajs" {
            let mut c = Command::new("node");
            c.arg(script().with_file_name("kafkajs_groups.js"))
                .args(["consume", addr, group, topic]);
            c
        } else {
            let mut c = Command::new("python3");
            c.arg(script()).args(["consume", lib, addr, group, topic]);
            c
        };
        let child = cmd
            .arg(&out)
            .arg(&stop)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("python3");
        Member { child, out, stop }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Partitions of the newest assignment.
    fn assigned(&self) -> Option<Vec<i32>> {
        let out = self.output();
        let line = out.lines().rev().find(|l| l.starts_with("assigned"))?;
        Some(
            line.trim_start_matches("assigned")
                .trim()
                .split(',')
                .filter_map(|p| p.parse().ok())
                .collect(),
        )
    }

    /// Values of the records consumed.
    fn values(&self) -> Vec<usize> {
        self.output()
            .lines()
            .filter_map(|l| l.strip_prefix("rec "))
            .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
            .collect()
    }

    /// Leaves the group cleanly and exits.
    fn leave(mut self) {
        std::fs::write(&self.stop, b"").expect("stop file");
        let status = support::wait_for(&mut self.child, LIMIT, "a member to leave");
        assert!(status.success(), "member exited with {status}");
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, b: &ServeProcess, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\nbroker log:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every value consumed by `members`, with how many times.
fn counts(members: &[&Member]) -> BTreeMap<usize, usize> {
    let mut c = BTreeMap::new();
    for m in members {
        for v in m.values() {
            *c.entry(v).or_insert(0) += 1;
        }
    }
    c
}

fn assert_exactly_once(members: &[&Member], range: std::ops::Range<usize>) {
    let c = counts(members);
    let missing: Vec<_> = range.clone().filter(|v| !c.contains_key(v)).collect();
    let twice: Vec<_> = c.iter().filter(|(_, n)| **n > 1).map(|(v, _)| *v).collect();
    let extra: Vec<_> = c.keys().filter(|v| !range.contains(v)).collect();
    assert!(
        missing.is_empty() && twice.is_empty() && extra.is_empty(),
        "missing {missing:?}, consumed twice {twice:?}, unexpected {extra:?}"
    );
}

/// What the members wrote and logged, for a failure message.
fn member_logs(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "err" || x == "out") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let interesting: Vec<&str> = text.lines().filter(|l| !l.starts_with("rec ")).collect();
            out += &format!("== {}\n{}\n", p.display(), interesting.join("\n"));
        }
    }
    out
}

/// `lib`: the consumer (`groups.py consume LIB`); committed offsets are read with kafka-python
/// or confluent-kafka accordingly.
fn group_scenario(lib: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut broker = start(&data, "first");
    let (topic, group) = ("orders", format!("group-{lib}"));
    let reader = if lib == "kafka-python" || lib == "kafkajs" {
        "kafka-python"
    } else {
        "confluent"
    };
    produce(&broker, topic, 0, 300);

    // Three members over six partitions: two each, every record once.
    let members: Vec<Member> = (0..3)
        .map(|i| {
            Member::start(
                tmp.path(),
                &format!("m{i}"),
                lib,
                &broker.addr,
                &group,
                topic,
            )
        })
        .collect();
    wait_until("three members with two partitions each", &broker, || {
        members
            .iter()
            .all(|m| m.assigned().is_some_and(|a| a.len() == 2))
    });
    let all: Vec<&Member> = members.iter().collect();
    wait_until("300 records consumed", &broker, || {
        counts(&all).len() >= 300
    });

    // One leaves: the others get three each, and records produced after are consumed once.
    let mut members = members;
    let gone = members.pop().expect("three members");
    let gone_values = gone.values();
    gone.leave();
    wait_until("two members with three partitions each", &broker, || {
        members
            .iter()
            .all(|m| m.assigned().is_some_and(|a| a.len() == 3))
    });
    check_described(&broker, reader, &group);
    produce(&broker, topic, 300, 300);
    let both: Vec<&Member> = members.iter().collect();
    wait_until("600 records consumed", &broker, || {
        counts(&both).len() + gone_values.len() >= 600
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut everyone = BTreeMap::new();
    for v in gone_values
        .iter()
        .copied()
        .chain(both.iter().flat_map(|m| m.values()))
    {
        *everyone.entry(v).or_insert(0usize) += 1;
    }
    let twice: Vec<_> = everyone.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "consumed twice: {twice:?}\nmembers:\n{}\nbroker log:\n{}",
        member_logs(tmp.path()),
        broker.log()
    );
    assert_eq!(everyone.len(), 600, "every record consumed");
    for m in members {
        m.leave();
    }

    // Committed offsets: every partition at its end, across a SIGTERM restart and a kill -9.
    let expected = vec![100i64; PARTITIONS];
    assert_eq!(committed(&broker, reader, &group, topic), expected);
    broker.stop();
    broker = start(&data, "after-sigterm");
    assert_eq!(
        committed(&broker, reader, &group, topic),
        expected,
        "after SIGTERM restart"
    );
    broker.kill9();
    broker = start(&data, "after-kill9");
    assert_eq!(
        committed(&broker, reader, &group, topic),
        expected,
        "after kill -9 restart"
    );

    // A member starting again resumes from the commits: only the new records.
    produce(&broker, topic, 600, 120);
    let again = Member::start(tmp.path(), "again", lib, &broker.addr, &group, topic);
    wait_until("120 new records consumed", &broker, || {
        again.values().len() >= 120
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&[&again], 600..720);
    again.leave();
    broker.stop();
}

#[test]
fn kafka_python_group_rebalances_commits_and_resumes_across_restarts() {
    group_scenario("kafka-python");
}

#[test]
fn kafkajs_group_rebalances_commits_and_resumes_across_restarts() {
    group_scenario("kafkajs");
}

/// librdkafka's cooperative-sticky assignor: incremental rebalances relayed by the broker.
#[test]
fn confluent_kafka_cooperative_sticky_group_rebalances_commits_and_resumes() {
    group_scenario("confluent-cooperative");
}

#[test]
fn confluent_kafka_group_rebalances_commits_and_resumes_across_restarts() {
    group_scenario("confluent");
}

// The raw protocol's generation and member fencing (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// REBALANCE_IN_PROGRESS) is tested in-process: engine/tests/groups.rs.

// ---- `weir group list|describe` -------------------------------------------------------------

/// Runs `weir group ARGS --bootstrap ADDR` and returns its stdout.
fn weir_group(b: &ServeProcess, args: &[&str]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.arg("group").args(args).args(["--bootstrap", &b.addr]);
    b.run_client(&mut c, b"", LIMIT)
}

/// The fields after the name on `group`'s row of `weir group list` output (state and protocol
/// type), None if it is not listed.
fn row<'a>(listed: &'a str, group: &str) -> Option<Vec<&'a str>> {
    listed
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&group))
        .map(|f| f[1..].to_vec())
}

/// The partition rows of `weir group describe`: partition → (committed, log end, lag, member),
/// the numbers as printed ("-" when absent).
fn lag_rows(out: &str, topic: &str) -> BTreeMap<i32, [String; 4]> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 6 && f[0] == topic {
                let p = f[1].parse().ok()?;
                Some((p, [f[2], f[3], f[4], f[5]].map(str::to_string)))
            } else {
                None
            }
        })
        .collect()
}

/// `weir group describe` of a kafka-python group: while two members are Stable it shows them,
/// their assignments (decoded from the consumer protocol) and zero lag; after they leave and
/// 7 more records per partition are produced, the Empty group shows committed 10, log end 17 and
/// lag 7 on every partition (42 in all). `weir group list` lists it.
#[test]
fn weir_group_describe_shows_members_assignments_and_lag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let broker = start(&tmp.path().join("data"), "weir-group");
    let (topic, group) = ("lagged", "lag-watchers");
    produce(&broker, topic, 0, 60);
    let members: Vec<Member> = (0..2)
        .map(|i| {
            Member::start(
                tmp.path(),
                &format!("w{i}"),
                "kafka-python",
                &broker.addr,
                group,
                topic,
            )
        })
        .collect();
    wait_until("two members with three partitions each", &broker, || {
        members
            .iter()
            .all(|m| m.assigned().is_some_and(|a| a.len() == 3))
    });
    let all: Vec<&Member> = members.iter().collect();
    wait_until("60 records consumed", &broker, || counts(&all).len() >= 60);

    // Stable: every partition committed at its end, lag 0, assigned to one of the two members.
    let mut out = String::new();
    wait_until("every partition committed at 10", &broker, || {
        out = weir_group(&broker, &["describe", group]);
        let rows = lag_rows(&out, topic);
        rows.len() == PARTITIONS && rows.values().all(|r| r[0] == "10")
    });
    assert!(out.lines().any(|l| l == "STATE Stable"), "{out}");
    assert!(out.lines().any(|l| l == "PROTOCOL consumer/range"), "{out}");
    let rows = lag_rows(&out, topic);
    for (p, r) in &rows {
        assert_eq!(r[..3], ["10", "10", "0"], "partition {p}: {out}");
    }
    let owners: std::collections::BTreeSet<&str> = rows.values().map(|r| r[3].as_str()).collect();
    assert_eq!(owners.len(), 2, "two members own the partitions: {out}");
    for owner in &owners {
        let member_line = out
            .lines()
            .find(|l| l.starts_with(owner))
            .unwrap_or_else(|| panic!("member {owner} listed: {out}"));
        let assigned = member_line.split_whitespace().last().unwrap_or_default();
        assert_eq!(assigned.split(',').count(), 3, "{member_line}");
        assert!(
            member_line.split_whitespace().any(|c| c == "/127.0.0.1"),
            "the member's host: {member_line}"
        );
        assert!(assigned.starts_with(&format!("{topic}-")), "{member_line}");
    }
    assert!(out.lines().any(|l| l == "TOTAL-LAG 0"), "{out}");

    // Empty: 42 records beyond the commits, 7 per partition.
    for m in members {
        m.leave();
    }
    produce(&broker, topic, 60, 42);
    let out = weir_group(&broker, &["describe", group]);
    assert!(out.lines().any(|l| l == "STATE Empty"), "{out}");
    let rows = lag_rows(&out, topic);
    assert_eq!(rows.len(), PARTITIONS, "{out}");
    for (p, r) in &rows {
        assert_eq!(
            r,
            &["10", "17", "7", "-"].map(str::to_string),
            "partition {p}: {out}"
        );
    }
    assert!(out.lines().any(|l| l == "TOTAL-LAG 42"), "{out}");

    let listed = weir_group(&broker, &["list"]);
    assert_eq!(
        row(&listed, group),
        Some(vec!["Empty", "consumer"]),
        "{listed}"
    );
    broker.stop();
}

// ---- DeleteGroups and OffsetDelete ---------------------------------------------------------

/// Runs `groups.py ARGS` and returns its stdout.
fn groups_py(b: &ServeProcess, args: &[&str]) -> String {
    let mut c = Command::new("python3");
    c.arg(script()).args(args);
    b.run_client(&mut c, b"", LIMIT)
}

/// A kafka-python member of `group` on `topic` that consumes all `n` records (committing them)
/// and leaves.
fn consume_all_and_leave(
    dir: &Path,
    b: &ServeProcess,
    name: &str,
    group: &str,
    topic: &str,
    n: usize,
) {
    let m = Member::start(dir, name, "kafka-python", &b.addr, group, topic);
    wait_until(&format!("{name} consumes {n} records"), b, || {
        m.values().len() >= n
    });
    m.leave();
}

/// DeleteGroups (kafka-python's and confluent-kafka's admin clients) and OffsetDelete
/// (kafka-python), as the clients see them (every code, exactly, is in engine/tests/groups.rs):
/// a group with a member is NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND;
/// OffsetDelete of the topic the member subscribes to is GROUP_SUBSCRIBED_TO_TOPIC, of another
/// topic deletes those offsets only; an Empty group is deleted. Both deletions survive a kill -9.
#[test]
fn delete_groups_and_offsets_with_kafka_semantics_across_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = start(&data, "delete");
    let (kept, dropped) = ("kept", "dropped");
    produce(&broker, kept, 0, 60);
    produce(&broker, dropped, 0, 60);
    let at_end = vec![10i64; PARTITIONS];
    let nothing = vec![-1i64; PARTITIONS];

    // "gone": Empty, offsets on `kept`. "busy": offsets on both, a member subscribed to `kept`.
    consume_all_and_leave(tmp.path(), &broker, "gone0", "gone", kept, 60);
    consume_all_and_leave(tmp.path(), &broker, "busy0", "busy", dropped, 60);
    let member = Member::start(
        tmp.path(),
        "busy1",
        "kafka-python",
        &broker.addr,
        "busy",
        kept,
    );
    wait_until("busy1 consumes 60 records", &broker, || {
        member.values().len() >= 60
    });
    wait_until("busy commits kept at its end", &broker, || {
        committed(&broker, "kafka-python", "busy", kept) == at_end
    });
    assert_eq!(committed(&broker, "kafka-python", "gone", kept), at_end);
    assert_eq!(committed(&broker, "kafka-python", "busy", dropped), at_end);

    let out = groups_py(
        &broker,
        &[
            "delete-groups",
            "kafka-python",
            &broker.addr,
            "busy",
            "nope",
        ],
    );
    assert!(out.lines().any(|l| l == "busy NonEmptyGroupError"), "{out}");
    assert!(
        out.lines().any(|l| l == "nope GroupIdNotFoundError"),
        "{out}"
    );
    let out = groups_py(
        &broker,
        &["delete-offsets", &broker.addr, "busy", kept, "6"],
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.ends_with(" GroupSubscribedToTopicError"))
            .count(),
        PARTITIONS,
        "{out}"
    );
    let out = groups_py(
        &broker,
        &["delete-offsets", &broker.addr, "busy", dropped, "6"],
    );
    assert_eq!(
        out.lines().filter(|l| l.ends_with(" NoError")).count(),
        PARTITIONS,
        "{out}"
    );
    // The rest of the codes (an unknown group, partitions or topic) are in engine/tests/groups.rs.
    let out = groups_py(
        &broker,
        &["delete-groups", "confluent", &broker.addr, "gone"],
    );
    assert_eq!(out.trim(), "gone OK");

    let check = |b: &ServeProcess, when: &str| {
        assert_eq!(
            committed(b, "kafka-python", "gone", kept),
            nothing,
            "gone {when}"
        );
        assert_eq!(
            committed(b, "kafka-python", "busy", dropped),
            nothing,
            "busy/dropped {when}"
        );
        assert_eq!(
            committed(b, "kafka-python", "busy", kept),
            at_end,
            "busy/kept {when}"
        );
        let listed = weir_group(b, &["list"]);
        assert_eq!(row(&listed, "gone"), None, "{when}: {listed}");
        assert!(row(&listed, "busy").is_some(), "{when}: {listed}");
    };
    check(&broker, "before the restart");
    member.leave();
    broker.kill9();
    let broker = start(&data, "delete-after-kill9");
    check(&broker, "after kill -9");
    let out = groups_py(
        &broker,
        &[
            "delete-groups",
            "kafka-python",
            &broker.addr,
            "busy",
            "gone",
        ],
    );
    assert!(out.lines().any(|l| l == "busy OK"), "{out}");
    assert!(
        out.lines().any(|l| l == "gone GroupIdNotFoundError"),
        "{out}"
    );
    broker.stop();
}

// offsets.retention.minutes (expiry of an Empty group's offsets by the broker's clock) is tested
// in-process with a manual clock: engine/tests/groups.rs.

// ---- static membership (KIP-345) -----------------------------------------------------------

/// Two confluent-kafka static members (group.instance.id a and b). Member a is killed (no
/// LeaveGroup) and restarted with the same instance id within session.timeout.ms: it takes its
/// old partitions back without a rebalance — b is never revoked or reassigned — and every
/// record produced afterwards is consumed once.
#[test]
fn static_member_rejoins_without_a_rebalance() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let broker = start(&tmp.path().join("data"), "static");
    let (topic, group) = ("statics", "static-group");
    produce(&broker, topic, 0, 60);
    let start = |name: &str, instance: &str| {
        Member::start(
            tmp.path(),
            name,
            &format!("confluent-static={instance}"),
            &broker.addr,
            group,
            topic,
        )
    };
    let a = start("a0", "a");
    let b = start("b", "b");
    wait_until(
        "two static members with three partitions each",
        &broker,
        || {
            [&a, &b]
                .iter()
                .all(|m| m.assigned().is_some_and(|p| p.len() == 3))
        },
    );
    wait_until("60 records consumed", &broker, || {
        counts(&[&a, &b]).len() >= 60
    });
    let assignments = |m: &Member| {
        m.output()
            .lines()
            .filter(|l| l.starts_with("assigned"))
            .count()
    };
    let b_assignments = assignments(&b);
    let a_partitions = a.assigned();
    drop(a); // kill: a static member's restart sends no LeaveGroup

    let a = start("a1", "a");
    wait_until(
        "the restarted member gets its partitions back",
        &broker,
        || a.assigned() == a_partitions,
    );
    produce(&broker, topic, 60, 60);
    wait_until("60 new records consumed", &broker, || {
        a.values().len() + b.values().iter().filter(|v| **v >= 60).count() >= 60
    });
    std::thread::sleep(Duration::from_millis(500));
    let b_new: Vec<usize> = b.values().into_iter().filter(|v| *v >= 60).collect();
    let mut new = a.values();
    new.extend(&b_new);
    new.sort();
    assert_eq!(new, (60..120).collect::<Vec<_>>(), "every new record once");
    assert_eq!(
        assignments(&b),
        b_assignments,
        "b was reassigned: a rebalance happened\n{}",
        b.output()
            .lines()
            .filter(|l| !l.starts_with("rec"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let out = weir_group(&broker, &["describe", group]);
    assert!(out.lines().any(|l| l == "STATE Stable"), "{out}");
    let instances: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|i| *i == "a" || *i == "b")
        .collect();
    assert_eq!(instances.len(), 2, "{out}");
    a.leave();
    b.leave();
    broker.stop();
}

// ---- group metadata records ----------------------------------------------------------------

/// A group whose member joined and left without committing anything exists after a restart
/// (Empty, protocol type consumer) from its group metadata record; DeleteGroups writes the
/// group's tombstone, so after another restart it is gone.
#[test]
fn an_empty_group_without_offsets_survives_a_restart_until_deleted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = start(&data, "meta");
    let (topic, group) = ("quiet", "remembered");
    produce(&broker, topic, 0, 0);
    let m = Member::start(tmp.path(), "r", "kafka-python", &broker.addr, group, topic);
    wait_until("the member gets every partition", &broker, || {
        m.assigned().is_some_and(|p| p.len() == PARTITIONS)
    });
    m.leave();
    let listed_empty =
        |b: &ServeProcess| row(&weir_group(b, &["list"]), group) == Some(vec!["Empty", "consumer"]);
    wait_until("the group is listed Empty", &broker, || {
        listed_empty(&broker)
    });
    // Its metadata record is written at the leave, or at the clean stop (no wait for a tick).
    broker.stop();

    let broker = start(&data, "meta-after-restart");
    assert!(listed_empty(&broker), "{}", weir_group(&broker, &["list"]));
    let out = weir_group(&broker, &["describe", group]);
    assert!(out.lines().any(|l| l == "STATE Empty"), "{out}");
    assert!(out.lines().any(|l| l == "PROTOCOL consumer/-"), "{out}");
    let out = groups_py(
        &broker,
        &["delete-groups", "kafka-python", &broker.addr, group],
    );
    assert_eq!(out.trim(), format!("{group} OK"));
    broker.stop();

    let broker = start(&data, "meta-after-delete");
    let listed = weir_group(&broker, &["list"]);
    assert_eq!(row(&listed, group), None, "{listed}");
    broker.stop();
}

// ---- group state across a broker restart ----------------------------------------------------

/// "state STATE" and the sorted "member_id ID HOST" lines of DescribeGroups.
fn described_members(b: &ServeProcess, group: &str) -> (String, Vec<String>) {
    let mut c = Command::new("python3");
    c.arg(script())
        .args(["describe", "confluent", &b.addr, group]);
    let out = b.run_client(&mut c, b"", LIMIT);
    let state = out
        .lines()
        .find_map(|l| l.strip_prefix("state "))
        .unwrap_or_default()
        .to_string();
    let mut ids: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("member_id "))
        .map(str::to_string)
        .collect();
    ids.sort();
    (state, ids)
}

/// A Stable confluent-kafka group of two members over a broker SIGTERM restart, then a kill -9
/// restart (same address):
/// the broker restores the group from its metadata record in `__consumer_offsets` — Stable, the
/// same member ids, hosts and assignments before anyone rejoins — and the members go on
/// heartbeating, committing and consuming with their generation: no rebalance happens (neither
/// member is assigned again) and every record is consumed exactly once.
#[test]
fn a_stable_group_keeps_its_members_across_a_broker_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let d = data.to_str().expect("utf-8 path");
    let addr = format!("127.0.0.1:{}", support::free_port());
    let args = [
        "--data-dir",
        d,
        "--shards",
        "2",
        "--log-segment-bytes",
        "8388608",
        "--kafka-addr",
        &addr,
    ];
    let broker = ServeProcess::start(&data.with_extension("restore.stderr"), &args);
    let topic = "restarted";
    let group = "survivors";
    produce(&broker, topic, 0, 60);
    let a = Member::start(tmp.path(), "a", "confluent", &broker.addr, group, topic);
    let b = Member::start(tmp.path(), "b", "confluent", &broker.addr, group, topic);
    wait_until("two members with three partitions each", &broker, || {
        [&a, &b]
            .iter()
            .all(|m| m.assigned().is_some_and(|p| p.len() == 3))
    });
    wait_until("60 records consumed and committed", &broker, || {
        counts(&[&a, &b]).len() == 60
            && committed(&broker, "confluent", group, topic) == vec![10i64; PARTITIONS]
    });
    let assignments = |m: &Member| {
        m.output()
            .lines()
            .filter(|l| l.starts_with("assigned"))
            .count()
    };
    let rebalances = (assignments(&a), assignments(&b));
    let (state, before) = described_members(&broker, group);
    assert_eq!((state.as_str(), before.len()), ("Stable", 2), "{before:?}");
    assert!(
        before.iter().all(|l| l.ends_with(" /127.0.0.1")),
        "client hosts: {before:?}"
    );
    // The metadata record is written on the group timer's next tick (100 ms), or at the clean
    // stop if that tick has not come yet: stopping right away is part of what this checks.
    broker.stop();

    let broker = ServeProcess::start(&data.with_extension("restore2.stderr"), &args);
    assert_eq!(broker.addr, addr);
    let (state, after) = described_members(&broker, group);
    assert_eq!(state, "Stable", "restored before any member rejoined");
    assert_eq!(after, before, "the same members, restored");
    produce(&broker, topic, 60, 60);
    wait_until("the next 60 records consumed", &broker, || {
        counts(&[&a, &b]).len() == 120
    });
    assert_exactly_once(&[&a, &b], 0..120);
    wait_until("commits at the end", &broker, || {
        committed(&broker, "confluent", group, topic) == vec![20i64; PARTITIONS]
    });
    assert_eq!(
        (assignments(&a), assignments(&b)),
        rebalances,
        "no rebalance across the restart\n{}",
        member_logs(tmp.path())
    );
    assert_eq!(described_members(&broker, group).1, before);

    // The same after a kill -9: the metadata record was written (not necessarily synced) when
    // the group became Stable, and a process kill loses no written data.
    broker.kill9();
    let broker = ServeProcess::start(&data.with_extension("restore3.stderr"), &args);
    let (state, after) = described_members(&broker, group);
    assert_eq!(
        (state.as_str(), &after),
        ("Stable", &before),
        "after kill -9"
    );
    produce(&broker, topic, 120, 60);
    wait_until("the last 60 records consumed", &broker, || {
        counts(&[&a, &b]).len() == 180
    });
    assert_exactly_once(&[&a, &b], 0..180);
    assert_eq!(
        (assignments(&a), assignments(&b)),
        rebalances,
        "no rebalance across the kill -9 restart\n{}",
        member_logs(tmp.path())
    );
    a.leave();
    b.leave();
    broker.stop();
}

// ---- JoinGroup v8–v9 -------------------------------------------------------------------------

/// One request of `version` encoded with kafka-protocol; the response body decoded.
fn kp_roundtrip<Req, Resp>(
    s: &mut std::net::TcpStream,
    key: kafka_protocol::messages::ApiKey,
    version: i16,
    correlation: i32,
    req: &Req,
) -> Resp
where
    Req: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion,
    Resp: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::HeaderVersion,
{
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    let mut b: Vec<u8> = Vec::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("raw-client")))
        .encode(&mut b, Req::header_version(version))
        .expect("header");
    req.encode(&mut b, version).expect("request");
    let frame = support::roundtrip(s, &b).expect("a response");
    let mut body = bytes::Bytes::from(frame);
    let header =
        ResponseHeader::decode(&mut body, Resp::header_version(version)).expect("response header");
    assert_eq!(header.correlation_id, correlation);
    Resp::decode(&mut body, version).expect("response body")
}

/// JoinGroup v8 (KIP-800 reason) and v9 (KIP-814 skip_assignment) with the flexible encoding:
/// MEMBER_ID_REQUIRED, then the join completes with the member as leader, skip_assignment false,
/// and its host is the connection's address.
#[test]
fn join_group_v8_and_v9_with_a_reason() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::{ApiKey, GroupId, JoinGroupRequest, JoinGroupResponse};
    use kafka_protocol::protocol::StrBytes;
    let tmp = tempfile::tempdir().expect("tempdir");
    let broker = start(&tmp.path().join("data"), "join-v9");
    for version in [8i16, 9] {
        let group = format!("joined-v{version}");
        let mut s = broker.connect();
        let request = |member: &str| {
            JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(StrBytes::from_string(member.to_string()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(bytes::Bytes::from_static(b"md"))])
                .with_reason(Some(StrBytes::from_static_str("testing KIP-800")))
        };
        let first: JoinGroupResponse =
            kp_roundtrip(&mut s, ApiKey::JoinGroup, version, 1, &request(""));
        assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
        let id = first.member_id.to_string();
        assert!(!id.is_empty());
        let joined: JoinGroupResponse =
            kp_roundtrip(&mut s, ApiKey::JoinGroup, version, 2, &request(&id));
        assert_eq!(joined.error_code, 0);
        assert_eq!(
            (joined.generation_id, joined.leader.to_string()),
            (1, id.clone())
        );
        assert!(!joined.skip_assignment);
        assert_eq!(joined.members.len(), 1);
        assert_eq!(&joined.members[0].metadata[..], b"md");
        let (_, members) = described_members(&broker, &group);
        assert_eq!(members, vec![format!("member_id {id} /127.0.0.1")]);
    }
    assert!(
        broker.log().contains("testing KIP-800"),
        "the reason is logged"
    );
    broker.stop();
}

// ---- a member killed with kill -9 ------------------------------------------------------------

/// Three confluent-kafka members over six partitions; one is killed with SIGKILL (no
/// LeaveGroup). Its partitions stay unassigned until its session.timeout.ms (10 s in
/// groups.py) passes without a heartbeat; then the broker evicts it, the other two get three
/// partitions each, and every record — those consumed and committed before the kill, and those
/// produced after it — is consumed exactly once.
#[test]
fn a_killed_members_partitions_move_to_the_others_after_its_session_timeout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = start(&data, "killed");
    let (topic, group) = ("killed", "killed-member");
    produce(&broker, topic, 0, 60);
    let mut members: Vec<Member> = (0..3)
        .map(|i| {
            Member::start(
                tmp.path(),
                &format!("k{i}"),
                "confluent",
                &broker.addr,
                group,
                topic,
            )
        })
        .collect();
    wait_until("three members with two partitions each", &broker, || {
        members
            .iter()
            .all(|m| m.assigned().is_some_and(|a| a.len() == 2))
    });
    wait_until("60 records consumed and committed", &broker, || {
        counts(&members.iter().collect::<Vec<_>>()).len() == 60
            && committed(&broker, "confluent", group, topic) == vec![10i64; PARTITIONS]
    });
    let killed = members.pop().expect("three members");
    let killed_values = killed.values();
    let killed_at = Instant::now();
    drop(killed); // SIGKILL: no LeaveGroup
    produce(&broker, topic, 60, 60);
    wait_until("two members with three partitions each", &broker, || {
        members
            .iter()
            .all(|m| m.assigned().is_some_and(|a| a.len() == 3))
    });
    let moved_after = killed_at.elapsed();
    assert!(
        moved_after >= Duration::from_secs(8),
        "partitions moved after {moved_after:?}, before the 10 s session timeout"
    );
    assert!(broker.log().contains("member evicted"), "{}", broker.log());
    let alive: Vec<&Member> = members.iter().collect();
    wait_until("120 records consumed", &broker, || {
        counts(&alive).len() + killed_values.len() >= 120
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut everyone = BTreeMap::new();
    for v in killed_values
        .iter()
        .copied()
        .chain(alive.iter().flat_map(|m| m.values()))
    {
        *everyone.entry(v).or_insert(0usize) += 1;
    }
    assert_eq!(
        everyone.keys().copied().collect::<Vec<_>>(),
        (0..120).collect::<Vec<_>>(),
        "nothing lost"
    );
    let twice: Vec<_> = everyone.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "consumed twice: {twice:?}");
    for m in members {
        m.leave();
    }
    broker.stop();
}
