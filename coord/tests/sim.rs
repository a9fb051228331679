//! Seeded simulation of the Raft + znode core: linearizable CAS register, no lost writes,
//! identical replicas, tree invariants, and dead sessions expired by the quorum, over many
//! seeds with crashes, partitions, drops and leader transfers.

use coord::sim::{run, SimConfig};

#[test]
fn simulated_cluster_is_linearizable_over_many_seeds() {
    let seeds: u64 = std::env::var("COORD_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let mut total_ok = 0;
    let mut crashes = 0;
    let mut snaps = 0;
    let mut expired = 0;
    for seed in 0..seeds {
        let mut cfg = SimConfig::new(seed);
        cfg.nodes = if seed % 4 == 3 { 5 } else { 3 };
        let r = run(cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(r.ops_ok > 50, "seed {seed}: too little progress: {r:?}");
        total_ok += r.ops_ok;
        crashes += r.crashes;
        snaps += r.snapshots_installed;
        expired += r.sessions_expired_checked;
        assert!(
            r.sessions_created > 0,
            "seed {seed}: no session was ever opened"
        );
    }
    // The faults must actually have been exercised.
    assert!(
        crashes > 0 && snaps > 0,
        "crashes {crashes}, snapshots {snaps}"
    );
    eprintln!(
        "sim: {seeds} seeds, {total_ok} ops ok, {crashes} crashes, {snaps} snapshots sent, \
         {expired} session expiries checked"
    );
}

#[test]
fn simulation_is_deterministic() {
    let a = run(SimConfig::new(7)).unwrap();
    let b = run(SimConfig::new(7)).unwrap();
    assert_eq!(
        (
            a.ops_ok,
            a.ops_unknown,
            a.final_version,
            a.max_term,
            a.sessions_created
        ),
        (
            b.ops_ok,
            b.ops_unknown,
            b.final_version,
            b.max_term,
            b.sessions_created
        )
    );
}
