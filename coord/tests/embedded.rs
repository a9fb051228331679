//! End-to-end tests against an embedded single-node coordinator over real loopback TCP:
//! the data model, CAS, multi, sequential names, watches, session expiry, restart recovery.

use std::time::Duration;

use coord::client::{Client, ClientError};
use coord::proto::{CreateMode, EventKind, Op, ZkError};
use coord::server::start_embedded;

mod common;
use common::{cfg, run};

#[test]
fn data_model_cas_multi_sequential_and_watches() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_embedded(dir.path().to_path_buf(), "127.0.0.1:0", None).unwrap();
    let addr = node.addr.to_string();
    run(move || async move {
        let c = Client::connect(cfg(&addr, 10_000)).await.unwrap();
        assert_ne!(c.session_id(), 0);
        assert_eq!(
            c.create("/a", b"1", CreateMode::Persistent).await.unwrap(),
            "/a"
        );
        assert!(matches!(
            c.create("/a", b"1", CreateMode::Persistent)
                .await
                .unwrap_err()
                .zk(),
            Some(ZkError::NodeExists)
        ));
        let (data, stat) = c.get("/a").await.unwrap();
        assert_eq!((data.as_slice(), stat.version), (&b"1"[..], 0));
        // CAS: the right version wins, a stale one fails and changes nothing.
        let st = c.set("/a", b"2", 0).await.unwrap();
        assert_eq!(st.version, 1);
        assert!(matches!(
            c.set("/a", b"3", 0).await.unwrap_err().zk(),
            Some(ZkError::BadVersion)
        ));
        assert_eq!(c.get("/a").await.unwrap().0, b"2");
        // 1 MiB data accepted, more refused.
        c.set("/a", &vec![7u8; 1024 * 1024], -1).await.unwrap();
        assert!(c.set("/a", &vec![7u8; 1024 * 1024 + 1], -1).await.is_err());
        // Sequential names are unique and increasing.
        c.create("/q", b"", CreateMode::Persistent).await.unwrap();
        let mut names = Vec::new();
        for _ in 0..10 {
            names.push(
                c.create("/q/n-", b"", CreateMode::PersistentSequential)
                    .await
                    .unwrap(),
            );
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, names);
        assert_eq!(c.children("/q").await.unwrap().len(), 10);
        // Multi is all-or-nothing.
        let err = c
            .multi(vec![
                Op::Create {
                    path: "/m1".into(),
                    data: vec![],
                    mode: CreateMode::Persistent,
                },
                Op::Check {
                    path: "/a".into(),
                    version: 99,
                },
            ])
            .await
            .unwrap_err();
        assert!(matches!(
            err.zk(),
            Some(ZkError::MultiFailed { index: 1, .. })
        ));
        assert_eq!(c.exists("/m1").await.unwrap(), None);
        let r = c
            .multi(vec![
                Op::Create {
                    path: "/m1".into(),
                    data: vec![],
                    mode: CreateMode::Persistent,
                },
                Op::Check {
                    path: "/a".into(),
                    version: 2,
                },
            ])
            .await
            .unwrap();
        assert_eq!(r.len(), 2);
        assert!(c.exists("/m1").await.unwrap().is_some());
        // Watches: data, exists on a missing node, children; one-shot.
        // A watcher that makes the change itself sees the event before the reply.
        let (_, _, own) = c.get_watch("/a").await.unwrap();
        c.set("/a", b"mine", -1).await.unwrap();
        let ev = futures_lite::future::poll_once(own.wait()).await;
        assert!(
            matches!(ev, Some(Some(ref e)) if e.kind == EventKind::NodeDataChanged),
            "event not delivered before the write's reply: {ev:?}"
        );
        let (_, _, w_data) = c.get_watch("/a").await.unwrap();
        let (none, w_exists) = c.exists_watch("/later").await.unwrap();
        assert!(none.is_none());
        let (_, w_child) = c.children_watch("/q").await.unwrap();
        let other = Client::connect(cfg(&addr, 0)).await.unwrap();
        let st = other.set("/a", b"x", -1).await.unwrap();
        let ev = w_data.wait().await.unwrap();
        assert_eq!(
            (ev.kind, ev.path.as_str(), ev.zxid),
            (EventKind::NodeDataChanged, "/a", st.mzxid)
        );
        other
            .create("/later", b"", CreateMode::Persistent)
            .await
            .unwrap();
        assert_eq!(w_exists.wait().await.unwrap().kind, EventKind::NodeCreated);
        other
            .create("/q/z", b"", CreateMode::Persistent)
            .await
            .unwrap();
        assert_eq!(
            w_child.wait().await.unwrap().kind,
            EventKind::NodeChildrenChanged
        );
        c.sync().await.unwrap();
        assert!(c.status().await.unwrap().is_leader);
    });
}

#[test]
fn expired_session_deletes_ephemerals_and_fires_watches() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_embedded(dir.path().to_path_buf(), "127.0.0.1:0", None).unwrap();
    let addr = node.addr.to_string();
    run(move || async move {
        let watcher = Client::connect(cfg(&addr, 10_000)).await.unwrap();
        // 2 s: pings every 667 ms keep it alive through a loaded machine's stalls.
        let doomed = Client::connect(cfg(&addr, 2_000)).await.unwrap();
        assert_eq!(doomed.session_timeout_ms(), 2_000);
        let p = doomed
            .create("/eph-", b"", CreateMode::EphemeralSequential)
            .await
            .unwrap();
        doomed
            .create("/e", b"", CreateMode::Ephemeral)
            .await
            .unwrap();
        let (stat, w) = watcher.exists_watch(&p).await.unwrap();
        assert_eq!(stat.map(|s| s.ephemeral_owner), Some(doomed.session_id()));
        // While pings flow, the session lives past its timeout.
        glommio::timer::sleep(Duration::from_millis(3_000)).await;
        assert!(watcher.exists("/e").await.unwrap().is_some());
        // Stop pinging: the quorum expires the session.
        drop(doomed);
        let ev = w.wait().await.unwrap();
        assert_eq!(ev.kind, EventKind::NodeDeleted);
        assert_eq!(watcher.exists("/e").await.unwrap(), None);
        // The session's id is gone for good.
        assert_eq!(watcher.status().await.unwrap().sessions, 1);
    });
}

#[test]
fn closed_session_removes_ephemerals_at_once_and_rejects_further_use() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_embedded(dir.path().to_path_buf(), "127.0.0.1:0", None).unwrap();
    let addr = node.addr.to_string();
    run(move || async move {
        let c = Client::connect(cfg(&addr, 30_000)).await.unwrap();
        c.create("/e", b"", CreateMode::Ephemeral).await.unwrap();
        c.close().await.unwrap();
        let o = Client::connect(cfg(&addr, 0)).await.unwrap();
        assert_eq!(o.exists("/e").await.unwrap(), None);
        assert!(matches!(
            o.create("/x", b"", CreateMode::Ephemeral).await,
            Err(ClientError::Zk(ZkError::BadArguments(_)))
        ));
    });
}

#[test]
fn large_tree_survives_snapshot_compaction_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut scfg =
        coord::server::ServerConfig::new(1, dir.path().to_path_buf(), "127.0.0.1:0".into());
    scfg.snapshot_entries = 2_000;
    let node = coord::server::start_embedded_with(scfg.clone()).unwrap();
    let addr = node.addr.to_string();
    const DIRS: usize = 20;
    const PER_DIR: usize = 1_000;
    run(move || async move {
        let c = Client::connect(cfg(&addr, 0)).await.unwrap();
        for d in 0..DIRS {
            c.create(&format!("/d{d}"), b"", CreateMode::Persistent)
                .await
                .unwrap();
        }
        // 64 concurrent pipelined creators.
        let mut tasks = Vec::new();
        for t in 0..64 {
            let c = c.clone();
            tasks.push(glommio::spawn_local(async move {
                let mut i = t;
                while i < DIRS * PER_DIR {
                    let path = format!("/d{}/n{}", i % DIRS, i / DIRS);
                    c.create(&path, format!("v{i}").as_bytes(), CreateMode::Persistent)
                        .await
                        .unwrap();
                    i += 64;
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        c.set("/d3/n7", b"changed", 0).await.unwrap();
    });
    node.stop();
    // The log was compacted: of the ~11 WAL segments written (one per snapshot) at most the
    // current one, the one holding the compaction lag and a spare remain.
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("wal-")
        })
        .count();
    let snap = std::fs::metadata(dir.path().join("snap")).unwrap().len();
    assert!(
        snap > 500_000,
        "snapshot of {snap} bytes is too small for the tree"
    );
    assert!(segments <= 4, "{segments} WAL segments: log not compacted");
    let node = coord::server::start_embedded_with(scfg).unwrap();
    let addr = node.addr.to_string();
    run(move || async move {
        let c = Client::connect(cfg(&addr, 0)).await.unwrap();
        let st = c.status().await.unwrap();
        assert_eq!(st.znodes as usize, 1 + DIRS + DIRS * PER_DIR);
        for d in [0, 7, 19] {
            assert_eq!(c.children(&format!("/d{d}")).await.unwrap().len(), PER_DIR);
        }
        assert_eq!(c.get("/d3/n7").await.unwrap().0, b"changed");
        assert_eq!(
            c.get("/d5/n999").await.unwrap().0,
            format!("v{}", 999 * DIRS + 5).as_bytes()
        );
        // And it accepts writes after recovery.
        c.create("/after", b"", CreateMode::Persistent)
            .await
            .unwrap();
    });
    node.stop();
}
