//! Running `tessera-server` processes on free loopback ports against SQLite or a real PostgreSQL.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::binary;

/// Runs each scenario once on SQLite and once on a fresh PostgreSQL database (the calling module
/// imports `Db`).
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $scenario() { super::$scenario(super::Db::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $scenario() { super::$scenario(super::Db::fresh_postgres()) } )*
        }
    };
}

/// The admin key every test server accepts (through `TESSERA_ADMIN_TOKEN`).
pub const ADMIN_KEY: &str = "tsk_e2e_test_admin_key_0123456789abcdef";
/// The server key shared by test servers that share a database.
pub const SERVER_KEY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// Which database a test server uses.
#[derive(Debug, Clone)]
pub enum Db {
    /// SQLite in the server's data directory.
    Sqlite,
    /// A fresh PostgreSQL database (its URL).
    Postgres(String),
}

impl Db {
    /// A new, empty PostgreSQL database on the server `TESSERA_TEST_POSTGRES_URL` points to.
    pub fn fresh_postgres() -> Self {
        let admin = std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!("TESSERA_TEST_POSTGRES_URL is not set: run the tests through scripts/test.sh, which starts PostgreSQL")
        });
        let mut random = [0u8; 6];
        getrandom_fill(&mut random);
        let name = format!("tessera_e2e_{}", data_encoding::HEXLOWER.encode(&random));
        let output = Command::new("psql")
            .args([admin.as_str(), "-q", "-c", &format!("CREATE DATABASE {name}")])
            .output()
            .unwrap();
        assert!(output.status.success(), "creating {name}: {}", String::from_utf8_lossy(&output.stderr));
        Self::Postgres(format!("{}/{name}", admin.rsplit_once('/').unwrap().0))
    }

    /// Runs SQL on the PostgreSQL database and returns the unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let Self::Postgres(url) = self else { panic!("not a PostgreSQL database") };
        let output = Command::new("psql").args([url.as_str(), "-At", "-c", sql]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }
}

fn getrandom_fill(buf: &mut [u8]) {
    let mut file = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut file, buf).unwrap();
}

/// A running server.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    pub db: Db,
    config: Option<PathBuf>,
    extra_env: Vec<(String, String)>,
    client: reqwest::blocking::Client,
    _dir: Option<tempfile::TempDir>,
}

/// `toml` with the per-client and per-user rate limits off (one test client sends everything),
/// unless it sets them itself.
fn with_rate_limits_off(toml: &str) -> String {
    if toml.contains("[rate_limit]") {
        toml.to_owned()
    } else {
        format!("{toml}\n[rate_limit]\nper_ip_per_minute = 0\nper_user_per_minute = 0\n")
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A blocking HTTP client (rustls with ring, for the TLS test).
pub fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

impl Server {
    /// A server on `db` with the test admin key, no rate limits, and extra TOML configuration.
    pub fn start(db: Db, toml: &str) -> Self {
        Self::start_with_key(db, toml, SERVER_KEY)
    }

    /// Like [`Server::start`], with extra environment variables (libfaketime's, say).
    pub fn start_with_env(db: Db, toml: &str, env: &[(&str, &str)]) -> Self {
        Self::start_configured(db, toml, SERVER_KEY, env)
    }

    /// Like [`Server::start`], with another server key (another server's identity).
    pub fn start_with_key(db: Db, toml: &str, server_key: &str) -> Self {
        Self::start_configured(db, toml, server_key, &[])
    }

    fn start_configured(db: Db, toml: &str, server_key: &str, extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let config = dir.path().join("tessera.toml");
        std::fs::write(&config, with_rate_limits_off(toml)).unwrap();
        let mut env = vec![
            ("TESSERA_ADMIN_TOKEN".to_owned(), ADMIN_KEY.to_owned()),
            ("TESSERA_SERVER_KEY".to_owned(), server_key.to_owned()),
        ];
        env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Self::launch(db, data_dir, Some(config), env, Some(dir))
    }

    /// A server with exactly the given data directory and environment (no config file).
    pub fn start_plain(db: Db, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Self::launch(db, data_dir.to_path_buf(), None, env, None)
    }

    fn launch(
        db: Db,
        data_dir: PathBuf,
        config: Option<PathBuf>,
        extra_env: Vec<(String, String)>,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        let mut server = Self {
            child: None,
            url: String::new(),
            data_dir,
            db,
            config,
            extra_env,
            client: client(),
            _dir: dir,
        };
        server.spawn();
        server
    }

    /// The command line used to (re)start this server.
    pub fn command(&self, port: u16) -> Command {
        let mut command = Command::new(binary("tessera-server"));
        command.arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--data-dir").arg(&self.data_dir);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        if let Db::Postgres(url) = &self.db {
            command.arg("--database-url").arg(url);
        }
        command
            .env_remove("TESSERA_ADMIN_TOKEN")
            .env_remove("TESSERA_SERVER_KEY")
            .env_remove("TESSERA_CONFIG")
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        command
    }

    /// Runs `tessera-server admin ARGS` on this server's database, key and configuration.
    pub fn admin_cli(&self, args: &[&str]) -> std::process::Output {
        crate::support::output_within(
            self.command(free_port()).arg("admin").args(args),
            Duration::from_secs(120),
        )
    }

    fn spawn(&mut self) {
        self.spawn_on(free_port());
    }

    fn spawn_on(&mut self, port: u16) {
        std::fs::create_dir_all(self.data_dir.parent().unwrap()).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.parent().unwrap().join(format!("server-{port}.log")))
            .unwrap();
        let child = self.command(port).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
        self.child = Some(child);
        self.url = format!("http://127.0.0.1:{port}");
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.client.get(format!("{}/healthz", self.url)).send()
                && response.status().is_success()
            {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("tessera-server exited with {status}:\n{}", self.logs());
            }
            assert!(Instant::now() < deadline, "tessera-server did not become healthy:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the server processes of this test printed.
    pub fn logs(&self) -> String {
        let dir = self.data_dir.parent().unwrap();
        let mut text = String::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with("server-") {
                text += &std::fs::read_to_string(entry.path()).unwrap_or_default();
            }
        }
        text
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("the server is running")
    }

    /// The server's resident memory (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// A metric's value from `/metrics` (the first sample whose line starts with `name`).
    pub fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        let line =
            text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    /// Creates a relying-party application; returns its key.
    pub fn application(&self, name: &str, service_name: &str) -> String {
        let (status, created) = self.admin(
            "POST",
            "/api/v1/applications",
            Some(json!({ "name": name, "service_name": service_name })),
        );
        assert_eq!(status, 201, "{created}");
        created["key"].as_str().unwrap().to_owned()
    }

    /// Stops the server with SIGTERM and asserts a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
            assert!(status.success());
            let deadline = Instant::now() + Duration::from_secs(30);
            let exit = loop {
                if let Some(exit) = child.try_wait().unwrap() {
                    break exit;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("the server did not stop within 30 s of SIGTERM:\n{}", self.logs());
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            assert!(exit.success(), "the server did not shut down cleanly ({exit}):\n{}", self.logs());
        }
    }

    /// Stops and starts the server on the same data directory and database.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Kills the server with SIGKILL: no shutdown at all, as a crash or the OOM killer would.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts a stopped or crashed server again, with its configuration file replaced by `toml`.
    pub fn start_again_with(&mut self, toml: &str) {
        let config = self.config.as_ref().expect("a server started with a configuration file");
        std::fs::write(config, with_rate_limits_off(toml)).unwrap();
        self.spawn();
    }

    /// Stops and starts the server at the same address, as its devices know it.
    pub fn restart_in_place(&mut self) {
        let port = self.url.rsplit(':').next().and_then(|port| port.parse().ok()).unwrap();
        self.stop();
        self.spawn_on(port);
    }

    /// `METHOD path` with the admin key and an optional JSON body: (status, body).
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(ADMIN_KEY);
        send(match body {
            Some(body) => request.json(&body),
            None => request,
        })
    }

    /// `POST /api/v1/validate`: (status, body).
    pub fn validate(&self, username: &str, password: Option<&str>, passcode: &str) -> (u16, Value) {
        let mut body = json!({ "username": username, "passcode": passcode });
        if let Some(password) = password {
            body["password"] = json!(password);
        }
        send(self.client.post(format!("{}/api/v1/validate", self.url)).json(&body))
    }

    /// The `result` of a validation, asserting HTTP 200.
    #[track_caller]
    pub fn result(&self, username: &str, passcode: &str) -> String {
        let (status, body) = self.validate(username, None, passcode);
        assert_eq!(status, 200, "{body}");
        body["result"].as_str().unwrap().to_owned()
    }

    /// Creates a user and enrolls a token; returns the enrollment.
    pub fn user_with_token(&self, username: &str, enroll: Value) -> Value {
        let (status, body) = self.admin("POST", "/api/v1/users", Some(json!({ "username": username })));
        assert_eq!(status, 201, "{body}");
        let (status, body) = self.admin("POST", &format!("/api/v1/users/{username}/tokens"), Some(enroll));
        assert_eq!(status, 201, "{body}");
        body
    }

    /// POSTs JSON without credentials (the public endpoints), returning the status and JSON body.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        send(self.client.post(format!("{}{path}", self.url)).json(body))
    }

    /// POSTs JSON with a bearer key (an application's), returning the status and JSON body.
    pub fn post_as(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        send(self.client.post(format!("{}{path}", self.url)).bearer_auth(key).json(body))
    }

    /// A GET without credentials: (status, body text).
    pub fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(format!("{}{path}", self.url)).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }
}

fn send(request: reqwest::blocking::RequestBuilder) -> (u16, Value) {
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        },
    )
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
