//! Codes by text message through a real gateway: `tessera-server` → Kannel's `smsbox`
//! (`/cgi-bin/sendsms`) → `bearerbox` → Kannel's fake SMSC, which prints every message it gets.
//! The test reads each code from what the SMSC received, as the user reads their phone, and logs
//! in with it: a real-time code inside its challenge, the pre-loaded chain across logins, three
//! codes per message, the Daycode reused within its period, "send me new codes", and a first
//! gateway that is down (the second one takes the message). Codes through an SMSC over SMPP 3.4
//! (Net::SMPP's server role), its refusals and its dropped sessions. And codes by email through a
//! real SMTP server that requires STARTTLS and AUTH.

use std::time::Duration;

use serde_json::{Value, json};

use crate::kannel_gateway::kannel;
use crate::server_support::{Db, Server};
use crate::smpp_smsc::{SYSTEM_ID, smpp_smsc};
use crate::smtp_server::smtp_server;
use crate::twilio_standin::{ACCOUNT_SID, TwilioStandIn, sign};

/// One user per scenario, each with their own phone number (the SMSC is shared by the suite).
fn sms_user(server: &Server, username: &str, phone: &str, mode: &str) -> String {
    let (status, body) = server.admin(
        "POST",
        "/api/v1/users",
        Some(json!({ "username": username, "password": "2580", "phone": phone })),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.admin(
        "POST",
        &format!("/api/v1/users/{username}/tokens"),
        Some(json!({ "kind": "sms", "mode": mode })),
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        body.get("otpauth_uri").is_none() && body.get("qr_png_base64").is_none(),
        "the seed stays on the server: {body}"
    );
    body["serial"].as_str().unwrap().to_owned()
}

/// A server whose gateways are a closed port first, then Kannel; no resend cool-down, so one
/// scenario can ask for new codes right after a login.
fn server_with_kannel() -> Server {
    let kannel = kannel();
    let dead_port = crate::server_support::free_port();
    let toml = format!(
        "[delivery.limits]\ncooldown_secs = 0\nper_user_per_window = 20\n\n\
         [[delivery.sms_gateway]]\nid = \"down\"\nkind = \"http\"\nmethod = \"GET\"\n\
         url = \"http://127.0.0.1:{dead_port}/cgi-bin/sendsms\"\nparams = {{ to = \"{{phone}}\", text = \"{{message}}\" }}\n\
         timeout_secs = 2\n\n{}",
        kannel.config_toml("kannel")
    );
    Server::start(Db::Sqlite, &toml)
}

/// The six-digit codes in a text message, in order.
fn codes_in(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_digit()).filter(|word| word.len() == 6).map(str::to_owned).collect()
}

fn login(server: &Server, username: &str, passcode: &str) -> Value {
    let (status, body) = server.validate(username, Some("2580"), passcode);
    assert_eq!(status, 200, "{body}");
    body
}

fn finish(server: &Server, username: &str, transaction_id: &str, passcode: &str) -> Value {
    let (status, body) = server.post(
        "/api/v1/validate",
        &json!({ "username": username, "transaction_id": transaction_id, "passcode": passcode }),
    );
    assert_eq!(status, 200, "{body}");
    body
}

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn every_sms_mode_logs_in_with_codes_read_from_kannels_smsc() {
    let kannel = kannel();
    let server = server_with_kannel();

    let phone = "+447700900101";
    sms_user(&server, "rita", phone, "realtime");
    let before = kannel.messages_to(phone).len();
    let challenge = login(&server, "rita", "");
    assert_eq!(
        (challenge["result"].as_str(), challenge["channel"].as_str()),
        (Some("challenge"), Some("sms")),
        "{challenge}"
    );
    assert_eq!(challenge["destination"], "+44 ••• ••101");
    assert!(challenge["expires_at"].as_i64().is_some(), "{challenge}");
    let transaction = challenge["transaction_id"].as_str().unwrap();
    let message = kannel.wait_for_message(phone, before, WAIT);
    assert!(message.text.contains("It expires in 5 min"), "{}", message.text);
    let code = codes_in(&message.text).remove(0);
    assert_eq!(login(&server, "rita", &code)["result"], "reject", "a real-time code needs its challenge");
    assert_eq!(finish(&server, "rita", transaction, &code)["result"], "accept");
    assert_eq!(finish(&server, "rita", transaction, &code)["result"], "reject", "once");

    let phone = "+447700900102";
    let before = kannel.messages_to(phone).len();
    sms_user(&server, "pete", phone, "preload");
    let mut message = kannel.wait_for_message(phone, before, WAIT);
    for round in 0..3 {
        let code = codes_in(&message.text).remove(0);
        assert_eq!(login(&server, "pete", &code)["result"], "accept", "login {round} with {}", message.text);
        message = kannel.wait_for_message(phone, before + round + 1, WAIT);
    }
    let unused = codes_in(&message.text).remove(0);
    let fresh = login(&server, "pete", "sms");
    assert_eq!(fresh["result"], "challenge", "{fresh}");
    let renewed = kannel.wait_for_message(phone, before + 4, WAIT);
    assert_eq!(login(&server, "pete", &unused)["result"], "reject", "new codes void the unused one");
    assert_eq!(login(&server, "pete", &codes_in(&renewed.text).remove(0))["result"], "accept");

    let phone = "+447700900103";
    let before = kannel.messages_to(phone).len();
    sms_user(&server, "tess", phone, "preload3");
    let message = kannel.wait_for_message(phone, before, WAIT);
    let three = codes_in(&message.text);
    assert_eq!(three.len(), 3, "{}", message.text);
    assert!(message.text.chars().count() <= 160, "one segment: {}", message.text);
    for code in &three {
        assert_eq!(login(&server, "tess", code)["result"], "accept");
    }
    let next = kannel.wait_for_message(phone, before + 1, WAIT);
    assert_eq!(codes_in(&next.text).len(), 3, "the next three when the last was used");

    let phone = "+447700900104";
    let before = kannel.messages_to(phone).len();
    sms_user(&server, "dora", phone, "daycode");
    let message = kannel.wait_for_message(phone, before, WAIT);
    let daycode = codes_in(&message.text).remove(0);
    assert_eq!(login(&server, "dora", &daycode)["result"], "accept");
    assert_eq!(login(&server, "dora", &daycode)["result"], "accept", "reusable within its period");

    let (status, deliveries) = server.admin("GET", "/api/v1/deliveries?limit=50", None);
    assert_eq!(status, 200, "{deliveries}");
    let rows = deliveries.as_array().unwrap();
    assert!(rows.iter().all(|row| row["status"] == "sent" && row["gateway"] == "kannel"), "{deliveries}");
    assert!(
        rows.iter().any(|row| row["error"].as_str().is_none()) && !deliveries.to_string().contains(&daycode),
        "no code is stored or shown: {deliveries}"
    );
    let logs = server.logs();
    assert!(logs.contains("gateway refused a message; trying the next"), "the dead gateway was tried first");
    assert!(!logs.contains(&daycode), "no code in the logs");
}

#[test]
fn an_administrator_enables_email_and_the_user_logs_in_with_the_code_from_a_real_smtp_server() {
    let mail = smtp_server();
    let server =
        Server::start(Db::Sqlite, &format!("[delivery.limits]\ncooldown_secs = 0\n\n{}", mail.config_toml()));
    let (status, body) = server.admin(
        "POST",
        "/api/v1/users",
        Some(json!({ "username": "emma", "password": "2580", "email": "emma@example.com" })),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        server.admin("PATCH", "/api/v1/users/emma", Some(json!({ "delivery_preference": "email" })));
    assert_eq!((status, body["delivery_preference"].as_str()), (200, Some("email")), "{body}");
    let (status, body) =
        server.admin("POST", "/api/v1/users/emma/tokens", Some(json!({ "kind": "email", "ttl_secs": 120 })));
    assert_eq!(status, 201, "{body}");

    let before = mail.messages_to("emma@example.com").len();
    let challenge = login(&server, "emma", "");
    assert_eq!(
        (challenge["channel"].as_str(), challenge["destination"].as_str()),
        (Some("email"), Some("e•••@example.com")),
        "{challenge}"
    );
    let message = mail.wait_for_message("emma@example.com", before, WAIT);
    assert!(message.contains("Subject: Your Tessera passcode"), "{message}");
    let (_, body) = message.split_once("\r\n\r\n").unwrap();
    let code = codes_in(body).remove(0);
    assert!(body.contains("It expires in 2 min"), "{body}");
    let transaction = challenge["transaction_id"].as_str().unwrap();
    assert_eq!(finish(&server, "emma", transaction, &code)["result"], "accept");

    let (status, deliveries) = server.admin("GET", "/api/v1/deliveries?username=emma", None);
    assert_eq!(status, 200);
    assert_eq!(deliveries[0]["status"], "sent", "{deliveries}");
    assert!(deliveries[0]["provider_message_id"].as_str().unwrap().contains("queued as E2E"), "{deliveries}");
}

#[test]
fn the_help_desk_issues_a_temporary_passcode_that_works_its_number_of_uses() {
    let server = Server::start(Db::Sqlite, "");
    let (status, body) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": "hugo", "password": "2580" })));
    assert_eq!(status, 201, "{body}");
    let (status, issued) = server.admin(
        "POST",
        "/api/v1/users/hugo/temporary-passcode",
        Some(json!({ "valid_hours": 4, "max_uses": 2 })),
    );
    assert_eq!(status, 201, "{issued}");
    let passcode = issued["passcode"].as_str().unwrap();
    assert!(
        issued["expires_at"].as_i64().unwrap() > crate::support::unix_now() as i64 + 3 * 3600,
        "{issued}"
    );
    assert_eq!(login(&server, "hugo", passcode)["result"], "accept");
    assert_eq!(login(&server, "hugo", passcode)["result"], "accept");
    assert_eq!(login(&server, "hugo", passcode)["result"], "reject", "two uses only");
    let (_, tokens) = server.admin("GET", "/api/v1/users/hugo/tokens", None);
    assert_eq!((tokens[0]["kind"].as_str(), tokens[0]["uses"].as_u64()), (Some("temp"), Some(2)), "{tokens}");
    assert!(!server.logs().contains(passcode), "the passcode is not logged");
    let (status, body) =
        server.admin("POST", "/api/v1/users/hugo/temporary-passcode", Some(json!({ "valid_hours": 0 })));
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_input")), "{body}");
}

#[test]
fn a_crash_while_a_message_is_being_sent_loses_it_not_and_sends_it_once() {
    let kannel = kannel();
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_url = format!("http://{}/send", hanging.local_addr().unwrap());
    let (accepted, taken) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in hanging.incoming().map_while(Result::ok) {
            held.push(connection);
            let _ = accepted.send(());
        }
    });
    let limits = "[delivery]\nclaim_secs = 4\n\n[delivery.limits]\ncooldown_secs = 0\n\n";
    let hanging_gateway = format!(
        "[[delivery.sms_gateway]]\nid = \"hanging\"\nkind = \"http\"\nmethod = \"GET\"\nurl = \"{hanging_url}\"\n\
         params = {{ to = \"{{phone}}\", text = \"{{message}}\" }}\ntimeout_secs = 3\n"
    );
    let mut server = Server::start(Db::Sqlite, &format!("{limits}{hanging_gateway}"));
    let phone = "+447700900105";
    sms_user(&server, "kim", phone, "realtime");
    let before = kannel.messages_to(phone).len();
    let challenge = login(&server, "kim", "");
    taken.recv_timeout(WAIT).expect("the sender took the message to the gateway");
    server.crash();

    server.start_again_with(&format!(
        "[delivery.limits]\ncooldown_secs = 0\n\n{}",
        kannel.config_toml("kannel")
    ));
    let message = kannel.wait_for_message(phone, before, WAIT);
    let code = codes_in(&message.text).remove(0);
    let transaction = challenge["transaction_id"].as_str().unwrap();
    assert_eq!(finish(&server, "kim", transaction, &code)["result"], "accept");
    let (_, deliveries) = server.admin("GET", "/api/v1/deliveries?username=kim", None);
    assert_eq!(deliveries[0]["status"], "sent", "{deliveries}");
    assert!(
        deliveries[0]["attempts"].as_u64().is_some_and(|tries| tries >= 2),
        "the dead server's try, then the restarted one's (a slow machine may add a timed-out try): {deliveries}"
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        kannel.messages_to(phone).len(),
        before + 1,
        "sent once, after the claim of the dead server ran out"
    );
}

#[test]
fn an_administrator_tests_each_gateway_and_sends_a_users_codes_again() {
    let kannel = kannel();
    let server = server_with_kannel();
    let phone = "+447700900106";
    let before = kannel.messages_to(phone).len();
    let (status, tested) = server.admin("POST", "/api/v1/gateways/kannel/test", Some(json!({ "to": phone })));
    assert_eq!((status, tested["accepted"].as_bool()), (200, Some(true)), "{tested}");
    assert!(tested["answer"].as_str().unwrap().starts_with("202: 0: Accepted for delivery"), "{tested}");
    let test_message = kannel.wait_for_message(phone, before, WAIT);
    assert!(
        test_message.text.contains("test message") && codes_in(&test_message.text).is_empty(),
        "{}",
        test_message.text
    );
    let (status, tested) = server.admin("POST", "/api/v1/gateways/down/test", Some(json!({ "to": phone })));
    assert_eq!((status, tested["accepted"].as_bool()), (200, Some(false)), "{tested}");
    assert!(tested["answer"].as_str().unwrap().starts_with("gateway down:"), "{tested}");
    let (status, _) = server.admin("POST", "/api/v1/gateways/nowhere/test", Some(json!({ "to": phone })));
    assert_eq!(status, 404);
    let (status, refused) =
        server.admin("POST", "/api/v1/gateways/kannel/test", Some(json!({ "to": "07700 900106" })));
    assert_eq!(status, 422, "{refused}");

    let serial = sms_user(&server, "yara", phone, "preload");
    let first = kannel.wait_for_message(phone, before + 1, WAIT);
    let (status, sent) = server.admin("POST", &format!("/api/v1/tokens/{serial}/send"), None);
    assert_eq!((status, sent["destination"].as_str()), (200, Some("+44 ••• ••106")), "{sent}");
    let again = kannel.wait_for_message(phone, before + 2, WAIT);
    assert_eq!(login(&server, "yara", &codes_in(&first.text)[0])["result"], "reject", "the resend voided it");
    assert_eq!(login(&server, "yara", &codes_in(&again.text)[0])["result"], "accept");
}

#[test]
fn a_twilio_compatible_gateway_sends_and_its_signed_reports_are_recorded_and_forged_ones_refused() {
    let twilio = TwilioStandIn::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        Db::Sqlite,
        &format!(
            "[delivery.limits]\ncooldown_secs = 0\n\n{}",
            twilio.config_toml(&dir.path().join("twilio.token"))
        ),
    );
    sms_user(&server, "tina", "+447700900107", "realtime");
    let challenge = login(&server, "tina", "");
    let deadline = std::time::Instant::now() + WAIT;
    let message = loop {
        if let Some(message) = twilio.accepted().into_iter().find(|m| m.to == "+447700900107") {
            break message;
        }
        assert!(std::time::Instant::now() < deadline, "Twilio got no message");
        std::thread::sleep(Duration::from_millis(20));
    };
    let code = codes_in(&message.body).remove(0);
    assert_eq!(
        finish(&server, "tina", challenge["transaction_id"].as_str().unwrap(), &code)["result"],
        "accept"
    );
    let status_of = |username: &str| {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let (_, deliveries) =
                server.admin("GET", &format!("/api/v1/deliveries?username={username}"), None);
            let status = deliveries[0]["status"].as_str().unwrap_or_default().to_owned();
            if status != "sent" && status != "queued" && status != "sending"
                || std::time::Instant::now() > deadline
            {
                return deliveries[0].clone();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let delivered = status_of("tina");
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert!(delivered["provider_message_id"].as_str().unwrap().starts_with("SM"), "{delivered}");

    sms_user(&server, "ugo", "+447700900999", "realtime");
    login(&server, "ugo", "");
    let undelivered = status_of("ugo");
    assert_eq!(undelivered["status"], "failed", "{undelivered}");
    assert!(undelivered["error"].as_str().unwrap().contains("undelivered (error 30003)"), "{undelivered}");

    let callback = format!("{}/api/v1/sms/twilio/status", server.url);
    let params: Vec<(String, String)> = [
        ("AccountSid", ACCOUNT_SID),
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("MessageStatus", "failed"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let client = reqwest::blocking::Client::new();
    let forged = client
        .post(&callback)
        .header("X-Twilio-Signature", sign("https://elsewhere.example/", &params))
        .form(&params)
        .send()
        .unwrap();
    assert_eq!(forged.status(), 401, "a signature for another URL");
    let unsigned = client.post(&callback).form(&params).send().unwrap();
    assert_eq!(unsigned.status(), 401, "no signature");
    assert_eq!(status_of("tina")["status"], "delivered", "a refused callback changes nothing");
}

#[test]
fn send_limits_hold_across_two_replicas_and_a_code_sent_by_one_completes_on_the_other() {
    let kannel = kannel();
    let db = Db::fresh_postgres();
    let toml = format!(
        "[delivery.limits]\ncooldown_secs = 0\nper_user_per_window = 2\n\n{}",
        kannel.config_toml("kannel")
    );
    let (a, b) = (Server::start(db.clone(), &toml), Server::start(db, &toml));
    let phone = "+447700900108";
    let before = kannel.messages_to(phone).len();
    sms_user(&a, "vera", phone, "realtime");
    let first = login(&a, "vera", "");
    let second = login(&b, "vera", "");
    assert_eq!((first["result"].as_str(), second["result"].as_str()), (Some("challenge"), Some("challenge")));
    let (status, third) = a.validate("vera", Some("2580"), "sms");
    assert_eq!(
        (status, third["reason"].as_str()),
        (429, Some("rate_limited")),
        "the window is shared: {third}"
    );
    kannel.wait_for_message(phone, before + 1, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        kannel.messages_to(phone).len(),
        before + 2,
        "two messages in the window, whichever replica was asked"
    );
    let codes: Vec<String> =
        kannel.messages_to(phone)[before..].iter().flat_map(|m| codes_in(&m.text)).collect();
    let transaction = first["transaction_id"].as_str().unwrap();
    let accepted =
        codes.iter().filter(|code| finish(&b, "vera", transaction, code)["result"] == "accept").count();
    assert_eq!(accepted, 1, "replica b completes the challenge replica a sent, with its own code only");
}

#[test]
fn a_daycode_is_refused_once_its_period_ends_and_the_next_one_is_sent() {
    let kannel = kannel();
    let day_ends = crate::support::unix_now() + 8;
    let boundary = day_ends % 86_400;
    let day_starts_at = format!("{:02}:{:02}:{:02}", boundary / 3600, boundary / 60 % 60, boundary % 60);
    let server = Server::start(
        Db::Sqlite,
        &format!(
            "[delivery.limits]\ncooldown_secs = 0\n\n[delivery.daycode]\ntime_zone = \"UTC\"\nday_starts_at = \"{day_starts_at}\"\n\n{}",
            kannel.config_toml("kannel")
        ),
    );
    let phone = "+447700900109";
    let before = kannel.messages_to(phone).len();
    sms_user(&server, "zoe", phone, "daycode");
    let today = codes_in(&kannel.wait_for_message(phone, before, WAIT).text).remove(0);
    assert_eq!(login(&server, "zoe", &today)["result"], "accept");
    assert!(
        crate::support::unix_now() < day_ends,
        "the setup took longer than the 8 s before the day boundary"
    );
    while crate::support::unix_now() <= day_ends {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        login(&server, "zoe", &today)["result"],
        "reject",
        "yesterday's Daycode, after the day boundary"
    );
    let asked = login(&server, "zoe", "");
    assert_eq!(asked["result"], "challenge", "{asked}");
    let tomorrow = codes_in(&kannel.wait_for_message(phone, before + 1, WAIT).text).remove(0);
    assert_ne!(tomorrow, today);
    assert_eq!(login(&server, "zoe", &tomorrow)["result"], "accept");
}

/// A server whose first SMS gateway is the test SMSC over SMPP, its session kept alive with an
/// `enquire_link` every second, and whose second is the same SMSC with a password it refuses.
fn server_with_smsc() -> Server {
    let smsc = smpp_smsc();
    let toml = format!(
        "[delivery.limits]\ncooldown_secs = 0\nper_user_per_window = 20\n\n{}{}",
        smsc.config_toml("smsc", "from = \"Tessera\"\nenquire_link_secs = 1"),
        smsc.config_toml_wrong_password("refused"),
    );
    Server::start(Db::Sqlite, &toml)
}

#[test]
fn an_smsc_over_smpp_takes_codes_and_its_refusals_and_dropped_sessions_are_survived() {
    let smsc = smpp_smsc();
    let held = smsc.hold_script();
    let server = server_with_smsc();
    let (phone, number) = ("+447700900301", "447700900301");
    sms_user(&server, "zane", phone, "realtime");
    let submitted = |after: usize| {
        smsc.wait_for(after, WAIT, |e| e["event"] == "submit" && e["destination_addr"] == number)
    };
    // The SMSC logs a submit as it answers it; the server records the answer a moment later.
    let sent_row = |message_id: &Value| {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let (status, deliveries) = server.admin("GET", "/api/v1/deliveries?limit=50", None);
            assert_eq!(status, 200, "{deliveries}");
            let found = deliveries
                .as_array()
                .unwrap()
                .iter()
                .find(|row| row["provider_message_id"] == *message_id)
                .cloned();
            match found {
                Some(row) => return row,
                None if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => panic!("no delivery has the SMSC's id {message_id}: {deliveries}"),
            }
        }
    };
    let log_in = |after: usize| {
        let challenge = login(&server, "zane", "");
        assert_eq!(challenge["result"], "challenge", "{challenge}");
        let message = submitted(after);
        let code = codes_in(message["short_message"].as_str().unwrap()).remove(0);
        let transaction = challenge["transaction_id"].as_str().unwrap();
        assert_eq!(finish(&server, "zane", transaction, &code)["result"], "accept", "{message}");
        message
    };

    let start = smsc.events().len();
    let first = log_in(start);
    let bind = smsc.wait_for(start, WAIT, |e| e["event"] == "bind" && e["pid"] == first["pid"]);
    assert_eq!(
        (&bind["accepted"], &bind["system_id"], &bind["interface_version"]),
        (&json!(true), &json!(SYSTEM_ID), &json!(0x34)),
        "bound as an SMPP 3.4 transmitter: {bind}"
    );
    let addressing = ["dest_addr_ton", "dest_addr_npi", "source_addr", "source_addr_ton", "data_coding"]
        .map(|field| first[field].clone());
    assert_eq!(addressing, [json!(1), json!(1), json!("Tessera"), json!(5), json!(0)], "{first}");
    let validity = first["validity_period"].as_str().unwrap();
    assert!(
        validity.len() == 16 && validity.starts_with("00000000") && validity.ends_with('R'),
        "the SMSC may drop the code once it expires (relative time, 5 min at most): {first}"
    );
    assert!(validity <= "000000000500000R", "{validity}");
    assert_eq!(sent_row(&first["message_id"])["gateway"], "smsc");
    smsc.wait_for(start, WAIT, |e| e["event"] == "enquire_link" && e["pid"] == first["pid"]);

    let before = smsc.events().len();
    smsc.answer_next(&held, &["error 0x58"]);
    let second = log_in(before);
    let refused = smsc.wait_for(before, WAIT, |e| e["event"] == "refused");
    assert_eq!(refused["status"], "0x58", "{refused}");
    let wrong = smsc.wait_for(before, WAIT, |e| e["event"] == "bind" && e["accepted"] == false);
    assert_ne!(wrong["pid"], first["pid"], "the second gateway binds on its own session");
    let row = sent_row(&second["message_id"]);
    assert_eq!((row["attempts"].as_u64(), row["gateway"].as_str()), (Some(2), Some("smsc")), "{row}");
    assert_eq!(second["pid"], first["pid"], "the session stayed bound through a refusal");

    let before = smsc.events().len();
    smsc.hang_up_everyone();
    smsc.wait_for(before, WAIT, |e| e["event"] == "hung_up" && e["pid"] == first["pid"]);
    let third = log_in(before);
    assert_ne!(third["pid"], first["pid"], "bound again after the SMSC hung up");
    assert_eq!(sent_row(&third["message_id"])["attempts"], 1, "no try was lost to the dead session");

    let before = smsc.events().len();
    smsc.answer_next(&held, &["drop"]);
    let fourth = log_in(before);
    let dropped = smsc.wait_for(before, WAIT, |e| e["event"] == "dropped");
    assert_eq!(dropped["pid"], third["pid"], "{dropped}");
    assert_ne!(fourth["pid"], third["pid"], "the message went out on a new session: {fourth}");

    smsc.answer_next(&held, &["error 0x0b"]);
    let (status, tested) = server.admin("POST", "/api/v1/gateways/smsc/test", Some(json!({ "to": phone })));
    assert_eq!((status, tested["accepted"].as_bool()), (200, Some(false)), "{tested}");
    assert_eq!(tested["answer"], "gateway smsc: the SMSC answered ESME_RINVDSTADR (0x0000000B)");
    let (status, tested) =
        server.admin("POST", "/api/v1/gateways/refused/test", Some(json!({ "to": phone })));
    assert_eq!((status, tested["accepted"].as_bool()), (200, Some(false)), "{tested}");
    assert_eq!(
        tested["answer"],
        "gateway refused: bind_transmitter refused: the SMSC answered ESME_RINVPASWD (0x0000000E)"
    );
    let (status, tested) = server.admin("POST", "/api/v1/gateways/smsc/test", Some(json!({ "to": phone })));
    assert_eq!((status, tested["accepted"].as_bool()), (200, Some(true)), "{tested}");
    assert!(tested["message_id"].as_str().is_some_and(|id| id.starts_with("smsc-")), "{tested}");
    drop(held);

    let logs = server.logs();
    assert!(!logs.contains("smpp-pw1"), "the SMPP password is not logged");
    for message in [&first, &second, &third, &fourth] {
        let code = codes_in(message["short_message"].as_str().unwrap()).remove(0);
        assert!(!logs.contains(&code), "no code in the logs");
    }
}

#[test]
fn an_smsc_is_reached_over_tls_with_an_extra_ca_and_refused_without_it() {
    let smsc = smpp_smsc();
    let toml =
        format!("{}{}", smsc.config_toml_tls("smsc-tls", true), smsc.config_toml_tls("untrusted", false));
    let server = Server::start(Db::Sqlite, &toml);
    let (phone, number) = ("+447700900302", "447700900302");
    let before = smsc.events().len();
    sms_user(&server, "ruth", phone, "preload");
    let message = smsc.wait_for(before, WAIT, |e| e["event"] == "submit" && e["destination_addr"] == number);
    let code = codes_in(message["short_message"].as_str().unwrap()).remove(0);
    assert_eq!(login(&server, "ruth", &code)["result"], "accept");
    let (status, tested) =
        server.admin("POST", "/api/v1/gateways/untrusted/test", Some(json!({ "to": phone })));
    assert_eq!((status, tested["accepted"].as_bool()), (200, Some(false)), "{tested}");
    assert!(
        tested["answer"].as_str().unwrap().to_lowercase().contains("certificate"),
        "a certificate no trusted CA signed is refused: {tested}"
    );
}
