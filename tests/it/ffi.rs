//! The mobile library across the language boundary, and the Android app's view-model on the JVM. The workspace's `uniffi-bindgen` generates the
//! Kotlin, Swift and Python bindings of the built `libtessera_ffi.so` with the top-level
//! `uniffi.toml`; the Kotlin test program is compiled with kotlinc and run on the JVM (JNA), the
//! Python one with python3, each against the real library and a real `tessera-server`. Swift
//! cannot be compiled here: its generated files are checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;

use crate::server_support::{Db, Server};
use crate::support::binary;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Generates the bindings into `out` the way `scripts/bindings.sh` does.
fn generate(out: &Path) {
    let output = Command::new(binary("uniffi-bindgen"))
        .args(["generate", "--library"])
        .arg(binary("libtessera_ffi.so"))
        .arg("--config")
        .arg(workspace().join("uniffi.toml"))
        .args(["--language", "kotlin", "--language", "swift", "--language", "python", "--no-format"])
        .arg("--out-dir")
        .arg(out)
        .output()
        .unwrap();
    assert!(output.status.success(), "uniffi-bindgen: {}", String::from_utf8_lossy(&output.stderr));
}

/// `[crates.tessera_ffi.bindings.<language>].<key>` of the top-level `uniffi.toml`.
fn configured(language: &str, key: &str) -> String {
    let text = std::fs::read_to_string(workspace().join("uniffi.toml")).unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    config["crates"]["tessera_ffi"]["bindings"][language][key].as_str().unwrap().to_owned()
}

#[test]
fn the_top_level_uniffi_toml_names_the_kotlin_package_and_the_swift_modules() {
    let out = tempfile::tempdir().unwrap();
    generate(out.path());
    let package = configured("kotlin", "package_name");
    assert_ne!(package, "uniffi.tessera_ffi", "not uniffi's default");
    let kotlin = out.path().join(package.replace('.', "/")).join("tessera_ffi.kt");
    let kotlin = std::fs::read_to_string(&kotlin).unwrap_or_else(|e| panic!("{}: {e}", kotlin.display()));
    assert!(kotlin.contains(&format!("package {package}\n")), "the Kotlin package comes from uniffi.toml");

    let (module, ffi_module) = (configured("swift", "module_name"), configured("swift", "ffi_module_name"));
    let swift = std::fs::read_to_string(out.path().join(format!("{module}.swift"))).unwrap();
    assert!(swift.contains(&format!("import {ffi_module}")), "the Swift module imports its C module");
    let modulemap = std::fs::read_to_string(out.path().join(format!("{ffi_module}.modulemap"))).unwrap();
    assert!(modulemap.contains(&format!("module {ffi_module}")), "{modulemap}");
    let header = std::fs::read_to_string(out.path().join(format!("{ffi_module}.h"))).unwrap();
    for exported in [
        "public protocol KeyStore",
        "public protocol PushListener",
        "open class Vault",
        "enum TesseraError: Swift.Error",
        "public func decodeQrLuma(",
    ] {
        assert!(swift.contains(exported), "the Swift bindings declare `{exported}`");
    }
    assert!(
        header.contains("uniffi_tessera_ffi_fn_func_decode_qr_luma"),
        "the C header declares the exports"
    );

    let python = std::fs::read_to_string(out.path().join("tessera_ffi.py")).unwrap();
    assert!(python.contains("class Vault") && python.contains("def decode_qr_luma("), "the Python module");
}

/// A server with a user whose push token waits for a device: (server, enrollment link).
fn server_with_push_enrollment(username: &str) -> (Server, String) {
    let server = Server::start(Db::Sqlite, "");
    let enrollment = server.user_with_token(username, json!({ "kind": "push" }));
    let link = enrollment["enrollment_uri"].as_str().unwrap().to_owned();
    (server, link)
}

fn run_test_program(mut command: Command, server: &Server, link: &str, username: &str, dir: &Path) -> String {
    let Output { status, stdout, stderr } = command
        .env("TESSERA_TEST_DIR", dir)
        .env("TESSERA_TEST_SERVER", &server.url)
        .env("TESSERA_TEST_USER", username)
        .env("TESSERA_TEST_ENROLL", link)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    assert!(
        status.success(),
        "the test program failed ({status}):\n{stdout}\n{stderr}\nserver log:\n{}",
        server.logs()
    );
    stdout.into_owned()
}

/// kotlinc from `tools/kotlin` (scripts/setup-debian.sh installs it with npm).
fn kotlin_compiler() -> PathBuf {
    let home = workspace().join("tools/kotlin/node_modules/kotlin-compiler");
    assert!(
        home.join("bin/kotlinc").exists(),
        "kotlinc is missing from {}: run scripts/setup-debian.sh (the README's test command does)",
        home.display()
    );
    home
}

const JNA: &str = "/usr/share/java/jna.jar";

#[test]
fn kotlin_bindings_and_the_android_view_model_run_on_the_jvm_against_the_library_and_a_real_server() {
    let kotlin = kotlin_compiler();
    assert!(
        Path::new(JNA).exists(),
        "{JNA} is missing: install Debian's libjna-java (scripts/setup-debian.sh)"
    );
    let work = tempfile::tempdir().unwrap();
    let bindings = work.path().join("bindings");
    generate(&bindings);
    let generated =
        bindings.join(configured("kotlin", "package_name").replace('.', "/")).join("tessera_ffi.kt");
    let jar = work.path().join("test.jar");
    let coroutines = kotlin.join("lib/kotlinx-coroutines-core-jvm.jar");
    let compiled = Command::new(kotlin.join("bin/kotlinc"))
        .arg(&generated)
        .arg(workspace().join("ffi/tests/kotlin/BindingsTest.kt"))
        .arg(workspace().join("ffi/tests/kotlin/ModelCheck.kt"))
        .arg(workspace().join("android/app/src/main/java/dev/tessera/app/model"))
        .arg("-cp")
        .arg(format!("{JNA}:{}", coroutines.display()))
        .arg("-d")
        .arg(&jar)
        .output()
        .unwrap();
    assert!(compiled.status.success(), "kotlinc: {}", String::from_utf8_lossy(&compiled.stderr));

    let (server, link) = server_with_push_enrollment("kim");
    let library_dir = binary("libtessera_ffi.so").parent().unwrap().to_path_buf();
    let classpath = format!(
        "{}:{}:{}:{JNA}",
        jar.display(),
        kotlin.join("lib/kotlin-stdlib.jar").display(),
        coroutines.display()
    );
    let java = |phase: &str| {
        let mut command = Command::new("java");
        command
            .arg(format!("-Djna.library.path={}", library_dir.display()))
            .args(["-cp", &classpath, "BindingsTestKt"])
            .env("TESSERA_TEST_PHASE", phase);
        command
    };
    // The whole surface; then a second process, as after an app restart, on the vault the first
    // enrolled; then the Android view-model with another user.
    let printed = run_test_program(java("all"), &server, &link, "kim", work.path());
    assert!(printed.contains("kotlin: ") && printed.contains("checks passed"), "{printed}");
    println!("{printed}");
    let printed = run_test_program(java("restarted"), &server, &link, "kim", work.path());
    assert!(printed.contains("kotlin (restarted): "), "{printed}");
    println!("{printed}");
    let model_link = server.user_with_token("mia", json!({ "kind": "push" }))["enrollment_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let printed = run_test_program(java("model"), &server, &model_link, "mia", work.path());
    assert!(printed.contains("kotlin (view-model): "), "{printed}");
    println!("{printed}");
}

#[test]
fn python_bindings_run_against_the_library_and_a_real_server() {
    let work = tempfile::tempdir().unwrap();
    let bindings = work.path().join("bindings");
    generate(&bindings);
    std::fs::copy(binary("libtessera_ffi.so"), bindings.join("libtessera_ffi.so")).unwrap();
    let (server, link) = server_with_push_enrollment("lee");
    let mut python = Command::new("python3");
    python.arg(workspace().join("ffi/tests/python/test_bindings.py")).env("PYTHONPATH", &bindings);
    let printed = run_test_program(python, &server, &link, "lee", work.path());
    assert!(printed.contains("checks passed"), "{printed}");
    println!("{printed}");
}
