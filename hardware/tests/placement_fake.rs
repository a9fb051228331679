//! Core placement against fake sysfs/procfs trees: a two-node host with SMT pairs, a container
//! allowed half of its CPUs, a VM that hides its topology, and the fake EC2 host; explicit
//! `cores` and `coord.core` are checked against the CPUs the process may use.

use std::fs;
use std::path::Path;

use hardware::placement::{Placement, Request, Topology};
use hardware::root::HostRoot;

fn put(base: &Path, rel: &str, text: &str) {
    let path = base.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// 8 CPUs on 2 NUMA nodes; core k (k < 4) has threads k and k + 4; node 0 holds cores 0 and 1.
fn two_nodes_with_smt(base: &Path, allowed: &str) {
    put(base, "sys/devices/system/cpu/online", "0-7\n");
    put(base, "sys/devices/system/node/online", "0-1\n");
    put(base, "sys/devices/system/node/node0/cpulist", "0-1,4-5\n");
    put(base, "sys/devices/system/node/node1/cpulist", "2-3,6-7\n");
    for cpu in 0..8 {
        let core = cpu % 4;
        put(
            base,
            &format!("sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"),
            &format!("{core},{}\n", core + 4),
        );
    }
    put(
        base,
        "proc/self/status",
        &format!("Name:\tweir\nCpus_allowed_list:\t{allowed}\n"),
    );
}

fn place(topology: &Topology, shards: Option<usize>) -> Placement {
    topology
        .place(&Request {
            shards,
            ..Request::default()
        })
        .unwrap()
}

#[test]
fn shards_take_every_core_before_a_sibling_and_alternate_numa_nodes() {
    let dir = tempfile::tempdir().unwrap();
    two_nodes_with_smt(dir.path(), "0-7");
    let t = Topology::read(&HostRoot::fake(dir.path())).unwrap();
    assert_eq!(t.cpus.len(), 8);
    let cpu6 = t.cpu(6).unwrap();
    assert_eq!((cpu6.core, cpu6.node), (2, 1));
    assert_eq!(t.shard_order(), [0, 2, 1, 3, 4, 6, 5, 7]);

    // Every CPU gets a shard by default; the coordinator shares the last one placed.
    let all = place(&t, None);
    assert_eq!(all.shard_cpus, [0, 2, 1, 3, 4, 6, 5, 7]);
    assert_eq!(all.coord_cpu, 7);
    // Two shards: one per node, on distinct cores.
    assert_eq!(place(&t, Some(2)).shard_cpus, [0, 2]);
    // Four shards fill the four cores; the coordinator takes a free sibling thread.
    let four = place(&t, Some(4));
    assert_eq!(four.shard_cpus, [0, 2, 1, 3]);
    assert!(!four.shard_cpus.contains(&four.coord_cpu), "{four:?}");
    // Three shards leave core 3 idle: the coordinator goes there.
    let three = place(&t, Some(3));
    assert_eq!(three.shard_cpus, [0, 2, 1]);
    assert_eq!(t.cpu(three.coord_cpu).unwrap().core, 3, "{three:?}");
    // More shards than CPUs: round robin over the order.
    assert_eq!(place(&t, Some(10)).shard_cpus[8..], [0, 2]);
}

#[test]
fn a_container_uses_only_its_allowed_cpus_and_explicit_choices_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    two_nodes_with_smt(dir.path(), "0-1,4");
    let t = Topology::read(&HostRoot::fake(dir.path())).unwrap();
    let ids: Vec<usize> = t.cpus.iter().map(|c| c.id).collect();
    assert_eq!(ids, [0, 1, 4]);
    // CPU 4 is CPU 0's sibling: it comes last, and hosts the coordinator of two shards.
    assert_eq!(t.shard_order(), [0, 1, 4]);
    let two = place(&t, Some(2));
    assert_eq!((two.shard_cpus.as_slice(), two.coord_cpu), (&[0, 1][..], 4));

    let explicit = t
        .place(&Request {
            cores: Some(vec![4, 1]),
            shards: Some(3),
            coord_core: Some(0),
        })
        .unwrap();
    assert_eq!(explicit.shard_cpus, [4, 1, 4]);
    assert_eq!(explicit.coord_cpu, 0);
    for (request, names) in [
        (
            Request {
                cores: Some(vec![0, 2]),
                ..Request::default()
            },
            ["cores", "CPU 2", "0-1,4"],
        ),
        (
            Request {
                coord_core: Some(9),
                ..Request::default()
            },
            ["coord.core", "CPU 9", "0-1,4"],
        ),
        (
            Request {
                cores: Some(vec![]),
                ..Request::default()
            },
            ["cores", "empty", ""],
        ),
        (
            Request {
                shards: Some(0),
                ..Request::default()
            },
            ["shards", "at least 1", ""],
        ),
    ] {
        let e = t.place(&request).unwrap_err().to_string();
        assert!(names.iter().all(|n| e.contains(n)), "{request:?}: {e}");
    }
}

#[test]
fn a_host_hiding_its_topology_has_one_core_per_cpu_and_no_online_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "sys/devices/system/cpu/online", "0-2\n");
    let t = Topology::read(&HostRoot::fake(dir.path())).unwrap();
    assert_eq!(t, Topology::flat(3));
    let p = place(&t, Some(2));
    assert_eq!((p.shard_cpus.as_slice(), p.coord_cpu), (&[0, 1][..], 2));

    let empty = tempfile::tempdir().unwrap();
    let e = Topology::read(&HostRoot::fake(empty.path())).unwrap_err();
    assert!(e.to_string().contains("online"), "{e}");
    put(empty.path(), "sys/devices/system/cpu/online", "garbage\n");
    let e = Topology::read(&HostRoot::fake(empty.path())).unwrap_err();
    assert!(e.to_string().contains("garbage"), "{e}");
}

#[test]
fn the_fake_ec2_host_pairs_cpus_two_apart() {
    let dir = tempfile::tempdir().unwrap();
    hardware::fake_host::build(dir.path()).unwrap();
    let t = Topology::read(&HostRoot::fake(dir.path())).unwrap();
    assert_eq!(t.shard_order(), [0, 1, 2, 3]);
    let two = place(&t, Some(2));
    assert_eq!(two.shard_cpus, [0, 1]);
    assert!(
        two.coord_cpu >= 2,
        "{two:?}: the coordinator on a sibling, not a shard's CPU"
    );
    assert_eq!(t.describe(3), "cpu 3 (core 1, node 0)");
}
