//! Tokens imported with `tessera-server admin import-tokens`: PSKC files written by an independent
//! implementation (Debian's python3-pskc, `tests/it/pskc_files.py`) in the clear, protected with a
//! password (PBKDF2) and with a pre-shared key, then used to log in with codes computed from the
//! seeds the test chose; and files that must import nothing, with the reason for each entry.

use std::path::Path;

use serde_json::{Value, json};
use tessera_core::otp::{Algorithm, Digits, Period, hotp, totp, unix_now};
use tessera_core::secret::SecretBytes;

use crate::server_support::{Db, Server};

const HOTP_SEED: &str = "3132333435363738393031323334353637383930";
const TOTP_SEED: &str = "3132333435363738393031323334353637383930313233343536373839303132";
const PRESHARED_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// Writes PSKC files with python3-pskc, as `specs` describe them.
fn write_pskc(specs: &Value) {
    let mut child = std::process::Command::new("/usr/bin/python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/it/pskc_files.py"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the PSKC writer (Debian's python3-pskc; scripts/setup-debian.sh installs it)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), specs.to_string().as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "python3-pskc could not write {specs}");
}

fn import(server: &Server, args: &[&str]) -> (bool, Value, String) {
    let output = server.admin_cli(&[&["import-tokens"], args].concat());
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.success(), report, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn seed(hex: &str) -> SecretBytes {
    SecretBytes::new(
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect(),
    )
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

fn users(server: &Server, names: &[&str]) {
    for name in names {
        let (status, body) = server.admin("POST", "/api/v1/users", Some(json!({ "username": name })));
        assert_eq!(status, 201, "{body}");
    }
}

fn hotp_key(serial: &str, counter: u64) -> Value {
    json!({ "id": format!("key-{serial}"), "serial": serial, "kind": "hotp", "secret_hex": HOTP_SEED, "counter": counter })
}

fn totp_key(serial: &str) -> Value {
    json!({ "id": format!("key-{serial}"), "serial": serial, "kind": "totp", "secret_hex": TOTP_SEED,
            "period": 60, "digits": 8, "suite": "HMAC-SHA256" })
}

#[test]
fn hardware_tokens_from_pskc_files_log_in_in_every_protection_mode() {
    let server = Server::start(Db::Sqlite, "");
    users(&server, &["ann", "ben", "cat"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("password"), "correct horse battery staple\n").unwrap();
    std::fs::write(d.join("key.hex"), format!("{PRESHARED_KEY}\n")).unwrap();
    std::fs::write(
        d.join("users.csv"),
        "serial,username\nHW-1001,ann\nHW-1002,ann\nHW-2001,ben\nHW-3001,cat\n",
    )
    .unwrap();
    write_pskc(&json!([
        { "path": path(d, "plain.pskc"), "protection": "plain", "keys": [hotp_key("HW-1001", 5), totp_key("HW-1002")] },
        { "path": path(d, "password.pskc"), "protection": "password", "password": "correct horse battery staple",
          "mac": "hmac-sha256", "encrypt_counter": true, "keys": [hotp_key("HW-2001", 9)] },
        { "path": path(d, "key.pskc"), "protection": "key", "key_hex": PRESHARED_KEY, "algorithm": "aes256-cbc",
          "mac": "hmac-sha1", "keys": [totp_key("HW-3001")] },
    ]));
    let map = path(d, "users.csv");
    let (ok, report, stderr) = import(&server, &[&path(d, "plain.pskc"), "--user-map", &map]);
    assert!(ok, "{stderr}\n{report}");
    assert_eq!(
        report["imported"],
        json!([
            { "serial": "HW-1001", "username": "ann", "kind": "hotp" },
            { "serial": "HW-1002", "username": "ann", "kind": "totp" },
        ])
    );
    let (ok, report, stderr) = import(
        &server,
        &[&path(d, "password.pskc"), "--user-map", &map, "--pskc-password-file", &path(d, "password")],
    );
    assert!(ok && report["imported"][0]["serial"] == "HW-2001", "{stderr}\n{report}");
    let (ok, report, stderr) =
        import(&server, &[&path(d, "key.pskc"), "--user-map", &map, "--pskc-key-file", &path(d, "key.hex")]);
    assert!(ok && report["imported"][0]["serial"] == "HW-3001", "{stderr}\n{report}");

    let six = Digits::new(6).unwrap();
    let before = hotp(&seed(HOTP_SEED), Algorithm::Sha1, six, 4);
    assert_eq!(server.result("ann", before.expose()), "reject", "the file's counter is where the token is");
    let at_five = hotp(&seed(HOTP_SEED), Algorithm::Sha1, six, 5);
    assert_eq!(server.result("ann", at_five.expose()), "accept", "HOTP from the plain file");
    let at_nine = hotp(&seed(HOTP_SEED), Algorithm::Sha1, six, 9);
    assert_eq!(server.result("ben", at_nine.expose()), "accept", "HOTP with an encrypted counter, PBKDF2");
    let minute = Period::new(60).unwrap();
    let eight = Digits::new(8).unwrap();
    let code = totp(&seed(TOTP_SEED), Algorithm::Sha256, eight, minute, unix_now());
    assert_eq!(server.result("cat", code.expose()), "accept", "TOTP, 8 digits, SHA-256, 60 s, AES-256 key");

    let (status, tokens) = server.admin("GET", "/api/v1/users/ann/tokens", None);
    assert_eq!(status, 200);
    assert!(tokens.to_string().contains("hardware token (Example Tokens), imported from PSKC"), "{tokens}");
    let (_, audit) = server.admin("GET", "/api/v1/audit?username=cat&limit=5", None);
    assert!(audit.to_string().contains("token.import"), "{audit}");
    assert!(!server.logs().contains(HOTP_SEED) && !server.logs().contains(PRESHARED_KEY));
}

#[test]
fn a_file_with_any_bad_entry_imports_nothing_and_says_why_for_each() {
    let server = Server::start(Db::Sqlite, "");
    users(&server, &["dan"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("users.csv"), "serial,username\nHW-4001,dan\nHW-4002,dan\nHW-4003,nobody\n")
        .unwrap();
    std::fs::write(d.join("wrong"), "not the password\n").unwrap();
    let ocra = json!({ "id": "key-ocra", "serial": "HW-4002", "kind": "urn:ietf:params:xml:ns:keyprov:pskc:ocra",
                       "secret_hex": HOTP_SEED });
    write_pskc(&json!([
        { "path": path(d, "mixed.pskc"), "protection": "plain",
          "keys": [hotp_key("HW-4001", 0), ocra, hotp_key("HW-4001", 3), hotp_key("HW-4003", 0), hotp_key("HW-4004", 0)] },
        { "path": path(d, "locked.pskc"), "protection": "password", "password": "right", "mac": "hmac-sha1",
          "keys": [hotp_key("HW-4005", 0)] },
    ]));
    let map = path(d, "users.csv");
    let (ok, report, stderr) = import(&server, &[&path(d, "mixed.pskc"), "--user-map", &map]);
    assert!(!ok && stderr.contains("nothing was imported: 4 entries were refused"), "{stderr}");
    assert_eq!(report["imported"], json!([]));
    let reasons: Vec<(u64, String)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["entry"].as_u64().unwrap(), r["reason"].as_str().unwrap().to_owned()))
        .collect();
    let expect = |entry: u64, words: &str| {
        assert!(
            reasons.iter().any(|(e, reason)| *e == entry && reason.contains(words)),
            "entry {entry} should be refused for {words:?}: {reasons:?}"
        );
    };
    expect(2, "is not HOTP or TOTP");
    expect(3, "appears twice in the file");
    expect(4, "there is no user \"nobody\"");
    expect(5, "names no user for serial HW-4004");
    let (_, tokens) = server.admin("GET", "/api/v1/users/dan/tokens", None);
    assert_eq!(tokens, json!([]), "the good entry was not imported either");

    let (ok, _, stderr) = import(&server, &[&path(d, "locked.pskc"), "--user-map", &map]);
    assert!(!ok && stderr.contains("encrypted with a password"), "{stderr}");
    let (ok, _, stderr) = import(
        &server,
        &[&path(d, "locked.pskc"), "--user-map", &map, "--pskc-password-file", &path(d, "wrong")],
    );
    assert!(!ok && stderr.contains("does not decrypt this file"), "{stderr}");
    std::fs::write(d.join("broken.pskc"), "<KeyContainer><KeyPackage></KeyContainer>").unwrap();
    let (ok, _, stderr) = import(&server, &[&path(d, "broken.pskc")]);
    assert!(!ok && stderr.contains("not well-formed XML"), "{stderr}");

    std::fs::write(d.join("fixed.csv"), "serial,username\nHW-4001,dan\n").unwrap();
    write_pskc(
        &json!([{ "path": path(d, "one.pskc"), "protection": "plain", "keys": [hotp_key("HW-4001", 0)] }]),
    );
    let (ok, _, stderr) = import(&server, &[&path(d, "one.pskc"), "--user-map", &path(d, "fixed.csv")]);
    assert!(ok, "{stderr}");
    let (ok, report, _) = import(&server, &[&path(d, "one.pskc"), "--user-map", &path(d, "fixed.csv")]);
    assert!(!ok, "{report}");
    assert!(report["rejected"][0]["reason"].as_str().unwrap().contains("HW-4001 exists already"), "{report}");
}

/// RFC 6030's example file `figureN`, as `core/tests/rfc6030` holds it.
fn rfc_figure(number: u32) -> String {
    format!("{}/../core/tests/rfc6030/figure{number}.pskcxml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_rfc_6030_examples_import_or_say_why_not() {
    let server = Server::start(Db::Sqlite, "");
    users(&server, &["kim", "lou"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("users.csv"), "serial,username\n987654321,kim\n0755225266,lou\n").unwrap();
    std::fs::write(d.join("qwerty"), "qwerty\n").unwrap();
    let map = path(d, "users.csv");
    let eight = Digits::new(8).unwrap();

    let (ok, report, stderr) =
        import(&server, &[&rfc_figure(7), "--user-map", &map, "--pskc-password-file", &path(d, "qwerty")]);
    assert!(ok, "figure 7, PBKDF2 from 'qwerty': {stderr}\n{report}");
    let code = hotp(&seed(HOTP_SEED), Algorithm::Sha1, eight, 0);
    assert_eq!(server.result("kim", code.expose()), "accept", "the RFC's secret, 8 digits, counter 0");

    let (ok, report, _) = import(&server, &[&rfc_figure(5), "--user-map", &map]);
    assert!(!ok, "{report}");
    assert!(
        report["rejected"][0]["reason"].as_str().unwrap().contains("987654321 exists already"),
        "{report}"
    );
    assert_eq!(report["set_aside"][0]["entry"], 2, "the device's PIN is not a token: {report}");

    let (ok, report, stderr) = import(&server, &[&rfc_figure(9), "--user-map", &map]);
    assert!(ok, "figure 9, signed: {stderr}\n{report}");
    assert!(
        report["notes"][0].as_str().unwrap().contains("signature (ds:Signature) was not checked"),
        "{report}"
    );
    let code = hotp(&seed(HOTP_SEED), Algorithm::Sha1, Digits::new(6).unwrap(), 0);
    assert_eq!(server.result("lou", code.expose()), "accept");

    let (ok, _, stderr) = import(&server, &[&rfc_figure(8), "--user-map", &map]);
    assert!(!ok && stderr.contains("encrypted to a public key"), "figure 8, RSA: {stderr}");
    let (ok, _, stderr) = import(&server, &[&rfc_figure(6), "--user-map", &map]);
    assert!(!ok && stderr.contains("pre-shared key (Pre-shared-key)"), "figure 6 without its key: {stderr}");

    let (ok, report, _) = import(&server, &[&rfc_figure(10), "--user-map", &map]);
    assert!(!ok, "{report}");
    let reasons: Vec<&str> =
        report["rejected"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 4, "{report}");
    assert!(
        reasons.iter().all(|r| r.starts_with("its policy ended on 2006-")),
        "figure 10's keys expired in 2006: {reasons:?}"
    );
    let (_, tokens) = server.admin("GET", "/api/v1/users/kim/tokens", None);
    assert_eq!(tokens.as_array().unwrap().len(), 1, "only figure 7's token: {tokens}");
}

#[test]
fn the_admin_api_imports_tokens_and_users_as_the_cli_does() {
    let server = Server::start(Db::Sqlite, "");
    users(&server, &["mo"]);
    let figure = |number| std::fs::read_to_string(rfc_figure(number)).unwrap();
    let body = json!({ "file": figure(6), "user_map": "serial,username\n987654321,mo\n",
                       "pskc_key_hex": "12345678901234567890123456789012" });
    let (status, report) = server.admin("POST", "/api/v1/imports/tokens", Some(body));
    assert_eq!((status, &report["imported"][0]["serial"]), (200, &json!("987654321")), "{report}");
    let code = hotp(&seed(HOTP_SEED), Algorithm::Sha1, Digits::new(8).unwrap(), 0);
    assert_eq!(server.result("mo", code.expose()), "accept", "figure 6, AES-128 under a pre-shared key");

    let body = json!({ "file": figure(10), "user_map": "serial,username\n654321,mo\n" });
    let (status, report) = server.admin("POST", "/api/v1/imports/tokens", Some(body));
    assert_eq!(status, 422, "{report}");
    assert_eq!(
        (report["imported"].as_array().unwrap().len(), report["rejected"].as_array().unwrap().len()),
        (0, 4)
    );
    let body = json!({ "file": figure(7), "pskc_password": "not qwerty" });
    let (status, error) = server.admin("POST", "/api/v1/imports/tokens", Some(body));
    assert_eq!(status, 422, "{error}");
    assert!(error["message"].as_str().unwrap().contains("does not decrypt this file"), "{error}");
    assert!(!server.logs().contains("not qwerty") && !server.logs().contains("1234567890123456789012"));

    let list: String = (0..3000)
        .map(|i| format!("otpauth://totp/Acme:nobody{i}?secret=GEZDGNBVGY3TQOJQGEZDGNBV\n"))
        .collect();
    assert!(list.len() > 100_000);
    let (status, report) = server.admin("POST", "/api/v1/imports/tokens", Some(json!({ "file": list })));
    assert_eq!(status, 422, "a large file with an admin key is read");
    assert_eq!(report["rejected"].as_array().unwrap().len(), 3000);
    // Over the 16 KiB limit, yet small enough that the whole body is on its way before the
    // server answers: a larger one can be cut off mid-send when the server refuses it early, and
    // the client then sees a reset instead of the 413.
    let over_the_limit: String = list.lines().take(400).collect::<Vec<_>>().join("\n");
    assert!((17_000..64_000).contains(&over_the_limit.len()), "{}", over_the_limit.len());
    let (status, _) = server.post("/api/v1/imports/tokens", &json!({ "file": over_the_limit }));
    assert_eq!(status, 413, "without a key, a body over 16 KiB is refused before it is read");
    let (status, _) = server.post("/api/v1/imports/tokens", &json!({ "file": figure(3) }));
    assert_eq!(status, 401);

    let csv = "username,display_name,phone,email\nned,Ned,+447700900601,ned@example.com\n";
    let (status, report) = server.admin("POST", "/api/v1/imports/users", Some(json!({ "csv": csv })));
    assert_eq!((status, &report["imported"]), (200, &json!(["ned"])), "{report}");
    let (status, report) = server.admin("POST", "/api/v1/imports/users", Some(json!({ "csv": csv })));
    assert_eq!(status, 422, "{report}");
    assert!(report["rejected"][0]["reason"].as_str().unwrap().contains("ned"), "{report}");
    assert_eq!(server.admin("GET", "/api/v1/users/ned", None).1["phone"], "+447700900601");
}

#[test]
fn an_otpauth_list_imports_to_the_users_its_accounts_name() {
    let server = Server::start(Db::Sqlite, "");
    users(&server, &["eve", "fay"]);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("tokens.txt");
    let eve = "otpauth://totp/Acme:eve?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme";
    let fay = "otpauth://hotp/Acme:fay?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme&counter=2";
    std::fs::write(&list, format!("# exported\n{eve}\notpauth://totp/bad?secret=!!\n{fay}\n")).unwrap();
    let (ok, report, _) = import(&server, &[list.to_str().unwrap()]);
    assert!(!ok && report["rejected"][0]["entry"] == 3 && report["imported"] == json!([]), "{report}");
    std::fs::write(&list, format!("{eve}\n{fay}\n")).unwrap();
    let (ok, report, stderr) = import(&server, &[list.to_str().unwrap()]);
    assert!(ok, "{stderr}\n{report}");
    let owners: Vec<&str> =
        report["imported"].as_array().unwrap().iter().map(|t| t["username"].as_str().unwrap()).collect();
    assert_eq!(owners, ["eve", "fay"]);
    let code = hotp(&seed(HOTP_SEED), Algorithm::Sha1, Digits::new(6).unwrap(), 2);
    assert_eq!(server.result("fay", code.expose()), "accept");
}

#[test]
fn users_from_a_csv_are_created_all_or_none() {
    let server = Server::start(Db::Sqlite, "");
    users(&server, &["gus"]);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("users.csv");
    std::fs::write(
        &csv,
        "username,display_name,phone,email\nhal,Hal Jordan,+447700900401,hal@example.com\n\
         gus,Gus,,\nivy,\"Ivy, P.\",07700 900402,\nhal,Hal again,,\njo,Jo,,not-an-address\n",
    )
    .unwrap();
    let output = server.admin_cli(&["import-users", csv.to_str().unwrap()]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(!output.status.success() && report["imported"] == json!([]), "{report}");
    let reasons: Vec<(u64, &str)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["entry"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons[0].0 == 3 && reasons[0].1.contains("\"gus\" exists already"), "{reasons:?}");
    assert!(reasons[1].0 == 4 && reasons[1].1.contains("phone"), "{reasons:?}");
    assert!(reasons[2].0 == 5 && reasons[2].1.contains("appears twice"), "{reasons:?}");
    assert!(reasons[3].0 == 6 && reasons[3].1.contains("email"), "{reasons:?}");
    let (_, hal) = server.admin("GET", "/api/v1/users/hal", None);
    assert_eq!(hal["code"], "not_found", "nothing was created: {hal}");

    std::fs::write(
        &csv,
        "username,display_name,phone,email\nhal,Hal Jordan,+447700900401,hal@example.com\nivy,\"Ivy, P.\",,\n",
    )
    .unwrap();
    let output = server.admin_cli(&["import-users", csv.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (_, hal) = server.admin("GET", "/api/v1/users/hal", None);
    assert_eq!(
        (&hal["display_name"], &hal["phone"], &hal["email"], &hal["has_password"]),
        (&json!("Hal Jordan"), &json!("+447700900401"), &json!("hal@example.com"), &json!(false)),
        "{hal}"
    );
    let (_, ivy) = server.admin("GET", "/api/v1/users/ivy", None);
    assert_eq!(ivy["display_name"], "Ivy, P.");
    let (status, renamed) =
        server.admin("PATCH", "/api/v1/users/ivy", Some(json!({ "display_name": "Ivy Poole" })));
    assert_eq!((status, &renamed["display_name"]), (200, &json!("Ivy Poole")), "{renamed}");
    let output = server.admin_cli(&["set-user", "hal", "--display-name", ""]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(server.admin("GET", "/api/v1/users/hal", None).1["display_name"], Value::Null, "removed");
}
