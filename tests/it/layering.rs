//! The dependency rules of ARCHITECTURE.md, checked on the real dependency graph: the core never
//! depends on UI, network, async runtime, FFI or OS key store crates; the edges bring those.

use std::process::Command;

fn normal_dependencies(package: &str) -> Vec<String> {
    dependencies_for(package, None)
}

fn dependencies_for(package: &str, target: Option<&str>) -> Vec<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let mut command = Command::new(env!("CARGO"));
    command.arg("tree");
    if let Some(target) = target {
        command.args(["--target", target]);
    }
    let output = command
        .args([
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

#[test]
fn only_the_mobile_library_uses_uniffi_and_it_needs_no_c_compiler_on_phones() {
    for package in ["tessera-core", "tessera-client", "tessera-platform", "tessera-cli", "tessera-server"] {
        assert!(!normal_dependencies(package).iter().any(|d| d == "uniffi"), "{package} depends on uniffi");
    }
    for target in ["aarch64-linux-android", "aarch64-apple-ios"] {
        let mobile = dependencies_for("tessera-ffi", Some(target));
        assert!(
            mobile.iter().any(|d| d == "uniffi") && mobile.iter().any(|d| d == "rustls-graviola"),
            "{mobile:?}"
        );
        for needs_c in ["ring", "aws-lc-sys", "openssl-sys", "keyring"] {
            assert!(!mobile.iter().any(|d| d == needs_c), "tessera-ffi for {target} depends on {needs_c}");
        }
    }
}
