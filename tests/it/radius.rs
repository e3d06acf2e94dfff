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
use crate::terminal::Terminal;

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
        Self::start_with(udp_port(), "vpn", SECRET, client, extra)
    }

    /// A server listening on `port` for one client, `name` on 127.0.0.1 with `secret`.
    pub fn start_with(port: u16, name: &str, secret: &str, client: &str, extra: &str) -> Self {
        Self::start_listening(&format!("listen = \"127.0.0.1:{port}\""), port, name, secret, client, extra)
    }

    /// A server also taking accounting, on the port it returns.
    fn start_with_accounting() -> (Self, u16) {
        let (port, accounting) = (udp_port(), udp_port());
        let listen = format!("listen = \"127.0.0.1:{port}\"\naccounting_listen = \"127.0.0.1:{accounting}\"");
        (Self::start_listening(&listen, port, "vpn", SECRET, "", ""), accounting)
    }

    fn start_listening(listen: &str, port: u16, name: &str, secret: &str, client: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("radius.secret");
        std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
        let toml = format!(
            "[radius]\n{listen}\n\
             [[radius.client]]\nname = \"{name}\"\naddress = \"127.0.0.1/32\"\nsecret_file = \"{secret}\"\n{client}\n\
             {extra}",
            secret = secret_file.display()
        );
        let server = Server::start(Db::Sqlite, &toml);
        Self { server, port, _secret_dir: dir }
    }

    /// Sends one Access-Request (attributes as radclient reads them) signed with `secret`.
    pub fn ask(&self, attributes: &str, secret: &str) -> Answer {
        exchange(self.port, secret, attributes)
    }

    /// An Access-Request for `username` with `password` (and `state`, hex), signed.
    pub fn request(&self, username: &str, password: &str, state: Option<&str>) -> Answer {
        self.ask(&request_attributes(username, password, state), SECRET)
    }
}

/// A free UDP port on 127.0.0.1.
fn udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends one Access-Request to 127.0.0.1:`port` through `radclient` and returns what it printed:
/// the answer's code and attributes, or a timeout.
pub fn exchange(port: u16, secret: &str, attributes: &str) -> Answer {
    radclient(port, "auth", secret, attributes)
}

/// Sends one packet of `kind` (`auth`, `acct`) through `radclient`; what it printed.
fn radclient(port: u16, kind: &str, secret: &str, attributes: &str) -> Answer {
    let mut child = Command::new("radclient")
        .args(["-x", "-r", "1", "-t", "8", &format!("127.0.0.1:{port}"), kind, secret])
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

/// A VPN's Access-Request for `username` with `password` (and `state`, hex), as radclient reads it.
pub fn request_attributes(username: &str, password: &str, state: Option<&str>) -> String {
    let mut attributes = format!(
        "User-Name = \"{username}\", User-Password = \"{password}\", NAS-Identifier = \"vpn.example\", \
         Calling-Station-Id = \"198.51.100.7\", Message-Authenticator = 0x00"
    );
    if let Some(state) = state {
        attributes.push_str(&format!(", State = 0x{state}"));
    }
    attributes
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
    let phone = Sandbox::with_keystore_vault();
    add_totp(server, &phone, username);
    phone
}

/// Gives `username` a TOTP token, added to `phone`'s vault.
fn add_totp(server: &Server, phone: &Sandbox, username: &str) {
    let (status, enrollment) =
        server.admin("POST", &format!("/api/v1/users/{username}/tokens"), Some(json!({ "kind": "totp" })));
    assert_eq!(status, 201, "{enrollment}");
    phone.run(&["add", enrollment["otpauth_uri"].as_str().unwrap()]).ok();
}

/// The number a push challenge's Reply-Message names ("… it will ask for the number 42 …").
fn number_in(message: &str) -> String {
    let after = message.split_once("the number ").unwrap_or_else(|| panic!("no number in {message}")).1;
    after.chars().take_while(char::is_ascii_digit).collect()
}

/// Approves the next push `phone` receives, with `number` when asked for one; the request.
fn approve_next_push(phone: &Sandbox, number: Option<&str>) -> Value {
    let listened = phone.run(&["push", "listen", "--json", "--count", "1"]).ok();
    let request: Value = serde_json::from_str(listened.lines().next().unwrap()).unwrap();
    let mut approve = vec!["push", "approve", request["transaction_id"].as_str().unwrap()];
    if let Some(number) = number {
        approve.extend(["--number", number]);
    }
    phone.run(&approve).ok();
    request
}

/// The six-digit code in the latest text message to `number`, waiting for message `after`+1.
fn texted_code(number: &str, after: usize) -> String {
    let message = crate::kannel_gateway::kannel().wait_for_message(number, after, Duration::from_secs(20));
    message.text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned()
}

/// A user with a password, a phone number and an SMS token.
fn sms_user(server: &Server, username: &str, number: &str) {
    let user = json!({ "username": username, "password": "2580", "phone": number });
    assert_eq!(server.admin("POST", "/api/v1/users", Some(user)).0, 201);
    let sms = json!({ "kind": "sms" });
    assert_eq!(server.admin("POST", &format!("/api/v1/users/{username}/tokens"), Some(sms)).0, 201);
}

#[test]
fn radclient_signs_in_with_a_challenge_for_a_totp_code_and_every_answer_is_signed() {
    let radius = RadiusServer::start("", "");
    let phone = totp_user(&radius.server, "rita");
    let at = crate::support::unix_now();
    let code_at =
        |offset: u64| phone.run(&["code", "rita", "--at", &(at + offset).to_string()]).ok().trim().to_owned();

    let set = radius.server.admin_cli(&["set-user", "rita", "--radius-reply", "Filter-Id=vpn-staff"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let bad = radius.server.admin_cli(&["set-user", "rita", "--radius-reply", "Framed-IP-Address=10.0.0"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("Framed-IP-Address must be an IPv4 address"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let (status, refused) = radius.server.admin(
        "PATCH",
        "/api/v1/users/rita",
        Some(json!({ "radius_reply": [{ "name": "User-Password", "value": "x" }] })),
    );
    assert_eq!(status, 422, "{refused}");
    assert!(refused.to_string().contains("not a reply attribute Tessera sends"), "{refused}");

    let first = radius.request("rita", "2580", None);
    assert_eq!(first.code, "Access-Challenge", "{}", first.printed);
    assert!(first.attribute("Reply-Message").unwrap_or_default().contains("passcode"), "{first:?}");
    assert!(first.attribute("Message-Authenticator").is_some(), "every answer is signed: {first:?}");
    let timeout: u64 = first.attribute("Session-Timeout").unwrap().parse().unwrap();
    assert!((1..=300).contains(&timeout), "{timeout}");
    let accepted = radius.request("rita", &code_at(0), Some(&first.state()));
    assert_eq!(accepted.code, "Access-Accept", "{}", accepted.printed);
    assert_eq!(accepted.attribute("Filter-Id"), Some("vpn-staff"), "set by the admin CLI: {accepted:?}");
    let reused = radius.request("rita", &code_at(30), Some(&first.state()));
    assert_eq!(reused.code, "Access-Reject", "a State works once: {}", reused.printed);
    assert_eq!(reused.attribute("Reply-Message"), Some("This sign-in has ended: start again."), "{reused:?}");

    let wifi = radius.ask(
        "User-Name = \"rita\", User-Password = \"2580\", Calling-Station-Id = \"00-11-22-33-44-55\", \
         NAS-Identifier = \"\", Message-Authenticator = 0x00",
        SECRET,
    );
    assert_eq!(
        wifi.code, "Access-Challenge",
        "a MAC address and an empty NAS-Identifier are left out: {}",
        wifi.printed
    );
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
    for reason in ["radius:vpn/vpn.example passcode_asked", "radius:vpn/vpn.example wrong_password"] {
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
    assert!(message.contains("press Enter, or type a passcode instead"), "{message}");
    let request = approve_next_push(&phone, Some(&number_in(&message)));
    assert_eq!(request["service"], "vpn.example", "NAS-Identifier is the service shown: {request}");
    assert_eq!(request["client_ip"], "198.51.100.7", "Calling-Station-Id is the address shown: {request}");
    let done = radius.request("pete", "", Some(&first.state()));
    assert_eq!(done.code, "Access-Accept", "{}", done.printed);
}

#[test]
fn after_a_push_challenge_a_typed_passcode_or_sms_does_instead_of_the_phone() {
    let kannel = crate::kannel_gateway::kannel();
    let radius = RadiusServer::start(
        "",
        &format!("[push]\nnumber_matching = \"pick\"\n{}", kannel.config_toml("kannel")),
    );
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&radius.server, &phone, "quin", Some("2580"));
    let first = radius.request("quin", "2580", None);
    assert_eq!(first.code, "Access-Challenge", "{}", first.printed);
    let typed = radius.request("quin", phone.run(&["code", "quin"]).ok().trim(), Some(&first.state()));
    assert_eq!(typed.code, "Access-Accept", "the code from the token, without the phone: {}", typed.printed);

    let number = "+447700900846";
    let changed = radius.server.admin("PATCH", "/api/v1/users/quin", Some(json!({ "phone": number })));
    assert_eq!(changed.0, 200, "{changed:?}");
    let sms = radius.server.admin("POST", "/api/v1/users/quin/tokens", Some(json!({ "kind": "sms" })));
    assert_eq!(sms.0, 201, "{sms:?}");
    let second = radius.request("quin", "2580", None);
    let message = second.attribute("Reply-Message").unwrap_or_default().to_owned();
    assert!(message.contains("or sms for a code by text message"), "the other ways are named: {message}");
    let asked = radius.request("quin", "sms", Some(&second.state()));
    assert_eq!(asked.code, "Access-Challenge", "{}", asked.printed);
    assert!(asked.attribute("Reply-Message").unwrap().contains("+44 ••• ••846"), "{asked:?}");
    let done = radius.request("quin", &texted_code(number, 0), Some(&asked.state()));
    assert_eq!(done.code, "Access-Accept", "{}", done.printed);
}

#[test]
fn freeradius_proxies_to_tessera_and_state_reply_message_and_attributes_cross_the_hop() {
    let proxy = crate::freeradius_proxy::freeradius();
    let _home = proxy.lease();
    let radius = RadiusServer::start_with(
        proxy.home_port,
        "freeradius",
        proxy.home_secret,
        "",
        "[push]\nnumber_matching = \"pick\"\n",
    );
    let phone = totp_user(&radius.server, "fred");
    let reply = json!({ "radius_reply": [
        { "name": "Class", "value": "staff" },
        { "name": "Filter-Id", "value": "vpn-staff" },
        { "name": "Session-Timeout", "value": 28800 },
        { "name": "Vendor-Specific", "vendor": 9, "type": 1, "value": "shell:priv-lvl=15" },
    ] });
    let (status, user) = radius.server.admin("PATCH", "/api/v1/users/fred", Some(reply.clone()));
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["radius_reply"], reply["radius_reply"], "the admin API shows what it keeps");
    let via_proxy = |username: &str, password: &str, state: Option<&str>| {
        exchange(proxy.port, proxy.secret, &request_attributes(username, password, state))
    };

    let first = via_proxy("fred", "2580", None);
    assert_eq!(first.code, "Access-Challenge", "{}\nFreeRADIUS:\n{}", first.printed, proxy.log());
    assert_eq!(first.attribute("Reply-Message"), Some("Enter the passcode from your token."), "{first:?}");
    let done = via_proxy("fred", phone.run(&["code", "fred"]).ok().trim(), Some(&first.state()));
    assert_eq!(done.code, "Access-Accept", "{}\nFreeRADIUS:\n{}", done.printed, proxy.log());
    assert_eq!(done.attribute("Class"), Some("0x7374616666"), "Class is octets: {done:?}");
    assert_eq!(done.attribute("Filter-Id"), Some("vpn-staff"), "{done:?}");
    assert_eq!(done.attribute("Session-Timeout"), Some("28800"), "{done:?}");
    assert_eq!(done.attribute("Cisco-AVPair"), Some("shell:priv-lvl=15"), "vendor 9, type 1: {done:?}");
    let refused = via_proxy("fred", "000000", Some(&first.state()));
    assert_eq!(
        refused.code, "Access-Reject",
        "a State works once, through the proxy too: {}",
        refused.printed
    );

    let pushed = Sandbox::with_keystore_vault();
    user_with_device(&radius.server, &pushed, "pia", Some("2580"));
    let challenge = via_proxy("pia", "2580", None);
    assert_eq!(challenge.code, "Access-Challenge", "{}", challenge.printed);
    approve_next_push(&pushed, Some(&number_in(challenge.attribute("Reply-Message").unwrap())));
    let approved = via_proxy("pia", "", Some(&challenge.state()));
    assert_eq!(approved.code, "Access-Accept", "{}\nFreeRADIUS:\n{}", approved.printed, proxy.log());
    assert!(approved.attribute("Class").is_none(), "pia has no reply attributes: {approved:?}");

    let decisions = audit_reasons(&radius.server, "validate");
    assert!(
        decisions.contains(&"radius:freeradius/vpn.example passcode_asked".to_owned()),
        "the proxy, and the NAS behind it: {decisions:?}"
    );
    let cleared = radius.server.admin("PATCH", "/api/v1/users/fred", Some(json!({ "radius_reply": null })));
    assert!(cleared.1.get("radius_reply").is_none(), "{cleared:?}");
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
    sms_user(&radius.server, "tia", number);
    let first = radius.request("tia", "2580", None);
    assert_eq!(first.code, "Access-Challenge", "{}", first.printed);
    assert!(first.attribute("Reply-Message").unwrap().contains("+44 ••• ••844"), "{first:?}");
    let done = radius.request("tia", &texted_code(number, 0), Some(&first.state()));
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
    assert_eq!(pushes[0]["actor"], "radius:vpn/pyrad", "audited as the client's, with its NAS-Identifier");

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
    // The server matches numbers by default ("type"), but an auto-mode client shows no challenge:
    // its pushes ask for no number.
    let radius = RadiusServer::start("mode = \"auto\"\nauto_wait_secs = 20\n", "");
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&radius.server, &phone, "val", Some("2580"));
    let answer = std::thread::scope(|scope| {
        let approver = scope.spawn(|| approve_next_push(&phone, None));
        let answer = radius.request("val", "2580", None);
        let request = approver.join().unwrap();
        assert_eq!(request["number_matching"], "off", "{request}");
        answer
    });
    assert_eq!(
        answer.code, "Access-Accept",
        "one request, held until the phone approved: {}",
        answer.printed
    );
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
        static SERVICES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let number = SERVICES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tessera-radius-test-{}-{number}", std::process::id());
        let service = format!(
            "auth required pam_radius_auth.so conf={} client_id=ssh.example\naccount required pam_permit.so\n",
            servers.display()
        );
        std::fs::write(format!("/etc/pam.d/{name}"), service)
            .expect("/etc/pam.d is writable (the suite runs as root)");
        Self { name, _dir: dir }
    }
}

impl PamService {
    /// A login for `username` in a new terminal, at the point where the password was typed.
    fn login(&self, username: &str) -> Terminal {
        let terminal = Terminal::start(&format!("pamtester -v {} {username} authenticate", self.name));
        terminal.wait_for("Password:");
        terminal.type_line("2580");
        terminal
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
    let terminal = pam.login("pam");
    let asked = terminal.wait_for("passcode");
    assert!(
        asked.contains("Enter the passcode from your token."),
        "the Reply-Message is the prompt:\n{asked}"
    );
    terminal.type_line(phone.run(&["code", "pam"]).ok().trim());
    let done = terminal.wait_for("EXIT=");
    assert!(done.contains("successfully authenticated") && done.contains("EXIT=0"), "{done}");

    let wrong = pam.login("pam");
    wrong.wait_for("passcode");
    wrong.type_line("000000");
    let refused = wrong.wait_for("EXIT=");
    assert!(refused.contains("EXIT=1") || !refused.contains("EXIT=0"), "a wrong code is refused:\n{refused}");
    let decisions = audit_reasons(&radius.server, "validate");
    assert!(
        decisions.contains(&"radius:vpn/ssh.example wrong_code".to_owned()),
        "the NAS is named: {decisions:?}"
    );
}

#[test]
fn pam_radius_signs_in_with_a_push_approved_on_the_phone_or_a_code_by_text_message() {
    let kannel = crate::kannel_gateway::kannel();
    let radius = RadiusServer::start(
        "require_message_authenticator = false\n",
        &format!("[push]\nnumber_matching = \"pick\"\n{}", kannel.config_toml("kannel")),
    );
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&radius.server, &phone, "paul", Some("2580"));
    let pam = PamService::new(&radius);
    let pushed = pam.login("paul");
    let asked = pushed.wait_for("press Enter");
    let request = approve_next_push(&phone, Some(&number_in(&asked)));
    assert_eq!(request["service"], "ssh.example", "pam_radius's client_id is the service shown: {request}");
    pushed.type_line("");
    let done = pushed.wait_for("EXIT=");
    assert!(done.contains("successfully authenticated") && done.contains("EXIT=0"), "{done}");

    let number = "+447700900845";
    sms_user(&radius.server, "sara", number);
    let texted = pam.login("sara");
    let asked = texted.wait_for("+44 ••• ••845");
    assert!(asked.contains("Enter the code sent to"), "{asked}");
    texted.type_line(&texted_code(number, 0));
    let done = texted.wait_for("EXIT=");
    assert!(done.contains("successfully authenticated") && done.contains("EXIT=0"), "{done}");
}

#[test]
fn accounting_records_sessions_starting_and_stopping_in_the_audit_log() {
    let (radius, accounting) = RadiusServer::start_with_accounting();
    let session = |status: &str, secret: &str| {
        radclient(
            accounting,
            "acct",
            secret,
            &format!(
                "Acct-Status-Type = {status}, User-Name = \"rita\", Acct-Session-Id = \"8A2F0001\", \
                 NAS-Identifier = \"vpn.example\", Calling-Station-Id = \"198.51.100.7\", \
                 Framed-IP-Address = 10.8.0.7, Class = 0x7374616666, Acct-Session-Time = 3600"
            ),
        )
    };
    for status in ["Start", "Interim-Update", "Stop"] {
        let answer = session(status, SECRET);
        assert_eq!(answer.code, "Accounting-Response", "{status}: {}", answer.printed);
    }
    let forged = session("Stop", "not-the-shared-secret-at-all");
    assert_eq!(forged.code, "none", "another secret: no answer, {}", forged.printed);
    let on_the_access_port = radclient(radius.port, "acct", SECRET, "Acct-Status-Type = Start");
    assert_eq!(on_the_access_port.code, "none", "{}", on_the_access_port.printed);

    let (_, audit) = radius.server.admin("GET", "/api/v1/audit?limit=50", None);
    let sessions: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "radius.accounting")
        .map(|r| format!("{} {} {} {}", r["actor"], r["username"], r["client_ip"], r["reason"]))
        .collect();
    let expected =
        |reason: &str| format!("\"radius:vpn/vpn.example\" \"rita\" \"198.51.100.7\" \"{reason}\"");
    assert!(sessions.contains(&expected("start")) && sessions.contains(&expected("stop")), "{sessions:?}");
    assert_eq!(sessions.len(), 2, "interim updates are not audited: {sessions:?}");
    let dropped = audit_reasons(&radius.server, "radius.drop");
    for reason in ["radius:vpn bad_request_authenticator", "radius:vpn missing_message_authenticator"] {
        assert!(dropped.contains(&reason.to_owned()), "{reason} in {dropped:?}");
    }
}

#[test]
fn a_user_without_a_second_factor_is_sent_to_the_portal_once_the_password_is_right() {
    let radius = RadiusServer::start("", "[portal]\nenabled = true\n");
    let user = json!({ "username": "nora", "password": "2580" });
    assert_eq!(radius.server.admin("POST", "/api/v1/users", Some(user)).0, 201);
    let sent = radius.request("nora", "2580", None);
    assert_eq!(sent.code, "Access-Reject", "{}", sent.printed);
    let message = sent.attribute("Reply-Message").unwrap_or_default();
    assert!(
        message.starts_with("You have no second factor yet: set one up at http://127.0.0.1:")
            && message.ends_with("/portal."),
        "{message}"
    );
    let wrong = radius.request("nora", "0000", None);
    assert_eq!(wrong.code, "Access-Reject");
    assert!(!wrong.printed.contains("portal"), "a wrong password learns nothing: {}", wrong.printed);
}

#[test]
fn pam_radius_signs_in_a_desk_phone_user_who_keys_the_code_shown_into_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let radius = RadiusServer::start(
        "require_message_authenticator = false\n",
        &crate::voice::voice_toml(dir.path(), "", 30),
    );
    let phone = crate::voice::Phone::start();
    crate::voice::desk_phone_user(&radius.server, "dana", &phone.uri);
    let pam = PamService::new(&radius);
    let terminal = pam.login("dana");
    let asked = terminal.wait_for("press Enter").replace('\n', "");
    let code: String =
        asked.split("key in ").nth(1).unwrap_or_default().chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "the prompt shows the code: {asked}");
    phone.terminal.wait_for_times("Call established", 1);
    phone.terminal.type_keys(&code);
    phone.terminal.wait_for_times("terminated", 1);
    terminal.type_line("");
    let done = terminal.wait_for("EXIT=");
    assert!(done.contains("successfully authenticated") && done.contains("EXIT=0"), "{done}");
}
