//! What Tessera's benchmark programs share: a real `tessera-server` started in a throwaway
//! directory (SQLite there, or a PostgreSQL URL), its admin API, and latency summaries.
//!
//! The programs measure the server as users meet it: a separate process on loopback, spoken to
//! over HTTP, every answer checked. [`frames`] draws the webcam-like frames the QR decoder
//! benchmark and the scanning tests use.

#![allow(clippy::print_stderr)]

pub mod frames;

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// The admin key the spawned servers are started with.
pub const ADMIN_KEY: &str = "tsk_bench_admin_key_0123456789abcdef";

/// A `tessera-server` process, stopped with SIGTERM (a graceful shutdown) when dropped.
pub struct Server {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub base: String,
    pid: u32,
    process: Child,
    dir: PathBuf,
}

/// How to start the server under test (rate limits are always off: one address sends everything).
pub struct ServerOptions<'a> {
    /// PostgreSQL URL; SQLite in the throwaway directory when `None`.
    pub database_url: Option<&'a str>,
    /// The server binary; `tessera-server` next to the running program when `None`.
    pub binary: Option<PathBuf>,
    /// More configuration (TOML), appended to the benchmark's own.
    pub config: &'a str,
}

impl Server {
    /// Starts the server and waits until `/healthz` answers.
    pub async fn start(options: ServerOptions<'_>, http: &reqwest::Client) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let config = dir.join("bench.toml");
        let text =
            format!("{}\n[rate_limit]\nper_ip_per_minute = 0\nper_user_per_minute = 0\n", options.config);
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let binary = match options.binary {
            Some(path) => path,
            None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("tessera-server"),
        };
        let mut command = Command::new(&binary);
        command
            .args(["--listen", &format!("127.0.0.1:{port}"), "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("TESSERA_ADMIN_TOKEN", ADMIN_KEY)
            .env("RUST_LOG", "warn,tower_http=off")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(url) = options.database_url {
            command.args(["--database-url", url]);
        }
        let process = command.spawn().map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let mut server = Self { base: format!("http://127.0.0.1:{port}"), pid: process.id(), process, dir };
        server.wait_healthy(http).await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self, http: &reqwest::Client) -> Result<(), String> {
        for _ in 0..600 {
            if let Ok(response) = http.get(format!("{}/healthz", self.base)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.process.try_wait() {
                return Err(format!("the server exited ({status})"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("the server did not become healthy".into())
    }

    /// An admin API call with a JSON body (or none); the JSON answer of a 2xx response.
    pub async fn admin(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let mut request = http.request(method, format!("{}{path}", self.base)).bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = response.status();
        let answer = response.json::<Value>().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{path}: {status}: {answer}"));
        }
        Ok(answer)
    }

    /// The server's resident memory in KiB (Linux `/proc`).
    pub fn resident_kib(&self) -> Result<u64, String> {
        resident_kib(self.pid)
    }

    /// Keeps the server's directory for a post-mortem instead of deleting it.
    pub fn keep_files(&mut self) -> PathBuf {
        std::mem::take(&mut self.dir)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let _ = self.process.wait();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A loopback port nothing listens on now.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A process's resident memory in KiB (Linux `/proc/PID/status`).
pub fn resident_kib(pid: u32) -> Result<u64, String> {
    kib_field(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// A process's proportional set size in KiB (Linux `/proc/PID/smaps_rollup`): its pages, with
/// pages shared with other processes divided among them.
pub fn proportional_kib(pid: u32) -> Result<u64, String> {
    kib_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

/// A process's anonymous memory in KiB (`Anonymous:` in `/proc/PID/smaps_rollup`): the heap and
/// other memory it made itself, as opposed to pages of the files it maps (shared libraries).
pub fn anonymous_kib(pid: u32) -> Result<u64, String> {
    kib_field(&format!("/proc/{pid}/smaps_rollup"), "Anonymous:")
}

/// The `NAME: VALUE kB` line `field` of a `/proc` file, in KiB.
fn kib_field(path: &str, field: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} line in {path}"))
}

/// Runs a benchmark program's body on a two-thread runtime (the machine's two cores) and turns
/// its outcome into the exit status, printing the error.
pub fn main(program: &str, body: impl Future<Output = Result<(), String>>) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(body));
    exit(program, outcome)
}

/// The exit status of a program's outcome, reporting an error on standard error.
pub fn exit(program: &str, outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{program}: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A client for loopback benchmarks, with the ring TLS provider installed.
pub fn http_client(idle_connections: usize) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().pool_max_idle_per_host(idle_connections).build().map_err(|e| e.to_string())
}

/// A latency histogram in microseconds, 3 significant digits.
pub fn histogram() -> Result<Histogram<u64>, String> {
    Histogram::new(3).map_err(|e| e.to_string())
}

/// Records a duration in a microsecond histogram.
pub fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let _ = histogram.record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
}

/// `p50 A ms, p90 B ms, p99 C ms, max D ms` of a microsecond histogram.
pub fn percentiles(histogram: &Histogram<u64>) -> String {
    let ms = |micros: u64| micros as f64 / 1000.0;
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(histogram.value_at_quantile(0.50)),
        ms(histogram.value_at_quantile(0.90)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max())
    )
}

/// A user with one HOTP token, as the load generators drive them: a right code and a wrong one
/// in turn, so every request writes (an accepted code advances the counter, a wrong one counts a
/// failure).
pub struct HotpUser {
    /// The user's name.
    pub name: String,
    seed: tessera_core::secret::SecretBytes,
    digits: tessera_core::otp::Digits,
    algorithm: tessera_core::otp::Algorithm,
    counter: u64,
    next_is_valid: bool,
}

impl HotpUser {
    /// Creates `name` (without a password) with an HOTP token through the admin API.
    pub async fn enroll(http: &reqwest::Client, server: &Server, name: &str) -> Result<Self, String> {
        let post = reqwest::Method::POST;
        server.admin(http, post.clone(), "/api/v1/users", Some(&json!({ "username": name }))).await?;
        let enrollment = server
            .admin(http, post, &format!("/api/v1/users/{name}/tokens"), Some(&json!({ "kind": "hotp" })))
            .await?;
        let uri = enrollment
            .get("otpauth_uri")
            .and_then(Value::as_str)
            .ok_or("no otpauth_uri in the enrollment")?;
        let otp = tessera_core::otpauth::OtpAuth::parse(uri).map_err(|e| e.to_string())?.otp;
        let tessera_core::otp::OtpMethod::Hotp { algorithm, digits, counter } = *otp.method() else {
            return Err("expected an HOTP token".into());
        };
        Ok(Self {
            name: name.to_owned(),
            seed: otp.secret().clone(),
            digits,
            algorithm,
            counter,
            next_is_valid: true,
        })
    }

    /// The next code to send, and whether it is the right one.
    pub fn next_code(&mut self) -> (bool, String) {
        let valid = self.next_is_valid;
        self.next_is_valid = !valid;
        if valid {
            let code = tessera_core::otp::hotp(&self.seed, self.algorithm, self.digits, self.counter);
            self.counter += 1;
            (true, code.expose().to_owned())
        } else {
            (false, self.wrong_code())
        }
    }

    /// A code that matches none of the counters the server looks at (the next one and its
    /// look-ahead).
    fn wrong_code(&self) -> String {
        let window: Vec<String> = (self.counter..self.counter + 16)
            .map(|c| tessera_core::otp::hotp(&self.seed, self.algorithm, self.digits, c).expose().to_owned())
            .collect();
        (0u64..)
            .map(|n| format!("{n:0width$}", width = usize::from(self.digits.get())))
            .find(|candidate| !window.contains(candidate))
            .unwrap_or_default()
    }
}

/// The load the validation benchmarks put on the server: how many clients, users and seconds,
/// and which binary.
#[derive(Debug, clap::Args)]
pub struct Load {
    /// Concurrent clients (connections, sockets)
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Users (each with one HOTP token)
    #[arg(long, default_value_t = 512)]
    pub users: usize,
    /// Measured seconds per path (after a 2-second warm-up)
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// tessera-server binary [default: next to this program]
    #[arg(long)]
    pub server: Option<PathBuf>,
}

/// What the answers were.
#[derive(Default)]
pub struct Tally {
    /// Right codes accepted.
    pub accepted: AtomicU64,
    /// Wrong codes rejected.
    pub rejected: AtomicU64,
    /// Answers that were not what the code called for.
    pub wrong_answers: AtomicU64,
    /// Requests that got no answer (HTTP errors, RADIUS timeouts).
    pub http_errors: AtomicU64,
}

/// What a server answered a passcode.
#[derive(Debug)]
pub enum Verdict {
    /// Accepted.
    Accepted,
    /// Rejected.
    Rejected,
    /// Something else (described).
    Other(String),
    /// No answer, or none that could be read.
    Unanswered,
}

/// One client's way of asking the server under test about a passcode (over HTTP, RADIUS…).
pub trait Asker {
    /// Asks about `passcode` for `username`; an error stops the client.
    fn ask(&mut self, username: &str, passcode: &str)
    -> impl Future<Output = Result<Verdict, String>> + Send;
}

/// Asks about `users`' codes one after another until `end`, checking every verdict against
/// whether the code was right; latencies from `measure_from` on.
pub async fn drive(
    asker: &mut impl Asker,
    users: &mut [HotpUser],
    tally: Arc<Tally>,
    measure_from: Instant,
    end: Instant,
) -> Result<Histogram<u64>, String> {
    let mut histogram = histogram()?;
    let mut index = 0;
    while Instant::now() < end && !users.is_empty() {
        let count = users.len();
        let Some(user) = users.get_mut(index % count) else { break };
        index += 1;
        let (valid, passcode) = user.next_code();
        let sent = Instant::now();
        let verdict = asker.ask(&user.name, &passcode).await?;
        let elapsed = sent.elapsed();
        match verdict {
            Verdict::Accepted if valid => tally.accepted.fetch_add(1, Ordering::Relaxed),
            Verdict::Rejected if !valid => tally.rejected.fetch_add(1, Ordering::Relaxed),
            Verdict::Unanswered => tally.http_errors.fetch_add(1, Ordering::Relaxed),
            other => {
                if tally.wrong_answers.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!(
                        "wrong answer for {} ({} code): {other:?}",
                        user.name,
                        if valid { "right" } else { "wrong" }
                    );
                }
                1
            }
        };
        if sent >= measure_from {
            record(&mut histogram, elapsed);
        }
    }
    Ok(histogram)
}

/// Asks `/api/v1/validate` at `url` (with an application `key`, when given).
pub struct HttpAsker {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The validation URL.
    pub url: String,
    /// An application key.
    pub key: Option<String>,
}

impl Asker for HttpAsker {
    async fn ask(&mut self, username: &str, passcode: &str) -> Result<Verdict, String> {
        let mut request =
            self.http.post(&self.url).json(&json!({ "username": username, "passcode": passcode }));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let body = match request.send().await {
            Ok(response) if response.status().is_success() => response.json::<Value>().await.ok(),
            _ => None,
        };
        Ok(match body.as_ref().and_then(|b| b.get("result")).and_then(Value::as_str) {
            Some("accept") => Verdict::Accepted,
            Some("reject") => Verdict::Rejected,
            Some(_) => Verdict::Other(body.unwrap_or_default().to_string()),
            None => Verdict::Unanswered,
        })
    }
}
