//! A real SMTP server for the suite (`tests/it/smtp_server.py` on Debian's python3-aiosmtpd):
//! STARTTLS required, AUTH required and only over TLS, a certificate from a test CA, and every
//! message in its own file. Started once per test binary; it ends when the test process does (its
//! standard input is a pipe only the test process holds).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::server_support::free_port;
use crate::support::loopback_certificate;

/// The running mail server.
pub struct SmtpServer {
    /// `smtp://127.0.0.1:PORT`.
    pub url: String,
    /// The test CA that signed its certificate.
    pub ca_file: PathBuf,
    password_file: PathBuf,
    maildir: PathBuf,
    _process: Mutex<(Child, ChildStdin)>,
    _dir: tempfile::TempDir,
}

/// The AUTH user name it accepts.
const USER: &str = "tessera";

/// The suite's mail server, started on first use.
pub fn smtp_server() -> &'static SmtpServer {
    static SERVER: OnceLock<SmtpServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> SmtpServer {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    loopback_certificate().write_to(dir.path());
    std::fs::write(path("smtp.pw"), "smtp-e2e-password\n").unwrap();
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/it/smtp_server.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .args(["--port", &port.to_string(), "--user", USER])
        .arg("--cert")
        .arg(path("cert.pem"))
        .arg("--key")
        .arg(path("key.pem"))
        .arg("--maildir")
        .arg(path("mail"))
        .arg("--password-file")
        .arg(path("smtp.pw"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs the test SMTP server (Debian's python3-aiosmtpd; scripts/setup-debian.sh installs it)");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert!(ready.starts_with("ready"), "the test SMTP server did not start: {ready:?}");
    let stdin = child.stdin.take().unwrap();
    SmtpServer {
        url: format!("smtp://127.0.0.1:{port}"),
        ca_file: path("ca.pem"),
        password_file: path("smtp.pw"),
        maildir: path("mail").join("new"),
        _process: Mutex::new((child, stdin)),
        _dir: dir,
    }
}

impl SmtpServer {
    /// The `[delivery.email]` section for `tessera-server`.
    pub fn config_toml(&self) -> String {
        format!(
            "[delivery.email]\nurl = \"{}\"\ntls = \"starttls\"\nusername = \"{USER}\"\npassword_file = \"{}\"\n\
             from = \"Tessera <2fa@example.com>\"\nca_file = \"{}\"\n",
            self.url,
            self.password_file.display(),
            self.ca_file.display()
        )
    }

    /// Every message received so far for `to`, oldest first, as raw RFC 5322 text.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.maildir)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|file| file.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
            .iter()
            .filter_map(|file| std::fs::read_to_string(file).ok())
            .filter(|text| {
                text.lines().any(|line| line.to_ascii_lowercase().starts_with("to:") && line.contains(to))
            })
            .collect()
    }

    /// The (`after`+1)-th message to `to`, waiting up to `timeout`.
    pub fn wait_for_message(&self, to: &str, after: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(message) = self.messages_to(to).into_iter().nth(after) {
                return message;
            }
            assert!(Instant::now() < deadline, "no message {} to {to} within {timeout:?}", after + 1);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
