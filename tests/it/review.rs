//! Security review 1 (`shared/reviews/SECURITY-REVIEW-1.md`, closed in `docs/security.md`): the
//! tests that guard each finding's fix, each the review's sketch or a stronger one, against real
//! servers on SQLite or PostgreSQL. A test's name starts with its finding's number
//! (`f1_` … `f11_`; `d_` for the review's design notes), so `cargo test review::` runs them all.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tessera_client::{ChannelEvent, ClientError};
use tessera_core::push::{Answer, Decision, DenyReason, device_auth_message};

use crate::oneswipe::LIBFAKETIME;
use crate::push::{
    TestDevice, register_device_for, registered_device, send_validate, send_validate_as, user_with_device,
};
use crate::server_support::{Db, Server, client};
use crate::support::{Sandbox, unix_now};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The environment that sets a program's wall clock `offset` away (`+60s`, `-40s`); its monotonic
/// clock stays true.
fn faketime(offset: &str) -> [(&'static str, String); 3] {
    assert!(Path::new(LIBFAKETIME).exists(), "libfaketime is missing: run scripts/setup-debian.sh");
    [
        ("LD_PRELOAD", LIBFAKETIME.into()),
        ("FAKETIME", offset.into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String); 3]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(name, value)| (*name, value.as_str())).collect()
}

/// The next channel event within `seconds`.
fn next_event(
    runtime: &tokio::runtime::Runtime,
    channel: &mut (impl futures_util::Stream<Item = ChannelEvent> + Unpin),
    seconds: u64,
) -> ChannelEvent {
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(seconds), channel.next()).await })
        .unwrap_or_else(|_| panic!("no channel event within {seconds} s"))
        .expect("the channel stream ended")
}

/// Starts a push for `username` (no password) and returns the transaction id.
fn start_push(server: &Server, username: &str) -> String {
    let (status, body) = send_validate(server, json!({ "username": username, "passcode": "" }));
    assert_eq!((status, body["result"].as_str()), (200, Some("challenge")), "{body}");
    body["transaction_id"].as_str().unwrap().to_owned()
}

/// GETs `path` `count` times from four threads, asserting each answer's status.
fn get_many(server: &Server, path: impl Fn(usize) -> String + Sync, count: usize, status: u16) {
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let path = &path;
            scope.spawn(move || {
                let http = client();
                for i in (thread..count).step_by(4) {
                    let got =
                        http.get(format!("{}{}", server.url, path(i))).send().unwrap().status().as_u16();
                    assert_eq!(got, status);
                }
            });
        }
    });
}

#[test]
fn f1_unknown_transaction_ids_leave_the_hub_empty_and_the_memory_flat() {
    let server = Server::start(Db::Sqlite, "");
    let unknown = |i: usize| format!("/api/v1/transactions/{}{i:08}?wait=1", "A".repeat(56));
    get_many(&server, unknown, 4_000, 404);
    let before = server.rss_kib();
    get_many(&server, |i| unknown(i + 4_000), 20_000, 404);
    let after = server.rss_kib();
    assert!(
        after < before + 2_048,
        "20,000 unknown ids grew the server's memory from {before} KiB to {after} KiB"
    );
    assert_eq!(server.metric("tessera_push_hub_channels"), 0.0, "no channel is held for an unknown id");

    let runtime = runtime();
    let TestDevice { device, .. } = registered_device(&server, &runtime, "ada");
    let transaction = start_push(&server, "ada");
    let waiting = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| server.get(&format!("/api/v1/transactions/{transaction}?wait=3")));
        std::thread::sleep(Duration::from_millis(1_000));
        let held = server.metric("tessera_push_hub_channels");
        assert_eq!(waiter.join().unwrap().0, 200);
        held
    });
    assert_eq!(waiting, 1.0, "a login client waiting on a pending transaction holds one channel");
    assert_eq!(server.metric("tessera_push_hub_channels"), 0.0, "and gives it back when it stops waiting");
    drop(device);
}

#[test]
fn f2_a_disabled_or_deleted_device_loses_its_stream_and_cannot_answer() {
    let server = Server::start(Db::Sqlite, "[push]\nnumber_matching = \"off\"\n");
    let runtime = runtime();
    let laptop = registered_device(&server, &runtime, "alice");
    let mut channel = Box::pin(laptop.device.clone().channel(0));
    assert!(matches!(next_event(&runtime, &mut channel, 10), ChannelEvent::Connected));
    let transaction = start_push(&server, "alice");
    let ChannelEvent::Challenge(delivery) = next_event(&runtime, &mut channel, 10) else {
        panic!("the login request did not arrive")
    };
    assert_eq!(delivery.challenge.challenge.transaction_id, transaction);

    let serial = laptop.device.serial().to_owned();
    let disabled = Instant::now();
    assert_eq!(server.admin("POST", &format!("/api/v1/tokens/{serial}/disable"), None).0, 200);
    assert!(
        matches!(next_event(&runtime, &mut channel, 5), ChannelEvent::Disconnected(_)),
        "disabling the token ends its stream"
    );
    assert!(disabled.elapsed() < Duration::from_secs(5), "at once, not at the next re-check");
    match next_event(&runtime, &mut channel, 10) {
        ChannelEvent::Disconnected(ClientError::Refused { status: 401, .. }) => {}
        other => panic!("a disabled device must not reconnect: {other:?}"),
    }
    let not_me =
        Answer::to(&delivery.challenge.challenge, Decision::Deny(DenyReason::NotMe), None, None, unix_now())
            .unwrap()
            .sign(laptop.device.key());
    match runtime.block_on(laptop.device.answer(not_me)) {
        Err(ClientError::Refused { status: 401, .. }) => {}
        other => panic!("a disabled device must not deny or report: {other:?}"),
    }
    let phone = register_device_for(&server, &runtime, "alice");
    let next = start_push(&server, "alice");
    assert_ne!(next, transaction, "no 'not me' muted alice: her new phone gets pushes");

    let mut phone_channel = Box::pin(phone.device.clone().channel(0));
    assert!(matches!(next_event(&runtime, &mut phone_channel, 10), ChannelEvent::Connected));
    let arrived = |event: ChannelEvent| match event {
        ChannelEvent::Challenge(delivery) => delivery.challenge.challenge.transaction_id,
        other => panic!("expected a login request, got {other:?}"),
    };
    let pending = [
        arrived(next_event(&runtime, &mut phone_channel, 10)),
        arrived(next_event(&runtime, &mut phone_channel, 10)),
    ];
    assert_eq!(pending, [transaction.clone(), next], "the new phone gets both waiting requests");
    let phone_serial = phone.device.serial().to_owned();
    assert_eq!(server.admin("DELETE", &format!("/api/v1/tokens/{phone_serial}"), None).0, 204);
    assert!(
        matches!(next_event(&runtime, &mut phone_channel, 5), ChannelEvent::Disconnected(_)),
        "deleting the token ends its stream"
    );

    let short = Server::start(Db::Sqlite, "[limits]\nstream_max_secs = 2\n");
    let device = registered_device(&short, &runtime, "bob");
    let mut channel = Box::pin(device.device.clone().channel(0));
    assert!(matches!(next_event(&runtime, &mut channel, 10), ChannelEvent::Connected));
    let opened = Instant::now();
    assert!(matches!(next_event(&runtime, &mut channel, 5), ChannelEvent::Disconnected(_)));
    let lifetime = opened.elapsed();
    assert!(
        (Duration::from_millis(1_500)..Duration::from_secs(4)).contains(&lifetime),
        "the stream lived {lifetime:?} of its 2 s"
    );
    assert!(
        matches!(next_event(&runtime, &mut channel, 5), ChannelEvent::Connected),
        "the device authenticates again and comes back"
    );
}

#[test]
fn f3_wrong_one_swipe_passwords_count_and_lock_and_look_like_wrong_codes() {
    let server = Server::start(Db::Sqlite, "[policy]\nmax_failures = 3\n");
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&server, &phone, "hank", Some("2580"));
    let code = || phone.run(&["oneswipe", "--text"]).ok().trim().to_owned();
    let redeem = |body: Value| server.post("/api/v1/oneswipe", &body).1;
    let reasons: Vec<Value> = ["0000", "1111", "2222", "3333", "4444"]
        .iter()
        .map(|guess| redeem(json!({ "payload": code(), "password": guess }))["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        ["invalid_credentials", "invalid_credentials", "invalid_credentials", "locked", "locked"],
        "three wrong PINs lock, as three wrong codes would"
    );
    let tokens = server.admin("GET", "/api/v1/users/hank/tokens", None).1;
    assert_eq!(tokens[0]["locked"], true, "wrong PINs lock the push token: {tokens}");
    let user = server.admin("GET", "/api/v1/users/hank", None).1;
    assert_eq!(
        (user["locked"].as_bool(), user["password_failures"].as_u64()),
        (Some(true), Some(3)),
        "{user}"
    );
    let answer = redeem(json!({ "payload": code(), "password": "2580" }));
    assert_eq!(answer["reason"], "locked", "the right PIN no longer helps: {answer}");

    let runtime = runtime();
    let device = registered_device(&server, &runtime, "ivan");
    let an_hour_ago = unix_now() - 3_600;
    let stale_otp = tessera_core::otp::totp(
        &device.seed,
        tessera_core::otp::Algorithm::Sha1,
        tessera_core::otp::Digits::SIX,
        tessera_core::otp::Period::THIRTY_SECONDS,
        an_hour_ago,
    );
    let request = tessera_core::oneswipe::Request {
        serial: device.device.serial(),
        server_key: &device.server_key,
        otp: &stale_otp,
        issued_at: unix_now(),
        lifetime_secs: 30,
    };
    let wrong_code = tessera_core::oneswipe::OneSwipe::sign(&request, device.device.key()).unwrap();
    let answer = redeem(json!({ "payload": wrong_code.to_text().expose() }));
    assert_eq!(
        (answer["reason"].as_str(), answer["message"].as_str()),
        (Some("invalid_credentials"), Some("authentication failed")),
        "a wrong one-time code is answered as a wrong password is: {answer}"
    );
    let audit = server.admin("GET", "/api/v1/audit?username=ivan&action=oneswipe", None).1;
    assert_eq!(audit[0]["reason"], "bad_otp", "the audit log keeps the precise reason: {audit}");
}

#[test]
fn f4_wrong_passwords_count_for_a_user_without_a_usable_token() {
    let server = Server::start(
        Db::Sqlite,
        "[policy]\nmax_failures = 3\n[rate_limit]\nper_user_per_minute = 0\nper_ip_per_minute = 0\n",
    );
    server.admin("POST", "/api/v1/users", Some(json!({ "username": "ivy", "password": "2580" })));
    server.admin("POST", "/api/v1/users/ivy/tokens", Some(json!({ "kind": "push" })));
    let (_, plain) = server
        .post("/api/v1/validate", &json!({ "username": "ivy", "password": "2580-nopush", "passcode": "" }));
    assert_eq!(
        (plain["result"].as_str(), plain["reason"].as_str()),
        (Some("reject"), Some("invalid_credentials")),
        "a user whose only token waits for its device gets a plain reject, whatever the password: {plain}"
    );
    for guess in 0..20 {
        server.post(
            "/api/v1/validate",
            &json!({ "username": "ivy", "password": format!("{guess:04}-nopush"), "passcode": "" }),
        );
    }
    let (_, answer) = server
        .post("/api/v1/validate", &json!({ "username": "ivy", "password": "2580-nopush", "passcode": "" }));
    assert_eq!(answer["reason"], "locked", "{answer}");
    let user = server.admin("GET", "/api/v1/users/ivy", None).1;
    assert_eq!(user["password_failures"], 3, "attempts on a locked user change nothing: {user}");
    assert_eq!(server.admin("POST", "/api/v1/users/ivy/unlock", None).1["locked"], false);
}

/// A connection that sent a request's headers and the first byte of a 16,000-byte body.
fn slow_body(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    stream
        .write_all(
            b"POST /api/v1/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 16000\r\n\r\n{",
        )
        .unwrap();
    stream
}

#[test]
fn f5_slow_bodies_and_parked_long_polls_leave_validations_and_health_checks_answering() {
    let server = Server::start(
        Db::Sqlite,
        "[limits]\nmax_in_flight = 8\nmax_long_polls = 2\nbody_read_timeout_secs = 3\nheader_read_timeout_secs = 3\n",
    );
    let mut slow: Vec<TcpStream> = (0..64).map(|_| slow_body(&server)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    assert_eq!(server.get("/healthz").0, 200, "health checks answer while 64 bodies trickle");
    let (status, answer) = server.validate("nobody", None, "123456");
    assert_eq!((status, answer["result"].as_str()), (200, Some("reject")), "and validations");
    assert!(started.elapsed() < Duration::from_secs(2), "at once: {:?}", started.elapsed());
    let mut cut_off = String::new();
    slow[0].set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = slow[0].read_to_string(&mut cut_off);
    assert!(cut_off.starts_with("HTTP/1.1 408"), "a body that does not arrive is cut off: {cut_off}");
    let mut silent = TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    silent.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut nothing = Vec::new();
    let closed = Instant::now();
    let _ = silent.read_to_end(&mut nothing);
    assert!(
        closed.elapsed() < Duration::from_secs(6),
        "headers that never end are cut off: {:?}",
        closed.elapsed()
    );
    drop(slow);

    let runtime = runtime();
    registered_device(&server, &runtime, "cleo");
    let transaction = start_push(&server, "cleo");
    let path = format!("/api/v1/transactions/{transaction}?wait=4");
    std::thread::scope(|scope| {
        let parked: Vec<_> = (0..2).map(|_| scope.spawn(|| server.get(&path).0)).collect();
        std::thread::sleep(Duration::from_millis(700));
        let started = Instant::now();
        assert_eq!(server.get(&path).0, 503, "a third long-poll finds the pool full");
        assert_eq!(server.validate("nobody", None, "123456").0, 200, "validations have their own places");
        assert!(started.elapsed() < Duration::from_secs(2));
        for poll in parked {
            assert_eq!(poll.join().unwrap(), 200);
        }
    });
}

#[test]
fn f5_forged_answers_are_rate_limited_and_audited_once_a_minute() {
    let server = Server::start(Db::Sqlite, "[rate_limit]\nper_ip_per_minute = 40\nper_user_per_minute = 0\n");
    let runtime = runtime();
    let device = registered_device(&server, &runtime, "dora");
    let forged = json!({
        "v": 1, "transaction_id": "TXFORGED", "serial": device.device.serial(), "decision": "deny",
        "reason": "cancelled", "number": null, "otp": null, "answered_at": 0, "signature": "AAAA"
    });
    let statuses: Vec<u16> = (0..80).map(|_| server.post("/api/v1/push/answer", &forged).0).collect();
    assert!(statuses.iter().take(30).all(|s| *s == 401), "{statuses:?}");
    assert!(statuses.iter().skip(45).all(|s| *s == 429), "the client is slowed down: {statuses:?}");
    let audit = server.admin("GET", "/api/v1/audit?action=push.answer&limit=1000", None).1;
    assert_eq!(audit.as_array().unwrap().len(), 1, "one audit row for 80 forged answers: {audit}");
}

#[test]
fn f5_a_device_holds_at_most_its_cap_of_streams_and_the_newest_win() {
    let server = Server::start(Db::Sqlite, "[limits]\nstreams_per_device = 2\nmax_device_streams = 4\n");
    let runtime = runtime();
    let TestDevice { device, .. } = registered_device(&server, &runtime, "eve");
    let open_stream = || {
        let now = unix_now();
        let signature = device.key().sign(&device_auth_message(device.serial(), now));
        let response = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
            .get(format!("{}/api/v1/push/stream", server.url))
            .header(tessera_core::wire::SERIAL_HEADER, device.serial())
            .header(tessera_core::wire::TIMESTAMP_HEADER, now.to_string())
            .header(tessera_core::wire::SIGNATURE_HEADER, signature)
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response
    };
    let streams: Vec<_> = (0..5).map(|_| open_stream()).collect();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.metric("tessera_push_device_connections"), 2.0, "the device holds two streams");
    for (index, mut stream) in streams.into_iter().take(3).enumerate() {
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        assert!(text.contains("event: end") && text.contains("\"replaced\""), "stream {index}: {text}");
    }
    let other = registered_device(&server, &runtime, "finn");
    let now = unix_now();
    let signature = other.device.key().sign(&device_auth_message(other.device.serial(), now));
    let refused = client()
        .get(format!("{}/api/v1/push/stream", server.url))
        .header(tessera_core::wire::SERIAL_HEADER, other.device.serial())
        .header(tessera_core::wire::TIMESTAMP_HEADER, now.to_string())
        .header(tessera_core::wire::SIGNATURE_HEADER, &signature)
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 200, "two of four places are free for other devices");
}

#[test]
fn f6_only_an_application_key_writes_what_the_phone_shows() {
    let server = Server::start(Db::Sqlite, "[push]\nservice_name = \"ACME SSO\"\n");
    let runtime = runtime();
    let TestDevice { device, .. } = registered_device(&server, &runtime, "gus");
    let challenge_of = |transaction: &str| runtime.block_on(device.find(transaction)).unwrap().unwrap();
    let lure = json!({ "username": "gus", "passcode": "", "service": "ACME IT: approve and choose 47", "client_ip": "203.0.113.9", "user_agent": "Chrome on GUS-LAPTOP" });

    let (_, anonymous) = send_validate(&server, lure.clone());
    let shown = challenge_of(anonymous["transaction_id"].as_str().unwrap());
    assert_eq!(shown.service, "ACME SSO", "an anonymous caller's service is ignored");
    assert_eq!(shown.client_ip.as_deref(), Some("127.0.0.1"), "the device sees the caller's own address");
    assert_eq!(shown.user_agent.as_deref(), Some("Firefox/140 e2e"), "and its own User-Agent");
    assert_eq!(
        shown.number_matching,
        tessera_core::push::NumberMatching::Type,
        "the user types the number by default"
    );
    assert!(shown.number_choices.is_empty());

    let vpn = server.application("vpn", "ACME VPN");
    let (_, relayed) = send_validate_as(&server, Some(&vpn), lure.clone());
    let shown = challenge_of(relayed["transaction_id"].as_str().unwrap());
    assert_eq!(shown.service, "ACME VPN", "the application's name, not the body's");
    assert_eq!(
        shown.client_ip.as_deref(),
        Some("203.0.113.9"),
        "an application relays the end user's address"
    );
    assert_eq!(shown.user_agent.as_deref(), Some("Chrome on GUS-LAPTOP"));
    let audit = server.admin("GET", "/api/v1/audit?username=gus&action=push.request", None).1;
    assert!(
        audit.as_array().unwrap().iter().all(|e| e["reason"].is_null()),
        "no transaction id in the audit log: {audit}"
    );

    let (status, _) = send_validate_as(&server, Some("tak_0000"), lure.clone());
    assert_eq!(status, 401, "an unknown application key is refused, not taken as anonymous");
    assert_eq!(server.admin("DELETE", "/api/v1/applications/vpn", None).0, 204);
    let (status, _) = send_validate_as(&server, Some(&vpn), lure.clone());
    assert_eq!(status, 401, "a revoked key stops working at once");

    let strict = Server::start(Db::Sqlite, "require_application_key = true\n");
    assert!(!strict.logs().contains("require_application_key is off"));
    assert!(server.logs().contains("require_application_key is off"), "the server warns while it is off");
    strict.admin("POST", "/api/v1/users", Some(json!({ "username": "hal" })));
    let (status, body) = send_validate(&strict, json!({ "username": "hal", "passcode": "123456" }));
    assert_eq!(status, 401, "{body}");
    let key = strict.application("portal", "Portal");
    assert_eq!(
        send_validate_as(&strict, Some(&key), json!({ "username": "hal", "passcode": "123456" })).0,
        200
    );
}

#[test]
fn f7_a_one_swipe_code_lives_its_lifetime_not_its_lifetime_plus_the_skew() {
    let server = Server::start(Db::Sqlite, "");
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&server, &phone, "iris", None);
    let made_ago = |offset: &str| {
        let env = faketime(offset);
        phone.run_env(&["oneswipe", "--text"], &borrowed(&env)).ok().trim().to_owned()
    };
    let (_, fresh) = server.post("/api/v1/oneswipe", &json!({ "payload": made_ago("-20s") }));
    assert_eq!(fresh["result"], "accept", "a 30 s code 20 s old: {fresh}");
    let (_, stale) = server.post("/api/v1/oneswipe", &json!({ "payload": made_ago("-40s") }));
    assert_eq!(stale["reason"], "expired", "a 30 s code 40 s old, though the skew allowed is 30 s: {stale}");
    let (_, ahead) = server.post("/api/v1/oneswipe", &json!({ "payload": made_ago("+20s") }));
    assert_eq!(ahead["result"], "accept", "a phone 20 s ahead is within the skew: {ahead}");
}

#[test]
fn f8_enrollment_shows_where_it_leads_and_refuses_plain_http_elsewhere() {
    let server = Server::start(Db::Sqlite, "");
    assert!(server.logs().contains("push.public_url is not https"), "the server warns about its http link");
    server.admin("POST", "/api/v1/users", Some(json!({ "username": "jo" })));
    let (_, enrollment) = server.admin("POST", "/api/v1/users/jo/tokens", Some(json!({ "kind": "push" })));
    let mut link =
        tessera_core::push::EnrollmentLink::parse(enrollment["enrollment_uri"].as_str().unwrap()).unwrap();
    link.server = "http://192.0.2.1:8480".into();
    let phone = Sandbox::with_keystore_vault();
    let started = Instant::now();
    let refused = phone.run(&["enroll", link.to_uri().expose(), "--yes"]);
    assert!(refused.stderr.contains("192.0.2.1:8480"), "{}", refused.stderr);
    refused.fails_with("--insecure-http");
    assert!(started.elapsed() < Duration::from_secs(5), "refused before any connection was tried");
    assert!(phone.list_json().as_array().unwrap().is_empty(), "nothing was kept");
}

#[test]
fn f9_approved_logins_expire() {
    let server = Server::start(Db::Sqlite, "[push]\nexpiry_secs = 10\nnumber_matching = \"off\"\n");
    let runtime = runtime();
    let TestDevice { device, seed, .. } = registered_device(&server, &runtime, "kai");
    let transaction = start_push(&server, "kai");
    let challenge = runtime.block_on(device.find(&transaction)).unwrap().unwrap();
    let otp = tessera_core::otp::totp(
        &seed,
        tessera_core::otp::Algorithm::Sha1,
        tessera_core::otp::Digits::SIX,
        tessera_core::otp::Period::THIRTY_SECONDS,
        unix_now(),
    );
    let approve = Answer::to(
        &challenge,
        Decision::Approve,
        None,
        Some(tessera_core::secret::SecretString::new(otp.expose().to_owned())),
        unix_now(),
    )
    .unwrap()
    .sign(device.key());
    assert_eq!(
        runtime.block_on(device.answer(approve)).unwrap().status,
        tessera_client::AnswerStatus::Approved
    );
    std::thread::sleep(Duration::from_secs(10 + 10 + 2));
    let (_, late) = send_validate(&server, json!({ "username": "kai", "transaction_id": transaction }));
    assert_eq!(late["result"], "reject", "an approval left unused past its expiry and grace: {late}");
}

#[test]
fn f10_a_redeemed_code_stays_redeemed_on_a_replica_whose_clock_runs_ahead() {
    let db = Db::fresh_postgres();
    let correct = Server::start(db.clone(), "");
    let ahead = faketime("+90s");
    let fast = Server::start_with_env(db, "", &borrowed(&ahead));
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&correct, &phone, "lea", None);
    let first = phone.run(&["oneswipe", "--text"]).ok().trim().to_owned();
    assert_eq!(correct.post("/api/v1/oneswipe", &json!({ "payload": first })).1["result"], "accept");
    let later = phone.run_env(&["oneswipe", "--text"], &borrowed(&ahead)).ok().trim().to_owned();
    let (_, redeemed) = fast.post("/api/v1/oneswipe", &json!({ "payload": later }));
    assert_eq!(redeemed["result"], "accept", "the fast replica takes a code of its time: {redeemed}");
    let (_, replayed) = correct.post("/api/v1/oneswipe", &json!({ "payload": first }));
    assert_eq!(
        replayed["reason"], "replayed",
        "the fast replica's clean-up kept the first code's nonce: {replayed}"
    );
}

#[test]
fn f11_an_unusable_forwarded_for_is_refused_never_replaced_by_the_proxy() {
    let server = Server::start(Db::Sqlite, "trust_forwarded_for = true\n");
    let validate = |forwarded: &[u8]| {
        let response = client()
            .post(format!("{}/api/v1/validate", server.url))
            .header("x-forwarded-for", reqwest::header::HeaderValue::from_bytes(forwarded).unwrap())
            .json(&json!({ "username": "nobody", "passcode": "123456" }))
            .send()
            .unwrap();
        response.status().as_u16()
    };
    assert_eq!(validate(b"198.51.100.1, unknown"), 400);
    assert_eq!(validate(b"198.51.100.1, 192.0.2.\xff"), 400, "a byte outside visible ASCII");
    assert_eq!(validate(b"198.51.100.1, 192.0.2.7:4711"), 200, "a port is stripped");
    assert_eq!(validate(b"[2001:db8::7]:4711"), 200);
    let audit = server.admin("GET", "/api/v1/audit?username=nobody", None).1;
    let addresses: Vec<&str> =
        audit.as_array().unwrap().iter().filter_map(|e| e["client_ip"].as_str()).collect();
    assert!(addresses.contains(&"192.0.2.7") && addresses.contains(&"2001:db8::7"), "{addresses:?}");
    assert!(
        !addresses.contains(&"127.0.0.1"),
        "the proxy's address is never recorded for its clients: {addresses:?}"
    );
    assert!(server.logs().contains("X-Forwarded-For does not end in an address"), "and it is logged");
}

#[test]
fn d_admin_keys_are_listed_and_revoked() {
    let server = Server::start(Db::Sqlite, "");
    let (_, created) = server.admin("POST", "/api/v1/users", Some(json!({ "username": "x" })));
    assert_eq!(created["username"], "x");
    let output = std::process::Command::new(crate::support::binary("tessera-server"))
        .args(["--data-dir"])
        .arg(&server.data_dir)
        .args(["admin", "create-key", "ops"])
        .env("TESSERA_SERVER_KEY", crate::server_support::SERVER_KEY)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let as_ops =
        || client().get(format!("{}/api/v1/admin-keys", server.url)).bearer_auth(&key).send().unwrap();
    let listed: Value = as_ops().json().unwrap();
    let ops = listed.as_array().unwrap().iter().find(|k| k["name"] == "ops").unwrap();
    assert!(!listed.to_string().contains("tsk_"), "keys are never shown again: {listed}");
    assert_eq!(server.admin("DELETE", &format!("/api/v1/admin-keys/{}", ops["id"]), None).0, 204);
    assert_eq!(as_ops().status().as_u16(), 401, "a revoked key stops working");
    let audit = server.admin("GET", "/api/v1/audit?action=admin_key.revoke", None).1;
    assert_eq!(audit[0]["reason"], "ops", "{audit}");
}
