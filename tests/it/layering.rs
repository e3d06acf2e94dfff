//! The dependency rules of ARCHITECTURE.md, checked on the real dependency graph: the core never
//! depends on UI, network, async runtime, FFI or OS key store crates; the edges bring those. And
//! the map itself stays true: every path ARCHITECTURE.md names exists, and the server's modules use
//! only the modules below them.

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

/// The paths a document names: `code spans` that look like a file or folder of this repository
/// (a slash or a file extension, no spaces, no Rust paths or calls), and relative link targets.
fn named_paths(text: &str) -> Vec<String> {
    let spans = text.split('`').skip(1).step_by(2);
    let links = text.split("](").skip(1).filter_map(|rest| rest.split(')').next());
    let looks_like_a_path = |candidate: &str| {
        let extension = [".rs", ".ts", ".json", ".md", ".toml", ".kt", ".swift", ".py", ".sql", ".sh"]
            .iter()
            .any(|e| candidate.ends_with(e));
        (candidate.contains('/') || extension)
            && !candidate.is_empty()
            && !candidate.starts_with('/')
            && !candidate.contains([' ', '(', '"', ':', '<', '…', '*'])
    };
    spans
        .chain(links)
        .map(|candidate| candidate.split('#').next().unwrap_or_default())
        .filter(|candidate| looks_like_a_path(candidate))
        .map(str::to_owned)
        .collect()
}

#[test]
fn architecture_names_only_paths_that_exist() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let paths = named_paths(&text);
    assert!(paths.len() > 40, "the paths were read: {paths:?}");
    let missing: Vec<&String> = paths.iter().filter(|path| !root.join(path).exists()).collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md names paths that do not exist: {missing:?}");
    assert!(text.contains("tests/it/layering.rs"), "ARCHITECTURE.md says which test keeps it true");
}

#[test]
fn named_paths_reads_code_spans_and_links_and_ignores_the_rest() {
    let text = "see `core/src/otp.rs`, `tessera_core::verifier::verify`, `POST /api/v1/validate`, \
                `tak_`, `ui/src/api.ts` and [docs](docs/server.md#api) or [the web](https://example.com)";
    assert_eq!(named_paths(text), ["core/src/otp.rs", "ui/src/api.ts", "docs/server.md"]);
}

/// The modules each server module may use (ARCHITECTURE.md draws the same order): the HTTP edge
/// above the service, the service above push, both above the store and its neighbours, and the
/// clock and configuration at the bottom. Anything not listed, a cycle above all, fails.
const SERVER_MODULE_ORDER: &[(&str, &[&str])] = &[
    (
        "api",
        &[
            "service",
            "push",
            "delivery",
            "error",
            "input",
            "store",
            "keys",
            "ratelimit",
            "metrics",
            "wake",
            "clock",
            "config",
        ],
    ),
    ("radius", &["service", "config"]),
    (
        "service",
        &[
            "push",
            "delivery",
            "voice",
            "directory",
            "error",
            "input",
            "store",
            "keys",
            "ratelimit",
            "metrics",
            "wake",
            "clock",
            "config",
        ],
    ),
    (
        "delivery",
        &["voice", "error", "input", "store", "keys", "ratelimit", "metrics", "wake", "clock", "config"],
    ),
    ("push", &["error", "input", "store", "keys", "ratelimit", "metrics", "wake", "clock", "config"]),
    ("directory", &["wake", "clock", "config"]),
    ("input", &["error"]),
    ("error", &["store", "keys"]),
    ("keys", &["clock", "config"]),
    ("store", &["keys", "clock", "config"]),
    ("ratelimit", &["clock", "config"]),
    ("metrics", &["config"]),
    ("wake", &["clock", "config"]),
    ("voice", &["config"]),
    ("clock", &[]),
    ("config", &[]),
];

/// The server modules a file refers to as `crate::<module>` outside comments and tests (a test may
/// build a whole service).
fn crate_modules_used(source: &str) -> Vec<String> {
    source
        .lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .filter(|line| !line.trim_start().starts_with("//"))
        .flat_map(|line| line.split("crate::").skip(1))
        .filter_map(|rest| {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

#[test]
fn server_modules_use_only_the_modules_below_them() {
    let source = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../server/src"));
    let mut checked = 0;
    let mut broken = Vec::new();
    for entry in walk(source) {
        let relative = entry.strip_prefix(source).unwrap();
        let module = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let module = module.trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let allowed = SERVER_MODULE_ORDER
            .iter()
            .find(|(name, _)| *name == module)
            .map(|(_, allowed)| *allowed)
            .unwrap_or_else(|| panic!("server/src/{module} is not in SERVER_MODULE_ORDER"));
        for used in crate_modules_used(&std::fs::read_to_string(&entry).unwrap()) {
            if used != module && !allowed.contains(&used.as_str()) {
                broken.push(format!("server/src/{} uses crate::{used}", relative.display()));
            }
        }
        checked += 1;
    }
    assert!(checked > 30, "the server's files were read ({checked})");
    assert!(broken.is_empty(), "modules that reach up or sideways: {broken:#?}");
}

#[test]
fn crate_paths_are_read_from_code_and_not_from_comments() {
    let text = "use crate::store::{A, B};\n//! see [`crate::api::x`]\nlet x = crate::clock::unix_now();\n\
                #[cfg(test)]\nmod tests { use crate::service::testing; }";
    assert_eq!(crate_modules_used(text), ["store", "clock"]);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The names in `text` between `open` and `close`, each after `prefix` and up to `suffix` (dashes
/// read as underscores), sorted.
fn names_between(text: &str, open: &str, close: &str, prefix: &str, suffix: char) -> Vec<String> {
    let start = text.find(open).unwrap_or_else(|| panic!("{open:?} not found")) + open.len();
    let end = start + text[start..].find(close).unwrap_or_else(|| panic!("{close:?} not found"));
    let mut names: Vec<String> = text[start..end]
        .split(prefix)
        .skip(1)
        .filter_map(|rest| rest.split(suffix).next())
        .map(|name| name.replace('-', "_"))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    names.sort();
    names
}

#[test]
fn the_desktop_commands_are_the_same_in_all_four_lists() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    let declared = names_between(&read("src-tauri/build.rs"), "const COMMANDS", "];", "\"", '"');
    let allowed =
        names_between(&read("src-tauri/capabilities/default.json"), "\"permissions\"", "]", "\"allow-", '"');
    let handled = names_between(&read("src-tauri/src/lib.rs"), "generate_handler![", "]", "commands::", ',');
    let api = read("ui/src/api.ts");
    let mut invoked: Vec<String> = api
        .split("invoke<")
        .skip(1)
        .filter_map(|call| call.split_once("(\"").and_then(|(_, rest)| rest.split('"').next()))
        .map(str::to_owned)
        .collect();
    invoked.sort();
    invoked.dedup();
    assert!(declared.len() >= 20, "the commands were read: {declared:?}");
    assert_eq!(allowed, declared, "capabilities/default.json allows what build.rs declares");
    assert_eq!(handled, declared, "lib.rs handles what build.rs declares");
    assert_eq!(invoked, declared, "ui/src/api.ts invokes what build.rs declares");
}
