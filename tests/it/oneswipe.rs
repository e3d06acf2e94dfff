//! One Swipe end to end: `tessera oneswipe --png` makes the code, `tessera-framegen` turns the
//! image into webcam-like frames, `tessera scan --frames` reads it back as the login side's camera
//! would, and the server redeems it once; replays, expired codes and another server's codes are
//! refused with typed, audited reasons.

use std::path::Path;

use serde_json::{Value, json};

use crate::push::user_with_device;
use crate::server_support::{Db, Server};
use crate::support::{Sandbox, binary};

/// A server key other than the test servers' shared one: another server's identity.
const OTHER_SERVER_KEY: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";

/// A One Swipe code as the login side's camera reads it: PNG from the CLI, webcam-like frames,
/// `tessera scan --frames`.
fn shown_and_scanned(phone: &Sandbox, args: &[&str], seed: u64) -> String {
    shown_and_scanned_with(phone, args, seed, &[])
}

/// [`shown_and_scanned`] with extra environment variables for the CLI that makes the code.
fn shown_and_scanned_with(phone: &Sandbox, args: &[&str], seed: u64, env: &[(&str, &str)]) -> String {
    let png = phone.path(&format!("oneswipe-{seed}.png"));
    let mut command = vec!["oneswipe", "--png", png.to_str().unwrap()];
    command.extend_from_slice(args);
    let made = phone.run_env(&command, env);
    assert!(made.stderr.contains("One Swipe code for"), "{}", made.stderr);
    let frames = phone.path(&format!("frames-{seed}"));
    let generated = std::process::Command::new(binary("tessera-framegen"))
        .args(["--qr", png.to_str().unwrap(), "--out", frames.to_str().unwrap(), "--count", "8"])
        .args(["--seed", &seed.to_string()])
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    scan(phone, &frames)
}

fn scan(phone: &Sandbox, frames: &Path) -> String {
    let scanned = phone.run(&["scan", "--frames", frames.to_str().unwrap(), "--kind", "oneswipe"]);
    assert!(scanned.stderr.contains("Read in frame"), "{}", scanned.stderr);
    scanned.ok().trim().to_owned()
}

fn redeem(server: &Server, body: Value) -> (u16, Value) {
    server.post("/api/v1/oneswipe", &body)
}

#[track_caller]
fn assert_rejected(answer: (u16, Value), reason: &str) {
    let (status, body) = answer;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "reject", "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert!(body.get("username").is_none(), "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty());
}

on_both_databases!(a_scanned_code_logs_in_once);

fn a_scanned_code_logs_in_once(db: Db) {
    let server = Server::start(db, "[push]\noneswipe_clock_skew_secs = 0\n");
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&server, &phone, "dana", None);

    let payload = shown_and_scanned(&phone, &["--valid-for", "120"], 1);
    assert_eq!(payload.len(), 146, "base32 of the 91-byte payload: {payload}");
    let (status, body) = redeem(&server, json!({ "payload": payload }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "accept", "{body}");
    assert_eq!(body["username"], "dana");
    assert!(body["serial"].as_str().unwrap().starts_with("PUSH-"));

    assert_rejected(redeem(&server, json!({ "payload": payload })), "replayed");

    let expiring = shown_and_scanned(&phone, &["--valid-for", "1"], 2);
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    assert_rejected(redeem(&server, json!({ "payload": expiring })), "expired");

    assert_rejected(redeem(&server, json!({ "payload": "NOT A ONE SWIPE CODE" })), "malformed");
    let (status, body) = redeem(&server, json!({ "code": payload }));
    assert!(status == 400 || status == 422, "unknown fields are refused: {status} {body}");

    let audit = server.admin("GET", "/api/v1/audit?username=dana&action=oneswipe&limit=100", None).1;
    let outcomes: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["result"].as_str().unwrap().to_owned(), e["reason"].as_str().unwrap_or("").to_owned()))
        .collect();
    for expected in [("accept", ""), ("reject", "replayed"), ("reject", "expired")] {
        assert!(
            outcomes.iter().any(|(result, reason)| (result.as_str(), reason.as_str()) == expected),
            "{expected:?} is audited: {outcomes:?}"
        );
    }
}

/// libfaketime, which scripts/setup-debian.sh installs: it moves a program's clock.
pub(crate) const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// [`shown_and_scanned`] by a phone whose clock runs `seconds` behind: a code made that long ago.
fn shown_and_scanned_made_ago(phone: &Sandbox, args: &[&str], seed: u64, seconds: u32) -> String {
    assert!(Path::new(LIBFAKETIME).exists(), "libfaketime is missing: run scripts/setup-debian.sh");
    let offset = format!("-{seconds}s");
    let env =
        [("LD_PRELOAD", LIBFAKETIME), ("FAKETIME", offset.as_str()), ("FAKETIME_DONT_FAKE_MONOTONIC", "1")];
    shown_and_scanned_with(phone, args, seed, &env)
}

#[test]
fn a_code_shown_for_two_minutes_logs_in_until_it_expires() {
    let server = Server::start(Db::Sqlite, "[push]\noneswipe_clock_skew_secs = 0\n");
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&server, &phone, "gina", None);
    let payload = shown_and_scanned_made_ago(&phone, &["--valid-for", "120"], 4, 75);
    let (status, body) = redeem(&server, json!({ "payload": payload }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "accept", "its code is checked when it was made, not now: {body}");
    assert_eq!(body["username"], "gina");

    let stale = shown_and_scanned_made_ago(&phone, &["--valid-for", "120"], 5, 130);
    assert_rejected(redeem(&server, json!({ "payload": stale })), "expired");
}

#[test]
fn another_servers_code_is_refused() {
    let here = Server::start(Db::Sqlite, "");
    let elsewhere = Server::start_with_key(Db::Sqlite, "", OTHER_SERVER_KEY);
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&here, &phone, "erin", None);
    user_with_device(&elsewhere, &phone, "frank", None);
    let theirs = shown_and_scanned(&phone, &["frank"], 3);
    assert_rejected(redeem(&here, json!({ "payload": theirs })), "wrong_audience");
    let (_, body) = redeem(&elsewhere, json!({ "payload": theirs }));
    assert_eq!(
        (body["result"].as_str(), body["username"].as_str()),
        (Some("accept"), Some("frank")),
        "{body}"
    );
    let ambiguous = phone.run(&["oneswipe", "--text"]);
    assert!(ambiguous.stderr.contains("matches 2 tokens"), "{}", ambiguous.stderr);
}

#[test]
fn passwords_users_and_transactions_are_checked() {
    let server = Server::start(Db::Sqlite, "");
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&server, &phone, "gina", Some("correct horse"));
    let code = || phone.run(&["oneswipe", "--text"]).ok().trim().to_owned();

    assert_rejected(redeem(&server, json!({ "payload": code() })), "invalid_credentials");
    assert_rejected(
        redeem(&server, json!({ "payload": code(), "password": "wrong" })),
        "invalid_credentials",
    );
    assert_rejected(
        redeem(&server, json!({ "payload": code(), "password": "correct horse", "username": "someone" })),
        "wrong_user",
    );
    let (_, body) =
        redeem(&server, json!({ "payload": code(), "password": "correct horse", "username": "gina" }));
    assert_eq!(body["result"], "accept", "{body}");

    // Approving a pending push login: the login client completes it with validate.
    let (_, started) = server.validate("gina", Some("correct horse"), "");
    assert_eq!(started["result"], "challenge", "{started}");
    let transaction = started["transaction_id"].as_str().unwrap();
    let (_, body) = redeem(
        &server,
        json!({ "payload": code(), "password": "correct horse", "transaction_id": transaction }),
    );
    assert_eq!(
        (body["result"].as_str(), body["transaction_id"].as_str()),
        (Some("accept"), Some(transaction))
    );
    let (_, finished) =
        server.post("/api/v1/validate", &json!({ "username": "gina", "transaction_id": transaction }));
    assert_eq!(finished["result"], "accept", "{finished}");
    assert_rejected(
        redeem(
            &server,
            json!({ "payload": code(), "password": "correct horse", "transaction_id": transaction }),
        ),
        "unknown_transaction",
    );
}
