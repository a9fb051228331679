//! The tidy test (rust-analyzer's `tidy.rs`): the rules of docs/ARCHITECTURE.md that a reviewer
//! would otherwise have to remember, checked on every `cargo test`.
//!
//! - every Rust module under a crate's `src/` opens with a `//!` header (what it owns, what it
//!   must not do);
//! - no Rust file is longer than `LINES_MAX`, except those in `LONG_FILES`, each with a ceiling it
//!   may not grow past; an entry whose file is back under the budget (or gone) must be removed, so
//!   the list only shrinks;
//! - the crates depend on each other only along the layers (`LAYERS`), and the engine reaches the
//!   coordinator only through `coord::client` and `coord::server`;
//! - a Kafka error code is defined once, in `wire/src/error_code.rs`;
//! - every dependency a Cargo.toml names is used by that crate, and is listed in
//!   ARCHITECTURE.md's dependency table.
//!
//! Owns: these checks. Must not: build or run anything (it reads files only).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines a Rust file may have.
const LINES_MAX: usize = 600;

/// Files over `LINES_MAX` today, with the ceiling each may not grow past. Split a file and
/// remove its entry; never add one.
const LONG_FILES: &[(&str, usize)] = &[
    ("bench/src/log_bench.rs", 814),
    ("bench/src/report.rs", 649),
    ("bench/src/zk_load.rs", 1036),
    ("cli/tests/consumer_groups.rs", 1038),
    ("cli/tests/coord_cluster.rs", 610),
    ("cli/tests/kafka_clients.rs", 647),
    ("coord/src/client.rs", 837),
    ("coord/src/disk.rs", 782),
    ("coord/src/node.rs", 962),
    ("coord/src/server.rs", 808),
    ("coord/src/sim.rs", 757),
    ("coord/src/tree.rs", 1205),
    ("coord/src/zk/front.rs", 1718),
    ("coord/src/zk/jute.rs", 1694),
    ("kafka-client/src/consumer.rs", 730),
    ("kafka-client/src/producer.rs", 1757),
    ("engine/src/broker/groups/state.rs", 833),
    ("engine/src/broker/idempotence/mod.rs", 771),
    ("storage/tests/compact.rs", 950),
    ("wire/src/batch.rs", 734),
];

/// Which workspace crates (by library name) each crate may depend on (normal and dev
/// dependencies): the layers. `cli` is the top and may use any.
const LAYERS: &[(&str, &[&str])] = &[
    ("wire", &[]),
    ("storage", &["wire"]),
    ("coord", &[]),
    // kclient only as a dev-dependency: the in-process harness's tests (engine/tests/harness)
    // talk Kafka through weir's one client; the broker itself never links a client.
    ("engine", &["wire", "storage", "coord", "kclient"]),
    // The one Kafka client (bench, the CLI's admin commands; the replica fetcher next).
    ("kclient", &["wire"]),
    // The ZooKeeper load client speaks the coordinator's jute codec (`coord::zk::jute`).
    // `weir bench log` measures the raw disk with hardware's O_DIRECT loops beside the log.
    (
        "bench",
        &["wire", "storage", "coord", "hardware", "kclient"],
    ),
    ("tuning", &["wire", "bench", "kclient"]),
    ("hardware", &[]),
];

/// Edges of `LAYERS` allowed for dev-dependencies only (tests), never for the library itself.
const DEV_ONLY: &[(&str, &str)] = &[("engine", "kclient")];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

/// The workspace's member directories, from the root Cargo.toml.
fn members() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).expect("root Cargo.toml");
    let doc: toml::Table = toml::from_str(&text).expect("root Cargo.toml parses");
    doc["workspace"]["members"]
        .as_array()
        .expect("workspace.members")
        .iter()
        .map(|m| m.as_str().expect("member name").to_string())
        .collect()
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_module_opens_with_a_header_saying_what_it_owns() {
    let mut missing = Vec::new();
    for member in members() {
        for file in rust_files(&root().join(&member).join("src")) {
            let text = read(&file);
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if !first.starts_with("//!") {
                missing.push(relative(&file));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules without a `//!` header (say what the module owns and must not do):\n{}",
        missing.join("\n")
    );
}

#[test]
fn files_stay_within_the_line_budget_and_the_long_list_only_shrinks() {
    let ceilings: BTreeMap<&str, usize> = LONG_FILES.iter().copied().collect();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for member in members() {
        for file in rust_files(&root().join(&member)) {
            let name = relative(&file);
            let lines = read(&file).lines().count();
            match ceilings.get(name.as_str()) {
                Some(&ceiling) => {
                    seen.insert(name.clone());
                    if lines > ceiling {
                        problems.push(format!(
                            "{name}: {lines} lines, over its ceiling of {ceiling} (split it)"
                        ));
                    } else if lines <= LINES_MAX {
                        problems.push(format!(
                            "{name}: {lines} lines is within the budget: remove it from LONG_FILES"
                        ));
                    }
                }
                None if lines > LINES_MAX => problems.push(format!(
                    "{name}: {lines} lines, over the budget of {LINES_MAX} (split it; LONG_FILES \
                     takes no new entries)"
                )),
                None => {}
            }
        }
    }
    for (name, _) in LONG_FILES {
        if !seen.contains(*name) {
            problems.push(format!(
                "{name}: listed in LONG_FILES but gone: remove the entry"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A member's Cargo.toml, parsed.
fn manifest(member: &str) -> toml::Table {
    let path = root().join(member).join("Cargo.toml");
    toml::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (key, is a workspace path dependency) of every dependency and dev-dependency of a member.
fn dependencies(manifest: &toml::Table) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for section in ["dependencies", "dev-dependencies"] {
        if let Some(table) = manifest.get(section).and_then(|t| t.as_table()) {
            for (key, spec) in table {
                let path = spec.as_table().and_then(|t| t.get("path"));
                // A crate's dev-dependency on itself only turns on a feature for its own tests
                // (storage's failpoints): not an edge between crates.
                if path.and_then(|p| p.as_str()) == Some(".") {
                    continue;
                }
                out.push((key.clone(), path.is_some()));
            }
        }
    }
    out
}

#[test]
fn crates_depend_on_each_other_only_along_the_layers() {
    let layers: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut problems = Vec::new();
    for member in members() {
        let manifest = manifest(&member);
        // A crate is named by its library name where it has one (kafka-client/ is `kclient`).
        let name = manifest
            .get("lib")
            .and_then(|lib| lib.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or(&member)
            .to_string();
        let internal: Vec<String> = dependencies(&manifest)
            .into_iter()
            .filter(|(_, path)| *path)
            .map(|(key, _)| key)
            .collect();
        match layers.get(name.as_str()) {
            Some(allowed) => {
                for dep in &internal {
                    if !allowed.contains(&dep.as_str()) {
                        problems.push(format!(
                            "{name} depends on {dep}; its layer allows only {allowed:?}"
                        ));
                    }
                }
            }
            None if name == "cli" => {}
            None => problems.push(format!("{name} is not in LAYERS: place it in the layers")),
        }
        let normal = manifest.get("dependencies").and_then(|t| t.as_table());
        for (crate_name, dep) in DEV_ONLY {
            if *crate_name == name && normal.is_some_and(|t| t.contains_key(*dep)) {
                problems.push(format!(
                    "{name} may use {dep} as a dev-dependency only (DEV_ONLY)"
                ));
            }
        }
    }
    // The engine uses the coordinator through its client library and embedded server only.
    for file in rust_files(&root().join("engine")) {
        for (n, line) in read(&file).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (at, _) in code.match_indices("coord::") {
                let rest = &code[at + "coord::".len()..];
                let preceded = code[..at]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
                if !preceded && !rest.starts_with("client") && !rest.starts_with("server") {
                    problems.push(format!(
                        "{}:{}: the engine reaches the coordinator only through coord::client \
                         and coord::server: {}",
                        relative(&file),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn kafka_error_codes_are_defined_once() {
    let table = root().join("wire/src/error_code.rs");
    let names: BTreeSet<String> = read(&table)
        .lines()
        .filter_map(|l| l.trim().split_once(" = "))
        .map(|(name, _)| name.trim_start_matches("pub const ").trim().to_string())
        .filter(|n| n.chars().all(|c| c.is_ascii_uppercase() || c == '_') && n.len() > 3)
        .collect();
    assert!(names.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{names:?}");
    let mut problems = Vec::new();
    for member in members() {
        for file in rust_files(&root().join(&member)) {
            if file == table {
                continue;
            }
            for (n, line) in read(&file).lines().enumerate() {
                let Some(rest) = line.trim().split("const ").nth(1) else {
                    continue;
                };
                let Some((name, ty)) = rest.split_once(':') else {
                    continue;
                };
                if names.contains(name.trim()) && ty.trim_start().starts_with("i16") {
                    problems.push(format!(
                        "{}:{}: {} is a Kafka error code: use wire::error_code",
                        relative(&file),
                        n + 1,
                        name.trim()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Whether `text` uses the crate `ident` (`ident::`, `ident!`, `extern crate ident;`, or a serde
/// attribute's `with = "ident"`).
fn uses_crate(text: &str, ident: &str) -> bool {
    text.contains(&format!("\"{ident}\""))
        || text.match_indices(ident).any(|(at, _)| {
            let before = text[..at].chars().last();
            let after = &text[at + ident.len()..];
            let starts_word = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            starts_word
                && (after.starts_with("::") || after.starts_with('!') || after.starts_with(';'))
        })
}

/// Whether `text` names `word` as a whole word (a crate name: letters, digits, `_` and `-`).
fn mentions_word(text: &str, word: &str) -> bool {
    let part_of_name = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().last();
        let after = text[at + word.len()..].chars().next();
        before.is_none_or(|c| !part_of_name(c)) && after.is_none_or(|c| !part_of_name(c))
    })
}

#[test]
fn every_dependency_is_used_and_listed_in_the_architecture() {
    let architecture = read(&root().join("docs/ARCHITECTURE.md"));
    let listed = architecture
        .split("## Dependencies")
        .nth(1)
        .expect("ARCHITECTURE.md has a `## Dependencies` section");
    let mut problems = Vec::new();
    for member in members() {
        let sources: String = rust_files(&root().join(&member))
            .iter()
            .map(|f| read(f))
            .collect::<Vec<_>>()
            .join("\n");
        for (key, path) in dependencies(&manifest(&member)) {
            let ident = key.replace('-', "_");
            if !uses_crate(&sources, &ident) {
                problems.push(format!("{member}: dependency {key} is not used"));
            }
            if !path && !mentions_word(listed, &key) {
                problems.push(format!(
                    "{member}: dependency {key} is not in ARCHITECTURE.md's dependency table"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
