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
    let server = Server::start(Db::Sqlite, "[push]\nnumber_matching = \"pick\"\n[portal]\nenabled = true\n");
    let enrollment = server.user_with_token(username, json!({ "kind": "push" }));
    let link = enrollment["enrollment_uri"].as_str().unwrap().to_owned();
    let newcomer = json!({ "username": NEWCOMER, "password": NEWCOMER_PASSWORD });
    assert_eq!(server.admin("POST", "/api/v1/users", Some(newcomer)).0, 201);
    (server, link)
}

/// A user with a password and no token, who signs in from the app with a registration code.
const NEWCOMER: &str = "ida";
const NEWCOMER_PASSWORD: &str = "2580";

fn run_test_program(mut command: Command, server: &Server, link: &str, username: &str, dir: &Path) -> String {
    let (_, issued) =
        server.admin("POST", &format!("/api/v1/users/{NEWCOMER}/registration-code"), Some(json!({})));
    let Output { status, stdout, stderr } = command
        .env("TESSERA_TEST_NEWCOMER", NEWCOMER)
        .env("TESSERA_TEST_NEWCOMER_PASSWORD", NEWCOMER_PASSWORD)
        .env("TESSERA_TEST_REGISTRATION_CODE", issued["code"].as_str().unwrap())
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

/// The calls `text` makes on `receiver` (`receiver.name(label: …)`): each method's name and its
/// first argument label, if any (a Swift call's label, or none).
fn calls_on(text: &str, receiver: &str) -> Vec<(String, Option<String>)> {
    let ident =
        |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let pattern = format!("{receiver}.");
    let mut found = Vec::new();
    for (at, _) in text.match_indices(&pattern) {
        if text[..at].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + pattern.len()..];
        let name = ident(rest);
        let Some(arguments) = rest[name.len()..].strip_prefix('(') else { continue };
        let label = ident(arguments);
        let labelled = !label.is_empty() && arguments[label.len()..].starts_with(':');
        found.push((name, labelled.then_some(label)));
    }
    found.sort();
    found.dedup();
    found
}

fn read_all(dir: &Path, extension: &str) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == extension) {
            text.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    text
}

/// The shells cannot be compiled here (no Xcode, no Android SDK), so their calls are checked
/// against what the generated bindings and the JVM-tested view-model declare: a renamed export
/// or model action fails here rather than on a developer's Mac or in Android Studio.
#[test]
fn the_ios_and_android_screens_call_only_what_the_bindings_and_the_model_declare() {
    let out = tempfile::tempdir().unwrap();
    generate(out.path());
    let swift =
        std::fs::read_to_string(out.path().join(format!("{}.swift", configured("swift", "module_name"))))
            .unwrap();
    let ios = read_all(&workspace().join("ios/Tessera"), "swift");
    let calls = calls_on(&ios, "vault");
    assert!(calls.len() >= 12, "the iOS model's calls were found: {calls:?}");
    for (name, label) in calls {
        let declared = match &label {
            Some(label) => format!("func {name}({label}:"),
            None => format!("func {name}()"),
        };
        assert!(
            swift.contains(&declared),
            "ios/ calls vault.{name}({label:?}), which the Swift bindings lack"
        );
    }
    for function in ["decodeQrLuma(width:", "parseScanned(text:", "qrPng(text:"] {
        assert!(ios.contains(function) && swift.contains(&format!("func {function}")), "{function}");
    }
    for case in
        ["live(", "onRequest", "pinRequired", "pick", "type", "off", "approve", "deny", "notMe", "other"]
    {
        assert!(swift.contains(&format!("case {case}")), "the Swift bindings have `case {case}`");
    }

    let model = std::fs::read_to_string(
        workspace().join("android/app/src/main/java/dev/tessera/app/model/TesseraModel.kt"),
    )
    .unwrap();
    let android = read_all(&workspace().join("android/app/src/main/java/dev/tessera/app/ui"), "kt")
        + &read_all(&workspace().join("android/app/src/main/java/dev/tessera/app"), "kt");
    let calls = calls_on(&android, "model");
    assert!(calls.len() >= 10, "the Android screens' calls were found: {calls:?}");
    for (name, _) in calls {
        assert!(
            model.contains(&format!("fun {name}(")) || model.contains(&format!("val {name}:")),
            "android/ calls model.{name}, which TesseraModel lacks"
        );
    }
}
