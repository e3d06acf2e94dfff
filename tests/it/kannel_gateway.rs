//! A real Kannel SMS gateway for the suite: `bearerbox` with a fake SMSC, `smsbox` serving
//! `/cgi-bin/sendsms`, and Kannel's `fakesmsc` connected as the SMSC, printing every message it
//! receives (`Got message N: <from to text …>`). Started once per test binary, on free loopback
//! ports in a temporary directory; the tests read what the "phone" received from it.
//!
//! Rust's test harness runs each test on its own thread, so the boxes are not tied to the thread
//! that started them: a watchdog shell kills them when the test process is gone.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::server_support::free_port;
use crate::support::watchdog;

/// One text message as the SMSC received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    /// Sender.
    pub from: String,
    /// Destination number, as sent (`+447700900123`).
    pub to: String,
    /// The text.
    pub text: String,
}

/// The running gateway.
pub struct Kannel {
    /// `http://127.0.0.1:PORT/cgi-bin/sendsms`.
    pub sendsms_url: String,
    secret_file: PathBuf,
    received: Mutex<Vec<SmsMessage>>,
    arrived: Condvar,
    _processes: Vec<Child>,
    _dir: tempfile::TempDir,
}

/// Kannel's `sendsms-user` credentials.
const USERNAME: &str = "tessera";
const PASSWORD: &str = "kannel-e2e-password";

/// The suite's gateway, started on first use.
pub fn kannel() -> &'static Kannel {
    static KANNEL: OnceLock<&'static Kannel> = OnceLock::new();
    KANNEL.get_or_init(start)
}

fn start() -> &'static Kannel {
    for program in ["/usr/sbin/bearerbox", "/usr/sbin/smsbox", "/usr/lib/kannel/test/fakesmsc"] {
        assert!(
            std::path::Path::new(program).exists(),
            "{program} is missing: install Debian's kannel and kannel-extras (scripts/setup-debian.sh does)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let [admin, smsbox, smsc, sendsms] = [free_port(), free_port(), free_port(), free_port()];
    let config = dir.path().join("kannel.conf");
    std::fs::write(
        &config,
        format!(
            "group = core\nadmin-port = {admin}\nadmin-password = e2e\nsmsbox-port = {smsbox}\nbox-allow-ip = \"127.0.0.1\"\n\n\
             group = smsc\nsmsc = fake\nsmsc-id = fake\nport = {smsc}\nconnect-allow-ip = \"127.0.0.1\"\n\n\
             group = smsbox\nbearerbox-host = 127.0.0.1\nsendsms-port = {sendsms}\nglobal-sender = Tessera\n\n\
             group = sendsms-user\nusername = {USERNAME}\npassword = {PASSWORD}\n"
        ),
    )
    .unwrap();
    let secret_file = dir.path().join("kannel.pw");
    std::fs::write(&secret_file, format!("{PASSWORD}\n")).unwrap();
    let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
    let mut processes = Vec::new();
    let bearerbox = Command::new("/usr/sbin/bearerbox")
        .args(["-v", "1"])
        .arg(&config)
        .stdout(log("bearerbox.log"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    processes.push(bearerbox);
    wait_for_port(smsc, "bearerbox's fake SMSC port", &dir);
    let mut fakesmsc = Command::new("/usr/lib/kannel/test/fakesmsc")
        .args(["-H", "127.0.0.1", "-r", &smsc.to_string(), "-m", "0", "0 0 text nop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = fakesmsc.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    let stderr = fakesmsc.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    processes.push(fakesmsc);
    let smsbox_process = Command::new("/usr/sbin/smsbox")
        .args(["-v", "1"])
        .arg(&config)
        .stdout(log("smsbox.log"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    processes.push(smsbox_process);
    let pids: Vec<u32> = processes.iter().map(Child::id).collect();
    let watchdog = watchdog(&pids);
    processes.push(watchdog);
    wait_for_port(sendsms, "smsbox's sendsms port", &dir);
    let kannel: &'static Kannel = Box::leak(Box::new(Kannel {
        sendsms_url: format!("http://127.0.0.1:{sendsms}/cgi-bin/sendsms"),
        secret_file,
        received: Mutex::new(Vec::new()),
        arrived: Condvar::new(),
        _processes: processes,
        _dir: dir,
    }));
    for stream in [stdout, stderr].into_iter().flatten() {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Some(message) = parse_line(&line) {
                    kannel.received.lock().unwrap().push(message);
                    kannel.arrived.notify_all();
                }
            }
        });
    }
    kannel
}

/// `… Got message 3: <Tessera +447700900123 text Tessera code: 123456.>`.
fn parse_line(line: &str) -> Option<SmsMessage> {
    let (_, rest) = line.split_once("Got message ")?;
    let (_, body) = rest.split_once(": <")?;
    let body = body.strip_suffix('>')?;
    let mut parts = body.splitn(4, ' ');
    let (from, to, kind, text) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next().unwrap_or_default());
    (kind == "text").then(|| SmsMessage { from: from.into(), to: to.into(), text: text.into() })
}

fn wait_for_port(port: u16, what: &str, dir: &tempfile::TempDir) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let logs: Vec<String> = ["bearerbox.log", "smsbox.log"]
                .iter()
                .map(|name| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default())
                .collect();
            panic!("Kannel did not open {what} ({port}) within 20 s:\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Kannel {
    /// Every message received so far for `to`.
    pub fn messages_to(&self, to: &str) -> Vec<SmsMessage> {
        self.received.lock().unwrap().iter().filter(|m| m.to == to).cloned().collect()
    }

    /// The (`after`+1)-th message to `to`, waiting up to `timeout` for it.
    pub fn wait_for_message(&self, to: &str, after: usize, timeout: Duration) -> SmsMessage {
        let deadline = Instant::now() + timeout;
        let mut received = self.received.lock().unwrap();
        loop {
            if let Some(message) = received.iter().filter(|m| m.to == to).nth(after) {
                return message.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no message {} to {to} within {timeout:?}; received: {:#?}",
                after + 1,
                *received
            );
            received = self.arrived.wait_timeout(received, left).unwrap().0;
        }
    }

    /// A `[[delivery.sms_gateway]]` entry for `tessera-server` that sends through this Kannel.
    pub fn config_toml(&self, id: &str) -> String {
        format!(
            "[[delivery.sms_gateway]]\nid = \"{id}\"\nkind = \"http\"\nmethod = \"GET\"\nurl = \"{}\"\n\
             params = {{ username = \"{USERNAME}\", password = \"{{secret}}\", to = \"{{phone}}\", text = \"{{message}}\" }}\n\
             secret_file = \"{}\"\nsuccess_status = [200, 202]\n",
            self.sendsms_url,
            self.secret_file.display()
        )
    }
}
