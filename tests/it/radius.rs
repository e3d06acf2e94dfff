//! The RADIUS listener against real RADIUS clients: FreeRADIUS's `radclient` (Debian
//! `freeradius-utils`) for PAP, Access-Challenge and `State` round trips, checking every answer's
//! Response Authenticator and Message-Authenticator as a VPN would; a TOTP code typed after the
//! challenge, a single-field password+code, a push approved by the CLI, a code sent by text
//! message through Kannel; and requests dropped without an answer (no Message-Authenticator, the
//! wrong secret), audited.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::push::user_with_device;
use crate::server_support::{Db, Server};
use crate::support::Sandbox;

/// The shared secret of the test clients.
const SECRET: &str = "radius-test-secret-0123456789";

/// A server with the RADIUS listener on a free UDP port and one client, `vpn`, on 127.0.0.1
/// (`client` adds lines to its section, `extra` TOML after it).
pub struct RadiusServer {
    pub server: Server,
    pub port: u16,
    _secret_dir: tempfile::TempDir,
}

impl RadiusServer {
    pub fn start(client: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("radius.secret");
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let toml = format!(
            "[radius]\nlisten = \"127.0.0.1:{port}\"\n\
             [[radius.client]]\nname = \"vpn\"\naddress = \"127.0.0.1/32\"\nsecret_file = \"{secret}\"\n{client}\n\
             {extra}",
            secret = secret_file.display()
        );
        let server = Server::start(Db::Sqlite, &toml);
        Self { server, port, _secret_dir: dir }
    }

    /// Sends one Access-Request through `radclient` (attributes as radclient reads them) and
    /// returns what it printed: the answer's code and attributes, or a timeout.
    pub fn ask(&self, attributes: &str, secret: &str) -> Answer {
        let mut child = Command::new("radclient")
            .args(["-x", "-r", "1", "-t", "8", &format!("127.0.0.1:{}", self.port), "auth", secret])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("radclient (Debian freeradius-utils): run scripts/setup-debian.sh");
        child.stdin.take().unwrap().write_all(attributes.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        Answer::parse(&format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    /// An Access-Request for `username` with `password` (and `state`, hex), signed.
    pub fn request(&self, username: &str, password: &str, state: Option<&str>) -> Answer {
        let mut attributes = format!(
            "User-Name = \"{username}\", User-Password = \"{password}\", NAS-Identifier = \"vpn.example\", \
             Calling-Station-Id = \"198.51.100.7\", Message-Authenticator = 0x00"
        );
        if let Some(state) = state {
            attributes.push_str(&format!(", State = 0x{state}"));
        }
        self.ask(&attributes, SECRET)
    }
}

/// What radclient received.
#[derive(Debug)]
pub struct Answer {
    /// `Access-Accept`, `Access-Reject`, `Access-Challenge`, or `none` when nothing came.
    pub code: String,
    /// The answer's attributes as radclient printed them.
    pub attributes: Vec<(String, String)>,
    /// All of radclient's output.
    pub printed: String,
}

impl Answer {
    fn parse(printed: &str) -> Self {
        let mut code = "none".to_owned();
        let mut attributes = Vec::new();
        let mut in_reply = false;
        for line in printed.lines() {
            if let Some(rest) = line.strip_prefix("Received ") {
                code = rest.split(' ').next().unwrap_or_default().to_owned();
                in_reply = true;
            } else if line.starts_with("Sent ") {
                in_reply = false;
            } else if let Some((name, value)) = line.trim().split_once(" = ").filter(|_| in_reply) {
                attributes.push((name.to_owned(), value.trim_matches('"').to_owned()));
            }
        }
        Self { code, attributes, printed: printed.to_owned() }
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The `State`'s hex, without `0x`.
    pub fn state(&self) -> String {
        self.attribute("State")
            .and_then(|s| s.strip_prefix("0x"))
            .unwrap_or_else(|| panic!("no State: {self:?}"))
            .to_owned()
    }
}

fn audit_reasons(server: &Server, action: &str) -> Vec<String> {
    let (_, audit) = server.admin("GET", "/api/v1/audit?limit=200", None);
    audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == action)
        .map(|r| {
            format!(
                "{} {}",
                r["actor"].as_str().unwrap_or_default(),
                r["reason"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn totp_user(server: &Server, username: &str) -> Sandbox {
    let (status, _) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": username, "password": "2580" })));
    assert_eq!(status, 201);
    let (status, enrollment) =
        server.admin("POST", &format!("/api/v1/users/{username}/tokens"), Some(json!({ "kind": "totp" })));
    assert_eq!(status, 201, "{enrollment}");
    let phone = Sandbox::with_keystore_vault();
    phone.run(&["add", enrollment["otpauth_uri"].as_str().unwrap()]).ok();
    phone
}

#[test]
fn radclient_signs_in_with_a_challenge_for_a_totp_code_and_every_answer_is_signed() {
    let radius = RadiusServer::start("", "");
    let phone = totp_user(&radius.server, "rita");
    let at = crate::support::unix_now();
    let code_at =
        |offset: u64| phone.run(&["code", "rita", "--at", &(at + offset).to_string()]).ok().trim().to_owned();

    let first = radius.request("rita", "2580", None);
    assert_eq!(first.code, "Access-Challenge", "{}", first.printed);
    assert!(first.attribute("Reply-Message").unwrap_or_default().contains("passcode"), "{first:?}");
    assert!(first.attribute("Message-Authenticator").is_some(), "every answer is signed: {first:?}");
    let timeout: u64 = first.attribute("Session-Timeout").unwrap().parse().unwrap();
    assert!((1..=300).contains(&timeout), "{timeout}");
    let accepted = radius.request("rita", &code_at(0), Some(&first.state()));
    assert_eq!(accepted.code, "Access-Accept", "{}", accepted.printed);
    let reused = radius.request("rita", &code_at(30), Some(&first.state()));
    assert_eq!(reused.code, "Access-Reject", "a State works once: {}", reused.printed);

    let wrong_password = radius.request("rita", "0000", None);
    assert_eq!(wrong_password.code, "Access-Reject", "{}", wrong_password.printed);
    let forged = radius.request("rita", &code_at(60), Some("00112233445566778899aabbccddeeff"));
    assert_eq!(forged.code, "Access-Reject", "an unknown State: {}", forged.printed);

    let unsigned = radius.ask("User-Name = \"rita\", User-Password = \"2580\"", SECRET);
    assert_eq!(unsigned.code, "none", "no Message-Authenticator: dropped, {}", unsigned.printed);
    let other_secret = radius.ask(
        "User-Name = \"rita\", User-Password = \"2580\", Message-Authenticator = 0x00",
        "not-the-shared-secret-at-all",
    );
    assert_eq!(other_secret.code, "none", "the wrong secret: dropped, {}", other_secret.printed);
    let dropped = audit_reasons(&radius.server, "radius.drop");
    for reason in ["radius:vpn missing_message_authenticator", "radius:vpn bad_message_authenticator"] {
        assert!(dropped.contains(&reason.to_owned()), "{reason} in {dropped:?}");
    }
    let decisions = audit_reasons(&radius.server, "validate");
    assert!(decisions.iter().all(|d| d.starts_with("radius:vpn")), "audited as the client's: {decisions:?}");
    for reason in ["radius:vpn passcode_asked", "radius:vpn wrong_password"] {
        assert!(decisions.contains(&reason.to_owned()), "{reason} in {decisions:?}");
    }
}

#[test]
fn a_push_over_radius_is_approved_on_the_phone_then_enter_completes_it() {
    let radius = RadiusServer::start("", "[push]\nnumber_matching = \"pick\"\n");
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&radius.server, &phone, "pete", Some("2580"));
    let first = radius.request("pete", "2580", None);
    assert_eq!(first.code, "Access-Challenge", "{}", first.printed);
    let message = first.attribute("Reply-Message").unwrap().to_owned();
    assert!(message.contains("press Enter"), "{message}");
    let number: String =
        message.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 2).unwrap().to_owned();
    let listened = phone.run(&["push", "listen", "--json", "--count", "1"]).ok();
    let request: Value = serde_json::from_str(listened.lines().next().unwrap()).unwrap();
    assert_eq!(request["service"], "vpn.example", "NAS-Identifier is the service shown: {request}");
    assert_eq!(request["client_ip"], "198.51.100.7", "Calling-Station-Id is the address shown: {request}");
    phone.run(&["push", "approve", request["transaction_id"].as_str().unwrap(), "--number", &number]).ok();
    let done = radius.request("pete", "", Some(&first.state()));
    assert_eq!(done.code, "Access-Accept", "{}", done.printed);
}

#[test]
fn a_single_field_client_sends_password_and_code_together() {
    let radius = RadiusServer::start("single_field = true\n", "");
    let phone = totp_user(&radius.server, "sam");
    let code = phone.run(&["code", "sam"]).ok().trim().to_owned();
    let accepted = radius.request("sam", &format!("2580{code}"), None);
    assert_eq!(accepted.code, "Access-Accept", "{}", accepted.printed);
    let wrong = radius.request("sam", "2580000000", None);
    assert_eq!(wrong.code, "Access-Reject", "{}", wrong.printed);
    assert!(wrong.attribute("Reply-Message").is_some(), "a refusal says why: {wrong:?}");
}

#[test]
fn a_code_sent_by_text_message_completes_a_radius_challenge() {
    let kannel = crate::kannel_gateway::kannel();
    let radius = RadiusServer::start("", &kannel.config_toml("kannel"));
    let number = "+447700900844";
    let user = json!({ "username": "tia", "password": "2580", "phone": number });
    assert_eq!(radius.server.admin("POST", "/api/v1/users", Some(user)).0, 201);
    assert_eq!(
        radius.server.admin("POST", "/api/v1/users/tia/tokens", Some(json!({ "kind": "sms" }))).0,
        201
    );
    let first = radius.request("tia", "2580", None);
    assert_eq!(first.code, "Access-Challenge", "{}", first.printed);
    assert!(first.attribute("Reply-Message").unwrap().contains("+44 ••• ••844"), "{first:?}");
    let message = kannel.wait_for_message(number, 0, Duration::from_secs(20));
    let code: String =
        message.text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned();
    let done = radius.request("tia", &code, Some(&first.state()));
    assert_eq!(done.code, "Access-Accept", "{}", done.printed);
    assert_eq!(kannel.messages_to(number).len(), 1, "one text message for one sign-in");
}

/// Runs `tests/it/radius_client.py` (pyrad) for `case` against `radius`; its JSON.
fn pyrad(radius: &RadiusServer, case: &str, username: &str, password: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/it/radius_client.py");
    let output = Command::new("/usr/bin/python3")
        .args([script, case, &radius.port.to_string(), SECRET, username, password])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "radius_client.py {case} (Debian python3-pyrad): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn retransmissions_start_nothing_twice_and_bad_packets_get_no_answer() {
    let radius = RadiusServer::start("", "[push]\nnumber_matching = \"pick\"\n");
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&radius.server, &phone, "ugo", Some("2580"));
    let sent = pyrad(&radius, "retransmit", "ugo", "2580");
    let replies: Vec<&str> =
        sent["replies"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(replies.len(), 3);
    assert!(replies.iter().all(|r| *r == replies[0]), "the same answer each time: {replies:?}");
    let (_, audit) = radius.server.admin("GET", "/api/v1/audit?username=ugo&limit=50", None);
    let pushes: Vec<&Value> =
        audit.as_array().unwrap().iter().filter(|r| r["action"] == "push.request").collect();
    assert_eq!(pushes.len(), 1, "one push for three copies of the request: {audit}");
    assert_eq!(pushes[0]["actor"], "radius:vpn", "audited as the client's");

    let malformed = pyrad(&radius, "malformed", "ugo", "2580");
    assert_eq!(malformed["answered"], 0, "{malformed}");
    assert_eq!(malformed["padded_answered"], true, "and the listener still answers: {malformed}");
    let unknown = pyrad(&radius, "unknown-client", "ugo", "2580");
    assert_eq!(unknown["answered"], false, "{unknown}");
    let dropped = audit_reasons(&radius.server, "radius.drop");
    for reason in ["radius:vpn malformed_packet", "radius unknown_client"] {
        assert!(dropped.contains(&reason.to_owned()), "{reason} in {dropped:?}");
    }
}

#[test]
fn in_auto_mode_the_first_answer_waits_for_the_phone() {
    let radius =
        RadiusServer::start("mode = \"auto\"\nauto_wait_secs = 20\n", "[push]\nnumber_matching = \"off\"\n");
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&radius.server, &phone, "val", Some("2580"));
    let answer = std::thread::scope(|scope| {
        scope.spawn(|| {
            let listened = phone.run(&["push", "listen", "--json", "--count", "1"]).ok();
            let request: Value = serde_json::from_str(listened.lines().next().unwrap()).unwrap();
            phone.run(&["push", "approve", request["transaction_id"].as_str().unwrap()]).ok();
        });
        radius.request("val", "2580", None)
    });
    assert_eq!(
        answer.code, "Access-Accept",
        "one request, held until the phone approved: {}",
        answer.printed
    );
}

/// A terminal session (tmux) running `command`, typed into as a person would.
struct Terminal {
    name: String,
}

impl Terminal {
    fn start(command: &str) -> Self {
        static TERMINALS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let number = TERMINALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tessera-radius-{}-{number}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "40",
                "-s",
                &name,
                &format!("{command}; echo EXIT=$?; sleep 60"),
            ])
            .status()
            .expect("tmux (Debian tmux): run scripts/setup-debian.sh");
        assert!(status.success());
        Self { name }
    }

    fn screen(&self) -> String {
        let output = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.name]).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the screen shows `text`; the screen.
    fn wait_for(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(std::time::Instant::now() < deadline, "waited for {text:?}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_line(&self, text: &str) {
        let typed = Command::new("tmux").args(["send-keys", "-t", &self.name, "-l", text]).status().unwrap();
        let entered = Command::new("tmux").args(["send-keys", "-t", &self.name, "Enter"]).status().unwrap();
        assert!(typed.success() && entered.success());
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.name]).status();
    }
}

/// A PAM service that signs in through `pam_radius_auth` against `radius` (its file in
/// `/etc/pam.d`, removed when dropped).
struct PamService {
    name: String,
    _dir: tempfile::TempDir,
}

impl PamService {
    fn new(radius: &RadiusServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let servers = dir.path().join("pam_radius_auth.conf");
        std::fs::write(&servers, format!("127.0.0.1:{} {SECRET} 10\n", radius.port)).unwrap();
        let name = format!("tessera-radius-test-{}", std::process::id());
        let service = format!(
            "auth required pam_radius_auth.so conf={} client_id=ssh.example\naccount required pam_permit.so\n",
            servers.display()
        );
        std::fs::write(format!("/etc/pam.d/{name}"), service)
            .expect("/etc/pam.d is writable (the suite runs as root)");
        Self { name, _dir: dir }
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/etc/pam.d/{}", self.name));
    }
}

#[test]
fn pam_radius_signs_in_with_the_password_then_the_code_typed_at_its_prompt() {
    // pam_radius 2.0.0 (Debian 12) sends no Message-Authenticator: this client may omit it.
    let radius = RadiusServer::start("require_message_authenticator = false\n", "");
    let phone = totp_user(&radius.server, "pam");
    let pam = PamService::new(&radius);
    let terminal = Terminal::start(&format!("pamtester -v {} pam authenticate", pam.name));
    terminal.wait_for("Password:");
    terminal.type_line("2580");
    let asked = terminal.wait_for("passcode");
    assert!(
        asked.contains("Enter the passcode from your token."),
        "the Reply-Message is the prompt:\n{asked}"
    );
    terminal.type_line(phone.run(&["code", "pam"]).ok().trim());
    let done = terminal.wait_for("EXIT=");
    assert!(done.contains("successfully authenticated") && done.contains("EXIT=0"), "{done}");

    let wrong = Terminal::start(&format!("pamtester -v {} pam authenticate", pam.name));
    wrong.wait_for("Password:");
    wrong.type_line("2580");
    wrong.wait_for("passcode");
    wrong.type_line("000000");
    let refused = wrong.wait_for("EXIT=");
    assert!(refused.contains("EXIT=1") || !refused.contains("EXIT=0"), "a wrong code is refused:\n{refused}");
    let decisions = audit_reasons(&radius.server, "validate");
    assert!(decisions.contains(&"radius:vpn wrong_code".to_owned()), "{decisions:?}");
}
