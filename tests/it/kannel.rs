//! A real Kannel SMS gateway (Debian's `kannel` and `kannel-extras`) for the delivery tests:
//! `smsbox` takes `/cgi-bin/sendsms` requests, `bearerbox` routes them to its `fake` SMSC, and
//! Kannel's `fakesmsc` test client, connected to that SMSC, logs every message it gets. A reader
//! thread parses those lines, so a test reads a code the way a user reads their phone.
//!
//! Kannel starts once per test binary, on free loopback ports, with its config and the sendsms
//! password in a temporary directory; its logs go to `test-output/kannel/`. The processes must
//! outlive the test that happens to start them (each test runs on its own thread, and
//! `PR_SET_PDEATHSIG` fires when the forking *thread* ends) but not the test binary, whose statics
//! are never dropped. So each one runs under [`WATCHDOG`], a `sh -c` that checks once a second that
//! the test process is alive and `kill -9`s its program when it is not, however the binary ended
//! (normal exit, abort or SIGKILL). The watchdog exits as soon as its program dies, which is how a
//! box failing at start-up is seen at once; it holds none of the test's standard streams; the one
//! around `bearerbox` also removes the temporary directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::support::test_output_dir;

const BEARERBOX: &str = "/usr/sbin/bearerbox";
const SMSBOX: &str = "/usr/sbin/smsbox";
const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";
const USERNAME: &str = "tessera";
const PASSWORD: &str = "kannel-e2e-password";
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `"$@"` until the process `$TEST_PID` is gone, then kills it and removes `$CLEANUP`, if set.
const WATCHDOG: &str = r#""$@" & program=$!
while kill -0 "$TEST_PID" 2>/dev/null && kill -0 "$program" 2>/dev/null; do sleep 1; done
kill -9 "$program" 2>/dev/null
wait "$program"; status=$?
[ -z "$CLEANUP" ] || rm -rf "$CLEANUP"
exit "$status""#;

/// One text message as Kannel's fake SMSC delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsMessage {
    pub from: String,
    pub to: String,
    pub text: String,
}

type Received = Arc<(Mutex<Vec<SmsMessage>>, Condvar)>;

/// The running gateway, shared by every test of the binary (see [`kannel`]).
pub struct Kannel {
    /// `http://127.0.0.1:PORT/cgi-bin/sendsms`.
    pub sendsms_url: String,
    /// The `sendsms-user` Tessera authenticates as.
    pub username: &'static str,
    /// That user's password, also in the `secret_file` of [`Kannel::config_toml`].
    pub password: &'static str,
    secret_file: PathBuf,
    logs: PathBuf,
    received: Received,
}

/// The gateway, started on first use and stopped when the test binary ends.
pub fn kannel() -> &'static Kannel {
    static KANNEL: OnceLock<Kannel> = OnceLock::new();
    KANNEL.get_or_init(Kannel::start)
}

impl Kannel {
    fn start() -> Self {
        for program in [BEARERBOX, SMSBOX, FAKESMSC] {
            assert!(Path::new(program).exists(), "{program} is missing: install Debian's kannel and kannel-extras");
        }
        let dir = tempfile::Builder::new().prefix("tessera-kannel-").tempdir().unwrap().keep();
        let logs = test_output_dir().join("kannel");
        let _ = std::fs::remove_dir_all(&logs);
        std::fs::create_dir_all(&logs).unwrap();
        let listeners: Vec<TcpListener> = (0..4).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();
        drop(listeners);
        let (admin, smsbox_port, fake, sendsms) = (ports[0], ports[1], ports[2], ports[3]);
        let config = dir.join("kannel.conf");
        std::fs::write(&config, kannel_conf(&logs, admin, smsbox_port, fake, sendsms)).unwrap();
        let secret_file = dir.join("sendsms-password");
        std::fs::write(&secret_file, format!("{PASSWORD}\n")).unwrap();
        let config = config.to_str().unwrap();

        let mut started = vec![("bearerbox", watched(BEARERBOX, &["-v", "4", config], Some(&dir)))];
        let deadline = Instant::now() + START_TIMEOUT;
        let status = || http_get(admin, "/status.txt").unwrap_or_default();
        wait_until(deadline, &mut started, &logs, || {
            status().contains(&format!("FAKE:{fake}")) && TcpStream::connect(("127.0.0.1", smsbox_port)).is_ok()
        });
        started.push(("smsbox", watched(SMSBOX, &["-v", "4", config], None)));
        let port = fake.to_string();
        let args = ["-v", "0", "-H", "127.0.0.1", "-r", &port, "-m", "0", "0 0 text never-sent"];
        let mut fakesmsc = watched(FAKESMSC, &args, None);
        let received = Received::default();
        let output = fakesmsc.stderr.take().unwrap();
        let (shared, log) = (Arc::clone(&received), logs.join("fakesmsc.log"));
        std::thread::spawn(move || read_fakesmsc(output, &log, &shared));
        started.push(("fakesmsc", fakesmsc));
        wait_until(deadline, &mut started, &logs, || {
            let status = status();
            http_get(sendsms, "/").is_some()
                && status.contains(&format!("FAKE:{fake} (online"))
                && status.contains("(on-line")
        });
        Self {
            sendsms_url: format!("http://127.0.0.1:{sendsms}/cgi-bin/sendsms"),
            username: USERNAME,
            password: PASSWORD,
            secret_file,
            logs,
            received,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SmsMessage>> {
        self.received.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every message received so far for `to`, oldest first (a leading `+` on either side is
    /// ignored: Kannel passes the number on as given).
    pub fn messages_to(&self, to: &str) -> Vec<SmsMessage> {
        self.lock().iter().filter(|m| same_number(&m.to, to)).cloned().collect()
    }

    /// The message after the first `after` ones to `to`, waiting up to `timeout` for it.
    #[track_caller]
    pub fn wait_for_message(&self, to: &str, after: usize, timeout: Duration) -> SmsMessage {
        let deadline = Instant::now() + timeout;
        let mut messages = self.lock();
        loop {
            if let Some(message) = messages.iter().filter(|m| same_number(&m.to, to)).nth(after) {
                return message.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let all = messages.clone();
                drop(messages);
                let to_number: Vec<&SmsMessage> = all.iter().filter(|m| same_number(&m.to, to)).collect();
                panic!(
                    "no message {} to {to} within {timeout:?}; to that number: {to_number:#?}\n\
                     all {} messages: {all:#?}\nsmsbox.log:\n{}",
                    after + 1,
                    all.len(),
                    tail(&self.logs.join("smsbox.log"), 15)
                );
            }
            messages = self.received.1.wait_timeout(messages, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// One `[[delivery.sms_gateway]]` entry of a Tessera config that sends through this Kannel.
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

fn kannel_conf(logs: &Path, admin: u16, smsbox: u16, fake: u16, sendsms: u16) -> String {
    let log = |name: &str| logs.join(name).display().to_string();
    format!(
        "group = core\nadmin-port = {admin}\nadmin-interface = 127.0.0.1\nadmin-password = \"kannel-e2e-admin\"\n\
         smsbox-port = {smsbox}\nsmsbox-interface = 127.0.0.1\nbox-allow-ip = \"127.0.0.1\"\n\
         log-file = \"{}\"\nlog-level = 0\n\n\
         group = smsc\nsmsc = fake\nsmsc-id = fake\nport = {fake}\nour-host = 127.0.0.1\nconnect-allow-ip = \"127.0.0.1\"\n\n\
         group = smsbox\nbearerbox-host = 127.0.0.1\nbearerbox-port = {smsbox}\nsendsms-port = {sendsms}\n\
         sendsms-interface = 127.0.0.1\nglobal-sender = 12345\nlog-file = \"{}\"\nlog-level = 0\n\n\
         group = sendsms-user\nusername = {USERNAME}\npassword = \"{PASSWORD}\"\n",
        log("bearerbox.log"),
        log("smsbox.log")
    )
}

/// `program ARGS` under [`WATCHDOG`], its standard error piped (only `fakesmsc` writes there).
fn watched(program: &str, args: &[&str], cleanup: Option<&Path>) -> Child {
    let mut command = Command::new("sh");
    command.arg("-c").arg(WATCHDOG).arg("kannel-watchdog").arg(program).args(args);
    command.env("TEST_PID", std::process::id().to_string()).env_remove("CLEANUP");
    if let Some(dir) = cleanup {
        command.env("CLEANUP", dir);
    }
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

#[track_caller]
fn wait_until(deadline: Instant, started: &mut [(&str, Child)], logs: &Path, mut ready: impl FnMut() -> bool) {
    while !ready() {
        let exited = started.iter_mut().find_map(|(name, c)| Some(format!("{name} {}", c.try_wait().ok()??)));
        if exited.is_some() || Instant::now() > deadline {
            let why = exited.unwrap_or_else(|| format!("not ready within {START_TIMEOUT:?}"));
            let tails: Vec<String> = ["bearerbox.log", "smsbox.log", "fakesmsc.log"]
                .iter()
                .map(|name| format!("--- {name}:\n{}", tail(&logs.join(name), 20)))
                .collect();
            panic!("Kannel did not start: {why}\n{}", tails.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The response to `GET path` on a loopback port, or `None` while nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/").then_some(response)
}

/// Parses `… DEBUG: Got message N: <FROM TO TYPE DATA>` lines; DATA holds the text as sent, so a
/// newline in it continues the entry on the next lines (those without a log line's timestamp).
fn read_fakesmsc(output: ChildStderr, log: &Path, received: &Received) {
    let mut log = std::fs::File::create(log).unwrap();
    let (mut entry, mut published): (Option<String>, bool) = (None, false);
    for line in BufReader::new(output).split(b'\n').map_while(Result::ok) {
        let _ = log.write_all(&line).and_then(|()| log.write_all(b"\n"));
        let line = String::from_utf8_lossy(&line).into_owned();
        let timestamped = line.get(4..5) == Some("-") && line.get(13..14) == Some(":");
        match line.split_once(" Got message ").and_then(|(_, rest)| rest.split_once(": <")) {
            Some((_, data)) if timestamped => (entry, published) = (Some(data.to_owned()), false),
            _ if timestamped => entry = None,
            _ => match entry.as_mut() {
                Some(data) => data.extend(["\n", &line]),
                None => continue,
            },
        }
        let Some(message) = entry.as_deref().and_then(|e| e.strip_suffix('>')).and_then(parse_entry) else {
            continue;
        };
        let mut messages = received.0.lock().unwrap_or_else(PoisonError::into_inner);
        if published {
            messages.pop();
        }
        messages.push(message);
        published = true;
        received.1.notify_all();
    }
}

/// `FROM TO TYPE DATA`: TYPE `text` is the text itself, `data` URL-encoded bytes, `ucs-2`
/// URL-encoded UTF-16BE.
fn parse_entry(entry: &str) -> Option<SmsMessage> {
    let (from, rest) = entry.split_once(' ')?;
    let (to, rest) = rest.split_once(' ')?;
    let (kind, data) = rest.split_once(' ')?;
    let text = match kind {
        "data" => String::from_utf8_lossy(&url_decode(data)).into_owned(),
        "ucs-2" => {
            let units: Vec<u16> =
                url_decode(data).chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
            String::from_utf16_lossy(&units)
        }
        _ => data.to_owned(),
    };
    Some(SmsMessage { from: from.to_owned(), to: to.to_owned(), text })
}

fn url_decode(data: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(data.len());
    let mut rest = data.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let hex = tail.get(..2).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (byte, hex) {
            (b'%', Some(value)) => (bytes.push(value), rest = &tail[2..]),
            (b'+', _) => (bytes.push(b' '), rest = tail),
            _ => (bytes.push(byte), rest = tail),
        };
    }
    bytes
}

fn same_number(a: &str, b: &str) -> bool {
    a.strip_prefix('+').unwrap_or(a) == b.strip_prefix('+').unwrap_or(b)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned());
    let text = text.unwrap_or_else(|e| format!("({e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
