//! The dependency rules of ARCHITECTURE.md, checked on the real dependency graph: the core never
//! depends on UI, network, async runtime, FFI or OS key store crates; the edges bring those.

use std::process::Command;

fn normal_dependencies(package: &str) -> Vec<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--manifest-path",
            manifest,
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo tree: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn core_stays_free_of_edges() {
    let dependencies = normal_dependencies("tessera-core");
    assert!(dependencies.iter().any(|d| d == "totp-rs"), "the tree was read: {dependencies:?}");
    for forbidden in
        ["keyring", "tokio", "reqwest", "hyper", "axum", "uniffi", "tauri", "dbus", "clap", "nokhwa"]
    {
        assert!(!dependencies.iter().any(|d| d == forbidden), "tessera-core depends on {forbidden}");
    }
}

#[test]
fn only_platform_brings_the_os_key_store() {
    assert!(normal_dependencies("tessera-platform").iter().any(|d| d == "keyring"));
    let core = normal_dependencies("tessera-core");
    assert!(!core.iter().any(|d| d == "keyring"));
}
