//! A test SMSC in the SMPP 3.4 server role for the suite (`tests/it/smpp_smsc.pl` on Debian's
//! Net::SMPP, libnet-smpp-perl): it checks the bind's system id and password, answers
//! `enquire_link`, accepts `submit_sm` or answers it as a script says (an error status, or a
//! dropped connection), and hangs up every session on demand; Debian's socat serves it over TLS
//! too, with a certificate from a test CA. Started once per test binary; it
//! ends when the test process does (its standard input is a pipe only the test process holds).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server_support::free_port;
use crate::support::loopback_certificate;

/// The account the SMSC accepts.
pub const SYSTEM_ID: &str = "tessera";
const PASSWORD: &str = "smpp-pw1";

/// The running SMSC.
pub struct SmppSmsc {
    /// Its port on 127.0.0.1.
    pub port: u16,
    tls_port: u16,
    ca_file: PathBuf,
    pid: u32,
    script: PathBuf,
    script_lock: Mutex<()>,
    password_file: PathBuf,
    wrong_password_file: PathBuf,
    events: Mutex<Vec<Value>>,
    arrived: Condvar,
    _process: Mutex<(Child, ChildStdin)>,
    _dir: tempfile::TempDir,
}

/// The suite's SMSC, started on first use.
pub fn smpp_smsc() -> &'static SmppSmsc {
    static SMSC: OnceLock<&'static SmppSmsc> = OnceLock::new();
    SMSC.get_or_init(start)
}

fn start() -> &'static SmppSmsc {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("script"), "").unwrap();
    std::fs::write(path("smpp.pw"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(path("wrong.pw"), "not-it\n").unwrap();
    loopback_certificate().write_to(dir.path());
    let (port, tls_port) = (free_port(), free_port());
    let mut child = Command::new("/usr/bin/perl")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/it/smpp_smsc.pl"))
        .args(["--port", &port.to_string(), "--system-id", SYSTEM_ID, "--password", PASSWORD])
        .arg("--script")
        .arg(path("script"))
        .args(["--tls-port", &tls_port.to_string()])
        .arg("--cert")
        .arg(path("cert.pem"))
        .arg("--key")
        .arg(path("key.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("perl runs the test SMSC (Debian's libnet-smpp-perl; scripts/setup-debian.sh installs it)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    let ready: Value = serde_json::from_str(&ready).unwrap_or_default();
    assert_eq!(ready["event"], "listening", "the test SMSC did not start: {ready}");
    let stdin = child.stdin.take().unwrap();
    let smsc: &'static SmppSmsc = Box::leak(Box::new(SmppSmsc {
        port,
        tls_port,
        ca_file: path("ca.pem"),
        pid: child.id(),
        script: path("script"),
        script_lock: Mutex::new(()),
        password_file: path("smpp.pw"),
        wrong_password_file: path("wrong.pw"),
        events: Mutex::new(Vec::new()),
        arrived: Condvar::new(),
        _process: Mutex::new((child, stdin)),
        _dir: dir,
    }));
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                smsc.events.lock().unwrap().push(event);
                smsc.arrived.notify_all();
            }
        }
    });
    smsc
}

impl SmppSmsc {
    /// A `[[delivery.sms_gateway]]` entry for this SMSC, with `extra` lines added (`from = …`).
    pub fn config_toml(&self, id: &str, extra: &str) -> String {
        self.config_with(id, &self.password_file, extra)
    }

    /// The same entry with a password the SMSC refuses.
    pub fn config_toml_wrong_password(&self, id: &str) -> String {
        self.config_with(id, &self.wrong_password_file, "")
    }

    /// An entry that reaches this SMSC over TLS (`smpps://`), trusting the test CA when `trusted`
    /// (and only the system's CAs otherwise).
    pub fn config_toml_tls(&self, id: &str, trusted: bool) -> String {
        let url = format!("smpps://127.0.0.1:{}", self.tls_port);
        let extra = if trusted { format!("ca_file = \"{}\"", self.ca_file.display()) } else { String::new() };
        self.entry(id, &url, &self.password_file, &extra)
    }

    fn config_with(&self, id: &str, password_file: &std::path::Path, extra: &str) -> String {
        self.entry(id, &format!("smpp://127.0.0.1:{}", self.port), password_file, extra)
    }

    fn entry(&self, id: &str, url: &str, password_file: &std::path::Path, extra: &str) -> String {
        format!(
            "[[delivery.sms_gateway]]\nid = \"{id}\"\nkind = \"smpp\"\nurl = \"{url}\"\n\
             system_id = \"{SYSTEM_ID}\"\nsecret_file = \"{}\"\ntimeout_secs = 3\n{extra}\n",
            password_file.display()
        )
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// The first event after the first `after` that `matches`, waiting up to `timeout`.
    pub fn wait_for(&self, after: usize, timeout: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let mut events = self.events.lock().unwrap();
        loop {
            if let Some(event) = events.iter().skip(after).find(|event| matches(event)) {
                return event.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no such SMSC event within {timeout:?}; events: {:#?}", *events);
            events = self.arrived.wait_timeout(events, left).unwrap().0;
        }
    }

    /// The SMSC's script, held for one test (the SMSC is shared by the suite).
    pub fn hold_script(&self) -> MutexGuard<'_, ()> {
        self.script_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next `submit_sm`s are answered as `lines` say (`error 0x58`, `drop`), in order, then
    /// accepted again.
    pub fn answer_next(&self, _held: &MutexGuard<'_, ()>, lines: &[&str]) {
        let mut file = std::fs::OpenOptions::new().append(true).open(&self.script).unwrap();
        for line in lines {
            writeln!(file, "{line}").unwrap();
        }
    }

    /// Closes every bound session at once, as an SMSC restarting would.
    pub fn hang_up_everyone(&self) {
        let status = Command::new("kill").args(["-USR1", &self.pid.to_string()]).status().unwrap();
        assert!(status.success());
    }
}
