//! `tessera-desktopbench`: how soon the desktop app shows its first code, and how much memory it
//! holds while idle, measured on the release binary on a virtual X display (Xvfb).
//!
//! The vault is made by the `tessera` CLI (`--tokens` TOTP tokens, unlocked by the OS key store, so
//! the app opens it without typing; run inside `scripts/with-keyring.sh`). `tauri-driver` starts the
//! app for each WebDriver session; the clock runs from the new-session request, which launches the
//! process, until the page shows a code, polled every 10 ms. That includes WebKitWebDriver's own work,
//! so it is an upper bound of what a user sees. After the last run the app idles `--idle` seconds and
//! the memory of its process and of every process it started (WebKit's web and network processes) is
//! read from `/proc`: resident (RSS, counting shared libraries once per process) and proportional
//! (PSS, sharing them out). The sizes of the release binary and of the `.deb` are printed when they
//! have been built (`scripts/build-deb.sh`).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

/// Times the desktop app's start and reads its idle memory.
#[derive(Parser)]
struct Args {
    /// App starts to time.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Tokens in the vault.
    #[arg(long, default_value_t = 20)]
    tokens: usize,
    /// Seconds the app idles before its memory is read.
    #[arg(long, default_value_t = 10)]
    idle: u64,
}

/// A child process killed on drop, with every process in its group (tauri-driver's
/// WebKitWebDriver would outlive it otherwise).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.wait();
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tessera_bench::exit("tessera-desktopbench", run(&args))
}

fn run(args: &Args) -> Result<(), String> {
    let bin_dir = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let app = bin_dir.join("tessera-desktop");
    if !app.is_file() {
        return Err(format!("{} is missing: cargo build --release -p tessera-desktop", app.display()));
    }
    let work = tempdir()?;
    let vault = work.join("vault.tessera");
    make_vault(&bin_dir.join("tessera"), &vault, args.tokens)?;

    let (xvfb, display) = start_xvfb()?;
    let mut driver = start_driver(&display, &vault)?;

    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut starts = Vec::new();
    let mut hung = 0;
    while starts.len() < args.runs {
        let last = starts.len() + 1 == args.runs;
        match runtime.block_on(start_once(driver.port, &app, last.then_some(args.idle))) {
            Ok((elapsed, memory)) => {
                starts.push(elapsed);
                if let Some(memory) = memory {
                    print_memory(&memory, args.idle);
                }
            }
            Err(Stuck(step)) if hung < MAX_HUNG_STARTS => {
                hung += 1;
                eprintln!("tessera-desktopbench: {step}; starting WebDriver again");
                drop(driver);
                driver = start_driver(&display, &vault)?;
            }
            Err(Stuck(step)) => return Err(format!("{step} (after {hung} stuck starts, each retried)")),
        }
    }
    drop(driver);
    drop(xvfb);
    let _ = std::fs::remove_dir_all(&work);

    let first = starts.first().copied().unwrap_or_default();
    starts.sort();
    let median = starts.get(starts.len() / 2).copied().unwrap_or_default();
    let max = starts.last().copied().unwrap_or_default();
    println!(
        "start to first code on screen ({} tokens, {} runs, WebDriver session request to code shown): first {} ms, median {} ms, max {} ms; {hung} starts stuck and retried",
        args.tokens,
        args.runs,
        first.as_millis(),
        median.as_millis(),
        max.as_millis()
    );
    print_sizes(&bin_dir, &app);
    Ok(())
}

const KEYRING_SERVICE: &str = "dev.tessera.bench";

/// How long one WebDriver step (opening a session, reading the page, closing) may take before the
/// start counts as stuck.
const STEP_LIMIT: Duration = Duration::from_secs(60);

/// Stuck starts retried with a new `tauri-driver` before the bench gives up.
const MAX_HUNG_STARTS: usize = 2;

/// A start that did not finish: which step, and why.
struct Stuck(String);

/// `tauri-driver` on its own port, with WebKitWebDriver and the app it launches in its process
/// group.
struct Driver {
    port: u16,
    _process: Killed,
}

fn start_driver(display: &str, vault: &Path) -> Result<Driver, String> {
    let port = tessera_bench::free_port()?;
    let driver = Command::new("tauri-driver")
        .args(["--port", &port.to_string(), "--native-port", &tessera_bench::free_port()?.to_string()])
        .args(["--native-driver", "/usr/bin/WebKitWebDriver"])
        .env("DISPLAY", display)
        .env("GDK_BACKEND", "x11")
        .env("TESSERA_VAULT", vault)
        .env("TESSERA_KEYRING_SERVICE", KEYRING_SERVICE)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("tauri-driver (scripts/setup-debian.sh installs it): {e}"))?;
    let driver = Driver { port, _process: Killed(driver) };
    wait_for_port(port)?;
    Ok(driver)
}

/// Runs one WebDriver step, or says it was stuck.
async fn step<T, E: std::fmt::Display>(
    what: &str,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, Stuck> {
    match tokio::time::timeout(STEP_LIMIT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Stuck(format!("{what}: {e}"))),
        Err(_) => Err(Stuck(format!("{what}: no answer within {} s", STEP_LIMIT.as_secs()))),
    }
}

/// One app start: the time to the first code, and with `idle` the memory after idling that long.
async fn start_once(
    port: u16,
    app: &Path,
    idle: Option<u64>,
) -> Result<(Duration, Option<Vec<Process>>), Stuck> {
    let capabilities = json!({ "browserName": "wry", "tauri:options": { "application": app } });
    let started = Instant::now();
    let mut builder = fantoccini::ClientBuilder::rustls().map_err(|e| Stuck(e.to_string()))?;
    builder.capabilities(capabilities.as_object().cloned().unwrap_or_default());
    let client = step("WebDriver session", builder.connect(&format!("http://127.0.0.1:{port}"))).await?;
    let deadline = started + STEP_LIMIT;
    loop {
        let script = "return document.querySelector('#token-list .code[data-code]') !== null";
        let shown = step("reading the page", client.execute(script, vec![])).await?;
        if shown.as_bool() == Some(true) {
            break;
        }
        if Instant::now() > deadline {
            return Err(Stuck(format!("no code on screen within {} s", STEP_LIMIT.as_secs())));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let memory = match idle {
        Some(seconds) => {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            Some(app_processes(app).map_err(Stuck)?)
        }
        None => None,
    };
    step("closing the session", client.close()).await?;
    Ok((elapsed, memory))
}

/// A process of the app and what it holds.
struct Process {
    name: String,
    rss_kib: u64,
    pss_kib: u64,
    anonymous_kib: u64,
}

/// The app's process (the one running `app`) and all its descendants, from `/proc`. The name is
/// not enough: the kernel cuts names to 15 characters, so this bench is "tessera-desktop" too.
fn app_processes(app: &Path) -> Result<Vec<Process>, String> {
    let mut parents: HashMap<u32, u32> = HashMap::new();
    let mut names: HashMap<u32, String> = HashMap::new();
    for entry in std::fs::read_dir("/proc").map_err(|e| e.to_string())?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((name, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") ")) else {
            continue;
        };
        let parent = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        parents.insert(pid, parent);
        names.insert(pid, name.to_owned());
    }
    let app = app.canonicalize().map_err(|e| format!("{}: {e}", app.display()))?;
    let root = names
        .keys()
        .copied()
        .find(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == app))
        .ok_or("the app's process was not found")?;
    let in_tree = |mut pid: u32| {
        while pid > 1 {
            if pid == root {
                return true;
            }
            pid = parents.get(&pid).copied().unwrap_or(0);
        }
        false
    };
    let mut processes = Vec::new();
    for (&pid, name) in &names {
        if in_tree(pid) {
            let rss_kib = tessera_bench::resident_kib(pid)?;
            let pss_kib = tessera_bench::proportional_kib(pid)?;
            let anonymous_kib = tessera_bench::anonymous_kib(pid)?;
            processes.push(Process { name: name.clone(), rss_kib, pss_kib, anonymous_kib });
        }
    }
    processes.sort_by_key(|p| std::cmp::Reverse(p.rss_kib));
    Ok(processes)
}

fn print_memory(processes: &[Process], idle: u64) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let parts: Vec<String> = processes.iter().map(|p| format!("{} {:.1}", p.name, mib(p.rss_kib))).collect();
    let rss: u64 = processes.iter().map(|p| p.rss_kib).sum();
    let pss: u64 = processes.iter().map(|p| p.pss_kib).sum();
    let anonymous: u64 = processes.iter().map(|p| p.anonymous_kib).sum();
    println!(
        "idle memory after {idle} s: RSS {:.1} MiB ({}), PSS {:.1} MiB, anonymous (not shared-library pages) {:.1} MiB, in {} processes",
        mib(rss),
        parts.join(" + "),
        mib(pss),
        mib(anonymous),
        processes.len()
    );
}

fn print_sizes(bin_dir: &Path, app: &Path) {
    let mb = |path: &Path| std::fs::metadata(path).map(|m| m.len() as f64 / 1_000_000.0).ok();
    if let Some(size) = mb(app) {
        println!("release binary {}: {size:.1} MB", app.display());
    }
    let debs = std::fs::read_dir(bin_dir.join("bundle/deb")).into_iter().flatten().flatten();
    for deb in debs.map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "deb")) {
        if let Some(size) = mb(&deb) {
            println!("package {}: {size:.1} MB", deb.display());
        }
    }
}

fn make_vault(cli: &Path, vault: &Path, tokens: usize) -> Result<(), String> {
    let tessera = |args: &[&str]| -> Result<(), String> {
        let output = Command::new(cli)
            .args(args)
            .env("TESSERA_VAULT", vault)
            .env("TESSERA_KEYRING_SERVICE", KEYRING_SERVICE)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", cli.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("tessera {args:?}: {}", String::from_utf8_lossy(&output.stderr).trim()))
        }
    };
    tessera(&["init"])?;
    for index in 0..tokens {
        let secret = data_encoding::BASE32_NOPAD.encode(format!("bench-seed-{index:08}-padding").as_bytes());
        tessera(&["add", &format!("otpauth://totp/Service{index}:user{index}@example.com?secret={secret}")])?;
    }
    Ok(())
}

fn start_xvfb() -> Result<(Killed, String), String> {
    let mut xvfb = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("Xvfb (scripts/setup-debian.sh installs it): {e}"))?;
    let mut number = String::new();
    if let Some(stdout) = xvfb.stdout.take() {
        BufReader::new(stdout).read_line(&mut number).map_err(|e| e.to_string())?;
    }
    let display = format!(":{}", number.trim());
    Ok((Killed(xvfb), display))
}

fn wait_for_port(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("tauri-driver did not start".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn tempdir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("tessera-desktopbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}
