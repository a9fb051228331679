//! Port ownership: after every shard listens, makes sure no other process listens in the same
//! SO_REUSEPORT group.
//!
//! The shards share the Kafka port with SO_REUSEPORT, and Linux lets any socket of the same user
//! join such a group: a second broker started on the same address would not fail with "address
//! in use" but silently take half of the connections (seen in tests: two brokers on one port,
//! each client talking to whichever the kernel picked). So the listening sockets on the port are
//! read from `/proc/net/tcp{,6}` and compared with this process's own sockets (`/proc/self/fd`).
//! Owns: that comparison and the parsing of those two files. Must not: bind, listen or close
//! anything (it only reads).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The TCP state number of LISTEN in `/proc/net/tcp`.
const TCP_LISTEN: u8 = 0x0A;

/// One listening socket read from `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub local: SocketAddr,
    pub inode: u64,
}

/// Listeners on `addr`'s port (overlapping its address) that belong to no socket of this
/// process. Empty when `/proc` cannot be read (the check is then skipped, not failed).
pub fn foreign_listeners(addr: SocketAddr) -> Vec<Listener> {
    let mut listeners = Vec::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            listeners.extend(parse_listeners(&text));
        }
    }
    let own = own_socket_inodes();
    listeners
        .into_iter()
        .filter(|l| l.local.port() == addr.port() && overlaps(l.local.ip(), addr.ip()))
        .filter(|l| !own.contains(&l.inode))
        .collect()
}

/// Inodes of every socket this process holds open.
fn own_socket_inodes() -> HashSet<u64> {
    let mut inodes = HashSet::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return inodes;
    };
    for entry in dir.flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            if let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    inodes
}

/// Two local addresses on one port reach the same listener group when equal or when either is
/// a wildcard (IPv4-mapped IPv6 compares as IPv4).
fn overlaps(a: IpAddr, b: IpAddr) -> bool {
    let (a, b) = (a.to_canonical(), b.to_canonical());
    a == b || a.is_unspecified() || b.is_unspecified()
}

/// The LISTEN rows of a `/proc/net/tcp` or `/proc/net/tcp6` text; rows it cannot read are
/// skipped.
pub fn parse_listeners(text: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let state = u8::from_str_radix(fields.get(3)?, 16).ok()?;
            if state != TCP_LISTEN {
                return None;
            }
            let local = parse_address(fields.get(1)?)?;
            let inode = fields.get(9)?.parse().ok()?;
            Some(Listener { local, inode })
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:port` (IPv6): the address is printed as 32-bit
/// words in the kernel's (little-endian) byte order, the port as a plain hex number.
fn parse_address(field: &str) -> Option<SocketAddr> {
    let (ip_hex, port_hex) = field.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let words: Vec<u32> = (0..ip_hex.len() / 8)
        .map(|i| u32::from_str_radix(ip_hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let ip = match words.as_slice() {
        [w] => IpAddr::V4(Ipv4Addr::from(w.swap_bytes())),
        [a, b, c, d] => {
            let mut octets = [0u8; 16];
            for (i, w) in [a, b, c, d].into_iter().enumerate() {
                octets[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2384 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0000000000000000 100 0 0 10 0
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:2384 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn reads_listening_rows_only_with_their_address_and_inode() {
        assert_eq!(
            parse_listeners(TCP),
            vec![
                Listener {
                    local: "127.0.0.1:9092".parse().unwrap(),
                    inode: 4242
                },
                Listener {
                    local: "0.0.0.0:80".parse().unwrap(),
                    inode: 17
                },
            ]
        );
        assert_eq!(
            parse_listeners(TCP6),
            vec![Listener {
                local: "[::1]:9092".parse().unwrap(),
                inode: 99
            }]
        );
    }

    #[test]
    fn garbage_rows_are_skipped() {
        assert!(
            parse_listeners("header\n 0: zz:zz yy 0A\n\n 1: 0100007F 0 0A a b c d e f\n")
                .is_empty()
        );
    }

    #[test]
    fn wildcards_overlap_every_address_of_their_port() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(overlaps(v4("0.0.0.0"), v4("127.0.0.1")));
        assert!(overlaps(v4("::"), v4("127.0.0.1")));
        assert!(overlaps(v4("::ffff:127.0.0.1"), v4("127.0.0.1")));
        assert!(!overlaps(v4("127.0.0.1"), v4("10.0.0.1")));
    }

    #[test]
    fn a_socket_of_this_process_is_not_foreign_but_the_check_sees_it_listening() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(foreign_listeners(addr).is_empty());
        let all: Vec<Listener> = ["/proc/net/tcp"]
            .iter()
            .flat_map(|p| parse_listeners(&std::fs::read_to_string(p).unwrap()))
            .collect();
        let mine = own_socket_inodes();
        assert!(all
            .iter()
            .any(|l| l.local == addr && mine.contains(&l.inode)));
    }
}
