//! Recipes against an embedded coordinator: lock exclusion and release on session expiry,
//! leader election hand-over, config watch.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use coord::client::Client;
use coord::recipes::{ConfigWatch, Election, Lock};
use coord::server::start_embedded;

mod common;
use common::{cfg, run};

async fn client(addr: &str, session_ms: u64) -> Client {
    Client::connect(cfg(addr, session_ms)).await.unwrap()
}

#[test]
fn lock_is_exclusive_and_released_by_session_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_embedded(dir.path().to_path_buf(), "127.0.0.1:0", None).unwrap();
    let addr = node.addr.to_string();
    run(move || async move {
        let inside = Rc::new(Cell::new(0u32));
        let total = Rc::new(Cell::new(0u32));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let c = client(&addr, 10_000).await;
            let (inside, total) = (inside.clone(), total.clone());
            tasks.push(glommio::spawn_local(async move {
                for _ in 0..5 {
                    let t = Lock::acquire(&c, "/locks/a").await.unwrap();
                    assert_eq!(inside.get(), 0, "two holders at once");
                    inside.set(1);
                    glommio::timer::sleep(Duration::from_millis(3)).await;
                    inside.set(0);
                    total.set(total.get() + 1);
                    t.leave().await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        assert_eq!(total.get(), 20);
        let c = client(&addr, 0).await;
        assert!(c.children("/locks/a").await.unwrap().is_empty());

        // A holder that dies (stops pinging) loses the lock when its session expires.
        let dying = client(&addr, 600).await;
        let held = Lock::acquire(&dying, "/locks/b").await.unwrap();
        let waiter = client(&addr, 10_000).await;
        let got = Rc::new(Cell::new(None::<Instant>));
        let g = got.clone();
        let w = glommio::spawn_local(async move {
            let t = Lock::acquire(&waiter, "/locks/b").await.unwrap();
            g.set(Some(Instant::now()));
            t
        });
        glommio::timer::sleep(Duration::from_millis(1_000)).await;
        assert!(got.get().is_none(), "lock granted while the holder lives");
        let died = Instant::now();
        drop(held);
        drop(dying);
        let _t = w.await;
        // Handed over once the holder's 600 ms session expired: a bound on liveness (the lock
        // is not kept for good), fifty times the session timeout so that a loaded machine's
        // stalls cannot reach it; how fast expiry is belongs to a benchmark.
        let waited = got.get().unwrap() - died;
        assert!(waited < Duration::from_secs(30), "took {waited:?}");
    });
}

#[test]
fn election_hands_over_and_config_watch_follows_changes() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_embedded(dir.path().to_path_buf(), "127.0.0.1:0", None).unwrap();
    let addr = node.addr.to_string();
    run(move || async move {
        let a = client(&addr, 10_000).await;
        let b = client(&addr, 10_000).await;
        let lead_a = Election::lead(&a, "/election", b"a").await.unwrap();
        let led = Rc::new(Cell::new(false));
        let l = led.clone();
        let bb = b.clone();
        let cand_b = glommio::spawn_local(async move {
            let t = Election::lead(&bb, "/election", b"b").await.unwrap();
            l.set(true);
            t
        });
        glommio::timer::sleep(Duration::from_millis(200)).await;
        assert!(!led.get());
        assert_eq!(
            Election::leader(&b, "/election").await.unwrap(),
            Some(b"a".to_vec())
        );
        lead_a.leave().await.unwrap();
        let tb = cand_b.await;
        assert!(led.get());
        assert!(tb.is_first().await.unwrap());
        assert_eq!(
            Election::leader(&a, "/election").await.unwrap(),
            Some(b"b".to_vec())
        );

        // Config watch.
        a.create("/cfg", b"v1", coord::proto::CreateMode::Persistent)
            .await
            .unwrap();
        let mut cw = ConfigWatch::new(&b, "/cfg");
        assert_eq!(cw.next().await.unwrap(), Some(b"v1".to_vec()));
        let setter = a.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(Duration::from_millis(50)).await;
            setter.set("/cfg", b"v2", -1).await.unwrap();
        })
        .detach();
        assert_eq!(cw.next().await.unwrap(), Some(b"v2".to_vec()));
        a.delete("/cfg", -1).await.unwrap();
        assert_eq!(cw.next().await.unwrap(), None);
    });
}
