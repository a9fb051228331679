//! The classic consumer-group protocol through the in-process broker, with exact error codes
//! (moved from `cli/tests/consumer_groups.rs`): a stale generation and an unknown member are
//! fenced on commit and heartbeat; DeleteGroups and OffsetDelete answer NON_EMPTY_GROUP,
//! GROUP_ID_NOT_FOUND, GROUP_SUBSCRIBED_TO_TOPIC and UNKNOWN_TOPIC_OR_PARTITION as Kafka does
//! and their deletions survive a restart; the committed offsets of an Empty group expire when the
//! broker's (manual) clock passes offsets.retention.minutes, not before, while a group with a
//! member keeps them, also after a restart; a member whose session.timeout.ms passes on the
//! broker's (manual) clock without a heartbeat is evicted, not a moment before.
//!
//! Must not: test real clients' group behaviour (rebalances, assignors, exactly-once across
//! restarts stay in the cli tests).

mod harness;

use std::time::Duration;

use harness::groups::{
    commit, committed, delete_groups, heartbeat, join, join_alone, join_once, leave, list_groups,
    offset_delete, partition_codes, sync,
};
use harness::{create_topic, eventually, Harness};
use wire::error_code as ec;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_stale_generation_and_an_unknown_member_are_fenced() {
    let h = Harness::start();
    let mut a = h.conn();
    assert_eq!(create_topic(&mut a, "orders", 1, &[]), ec::NONE);
    let group = "fenced";
    let (member_a, gen1) = join_alone(&mut a, group, "orders", &[0]);
    assert_eq!(gen1, 1);
    assert_eq!(
        commit(&mut a, group, gen1, &member_a, "orders", &[(0, 7)]),
        [ec::NONE]
    );
    assert_eq!(committed(&mut a, group, "orders", &[0]), [7]);

    // A second member joins: a rebalance; the first learns it from its heartbeat and rejoins.
    let mut b = h.conn();
    let second = std::thread::spawn(move || join(&mut b, "fenced", &["orders"]));
    eventually("a rebalance is announced", WAIT, || {
        (heartbeat(&mut a, group, gen1, &member_a) == ec::REBALANCE_IN_PROGRESS).then_some(())
    });
    let rejoined = join_once(&mut a, group, &member_a, &["orders"]);
    assert_eq!(rejoined.error_code, ec::NONE);
    assert_eq!(rejoined.member_id.as_str(), member_a);
    let gen2 = rejoined.generation_id;
    assert!(gen2 > gen1);
    let joined_b = second.join().expect("the second member");
    assert_eq!(
        (joined_b.error_code, joined_b.generation_id),
        (ec::NONE, gen2)
    );

    // Before the leader's SyncGroup: a commit of the new generation is REBALANCE_IN_PROGRESS.
    let code = commit(&mut a, group, gen2, &member_a, "orders", &[(0, 8)]);
    assert_eq!(code, [ec::REBALANCE_IN_PROGRESS]);
    // The old generation is fenced; so is a member the group does not know.
    let code = commit(&mut a, group, gen1, &member_a, "orders", &[(0, 9)]);
    assert_eq!(code, [ec::ILLEGAL_GENERATION]);
    assert_eq!(
        heartbeat(&mut a, group, gen1, &member_a),
        ec::ILLEGAL_GENERATION
    );
    let code = commit(&mut a, group, gen2, "nobody", "orders", &[(0, 9)]);
    assert_eq!(code, [ec::UNKNOWN_MEMBER_ID]);
    assert_eq!(
        heartbeat(&mut a, group, gen2, "nobody"),
        ec::UNKNOWN_MEMBER_ID
    );
    // A standalone commit (no generation, no member) to a group with members is refused too.
    let code = commit(&mut a, group, -1, "", "orders", &[(0, 9)]);
    assert_eq!(code, [ec::UNKNOWN_MEMBER_ID]);
    assert_eq!(
        committed(&mut a, group, "orders", &[0]),
        [7],
        "refusals change nothing"
    );
    let (code, _) = sync(&mut a, group, gen2, &member_a, &[]);
    assert_eq!(code, ec::NONE);
    let code = commit(&mut a, group, gen2, &member_a, "orders", &[(0, 11)]);
    assert_eq!(code, [ec::NONE]);
    assert_eq!(committed(&mut a, group, "orders", &[0]), [11]);
}

/// DeleteGroups and OffsetDelete with Kafka's codes, and their effects across a restart.
#[test]
fn delete_groups_and_offset_delete_answer_kafkas_codes_and_persist() {
    let mut h = Harness::start();
    let mut c = h.conn();
    let parts = [0, 1, 2];
    for topic in ["kept", "dropped"] {
        assert_eq!(create_topic(&mut c, topic, 3, &[]), ec::NONE);
    }
    let at_end: Vec<(i32, i64)> = parts.iter().map(|p| (*p, 10)).collect();
    // "gone": Empty, offsets on `kept` (a standalone commit). "busy": offsets on both, a member
    // subscribed to `kept`.
    let ok = vec![ec::NONE; 3];
    assert_eq!(commit(&mut c, "gone", -1, "", "kept", &at_end), ok);
    assert_eq!(commit(&mut c, "busy", -1, "", "dropped", &at_end), ok);
    let mut m = h.conn();
    let (member, generation) = join_alone(&mut m, "busy", "kept", &parts);
    assert_eq!(
        commit(&mut m, "busy", generation, &member, "kept", &at_end),
        ok
    );

    let deleted = delete_groups(&mut c, &["busy", "nope"]);
    assert_eq!(
        deleted,
        [
            ("busy".to_string(), ec::NON_EMPTY_GROUP),
            ("nope".to_string(), ec::GROUP_ID_NOT_FOUND)
        ]
    );
    let answer = offset_delete(&mut c, "busy", "kept", &parts);
    assert_eq!(answer.error_code, ec::NONE);
    assert_eq!(
        partition_codes(&answer),
        vec![ec::GROUP_SUBSCRIBED_TO_TOPIC; 3]
    );
    let answer = offset_delete(&mut c, "busy", "dropped", &parts);
    assert_eq!(
        (answer.error_code, partition_codes(&answer)),
        (ec::NONE, ok.clone())
    );
    let answer = offset_delete(&mut c, "nope", "dropped", &parts);
    assert_eq!(answer.error_code, ec::GROUP_ID_NOT_FOUND);
    // Partitions past the topic's end, and a topic that does not exist.
    let answer = offset_delete(&mut c, "busy", "dropped", &[3, 4]);
    let unknown = vec![ec::UNKNOWN_TOPIC_OR_PARTITION; 2];
    assert_eq!(
        (answer.error_code, partition_codes(&answer)),
        (ec::NONE, unknown)
    );
    let answer = offset_delete(&mut c, "busy", "no-such-topic", &[0]);
    assert_eq!(partition_codes(&answer), [ec::UNKNOWN_TOPIC_OR_PARTITION]);
    assert_eq!(
        delete_groups(&mut c, &["gone"]),
        [("gone".to_string(), ec::NONE)]
    );

    let check = |c: &mut kclient::conn::BlockingConn, when: &str| {
        assert_eq!(committed(c, "gone", "kept", &parts), [-1; 3], "gone {when}");
        assert_eq!(
            committed(c, "busy", "dropped", &parts),
            [-1; 3],
            "busy/dropped {when}"
        );
        assert_eq!(
            committed(c, "busy", "kept", &parts),
            [10; 3],
            "busy/kept {when}"
        );
        let names: Vec<String> = list_groups(c).into_iter().map(|(g, _)| g).collect();
        assert_eq!(names, ["busy"], "{when}");
    };
    check(&mut c, "before the restart");
    assert_eq!(leave(&mut m, "busy", &member), (ec::NONE, ec::NONE));
    h.restart();
    let mut c = h.conn();
    check(&mut c, "after the restart");
    let deleted = delete_groups(&mut c, &["busy", "gone"]);
    assert_eq!(
        deleted,
        [
            ("busy".to_string(), ec::NONE),
            ("gone".to_string(), ec::GROUP_ID_NOT_FOUND)
        ]
    );
    assert_eq!(list_groups(&mut c), []);
}

/// offsets.retention.minutes = 1, checked every 100 ms: the offsets of a group that became Empty
/// expire once the broker's clock is a minute past that (not a second before), and the group is
/// removed; a group whose member stays keeps its offsets; both hold after a restart. (Through
/// `weir serve` this took over a minute of wall-clock time.)
#[test]
fn offsets_of_an_empty_group_expire_when_the_clock_passes_offsets_retention() {
    let mut h = Harness::start_with(|cfg| {
        cfg.offsets_retention_minutes = 1;
        cfg.offsets_retention_check_interval_ms = 100;
    });
    let mut c = h.conn();
    assert_eq!(create_topic(&mut c, "expiring", 2, &[]), ec::NONE);
    let at_end = [(0, 10), (1, 10)];
    let mut s = h.conn();
    let (stays, gen_s) = join_alone(&mut s, "stays", "expiring", &[0, 1]);
    assert_eq!(
        commit(&mut s, "stays", gen_s, &stays, "expiring", &at_end),
        [ec::NONE; 2]
    );
    let mut l = h.conn();
    let (leaves, gen_l) = join_alone(&mut l, "leaves", "expiring", &[0, 1]);
    assert_eq!(
        commit(&mut l, "leaves", gen_l, &leaves, "expiring", &at_end),
        [ec::NONE; 2]
    );
    assert_eq!(leave(&mut l, "leaves", &leaves), (ec::NONE, ec::NONE));
    // The group's timer (100 ms) notes when it became Empty, by the broker's clock.
    eventually("leaves is Empty", WAIT, || {
        let groups = list_groups(&mut c);
        groups
            .contains(&("leaves".to_string(), "Empty".to_string()))
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));

    // 59 s in steps shorter than the 30 s session, `stays` heartbeating after each (its session
    // runs on the same clock).
    for step_ms in [20_000, 20_000, 19_000] {
        h.clock.advance(step_ms);
        assert_eq!(heartbeat(&mut s, "stays", gen_s, &stays), ec::NONE);
    }
    std::thread::sleep(Duration::from_millis(500)); // five expiry checks
    assert_eq!(committed(&mut c, "leaves", "expiring", &[0, 1]), [10, 10]);
    h.clock.advance(2_000);
    eventually("the Empty group's offsets expire", WAIT, || {
        (committed(&mut c, "leaves", "expiring", &[0, 1]) == [-1, -1]).then_some(())
    });
    // Left with no offsets, the Empty group is removed; the group with a member is kept.
    eventually("the expired group is removed", WAIT, || {
        let names: Vec<String> = list_groups(&mut c).into_iter().map(|(g, _)| g).collect();
        (names == ["stays"]).then_some(())
    });
    assert_eq!(committed(&mut c, "stays", "expiring", &[0, 1]), [10, 10]);
    assert_eq!(heartbeat(&mut s, "stays", gen_s, &stays), ec::NONE);

    h.restart();
    let mut c = h.conn();
    assert_eq!(committed(&mut c, "leaves", "expiring", &[0, 1]), [-1, -1]);
    assert_eq!(committed(&mut c, "stays", "expiring", &[0, 1]), [10, 10]);
    let names: Vec<String> = list_groups(&mut c).into_iter().map(|(g, _)| g).collect();
    assert_eq!(names, ["stays"]);
}

/// The group's session timeouts run on the broker's clock: a member that stops heartbeating is
/// kept while the (manual) clock stays within its 30 s session — however long the test waits in
/// real time — and evicted once the clock passes it; the group is then Empty and the member's
/// heartbeat answers UNKNOWN_MEMBER_ID.
#[test]
fn a_silent_member_is_evicted_when_the_clock_passes_its_session_timeout() {
    let h = Harness::start();
    let mut c = h.conn();
    assert_eq!(create_topic(&mut c, "sessions", 1, &[]), ec::NONE);
    let mut m = h.conn();
    let (member, generation) = join_alone(&mut m, "silent", "sessions", &[0]);
    let stable = ("silent".to_string(), "Stable".to_string());
    h.clock.advance(29_000);
    std::thread::sleep(Duration::from_millis(500)); // five group ticks
    assert!(
        list_groups(&mut c).contains(&stable),
        "evicted before its session passed"
    );
    h.clock.advance(2_000);
    eventually("the silent member is evicted", WAIT, || {
        list_groups(&mut c)
            .contains(&("silent".to_string(), "Empty".to_string()))
            .then_some(())
    });
    assert_eq!(
        heartbeat(&mut m, "silent", generation, &member),
        ec::UNKNOWN_MEMBER_ID
    );
}

/// A group whose generation has just completed is there after an immediate clean restart: its
/// metadata record is due on the group timer's next tick (100 ms), and a stop before that tick
/// writes it (the restart here follows the SyncGroup at once, so the tick has rarely come).
#[test]
fn a_group_stopped_before_its_metadata_tick_is_restored_after_a_restart() {
    let mut h = Harness::start();
    let mut c = h.conn();
    assert_eq!(create_topic(&mut c, "ticks", 1, &[]), ec::NONE);
    join_alone(&mut c, "quick", "ticks", &[0]);
    h.restart();
    let mut c = h.conn();
    let groups = list_groups(&mut c);
    assert!(
        groups.contains(&("quick".to_string(), "Stable".to_string())),
        "{groups:?}"
    );
}
