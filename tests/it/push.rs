//! Push approval end to end: a real server, `tessera push listen` as the device, `tessera push
//! approve/deny`, and a login client calling `validate` and waiting on the transaction.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_core::push::{Answer, Cleartext, Decision, DenyReason, EnrollmentLink, SignedAnswer};

use crate::server_support::{Db, Server};
use crate::support::{Sandbox, lines_of};

/// A `tessera push listen --json` process and the lines it prints.
struct Listener {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Listener {
    fn start(phone: &Sandbox) -> Self {
        let mut child = phone
            .command(&["push", "listen", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = lines_of(child.stdout.take().unwrap());
        Self { child, lines }
    }

    /// The next challenge, within `timeout`.
    #[track_caller]
    fn next(&mut self, timeout: Duration) -> Value {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => serde_json::from_str(&line).unwrap(),
            Err(_) => {
                let _ = self.child.kill();
                let mut stderr = String::new();
                let _ = self.child.stderr.take().unwrap().read_to_string(&mut stderr);
                panic!("no challenge within {timeout:?}; listener stderr: {stderr}");
            }
        }
    }

    fn nothing_within(&self, timeout: Duration) -> bool {
        self.lines.recv_timeout(timeout).is_err()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A user with a push token, and a CLI vault enrolled as its device (from the QR image).
fn enrolled(server: &Server, username: &str) -> Sandbox {
    let phone = Sandbox::with_keystore_vault();
    user_with_device(server, &phone, username, Some("pin1234"));
    phone
}

/// A new user (with `password`, if any) and `phone`'s vault enrolled as their push device.
pub(crate) fn user_with_device(server: &Server, phone: &Sandbox, username: &str, password: Option<&str>) {
    let mut user = json!({ "username": username });
    if let Some(password) = password {
        user["password"] = json!(password);
    }
    assert_eq!(server.admin("POST", "/api/v1/users", Some(user)).0, 201);
    enroll_device(server, phone, username);
}

/// Gives the existing user a push token and enrolls `phone`'s vault as its device.
pub(crate) fn enroll_device(server: &Server, phone: &Sandbox, username: &str) {
    let (status, enrollment) =
        server.admin("POST", &format!("/api/v1/users/{username}/tokens"), Some(json!({ "kind": "push" })));
    assert_eq!(status, 201, "{enrollment}");
    assert!(enrollment["enrollment_uri"].as_str().unwrap().starts_with("tessera://enroll?v=1&"));
    let png = phone.path("enroll.png");
    let bytes =
        data_encoding::BASE64.decode(enrollment["qr_png_base64"].as_str().unwrap().as_bytes()).unwrap();
    std::fs::write(&png, bytes).unwrap();
    let enrolled = phone.run(&["enroll", png.to_str().unwrap(), "--name", "test phone", "--yes"]);
    assert!(enrolled.stderr.contains("Enrolled as a push device"), "{}", enrolled.stderr);
}

fn start_push(server: &Server, username: &str, passcode: &str) -> Value {
    let (status, body) =
        send_validate(server, json!({ "username": username, "password": "pin1234", "passcode": passcode }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "challenge", "{body}");
    body
}

pub(crate) fn send_validate(server: &Server, body: Value) -> (u16, Value) {
    send_validate_as(server, None, body)
}

/// `validate` from a browser-like client, as the application with `key` when given.
pub(crate) fn send_validate_as(server: &Server, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = crate::server_support::client()
        .post(format!("{}/api/v1/validate", server.url))
        .header("user-agent", "Firefox/140 e2e")
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

pub(crate) fn wait_status(server: &Server, transaction: &str, seconds: u64) -> String {
    let (status, body) =
        server.admin("GET", &format!("/api/v1/transactions/{transaction}?wait={seconds}"), None);
    assert_eq!(status, 200, "{body}");
    body["status"].as_str().unwrap().to_owned()
}

pub(crate) fn finish(server: &Server, username: &str, transaction: &str) -> String {
    let (_, body) = send_validate(server, json!({ "username": username, "transaction_id": transaction }));
    body["result"].as_str().unwrap().to_owned()
}

on_both_databases!(approve_with_the_right_number_is_accepted_once, fatigue_limits_hold);

fn approve_with_the_right_number_is_accepted_once(db: Db) {
    let server = Server::start(db, "[push]\nnumber_matching = \"pick\"\n");
    let vpn = server.application("vpn", "ACME VPN");
    let phone = enrolled(&server, "alice");
    let mut listener = Listener::start(&phone);
    let (_, body) = send_validate_as(
        &server,
        Some(&vpn),
        json!({ "username": "alice", "password": "pin1234", "passcode": "x", "client_ip": "203.0.113.9" }),
    );
    assert_eq!(body["result"], "challenge", "a one-character passcode asks the device: {body}");
    let transaction = body["transaction_id"].as_str().unwrap().to_owned();
    let number = body["number"].as_u64().unwrap();
    assert!((10..=99).contains(&number));

    let challenge = listener.next(Duration::from_secs(10));
    assert_eq!(challenge["transaction_id"], transaction.as_str());
    assert_eq!(challenge["username"], "alice");
    assert_eq!(challenge["service"], "ACME VPN");
    assert_eq!(challenge["client_ip"], "203.0.113.9");
    assert_eq!(challenge["user_agent"], "Firefox/140 e2e");
    let choices: Vec<u64> =
        challenge["number_choices"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
    assert_eq!(choices.len(), 3);
    assert!(choices.contains(&number));
    assert!(challenge["expires_at"].as_u64().unwrap() - challenge["created_at"].as_u64().unwrap() <= 120);

    assert_eq!(wait_status(&server, &transaction, 0), "pending");
    assert_eq!(finish(&server, "alice", &transaction), "challenge", "still waiting");
    phone.run(&["push", "approve", &transaction, "--number", &number.to_string()]).ok();
    assert_eq!(wait_status(&server, &transaction, 10), "approved");
    let (_, accepted) = send_validate(&server, json!({ "username": "alice", "transaction_id": transaction }));
    assert_eq!(accepted["result"], "accept", "{accepted}");
    let (_, tokens) = server.admin("GET", "/api/v1/users/alice/tokens", None);
    assert_eq!(accepted["serial"], tokens[0]["serial"], "the approving token is named");
    assert_eq!(finish(&server, "alice", &transaction), "reject", "accepted once only");
    phone
        .run(&["push", "approve", &transaction, "--number", &number.to_string()])
        .fails_with("no pending login request");

    let (_, tokens) = server.admin("GET", "/api/v1/users/alice/tokens", None);
    assert_eq!((tokens[0]["kind"].as_str(), tokens[0]["registered"].as_bool()), (Some("push"), Some(true)));
    assert_eq!(tokens[0]["device_name"], "test phone");
    assert!(tokens[0]["last_used_at"].is_i64(), "the approval's OTP was checked and recorded");
}

fn fatigue_limits_hold(db: Db) {
    let server = Server::start(db, "[push]\nmax_pending = 2\nmax_per_window = 3\n");
    let phone = enrolled(&server, "bob");
    let refused_reason = |server: &Server| {
        let (status, body) =
            send_validate(server, json!({ "username": "bob", "password": "pin1234", "passcode": "" }));
        assert_eq!((status, body["reason"].as_str()), (429, Some("rate_limited")), "{body}");
        let entries =
            server.admin("GET", "/api/v1/audit?username=bob&action=push.request&result=reject", None).1;
        entries[0]["reason"].as_str().unwrap().to_owned()
    };
    let first = start_push(&server, "bob", "");
    let second = start_push(&server, "bob", "");
    assert_eq!(refused_reason(&server), "push_pending_limit", "two unanswered pushes at most");

    phone.run(&["push", "deny", first["transaction_id"].as_str().unwrap()]).ok();
    let third = start_push(&server, "bob", "");
    for push in [&second, &third] {
        phone.run(&["push", "deny", push["transaction_id"].as_str().unwrap()]).ok();
    }
    assert_eq!(
        refused_reason(&server),
        "push_window_limit",
        "three pushes since the last success, none pending"
    );
}

#[test]
fn wrong_numbers_denials_and_not_me() {
    let hook = Webhook::start();
    let server = Server::start(
        Db::Sqlite,
        &format!("[push]\nwebhook_url = \"{}\"\nmute_secs = 600\nnumber_matching = \"pick\"\n", hook.url),
    );
    let phone = enrolled(&server, "carol");

    let push = start_push(&server, "carol", "");
    let transaction = push["transaction_id"].as_str().unwrap();
    let number = push["number"].as_u64().unwrap();
    let challenge = phone_challenge(&phone, transaction);
    let wrong = challenge["number_choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .find(|n| *n != number)
        .unwrap();
    phone.run(&["push", "approve", transaction, "--number", &wrong.to_string()]).fails_with("did not match");
    assert_eq!(wait_status(&server, transaction, 5), "denied", "a wrong number denies the request");
    assert_eq!(finish(&server, "carol", transaction), "reject");
    phone.run(&["push", "approve", transaction, "--number", "150"]).fails_with("no pending login request");

    let push = start_push(&server, "carol", "");
    let transaction = push["transaction_id"].as_str().unwrap();
    let denied = phone.run(&["push", "deny", transaction, "--reason", "cancelled"]);
    assert!(denied.stderr.contains("Denied"), "{}", denied.stderr);
    assert_eq!(wait_status(&server, transaction, 5), "denied");
    assert_eq!(finish(&server, "carol", transaction), "reject");

    let push = start_push(&server, "carol", "");
    let transaction = push["transaction_id"].as_str().unwrap();
    phone.run(&["push", "deny", transaction, "--reason", "not-me"]).ok();
    let alert = hook.next(Duration::from_secs(10));
    assert_eq!(
        (alert["event"].as_str(), alert["username"].as_str()),
        (Some("push.fraud_report"), Some("carol"))
    );
    assert_eq!(alert["transaction_id"], transaction);
    let (status, muted) =
        send_validate(&server, json!({ "username": "carol", "password": "pin1234", "passcode": "" }));
    assert_eq!((status, muted["result"].as_str()), (429, Some("reject")), "pushes are muted after 'not me'");
    let audit = server.admin("GET", "/api/v1/audit?username=carol&limit=100", None).1;
    let reasons: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["reason"].as_str()).collect();
    for expected in ["wrong_number", "cancelled", "not-me", "push_muted"] {
        assert!(reasons.contains(&expected), "{expected} in {reasons:?}");
    }
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "push.fraud_report" && e["result"] == "alert")
    );
}

/// The challenge the device would see for a transaction (through `tessera push listen`).
fn phone_challenge(phone: &Sandbox, transaction: &str) -> Value {
    let mut listener = Listener::start(phone);
    loop {
        let challenge = listener.next(Duration::from_secs(10));
        if challenge["transaction_id"] == transaction {
            return challenge;
        }
    }
}

#[test]
fn an_offline_device_gets_its_challenge_on_reconnect_without_repeats() {
    let server = Server::start(Db::Sqlite, "");
    let phone = enrolled(&server, "dave");
    let missed = start_push(&server, "dave", "");
    let mut listener = Listener::start(&phone);
    let first = listener.next(Duration::from_secs(10));
    assert_eq!(
        first["transaction_id"], missed["transaction_id"],
        "sent while the device was away, delivered on connect"
    );
    drop(listener);

    let mut listener = Listener::start(&phone);
    assert!(
        listener.nothing_within(Duration::from_millis(1500)),
        "a reconnect does not repeat what was delivered"
    );
    let next = start_push(&server, "dave", "");
    assert_eq!(listener.next(Duration::from_secs(10))["transaction_id"], next["transaction_id"]);
}

#[test]
fn a_restart_closes_device_channels_at_once_and_devices_come_back() {
    let mut server = Server::start(Db::Sqlite, "");
    let phone = enrolled(&server, "hank");
    let mut listener = Listener::start(&phone);
    let first = start_push(&server, "hank", "");
    assert_eq!(listener.next(Duration::from_secs(10))["transaction_id"], first["transaction_id"]);
    let stopping = Instant::now();
    server.restart_in_place();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "an open device channel held the shutdown for {:?}",
        stopping.elapsed()
    );
    let second = start_push(&server, "hank", "");
    assert_eq!(
        listener.next(Duration::from_secs(15))["transaction_id"],
        second["transaction_id"],
        "the device reconnected by itself"
    );
}

#[test]
fn expired_requests_and_enrollment_links_are_refused() {
    let server = Server::start(Db::Sqlite, "[push]\nexpiry_secs = 10\nenrollment_ttl_secs = 10\n");
    let phone = enrolled(&server, "erin");
    let (_, later) = server.admin("POST", "/api/v1/users/erin/tokens", Some(json!({ "kind": "push" })));
    let push = start_push(&server, "erin", "");
    let transaction = push["transaction_id"].as_str().unwrap();
    let challenge = phone_challenge(&phone, transaction);
    assert_eq!(challenge["expires_at"].as_u64().unwrap() - challenge["created_at"].as_u64().unwrap(), 10);
    std::thread::sleep(Duration::from_millis(11_500));
    assert_eq!(wait_status(&server, transaction, 0), "expired");
    phone
        .run(&["push", "approve", transaction, "--number", &push["number"].to_string()])
        .fails_with("no pending login request");
    assert_eq!(finish(&server, "erin", transaction), "reject");
    let stale = Sandbox::with_keystore_vault();
    stale
        .run(&["enroll", later["enrollment_uri"].as_str().unwrap(), "--yes"])
        .fails_with("invalid, expired or already used");
}

#[test]
fn nopush_and_codes_from_the_push_token() {
    let server = Server::start(Db::Sqlite, "");
    let phone = enrolled(&server, "frank");
    let (_, body) =
        send_validate(&server, json!({ "username": "frank", "password": "pin1234-nopush", "passcode": "" }));
    assert_eq!((body["result"].as_str(), body.get("transaction_id")), (Some("challenge"), None), "{body}");
    let code = phone.run(&["code", "tessera"]).ok();
    let (_, accepted) = send_validate(
        &server,
        json!({ "username": "frank", "password": "pin1234-nopush", "passcode": code.trim() }),
    );
    assert_eq!(accepted["result"], "accept", "the push token's TOTP works as a typed passcode: {accepted}");
    let (_, wrong_pin) =
        send_validate(&server, json!({ "username": "frank", "password": "nope-nopush", "passcode": "" }));
    assert_eq!(wrong_pin["result"], "reject");
    let listed = phone.run(&["list"]).ok();
    assert!(listed.contains("push (PUSH-"), "{listed}");
}

#[test]
fn a_device_pin_guards_answers_and_the_push_tokens_codes() {
    let server = Server::start(Db::Sqlite, "");
    let phone = enrolled(&server, "gina");
    phone.run_env(&["push", "pin", "set"], &[("TESSERA_NEW_PIN", "246")]).fails_with("4 to 64 characters");
    phone.run_env(&["push", "pin", "set"], &[("TESSERA_NEW_PIN", "2468")]).ok();

    let push = start_push(&server, "gina", "");
    let transaction = push["transaction_id"].as_str().unwrap();
    let approve = ["push", "approve", transaction, "--number", &push["number"].to_string()];
    phone.run(&approve).fails_with("asks for its PIN before answering");
    phone.run_env(&approve, &[("TESSERA_PIN", "1111")]).fails_with("wrong PIN; 9 attempts left");
    phone.run_env(&approve, &[("TESSERA_PIN", "1111")]).fails_with("wrong PIN; 8 attempts left");
    assert_eq!(wait_status(&server, transaction, 0), "pending", "a refused PIN sends no answer");
    phone.run_env(&approve, &[("TESSERA_PIN", "2468")]).ok();
    assert_eq!(finish(&server, "gina", transaction), "accept");

    phone.run(&["code", "tessera"]).fails_with("asks for its PIN");
    phone.run(&["export", "--otpauth"]).fails_with("asks for its PIN");
    let code = phone.run_env(&["code", "tessera"], &[("TESSERA_PIN", "2468")]).ok();
    assert_eq!(code.trim().len(), 6);

    phone
        .run_env(&["push", "pin", "clear"], &[("TESSERA_PIN", "8642")])
        .fails_with("wrong PIN; 9 attempts left");
    phone.run_env(&["push", "pin", "set"], &[("TESSERA_PIN", "2468"), ("TESSERA_NEW_PIN", "13579")]).ok();
    phone.run_env(&["code", "tessera"], &[("TESSERA_PIN", "2468")]).fails_with("wrong PIN");
    phone.run_env(&["push", "pin", "clear"], &[("TESSERA_PIN", "13579")]).ok();
    phone.run(&["code", "tessera"]).ok();
    phone.run(&["push", "pin", "clear"]).fails_with("has no answer PIN");
}

#[test]
fn enrollment_links_work_once() {
    let server = Server::start(Db::Sqlite, "");
    server.admin("POST", "/api/v1/users", Some(json!({ "username": "gina" })));
    let (_, enrollment) = server.admin("POST", "/api/v1/users/gina/tokens", Some(json!({ "kind": "push" })));
    let link = enrollment["enrollment_uri"].as_str().unwrap();
    let first = Sandbox::with_keystore_vault();
    let unconfirmed = first.run(&["enroll", link]);
    assert!(
        unconfirmed
            .stderr
            .contains(&format!("Server:  127.0.0.1:{}", server.url.rsplit(':').next().unwrap()))
            && unconfirmed.stderr.contains("Account: gina"),
        "the server and account are shown first: {}",
        unconfirmed.stderr
    );
    unconfirmed.fails_with("pass --yes");
    let audit = server.admin("GET", "/api/v1/audit?action=push.register", None).1;
    assert_eq!(audit.as_array().unwrap().len(), 0, "nothing was sent before the confirmation: {audit}");
    first.run(&["enroll", link, "--yes"]).ok();
    let second = Sandbox::with_keystore_vault();
    second.run(&["enroll", link, "--yes"]).fails_with("invalid, expired or already used");
    let mut forged = EnrollmentLink::parse(link).unwrap();
    forged.code = tessera_core::secret::SecretString::new("A".repeat(26));
    second.run(&["enroll", forged.to_uri().expose(), "--yes"]).fails_with("invalid, expired or already used");
    let audit = server.admin("GET", "/api/v1/audit?action=push.register", None).1;
    assert!(audit.as_array().unwrap().iter().any(|e| e["result"] == "ok"));
    assert!(audit.as_array().unwrap().iter().any(|e| e["reason"] == "bad_credential"));
}

#[test]
fn number_matching_by_typing_and_off() {
    let typed = Server::start(Db::Sqlite, "[push]\nnumber_matching = \"type\"\n");
    let phone = enrolled(&typed, "hana");
    let push = start_push(&typed, "hana", "");
    let transaction = push["transaction_id"].as_str().unwrap();
    let challenge = phone_challenge(&phone, transaction);
    assert_eq!(
        (challenge["number_matching"].as_str(), challenge["number_choices"].as_array().map(Vec::len)),
        (Some("type"), Some(0))
    );
    phone.run(&["push", "approve", transaction]).fails_with("needs --number");
    phone.run(&["push", "approve", transaction, "--number", &push["number"].to_string()]).ok();
    assert_eq!(finish(&typed, "hana", transaction), "accept");

    let off = Server::start(Db::Sqlite, "[push]\nnumber_matching = \"off\"\n");
    let phone = enrolled(&off, "ivan");
    let push = start_push(&off, "ivan", "");
    assert!(push.get("number").is_none());
    phone.run(&["push", "approve", push["transaction_id"].as_str().unwrap()]).ok();
    assert_eq!(finish(&off, "ivan", push["transaction_id"].as_str().unwrap()), "accept");
}

/// A push device registered by the test itself, to send what a well-behaved device never sends.
pub(crate) struct TestDevice {
    pub device: tessera_client::Device,
    /// The approve-with-OTP seed.
    pub seed: tessera_core::secret::SecretBytes,
    /// The server's push key (One Swipe codes name it).
    pub server_key: tessera_core::push::PublicKey,
}

/// A new user (no password) with a [`TestDevice`].
pub(crate) fn registered_device(
    server: &Server,
    runtime: &tokio::runtime::Runtime,
    name: &str,
) -> TestDevice {
    assert_eq!(server.admin("POST", "/api/v1/users", Some(json!({ "username": name }))).0, 201);
    register_device_for(server, runtime, name)
}

/// A new push token for the existing user `name`, registered as a [`TestDevice`].
pub(crate) fn register_device_for(
    server: &Server,
    runtime: &tokio::runtime::Runtime,
    name: &str,
) -> TestDevice {
    let (_, enrollment) =
        server.admin("POST", &format!("/api/v1/users/{name}/tokens"), Some(json!({ "kind": "push" })));
    let link = EnrollmentLink::parse(enrollment["enrollment_uri"].as_str().unwrap()).unwrap();
    let (key, registered) =
        runtime.block_on(tessera_client::register(&link, None, None, Cleartext::Refuse)).unwrap();
    let device = tessera_client::Device::from_parts(
        &link.server,
        &registered.serial,
        &key.seed(),
        registered.server_public_key,
    )
    .unwrap();
    let seed = tessera_core::secret::SecretBytes::from_base32(registered.totp_secret.expose()).unwrap();
    TestDevice { device, seed, server_key: registered.server_public_key }
}

#[test]
fn replayed_forged_and_mismatched_answers_are_refused() {
    let server = Server::start(Db::Sqlite, "[push]\nnumber_matching = \"off\"\n");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let devices: Vec<_> =
        ["jack", "kate"].iter().map(|name| registered_device(&server, &runtime, name)).collect();
    let otp = |seed: &tessera_core::secret::SecretBytes| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        tessera_core::secret::SecretString::new(
            tessera_core::otp::totp(
                seed,
                tessera_core::otp::Algorithm::Sha1,
                tessera_core::otp::Digits::SIX,
                tessera_core::otp::Period::THIRTY_SECONDS,
                now,
            )
            .expose()
            .to_owned(),
        )
    };
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (jack, jack_seed) = (&devices[0].device, &devices[0].seed);
    let kate = &devices[1].device;

    let (_, push) = send_validate(&server, json!({ "username": "jack", "passcode": "" }));
    let transaction = push["transaction_id"].as_str().unwrap();
    let challenge = runtime.block_on(jack.find(transaction)).unwrap().unwrap();
    let refusal = |answer: SignedAnswer, device: &tessera_client::Device| match runtime
        .block_on(device.answer(answer))
    {
        Err(tessera_client::ClientError::Refused { status, .. }) => status,
        other => panic!("expected a refusal, got {other:?}"),
    };

    let approve = Answer::to(&challenge, Decision::Approve, None, Some(otp(jack_seed)), now()).unwrap();
    let forged = approve.clone().sign(kate.key());
    assert_eq!(refusal(forged, jack), 401, "signed by another device's key");
    let mismatched = Answer { serial: kate.serial().to_owned(), ..approve.clone() }.sign(kate.key());
    assert_eq!(refusal(mismatched, kate), 404, "another user's device cannot answer jack's request");
    let mut bad_otp = approve.clone();
    bad_otp.otp = Some(tessera_core::secret::SecretString::new("000000".into()));
    let old = Answer { answered_at: now() - 3600, ..approve.clone() }.sign(jack.key());
    assert_eq!(refusal(old, jack), 401, "answers dated long ago are refused");

    let signed = approve.sign(jack.key());
    let receipt = runtime.block_on(jack.answer(signed.clone())).unwrap();
    assert_eq!(receipt.status, tessera_client::AnswerStatus::Approved);
    assert_eq!(refusal(signed, jack), 409, "a replayed answer is refused");

    let (_, push) = send_validate(&server, json!({ "username": "jack", "passcode": "" }));
    let challenge = runtime.block_on(jack.find(push["transaction_id"].as_str().unwrap())).unwrap().unwrap();
    let receipt =
        runtime
            .block_on(jack.answer(
                Answer { transaction_id: challenge.transaction_id.clone(), ..bad_otp }.sign(jack.key()),
            ))
            .unwrap();
    assert_eq!(
        receipt.status,
        tessera_client::AnswerStatus::Denied,
        "a wrong one-time code in an approval denies the request"
    );
    let deny = Answer::to(&challenge, Decision::Deny(DenyReason::Cancelled), None, None, now())
        .unwrap()
        .sign(jack.key());
    assert_eq!(refusal(deny, jack), 409);
    let audit = server.admin("GET", "/api/v1/audit?action=push.answer&limit=100", None).1;
    let reasons: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["reason"].as_str()).collect();
    for expected in
        ["bad_signature", "unknown_transaction", "stale_answer", "already_answered", "bad_otp", "approved"]
    {
        assert!(reasons.contains(&expected), "{expected} in {reasons:?}");
    }
}

#[test]
fn two_replicas_on_postgres_notify_each_other() {
    let db = Db::fresh_postgres();
    let device_side = Server::start(db.clone(), "");
    let login_side = Server::start(db, "");
    let phone = enrolled(&device_side, "lena");
    let mut listener = Listener::start(&phone);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let push = start_push(&login_side, "lena", "");
    let transaction = push["transaction_id"].as_str().unwrap().to_owned();
    let challenge = listener.next(Duration::from_secs(10));
    assert_eq!(challenge["transaction_id"], transaction.as_str());
    assert!(started.elapsed() < Duration::from_secs(5), "delivered by NOTIFY, not by the 30-second re-check");
    let number = push["number"].to_string();
    let waiter = {
        let url = format!("{}/api/v1/transactions/{transaction}?wait=20", login_side.url);
        std::thread::spawn(move || {
            let response: Value = crate::server_support::client().get(url).send().unwrap().json().unwrap();
            response["status"].as_str().unwrap().to_owned()
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    phone.run(&["push", "approve", &transaction, "--number", &number]).ok();
    assert_eq!(
        waiter.join().unwrap(),
        "approved",
        "the other replica's waiting login client heard the approval"
    );
    assert_eq!(finish(&login_side, "lena", &transaction), "accept");
}

/// A one-request-at-a-time HTTP receiver standing in for a SIEM webhook.
struct Webhook {
    url: String,
    bodies: mpsc::Receiver<Value>,
}

impl Webhook {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let (send, bodies) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok() {
                    let _ = send.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
                }
                let _ = reader.get_mut().write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
            }
        });
        Self { url, bodies }
    }

    fn next(&self, timeout: Duration) -> Value {
        self.bodies.recv_timeout(timeout).expect("the webhook was called")
    }
}
