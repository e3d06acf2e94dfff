//! The verification server end to end: real `tessera-server` processes on loopback ports, the
//! `tessera` CLI as the user's soft token, SQLite and a real PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::server_support::{ADMIN_KEY, Db, SERVER_KEY, Server, client, free_port};
use crate::support::{Sandbox, unix_now};

on_both_databases!(
    enroll_validate_replay_lockout_unlock_restart,
    hotp_with_password_look_ahead_and_resync,
    fifty_simultaneous_validations_accept_once,
    fifty_simultaneous_wrong_codes_each_count,
    fifty_simultaneous_uses_of_one_hotp_code_accept_once,
    seeds_are_encrypted_at_rest_and_never_audited,
    disabled_and_deleted_tokens_and_users,
    locked_accounts_answer_locked_whatever_the_password,
    locks_lift_and_escalate,
    unknown_users_lock_like_real_ones,
    bad_requests_get_clear_4xx_errors,
    first_run_creates_a_private_admin_key_once,
    rate_limits_per_user_answer_429,
    admin_subcommands_work_on_the_database_directly,
);

/// A soft token (the CLI's vault) holding the enrolled token, added from the enrollment's QR PNG.
fn phone_with(enrollment: &Value) -> Sandbox {
    let phone = Sandbox::with_keystore_vault();
    let png = phone.path("enroll.png");
    let bytes =
        data_encoding::BASE64.decode(enrollment["qr_png_base64"].as_str().unwrap().as_bytes()).unwrap();
    std::fs::write(&png, bytes).unwrap();
    phone.run(&["add", "--qr", png.to_str().unwrap()]).ok();
    phone
}

fn code(phone: &Sandbox, at: Option<u64>) -> String {
    let mut args = vec!["code".to_owned(), "tessera".to_owned()];
    if let Some(at) = at {
        args.extend(["--at".to_owned(), at.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    phone.run(&args).ok().trim().to_owned()
}

/// The current code and the time it was made for, taken with at least 10 s left in its 30 s step
/// so the server checks it in the same step. A code checked one step late is accepted but teaches
/// the server a drift of -1 step; the tests' "next step" code is then taken for this code's time
/// plus one step (not the clock's), which stays inside the window whichever step the server saw.
fn code_early_in_step(phone: &Sandbox) -> (String, u64) {
    let into_step = unix_now() % 30;
    if into_step >= 20 {
        std::thread::sleep(Duration::from_secs(30 - into_step));
    }
    let at = unix_now();
    (code(phone, Some(at)), at)
}

fn audit(server: &Server, query: &str) -> Vec<Value> {
    let (status, body) = server.admin("GET", &format!("/api/v1/audit?{query}"), None);
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

fn enroll_validate_replay_lockout_unlock_restart(db: Db) {
    let mut server = Server::start(db, "");
    let enrollment = server.user_with_token("alice", json!({ "kind": "totp" }));
    assert!(enrollment["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/Tessera:alice?secret="));
    assert!(enrollment["qr_svg"].as_str().unwrap().contains("<svg"));
    let serial = enrollment["serial"].as_str().unwrap().to_owned();
    let phone = phone_with(&enrollment);

    let (first, first_at) = code_early_in_step(&phone);
    assert_eq!(server.result("alice", &first), "accept");
    let (_, replay) = server.validate("alice", None, &first);
    assert_eq!(
        (replay["result"].as_str(), replay["reason"].as_str()),
        (Some("reject"), Some("invalid_credentials"))
    );

    for attempt in 0..10 {
        let (_, body) = server.validate("alice", None, if attempt % 2 == 0 { "000000" } else { "999999" });
        assert_eq!(body["result"], "reject");
    }
    let next = code(&phone, Some(first_at + 30));
    let (_, locked) = server.validate("alice", None, &next);
    assert_eq!((locked["result"].as_str(), locked["reason"].as_str()), (Some("reject"), Some("locked")));
    let (_, tokens) = server.admin("GET", "/api/v1/users/alice/tokens", None);
    // One replay and nine wrong codes make ten failures, the limit; the tenth wrong code meets a
    // locked token and changes nothing.
    assert_eq!((tokens[0]["locked"].as_bool(), tokens[0]["failures"].as_u64()), (Some(true), Some(10)));

    let (status, unlocked) = server.admin("POST", &format!("/api/v1/tokens/{serial}/unlock"), None);
    assert_eq!(
        (status, unlocked["locked"].as_bool(), unlocked["failures"].as_u64()),
        (200, Some(false), Some(0))
    );
    assert_eq!(server.result("alice", &next), "accept");

    server.restart();
    let (_, after_restart) = server.validate("alice", None, &next);
    assert_eq!(after_restart["result"], "reject", "the last accepted step survives a restart");
    assert_eq!(audit(&server, "username=alice&limit=1")[0]["reason"], "replayed");
    let (_, users) = server.admin("GET", "/api/v1/users", None);
    assert_eq!(users[0]["username"], "alice");
    let (_, tokens) = server.admin("GET", "/api/v1/users/alice/tokens", None);
    assert!(tokens[0]["last_used_at"].as_i64().unwrap() >= i64::try_from(unix_now()).unwrap() - 120);

    let entries = audit(&server, "username=alice&limit=1000");
    let reasons: Vec<_> = entries.iter().map(|e| e["reason"].as_str().unwrap_or("-")).collect();
    for expected in ["replayed", "wrong_code", "locked"] {
        assert!(reasons.contains(&expected), "{expected} is audited: {reasons:?}");
    }
    assert!(entries.iter().any(|e| e["action"] == "token.unlock" && e["actor"] == "admin:env"));
    assert_eq!(entries.iter().filter(|e| e["result"] == "accept").count(), 2);
    assert!(entries.iter().all(|e| e["client_ip"] == "127.0.0.1" || e["action"] != "validate"));
}

fn hotp_with_password_look_ahead_and_resync(db: Db) {
    let server = Server::start(db, "");
    let (status, _) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": "bob", "password": "4321" })));
    assert_eq!(status, 201);
    let (status, enrollment) = server.admin(
        "POST",
        "/api/v1/users/bob/tokens",
        Some(json!({ "kind": "hotp", "digits": 8, "algorithm": "SHA256" })),
    );
    assert_eq!(status, 201, "{enrollment}");
    let serial = enrollment["serial"].as_str().unwrap().to_owned();
    let phone = phone_with(&enrollment);

    let c0 = code(&phone, None);
    assert_eq!(c0.len(), 8);
    assert_eq!(server.validate("bob", None, &c0).1["result"], "reject", "the password is required");
    assert_eq!(server.validate("bob", Some("1234"), &c0).1["result"], "reject", "the password must be right");
    assert_eq!(server.validate("bob", Some("4321"), &c0).1["result"], "accept");

    for _ in 0..3 {
        code(&phone, None);
    }
    assert_eq!(
        server.validate("bob", Some("4321"), &code(&phone, None)).1["result"],
        "accept",
        "look-ahead 10"
    );

    for _ in 0..30 {
        code(&phone, None);
    }
    let (far, farther) = (code(&phone, None), code(&phone, None));
    assert_eq!(server.validate("bob", Some("4321"), &far).1["result"], "reject", "beyond the look-ahead");
    let (status, resynced) = server.admin(
        "POST",
        &format!("/api/v1/tokens/{serial}/resync"),
        Some(json!({ "first_code": far, "second_code": farther })),
    );
    assert_eq!(status, 200, "{resynced}");
    assert_eq!(server.validate("bob", Some("4321"), &code(&phone, None)).1["result"], "accept");
    let (status, bad) = server.admin(
        "POST",
        &format!("/api/v1/tokens/{serial}/resync"),
        Some(json!({ "first_code": "00000000", "second_code": "11111111" })),
    );
    assert_eq!(status, 422, "{bad}");
}

fn fifty_simultaneous_validations_accept_once(db: Db) {
    let server = Arc::new(Server::start(db, ""));
    let enrollment = server.user_with_token("carol", json!({ "kind": "totp" }));
    let phone = phone_with(&enrollment);
    let valid = code(&phone, None);
    assert_eq!(count_accepts(std::slice::from_ref(&server), &valid, 50), 1);
}

/// Fires `requests` validations of one code at once for carol, spread over `servers`; returns the accepts.
fn count_accepts(servers: &[Arc<Server>], passcode: &str, requests: usize) -> usize {
    simultaneous(servers, "carol", passcode, requests)
        .iter()
        .filter(|body| body["result"] == "accept")
        .count()
}

/// Fires `requests` validations of one passcode at once, spread over `servers`; returns the answers.
fn simultaneous(servers: &[Arc<Server>], username: &str, passcode: &str, requests: usize) -> Vec<Value> {
    let barrier = Arc::new(std::sync::Barrier::new(requests));
    let threads: Vec<_> = (0..requests)
        .map(|i| {
            let server = servers[i % servers.len()].clone();
            let barrier = barrier.clone();
            let (passcode, username) = (passcode.to_owned(), username.to_owned());
            std::thread::spawn(move || {
                barrier.wait();
                let (status, body) = server.validate(&username, None, &passcode);
                assert_eq!(status, 200, "{body}");
                body
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn fifty_simultaneous_wrong_codes_each_count(db: Db) {
    let server = Arc::new(Server::start(db, ""));
    server.user_with_token("carol", json!({ "kind": "totp" }));
    let answers = simultaneous(std::slice::from_ref(&server), "carol", "000000", 50);
    assert!(answers.iter().all(|a| a["result"] == "reject"));
    let (_, tokens) = server.admin("GET", "/api/v1/users/carol/tokens", None);
    assert_eq!(tokens[0]["failures"], 10, "every failure up to the lock is counted, none lost to a race");
    assert_eq!(tokens[0]["locked"], true);
    assert_eq!(answers.iter().filter(|a| a["reason"] == "locked").count(), 40, "the other 40 met the lock");
}

fn fifty_simultaneous_uses_of_one_hotp_code_accept_once(db: Db) {
    let server = Arc::new(Server::start(db, ""));
    let enrollment = server.user_with_token("carol", json!({ "kind": "hotp" }));
    let phone = phone_with(&enrollment);
    assert_eq!(count_accepts(std::slice::from_ref(&server), &code(&phone, None), 50), 1);
}

#[test]
fn two_servers_on_one_postgres_accept_a_code_once() {
    let db = Db::fresh_postgres();
    let first = Arc::new(Server::start(db.clone(), ""));
    let second = Arc::new(Server::start(db.clone(), ""));
    let enrollment = first.user_with_token("carol", json!({ "kind": "totp" }));
    let phone = phone_with(&enrollment);
    let (valid, valid_at) = code_early_in_step(&phone);
    assert_eq!(count_accepts(&[first.clone(), second.clone()], &valid, 50), 1);
    let (_, tokens) = first.admin("GET", "/api/v1/users/carol/tokens", None);
    assert_eq!(tokens[0]["locked"], true, "49 replays are 49 failed attempts, counted across both replicas");
    let serial = tokens[0]["serial"].as_str().unwrap();
    assert_eq!(second.admin("POST", &format!("/api/v1/tokens/{serial}/unlock"), None).0, 200);
    let next = code(&phone, Some(valid_at + 30));
    assert_eq!(
        second.result("carol", &next),
        "accept",
        "the second replica sees the first one's users and tokens"
    );
    assert_eq!(first.result("carol", &next), "reject", "and the first sees the second's accepted step");

    let wrong_key = first.command(free_port()).env("TESSERA_SERVER_KEY", "77".repeat(32)).output().unwrap();
    assert!(!wrong_key.status.success());
    assert!(String::from_utf8_lossy(&wrong_key.stderr).contains("server key does not match this database"));
}

fn seeds_are_encrypted_at_rest_and_never_audited(db: Db) {
    let server = Server::start(db.clone(), "");
    let (status, _) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": "dave", "password": "s3cret-pin" })));
    assert_eq!(status, 201);
    let (_, enrollment) = server.admin("POST", "/api/v1/users/dave/tokens", Some(json!({ "kind": "totp" })));
    let uri = enrollment["otpauth_uri"].as_str().unwrap();
    let secret = uri.split("secret=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let seed = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
    let phone = phone_with(&enrollment);
    let valid = code(&phone, None);
    assert_eq!(server.validate("dave", Some("s3cret-pin"), &valid).1["result"], "accept");
    assert_eq!(server.validate("dave", Some("wrong-pin"), "123456").1["result"], "reject");

    let stored: Vec<u8> = match &db {
        Db::Sqlite => ["tessera.db", "tessera.db-wal"]
            .iter()
            .flat_map(|f| std::fs::read(server.data_dir.join(f)).unwrap_or_default())
            .collect(),
        Db::Postgres(_) => db
            .psql("SELECT string_agg(t::text, ' ') FROM (SELECT * FROM tokens) t; SELECT string_agg(u::text, ' ') FROM users u; SELECT string_agg(a::text, ' ') FROM audit a")
            .into_bytes(),
    };
    let text = String::from_utf8_lossy(&stored).to_uppercase();
    assert!(!stored.windows(seed.len()).any(|w| w == seed.as_slice()), "the raw seed is in the database");
    assert!(!text.contains(&secret), "the base32 seed is in the database");
    assert!(!text.contains(&data_encoding::HEXUPPER.encode(&seed)), "the hex seed is in the database");
    assert!(!text.contains("S3CRET-PIN"), "the password is in the database");
    assert!(!text.contains(&valid), "the passcode is in the database");

    let audit_text = serde_json::to_string(&audit(&server, "limit=1000")).unwrap();
    for secret_text in [valid.as_str(), "s3cret-pin", "wrong-pin", "123456", secret.as_str()] {
        assert!(!audit_text.contains(secret_text), "{secret_text} is in the audit log");
    }
    let logs = server.logs();
    for secret_text in [valid.as_str(), "s3cret-pin", "wrong-pin", secret.as_str()] {
        assert!(!logs.contains(secret_text), "{secret_text} is in the server log");
    }
}

fn disabled_and_deleted_tokens_and_users(db: Db) {
    let server = Server::start(db, "");
    let enrollment = server.user_with_token("erin", json!({ "kind": "totp", "digits": 8, "period": 60 }));
    let serial = enrollment["serial"].as_str().unwrap().to_owned();
    let phone = phone_with(&enrollment);
    let (status, disabled) = server.admin("POST", &format!("/api/v1/tokens/{serial}/disable"), None);
    assert_eq!((status, disabled["enabled"].as_bool()), (200, Some(false)));
    let valid = code(&phone, None);
    assert_eq!(server.result("erin", &valid), "reject");
    server.admin("POST", &format!("/api/v1/tokens/{serial}/enable"), None);
    assert_eq!(server.result("erin", &valid), "accept");

    let second = server.admin("POST", "/api/v1/users/erin/tokens", Some(json!({ "kind": "hotp" }))).1;
    let (_, tokens) = server.admin("GET", "/api/v1/users/erin/tokens", None);
    assert_eq!(tokens.as_array().unwrap().len(), 2, "a user can hold several tokens");
    let (status, _) =
        server.admin("DELETE", &format!("/api/v1/tokens/{}", second["serial"].as_str().unwrap()), None);
    assert_eq!(status, 204);
    assert_eq!(server.admin("GET", "/api/v1/users/erin/tokens", None).1.as_array().unwrap().len(), 1);
    assert_eq!(server.admin("DELETE", "/api/v1/tokens/HOTP-NOPE", None).0, 404);

    let (status, changed) = server.admin(
        "PATCH",
        "/api/v1/users/erin",
        Some(json!({ "phone": "+15551234567", "email": "erin@example.com", "password": "9876" })),
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["phone"].as_str(), changed["has_password"].as_bool()),
        (Some("+15551234567"), Some(true))
    );
    assert_eq!(server.admin("PATCH", "/api/v1/users/erin", Some(json!({ "phone": "555" }))).0, 422);
    let (_, cleared) = server.admin("PATCH", "/api/v1/users/erin", Some(json!({ "phone": null })));
    assert_eq!(cleared["phone"], Value::Null);

    assert_eq!(server.admin("DELETE", "/api/v1/users/erin", None).0, 204);
    assert_eq!(server.admin("GET", "/api/v1/users/erin", None).0, 404);
    assert_eq!(server.admin("DELETE", "/api/v1/users/erin", None).0, 404);
    assert_eq!(server.validate("erin", None, &valid).1["reason"], "invalid_credentials");
}

fn bad_requests_get_clear_4xx_errors(db: Db) {
    let server = Server::start(db, "");
    let http = client();
    let post = |path: &str, content_type: &str, body: String| {
        let response = http
            .post(format!("{}{path}", server.url))
            .header("content-type", content_type)
            .bearer_auth(ADMIN_KEY)
            .body(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_str::<Value>(&response.text().unwrap()).unwrap())
    };
    let cases = [
        ("/api/v1/validate", "application/json", "{\"username\": ".to_owned(), 400, "malformed JSON"),
        (
            "/api/v1/validate",
            "application/json",
            "{\"username\":\"a\",\"passcode\":123456}".to_owned(),
            422,
            "invalid type",
        ),
        (
            "/api/v1/validate",
            "application/json",
            "{\"passcode\":\"123456\"}".to_owned(),
            422,
            "missing field `username`",
        ),
        (
            "/api/v1/validate",
            "application/json",
            "{\"username\":\"a\",\"passcode\":\"1\",\"pin\":1}".to_owned(),
            422,
            "unknown field `pin`",
        ),
        ("/api/v1/validate", "text/plain", "{}".to_owned(), 415, "Content-Type: application/json"),
        (
            "/api/v1/validate",
            "application/json",
            format!("{{\"username\":\"{}\"}}", "a".repeat(20_000)),
            413,
            "larger than 16384",
        ),
        (
            "/api/v1/users",
            "application/json",
            "{\"username\":\"\"}".to_owned(),
            422,
            "username must be non-empty",
        ),
        (
            "/api/v1/users",
            "application/json",
            "{\"username\":\"x\",\"email\":\"nope\"}".to_owned(),
            422,
            "email",
        ),
        (
            "/api/v1/users/nobody/tokens",
            "application/json",
            "{\"kind\":\"totp\"}".to_owned(),
            404,
            "user 'nobody' not found",
        ),
        (
            "/api/v1/users/nobody/tokens",
            "application/json",
            "{\"kind\":\"fax\"}".to_owned(),
            422,
            "unknown variant",
        ),
    ];
    for (path, content_type, body, status, message) in cases {
        let (got, reply) = post(path, content_type, body);
        assert_eq!(got, status, "{path}: {reply}");
        assert!(reply["message"].as_str().unwrap().contains(message), "{path}: {reply}");
        assert!(reply["code"].is_string());
    }
    let (status, reply) =
        post("/api/v1/validate", "application/json", "{\"username\":\"a\",\"passcode\":123456}".into());
    assert_eq!(status, 422);
    assert!(!reply.to_string().contains("123456"), "the mistyped passcode is not echoed: {reply}");

    let (status, _) = server.admin("POST", "/api/v1/users", Some(json!({ "username": "frank" })));
    assert_eq!(status, 201);
    assert_eq!(server.admin("POST", "/api/v1/users", Some(json!({ "username": "frank" }))).0, 409);
    let (status, body) =
        server.admin("POST", "/api/v1/users/frank/tokens", Some(json!({ "kind": "totp", "digits": 12 })));
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_input")));
    assert_eq!(
        server.admin("POST", "/api/v1/users/frank/tokens", Some(json!({ "kind": "totp", "period": 5 }))).0,
        422
    );
    assert_eq!(
        server.validate("nobody", None, "123456"),
        (
            200,
            json!({ "result": "reject", "message": "authentication failed", "reason": "invalid_credentials" })
        )
    );

    let unauthenticated = http.get(format!("{}/api/v1/users", server.url)).send().unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    assert_eq!(unauthenticated.headers()["www-authenticate"], "Bearer");
    let wrong_key = http.get(format!("{}/api/v1/users", server.url)).bearer_auth("tsk_wrong").send().unwrap();
    assert_eq!(wrong_key.status().as_u16(), 401);
    assert_eq!(server.get("/api/v1/nothing-here").0, 404);
    assert_eq!(server.admin("GET", "/api/v1/audit?limit=lots", None).0, 400);
}

#[test]
fn openapi_health_and_metrics() {
    let server = Server::start(Db::Sqlite, "");
    let (status, text) = server.get("/api/v1/openapi.json");
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&text).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/v1/validate",
        "/api/v1/users",
        "/api/v1/users/{username}",
        "/api/v1/users/{username}/tokens",
        "/api/v1/tokens/{serial}/unlock",
        "/api/v1/tokens/{serial}/disable",
        "/api/v1/tokens/{serial}/enable",
        "/api/v1/tokens/{serial}/resync",
        "/api/v1/tokens/{serial}",
        "/api/v1/audit",
        "/healthz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    assert!(document["components"]["schemas"]["ValidateRequest"].is_object());
    let reply = &document["components"]["schemas"]["RadiusReplyAttribute"];
    assert!(reply["properties"]["vendor"].is_object(), "the RADIUS reply attributes are described: {reply}");
    assert!(document["components"]["securitySchemes"]["admin_key"].is_object());

    assert_eq!(server.get("/healthz"), (200, "{\"status\":\"ok\",\"database\":\"ok\"}".to_owned()));
    let enrollment = server.user_with_token("gina", json!({ "kind": "totp", "algorithm": "SHA512" }));
    let phone = phone_with(&enrollment);
    server.result("gina", &code(&phone, None));
    server.result("gina", "000000");
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("tessera_validations_total{result=\"accept\"} 1"), "{metrics}");
    assert!(metrics.contains("tessera_validations_total{result=\"reject\"} 1"), "{metrics}");
    assert!(metrics.contains("tessera_validation_duration_seconds_count 2"), "{metrics}");
    assert!(metrics.contains("tessera_lockouts_total 0"), "{metrics}");
}

fn first_run_creates_a_private_admin_key_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_plain(db, &data, &[]);
    let key_file = data.join("admin-token");
    let key = std::fs::read_to_string(&key_file).unwrap().trim().to_owned();
    assert!(key.starts_with("tsk_") && key.len() == 68);
    assert!(server.logs().contains(&key), "the key is shown once on the console");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key_file), 0o600);
        assert_eq!(mode(&data.join("server.key")), 0o600);
        assert_eq!(mode(&data), 0o700);
    }
    let http = client();
    let response = http.get(format!("{}/api/v1/users", server.url)).bearer_auth(&key).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    server.restart();
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), key, "no second key on restart");
    assert_eq!(server.logs().matches("First run").count(), 1);
}

fn rate_limits_per_user_answer_429(db: Db) {
    let limited = Server::start_plain(
        db,
        &tempfile::tempdir().unwrap().keep().join("data"),
        &[("TESSERA_ADMIN_TOKEN", ADMIN_KEY)],
    );
    let statuses: Vec<u16> = (0..32).map(|_| limited.validate("henry", None, "123456").0).collect();
    assert!(statuses[..30].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(&statuses[30..], [429, 429], "the default limit is 30 validations a minute per user");
    let (_, body) = limited.validate("henry", None, "123456");
    assert_eq!((body["result"].as_str(), body["reason"].as_str()), (Some("reject"), Some("rate_limited")));
    assert_eq!(limited.validate("ida", None, "123456").0, 200, "other users are not limited");
    let entries = audit(&limited, "username=henry&limit=1000");
    assert_eq!(
        entries.iter().filter(|e| e["reason"] == "rate_limited").count(),
        1,
        "refusals are audited once a minute"
    );
}

fn locks_lift_and_escalate(db: Db) {
    // Lock times are whole Unix seconds, so a lock of N seconds lasts between N - 1 and N.
    let server = Server::start(db, "[policy]\nmax_failures = 2\nlockout_reset_secs = 2\n");
    let enrollment = server.user_with_token("jack", json!({ "kind": "totp" }));
    let phone = phone_with(&enrollment);
    server.result("jack", "000000");
    server.result("jack", "000000");
    assert_eq!(server.validate("jack", None, &code(&phone, None)).1["reason"], "locked");
    std::thread::sleep(Duration::from_millis(2_100));
    assert_eq!(server.result("jack", "000000"), "reject", "the lock lifted, but this failure locks again");
    let relocked = std::time::Instant::now();
    assert_eq!(
        server.validate("jack", None, &code(&phone, None)).1["reason"],
        "locked",
        "for twice as long: 4 s"
    );
    std::thread::sleep(Duration::from_millis(2_200));
    assert_eq!(
        server.validate("jack", None, &code(&phone, None)).1["reason"],
        "locked",
        "2.2 s is not enough"
    );
    std::thread::sleep(Duration::from_millis(4_100).saturating_sub(relocked.elapsed()));
    assert_eq!(server.result("jack", &code(&phone, None)), "accept");
    assert_eq!(
        server.admin("GET", "/api/v1/users/jack/tokens", None).1[0]["failures"],
        0,
        "a success clears the count"
    );
    assert!(server.get("/metrics").1.contains("tessera_lockouts_total 2"));
}

fn locked_accounts_answer_locked_whatever_the_password(db: Db) {
    let server = Server::start(db, "[policy]\nmax_failures = 3\n");
    let (status, _) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": "lena", "password": "right-pin" })));
    assert_eq!(status, 201);
    let (_, enrollment) = server.admin("POST", "/api/v1/users/lena/tokens", Some(json!({ "kind": "totp" })));
    let phone = phone_with(&enrollment);
    for _ in 0..3 {
        assert_eq!(server.validate("lena", Some("wrong-pin"), "000000").1["reason"], "invalid_credentials");
    }
    let valid = code(&phone, None);
    for password in [Some("right-pin"), Some("wrong-pin"), None] {
        let (_, answer) = server.validate("lena", password, &valid);
        assert_eq!(
            (answer["result"].as_str(), answer["reason"].as_str()),
            (Some("reject"), Some("locked")),
            "{password:?}"
        );
    }
    let (_, tokens) = server.admin("GET", "/api/v1/users/lena/tokens", None);
    assert_eq!(tokens[0]["failures"], 3, "attempts on a locked account change nothing");
}

fn unknown_users_lock_like_real_ones(db: Db) {
    let server = Server::start(db, "[policy]\nmax_failures = 3\n");
    server.user_with_token("mike", json!({ "kind": "totp" }));
    for name in ["mike", "nobody"] {
        let reasons: Vec<String> = (0..5)
            .map(|_| server.validate(name, None, "000000").1["reason"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            reasons,
            ["invalid_credentials", "invalid_credentials", "invalid_credentials", "locked", "locked"],
            "{name}"
        );
    }
    assert!(audit(&server, "username=nobody").iter().any(|e| e["reason"] == "unknown_user_locked"));
}

#[test]
fn client_addresses_from_a_trusted_proxy_and_per_ip_limits() {
    let server = Server::start(
        Db::Sqlite,
        "trust_forwarded_for = true\n[rate_limit]\nper_ip_per_minute = 5\nper_user_per_minute = 0\n",
    );
    let http = client();
    let validate_from = |forwarded: &str| {
        http.post(format!("{}/api/v1/validate", server.url))
            .header("x-forwarded-for", forwarded)
            .json(&json!({ "username": "olga", "passcode": "123456" }))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let statuses: Vec<u16> = (0..6).map(|_| validate_from("203.0.113.9, 198.51.100.7")).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    assert_eq!(
        validate_from("198.51.100.7, 198.51.100.8"),
        200,
        "the proxy's entry (the last) is the client"
    );
    let entries = audit(&server, "username=olga&limit=1000");
    assert!(entries.iter().any(|e| e["client_ip"] == "198.51.100.7"));
    assert!(entries.iter().all(|e| e["client_ip"] != "203.0.113.9"), "the client-written entry is ignored");
}

#[test]
fn failed_admin_authentications_are_limited_and_audited() {
    let server = Server::start(Db::Sqlite, "");
    let http = client();
    let statuses: Vec<u16> = (0..22)
        .map(|i| {
            http.get(format!("{}/api/v1/users", server.url))
                .bearer_auth(format!("tsk_guess_{i}"))
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[21], 429);
    let entries = audit(&server, "action=admin.authenticate");
    assert_eq!(entries.len(), 1, "refusals are audited once a minute per client");
    assert_eq!(
        (entries[0]["reason"].as_str(), entries[0]["client_ip"].as_str()),
        (Some("unknown_key"), Some("127.0.0.1"))
    );
}

#[test]
fn unsafe_startup_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| {
        let output = std::process::Command::new(crate::support::binary("tessera-server"))
            .args(["--listen", &format!("127.0.0.1:{}", free_port()), "--data-dir"])
            .arg(dir.path().join("data"))
            .env_remove("TESSERA_ADMIN_TOKEN")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(run(&[("TESSERA_ADMIN_TOKEN", "tsk_short")]).contains("at least 32 characters"));
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/server.key"), "ab".repeat(32)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path().join("data/server.key"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        assert!(run(&[]).contains("can be read by other users"));
    }
}

#[test]
fn tls_with_a_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let port = free_port();
    let config = dir.path().join("tls.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(crate::support::binary("tessera-server"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("TESSERA_ADMIN_TOKEN", ADMIN_KEY)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let https = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let mut healthy = false;
    for _ in 0..200 {
        if let Ok(response) = https.get(format!("https://localhost:{port}/healthz")).send() {
            healthy = response.status().is_success();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let plain = client().get(format!("http://127.0.0.1:{port}/healthz")).send();
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy, "HTTPS answered with the configured certificate");
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "plain HTTP is not served");
}

fn admin_subcommands_work_on_the_database_directly(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let database_url = match &db {
        Db::Sqlite => format!("sqlite://{}", data.join("tessera.db").display()),
        Db::Postgres(url) => url.clone(),
    };
    let admin = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(crate::support::binary("tessera-server"))
            .arg("--data-dir")
            .arg(&data)
            .arg("--database-url")
            .arg(&database_url)
            .arg("admin")
            .args(args)
            .env("TESSERA_SERVER_KEY", SERVER_KEY)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "admin {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let created =
        admin(&["create-user", "kate", "--password-stdin", "--email", "kate@example.com"], "2468\n");
    assert!(created.contains("\"has_password\": true"), "{created}");
    let png = dir.path().join("kate.png");
    let enrolled = admin(&["enroll", "kate", "--png", png.to_str().unwrap()], "");
    assert!(enrolled.contains("otpauth://totp/Tessera:kate?secret="));
    let phone = Sandbox::with_keystore_vault();
    phone.run(&["add", "--qr", png.to_str().unwrap()]).ok();
    let listed = admin(&["list-tokens", "kate"], "");
    assert!(listed.contains("\"kind\": \"totp\"") && !listed.contains("secret"), "{listed}");
    let key = admin(&["create-key", "ci"], "");
    let app_key = admin(&["create-app", "vpn", "--service", "ACME VPN"], "");
    assert!(app_key.trim().starts_with("tak_") && app_key.trim().len() == 68, "{app_key}");

    let server = Server::start_plain(db.clone(), &data, &[("TESSERA_SERVER_KEY", SERVER_KEY)]);
    let (status, body) = server.post_as(
        app_key.trim(),
        "/api/v1/validate",
        &json!({ "username": "kate", "password": "2468", "passcode": code(&phone, None) }),
    );
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("accept")),
        "the application's key works: {body}"
    );
    let response =
        client().get(format!("{}/api/v1/users", server.url)).bearer_auth(key.trim()).send().unwrap();
    assert_eq!(response.status().as_u16(), 200, "the key from `admin create-key` works");
    drop(server);

    let apps = admin(&["list-apps"], "");
    assert!(apps.contains("\"service_name\": \"ACME VPN\"") && !apps.contains("tak_"), "{apps}");
    admin(&["revoke-app", "vpn"], "");
    let keys: Value = serde_json::from_str(&admin(&["list-keys"], "")).unwrap();
    let ci = keys.as_array().unwrap().iter().find(|k| k["name"] == "ci").unwrap()["id"].to_string();
    assert!(!keys.to_string().contains("tsk_"), "keys are never listed: {keys}");
    admin(&["revoke-key", &ci], "");
    let server = Server::start_plain(db, &data, &[("TESSERA_SERVER_KEY", SERVER_KEY)]);
    let response =
        client().get(format!("{}/api/v1/users", server.url)).bearer_auth(key.trim()).send().unwrap();
    assert_eq!(response.status().as_u16(), 401, "a revoked admin key is refused");
    let (status, _) = server.post_as(app_key.trim(), "/api/v1/validate", &json!({ "username": "kate" }));
    assert_eq!(status, 401, "a revoked application's key is refused");
    drop(server);
    let log = admin(&["audit", "--username", "kate"], "");
    let actions: HashSet<&str> = log
        .lines()
        .filter_map(|l| l.trim().strip_prefix("\"action\": \""))
        .map(|a| a.trim_end_matches("\","))
        .collect();
    assert!(
        actions.contains("user.create") && actions.contains("token.enroll") && actions.contains("validate"),
        "{actions:?}"
    );
    let log = admin(&["audit", "--limit", "200"], "");
    for action in ["application.create", "application.revoke", "admin_key.revoke"] {
        assert!(log.contains(action), "{action} is audited: {log}");
    }
}
