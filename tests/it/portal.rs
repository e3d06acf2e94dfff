//! The self-service portal's parts, end to end against a real server. So far: registration codes,
//! which the help desk issues (admin API and CLI) for a user without any token.

use serde_json::json;

use crate::server_support::{Db, Server};

#[test]
fn registration_codes_come_from_the_api_and_the_cli_and_are_kept_only_as_a_hash() {
    let server = Server::start(Db::Sqlite, "");
    let (status, _) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": "ann", "password": "2580" })));
    assert_eq!(status, 201);

    let before = tessera_core::otp::unix_now();
    let (status, issued) = server.admin("POST", "/api/v1/users/ann/registration-code", Some(json!({})));
    assert_eq!(status, 201, "{issued}");
    let code = issued["code"].as_str().unwrap().to_owned();
    let groups: Vec<&str> = code.split('-').collect();
    assert!(groups.len() == 5 && groups.iter().all(|g| g.len() == 4), "{code}");
    let expires_at = issued["expires_at"].as_u64().unwrap();
    assert!((before + 72 * 3600..=before + 72 * 3600 + 60).contains(&expires_at), "72 hours by default");

    let (status, body) = server.validate("ann", Some("2580"), &code);
    assert_eq!((status, body["result"].as_str()), (200, Some("reject")), "not a passcode: {body}");

    let output = server.admin_cli(&["registration-code", "ann", "--valid-hours", "2"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    let cli_code = printed.lines().find_map(|l| l.strip_prefix("code: ")).unwrap().to_owned();
    assert_ne!(cli_code, code);

    let (status, _) = server.admin("POST", "/api/v1/users/nobody/registration-code", Some(json!({})));
    assert_eq!(status, 404);
    let (status, error) =
        server.admin("POST", "/api/v1/users/ann/registration-code", Some(json!({ "valid_hours": 0 })));
    assert_eq!(status, 422, "{error}");

    let (_, audit) = server.admin("GET", "/api/v1/audit?username=ann&limit=10", None);
    let issued_records =
        audit.as_array().unwrap().iter().filter(|r| r["action"] == "user.registration_code").count();
    assert_eq!(issued_records, 2, "{audit}");
    let stored: Vec<u8> = ["tessera.db", "tessera.db-wal"]
        .iter()
        .flat_map(|f| std::fs::read(server.data_dir.join(f)).unwrap_or_default())
        .collect();
    for shown in [&code, &cli_code] {
        let bare = shown.replace('-', "");
        assert!(!String::from_utf8_lossy(&stored).contains(&bare), "the database keeps no code");
        assert!(
            !server.logs().contains(&bare) && !audit.to_string().contains(&bare),
            "nor do logs and audit"
        );
    }
}
