//! broker_cpu — the CPU time a local broker process spends during a run: its pid (given, or the
//! process listening on the bootstrap port, found through /proc/net/tcp{,6} and /proc/*/fd), and
//! utime + stime from /proc/PID/stat before and after.
//!
//! Owns reading /proc (Linux only). Must not signal or otherwise touch the process, and must not
//! fail a run: a broker that cannot be found is `None`, and the caller says so.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

/// CPU seconds of a process so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTimes {
    pub user_s: f64,
    pub system_s: f64,
}

/// Reads utime and stime of `pid` (fields 14 and 15 of /proc/PID/stat), in seconds.
pub fn cpu_times(pid: u32) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat, clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Parses /proc/PID/stat: the command name (field 2) is in parentheses and may hold spaces, so
/// fields are counted after the last ')'.
fn parse_stat(stat: &str, ticks: f64) -> Option<CpuTimes> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 → index 11, stime index 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(CpuTimes {
        user_s: utime / ticks,
        system_s: stime / ticks,
    })
}

/// Whether `bootstrap` names this machine (loopback, or an address of ours by a bind probe).
pub fn is_local(bootstrap: &str) -> Option<SocketAddr> {
    let addr = bootstrap.to_socket_addrs().ok()?.next()?;
    if addr.ip().is_loopback() || std::net::UdpSocket::bind((addr.ip(), 0)).is_ok() {
        Some(addr)
    } else {
        None
    }
}

/// The pid of a process with a listening TCP socket on `port` (any address), if one can be seen.
pub fn find_listener(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.into_iter()
        .find(|pid| holds_socket(Path::new(&format!("/proc/{pid}/fd")), &wanted))
}

fn holds_socket(fd_dir: &Path, wanted: &[String]) -> bool {
    let Ok(entries) = std::fs::read_dir(fd_dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        std::fs::read_link(e.path())
            .ok()
            .and_then(|l| l.to_str().map(|s| wanted.iter().any(|w| w == s)))
            .unwrap_or(false)
    })
}

/// Inodes of sockets in LISTEN state (0A) on `port` in a /proc/net/tcp table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f.get(1)?;
            let state = f.get(3)?;
            let inode: u64 = f.get(9)?.parse().ok()?;
            let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (local_port == port && *state == "0A" && inode != 0).then_some(inode)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat =
            "4242 (weir serve) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 3 0 100 0 0";
        let t = parse_stat(stat, 100.0).unwrap();
        assert_eq!(
            t,
            CpuTimes {
                user_s: 2.5,
                system_s: 0.75
            }
        );
        assert!(parse_stat("garbage", 100.0).is_none());
    }

    #[test]
    fn our_own_listener_is_found_and_its_cpu_read() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(find_listener(port), Some(std::process::id()));
        drop(listener);
        assert_eq!(find_listener(port), None);
        // Burn a little CPU so the figure is not zero.
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let t = cpu_times(std::process::id()).unwrap();
        assert!(t.user_s + t.system_s > 0.0);
        assert!(is_local(&format!("127.0.0.1:{port}")).is_some());
    }
}
