//! ZooKeeper's four-letter words: a connection whose first four bytes are a command (`ruok`,
//! `srvr` …) instead of a frame length gets a plain-text answer and is closed — what monitoring
//! scripts, exporters and `echo srvr | nc host 2181` rely on.
//!
//! Owns: recognising the words and the text of each answer, from a [`ServerStats`] the frontend
//! fills in. Served: `ruok`, `isro`, `srvr`, `stat`, `mntr` (read-only status); every other word
//! ZooKeeper knows gets ZooKeeper's "not in the whitelist" answer, as a ZooKeeper 3.5+ server
//! whose whitelist holds just these five. Must not: read the tree or sockets itself.

use std::fmt::Write as _;

/// The four-letter words ZooKeeper 3.8 knows.
const KNOWN: [&[u8; 4]; 22] = [
    b"conf", b"cons", b"crst", b"dirs", b"dump", b"envi", b"gtmk", b"hash", b"isro", b"kill",
    b"mntr", b"reqs", b"ruok", b"srst", b"srvr", b"stat", b"stmk", b"wchc", b"wchp", b"wchs",
    b"lead", b"lsnp",
];

/// A four-letter word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    Ruok,
    Isro,
    /// Answered only while the node serves (a leader is known).
    Status(Status),
    /// Known to ZooKeeper but not served here.
    Refused([u8; 4]),
}

/// The status words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Srvr,
    Stat,
    Mntr,
}

impl Word {
    /// The word these first four bytes of a connection spell, if any (a ZooKeeper frame length
    /// never does: as a length it would be over 1.6 GB).
    pub fn parse(first: [u8; 4]) -> Option<Word> {
        Some(match &first {
            b"ruok" => Word::Ruok,
            b"isro" => Word::Isro,
            b"srvr" => Word::Status(Status::Srvr),
            b"stat" => Word::Status(Status::Stat),
            b"mntr" => Word::Status(Status::Mntr),
            other if KNOWN.contains(&other) => Word::Refused(first),
            _ => return None,
        })
    }
}

/// This node's role, as `srvr` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Follower,
    /// A single-voter ensemble (ZooKeeper's standalone mode).
    Standalone,
    /// No leader known: the node is not serving.
    NotServing,
}

/// What the answers report; filled in by the frontend at the moment of the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub version: String,
    pub mode: Option<Mode>,
    /// The last applied index (weir's zxids are Raft indexes).
    pub zxid: u64,
    pub znodes: usize,
    pub ephemerals: usize,
    pub connections: usize,
    /// Requests received on this node's ZooKeeper connections, and answered.
    pub received: u64,
    pub sent: u64,
    /// Requests waiting for their answer.
    pub outstanding: usize,
    /// Watch registrations (one-shot data and child, persistent, recursive).
    pub watches: usize,
    /// Client addresses of the open connections (for `stat`).
    pub clients: Vec<String>,
}

const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The text a word is answered with.
pub fn answer(word: Word, s: &ServerStats) -> String {
    let serving = s.mode.is_some_and(|m| m != Mode::NotServing);
    match word {
        Word::Ruok => "imok".into(),
        // weir has no read-only mode: a serving node takes writes.
        Word::Isro if serving => "rw".into(),
        Word::Isro => "null".into(),
        Word::Refused(w) => format!(
            "{} is not executed because it is not in the whitelist.\n",
            String::from_utf8_lossy(&w)
        ),
        Word::Status(_) if !serving => NOT_SERVING.into(),
        Word::Status(Status::Srvr) => {
            format!("Zookeeper version: {}\n{}", s.version, server_lines(s))
        }
        Word::Status(Status::Stat) => {
            let mut out = format!("Zookeeper version: {}\nClients:\n", s.version);
            for c in &s.clients {
                let _ = writeln!(out, " /{c}[1](queued=0,recved=0,sent=0)");
            }
            out.push('\n');
            out + &server_lines(s)
        }
        Word::Status(Status::Mntr) => {
            let mut out = String::new();
            let mut kv = |k: &str, v: &dyn std::fmt::Display| {
                let _ = writeln!(out, "zk_{k}\t{v}");
            };
            kv("version", &s.version);
            kv("server_state", &mode_name(s.mode));
            kv("znode_count", &s.znodes);
            kv("ephemerals_count", &s.ephemerals);
            kv("num_alive_connections", &s.connections);
            kv("outstanding_requests", &s.outstanding);
            kv("packets_received", &s.received);
            kv("packets_sent", &s.sent);
            kv("watch_count", &s.watches);
            out
        }
    }
}

/// The server lines of `srvr` and `stat`. weir keeps no request latency statistics, so the
/// latency line ZooKeeper prints is left out rather than filled with zeros.
fn server_lines(s: &ServerStats) -> String {
    format!(
        "Received: {}\nSent: {}\nConnections: {}\nOutstanding: {}\n\
         Zxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        s.received,
        s.sent,
        s.connections,
        s.outstanding,
        s.zxid,
        mode_name(s.mode),
        s.znodes
    )
}

fn mode_name(mode: Option<Mode>) -> &'static str {
    match mode {
        Some(Mode::Leader) => "leader",
        Some(Mode::Follower) => "follower",
        Some(Mode::Standalone) => "standalone",
        Some(Mode::NotServing) | None => "not serving",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(mode: Mode) -> ServerStats {
        ServerStats {
            version: "weir-0.1.0".into(),
            mode: Some(mode),
            zxid: 0x2a,
            znodes: 7,
            ephemerals: 2,
            connections: 3,
            received: 100,
            sent: 98,
            outstanding: 2,
            watches: 4,
            clients: vec!["127.0.0.1:5000".into()],
        }
    }

    #[test]
    fn words_are_recognised_and_frame_lengths_are_not() {
        assert_eq!(Word::parse(*b"ruok"), Some(Word::Ruok));
        assert_eq!(Word::parse(*b"mntr"), Some(Word::Status(Status::Mntr)));
        assert_eq!(Word::parse(*b"kill"), Some(Word::Refused(*b"kill")));
        assert_eq!(Word::parse(44i32.to_be_bytes()), None);
        assert_eq!(Word::parse(*b"abcd"), None);
    }

    #[test]
    fn answers_have_zookeepers_shape() {
        let s = stats(Mode::Leader);
        assert_eq!(answer(Word::Ruok, &s), "imok");
        assert_eq!(answer(Word::Isro, &s), "rw");
        let srvr = answer(Word::Status(Status::Srvr), &s);
        assert!(
            srvr.starts_with("Zookeeper version: weir-0.1.0\n"),
            "{srvr}"
        );
        for line in [
            "Mode: leader\n",
            "Node count: 7\n",
            "Zxid: 0x2a\n",
            "Outstanding: 2\n",
        ] {
            assert!(srvr.contains(line), "{line} in {srvr}");
        }
        let stat = answer(Word::Status(Status::Stat), &s);
        assert!(stat.contains("Clients:\n /127.0.0.1:5000[1]"), "{stat}");
        assert!(stat.contains("Mode: leader\n") && stat.ends_with("Node count: 7\n"));
        assert_eq!(stat.matches("Zookeeper version").count(), 1, "{stat}");
        let mntr = answer(Word::Status(Status::Mntr), &s);
        for line in [
            "zk_server_state\tleader\n",
            "zk_znode_count\t7\n",
            "zk_watch_count\t4\n",
        ] {
            assert!(mntr.contains(line), "{line} in {mntr}");
        }
        assert!(mntr
            .lines()
            .all(|l| l.starts_with("zk_") && l.contains('\t')));
        assert_eq!(
            answer(Word::Refused(*b"dump"), &s),
            "dump is not executed because it is not in the whitelist.\n"
        );
        assert!(answer(Word::Status(Status::Srvr), &stats(Mode::Standalone))
            .contains("Mode: standalone\n"));
    }

    #[test]
    fn a_node_without_a_leader_says_it_is_not_serving() {
        let s = stats(Mode::NotServing);
        assert_eq!(answer(Word::Ruok, &s), "imok");
        assert_eq!(answer(Word::Isro, &s), "null");
        for w in [Status::Srvr, Status::Stat, Status::Mntr].map(Word::Status) {
            assert_eq!(answer(w, &s), NOT_SERVING);
        }
    }
}
