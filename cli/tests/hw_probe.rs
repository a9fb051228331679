//! `weir hw probe --json` on this machine and on the fake host tree, validated against
//! hardware/probe.schema.json, with a few items checked against what other tools say.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn weir(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .output()
        .expect("running weir");
    assert!(
        out.status.success(),
        "weir {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("hardware/probe.schema.json")).unwrap())
            .unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn check(doc: &serde_json::Value) {
    let errors: Vec<String> = validator()
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
}

fn value_of<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {doc:#}"))
}

fn tool(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn probe_of_this_machine_follows_the_schema_and_agrees_with_uname_and_getconf() {
    let dir = tempfile::tempdir().unwrap();
    let text = weir(&[
        "hw",
        "probe",
        "--json",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    check(&doc);
    assert_eq!(
        value_of(&doc, "kernel.version")["value"],
        tool("uname", &["-r"])
    );
    assert_eq!(
        value_of(&doc, "cpu.online")["value"],
        tool("getconf", &["_NPROCESSORS_ONLN"])
    );
    let fs = tool(
        "findmnt",
        &["-n", "-o", "FSTYPE", "-T", dir.path().to_str().unwrap()],
    );
    if !fs.is_empty() {
        assert_eq!(value_of(&doc, "disk.filesystem")["value"], fs);
    }
    let table = weir(&["hw", "probe", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(
        table.contains("kernel.version") && table.contains("worst: "),
        "{table}"
    );
}

#[test]
fn probe_of_the_fake_host_follows_the_schema_and_a_broken_document_does_not() {
    let dir = tempfile::tempdir().unwrap();
    hardware::fake_host::build(dir.path()).unwrap();
    let text = weir(&[
        "hw",
        "probe",
        "--json",
        "--root",
        dir.path().to_str().unwrap(),
        "--data-dir",
        hardware::fake_host::DATA_DIR,
    ]);
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    check(&doc);
    assert_eq!(
        value_of(&doc, "disk.nvme1n1.scheduler")["severity"],
        "warning"
    );
    doc["items"][0]["severity"] = "fine".into();
    assert!(
        !validator().is_valid(&doc),
        "the schema accepted severity 'fine'"
    );
}
