//! The host as files: every read and write of sysfs, procfs and /etc goes through a [`HostRoot`],
//! so the probe and the tuners work the same on the real host (`/`) and on a fake tree in a test.
//!
//! Owns: path joining under the root, bounded reads, and the one write path. A fake root also
//! behaves like sysfs for selector files (`[mq-deadline] none`): writing one of the offered words
//! moves the brackets, as the kernel does, so apply-then-revert can be checked byte for byte.
//! Must not: decide what to read or write (probe/ and tune/ do).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::HwError;

/// Largest file read through the root: sysfs and procfs files are a page or a few.
pub const READ_BYTES_MAX: u64 = 1 << 20;

/// Where the host's `/sys`, `/proc` and `/etc` are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    base: PathBuf,
    fake: bool,
}

impl HostRoot {
    /// The running host.
    pub fn real() -> HostRoot {
        HostRoot {
            base: PathBuf::from("/"),
            fake: false,
        }
    }

    /// A tree laid out like `/` (with `sys/`, `proc/`, `etc/` under `base`), for tests and for
    /// inspecting a copied tree. Writes emulate sysfs selector files.
    pub fn fake(base: impl Into<PathBuf>) -> HostRoot {
        HostRoot {
            base: base.into(),
            fake: true,
        }
    }

    /// `/` for the real host, the tree's directory for a fake one.
    pub fn base(&self) -> &Path {
        &self.base
    }

    pub fn is_real(&self) -> bool {
        !self.fake
    }

    /// `rel` (written as an absolute host path such as `/proc/sys/vm/swappiness`) under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel.trim_start_matches('/'))
    }

    /// A host path back as the absolute host path it stands for (`/sys/...`), if it is under the
    /// root.
    pub fn host_path(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.base).ok()?;
        Some(format!("/{}", rel.display()))
    }

    /// The file's bytes as text, or `None` if it is missing or unreadable (a knob the host lacks).
    pub fn read(&self, rel: &str) -> Option<String> {
        read_bounded(&self.path(rel)).ok()
    }

    /// The file's text trimmed of surrounding whitespace.
    pub fn read_trim(&self, rel: &str) -> Option<String> {
        self.read(rel).map(|s| s.trim().to_string())
    }

    /// The file as an unsigned integer.
    pub fn read_u64(&self, rel: &str) -> Option<u64> {
        self.read_trim(rel)?.parse().ok()
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// Names in a directory, sorted; empty when it is missing.
    pub fn list(&self, rel: &str) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.path(rel)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort_by(|a, b| natural_cmp(a, b));
        names
    }

    /// Writes `value` to the file, the one way a tuner changes the host.
    pub fn write(&self, rel: &str, value: &str) -> Result<(), HwError> {
        let path = self.path(rel);
        let text = match read_bounded(&path) {
            // Like the kernel, a selector file takes only one of the words it offers.
            Ok(old) if self.fake && selected(&old).is_some() => {
                select_in(&old, value).ok_or_else(|| {
                    HwError::io(
                        "writing",
                        &path,
                        std::io::Error::from_raw_os_error(libc::EINVAL),
                    )
                })?
            }
            _ => value.to_string(),
        };
        fs::write(&path, text).map_err(|e| HwError::io("writing", &path, e))
    }
}

/// Reads at most [`READ_BYTES_MAX`] bytes of a file as UTF-8 text.
pub fn read_bounded(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    fs::File::open(path)?
        .take(READ_BYTES_MAX)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The word in brackets of a sysfs selector file (`none [mq-deadline] kyber` → `mq-deadline`).
pub fn selected(text: &str) -> Option<&str> {
    let start = text.find('[')?;
    let end = start + text[start..].find(']')?;
    Some(&text[start + 1..end])
}

/// The words a selector file offers, brackets removed.
pub fn offered(text: &str) -> Vec<&str> {
    text.split_whitespace()
        .map(|w| w.trim_start_matches('[').trim_end_matches(']'))
        .collect()
}

/// `old` with the brackets moved to `word`, if `old` is a selector file offering `word`; the
/// spacing and line end are kept as they were.
fn select_in(old: &str, word: &str) -> Option<String> {
    selected(old)?;
    let word = word.trim();
    let plain = old.replace(['[', ']'], "");
    let mut at = 0;
    for token in plain.split(|c: char| c.is_whitespace()) {
        if token == word && !word.is_empty() {
            return Some(format!(
                "{}[{word}]{}",
                &plain[..at],
                &plain[at + word.len()..]
            ));
        }
        at += token.len() + 1;
    }
    None
}

/// Orders `cpu10` after `cpu9`, `rx-10` after `rx-9`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn split(s: &str) -> (&str, Option<u64>) {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (head, tail) = s.split_at(s.len() - digits);
        (head, tail.parse().ok())
    }
    split(a).cmp(&split(b)).then_with(|| a.cmp(b))
}

/// Parses a kernel CPU list (`0-3,8,10-11`); `None` if malformed. At most `limit` CPUs.
pub fn parse_cpu_list(text: &str, limit: usize) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
            None => {
                let n: usize = part.parse().ok()?;
                (n, n)
            }
        };
        if hi < lo || cpus.len() + (hi - lo) >= limit {
            return None;
        }
        cpus.extend(lo..=hi);
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_files_move_their_brackets_in_a_fake_root() {
        assert_eq!(selected("none [mq-deadline] kyber\n"), Some("mq-deadline"));
        assert_eq!(
            select_in("[mq-deadline] none\n", "none").as_deref(),
            Some("mq-deadline [none]\n")
        );
        assert_eq!(
            select_in("none [mq-deadline] kyber \n", "none").as_deref(),
            Some("[none] mq-deadline kyber \n")
        );
        assert_eq!(select_in("[mq-deadline] none\n", "bfq"), None);
        assert_eq!(select_in("60\n", "1"), None);
    }

    #[test]
    fn cpu_lists_parse_and_refuse_garbage() {
        assert_eq!(parse_cpu_list("0-3,8\n", 64), Some(vec![0, 1, 2, 3, 8]));
        assert_eq!(parse_cpu_list("", 64), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1", 64), None);
        assert_eq!(parse_cpu_list("x", 64), None);
        assert_eq!(parse_cpu_list("0-100000", 64), None);
    }

    #[test]
    fn natural_order_puts_ten_after_nine() {
        let mut v = vec!["cpu10", "cpu9", "cpu1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["cpu1", "cpu9", "cpu10"]);
    }
}
