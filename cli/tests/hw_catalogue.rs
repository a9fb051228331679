//! `weir hw catalogue`: the JSON is the shipped data file, the table shows unknowns as `?`,
//! `--only` filters and refuses what it does not know; a closed pipe ends it quietly.

use std::process::{Command, Output};

fn weir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["hw", "catalogue"])
        .args(args)
        .output()
        .expect("running weir")
}

#[test]
fn catalogue_json_is_the_data_file_and_only_filters() {
    let out = weir(&["--json"]);
    assert!(out.status.success());
    let printed: hardware::catalogue::Catalogue = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, hardware::catalogue::Catalogue::shipped().unwrap());
    let out = weir(&["--only", "i4i"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("i4i.xlarge") && !table.contains("i3en.xlarge"),
        "{table}"
    );
    assert!(table.contains("aws-so"), "sources are listed: {table}");
    let out = weir(&["--only", "i9z"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("i9z"));
}

/// `weir hw catalogue | true`: the reader is gone before weir writes; weir ends without a panic.
#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' hw catalogue | true",
            env!("CARGO_BIN_EXE_weir")
        ))
        .output()
        .expect("running sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}
