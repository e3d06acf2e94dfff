//! The desktop app: the real `tessera-desktop` binary in a WebKitGTK window on a virtual X display
//! (Xvfb), driven through `tauri-driver` and WebKitWebDriver as a user would click and type. Codes on
//! screen are compared with Debian's `oathtool`, the clipboard is read back with `xclip`, and the
//! vault the app writes is read by the CLI. Screenshots of the main screens go to
//! `target/test-output/desktop-*.png`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::json;

use crate::push::{finish, send_validate_as, user_with_device, wait_status};
use crate::server_support::{Db, Server, free_port};
use crate::support::{
    Sandbox, WebDriverSession, binary, lines_of, oathtool, require_secret_service, test_output_dir, unix_now,
};

/// RFC 6238's SHA-1 test seed, base32.
const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const PASSPHRASE: &str = "correct horse battery";

/// A virtual X display, ended on drop.
struct Display {
    xvfb: Child,
    name: String,
}

impl Display {
    fn start() -> Self {
        let mut xvfb = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian xvfb, installed by scripts/setup-debian.sh)");
        let mut number = String::new();
        BufReader::new(xvfb.stdout.take().unwrap()).read_line(&mut number).unwrap();
        assert!(!number.trim().is_empty(), "Xvfb did not report its display");
        Self { xvfb, name: format!(":{}", number.trim()) }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}

/// An `xwd` dump (X11 window dump: a header of big-endian 32-bit fields, a colour map, then
/// the pixels) of a 24-bit TrueColor window, as an image. Xvfb's 24-bit screens dump 32 bits per
/// pixel in the X server's byte order.
fn png_of_xwd(dump: &[u8]) -> image::RgbImage {
    let field = |index: usize| {
        let bytes = dump.get(index * 4..index * 4 + 4).expect("an xwd header");
        u32::from_be_bytes(bytes.try_into().unwrap()) as usize
    };
    let (header_size, width, height, byte_order) = (field(0), field(4), field(5), field(7));
    let (bits_per_pixel, bytes_per_line, colours) = (field(11), field(12), field(19));
    assert_eq!(bits_per_pixel, 32, "a 24-bit display dumps 32 bits per pixel");
    let pixels = &dump[header_size + colours * 12..];
    image::RgbImage::from_fn(width as u32, height as u32, |x, y| {
        let at = y as usize * bytes_per_line + x as usize * 4;
        let pixel: [u8; 4] = pixels[at..at + 4].try_into().unwrap();
        let value = if byte_order == 0 { u32::from_le_bytes(pixel) } else { u32::from_be_bytes(pixel) };
        image::Rgb([(value >> 16) as u8, (value >> 8) as u8, value as u8])
    })
}

/// The app under tauri-driver on its own display, with its vault in `sandbox`; ended on drop
/// (the session first, then the display).
struct App {
    session: WebDriverSession,
    display: Display,
}

impl App {
    fn start(sandbox: &Sandbox, env: &[(&str, &str)]) -> Self {
        require_secret_service();
        let display = Display::start();
        let (port, native_port) = (free_port(), free_port());
        let mut driver = Command::new("tauri-driver");
        driver
            .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .args(["--native-driver", "/usr/bin/WebKitWebDriver"])
            .env("DISPLAY", &display.name)
            .env("TESSERA_VAULT", &sandbox.vault)
            .env("TESSERA_KEYRING_SERVICE", "dev.tessera.test")
            .env("GDK_BACKEND", "x11")
            .envs(env.iter().copied());
        let capabilities = json!({
            "browserName": "wry",
            "tauri:options": { "application": binary("tessera-desktop") },
        });
        Self { session: WebDriverSession::start(driver, port, capabilities), display }
    }

    fn run<T>(&self, task: impl AsyncFnOnce(&Client) -> T) -> T {
        self.session.run(task)
    }

    /// Saves what the window shows on the display as `target/test-output/NAME` (PNG), read from
    /// the X server with `xwd`: the pixels a user sees. (WebDriver's screenshot waits for the
    /// page's next paint, and a still page drawn without GPU compositing, as the app draws,
    /// never has one: it would hang on the first-run and lock screens.)
    fn screenshot(&self, name: &str) {
        let xwd = Command::new("xwd")
            .args(["-display", &self.display.name, "-name", "Tessera", "-silent"])
            .output()
            .expect("xwd (Debian x11-apps, installed by scripts/setup-debian.sh)");
        assert!(xwd.status.success(), "xwd: {}", String::from_utf8_lossy(&xwd.stderr));
        png_of_xwd(&xwd.stdout).save(test_output_dir().join(name)).unwrap();
    }

    /// Saves a screenshot as `name` once it shows a readable QR code (within 10 s: an image that
    /// was just shown may not be painted yet), and returns the codes' texts.
    fn screenshot_with_qr(&self, name: &str) -> Vec<tessera_core::secret::SecretString> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.screenshot(name);
            let screenshot = std::fs::read(test_output_dir().join(name)).unwrap();
            let texts = tessera_core::qr::decode_image(&screenshot).unwrap();
            if !texts.is_empty() {
                return texts;
            }
            assert!(Instant::now() < deadline, "the window never showed a readable QR code (see {name})");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Enrolls the app, its vault still empty, as a push device from a pasted enrollment link,
    /// confirming the server and account the app shows first.
    fn enroll_from_link(&self, link: &str) {
        self.shown("#empty-state");
        self.click("#add-button");
        self.type_into("#add-uri", link);
        self.click("#add-submit");
        self.shown("#enroll-dialog");
        self.click("#enroll-submit");
        self.wait_for_text("#toast", "as a push device");
    }

    /// Plays the window manager (`tests/it/x11_window.py`, Debian's python3-xlib): `close` asks
    /// the window to close as its title bar's close button does; `state` says `shown` or `hidden`.
    /// `None` when the window is gone.
    fn window_manager(&self, command: &str) -> Option<String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("it/x11_window.py");
        let output = Command::new("/usr/bin/python3")
            .arg(script)
            .args([command, "Tessera"])
            .env("DISPLAY", &self.display.name)
            .output()
            .expect("Debian's python3 with python3-xlib (scripts/setup-debian.sh installs them)");
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Waits (up to 15 s) until the window is `shown`, `hidden`, or (`None`) gone.
    fn wait_for_window(&self, state: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.window_manager("state").as_deref() != state {
            assert!(Instant::now() < deadline, "the window did not become {state:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The element `css` selects, once it is displayed (within 10 s).
    fn shown(&self, css: &str) -> Element {
        self.run(async |page| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(found) = page.find(Locator::Css(css)).await
                    && found.is_displayed().await.unwrap_or(false)
                {
                    return found;
                }
                assert!(Instant::now() < deadline, "{css} was not shown");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    /// Waits (up to 10 s) until the `<dialog>` with id `id` is closed.
    fn wait_closed(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.evaluate("return document.getElementById(arguments[0]).open", vec![json!(id)])
            == json!(true)
        {
            assert!(Instant::now() < deadline, "#{id} stayed open");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element `css` selects, finding it again if the list was redrawn meanwhile.
    fn click(&self, css: &str) {
        for _ in 0..3 {
            let found = self.shown(css);
            if self.run(async |_| found.click().await).is_ok() {
                return;
            }
        }
        panic!("could not click {css}");
    }

    /// Evaluates `script` (a function body) in the page; reads are done this way because the
    /// list is redrawn whenever codes change, which would leave element handles stale.
    fn evaluate(&self, script: &str, arguments: Vec<serde_json::Value>) -> serde_json::Value {
        self.run(async |page| page.execute(script, arguments).await.unwrap())
    }

    fn type_into(&self, css: &str, text: &str) {
        let field = self.shown(css);
        self.run(async |_| {
            field.clear().await.unwrap();
            if !text.is_empty() {
                field.send_keys(text).await.unwrap();
            }
        });
    }

    /// The text of the element `css` selects (which need not be visible: an empty error line).
    fn text(&self, css: &str) -> String {
        let text = self
            .evaluate("return document.querySelector(arguments[0])?.textContent ?? null", vec![json!(css)]);
        text.as_str().unwrap_or_else(|| panic!("nothing matches {css}")).to_owned()
    }

    /// Waits (up to 10 s) until the element `css` selects says `needle`.
    fn wait_for_text(&self, css: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.text(css).contains(needle) {
            assert!(Instant::now() < deadline, "{css} never said {needle:?}: it says {:?}", self.text(css));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The token cards' `data-id`s, in screen order.
    fn token_ids(&self) -> Vec<String> {
        let ids = self.evaluate(
            "return [...document.querySelectorAll('#token-list .token')].map(c => c.dataset.id)",
            vec![],
        );
        serde_json::from_value(ids).unwrap()
    }

    /// Waits until the list shows `count` tokens.
    fn wait_for_tokens(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ids = self.token_ids();
            if ids.len() == count {
                return ids;
            }
            assert!(Instant::now() < deadline, "expected {count} tokens, the list shows {}", ids.len());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The code a card shows, checked against oathtool's for `secret` (SHA-1, 30 s steps) at the
    /// same moment. Just after a step's boundary the app may still be fetching the new code, so a
    /// mismatch is read again for up to 2 s before it fails.
    fn assert_code_matches_oathtool(&self, id: &str, secret: &str, digits: u8) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let shown = self.evaluate(
                "return document.querySelector(`[data-id='${arguments[0]}'] .code`)?.dataset.code ?? ''",
                vec![json!(id)],
            );
            let shown = shown.as_str().unwrap_or_default().to_owned();
            let now = unix_now();
            let expected =
                oathtool(&["--totp", "-b", &format!("--digits={digits}"), &format!("--now=@{now}"), secret]);
            if shown == expected {
                return shown;
            }
            assert!(Instant::now() < deadline, "the app shows {shown}, oathtool says {expected}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the X clipboard holds, read as another program would.
    fn clipboard(&self) -> String {
        let output = Command::new("xclip")
            .args(["-o", "-selection", "clipboard"])
            .env("DISPLAY", &self.display.name)
            .output()
            .expect("xclip (installed by scripts/setup-debian.sh)");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// A PNG of a QR code holding `text`, as a website's enrollment page shows it.
fn qr_png(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("enroll-qr.png");
    std::fs::write(&path, tessera_core::qr::render_png(text, 6).unwrap()).unwrap();
    path
}

#[test]
fn a_new_user_creates_a_vault_adds_tokens_by_link_and_image_and_copies_a_code() {
    let sandbox = Sandbox::new();
    let app = App::start(&sandbox, &[]);

    app.shown("#setup-screen");
    app.screenshot("desktop-first-run.png");
    app.type_into("#new-passphrase", PASSPHRASE);
    app.type_into("#confirm-passphrase", PASSPHRASE);
    app.click("#create-vault");
    app.shown("#empty-state");
    app.screenshot("desktop-empty-vault.png");

    app.click("#add-button");
    app.type_into(
        "#add-uri",
        &format!("otpauth://totp/Example:alice@example.com?secret={RFC_SECRET}&issuer=Example"),
    );
    app.type_into("#add-group", "Work");
    app.click("#add-submit");
    let [by_link]: [String; 1] = app.wait_for_tokens(1).try_into().unwrap();
    app.assert_code_matches_oathtool(&by_link, RFC_SECRET, 6);

    let image_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let png =
        qr_png(sandbox.dir.path(), &format!("otpauth://totp/GitHub:octocat?secret={image_secret}&digits=8"));
    app.click("#add-button");
    app.click("[data-tab='image']");
    app.screenshot("desktop-add-image.png");
    let file_input = app.run(async |page| page.find(Locator::Id("add-image")).await.unwrap());
    app.run(async |_| file_input.send_keys(png.to_str().unwrap()).await.unwrap());
    let ids = app.wait_for_tokens(2);
    let by_image = ids.iter().find(|id| **id != by_link).unwrap().clone();
    let code = app.assert_code_matches_oathtool(&by_image, image_secret, 8);
    app.screenshot("desktop-tokens.png");
    assert_eq!(app.text(&format!("[data-id='{by_image}'] .issuer")), "GitHub");
    let avatars = app.evaluate(
        "return [arguments[0], arguments[1]].map(id => { \
           const avatar = document.querySelector(`[data-id='${id}'] .avatar`); \
           return [avatar.querySelector('svg')?.dataset.brand ?? null, avatar.textContent]; })",
        vec![json!(by_image), json!(by_link)],
    );
    assert_eq!(
        avatars,
        json!([["GitHub", ""], [null, "E"]]),
        "a known issuer shows its icon, another its initials"
    );

    app.click(&format!("[data-id='{by_image}'] .code"));
    app.wait_for_text("#toast", "clipboard clears in 30 s");
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.clipboard() != code {
        assert!(Instant::now() < deadline, "the clipboard holds {:?}, not the code", app.clipboard());
        std::thread::sleep(Duration::from_millis(100));
    }

    app.type_into("#search", "octo");
    assert_eq!(app.token_ids(), vec![by_image.clone()], "the search keeps only GitHub");
    let search = app.shown("#search");
    app.run(async |_| search.send_keys(&Key::Escape.to_string()).await.unwrap());
    app.wait_for_tokens(2);
    assert_eq!(
        app.evaluate("return document.querySelector('#search').value", vec![]),
        "",
        "Esc clears the search"
    );

    let listed = sandbox.list_json();
    let issuers: Vec<_> = listed.as_array().unwrap().iter().map(|t| t["issuer"].as_str().unwrap()).collect();
    assert_eq!(issuers, ["Example", "GitHub"], "the CLI reads the vault the app wrote");
    assert_eq!(listed[0]["group"], "Work");

    app.click("#lock-button");
    app.shown("#unlock-screen");
    app.screenshot("desktop-locked.png");
    assert!(app.token_ids().is_empty(), "no token is left on screen when locked");
    app.click("#unlock-button");
    assert_eq!(app.wait_for_tokens(2).len(), 2, "the OS key store unlocked it");

    app.click(&format!("[data-id='{by_link}'] .menu"));
    app.shown("#edit-dialog .delete");
    app.screenshot("desktop-edit.png");
    app.type_into("#edit-group", "");
    app.type_into("#edit-label", "alice@work.example");
    app.click("#edit-dialog button[value='save']");
    // The dialog is modal: the list behind it takes no click until the save has closed it.
    app.wait_closed("edit-dialog");
    app.click(&format!("[data-id='{by_image}'] .menu"));
    app.click("#edit-dialog .delete");
    app.shown("#confirm-delete");
    app.screenshot("desktop-confirm-delete.png");
    app.click("#confirm-delete");
    assert_eq!(app.wait_for_tokens(1), vec![by_link.clone()]);
    let listed = sandbox.list_json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["label"], "alice@work.example");
    assert_eq!(listed[0]["group"], serde_json::Value::Null);
}

/// Webcam-like frames for the replay camera: 30 frames of a QR code that adds nothing (a web
/// address), then one of a token's `otpauth://` QR code, each on a 640×480 grey scene.
fn camera_frames(dir: &Path, uri: &str) -> std::path::PathBuf {
    let frames = dir.join("frames");
    std::fs::create_dir(&frames).unwrap();
    let scene = |text: &str, name: &str| {
        let code = tessera_core::qr::render_image(text, 5).unwrap();
        let mut frame =
            image::GrayImage::from_fn(640, 480, |x, y| image::Luma([90 + ((x + 2 * y) % 60) as u8]));
        let (left, top) = ((640 - code.width()) / 2, (480 - code.height()) / 2);
        image::imageops::overlay(&mut frame, &code, i64::from(left), i64::from(top));
        frame.save(frames.join(name)).unwrap();
    };
    for index in 0..30 {
        scene("https://example.com/not-a-token", &format!("frame-{index:03}.png"));
    }
    scene(uri, "frame-100.png");
    frames
}

#[test]
fn the_webcam_tab_previews_frames_and_adds_the_token_it_sees() {
    let sandbox = Sandbox::with_keystore_vault();
    let secret = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";
    let frames = camera_frames(sandbox.dir.path(), &format!("otpauth://totp/Camera:kim?secret={secret}"));
    let app = App::start(&sandbox, &[("TESSERA_CAMERA_REPLAY", frames.to_str().unwrap())]);
    app.shown("#empty-state");
    app.click("#add-button");
    app.click("[data-tab='camera']");
    app.shown("#camera-preview");
    app.wait_for_text("#camera-status", "Hold the QR code up to the camera");
    let preview = app.evaluate(
        "const img = document.getElementById('camera-preview'); return [img.naturalWidth, img.naturalHeight]",
        vec![],
    );
    assert_eq!(preview, json!([480, 360]), "the preview shows the 640×480 frames scaled to 480 wide");
    app.screenshot("desktop-add-camera.png");
    let [token]: [String; 1] = app.wait_for_tokens(1).try_into().unwrap();
    app.assert_code_matches_oathtool(&token, secret, 6);
    assert_eq!(
        app.text(&format!("[data-id='{token}'] .issuer")),
        "Camera",
        "the web address was passed over"
    );
}

#[test]
fn a_passphrase_vault_refuses_a_wrong_passphrase_and_locks_itself_when_idle() {
    let sandbox = Sandbox::new();
    let app = App::start(&sandbox, &[("TESSERA_AUTO_LOCK_SECS", "4")]);
    app.click("#use-keystore");
    app.type_into("#new-passphrase", "short");
    app.type_into("#confirm-passphrase", "short");
    app.click("#create-vault");
    app.wait_for_text("#create-error", "at least 8");
    app.type_into("#new-passphrase", PASSPHRASE);
    app.type_into("#confirm-passphrase", PASSPHRASE);
    app.click("#create-vault");
    app.shown("#empty-state");
    let slots = sandbox.run(&["slots", "list"]).ok();
    assert!(slots.contains("passphrase") && !slots.contains("os-keystore"), "{slots}");

    app.shown("#unlock-screen");
    assert!(app.token_ids().is_empty());
    app.type_into("#passphrase", "not the passphrase");
    app.click("#unlock-button");
    app.wait_for_text("#unlock-error", "wrong passphrase");
    app.type_into("#passphrase", PASSPHRASE);
    app.click("#unlock-button");
    app.shown("#empty-state");
}

#[test]
fn a_tokens_qr_code_for_moving_it_needs_the_passphrase_even_when_the_key_store_unlocked() {
    require_secret_service();
    let sandbox = Sandbox::new();
    sandbox.run_env(&["init", "--passphrase"], &[("TESSERA_PASSPHRASE", PASSPHRASE)]).ok();
    let uri = format!("otpauth://totp/Moving:kim?secret={RFC_SECRET}");
    sandbox.run(&["add", &uri]).ok();
    let app = App::start(&sandbox, &[]);
    let [token]: [String; 1] = app.wait_for_tokens(1).try_into().unwrap();
    app.click(&format!("[data-id='{token}'] .menu"));
    app.click("#edit-show-qr");
    app.click("#qr-show");
    app.wait_for_text("#qr-error", "passphrase is needed");
    app.type_into("#qr-passphrase", "not the passphrase");
    app.click("#qr-show");
    app.wait_for_text("#qr-error", "wrong passphrase");
    assert_eq!(app.evaluate("return document.getElementById('qr-image').hidden", vec![]), true);
    app.type_into("#qr-passphrase", PASSPHRASE);
    app.click("#qr-show");
    app.shown("#qr-image");
    let texts = app.screenshot_with_qr("desktop-move-token.png");
    let moved = tessera_core::otpauth::OtpAuth::parse(texts[0].expose()).unwrap().otp;
    let original = tessera_core::otpauth::OtpAuth::parse(&uri).unwrap().otp;
    assert_eq!(
        moved.to_uri().expose(),
        original.to_uri().expose(),
        "the QR code on screen is the same token"
    );
}

#[test]
fn the_page_may_call_only_the_apps_own_commands() {
    let sandbox = Sandbox::new();
    let app = App::start(&sandbox, &[]);
    app.shown("#setup-screen");
    let call = |command: &str| {
        let script = "const done = arguments[arguments.length - 1];
            window.__TAURI_INTERNALS__.invoke(arguments[0]).then(() => done('allowed'), (e) => done(String(e?.message ?? e)));";
        app.run(async |page| page.execute_async(script, vec![json!(command)]).await.unwrap())
    };
    assert_eq!(call("vault_status"), "allowed", "the app's own commands work");
    for refused in
        ["plugin:clipboard-manager|read_text", "plugin:clipboard-manager|write_text", "plugin:app|version"]
    {
        let answer = call(refused);
        assert!(answer.as_str().unwrap().contains("not allowed"), "{refused}: {answer}");
    }
}

#[test]
fn the_one_swipe_code_on_screen_logs_in_at_the_server_once() {
    let server = Server::start(Db::Sqlite, "");
    let sandbox = Sandbox::with_keystore_vault();
    user_with_device(&server, &sandbox, "kim", None);
    let app = App::start(&sandbox, &[]);

    app.click(".oneswipe-button");
    app.wait_for_text("#oneswipe-countdown", "Valid for");
    let texts = app.screenshot_with_qr("desktop-one-swipe.png");
    let payload = texts[0].expose().to_owned();

    let (status, body) = server.post("/api/v1/oneswipe", &json!({ "payload": payload }));
    assert_eq!((status, body["result"].as_str()), (200, Some("accept")), "{body}");
    assert_eq!(body["username"], "kim");
    let (_, replayed) = server.post("/api/v1/oneswipe", &json!({ "payload": payload }));
    assert_eq!(replayed["reason"], "replayed", "{replayed}");
}

#[test]
fn the_vault_locks_when_the_computer_goes_to_sleep() {
    let sandbox = Sandbox::with_keystore_vault();
    let app = App::start(&sandbox, &[("TESSERA_SLEEP_SIGNAL_BUS", "session")]);
    app.shown("#empty-state");
    let prepare_for_sleep = |going_to_sleep: bool| {
        let sent = Command::new("dbus-send")
            .args(["--session", "--type=signal", "/org/freedesktop/login1"])
            .arg("org.freedesktop.login1.Manager.PrepareForSleep")
            .arg(format!("boolean:{going_to_sleep}"))
            .status()
            .unwrap();
        assert!(sent.success());
    };
    prepare_for_sleep(false);
    std::thread::sleep(Duration::from_millis(500));
    let locked = || app.evaluate("return document.getElementById('unlock-screen').hidden === false", vec![]);
    assert_eq!(locked(), false, "waking up (false) does not lock");
    prepare_for_sleep(true);
    app.wait_for_text("#toast", "went to sleep");
    assert_eq!(locked(), true);
}

/// Watches the session bus for desktop notifications (`org.freedesktop.Notifications.Notify`),
/// as a notification daemon would receive them.
struct NotificationWatch {
    monitor: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl NotificationWatch {
    fn start() -> Self {
        let mut monitor = Command::new("dbus-monitor")
            .args([
                "--session",
                "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-monitor (Debian dbus)");
        let lines = lines_of(monitor.stdout.take().unwrap());
        Self { monitor, lines }
    }

    /// Waits (up to 10 s) for a notification whose text says `needle`.
    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if line.contains(needle) {
                return;
            }
            seen.push(line);
        }
        panic!("no notification said {needle:?}; the bus carried: {seen:#?}");
    }
}

impl Drop for NotificationWatch {
    fn drop(&mut self) {
        let _ = self.monitor.kill();
        let _ = self.monitor.wait();
    }
}

/// Starts a login for `username` at "ACME VPN" with an empty passcode (a push); returns the
/// transaction and the number the login screen shows.
/// A user with the password `start_push_login` gives and a push token waiting for a device: its
/// enrollment link.
fn user_with_push_token(server: &Server, username: &str) -> String {
    let user = json!({ "username": username, "password": "hunter2hunter2" });
    assert_eq!(server.admin("POST", "/api/v1/users", Some(user)).0, 201);
    let (status, enrollment) =
        server.admin("POST", &format!("/api/v1/users/{username}/tokens"), Some(json!({ "kind": "push" })));
    assert_eq!(status, 201, "{enrollment}");
    enrollment["enrollment_uri"].as_str().unwrap().to_owned()
}

fn start_push_login(server: &Server, username: &str) -> (String, u64) {
    static LOGINS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let login = LOGINS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let vpn = server.application(&format!("vpn-{username}-{login}"), "ACME VPN");
    let (status, body) = send_validate_as(
        server,
        Some(&vpn),
        json!({ "username": username, "password": "hunter2hunter2", "passcode": "", "client_ip": "203.0.113.9" }),
    );
    assert_eq!((status, body["result"].as_str()), (200, Some("challenge")), "{body}");
    (body["transaction_id"].as_str().unwrap().to_owned(), body["number"].as_u64().unwrap())
}

#[test]
fn the_app_enrolls_from_a_link_and_approves_a_push_with_the_right_number() {
    let server = Server::start(Db::Sqlite, "[push]\nnumber_matching = \"pick\"\n");
    let link = user_with_push_token(&server, "lee");
    let notifications = NotificationWatch::start();
    let sandbox = Sandbox::with_keystore_vault();
    let app = App::start(&sandbox, &[]);

    let mut elsewhere = tessera_core::push::EnrollmentLink::parse(&link).unwrap();
    elsewhere.server = "http://192.0.2.80:8480".into();
    app.shown("#empty-state");
    app.click("#add-button");
    app.type_into("#add-uri", elsewhere.to_uri().expose());
    app.click("#add-submit");
    app.shown("#enroll-dialog");
    assert_eq!(app.text("#enroll-host"), "192.0.2.80:8480", "the server is shown before anything is sent");
    assert_eq!(app.text("#enroll-account"), "lee");
    app.click("#enroll-submit");
    app.wait_for_text("#enroll-cleartext", "Anyone on this network can read this enrollment");
    app.wait_for_text("#enroll-submit", "Enroll over HTTP anyway");
    app.screenshot("desktop-enroll-over-http-warning.png");
    app.click("#enroll-dialog .cancel");
    app.shown("#empty-state");

    app.click("#add-button");
    app.type_into("#add-uri", &link);
    app.click("#add-submit");
    app.shown("#enroll-dialog");
    app.wait_for_text("#enroll-submit", "Enroll");
    app.screenshot("desktop-enroll-confirm.png");
    app.click("#enroll-submit");
    app.wait_for_text("#toast", "as a push device");
    let [device]: [String; 1] = app.wait_for_tokens(1).try_into().unwrap();
    assert!(app.text(&format!("[data-id='{device}'] .label")).contains("lee"), "the push token is listed");

    let (transaction, number) = start_push_login(&server, "lee");
    app.shown("#push-dialog");
    notifications.wait_for("Login request: ACME VPN");
    app.wait_for_text("#push-headline", "lee is logging in to ACME VPN");
    assert!(app.text("#push-context").contains("203.0.113.9"), "the dialog says where the login comes from");
    let choices = app.evaluate(
        "return [...document.querySelectorAll('#push-choices button')].map(b => Number(b.textContent))",
        vec![],
    );
    let choices: Vec<u64> = serde_json::from_value(choices).unwrap();
    assert_eq!(choices.len(), 3, "three numbers to pick from: {choices:?}");
    assert!(choices.contains(&number), "the login screen's number {number} is offered: {choices:?}");
    app.screenshot("desktop-push-request.png");
    app.click(&format!("#push-choices button[aria-label='Approve with {number}']"));
    app.wait_for_text("#toast", "Approved");
    assert_eq!(wait_status(&server, &transaction, 5), "approved");
    assert_eq!(finish(&server, "lee", &transaction), "accept", "the relying party completes the login");

    app.click("#lock-button");
    app.shown("#unlock-screen");
    let (transaction, _) = start_push_login(&server, "lee");
    app.wait_for_text("#push-waiting", "Unlock to approve or deny");
    app.screenshot("desktop-push-while-locked.png");
    app.click("#unlock-button");
    app.shown("#push-dialog");
    app.click("#push-not-me");
    app.wait_for_text("#toast", "Denied and reported");
    assert_eq!(wait_status(&server, &transaction, 5), "denied");
    assert_eq!(finish(&server, "lee", &transaction), "reject");
}

#[test]
fn closing_the_window_keeps_tessera_in_the_tray_for_logins_and_starting_it_again_shows_it() {
    let tray = TrayHost::start();
    let server = Server::start(Db::Sqlite, "[push]\nnumber_matching = \"pick\"\n");
    let link = user_with_push_token(&server, "noa");
    let sandbox = Sandbox::with_keystore_vault();
    let app = App::start(&sandbox, &[]);
    app.enroll_from_link(&link);
    let (name, menu, _) = tray.menu_where("noa's push token", |label| label.contains("noa"));

    let notifications = NotificationWatch::start();
    assert_eq!(app.window_manager("close").as_deref(), Some(""), "the close button");
    app.wait_for_window(Some("hidden"));
    notifications.wait_for("Tessera is still running");
    let (transaction, number) = start_push_login(&server, "noa");
    app.wait_for_window(Some("shown"));
    app.shown("#push-dialog");
    app.click(&format!("#push-choices button[aria-label='Approve with {number}']"));
    assert_eq!(wait_status(&server, &transaction, 5), "approved", "approved from the hidden app");
    assert_eq!(finish(&server, "noa", &transaction), "accept");

    app.window_manager("close");
    app.wait_for_window(Some("hidden"));
    let second = Command::new(binary("tessera-desktop"))
        .env("DISPLAY", &app.display.name)
        .env("GDK_BACKEND", "x11")
        .env("TESSERA_VAULT", &sandbox.vault)
        .env("TESSERA_KEYRING_SERVICE", "dev.tessera.test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(second.success(), "a second start hands over to the running app and ends: {second}");
    app.wait_for_window(Some("shown"));
    assert_eq!(app.wait_for_tokens(1).len(), 1, "the same app, its vault still open");

    let entries = tray.entries(&name, &menu);
    tray.click(&name, &menu, &entries, "Quit Tessera");
    app.wait_for_window(None);
}

/// A tray host for the test: owns `org.kde.StatusNotifierWatcher` on the session bus, as a desktop's
/// panel does, records the tray icons that register, and reads and clicks their menus
/// (`com.canonical.dbusmenu`) as a user clicking the tray would.
struct TrayHost {
    /// One tray host at a time: tray icons register with whichever owns the watcher's name.
    _alone: std::sync::MutexGuard<'static, ()>,
    registered: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    serving: Option<std::thread::JoinHandle<()>>,
    bus: dbus::blocking::Connection,
}

/// A menu entry: its dbusmenu id and label.
type MenuEntry = (i32, String);

impl TrayHost {
    fn start() -> Self {
        use dbus::channel::{MatchingReceiver, Sender};
        use dbus::message::MatchRule;
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let alone = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let registered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ready, started) = std::sync::mpsc::channel();
        let serving = {
            let (registered, stop) = (registered.clone(), stop.clone());
            std::thread::spawn(move || {
                let watcher = dbus::blocking::Connection::new_session().unwrap();
                watcher.request_name("org.kde.StatusNotifierWatcher", false, true, true).unwrap();
                watcher.start_receive(
                    MatchRule::new_method_call(),
                    Box::new(move |call, bus| {
                        let reply = match (call.interface().as_deref(), call.member().as_deref()) {
                            (Some("org.kde.StatusNotifierWatcher"), Some("RegisterStatusNotifierItem")) => {
                                let service: String = call.read1().unwrap_or_default();
                                let sender = call.sender().map(|s| s.to_string()).unwrap_or_default();
                                registered.lock().unwrap().push((sender, service));
                                call.method_return()
                            }
                            (Some("org.freedesktop.DBus.Properties"), Some("Get")) => {
                                let (_, property): (String, String) = call.read2().unwrap_or_default();
                                let value: Box<dyn dbus::arg::RefArg> = match property.as_str() {
                                    "IsStatusNotifierHostRegistered" => Box::new(true),
                                    "ProtocolVersion" => Box::new(0i32),
                                    _ => Box::new(Vec::<String>::new()),
                                };
                                call.method_return().append1(dbus::arg::Variant(value))
                            }
                            (Some("org.freedesktop.DBus.Properties"), Some("GetAll")) => {
                                let mut all = dbus::arg::PropMap::new();
                                all.insert(
                                    "IsStatusNotifierHostRegistered".into(),
                                    dbus::arg::Variant(Box::new(true)),
                                );
                                all.insert("ProtocolVersion".into(), dbus::arg::Variant(Box::new(0i32)));
                                all.insert(
                                    "RegisteredStatusNotifierItems".into(),
                                    dbus::arg::Variant(Box::new(Vec::<String>::new())),
                                );
                                call.method_return().append1(all)
                            }
                            _ => call.method_return(),
                        };
                        let _ = bus.send(reply);
                        true
                    }),
                );
                ready.send(()).unwrap();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = watcher.process(Duration::from_millis(100));
                }
            })
        };
        started.recv_timeout(Duration::from_secs(10)).expect("the tray host started");
        let bus = dbus::blocking::Connection::new_session().unwrap();
        Self { _alone: alone, registered, stop, serving: Some(serving), bus }
    }

    /// The menu of the registered tray icon that offers `label`, within 15 s: its bus name and
    /// menu path, and every entry.
    fn menu_offering(&self, label: &str) -> (String, dbus::Path<'static>, Vec<MenuEntry>) {
        self.menu_where(&format!("{label:?}"), |l| l == label)
    }

    /// The menu of the registered tray icon with an entry whose label passes `wanted` (described
    /// as `what`), within 15 s.
    fn menu_where(
        &self,
        what: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> (String, dbus::Path<'static>, Vec<MenuEntry>) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let registered = self.registered.lock().unwrap().clone();
            for (sender, service) in registered {
                let path =
                    if service.starts_with('/') { service.clone() } else { "/StatusNotifierItem".into() };
                let name = if service.starts_with('/') { sender.clone() } else { service.clone() };
                let Some(menu) = self.menu_path(&name, &path) else { continue };
                let entries = self.entries(&name, &menu);
                if entries.iter().any(|(_, l)| wanted(l)) {
                    return (name, menu, entries);
                }
            }
            assert!(Instant::now() < deadline, "no tray icon offers {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn menu_path(&self, name: &str, item: &str) -> Option<dbus::Path<'static>> {
        use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
        let proxy = self.bus.with_proxy(name, item, Duration::from_secs(5));
        proxy.get::<dbus::Path<'static>>("org.kde.StatusNotifierItem", "Menu").ok()
    }

    fn entries(&self, name: &str, menu: &dbus::Path<'static>) -> Vec<MenuEntry> {
        use dbus::arg::RefArg;
        type Layout = (i32, dbus::arg::PropMap, Vec<dbus::arg::Variant<Box<dyn RefArg>>>);
        let proxy = self.bus.with_proxy(name, menu.clone(), Duration::from_secs(5));
        let Ok((_, root)): Result<(u32, Layout), _> =
            proxy.method_call("com.canonical.dbusmenu", "GetLayout", (0i32, -1i32, Vec::<String>::new()))
        else {
            return Vec::new();
        };
        fn walk(item: &dyn RefArg, entries: &mut Vec<MenuEntry>) {
            let Some(mut fields) = item.as_iter() else { return };
            let id = fields.next().and_then(|id| id.as_i64()).unwrap_or(-1) as i32;
            let mut label = String::new();
            if let Some(mut properties) = fields.next().and_then(|p| p.as_iter()) {
                while let (Some(key), Some(value)) = (properties.next(), properties.next()) {
                    if key.as_str() == Some("label") {
                        label = value.as_str().unwrap_or_default().replace('_', "");
                    }
                }
            }
            entries.push((id, label));
            for child in fields.next().and_then(|c| c.as_iter()).into_iter().flatten() {
                if let Some(inner) = child.as_iter().and_then(|mut v| v.next()) {
                    walk(inner, entries);
                }
            }
        }
        let mut entries = Vec::new();
        for child in &root.2 {
            walk(&*child.0, &mut entries);
        }
        entries
    }

    /// Clicks the entry `label` of the menu at `name`/`menu`.
    fn click(&self, name: &str, menu: &dbus::Path<'static>, entries: &[MenuEntry], label: &str) {
        let id = entries
            .iter()
            .find(|(_, l)| l == label)
            .unwrap_or_else(|| panic!("no {label:?} in {entries:?}"))
            .0;
        let proxy = self.bus.with_proxy(name, menu.clone(), Duration::from_secs(5));
        let event = (id, "clicked", dbus::arg::Variant(0i32), 0u32);
        let clicked: Result<(), dbus::Error> = proxy.method_call("com.canonical.dbusmenu", "Event", event);
        match clicked {
            Ok(()) => {}
            // Quitting ends the app, which may be gone before it answers the click.
            Err(error)
                if label.starts_with("Quit")
                    && error.name() == Some("org.freedesktop.DBus.Error.NoReply") => {}
            Err(error) => panic!("clicking {label:?}: {error}"),
        }
    }
}

impl Drop for TrayHost {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(serving) = self.serving.take() {
            let _ = serving.join();
        }
    }
}

#[test]
fn the_tray_menu_copies_a_code_and_locks_the_vault() {
    let tray = TrayHost::start();
    let sandbox = Sandbox::with_keystore_vault();
    sandbox.run(&["add", &format!("otpauth://totp/Traytest:kim?secret={RFC_SECRET}")]).ok();
    let app = App::start(&sandbox, &[]);
    app.wait_for_tokens(1);

    let (name, menu, entries) = tray.menu_offering("Traytest:kim");
    for expected in ["Show Tessera", "Copy a code", "Lock", "Quit Tessera"] {
        assert!(entries.iter().any(|(_, l)| l == expected), "{expected:?} is in the tray menu: {entries:?}");
    }
    tray.click(&name, &menu, &entries, "Traytest:kim");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = unix_now();
        let expected = oathtool(&["--totp", "-b", &format!("--now=@{now}"), RFC_SECRET]);
        if app.clipboard() == expected {
            break;
        }
        assert!(Instant::now() < deadline, "the clipboard holds {:?}, not the code", app.clipboard());
        std::thread::sleep(Duration::from_millis(100));
    }

    tray.click(&name, &menu, &entries, "Lock");
    app.shown("#unlock-screen");
    let (_, _, locked) = tray.menu_offering("Unlock Tessera to copy codes");
    assert!(!locked.iter().any(|(_, l)| l == "Traytest:kim"), "a locked vault's tokens leave the menu");
}

#[test]
fn the_app_signs_in_to_the_organisation_shows_a_working_code_and_receives_a_push() {
    let server = Server::start(Db::Sqlite, "[portal]\nenabled = true\n[push]\nnumber_matching = \"pick\"\n");
    let user = json!({ "username": "mo", "password": "hunter2hunter2" });
    assert_eq!(server.admin("POST", "/api/v1/users", Some(user)).0, 201);
    let (_, issued) = server.admin("POST", "/api/v1/users/mo/registration-code", Some(json!({})));
    let sandbox = Sandbox::with_keystore_vault();
    let app = App::start(&sandbox, &[]);

    app.shown("#empty-state");
    app.click("#empty-organisation");
    app.shown("#organisation-dialog");
    app.type_into("#organisation-server", &server.url);
    app.type_into("#organisation-username", "mo");
    app.type_into("#organisation-password", "wrong password");
    app.type_into("#organisation-factor", issued["code"].as_str().unwrap());
    app.click("#organisation-submit");
    app.wait_for_text("#organisation-error", "authentication failed");
    app.type_into("#organisation-password", "hunter2hunter2");
    app.screenshot("desktop-organisation-sign-in.png");
    app.click("#organisation-submit");
    app.wait_for_text("#toast", "as a push device");
    let [device]: [String; 1] = app.wait_for_tokens(1).try_into().unwrap();
    app.screenshot("desktop-organisation-signed-in.png");
    let (_, tokens) = server.admin("GET", "/api/v1/users/mo/tokens", None);
    assert_eq!(tokens[0]["kind"], "push");
    assert!(tokens[0]["device_name"].as_str().unwrap().starts_with("Tessera desktop"), "{tokens}");
    assert!(tokens[0]["pending_until"].is_null(), "the app registered, so the token is active: {tokens}");

    let at = unix_now();
    let shown = app.evaluate(
        "return document.querySelector(`[data-id='${arguments[0]}'] .code`)?.dataset.code ?? ''",
        vec![json!(device)],
    );
    let expected = sandbox.run(&["code", "mo", "--at", &at.to_string()]).ok();
    assert_eq!(shown.as_str().unwrap(), expected.trim(), "the window shows the token's code");

    let (transaction, number) = start_push_login(&server, "mo");
    app.shown("#push-dialog");
    app.wait_for_text("#push-headline", "mo is logging in to ACME VPN");
    app.click(&format!("#push-choices button[aria-label='Approve with {number}']"));
    app.wait_for_text("#toast", "Approved");
    assert_eq!(wait_status(&server, &transaction, 5), "approved", "its approval's code was right");
    assert_eq!(finish(&server, "mo", &transaction), "accept");
    let next = sandbox.run(&["code", "mo", "--at", &(at + 30).to_string()]).ok();
    let (_, answer) = server.validate("mo", Some("hunter2hunter2"), next.trim());
    assert_eq!(answer["result"], "accept", "and its codes sign in: {answer}");
}
