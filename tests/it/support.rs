//! Running the built binaries in throwaway directories.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

/// The directory holding the workspace's built binaries (next to this test's `deps/`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// `test-output/` in the target directory: screenshots and other files to look at after a run.
pub fn test_output_dir() -> PathBuf {
    let dir = bin_dir().parent().unwrap().join("test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A built binary of the workspace, checked to exist and to be newer than the sources it is
/// built from, so a stale binary can never make these tests pass.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap_or_else(|_| {
        panic!("{} is missing: run `cargo build --workspace --bins` (and `-p tessera-ffi --lib` for the library) first", path.display())
    });
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    const BENCH_PROGRAMS: [&str; 10] = [
        "tessera-loadgen",
        "tessera-radiusbench",
        "tessera-pushbench",
        "tessera-framegen",
        "tessera-scanbench",
        "tessera-smsbench",
        "tessera-dirbench",
        "tessera-portalbench",
        "tessera-desktopbench",
        "tessera-voicebench",
    ];
    let crates: &[&str] = match name {
        "tessera" => &["core", "platform", "camera", "client", "cli"],
        "tessera-server" => &["core", "server"],
        "libtessera_ffi.so" => &["core", "client", "ffi"],
        "uniffi-bindgen" => &["uniffi-bindgen"],
        "tessera-desktop" => &["core", "platform", "client", "src-tauri", "ui"],
        bench if BENCH_PROGRAMS.contains(&bench) => &["core", "camera", "client"],
        other => panic!("no sources known for {other}"),
    };
    let mut sources: Vec<PathBuf> = crates.iter().map(|dir| workspace.join(dir).join("src")).collect();
    if name == "tessera-radiusbench" {
        sources.push(workspace.join("server/src"));
    }
    if let Some(program) = name.strip_prefix("tessera-").filter(|_| BENCH_PROGRAMS.contains(&name)) {
        // A bench program is built from the bench library and its own file only (a new program
        // beside it does not make it stale).
        let bench = workspace.join("bench/src");
        sources.extend([
            bench.join("lib.rs"),
            bench.join("frames.rs"),
            bench.join(format!("bin/{program}.rs")),
        ]);
    }
    for source in &sources {
        let newest = if source.is_dir() {
            newest_file(source)
        } else {
            std::fs::metadata(source).and_then(|m| m.modified()).ok()
        };
        if let Some(newest) = newest {
            assert!(
                newest <= built,
                "{} is older than its sources in {}: run `cargo build --workspace --bins` first",
                path.display(),
                source.strip_prefix(workspace).unwrap_or(source).display()
            );
        }
    }
    path
}

fn newest_file(dir: &Path) -> Option<SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            if path.is_dir() { newest_file(&path) } else { entry.metadata().ok()?.modified().ok() }
        })
        .max()
}

/// Fails (never skips) when there is no D-Bus session for the Secret Service.
pub fn require_secret_service() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "these tests use the real Secret Service: run them inside `dbus-run-session` with an unlocked \
         gnome-keyring, as the README's test command (scripts/test.sh) does"
    );
}

/// A private directory with a vault path, and a `tessera` runner pointed at it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub vault: PathBuf,
}

/// A finished `tessera` run.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success and returns standard output.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.status, 0, "tessera failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self.stdout
    }

    /// Asserts failure with a one-line reason on stderr containing `reason`.
    #[track_caller]
    pub fn fails_with(self, reason: &str) {
        assert_ne!(self.status, 0, "tessera succeeded but should have failed: {}", self.stdout);
        let first = self
            .stderr
            .lines()
            .find(|l| l.starts_with("tessera: error: "))
            .unwrap_or_else(|| panic!("no 'tessera: error:' line in stderr: {}", self.stderr));
        assert!(first.contains(reason), "expected {reason:?} in {first:?}");
    }
}

impl Run {
    /// Asserts a command-line usage error (exit status 2) mentioning `reason`.
    #[track_caller]
    pub fn usage_error(self, reason: &str) {
        assert_eq!(self.status, 2, "expected a usage error: {}", self.stderr);
        assert!(self.stderr.contains(reason), "expected {reason:?} in {}", self.stderr);
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault.tessera");
        Self { dir, vault }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("tessera"));
        command
            .args(args)
            .env("TESSERA_VAULT", &self.vault)
            .env("TESSERA_KEYRING_SERVICE", "dev.tessera.test")
            .env_remove("TESSERA_PASSPHRASE")
            .env_remove("TESSERA_NEW_PASSPHRASE")
            .env_remove("TESSERA_PIN")
            .env_remove("TESSERA_NEW_PIN")
            .stdin(Stdio::null());
        command
    }

    /// Runs `tessera ARGS` with no passphrase in the environment.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }

    /// Runs `tessera ARGS` with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        Run::from(command.output().unwrap())
    }

    /// Runs `tessera ARGS` with `input` on standard input.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        Run::from(output_with_input(&mut self.command(args), input))
    }

    /// A vault unlocked by the OS key store.
    pub fn with_keystore_vault() -> Self {
        require_secret_service();
        let sandbox = Self::new();
        sandbox.run(&["init"]).ok();
        sandbox
    }

    /// `tessera list --json`, parsed.
    pub fn list_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.run(&["list", "--json"]).ok()).unwrap()
    }

    pub fn vault_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.vault).unwrap()
    }
}

/// The code Debian's oathtool computes (the reference implementation).
pub fn oathtool(args: &[&str]) -> String {
    let output = Command::new("oathtool")
        .args(args)
        .output()
        .expect("oathtool is installed by the README's test command");
    assert!(output.status.success(), "oathtool {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// Longest a WebDriver step (opening the session, or one `run`) may take.
const SESSION_STEP_LIMIT: Duration = Duration::from_secs(90);

/// A WebDriver session and the driver process behind it (ChromeDriver, tauri-driver); the session
/// is closed and the driver stopped on drop.
pub struct WebDriverSession {
    client: Option<fantoccini::Client>,
    driver: std::process::Child,
    runtime: tokio::runtime::Runtime,
}

impl WebDriverSession {
    /// Starts `driver`, which must listen on local `port`, and opens a session with `capabilities`.
    pub fn start(mut driver: Command, port: u16, capabilities: serde_json::Value) -> Self {
        let program = driver.get_program().to_string_lossy().into_owned();
        let driver = driver
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} (installed by scripts/setup-debian.sh): {e}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "{program} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut builder = fantoccini::ClientBuilder::rustls().unwrap();
        builder.capabilities(capabilities.as_object().unwrap().clone());
        let url = format!("http://127.0.0.1:{port}");
        let mut session = Self { client: None, driver, runtime };
        let client = session
            .runtime
            .block_on(async { tokio::time::timeout(SESSION_STEP_LIMIT, builder.connect(&url)).await })
            .unwrap_or_else(|_| panic!("{program} opened no session within {SESSION_STEP_LIMIT:?}"))
            .unwrap();
        session.client = Some(client);
        session
    }

    /// Runs `task` with the session; a task still running after [`SESSION_STEP_LIMIT`] fails the
    /// test (a hung browser or app must not hang the suite).
    pub fn run<T>(&self, task: impl AsyncFnOnce(&fantoccini::Client) -> T) -> T {
        let client = self.client.as_ref().unwrap();
        self.runtime
            .block_on(async { tokio::time::timeout(SESSION_STEP_LIMIT, task(client)).await })
            .unwrap_or_else(|_| panic!("a WebDriver step took over {SESSION_STEP_LIMIT:?}"))
    }

    /// Saves what the page shows as `target/test-output/NAME`.
    pub fn screenshot(&self, name: &str) {
        let png = self.run(async |page| page.screenshot().await.unwrap());
        std::fs::write(test_output_dir().join(name), png).unwrap();
    }
}

impl Drop for WebDriverSession {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), client.close()).await });
        }
        kill_process_group(&mut self.driver);
    }
}

/// The lines a child process writes to `stream`, on a channel as they come (read by a thread, so a
/// test can wait for a line with a timeout).
pub fn lines_of(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Kills `leader` and every process in its group (a driver's browser or app, and their helpers),
/// which killing the leader alone would leave running.
pub fn kill_process_group(leader: &mut std::process::Child) {
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", leader.id())]).status();
    let _ = leader.wait();
}

/// A test CA and a certificate for 127.0.0.1 that it signed, all PEM: what a loopback TLS stand-in
/// serves, and what the server under test is told to trust.
pub struct LoopbackCertificate {
    /// The CA's certificate.
    pub ca: String,
    /// The server's certificate.
    pub certificate: String,
    /// The server's private key.
    pub key: String,
}

impl LoopbackCertificate {
    /// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir`.
    pub fn write_to(&self, dir: &Path) {
        for (name, pem) in [("ca.pem", &self.ca), ("cert.pem", &self.certificate), ("key.pem", &self.key)] {
            std::fs::write(dir.join(name), pem).unwrap();
        }
    }
}

/// A fresh [`LoopbackCertificate`].
pub fn loopback_certificate() -> LoopbackCertificate {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    LoopbackCertificate { ca: ca.pem(), certificate: certificate.pem(), key: key.serialize_pem() }
}

/// Runs `command` with `input` on its standard input, capturing its output.
pub fn output_with_input(command: &mut Command, input: &str) -> Output {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `command` to its end and captures its output, killing it (with its process group) and
/// failing the test with what it printed so far when it runs longer than `limit`: a hung program
/// fails its test instead of holding the whole suite.
pub fn output_within(command: &mut Command, limit: Duration) -> Output {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let read_all = |stream: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read_all(child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
    let stderr = read_all(child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            kill_process_group(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "{program} was still running after {limit:?} and was killed; it printed:\n{}\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    };
    Output { status, stdout, stderr }
}

/// A shell that kills `pids` once this test process is gone. Rust's test harness runs each test
/// on its own thread, so a suite-wide server is not tied to the thread that started it.
pub fn watchdog(pids: &[u32]) -> std::process::Child {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    Command::new("sh")
        .args([
            "-c",
            &format!(
                "while kill -0 {} 2>/dev/null; do sleep 1; done; kill {} 2>/dev/null",
                std::process::id(),
                pids.join(" ")
            ),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
