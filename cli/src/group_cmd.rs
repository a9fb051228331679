//! `weir group list|describe`: consumer groups as a Kafka client sees them (like Kafka's
//! `kafka-consumer-groups.sh`): the groups, and one group's state, members, assignments,
//! committed offsets, log end offsets and lag.
//!
//! Owns: argv parsing and printing for these commands. Must not: speak the protocol itself;
//! everything goes through `kclient::admin` (run by `kclient::blocking`).

use anyhow::Context;
use clap::{Args, Subcommand};

use kclient::admin::Described;
use kclient::blocking as admin;

#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(subcommand)]
    cmd: GroupCmd,
}

#[derive(Debug, Args)]
struct Bootstrap {
    /// A broker's Kafka address.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
}

#[derive(Debug, Subcommand)]
enum GroupCmd {
    /// Every group: id, state, protocol type.
    List {
        #[command(flatten)]
        b: Bootstrap,
    },
    /// One group: state, members, and per partition the committed offset, log end offset and lag.
    Describe {
        #[command(flatten)]
        b: Bootstrap,
        group: String,
    },
}

pub fn run(args: GroupArgs) -> anyhow::Result<()> {
    match args.cmd {
        GroupCmd::List { b } => {
            let groups = admin::list_groups(&b.bootstrap)?;
            let rows: Vec<Vec<String>> = groups
                .into_iter()
                .map(|(g, state, ptype)| vec![g, state, ptype])
                .collect();
            print_table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows);
        }
        GroupCmd::Describe { b, group } => {
            let d = admin::describe_group(&b.bootstrap, &group)
                .with_context(|| format!("describing group {group}"))?;
            print!("{}", render(&d));
        }
    }
    Ok(())
}

/// A cell for a value that may be absent.
fn dash(x: Option<impl std::fmt::Display>) -> String {
    x.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// A cell for a string that may be empty.
fn or_dash(x: &str) -> &str {
    if x.is_empty() {
        "-"
    } else {
        x
    }
}

/// The text `weir group describe` prints.
fn render(d: &Described) -> String {
    let mut out = format!(
        "GROUP {}\nSTATE {}\nPROTOCOL {}/{}\n\n",
        d.group,
        d.state,
        or_dash(&d.protocol_type),
        or_dash(&d.protocol)
    );
    let rows: Vec<Vec<String>> = d
        .members
        .iter()
        .map(|m| {
            let assigned: Vec<String> =
                m.assigned.iter().map(|(t, p)| format!("{t}-{p}")).collect();
            vec![
                m.member_id.clone(),
                dash(m.instance_id.as_ref()),
                m.client_id.clone(),
                or_dash(&m.host).to_string(),
                match (&m.assignment_error, assigned.is_empty()) {
                    (Some(e), _) => format!("(undecodable: {e})"),
                    (None, true) => "-".into(),
                    (None, false) => assigned.join(","),
                },
            ]
        })
        .collect();
    out += &table(
        &[
            "MEMBER-ID",
            "INSTANCE-ID",
            "CLIENT-ID",
            "HOST",
            "ASSIGNMENT",
        ],
        &rows,
    );
    out.push('\n');
    let rows: Vec<Vec<String>> = d
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                dash(p.committed),
                dash(p.log_end),
                dash(p.lag()),
                dash(p.member.as_ref()),
            ]
        })
        .collect();
    out += &table(
        &[
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "MEMBER-ID",
        ],
        &rows,
    );
    let total: i64 = d.partitions.iter().filter_map(|p| p.lag()).sum();
    out += &format!("\nTOTAL-LAG {total}\n");
    out
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", table(header, rows));
}

/// Left-aligned columns separated by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l += c;
            } else {
                l += &format!("{c:<w$}  ");
            }
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out += &line(r.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kclient::admin::{Described, Member, PartitionLag};

    #[test]
    fn describe_output_shows_lag_and_undecodable_assignments() {
        let d = Described {
            group: "g".into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            members: vec![Member {
                member_id: "m1".into(),
                instance_id: None,
                client_id: "c".into(),
                host: String::new(),
                assigned: Vec::new(),
                assignment_error: Some("bad".into()),
            }],
            partitions: vec![
                PartitionLag {
                    topic: "t".into(),
                    partition: 0,
                    committed: Some(3),
                    log_end: Some(10),
                    member: Some("m1".into()),
                },
                PartitionLag {
                    topic: "t".into(),
                    partition: 1,
                    committed: None,
                    log_end: Some(4),
                    member: None,
                },
            ],
        };
        let out = render(&d);
        let rows: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!(
            rows.contains(&vec!["t", "0", "3", "10", "7", "m1"]),
            "{out}"
        );
        assert!(rows.contains(&vec!["t", "1", "-", "4", "-", "-"]), "{out}");
        assert!(out.contains("(undecodable: bad)"), "{out}");
        assert!(out.lines().any(|l| l == "TOTAL-LAG 7"), "{out}");
    }
}
