//! The browser login page, in real headless Chromium driven through ChromeDriver: One Swipe read
//! from a fake camera playing a `.y4m` video of the CLI's code (decoded in the page by the
//! WebAssembly build of the core decoder), and a typed passcode. Screenshots of what the user sees
//! go to `target/test-output/`.

use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::json;

use crate::push::user_with_device;
use crate::server_support::{Db, Server, free_port};
use crate::support::{Sandbox, WebDriverSession, binary};

/// ChromeDriver and a headless Chromium session, ended on drop.
pub(crate) struct Browser(WebDriverSession);

impl Browser {
    /// Chromium, with a fake camera that plays `video` (a `.y4m` file) in a loop when given.
    pub(crate) fn start(video: Option<&std::path::Path>) -> Self {
        let port = free_port();
        let mut driver = Command::new("chromedriver");
        driver.arg(format!("--port={port}"));
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=900,900".to_owned(),
        ];
        if let Some(video) = video {
            args.push("--use-fake-device-for-media-stream".to_owned());
            args.push("--use-fake-ui-for-media-stream".to_owned());
            args.push(format!("--use-file-for-fake-video-capture={}", video.display()));
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
        });
        Self(WebDriverSession::start(driver, port, capabilities))
    }

    pub(crate) fn run<T>(&self, task: impl AsyncFnOnce(&Client) -> T) -> T {
        self.0.run(task)
    }

    pub(crate) fn screenshot(&self, name: &str) {
        self.0.screenshot(name);
    }

    /// Waits until `#result` leaves the idle state; returns its state and text.
    pub(crate) fn outcome(&self, within: Duration) -> (String, String) {
        self.run(async |page| {
            let deadline = Instant::now() + within;
            loop {
                let result = page.find(Locator::Id("result")).await.unwrap();
                let state = result.attr("data-state").await.unwrap().unwrap_or_default();
                if state != "idle" || Instant::now() > deadline {
                    let status = page.find(Locator::Id("status")).await.unwrap().text().await.unwrap();
                    return (state, format!("{} | status: {status}", result.text().await.unwrap()));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }
}

/// A `.y4m` video of webcam-like frames of the phone's One Swipe code.
fn one_swipe_video(phone: &Sandbox) -> std::path::PathBuf {
    let png = phone.path("oneswipe.png");
    phone.run(&["oneswipe", "--png", png.to_str().unwrap(), "--valid-for", "120"]).ok();
    let video = phone.path("oneswipe.y4m");
    let made = Command::new(binary("tessera-framegen"))
        .args(["--qr", png.to_str().unwrap(), "--y4m", video.to_str().unwrap()])
        .args(["--count", "12", "--fps", "10", "--seed", "5"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    video
}

pub(crate) fn type_into(browser: &Browser, fields: &[(&str, &str)]) {
    browser.run(async |page| {
        for (id, text) in fields {
            let field = page.find(Locator::Id(id)).await.unwrap();
            field.clear().await.unwrap();
            field.send_keys(text).await.unwrap();
        }
    });
}

pub(crate) fn click(browser: &Browser, id: &str) {
    browser.run(async |page| page.find(Locator::Id(id)).await.unwrap().click().await.unwrap());
}

#[test]
fn one_swipe_from_the_webcam_signs_in() {
    let server = Server::start(Db::Sqlite, "");
    let (status, _) = server.get("/login/decoder/tessera_wasm_bg.wasm");
    assert_eq!(status, 200, "the web decoder is missing: run scripts/build-web.sh (scripts/test.sh does)");
    let phone = Sandbox::with_keystore_vault();
    user_with_device(&server, &phone, "hana", Some("open sesame"));
    let browser = Browser::start(Some(&one_swipe_video(&phone)));

    browser.run(async |page| page.goto(&format!("{}/login", server.url)).await.unwrap());
    browser.screenshot("login-page.png");
    type_into(&browser, &[("username", "hana"), ("password", "open sesame")]);
    click(&browser, "oneswipe");
    let (state, text) = browser.outcome(Duration::from_secs(30));
    browser.screenshot("login-one-swipe-signed-in.png");
    assert_eq!(state, "signed-in", "{text}");
    assert!(text.contains("Signed in as hana"), "{text}");

    let audit = server.admin("GET", "/api/v1/audit?username=hana&action=oneswipe", None).1;
    assert_eq!(audit[0]["result"], "accept", "{audit}");
}

#[test]
fn a_typed_passcode_signs_in_and_a_wrong_one_is_refused() {
    let server = Server::start(Db::Sqlite, "");
    let enrollment = server.user_with_token("ivan", json!({ "kind": "totp" }));
    let uri = enrollment["otpauth_uri"].as_str().unwrap();
    let phone = Sandbox::with_keystore_vault();
    phone.run(&["add", uri]).ok();
    let browser = Browser::start(None);
    browser.run(async |page| page.goto(&format!("{}/login", server.url)).await.unwrap());

    type_into(&browser, &[("username", "ivan"), ("passcode", "000000")]);
    click(&browser, "submit");
    let (state, text) = browser.outcome(Duration::from_secs(10));
    assert_eq!(state, "refused", "{text}");

    let code = phone.run(&["code", "ivan"]).ok();
    type_into(&browser, &[("passcode", code.trim())]);
    click(&browser, "submit");
    let (state, text) = browser.outcome(Duration::from_secs(10));
    browser.screenshot("login-passcode-signed-in.png");
    assert_eq!(state, "signed-in", "{text}");
    assert!(text.contains("Signed in as ivan"), "{text}");
}

#[test]
fn a_code_sent_by_text_message_signs_in_on_the_code_screen() {
    let kannel = crate::kannel_gateway::kannel();
    let mail = crate::smtp_server::smtp_server();
    let server =
        Server::start(Db::Sqlite, &format!("{}\n{}", kannel.config_toml("kannel"), mail.config_toml()));
    let phone = "+447700900201";
    let (status, body) = server.admin(
        "POST",
        "/api/v1/users",
        Some(json!({ "username": "sara", "password": "open sesame", "phone": phone, "email": "sara@example.com" })),
    );
    assert_eq!(status, 201, "{body}");
    for kind in ["sms", "email"] {
        let (status, body) = server.admin("POST", "/api/v1/users/sara/tokens", Some(json!({ "kind": kind })));
        assert_eq!(status, 201, "{body}");
    }
    let browser = Browser::start(None);
    browser.run(async |page| page.goto(&format!("{}/login", server.url)).await.unwrap());
    let before = kannel.messages_to(phone).len();
    type_into(&browser, &[("username", "sara"), ("password", "open sesame")]);
    click(&browser, "submit");
    let message = kannel.wait_for_message(phone, before, Duration::from_secs(20));
    let (prompt, countdown, resend, ways) = browser.run(async |page| {
        let text = async |id: &str| page.find(Locator::Id(id)).await.unwrap().text().await.unwrap();
        let email_way = page.find(Locator::Css("#other-ways [data-way=email]")).await.unwrap();
        (
            text("code-prompt").await,
            text("countdown").await,
            text("resend").await,
            email_way.is_displayed().await.unwrap(),
        )
    });
    browser.screenshot("login-sms-code-screen.png");
    assert!(prompt.contains("+44 ••• ••201"), "{prompt}");
    assert!(
        countdown.starts_with("The code works for 4:") || countdown.starts_with("The code works for 5:0"),
        "{countdown}"
    );
    assert!(resend.starts_with("Send again ("), "the resend waits out its cool-down: {resend}");
    assert!(ways, "email is offered as another way");

    let code: String =
        message.text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned();
    type_into(&browser, &[("code", "000000")]);
    click(&browser, "code-submit");
    let (state, text) = browser.outcome(Duration::from_secs(10));
    assert_eq!(state, "refused", "{text}");
    type_into(&browser, &[("code", &code)]);
    click(&browser, "code-submit");
    let (state, text) = browser.outcome(Duration::from_secs(10));
    browser.screenshot("login-sms-signed-in.png");
    assert_eq!(state, "signed-in", "{text}");
    assert!(text.contains("Signed in as sara"), "{text}");
}
