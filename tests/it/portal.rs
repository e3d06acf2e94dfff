//! The self-service portal (`/portal`), end to end against real servers: signing in through the
//! same validation as `/api/v1/validate` (codes, push approved by the CLI, registration codes),
//! sessions in the database (cookie flags, idle expiry, another replica), forms refused from
//! another site or without their token, and the pages in real Chromium, checked by axe-core and
//! screenshot at a desktop's and a phone's width into `target/test-output/`.

use std::collections::BTreeMap;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::login_page::Browser;
use crate::push::user_with_device;
use crate::server_support::{Db, SERVER_KEY, Server};
use crate::support::{Sandbox, oathtool, test_output_dir};

/// The portal on, with wrong passwords and codes locking after three tries.
const PORTAL: &str = "[portal]\nenabled = true\n[policy]\nmax_failures = 3\n";
/// axe-core, installed by `scripts/setup-debian.sh`.
const AXE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tools/axe/node_modules/axe-core/axe.min.js");

/// A browser without JavaScript or a cookie jar of its own: what a person's browser sends (the
/// portal's cookies, `Origin` and `Sec-Fetch-Site`) set by hand, so each can be left out or forged.
struct Visitor {
    http: reqwest::blocking::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    set_cookies: Vec<String>,
}

/// An answer: status, `Location`, body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Visitor {
    fn new(server: &Server) -> Self {
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self { http, base: server.url.clone(), cookies: BTreeMap::new(), set_cookies: Vec::new() }
    }

    /// The same visitor's cookies, at another replica.
    fn at(&self, server: &Server) -> Self {
        Self { base: server.url.clone(), cookies: self.cookies.clone(), ..Self::new(server) }
    }

    fn get(&mut self, path: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request)
    }

    /// Posts `fields` as a form from the portal's own page.
    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let base = self.base.clone();
        self.post_from(path, fields, &[("origin", &base), ("sec-fetch-site", "same-origin")])
    }

    fn post_from(&mut self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request)
    }

    fn send(&mut self, mut request: reqwest::blocking::RequestBuilder) -> Answer {
        if !self.cookies.is_empty() {
            let jar: Vec<String> =
                self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect();
            request = request.header("cookie", jar.join("; "));
        }
        let response = request.send().unwrap();
        self.set_cookies.clear();
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap().to_owned();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if value.is_empty() || set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            self.set_cookies.push(set);
        }
        let status = response.status().as_u16();
        let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
        Answer { status, location, body: response.text().unwrap() }
    }

    /// Opens the sign-in page and signs in; returns the answer to the form.
    fn sign_in(&mut self, fields: &[(&str, &str)]) -> Answer {
        let page = self.get("/portal");
        assert_eq!(page.status, 200, "{}", page.body);
        let token = form_token(&page.body);
        let mut form = vec![("form_token", token.as_str())];
        form.extend_from_slice(fields);
        self.post("/portal/sign-in", &form)
    }
}

/// The form token in a page.
fn form_token(html: &str) -> String {
    let after = html.split("name=\"form_token\" value=\"").nth(1).expect("a form with a token");
    after.split('"').next().unwrap().to_owned()
}

/// A user with a password and an HOTP token; returns the token's base32 seed (for oathtool).
fn user_with_hotp(server: &Server, username: &str, password: &str) -> String {
    let (status, _) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": username, "password": password })));
    assert_eq!(status, 201);
    let (status, enrollment) =
        server.admin("POST", &format!("/api/v1/users/{username}/tokens"), Some(json!({ "kind": "hotp" })));
    assert_eq!(status, 201, "{enrollment}");
    let uri = enrollment["otpauth_uri"].as_str().unwrap();
    uri.split("secret=").nth(1).unwrap().split('&').next().unwrap().to_owned()
}

fn hotp(seed: &str, counter: u64) -> String {
    oathtool(&["--base32", "--hotp", "-c", &counter.to_string(), seed])
}

fn audit(server: &Server, username: &str) -> Vec<Value> {
    server
        .admin("GET", &format!("/api/v1/audit?username={username}&limit=50"), None)
        .1
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn the_portal_signs_in_with_a_code_and_refuses_forms_from_elsewhere() {
    let server = Server::start(Db::Sqlite, PORTAL);
    let seed = user_with_hotp(&server, "ann", "2580");
    let mut ann = Visitor::new(&server);

    let page = ann.get("/portal");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h1 id=\"heading\">Sign in</h1>"), "{}", page.body);
    assert_eq!(ann.set_cookies.len(), 1);
    let sign_in_cookie = &ann.set_cookies[0];
    assert!(sign_in_cookie.starts_with("__Host-tessera-sign-in="), "{sign_in_cookie}");
    assert!(sign_in_cookie.ends_with("; Path=/; Secure; HttpOnly; SameSite=Strict"), "{sign_in_cookie}");
    let token = form_token(&page.body);
    let code = hotp(&seed, 0);
    let form =
        [("form_token", token.as_str()), ("username", "ann"), ("password", "2580"), ("passcode", &code)];

    let foreign = ann.post_from(
        "/portal/sign-in",
        &form,
        &[("origin", "http://attacker.example"), ("sec-fetch-site", "cross-site")],
    );
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let forged_origin = ann.post_from("/portal/sign-in", &form, &[("origin", "http://attacker.example")]);
    assert_eq!(forged_origin.status, 403, "an Origin alone must match too");
    let unsaid = ann.post_from("/portal/sign-in", &form, &[]);
    assert_eq!(unsaid.status, 403, "a form must say where it comes from");
    let zeros = "0".repeat(64);
    let stale = ann.post("/portal/sign-in", &[("form_token", zeros.as_str()), form[1], form[2], form[3]]);
    assert!(stale.status == 200 && stale.body.contains("This page had expired"), "{}", stale.body);
    assert!(
        audit(&server, "ann").iter().all(|r| r["action"] != "validate"),
        "none of these reached validation"
    );

    let signed_in =
        ann.post("/portal/sign-in", &[("form_token", &form_token(&stale.body)), form[1], form[2], form[3]]);
    assert_eq!(
        (signed_in.status, signed_in.location.as_deref()),
        (303, Some("/portal")),
        "{}",
        signed_in.body
    );
    let session_cookie =
        ann.set_cookies.iter().find(|c| c.starts_with("__Host-tessera-portal=")).unwrap().clone();
    assert!(session_cookie.ends_with("; Path=/; Secure; HttpOnly; SameSite=Strict"), "{session_cookie}");
    assert!(
        !session_cookie.contains("Max-Age") && !session_cookie.contains("Expires"),
        "ends with the browser"
    );
    let session_id = ann.cookies["__Host-tessera-portal"].clone();
    assert_eq!(session_id.len(), 64, "256 bits");

    let home = ann.get("/portal");
    assert!(home.body.contains("Your devices") && home.body.contains("Signed in as <strong>ann</strong>"));
    let (_, tokens) = server.admin("GET", "/api/v1/users/ann/tokens", None);
    assert!(home.body.contains(tokens[0]["serial"].as_str().unwrap()), "{}", home.body);
    assert!(home.body.contains("this portal"), "the sign-in is listed: {}", home.body);
    let stored: Vec<u8> = ["tessera.db", "tessera.db-wal"]
        .iter()
        .flat_map(|f| std::fs::read(server.data_dir.join(f)).unwrap_or_default())
        .collect();
    assert!(!String::from_utf8_lossy(&stored).contains(&session_id), "only the id's hash is stored");
    let record = audit(&server, "ann").into_iter().find(|r| r["action"] == "validate").unwrap();
    assert_eq!((record["actor"].as_str(), record["result"].as_str()), (Some("portal"), Some("accept")));

    let forged = ann.post("/portal/sign-out", &[("form_token", &"f".repeat(64))]);
    assert_eq!(forged.status, 403, "a form without this session's token");
    let other_site = ann.post_from(
        "/portal/sign-out",
        &[("form_token", &form_token(&home.body))],
        &[("origin", "http://attacker.example"), ("sec-fetch-site", "cross-site")],
    );
    assert_eq!(other_site.status, 403);
    assert!(ann.get("/portal").body.contains("Your devices"), "still signed in");
    let out = ann.post("/portal/sign-out", &[("form_token", &form_token(&home.body))]);
    assert_eq!(out.status, 303);
    assert!(ann.get("/portal").body.contains("<h1 id=\"heading\">Sign in</h1>"));
    let mut replay = Visitor::new(&server);
    replay.cookies.insert("__Host-tessera-portal".into(), session_id);
    assert!(replay.get("/portal").body.contains("Sign in"), "a signed-out session is gone");
    assert!(audit(&server, "ann").iter().any(|r| r["action"] == "portal.sign_out"));
}

on_both_databases!(wrong_codes_at_the_portal_count_as_at_validate);

fn wrong_codes_at_the_portal_count_as_at_validate(db: Db) {
    let server = Server::start(db, PORTAL);
    let seed = user_with_hotp(&server, "bob", "2580");
    let mut bob = Visitor::new(&server);
    for _ in 0..3 {
        let refused = bob.sign_in(&[("username", "bob"), ("password", "2580"), ("passcode", "000000")]);
        assert_eq!(refused.status, 401);
        assert!(refused.body.contains("Authentication failed."), "{}", refused.body);
        assert!(refused.body.contains("value=\"bob\""), "the name stays typed");
    }
    let records = audit(&server, "bob");
    let wrong = records.iter().filter(|r| r["reason"] == "wrong_code" && r["actor"] == "portal").count();
    assert_eq!(wrong, 3, "{records:?}");
    let (_, answer) = server.validate("bob", Some("2580"), &hotp(&seed, 0));
    assert_eq!(answer["reason"], "locked", "three wrong codes at the portal locked the token: {answer}");
    let locked = bob.sign_in(&[("username", "bob"), ("password", "2580"), ("passcode", &hotp(&seed, 1))]);
    assert!(locked.body.contains("locked"), "{}", locked.body);
}

#[test]
fn a_session_idles_out_and_lives_on_another_replica() {
    let db = Db::fresh_postgres();
    let toml = "[portal]\nenabled = true\nidle_secs = 3\n";
    let first = Server::start_with_key(db.clone(), toml, SERVER_KEY);
    let second = Server::start_with_key(db, toml, SERVER_KEY);
    let seed = user_with_hotp(&first, "cy", "2580");
    let mut cy = Visitor::new(&first);
    let signed_in = cy.sign_in(&[("username", "cy"), ("password", "2580"), ("passcode", &hotp(&seed, 0))]);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let mut there = cy.at(&second);
    let home = there.get("/portal");
    assert!(home.body.contains("Your devices"), "the other replica knows the session: {}", home.body);
    let out = there.post("/portal/sign-out", &[("form_token", &form_token(&home.body))]);
    assert_eq!(out.status, 303);
    assert!(cy.get("/portal").body.contains("Sign in"), "signed out on the first replica too");

    let signed_in = cy.sign_in(&[("username", "cy"), ("password", "2580"), ("passcode", &hotp(&seed, 1))]);
    assert_eq!(signed_in.status, 303);
    assert!(cy.get("/portal").body.contains("Your devices"));
    std::thread::sleep(Duration::from_secs(4));
    let idle = cy.get("/portal");
    assert!(
        idle.body.contains("<h1 id=\"heading\">Sign in</h1>"),
        "idle for longer than idle_secs: {}",
        idle.body
    );
}

#[test]
fn a_user_without_a_token_signs_in_once_with_a_registration_code() {
    let server = Server::start(Db::Sqlite, PORTAL);
    let (status, _) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": "dee", "password": "2580" })));
    assert_eq!(status, 201);
    let (_, issued) = server.admin("POST", "/api/v1/users/dee/registration-code", Some(json!({})));
    let code = issued["code"].as_str().unwrap().to_owned();
    let mut dee = Visitor::new(&server);

    let wrong_password =
        dee.sign_in(&[("username", "dee"), ("password", "0000"), ("registration_code", &code)]);
    assert_eq!(wrong_password.status, 401);
    let wrong_code = dee.sign_in(&[
        ("username", "dee"),
        ("password", "2580"),
        ("registration_code", "AAAA-BBBB-CCCC-DDDD-EEEE"),
    ]);
    assert_eq!(wrong_code.status, 401);
    assert!(wrong_code.body.contains("<details open>"), "the code field stays open");
    let reasons: Vec<String> =
        audit(&server, "dee").iter().filter_map(|r| r["reason"].as_str().map(str::to_owned)).collect();
    assert!(
        reasons.contains(&"wrong_password".to_owned())
            && reasons.contains(&"wrong_registration_code".to_owned())
    );

    let typed = code.to_ascii_lowercase().replace('-', " ");
    let signed_in = dee.sign_in(&[("username", "dee"), ("password", "2580"), ("registration_code", &typed)]);
    assert_eq!(signed_in.status, 303, "a wrong password and a wrong code burned nothing: {}", signed_in.body);
    let home = dee.get("/portal");
    assert!(home.body.contains("You have no device yet"), "{}", home.body);
    let out = dee.post("/portal/sign-out", &[("form_token", &form_token(&home.body))]);
    assert_eq!(out.status, 303);
    let again = dee.sign_in(&[("username", "dee"), ("password", "2580"), ("registration_code", &code)]);
    assert_eq!(again.status, 401, "a registration code works once");
    let (_, answer) = server.validate("dee", Some("2580"), &code);
    assert_eq!(answer["result"], "reject", "and never at /api/v1/validate");
}

/// The page's accessibility problems that axe-core rates serious or critical; all of them are
/// written next to the screenshots.
fn serious_accessibility_problems(browser: &Browser, name: &str) -> Vec<String> {
    let axe =
        std::fs::read_to_string(AXE).unwrap_or_else(|e| panic!("{AXE} ({e}): run scripts/setup-debian.sh"));
    let violations = browser.run(async |page| {
        page.execute(&axe, vec![]).await.unwrap();
        page.execute_async(
            "const done = arguments[arguments.length - 1]; \
             axe.run(document, { resultTypes: ['violations'] }).then((r) => done(r.violations), (e) => done([{ id: 'axe-failed', impact: 'critical', help: String(e), nodes: [] }]));",
            vec![],
        )
        .await
        .unwrap()
    });
    std::fs::write(
        test_output_dir().join(format!("{name}.axe.json")),
        serde_json::to_string_pretty(&violations).unwrap(),
    )
    .unwrap();
    violations
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .map(|v| format!("{}: {} ({})", v["id"], v["help"], v["nodes"]))
        .collect()
}

/// Screenshots `name` at a desktop's and a phone's width, checking each with axe-core.
fn look_at(browser: &Browser, name: &str) {
    for (width, height, suffix) in [(900, 900, ""), (375, 812, "-phone")] {
        browser.run(async |page| page.set_window_size(width, height).await.unwrap());
        let shot = format!("{name}{suffix}");
        browser.screenshot(&format!("{shot}.png"));
        let problems = serious_accessibility_problems(browser, &shot);
        assert!(problems.is_empty(), "{shot}: {problems:#?}");
    }
    browser.run(async |page| page.set_window_size(900, 900).await.unwrap());
}

fn fill(browser: &Browser, fields: &[(&str, &str)]) {
    browser.run(async |page| {
        for (id, text) in fields {
            let field = page.find(Locator::Id(id)).await.unwrap();
            field.clear().await.unwrap();
            field.send_keys(text).await.unwrap();
        }
        let submit = page.find(Locator::Id("submit")).await.unwrap();
        submit.clone().click().await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while submit.text().await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "the form was not answered with a page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// The page's heading (the page's source when it has none).
fn heading(browser: &Browser) -> String {
    browser.run(async |page| match page.find(Locator::Css("h1")).await {
        Ok(heading) => heading.text().await.unwrap_or_default(),
        Err(_) => format!("no heading in: {}", page.source().await.unwrap_or_default()),
    })
}

/// Waits until the page's heading is `text`.
fn wait_for_heading(browser: &Browser, text: &str, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let now = heading(browser);
        if now == text {
            return;
        }
        if std::time::Instant::now() > deadline {
            let shown = browser
                .run(async |page| page.find(Locator::Css("main")).await.unwrap().text().await.unwrap());
            panic!("expected the page {text:?}, still on {now:?}: {shown}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn in_chromium_the_portal_signs_in_with_a_code_or_a_push_and_is_accessible() {
    let server = Server::start(Db::Sqlite, PORTAL);
    let seed = user_with_hotp(&server, "erin", "2580");
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&server, &phone, "finn", Some("2580"));
    let browser = Browser::start(None);
    let portal = format!("{}/portal", server.url);

    browser.run(async |page| page.goto(&portal).await.unwrap());
    look_at(&browser, "portal-sign-in");
    fill(&browser, &[("username", "erin"), ("password", "2580"), ("passcode", "000000")]);
    assert_eq!(heading(&browser), "Sign in");
    look_at(&browser, "portal-sign-in-refused");
    fill(&browser, &[("username", "erin"), ("password", "2580"), ("passcode", &hotp(&seed, 0))]);
    wait_for_heading(&browser, "Your devices", Duration::from_secs(10));
    look_at(&browser, "portal-devices");
    let cookie = browser.run(async |page| page.get_named_cookie("__Host-tessera-portal").await.unwrap());
    assert!(cookie.secure() == Some(true) && cookie.http_only() == Some(true), "{cookie:?}");
    assert_eq!(cookie.same_site().map(|s| s.to_string()).as_deref(), Some("Strict"));
    browser.run(async |page| page.find(Locator::Id("sign-out")).await.unwrap().click().await.unwrap());
    wait_for_heading(&browser, "Sign in", Duration::from_secs(10));

    let mut nopush = Visitor::new(&server);
    let asked = nopush.sign_in(&[("username", "finn"), ("password", "2580-nopush")]);
    assert!(
        asked.status == 200 && asked.body.contains("Enter the passcode from your token."),
        "{}",
        asked.body
    );
    assert!(audit(&server, "finn").iter().any(|r| r["reason"] == "nopush" && r["actor"] == "portal"));
    let halfway = nopush.sign_in(&[("username", "finn"), ("password", "2580")]);
    assert_eq!(halfway.status, 303, "a push is awaited");
    let waiting = nopush.get("/portal");
    assert!(waiting.body.contains("Approve on your phone"), "{}", waiting.body);
    let early = nopush.post(
        "/portal/devices/add",
        &[("form_token", &form_token(&waiting.body)), ("kind", "authenticator")],
    );
    assert_eq!((early.status, early.location.as_deref()), (303, Some("/portal")), "{}", early.body);
    let status = nopush.get(&format!(
        "/portal/devices/status?serial={}",
        tokens_of(&server, "finn")[0]["serial"].as_str().unwrap()
    ));
    assert_eq!(status.status, 303, "a password alone shows nothing of the devices: {}", status.body);
    assert_eq!(tokens_of(&server, "finn").len(), 1, "a password alone adds no device");

    fill(&browser, &[("username", "finn"), ("password", "2580"), ("passcode", "")]);
    wait_for_heading(&browser, "Approve on your phone", Duration::from_secs(10));
    look_at(&browser, "portal-approve");
    let (transaction, number) = browser.run(async |page| {
        let form = page.find(Locator::Id("complete")).await.unwrap();
        let transaction = form.attr("data-transaction").await.unwrap().unwrap();
        let number = page.find(Locator::Css(".number")).await.unwrap().text().await.unwrap();
        (transaction, number)
    });
    phone.run(&["push", "approve", &transaction, "--number", &number]).ok();
    wait_for_heading(&browser, "Your devices", Duration::from_secs(30));
    browser.screenshot("portal-devices-after-push.png");
    let text =
        browser.run(async |page| page.find(Locator::Id("devices")).await.unwrap().text().await.unwrap());
    assert!(text.contains("test phone") && text.contains("Tessera app"), "{text}");
}

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

/// Clicks the element `id` and waits for the page it leads to.
fn click_through(browser: &Browser, id: &str) {
    browser.run(async |page| {
        let button = page.find(Locator::Id(id)).await.unwrap();
        button.clone().click().await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while button.text().await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "{id} led nowhere");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// Clicks the button `label` inside the device card of `serial` (opening its `summary` first).
fn click_in_card(browser: &Browser, serial: &str, summary: Option<&str>, label: &str) {
    browser.run(async |page| {
        let card = page.find(Locator::Css(&format!("li[data-serial='{serial}']"))).await.unwrap();
        if let Some(summary) = summary {
            let xpath = format!(".//summary[normalize-space()='{summary}']");
            card.find(Locator::XPath(&xpath)).await.unwrap().click().await.unwrap();
        }
        let button =
            card.find(Locator::XPath(&format!(".//button[normalize-space()='{label}']"))).await.unwrap();
        button.clone().click().await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while button.text().await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "{label} led nowhere");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

fn tokens_of(server: &Server, username: &str) -> Vec<Value> {
    server.admin("GET", &format!("/api/v1/users/{username}/tokens"), None).1.as_array().unwrap().clone()
}

#[test]
fn with_a_password_and_a_registration_code_a_user_enrols_a_phone_then_replaces_it() {
    let server = Server::start(Db::Sqlite, PORTAL);
    let (status, _) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": "gwen", "password": "2580" })));
    assert_eq!(status, 201);
    let (_, issued) = server.admin("POST", "/api/v1/users/gwen/registration-code", Some(json!({})));
    let link = issued["portal_url"].as_str().unwrap();
    assert_eq!(link, format!("{}/portal/enroll?code={}", server.url, issued["code"].as_str().unwrap()));
    let browser = Browser::start(None);
    browser.run(async |page| page.goto(link).await.unwrap());
    look_at(&browser, "portal-enroll-link");
    fill(&browser, &[("username", "gwen"), ("password", "2580")]);
    wait_for_heading(&browser, "Your devices", Duration::from_secs(10));
    look_at(&browser, "portal-first-visit");

    click_through(&browser, "add-authenticator");
    wait_for_heading(&browser, "Add an authenticator app", Duration::from_secs(10));
    look_at(&browser, "portal-add-authenticator");
    let old_phone = Sandbox::with_keystore_vault();
    let shot = test_output_dir().join("portal-add-authenticator.png");
    old_phone.run(&["add", "--qr", shot.to_str().unwrap()]).ok();
    let at = crate::support::unix_now();
    let code_at = |offset: u64| {
        old_phone.run(&["code", "gwen", "--at", &(at + offset).to_string()]).ok().trim().to_owned()
    };
    let code = code_at(0);
    assert_eq!(server.validate("gwen", Some("2580"), &code).1["result"], "reject", "pending: no sign-in yet");
    let pending = tokens_of(&server, "gwen");
    assert!(pending[0]["pending_until"].is_i64(), "{pending:?}");
    fill(&browser, &[("passcode", &code)]);
    wait_for_heading(&browser, "Your devices", Duration::from_secs(10));
    let notice =
        browser.run(async |page| page.find(Locator::Id("notice")).await.unwrap().text().await.unwrap());
    assert!(notice.contains("ready"), "{notice}");
    let old_serial = tokens_of(&server, "gwen")[0]["serial"].as_str().unwrap().to_owned();
    assert!(tokens_of(&server, "gwen")[0]["pending_until"].is_null());
    let next = code_at(30);
    assert_eq!(server.validate("gwen", Some("2580"), next.trim()).1["result"], "accept", "the app signs in");

    click_in_card(&browser, &old_serial, Some("Replace this phone"), "With an authenticator app");
    wait_for_heading(&browser, "Add an authenticator app", Duration::from_secs(10));
    browser.run(async |page| page.goto(&format!("{}/portal", server.url)).await.unwrap());
    assert_eq!(tokens_of(&server, "gwen").len(), 2, "an abandoned replacement waits, pending");
    let later = code_at(60);
    assert_eq!(
        server.validate("gwen", Some("2580"), later.trim()).1["result"],
        "accept",
        "abandoned half-way, the old phone still works"
    );
    let abandoned = tokens_of(&server, "gwen")[1]["serial"].as_str().unwrap().to_owned();
    look_at(&browser, "portal-devices-pending");
    click_in_card(&browser, &abandoned, None, "Cancel");
    assert_eq!(tokens_of(&server, "gwen").len(), 1, "cancelled");

    click_in_card(&browser, &old_serial, Some("Replace this phone"), "With the Tessera app");
    wait_for_heading(&browser, "Add the Tessera app", Duration::from_secs(10));
    look_at(&browser, "portal-add-app");
    let new_phone = Sandbox::with_keystore_vault();
    let shot = test_output_dir().join("portal-add-app.png");
    let enrolled = new_phone.run(&["enroll", shot.to_str().unwrap(), "--name", "new phone", "--yes"]);
    assert!(enrolled.stderr.contains("Enrolled as a push device"), "{}", enrolled.stderr);
    wait_for_heading(&browser, "Your devices", Duration::from_secs(20));
    let tokens = tokens_of(&server, "gwen");
    assert_eq!(tokens.len(), 1, "the old phone was retired: {tokens:?}");
    assert_eq!(
        (tokens[0]["kind"].as_str(), tokens[0]["device_name"].as_str()),
        (Some("push"), Some("new phone"))
    );
    let stale = code_at(90);
    assert_eq!(
        server.validate("gwen", Some("2580"), stale.trim()).1["result"],
        "reject",
        "old phone refused"
    );
    let fresh = new_phone.run(&["code", "gwen"]).ok();
    assert_eq!(
        server.validate("gwen", Some("2580"), fresh.trim()).1["result"],
        "accept",
        "new phone accepted"
    );
    let actions: Vec<String> = audit(&server, "gwen")
        .iter()
        .filter(|r| r["actor"] == "portal" || r["actor"] == "device")
        .map(|r| format!("{} {}", r["action"].as_str().unwrap(), r["reason"].as_str().unwrap_or("")))
        .collect();
    assert!(actions.contains(&"token.delete replaced".to_owned()), "{actions:?}");
    look_at(&browser, "portal-devices-replaced");
}

#[test]
fn deleting_a_device_without_a_fresh_second_factor_asks_for_one() {
    let server = Server::start(Db::Sqlite, "[portal]\nenabled = true\nstep_up_secs = 10\n");
    let seed = user_with_hotp(&server, "hal", "2580");
    let (status, _) = server.admin(
        "POST",
        "/api/v1/users/hal/tokens",
        Some(json!({ "kind": "totp", "description": "spare" })),
    );
    assert_eq!(status, 201);
    let spare = tokens_of(&server, "hal")[1]["serial"].as_str().unwrap().to_owned();
    let mut hal = Visitor::new(&server);
    assert_eq!(
        hal.sign_in(&[("username", "hal"), ("password", "2580"), ("passcode", &hotp(&seed, 0))]).status,
        303
    );
    let home = hal.get("/portal");
    let token = form_token(&home.body);
    std::thread::sleep(Duration::from_secs(11));
    let asked = hal.post("/portal/devices/delete", &[("form_token", &token), ("serial", &spare)]);
    assert!(asked.body.contains("Confirm it's you"), "{}", asked.body);
    assert_eq!(tokens_of(&server, "hal").len(), 2, "nothing deleted yet");
    let wrong = hal.post(
        "/portal/step-up",
        &[
            ("form_token", &token),
            ("then", "delete"),
            ("serial", &spare),
            ("password", "2580"),
            ("passcode", "123456"),
        ],
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(tokens_of(&server, "hal").len(), 2);
    let proved = hal.post(
        "/portal/step-up",
        &[
            ("form_token", &token),
            ("then", "delete"),
            ("serial", &spare),
            ("password", "2580"),
            ("passcode", &hotp(&seed, 1)),
        ],
    );
    assert_eq!(
        (proved.status, proved.location.as_deref()),
        (303, Some("/portal?done=deleted")),
        "{}",
        proved.body
    );
    let left = tokens_of(&server, "hal");
    assert_eq!(left.len(), 1);
    assert_ne!(left[0]["serial"], spare.as_str());

    let (_, other) = server.admin("POST", "/api/v1/users", Some(json!({ "username": "ivy" })));
    assert!(other.is_object());
    let (_, theirs) = server.admin("POST", "/api/v1/users/ivy/tokens", Some(json!({ "kind": "totp" })));
    let foreign = hal.post(
        "/portal/devices/delete",
        &[("form_token", &token), ("serial", theirs["serial"].as_str().unwrap())],
    );
    assert!(
        foreign.body.contains("no such device") || foreign.body.contains("not found"),
        "{}",
        foreign.body
    );
    assert_eq!(tokens_of(&server, "ivy").len(), 1, "another user's device is out of reach");
}

#[test]
fn a_desk_phone_user_signs_in_to_the_portal_by_keying_the_code_shown_into_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start(Db::Sqlite, &format!("{PORTAL}{}", crate::voice::voice_toml(dir.path(), "", 30)));
    let phone = crate::voice::Phone::start();
    crate::voice::desk_phone_user(&server, "dee", &phone.uri);
    let browser = Browser::start(None);
    browser.run(async |page| page.goto(&format!("{}/portal", server.url)).await.unwrap());
    fill(&browser, &[("username", "dee"), ("password", "2580")]);
    wait_for_heading(&browser, "Answer the call", Duration::from_secs(10));
    let (prompt, code, countdown) = browser.run(async |page| {
        let text = async |id: &str| page.find(Locator::Id(id)).await.unwrap().text().await.unwrap();
        (text("prompt").await, text("display-code").await, text("countdown").await)
    });
    assert!(prompt.starts_with("Answer the call to sip:••"), "{prompt}");
    assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()), "{code}");
    assert!(countdown.starts_with("The code works for "), "{countdown}");
    let cookie = browser.run(async |page| page.get_named_cookie("__Host-tessera-call-code").await.unwrap());
    assert!(cookie.http_only() == Some(true) && cookie.secure() == Some(true), "{cookie:?}");
    look_at(&browser, "portal-voice-call");
    let (_, sessions) = server.admin("GET", "/api/v1/audit?username=dee", None);
    assert!(!sessions.to_string().contains(&code), "the code is in no audit record");

    phone.terminal.wait_for_times("Call established", 1);
    phone.terminal.type_keys(&code);
    wait_for_heading(&browser, "Your devices", Duration::from_secs(30));
    let text =
        browser.run(async |page| page.find(Locator::Id("devices")).await.unwrap().text().await.unwrap());
    assert!(text.contains("Phone call"), "{text}");
    let left = browser.run(async |page| page.get_named_cookie("__Host-tessera-call-code").await.is_ok());
    assert!(!left, "the code's cookie is gone once signed in");
}

#[test]
fn an_sms_user_signs_in_to_the_portal_with_the_code_kannel_delivered() {
    let kannel = crate::kannel_gateway::kannel();
    let server = Server::start(Db::Sqlite, &format!("{PORTAL}{}", kannel.config_toml("kannel")));
    let phone = "+447700900317";
    let user = json!({ "username": "jo", "password": "2580", "phone": phone });
    assert_eq!(server.admin("POST", "/api/v1/users", Some(user)).0, 201);
    assert_eq!(server.admin("POST", "/api/v1/users/jo/tokens", Some(json!({ "kind": "sms" }))).0, 201);
    let browser = Browser::start(None);
    browser.run(async |page| page.goto(&format!("{}/portal", server.url)).await.unwrap());
    let before = kannel.messages_to(phone).len();
    fill(&browser, &[("username", "jo"), ("password", "2580")]);
    wait_for_heading(&browser, "Enter your code", Duration::from_secs(10));
    let prompt =
        browser.run(async |page| page.find(Locator::Id("prompt")).await.unwrap().text().await.unwrap());
    assert!(prompt.contains("+44 ••• ••317"), "{prompt}");
    look_at(&browser, "portal-sms-code");
    let message = kannel.wait_for_message(phone, before, Duration::from_secs(20));
    let code: String =
        message.text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned();
    fill(&browser, &[("passcode", &code)]);
    wait_for_heading(&browser, "Your devices", Duration::from_secs(10));
    let text =
        browser.run(async |page| page.find(Locator::Id("devices")).await.unwrap().text().await.unwrap());
    assert!(text.contains("Text messages") && text.contains("+44 ••• ••317"), "{text}");
    assert!(!text.contains("7700900317"), "the number is shown masked");
}

#[test]
fn the_cli_signs_in_to_the_organisation_and_becomes_a_push_device_without_a_qr_code() {
    let server = Server::start(Db::Sqlite, PORTAL);
    let (status, _) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": "kim", "password": "2580" })));
    assert_eq!(status, 201);
    let (_, issued) = server.admin("POST", "/api/v1/users/kim/registration-code", Some(json!({})));
    let code = issued["code"].as_str().unwrap();

    let laptop = Sandbox::with_keystore_vault();
    let signin = ["signin", server.url.as_str(), "--username", "kim", "--name", "laptop"];
    laptop.run_stdin(&signin, "0000\nAAAA-BBBB-CCCC-DDDD-EEEE\n").fails_with("refused the sign-in");
    let first = laptop.run_stdin(&signin, &format!("2580\n{code}\n"));
    assert!(first.stderr.contains("Signed in to Tessera as kim"), "{}", first.stderr);
    let tokens = tokens_of(&server, "kim");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(
        (tokens[0]["kind"].as_str(), tokens[0]["device_name"].as_str()),
        (Some("push"), Some("laptop"))
    );
    assert!(tokens[0]["pending_until"].is_null(), "registered, so active");

    let desktop = Sandbox::with_keystore_vault();
    let mut second = desktop
        .command(&["signin", &server.url, "--username", "kim", "--name", "desktop"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    second.stdin.take().unwrap().write_all(b"2580\n\n").unwrap();
    let lines = crate::support::lines_of(second.stderr.take().unwrap());
    let mut seen = String::new();
    let number = loop {
        let line =
            lines.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("no number shown: {seen}"));
        seen.push_str(&line);
        if let Some(rest) = line.split("Choose ").nth(1) {
            break rest.split(' ').next().unwrap().to_owned();
        }
    };
    let listened = laptop.run(&["push", "listen", "--json", "--count", "1"]).ok();
    let request: Value = serde_json::from_str(listened.lines().next().unwrap()).unwrap();
    laptop.run(&["push", "approve", request["transaction_id"].as_str().unwrap(), "--number", &number]).ok();
    let status = second.wait().unwrap();
    let rest: Vec<String> = lines.iter().collect();
    assert!(status.success(), "{seen} {rest:?}");
    assert!(rest.iter().any(|l| l.contains("Signed in to Tessera as kim")), "{rest:?}");
    let names: Vec<String> = tokens_of(&server, "kim")
        .iter()
        .filter_map(|t| t["device_name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["laptop", "desktop"], "approved on the first device, the second signed in");
    let fresh = desktop.run(&["code", "kim"]).ok();
    assert_eq!(
        server.validate("kim", Some("2580"), fresh.trim()).1["result"],
        "accept",
        "the new device's code"
    );
    let next_step = (crate::support::unix_now() + 30).to_string();
    let passcode = laptop.run(&["code", "kim", "--at", &next_step]).ok();
    assert_eq!(
        server.validate("kim", Some("2580"), passcode.trim()).1["result"],
        "accept",
        "the first device's"
    );

    let far = Sandbox::with_keystore_vault();
    far.run_stdin(&["signin", "http://192.0.2.7:8480", "--username", "kim"], "2580\n123456\n")
        .fails_with("--insecure-http");
    let portal: Vec<String> = audit(&server, "kim")
        .iter()
        .filter(|r| r["actor"] == "portal" && r["action"] == "validate")
        .map(|r| r["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    for reason in ["wrong_password", "registration_code"] {
        assert!(
            portal.contains(&reason.to_owned()),
            "the app's sign-ins are the portal's: {reason} in {portal:?}"
        );
    }
}

#[test]
fn a_user_chooses_text_messages_or_the_app_for_their_code() {
    let kannel = crate::kannel_gateway::kannel();
    let server = Server::start(Db::Sqlite, &format!("{PORTAL}{}", kannel.config_toml("kannel")));
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&server, &phone, "lu", Some("2580"));
    let number = "+447700900452";
    assert_eq!(server.admin("PATCH", "/api/v1/users/lu", Some(json!({ "phone": number }))).0, 200);
    let mut lu = Visitor::new(&server);
    let code = phone.run(&["code", "lu"]).ok();
    assert_eq!(
        lu.sign_in(&[("username", "lu"), ("password", "2580"), ("passcode", code.trim())]).status,
        303
    );
    let home = lu.get("/portal");
    assert!(home.body.contains("A text message</strong> to +44 ••• ••452"), "{}", home.body);
    let token = form_token(&home.body);

    let chosen = lu.post("/portal/delivery", &[("form_token", &token), ("choice", "sms")]);
    assert_eq!(chosen.location.as_deref(), Some("/portal?done=delivery"), "{}", chosen.body);
    let kinds: Vec<String> =
        tokens_of(&server, "lu").iter().map(|t| t["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["push", "sms"], "choosing text messages gave an SMS token to the number on file");
    let before = kannel.messages_to(number).len();
    let (_, answer) = server.validate("lu", Some("2580"), "");
    assert_eq!(
        (answer["result"].as_str(), answer["channel"].as_str()),
        (Some("challenge"), Some("sms")),
        "{answer}"
    );
    kannel.wait_for_message(number, before, Duration::from_secs(20));

    let back = lu.post("/portal/delivery", &[("form_token", &token), ("choice", "app")]);
    assert_eq!(back.location.as_deref(), Some("/portal?done=delivery"));
    let (_, answer) = server.validate("lu", Some("2580"), "");
    assert!(answer["number"].is_u64() && answer["channel"].is_null(), "a push again: {answer}");
    let audit = audit(&server, "lu");
    assert_eq!(audit.iter().filter(|r| r["action"] == "user.update" && r["actor"] == "portal").count(), 2);

    let (_, other) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": "nia", "password": "2580" })));
    assert!(other.is_object());
    let seed = {
        let (_, enrollment) =
            server.admin("POST", "/api/v1/users/nia/tokens", Some(json!({ "kind": "hotp" })));
        let uri = enrollment["otpauth_uri"].as_str().unwrap().to_owned();
        uri.split("secret=").nth(1).unwrap().split('&').next().unwrap().to_owned()
    };
    let mut nia = Visitor::new(&server);
    assert_eq!(
        nia.sign_in(&[("username", "nia"), ("password", "2580"), ("passcode", &hotp(&seed, 0))]).status,
        303
    );
    let page = nia.get("/portal");
    assert!(page.body.contains("no phone number on file"), "{}", page.body);
    let refused = nia.post("/portal/delivery", &[("form_token", &form_token(&page.body)), ("choice", "sms")]);
    assert!(refused.body.contains("No phone number is on file for you"), "{}", refused.body);
    assert_eq!(tokens_of(&server, "nia").len(), 1, "no SMS token without a number");
}

#[test]
fn a_portal_kept_to_internal_networks_refuses_other_addresses() {
    let outside =
        Server::start(Db::Sqlite, "[portal]\nenabled = true\nallowed_networks = [\"10.0.0.0/8\"]\n");
    let (status, body) = outside.get("/portal");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not available from your network"), "{body}");
    let (status, css) = outside.get("/portal/portal.css");
    assert_eq!(status, 403, "every portal path: {css}");
    let (status, answer) = outside.post("/api/v1/signin", &json!({ "username": "x", "password": "y" }));
    assert_eq!(status, 403, "and the apps' sign-in: {answer}");
    assert_eq!(outside.get("/login").0, 200, "the login page is not the portal");

    let inside = Server::start(
        Db::Sqlite,
        "[portal]\nenabled = true\nallowed_networks = [\"127.0.0.0/8\", \"::1\"]\n",
    );
    assert_eq!(inside.get("/portal").0, 200, "loopback is named");
}

#[test]
fn a_user_changes_their_phone_number_with_a_code_sent_to_the_new_one() {
    let kannel = crate::kannel_gateway::kannel();
    let config = format!(
        "[portal]\nenabled = true\nstep_up_secs = 10\nnotify = [\"email\", \"sms\"]\n[delivery.limits]\ncooldown_secs = 0\nper_user_per_window = 10\n{}",
        kannel.config_toml("kannel")
    );
    let server = Server::start(Db::Sqlite, &config);
    let (old, new) = ("+447700900611", "+447700900622");
    let seed = user_with_hotp(&server, "pat", "2580");
    assert_eq!(server.admin("PATCH", "/api/v1/users/pat", Some(json!({ "phone": old }))).0, 200);
    assert_eq!(server.admin("POST", "/api/v1/users/pat/tokens", Some(json!({ "kind": "sms" }))).0, 201);
    let old_sms = tokens_of(&server, "pat")[1]["serial"].as_str().unwrap().to_owned();
    let browser = Browser::start(None);
    browser.run(async |page| page.goto(&format!("{}/portal", server.url)).await.unwrap());
    fill(&browser, &[("username", "pat"), ("password", "2580"), ("passcode", &hotp(&seed, 0))]);
    wait_for_heading(&browser, "Your devices", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(11));
    browser
        .run(async |page| page.find(Locator::Id("new-phone")).await.unwrap().send_keys(new).await.unwrap());
    click_through(&browser, "change-phone");
    wait_for_heading(&browser, "Confirm it's you", Duration::from_secs(10));
    assert!(kannel.messages_to(new).is_empty(), "no code before the second factor");
    fill(&browser, &[("password", "2580"), ("passcode", &hotp(&seed, 1))]);
    wait_for_heading(&browser, "Confirm your new number", Duration::from_secs(10));
    look_at(&browser, "portal-phone-code");
    let lead =
        browser.run(async |page| page.find(Locator::Css(".lead")).await.unwrap().text().await.unwrap());
    assert!(lead.contains("+44 ••• ••622"), "{lead}");
    let message = kannel.wait_for_message(new, 0, Duration::from_secs(20));
    let code: String =
        message.text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned();
    let transaction_id = browser.run(async |page| {
        let field = page.find(Locator::Css("input[name='transaction_id']")).await.unwrap();
        field.attr("value").await.unwrap().unwrap()
    });
    let (_, login) = server.post(
        "/api/v1/validate",
        &json!({ "username": "pat", "passcode": code, "transaction_id": transaction_id }),
    );
    assert_eq!(login["result"], "reject", "the new number's code signs in nowhere: {login}");
    let (_, meanwhile) = server.validate("pat", Some("2580"), "");
    assert_eq!(
        (meanwhile["channel"].as_str(), meanwhile["destination"].as_str()),
        (Some("sms"), Some("+44 ••• ••611")),
        "until it is confirmed, codes go to the old number: {meanwhile}"
    );

    fill(&browser, &[("passcode", "000000")]);
    assert_eq!(heading(&browser), "Confirm your new number");
    let notice =
        browser.run(async |page| page.find(Locator::Id("notice")).await.unwrap().text().await.unwrap());
    assert!(notice.contains("not the code"), "{notice}");
    fill(&browser, &[("passcode", &code)]);
    wait_for_heading(&browser, "Your devices", Duration::from_secs(10));
    let notice =
        browser.run(async |page| page.find(Locator::Id("notice")).await.unwrap().text().await.unwrap());
    assert!(notice.contains("phone number was changed"), "{notice}");
    look_at(&browser, "portal-phone-changed");

    let tokens = tokens_of(&server, "pat");
    let kinds: Vec<&str> = tokens.iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["hotp", "sms"], "{tokens:?}");
    assert_ne!(tokens[1]["serial"], old_sms.as_str(), "the old SMS token was retired");
    assert_eq!(server.admin("GET", "/api/v1/users/pat", None).1["phone"], new);
    let notice = kannel.wait_for_message(old, 1, Duration::from_secs(20));
    assert!(
        notice.text.contains("now go to the number ending in 622") && notice.text.contains("Not you?"),
        "the old number hears of the change (no email on file, so by SMS): {}",
        notice.text
    );
    let (_, outbox) = server.admin("GET", "/api/v1/deliveries?username=pat", None);
    assert!(outbox.as_array().unwrap().iter().any(|m| m["mode"] == "notice"), "{outbox}");
    let before = kannel.messages_to(new).len();
    let (_, after) = server.validate("pat", Some("2580"), "");
    assert_eq!(after["destination"], "+44 ••• ••622", "{after}");
    kannel.wait_for_message(new, before, Duration::from_secs(20));
    let actions: Vec<String> = audit(&server, "pat")
        .iter()
        .filter(|r| r["actor"] == "portal")
        .map(|r| format!("{} {}", r["action"].as_str().unwrap(), r["reason"].as_str().unwrap_or("")))
        .collect();
    for expected in
        ["token.confirm phone number changed", "token.delete replaced", "token.confirm wrong_code"]
    {
        assert!(actions.contains(&expected.to_owned()), "{expected} in {actions:?}");
    }

    let mut again = Visitor::new(&server);
    assert_eq!(
        again.sign_in(&[("username", "pat"), ("password", "2580"), ("passcode", &hotp(&seed, 2))]).status,
        303
    );
    let token = form_token(&again.get("/portal").body);
    let asked = again.post("/portal/phone", &[("form_token", &token), ("phone", "+447700900633")]);
    assert!(asked.body.contains("Confirm your new number"), "{}", asked.body);
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        asked.body.split(&marker).nth(1).unwrap().split('"').next().unwrap().to_owned()
    };
    let (serial, transaction) = (field("serial"), field("transaction_id"));
    let wrong = [
        ("form_token", token.as_str()),
        ("serial", &serial),
        ("transaction_id", &transaction),
        ("passcode", "000000"),
    ];
    for _ in 0..2 {
        assert_eq!(again.post("/portal/phone/confirm", &wrong).status, 422);
    }
    let ended = again.post("/portal/phone/confirm", &wrong);
    assert_eq!(ended.location.as_deref(), Some("/portal?done=phone-gone"), "{}", ended.body);
    assert_eq!(
        server.admin("GET", "/api/v1/users/pat", None).1["phone"],
        new,
        "three wrong codes change nothing"
    );
    let bad = again.post("/portal/phone", &[("form_token", &token), ("phone", "07700 900123")]);
    assert!(bad.body.contains("phone"), "a number without its country code is refused: {}", bad.body);
}

#[test]
fn a_user_gets_a_temporary_passcode_where_policy_allows_but_never_from_another() {
    let smtp = crate::smtp_server::smtp_server();
    let config = format!(
        "[portal]\nenabled = true\n[portal.temporary_passcodes]\nenabled = true\nvalid_hours = 4\nmax_uses = 2\n{}",
        smtp.config_toml()
    );
    let server = Server::start(Db::Sqlite, &config);
    let seed = user_with_hotp(&server, "quin", "2580");
    let email = "quin@example.org";
    assert_eq!(server.admin("PATCH", "/api/v1/users/quin", Some(json!({ "email": email }))).0, 200);
    let browser = Browser::start(None);
    browser.run(async |page| page.goto(&format!("{}/portal", server.url)).await.unwrap());
    fill(&browser, &[("username", "quin"), ("password", "2580"), ("passcode", &hotp(&seed, 0))]);
    wait_for_heading(&browser, "Your devices", Duration::from_secs(10));
    click_through(&browser, "get-temporary");
    wait_for_heading(&browser, "Your temporary passcode", Duration::from_secs(10));
    look_at(&browser, "portal-temporary-passcode");
    let shown = browser
        .run(async |page| page.find(Locator::Id("temporary-passcode")).await.unwrap().text().await.unwrap());
    let passcode: String = shown.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(passcode.len(), 9, "{shown}");
    browser.run(async |page| page.goto(&format!("{}/portal", server.url)).await.unwrap());
    click_through(&browser, "get-temporary");
    let notice =
        browser.run(async |page| page.find(Locator::Id("notice")).await.unwrap().text().await.unwrap());
    assert!(notice.contains("already have a temporary passcode"), "one at a time: {notice}");
    let notice = smtp.wait_for_message(email, 0, Duration::from_secs(20));
    assert!(notice.contains("a temporary passcode was issued"), "told by email: {notice}");
    assert!(!notice.contains(&passcode), "a notice carries no secret");
    for _ in 0..2 {
        assert_eq!(server.validate("quin", Some("2580"), &passcode).1["result"], "accept");
    }
    assert_eq!(server.validate("quin", Some("2580"), &passcode).1["result"], "reject", "two uses, no more");
    let issued = audit(&server, "quin");
    assert!(
        issued.iter().any(|r| r["actor"] == "portal" && r["action"] == "token.enroll"),
        "audited as the portal's: {issued:?}"
    );

    let (_, desk) = server.admin("POST", "/api/v1/users/quin/temporary-passcode", Some(json!({})));
    let mut visitor = Visitor::new(&server);
    let desk_code = desk["passcode"].as_str().unwrap();
    assert_eq!(
        visitor.sign_in(&[("username", "quin"), ("password", "2580"), ("passcode", desk_code)]).status,
        303
    );
    let token = form_token(&visitor.get("/portal").body);
    let asked = visitor.post("/portal/temporary", &[("form_token", &token)]);
    assert!(
        asked.body.contains("Confirm it's you") && asked.body.contains("cannot get another"),
        "signed in with a temporary passcode, a fresh factor is asked for: {}",
        asked.body
    );
    let proved = visitor.post(
        "/portal/step-up",
        &[("form_token", &token), ("then", "temporary"), ("password", "2580"), ("passcode", &hotp(&seed, 1))],
    );
    assert!(proved.body.contains("Your temporary passcode"), "{}", proved.body);

    let plain = Server::start(Db::Sqlite, "[portal]\nenabled = true\n");
    let seed = user_with_hotp(&plain, "rae", "2580");
    let mut rae = Visitor::new(&plain);
    assert_eq!(
        rae.sign_in(&[("username", "rae"), ("password", "2580"), ("passcode", &hotp(&seed, 0))]).status,
        303
    );
    let home = rae.get("/portal");
    assert!(!home.body.contains("get-temporary"), "not offered by default");
    let refused = rae.post("/portal/temporary", &[("form_token", &form_token(&home.body))]);
    assert!(refused.body.contains("not offered here"), "{}", refused.body);
}

#[test]
fn a_directory_user_signs_in_the_first_time_with_a_code_texted_to_the_directory_number() {
    let slapd = crate::ldap_directory::directory();
    slapd.add_person("uma", "Uma Ueda", "uma-pw-1", "+44 7700 900733", true);
    let kannel = crate::kannel_gateway::kannel();
    let config = format!(
        "[portal]\nenabled = true\nfirst_enrolment = \"registration_code_or_sms\"\n[delivery.limits]\ncooldown_secs = 0\n{}{}",
        kannel.config_toml("kannel"),
        slapd.config_toml("corp", crate::ldap_directory::Transport::StartTls, "")
    );
    let server = Server::start(Db::Sqlite, &config);
    let number = "+447700900733";
    let (_, answer) = server.validate("uma", Some("uma-pw-1"), "");
    assert_eq!(answer["result"], "reject", "outside the portal, no token means no sign-in: {answer}");
    assert!(kannel.messages_to(number).is_empty());

    let browser = Browser::start(None);
    browser.run(async |page| page.goto(&format!("{}/portal", server.url)).await.unwrap());
    look_at(&browser, "portal-sign-in-first-code-by-sms");
    fill(&browser, &[("username", "uma"), ("password", "uma-pw-1")]);
    wait_for_heading(&browser, "Enter your code", Duration::from_secs(10));
    let prompt =
        browser.run(async |page| page.find(Locator::Id("prompt")).await.unwrap().text().await.unwrap());
    assert!(prompt.contains("+44 ••• ••733"), "texted to the directory's number: {prompt}");
    let message = kannel.wait_for_message(number, 0, Duration::from_secs(20));
    let code: String =
        message.text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned();
    let pending = tokens_of(&server, "uma");
    assert!(pending.len() == 1 && pending[0]["pending_until"].is_i64(), "{pending:?}");
    assert_eq!(
        server.validate("uma", Some("uma-pw-1"), &code).1["result"],
        "reject",
        "a pending token signs nobody in"
    );
    fill(&browser, &[("passcode", &code)]);
    wait_for_heading(&browser, "Your devices", Duration::from_secs(10));
    look_at(&browser, "portal-first-code-by-sms");
    let tokens = tokens_of(&server, "uma");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(
        tokens[0]["kind"] == "sms" && tokens[0]["pending_until"].is_null(),
        "now her SMS token: {tokens:?}"
    );
    let (_, user) = server.admin("GET", "/api/v1/users/uma", None);
    assert_eq!(user["directory"], "corp", "created from the directory at this first sign-in: {user}");
    let (_, later) = server.validate("uma", Some("uma-pw-1"), "");
    assert_eq!(
        (later["result"].as_str(), later["channel"].as_str()),
        (Some("challenge"), Some("sms")),
        "and it signs her in anywhere now: {later}"
    );
    let reasons: Vec<String> = audit(&server, "uma")
        .iter()
        .filter(|r| r["actor"] == "portal")
        .map(|r| r["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(reasons.contains(&"first_code_by_sms".to_owned()), "{reasons:?}");
}
