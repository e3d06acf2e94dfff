//! Users from a real OpenLDAP directory (`tests/it/ldap_directory.rs`): their directory password
//! checked by bind over StartTLS or LDAPS, their account created at their first login, group
//! membership required, a locked user's directory never asked, a sync that creates, updates and
//! disables, and a directory that stops: refused with a clear reason, or the local PIN when the
//! policy says so. Push approval and One Swipe take the directory password too.

use serde_json::{Value, json};
use tessera_core::otp::{Algorithm, Digits, hotp};
use tessera_core::otpauth::OtpAuth;

use crate::ldap_directory::{MFA_GROUP, Slapd, Transport, directory};
use crate::push::{enroll_device, finish, wait_status};
use crate::server_support::{Db, Server};
use crate::support::Sandbox;

/// An HOTP token for `username`; its codes by counter.
fn hotp_token(server: &Server, username: &str) -> impl Fn(u64) -> String {
    let (status, enrollment) =
        server.admin("POST", &format!("/api/v1/users/{username}/tokens"), Some(json!({ "kind": "hotp" })));
    assert_eq!(status, 201, "{enrollment}");
    let otp = OtpAuth::parse(enrollment["otpauth_uri"].as_str().unwrap()).unwrap().otp;
    let secret = otp.secret().clone();
    move |counter| hotp(&secret, Algorithm::Sha1, Digits::new(6).unwrap(), counter).expose().to_owned()
}

fn login(server: &Server, username: &str, password: &str, passcode: &str) -> Value {
    let (status, body) = server.validate(username, Some(password), passcode);
    assert!(status == 200 || status == 429, "{status} {body}");
    body
}

fn last_reason(server: &Server, username: &str) -> String {
    let (_, audit) = server.admin("GET", &format!("/api/v1/audit?username={username}&limit=1"), None);
    audit[0]["reason"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn directory_users_log_in_with_their_directory_password_and_a_code() {
    let slapd = directory();
    let dora = slapd.add_person("dora", "Dora Dunn", "dora-pw-1", "+44 7700 900511", true);
    slapd.add_person("eli", "Eli Evans", "eli-pw-1", "+44 7700 900512", false);
    let toml = format!(
        "[policy]\nmax_failures = 3\n\n{}",
        slapd.config_toml("corp", Transport::StartTls, &format!("allowed_groups = [\"{MFA_GROUP}\"]"))
    );
    let server = Server::start(Db::Sqlite, &toml);

    let (status, _) = server.admin("GET", "/api/v1/users/dora", None);
    assert_eq!(status, 404, "not in Tessera before her first login");
    let first = login(&server, "dora", "dora-pw-1", "");
    assert_eq!(first["result"], "reject", "{first}");
    assert_eq!(last_reason(&server, "dora"), "first_login");
    let (status, user) = server.admin("GET", "/api/v1/users/dora", None);
    assert_eq!(status, 200, "created at her first login: {user}");
    assert_eq!(
        (&user["directory"], &user["display_name"], &user["phone"], &user["email"], &user["has_password"]),
        (
            &json!("corp"),
            &json!("Dora Dunn"),
            &json!("+447700900511"),
            &json!("dora@example.com"),
            &json!(false)
        ),
        "no password is stored: {user}"
    );

    let code = hotp_token(&server, "dora");
    assert_eq!(
        login(&server, "dora", "dora-pw-1", &code(0))["result"],
        "accept",
        "directory password and code"
    );
    assert_eq!(login(&server, "dora", "not-her-password", &code(1))["result"], "reject");
    assert_eq!(last_reason(&server, "dora"), "wrong_password");
    assert_eq!(login(&server, "dora", "", &code(1))["result"], "reject", "an empty password is never bound");
    assert_eq!(
        login(&server, "dora", "dora-pw-1", &code(1))["result"],
        "accept",
        "the lock counts, then clears"
    );

    let refused = login(&server, "eli", "eli-pw-1", "");
    assert_eq!(refused["result"], "reject", "{refused}");
    assert_eq!(server.admin("GET", "/api/v1/users/eli", None).0, 404, "outside the group: never created");
    assert_eq!(login(&server, "nobody-here", "whatever", "")["result"], "reject");

    for _ in 0..3 {
        login(&server, "dora", "wrong-again", &code(2));
    }
    let binds = slapd.binds_as(&dora);
    assert!(binds >= 3, "each login so far bound as dora: {binds}");
    let locked = login(&server, "dora", "dora-pw-1", &code(2));
    assert_eq!(locked["reason"], "locked", "{locked}");
    assert_eq!(slapd.binds_as(&dora), binds, "a locked user's password is not tried on the directory");
    assert!(!server.logs().contains("dora-pw-1"), "no directory password in the logs");
}

#[test]
fn a_sync_creates_updates_and_disables_the_users_the_directory_lists() {
    let slapd = directory();
    let fred = slapd.add_person("fred", "Fred Fox", "fred-pw-1", "+44 7700 900521", true);
    let gina = slapd.add_person("gina", "Gina Gray", "gina-pw-1", "+44 7700 900522", true);
    slapd.modify(&format!(
        "dn: {gina}\nchangetype: modify\ndelete: mobile\n-\nadd: telephoneNumber\ntelephoneNumber: +44 20 7946 0522\n"
    ));
    slapd.modify(&format!(
        "dn: {fred}\nchangetype: modify\nadd: telephoneNumber\ntelephoneNumber: +44 20 7946 0521\n"
    ));
    let toml = slapd.config_toml(
        "corp",
        Transport::Ldaps,
        &format!("allowed_groups = [\"{MFA_GROUP}\"]\nuser_filter = \"(&(objectClass=inetOrgPerson)(uid={{username}})(|(uid=fred)(uid=gina)))\"\n\
                  [directory.attributes]\nphone = \"telephoneNumber\"\nmobile = \"mobile\""),
    );
    let server = Server::start(Db::Sqlite, &toml);
    let sync = || {
        let output = server.admin_cli(&["sync"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
        reports[0].clone()
    };
    let first = sync();
    assert_eq!((&first["created"], &first["gone"]), (&json!(["fred", "gina"]), &json!([])), "{first}");
    let phone = |name: &str| server.admin("GET", &format!("/api/v1/users/{name}"), None).1["phone"].clone();
    assert_eq!(phone("fred"), "+447700900521", "the mobile number comes first");
    assert_eq!(phone("gina"), "+442079460522", "the phone number stands in for a missing mobile");
    let code = hotp_token(&server, "fred");
    assert_eq!(login(&server, "fred", "fred-pw-1", &code(0))["result"], "accept");

    slapd.modify(&format!("dn: {fred}\nchangetype: modify\nreplace: mobile\nmobile: +44 7700 900529\n"));
    let second = sync();
    assert_eq!((&second["updated"], second["unchanged"].as_u64()), (&json!(["fred"]), Some(1)), "{second}");
    assert_eq!(phone("fred"), "+447700900529");

    slapd.delete(&fred);
    let (status, reports) = server.admin("POST", "/api/v1/directories/sync", None);
    assert_eq!(status, 200, "the API syncs as the CLI does: {reports}");
    let third = reports[0].clone();
    assert_eq!(third["gone"], json!(["fred"]), "{third}");
    let (_, tokens) = server.admin("GET", "/api/v1/users/fred/tokens", None);
    assert_eq!(
        tokens[0]["enabled"], false,
        "the tokens of a user the directory dropped are disabled: {tokens}"
    );
    assert_eq!(login(&server, "fred", "fred-pw-1", &code(1))["result"], "reject");
    assert_eq!(last_reason(&server, "fred"), "directory_gone");
    let (_, audit) = server.admin("GET", "/api/v1/audit?username=fred&limit=10", None);
    assert!(audit.to_string().contains("user.directory_gone"), "{audit}");
}

#[test]
fn a_directory_that_stops_refuses_clearly_or_lets_the_local_pin_through() {
    let slapd = Slapd::start();
    slapd.add_person("hana", "Hana Hill", "hana-pw-1", "+44 7700 900531", true);
    slapd.add_person("ivan", "Ivan Ives", "ivan-pw-1", "+44 7700 900532", true);
    let refuse = Server::start(Db::Sqlite, &slapd.config_toml("corp", Transport::Plain, ""));
    let fallback = Server::start(
        Db::Sqlite,
        &slapd.config_toml("corp", Transport::StartTls, "when_unreachable = \"local_pin\""),
    );
    login(&refuse, "hana", "hana-pw-1", "");
    let hana = hotp_token(&refuse, "hana");
    assert_eq!(
        login(&refuse, "hana", "hana-pw-1", &hana(0))["result"],
        "accept",
        "plain ldap:// to this machine"
    );
    login(&fallback, "ivan", "ivan-pw-1", "");
    let ivan = hotp_token(&fallback, "ivan");
    let (status, body) =
        fallback.admin("PATCH", "/api/v1/users/ivan", Some(json!({ "password": "local-pin-4321" })));
    assert_eq!(status, 200, "{body}");

    slapd.stop();
    let down = login(&refuse, "hana", "hana-pw-1", &hana(1));
    assert_eq!((&down["result"], &down["reason"]), (&json!("reject"), &json!("unavailable")), "{down}");
    assert!(down["message"].as_str().unwrap().contains("cannot be checked now"), "{down}");
    assert_eq!(last_reason(&refuse, "hana"), "directory_unavailable");
    let (_, audit) = refuse.admin("GET", "/api/v1/audit?username=hana&limit=5", None);
    assert!(audit.to_string().contains("directory.unreachable"), "audited: {audit}");
    assert_eq!(login(&fallback, "ivan", "local-pin-4321", &ivan(0))["result"], "accept", "the local PIN");
    assert_eq!(login(&fallback, "ivan", "ivan-pw-1", &ivan(1))["result"], "reject", "not the directory's");
}

#[test]
fn push_and_one_swipe_take_the_directory_password() {
    let slapd = directory();
    slapd.add_person("jade", "Jade Jones", "jade-pw-1", "+44 7700 900541", true);
    let server = Server::start(Db::Sqlite, &slapd.config_toml("corp", Transport::StartTls, ""));
    assert_eq!(login(&server, "jade", "jade-pw-1", "")["result"], "reject", "her first login creates her");
    let phone = Sandbox::with_keystore_vault();
    enroll_device(&server, &phone, "jade");

    let wrong = login(&server, "jade", "not-jade", "");
    assert_eq!(wrong["result"], "reject", "a wrong directory password sends no push: {wrong}");
    let started = login(&server, "jade", "jade-pw-1", "");
    assert_eq!(started["result"], "challenge", "{started}");
    let transaction = started["transaction_id"].as_str().unwrap();
    let mut approve = vec!["push", "approve", transaction];
    let number = started["number"].as_u64().map(|n| n.to_string());
    if let Some(number) = &number {
        approve.extend(["--number", number.as_str()]);
    }
    phone.run(&approve).ok();
    assert_eq!(wait_status(&server, transaction, 10), "approved");
    assert_eq!(finish(&server, "jade", transaction), "accept");

    let code = || phone.run(&["oneswipe", "--text"]).ok().trim().to_owned();
    let (_, refused) = server.post("/api/v1/oneswipe", &json!({ "payload": code(), "password": "not-jade" }));
    assert_eq!(refused["result"], "reject", "{refused}");
    let (_, accepted) =
        server.post("/api/v1/oneswipe", &json!({ "payload": code(), "password": "jade-pw-1" }));
    assert_eq!(
        (&accepted["result"], &accepted["username"]),
        (&json!("accept"), &json!("jade")),
        "{accepted}"
    );
}

#[test]
fn a_groups_table_limits_the_token_kinds_its_members_may_have() {
    let slapd = directory();
    let kim = slapd.add_person("kim", "Kim Kent", "kim-pw-1", "+44 7700 900551", true);
    slapd.add_person("lee", "Lee Lane", "lee-pw-1", "+44 7700 900552", false);
    slapd.add(&format!(
        "dn: cn=contractors,ou=groups,{}\nobjectClass: groupOfNames\ncn: contractors\nmember: {kim}\n",
        crate::ldap_directory::BASE
    ));
    let table = format!(
        "[[directory.kinds_by_group]]\ngroup = \"cn=contractors,ou=groups,{}\"\nkinds = [\"sms\", \"hotp\"]\n",
        crate::ldap_directory::BASE
    );
    let server = Server::start(Db::Sqlite, &slapd.config_toml("corp", Transport::StartTls, &table));
    login(&server, "kim", "kim-pw-1", "");
    login(&server, "lee", "lee-pw-1", "");
    let enroll = |user: &str, kind: &str| {
        server.admin("POST", &format!("/api/v1/users/{user}/tokens"), Some(json!({ "kind": kind })))
    };
    let (status, refused) = enroll("kim", "totp");
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("allow only these token kinds: hotp, sms"),
        "{refused}"
    );
    assert_eq!(enroll("kim", "hotp").0, 201, "a kind the group allows");
    assert_eq!(enroll("lee", "totp").0, 201, "a user in no listed group may have any kind");
}
