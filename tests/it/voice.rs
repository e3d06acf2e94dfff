//! Voice calls placed by the server as a SIP user agent, answered by a real SIP phone: baresip
//! (Debian `baresip-core`) in a terminal, auto-answering, where the test types keys as the user
//! would on the keypad (baresip sends them as RFC 4733 telephone-events) and hangs up; baresip
//! records what it heard (its `sndfile` module), which must be the prompt and not silence.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use serde_json::json;

use crate::login_page::{Browser, click, type_into};
use crate::radius::RadiusServer;
use crate::server_support::{Db, Server};
use crate::terminal::Terminal;
use crate::twilio_standin::{Call, TwilioStandIn, sign};

/// A desk phone: baresip with one account on a free UDP port, answering every call.
pub(crate) struct Phone {
    pub(crate) uri: String,
    recordings: PathBuf,
    pub(crate) terminal: Terminal,
    calls: std::sync::atomic::AtomicUsize,
    _dir: tempfile::TempDir,
}

impl Phone {
    /// A phone that answers every call at once.
    pub(crate) fn start() -> Self {
        Self::answering("auto")
    }

    /// A phone with baresip's `answermode` (`auto`, or `manual`: it rings until someone acts).
    fn answering(mode: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let recordings = dir.path().join("heard");
        std::fs::create_dir(&recordings).unwrap();
        let silence = dir.path().join("silence.wav");
        let made = Command::new("sox")
            .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
            .arg(&silence)
            .args(["trim", "0", "120"])
            .status()
            .expect("sox (Debian sox): run scripts/setup-debian.sh");
        assert!(made.success());
        std::fs::write(
            dir.path().join("config"),
            format!(
                "poll_method epoll\nsip_listen 127.0.0.1:{port}\nsip_trans_def udp\n\
                 audio_source aufile,{}\nmodule_path /usr/lib/baresip/modules\n\
                 module stdio.so\nmodule g711.so\nmodule aufile.so\nmodule sndfile.so\nsnd_path {}\n\
                 module_tmp uuid.so\nmodule_tmp account.so\nmodule_app menu.so\n",
                silence.display(),
                recordings.display()
            ),
        )
        .unwrap();
        let uri = format!("sip:phone@127.0.0.1:{port}");
        std::fs::write(dir.path().join("accounts"), format!("<{uri}>;regint=0;answermode={mode}\n")).unwrap();
        std::fs::write(dir.path().join("contacts"), "").unwrap();
        let terminal = Terminal::start(&format!("baresip -f {}", dir.path().display()));
        terminal.wait_for("baresip is ready.");
        Self { uri, recordings, terminal, calls: std::sync::atomic::AtomicUsize::new(0), _dir: dir }
    }

    /// The loudness (RMS amplitude, 0 to 1) of what the phone heard in its latest call, from
    /// `start` for `length` (seconds).
    fn heard_loudness(&self, start: &str, length: &str) -> f64 {
        let mut heard: Vec<PathBuf> = std::fs::read_dir(&self.recordings)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        heard.sort();
        let latest = heard.last().expect("baresip recorded the call");
        let stat =
            Command::new("sox").arg(latest).args(["-n", "trim", start, length, "stat"]).output().unwrap();
        let printed = String::from_utf8_lossy(&stat.stderr);
        printed
            .lines()
            .find_map(|line| line.strip_prefix("RMS     amplitude:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("sox stat printed: {printed}"))
    }
}

/// A short prompt (3.6 s), spoken by espeak-ng through `scripts/voice-prompt.sh`.
fn prompt(dir: &Path) -> PathBuf {
    let wav = dir.join("enter-code.wav");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/voice-prompt.sh");
    let text = "Please key in the six digit code shown on your screen.";
    let spoken = Command::new(script).arg(&wav).arg(text).status().unwrap();
    assert!(spoken.success(), "scripts/voice-prompt.sh (Debian espeak-ng and sox)");
    wav
}

/// The configuration of calls over SIP (with `account`'s lines in `[delivery.voice.sip]`), ringing
/// for at most `ring_secs`, with no cool-down between a user's calls.
pub(crate) fn voice_toml(dir: &Path, account: &str, ring_secs: u32) -> String {
    format!(
        "[delivery.limits]\ncooldown_secs = 0\n[delivery.voice]\nkind = \"sip\"\nring_secs = {ring_secs}\n\
         [delivery.voice.sip]\nfrom = \"sip:tessera@127.0.0.1\"\nprompt_wav = \"{}\"\n{account}",
        prompt(dir).display()
    )
}

/// A server that places calls over SIP (with `account`'s lines in `[delivery.voice.sip]`).
fn voice_server(dir: &Path, account: &str) -> Server {
    Server::start(Db::Sqlite, &voice_toml(dir, account, 30))
}

/// Runs `admin test-call` on another thread while `act` plays the user on `phone`; its answer.
fn test_call(server: &Server, phone: &Phone, keys: &str, act: impl FnOnce(&Terminal)) -> Value {
    std::thread::scope(|scope| {
        let uri = phone.uri.as_str();
        let call = scope.spawn(move || server.admin_cli(&["test-call", "--to", uri, "--keys", keys]));
        let calls = phone.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        phone.terminal.wait_for_times("Call established", calls);
        act(&phone.terminal);
        let output = call.join().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    })
}

#[test]
fn a_call_to_a_sip_phone_plays_the_prompt_and_hears_the_keys_pressed() {
    let dir = tempfile::tempdir().unwrap();
    let server = voice_server(dir.path(), "");
    let phone = Phone::start();

    let keyed = test_call(&server, &phone, "6", |keypad| {
        std::thread::sleep(std::time::Duration::from_millis(5600));
        keypad.type_keys("482913");
    });
    assert_eq!(keyed["answered"], true, "{keyed}");
    assert_eq!((keyed["keys"].as_str(), keyed["ended"].as_str()), (Some("482913"), Some("keyed")), "{keyed}");
    // The prompt speaks for 3.6 s, then silence: heard at its pace, it is still speaking at 2.2 to
    // 3.2 s and over by 4.5 s.
    let (start, middle, after) = (
        phone.heard_loudness("0", "2"),
        phone.heard_loudness("2.2", "1"),
        phone.heard_loudness("4.5", "0.8"),
    );
    assert!(start > 0.02 && middle > 0.02, "the phone heard the prompt, not silence: RMS {start}, {middle}");
    assert!(after < 0.005, "then silence: RMS {after}");
    phone.terminal.wait_for_times("terminated", 1);

    let hung_up = test_call(&server, &phone, "6", |keypad| {
        keypad.type_keys("4*");
        std::thread::sleep(std::time::Duration::from_millis(700));
        keypad.type_keys("b");
    });
    assert_eq!(
        (hung_up["keys"].as_str(), hung_up["ended"].as_str()),
        (Some("4*"), Some("hung_up")),
        "{hung_up}"
    );

    let (_, audit) = server.admin("GET", "/api/v1/audit?limit=20", None);
    let calls: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "voice.test_call")
        .filter_map(|r| r["reason"].as_str())
        .collect();
    assert_eq!(calls.len(), 2, "{audit}");
    assert!(
        calls.iter().any(|r| r.ends_with(": keyed")) && calls.iter().any(|r| r.ends_with(": hung_up")),
        "{calls:?}"
    );
}

#[test]
fn a_call_without_voice_settings_or_to_a_bad_address_is_refused_with_the_reason() {
    let plain = Server::start(Db::Sqlite, "");
    let refused = plain.admin_cli(&["test-call", "--to", "sip:phone@127.0.0.1:5070"]);
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && message.contains("no [delivery.voice] is configured"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let server = voice_server(dir.path(), "");
    let number = server.admin_cli(&["test-call", "--to", "+447700900123"]);
    let printed: Value = serde_json::from_slice(&number.stdout).unwrap();
    assert_eq!(printed["answered"], false);
    assert!(
        printed["ended"]["failed"].as_str().unwrap().contains("needs [delivery.voice.sip] proxy"),
        "{printed}"
    );
    let bad = server.admin_cli(&["test-call", "--to", "not a number"]);
    assert!(!bad.status.success(), "{}", String::from_utf8_lossy(&bad.stdout));
}

#[test]
fn without_a_prompt_named_the_server_plays_the_one_spoken_beside_it() {
    let beside = crate::support::binary("tessera-server").parent().unwrap().join("voice/enter-code.wav");
    assert!(
        beside.is_file(),
        "{} is missing: run scripts/build-web.sh (scripts/test.sh does)",
        beside.display()
    );
    let server = Server::start(
        Db::Sqlite,
        "[delivery.voice]\nkind = \"sip\"\n[delivery.voice.sip]\nfrom = \"sip:tessera@127.0.0.1\"\n",
    );
    let phone = Phone::start();
    let keyed = test_call(&server, &phone, "1", |keypad| {
        std::thread::sleep(std::time::Duration::from_millis(2600));
        keypad.type_keys("5");
    });
    assert_eq!(keyed["ended"], "keyed", "{keyed}");
    assert!(phone.heard_loudness("0.5", "2") > 0.02, "the phone heard the installed prompt");
}

#[test]
fn a_call_nobody_answers_is_cancelled_and_a_rejected_one_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let server = voice_server(dir.path(), "");
    let phone = Phone::answering("manual");
    let call =
        |ring_secs: &str| server.admin_cli(&["test-call", "--to", &phone.uri, "--ring-secs", ring_secs]);

    let unanswered: Value = serde_json::from_slice(&call("2").stdout).unwrap();
    assert_eq!(
        (unanswered["answered"].as_bool(), unanswered["ended"].as_str()),
        (Some(false), Some("not_answered"))
    );
    phone.terminal.wait_for_times("Incoming call", 1);
    phone.terminal.wait_for_times("session closed", 1);

    let rejected = std::thread::scope(|scope| {
        let ringing = scope.spawn(|| call("20"));
        phone.terminal.wait_for_times("Incoming call", 2);
        phone.terminal.type_keys("b");
        ringing.join().unwrap()
    });
    let rejected: Value = serde_json::from_slice(&rejected.stdout).unwrap();
    assert_eq!(
        (rejected["answered"].as_bool(), rejected["ended"].as_str()),
        (Some(false), Some("busy")),
        "{rejected}"
    );
}

/// SIPp running `scenario` (in `tests/it`) once, as the phone at the address it returns.
fn sipp(scenario: &str, dir: &Path) -> (std::process::Child, String) {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let media = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let scenario = format!("{}/it/{scenario}", env!("CARGO_MANIFEST_DIR"));
    let sipp = Command::new("sipp")
        .args(["-sf", &scenario, "-i", "127.0.0.1", "-p", &port.to_string(), "-mi", "127.0.0.1"])
        .args(["-mp", &media.to_string(), "-m", "1", "-nostdin", "-trace_err"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sipp (Debian sip-tester): run scripts/setup-debian.sh");
    std::thread::sleep(std::time::Duration::from_millis(500));
    (sipp, format!("sip:2001@127.0.0.1:{port}"))
}

/// What `admin test-call` printed, and its error output.
fn call_outcome(server: &Server, to: &str, keys: &str) -> (Value, String) {
    let called = server.admin_cli(&["test-call", "--to", to, "--keys", keys]);
    (
        serde_json::from_slice(&called.stdout).unwrap_or_default(),
        String::from_utf8_lossy(&called.stderr).into_owned(),
    )
}

#[test]
fn keys_sent_by_sipp_from_its_own_recordings_are_heard() {
    let dir = tempfile::tempdir().unwrap();
    let server = voice_server(dir.path(), "");
    let (mut phone, uri) = sipp("sipp_keypad_uas.xml", dir.path());
    let (outcome, printed) = call_outcome(&server, &uri, "6");
    assert_eq!(
        (outcome["keys"].as_str(), outcome["ended"].as_str()),
        (Some("488*1#"), Some("keyed")),
        "SIPp keyed 4 8 8 * 1 #: {outcome} {printed}"
    );
    assert!(phone.wait().unwrap().success(), "SIPp's scenario ended as written (the call hung up with BYE)");
}

#[test]
fn a_pbx_asking_for_digest_authentication_gets_the_accounts_answer() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("sip.pw");
    let account = format!("username = \"tessera\"\npassword_file = \"{}\"\n", password.display());

    std::fs::write(&password, "pbx-secret-for-tests\n").unwrap();
    let server = voice_server(dir.path(), &account);
    let (mut pbx, uri) = sipp("sipp_digest_uas.xml", dir.path());
    let (outcome, printed) = call_outcome(&server, &uri, "1");
    assert_eq!(
        (outcome["keys"].as_str(), outcome["ended"].as_str()),
        (Some("7"), Some("keyed")),
        "{outcome} {printed}"
    );
    assert!(pbx.wait().unwrap().success(), "SIPp verified the digest answer and the call ended with BYE");

    std::fs::write(&password, "not-the-pbx-password\n").unwrap();
    let wrong = voice_server(dir.path(), &account);
    let (mut pbx, uri) = sipp("sipp_digest_uas.xml", dir.path());
    let (outcome, printed) = call_outcome(&wrong, &uri, "1");
    assert_eq!(outcome["answered"], false, "{outcome} {printed}");
    assert!(outcome["ended"]["failed"].as_str().unwrap_or_default().contains("403"), "{outcome}");
    let _ = pbx.wait();
}

/// A user with the password `2580` and a voice token that calls `destination`.
pub(crate) fn desk_phone_user(server: &Server, username: &str, destination: &str) -> String {
    let user = json!({ "username": username, "password": "2580" });
    let (status, body) = server.admin("POST", "/api/v1/users", Some(user));
    assert_eq!(status, 201, "{body}");
    let token = json!({ "kind": "voice", "destination": destination });
    let (status, body) = server.admin("POST", &format!("/api/v1/users/{username}/tokens"), Some(token));
    assert_eq!(status, 201, "{body}");
    body["serial"].as_str().unwrap().to_owned()
}

/// A login with the password: the challenge that names the call, its code shown.
fn call_challenge(server: &Server, username: &str) -> Value {
    let (status, challenge) = server.validate(username, Some("2580"), "");
    assert_eq!(status, 200, "{challenge}");
    assert_eq!(
        (challenge["result"].as_str(), challenge["channel"].as_str()),
        (Some("challenge"), Some("voice"))
    );
    challenge
}

/// The transaction's status once it is no longer pending (long-polled as a login client does).
fn settled(server: &Server, challenge: &Value) -> Value {
    let id = challenge["transaction_id"].as_str().unwrap();
    for _ in 0..6 {
        let (status, body) = server.get(&format!("/api/v1/transactions/{id}?wait=20"));
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        if body["status"] != "pending" {
            return body;
        }
    }
    panic!("the call's transaction stayed pending");
}

/// Completes the login with the transaction, as the login client does once it was approved.
fn complete(server: &Server, username: &str, challenge: &Value) -> Value {
    let body = json!({ "username": username, "transaction_id": challenge["transaction_id"] });
    let (status, answer) = server.post("/api/v1/validate", &body);
    assert_eq!(status, 200, "{answer}");
    answer
}

#[test]
fn a_desk_phone_user_signs_in_by_keying_the_code_shown_into_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let server = voice_server(dir.path(), "");
    let phone = Phone::start();
    let serial = desk_phone_user(&server, "dora", &phone.uri);

    let challenge = call_challenge(&server, "dora");
    let code = challenge["display_code"].as_str().unwrap().to_owned();
    assert!(
        code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()) && !code.starts_with('9'),
        "{challenge}"
    );
    let message = challenge["message"].as_str().unwrap();
    assert!(message.ends_with("key in the code shown here") && !message.contains(&code), "{challenge}");
    assert!(challenge["destination"].as_str().unwrap().starts_with("sip:••"), "masked: {challenge}");
    let left = challenge["expires_at"].as_i64().unwrap() - now();
    assert!((140..=150).contains(&left), "ringing (30 s) and two minutes for the entries: {challenge}");
    let early = complete(&server, "dora", &challenge);
    assert_eq!(early["result"], "challenge", "nothing was keyed yet: {early}");

    phone.terminal.wait_for_times("Call established", 1);
    phone.terminal.type_keys(&code);
    let status = settled(&server, &challenge);
    assert_eq!(status["status"], "approved", "{status}");
    phone.terminal.wait_for_times("terminated", 1);
    let done = complete(&server, "dora", &challenge);
    assert_eq!(
        (done["result"].as_str(), done["serial"].as_str()),
        (Some("accept"), Some(serial.as_str())),
        "{done}"
    );
    let again = complete(&server, "dora", &challenge);
    assert_eq!(again["result"], "reject", "a transaction completes one login: {again}");

    let (_, deliveries) = server.admin("GET", "/api/v1/deliveries?username=dora", None);
    let call = &deliveries[0];
    assert_eq!(
        (call["channel"].as_str(), call["status"].as_str(), call["gateway"].as_str()),
        (Some("voice"), Some("delivered"), Some("sip")),
        "the outbox placed the call and it was answered: {deliveries}"
    );
    assert!(!deliveries.to_string().contains(&code), "the code is in no delivery record");
    let (_, audit) = server.admin("GET", "/api/v1/audit?username=dora", None);
    let reasons: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["action"].as_str().unwrap(), r["reason"].as_str().unwrap_or_default()))
        .collect();
    for expected in ["validate called", "voice.answer approved", "validate call_approved"] {
        assert!(reasons.iter().any(|r| r == expected), "{expected}: {reasons:?}");
    }
    assert!(!audit.to_string().contains(&code), "the code is in no audit record");
}

#[test]
fn wrong_codes_a_hang_up_and_fraud_end_the_login_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = voice_server(dir.path(), "");
    let phone = Phone::start();
    desk_phone_user(&server, "walt", &phone.uri);

    let wrong = call_challenge(&server, "walt");
    let code = wrong["display_code"].as_str().unwrap();
    let other = if code.starts_with('1') { "222222" } else { "111111" };
    phone.terminal.wait_for_times("Call established", 1);
    for entry in 0..3 {
        phone.terminal.type_keys(other);
        if entry < 2 {
            std::thread::sleep(std::time::Duration::from_millis(1500));
            let id = wrong["transaction_id"].as_str().unwrap();
            let (_, pending) = server.get(&format!("/api/v1/transactions/{id}"));
            assert!(pending.contains("\"pending\""), "a wrong code leaves tries: {pending}");
        }
    }
    let status = settled(&server, &wrong);
    assert_eq!((status["status"].as_str(), status["reason"].as_str()), (Some("denied"), Some("wrong_code")));
    phone.terminal.wait_for_times("terminated", 1);
    assert_eq!(complete(&server, "walt", &wrong)["result"], "reject");

    let hung_up = call_challenge(&server, "walt");
    phone.terminal.wait_for_times("Call established", 2);
    phone.terminal.type_keys("b");
    let status = settled(&server, &hung_up);
    assert_eq!((status["status"].as_str(), status["reason"].as_str()), (Some("denied"), Some("hung_up")));

    let reported = call_challenge(&server, "walt");
    phone.terminal.wait_for_times("Call established", 3);
    phone.terminal.type_keys("9");
    let status = settled(&server, &reported);
    assert_eq!((status["status"].as_str(), status["reason"].as_str()), (Some("denied"), Some("fraud")));
    let (_, audit) = server.admin("GET", "/api/v1/audit?username=walt&action=voice.fraud_report", None);
    assert_eq!(
        (audit[0]["result"].as_str(), audit[0]["actor"].as_str()),
        (Some("alert"), Some("call")),
        "{audit}"
    );
    let (status, muted) = server.validate("walt", Some("2580"), "");
    assert_eq!(status, 200);
    assert_eq!(muted["result"], "reject", "calls are paused after a report: {muted}");
    assert!(muted["message"].as_str().unwrap().contains("paused"), "{muted}");
}

#[test]
fn a_call_nobody_answers_or_the_phone_declines_ends_the_login_with_that_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Db::Sqlite, &voice_toml(dir.path(), "", 5));
    let phone = Phone::answering("manual");
    desk_phone_user(&server, "nina", &phone.uri);

    let unanswered = call_challenge(&server, "nina");
    phone.terminal.wait_for_times("Incoming call", 1);
    let status = settled(&server, &unanswered);
    assert_eq!(
        (status["status"].as_str(), status["reason"].as_str()),
        (Some("denied"), Some("not_answered"))
    );

    let declined = call_challenge(&server, "nina");
    phone.terminal.wait_for_times("Incoming call", 2);
    phone.terminal.type_keys("b");
    let status = settled(&server, &declined);
    assert_eq!((status["status"].as_str(), status["reason"].as_str()), (Some("denied"), Some("busy")));
    let (_, deliveries) = server.admin("GET", "/api/v1/deliveries?username=nina", None);
    assert_eq!(deliveries[0]["status"], "failed", "{deliveries}");
    assert!(deliveries[0]["error"].as_str().unwrap().contains("busy"), "{deliveries}");
}

#[test]
fn over_radius_the_code_is_in_the_prompt_and_enter_completes_once_it_was_keyed() {
    let dir = tempfile::tempdir().unwrap();
    let radius = RadiusServer::start("", &voice_toml(dir.path(), "", 30));
    let phone = Phone::start();
    desk_phone_user(&radius.server, "rita", &phone.uri);

    let first = radius.request("rita", "2580", None);
    assert_eq!(first.code, "Access-Challenge", "{}", first.printed);
    let message = first.attribute("Reply-Message").unwrap().to_owned();
    let code: String =
        message.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned();
    assert!(message.contains("key in") && message.contains("Then press Enter"), "{message}");
    phone.terminal.wait_for_times("Call established", 1);
    phone.terminal.type_keys(&code);
    phone.terminal.wait_for_times("terminated", 1);
    let done = radius.request("rita", "", Some(&first.state()));
    assert_eq!(done.code, "Access-Accept", "{}", done.printed);
}

#[test]
fn the_login_page_shows_the_code_counts_down_and_signs_in_once_it_was_keyed() {
    let dir = tempfile::tempdir().unwrap();
    let server = voice_server(dir.path(), "");
    let phone = Phone::start();
    desk_phone_user(&server, "lena", &phone.uri);
    let browser = Browser::start(None);
    let call_screen = || {
        browser.run(async |page| {
            let text =
                async |id: &str| page.find(fantoccini::Locator::Id(id)).await.unwrap().text().await.unwrap();
            let again = page.find(fantoccini::Locator::Css("#call-ways [data-way=voice]")).await.unwrap();
            (
                text("call-prompt").await,
                text("display-code").await,
                text("call-countdown").await,
                again.is_displayed().await.unwrap(),
            )
        })
    };
    browser.run(async |page| page.goto(&format!("{}/login", server.url)).await.unwrap());
    type_into(&browser, &[("username", "lena"), ("password", "2580")]);
    click(&browser, "submit");

    phone.terminal.wait_for_times("Call established", 1);
    let (prompt, code, countdown, call_again) = call_screen();
    browser.screenshot("login-voice-call-screen.png");
    assert!(prompt.starts_with("Answer the call to sip:••"), "{prompt}");
    assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()), "{code}");
    assert!(countdown.starts_with("The code works for 2:"), "{countdown}");
    assert!(!call_again, "no second call while this one rings");
    phone.terminal.type_keys("b");
    let (state, text) = browser.outcome(std::time::Duration::from_secs(20));
    browser.screenshot("login-voice-hung-up.png");
    assert_eq!(state, "refused", "{text}");
    assert!(text.starts_with("The call ended before the code was keyed in. Try again"), "{text}");
    assert!(call_screen().3, "another call is offered once the call ended");

    click(&browser, "call-ways-voice");
    phone.terminal.wait_for_times("Call established", 2);
    let shown_first = code;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let code = loop {
        let (_, code, _, _) = call_screen();
        if code != shown_first || std::time::Instant::now() > deadline {
            break code;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    phone.terminal.type_keys(&code);
    let (state, text) = browser.outcome(std::time::Duration::from_secs(20));
    browser.screenshot("login-voice-signed-in.png");
    assert_eq!(state, "signed-in", "{text}");
    assert!(text.contains("Signed in as lena"), "{text}");
}

#[test]
fn through_a_twilio_compatible_provider_the_keys_come_back_signed_and_forged_webhooks_are_refused() {
    let twilio = TwilioStandIn::start();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[delivery.limits]\ncooldown_secs = 0\n{}",
        twilio.voice_toml(&dir.path().join("twilio.token"))
    );
    let server = Server::start(Db::Sqlite, &toml);
    desk_phone_user(&server, "tom", "+447700900123");

    let challenge = call_challenge(&server, "tom");
    let code = challenge["display_code"].as_str().unwrap().to_owned();
    let call = twilio.call(1);
    assert_eq!((call.to.as_str(), call.timeout.as_str()), ("+447700900123", "25"), "{call:?}");
    assert!(
        call.answered.contains("<Gather input=\"dtmf\" numDigits=\"6\""),
        "the TwiML gathers six keys: {}",
        call.answered
    );
    assert!(call.answered.contains("press 9"), "{}", call.answered);
    assert!(!call.answered.contains(&code), "the call never says the code: {}", call.answered);

    let forged = forge(&server, &challenge, &call, &code);
    assert_eq!(forged, (401, 401), "an unsigned and a wrongly signed webhook are refused");
    let id = challenge["transaction_id"].as_str().unwrap();
    let (_, still) = server.get(&format!("/api/v1/transactions/{id}"));
    assert!(still.contains("\"pending\""), "the forged digits changed nothing: {still}");

    let wrong = if code.starts_with('1') { "222222" } else { "111111" };
    let again = TwilioStandIn::key(&call, &call.answered, wrong);
    assert!(again.contains("That code is not right.") && again.contains("<Gather"), "{again}");
    let accepted = TwilioStandIn::key(&call, &again, &code);
    assert!(accepted.contains("You are signed in") && accepted.contains("<Hangup/>"), "{accepted}");
    assert_eq!(TwilioStandIn::hang_up(&call, "completed"), 200);
    assert_eq!(settled(&server, &challenge)["status"], "approved");
    assert_eq!(complete(&server, "tom", &challenge)["result"], "accept");
    let (_, deliveries) = server.admin("GET", "/api/v1/deliveries?username=tom", None);
    assert_eq!(
        (
            deliveries[0]["gateway"].as_str(),
            deliveries[0]["provider_message_id"].as_str(),
            deliveries[0]["status"].as_str()
        ),
        (Some("twilio"), challenge["transaction_id"].as_str(), Some("delivered")),
        "{deliveries}"
    );

    let reported = call_challenge(&server, "tom");
    let call = twilio.call(2);
    let goodbye = TwilioStandIn::key(&call, &call.answered, "9");
    assert!(goodbye.contains("<Hangup/>"), "{goodbye}");
    let status = settled(&server, &reported);
    assert_eq!((status["status"].as_str(), status["reason"].as_str()), (Some("denied"), Some("fraud")));

    let (_, body) =
        server.admin("POST", "/api/v1/users", Some(json!({ "username": "bea", "password": "2580" })));
    assert!(body["username"] == "bea", "{body}");
    for (n, number, reason) in [(3, "+447700900486", "busy"), (4, "+447700900408", "not_answered")] {
        let (status, body) = server.admin("PATCH", "/api/v1/users/bea", Some(json!({ "phone": number })));
        assert_eq!(status, 200, "{body}");
        if n == 3 {
            let (status, body) =
                server.admin("POST", "/api/v1/users/bea/tokens", Some(json!({ "kind": "voice" })));
            assert_eq!(status, 201, "the voice token calls the user's phone: {body}");
        }
        let challenge = call_challenge(&server, "bea");
        assert_eq!(twilio.call(n).to, number);
        let status = settled(&server, &challenge);
        assert_eq!((status["status"].as_str(), status["reason"].as_str()), (Some("denied"), Some(reason)));
    }
    let (_, paused) = server.validate("tom", Some("2580"), "");
    assert_eq!(paused["result"], "reject", "tom reported a login: his calls are paused: {paused}");
    let (status, body) =
        server.admin("PATCH", "/api/v1/users/bea", Some(json!({ "phone": "+447700900555" })));
    assert_eq!(status, 200, "{body}");
    let challenge = call_challenge(&server, "bea");
    let call = twilio.call(5);
    let goodbye = TwilioStandIn::key(&call, &call.answered, "");
    assert!(goodbye.contains("No code was keyed in") && goodbye.contains("<Hangup/>"), "{goodbye}");
    let status = settled(&server, &challenge);
    assert_eq!((status["status"].as_str(), status["reason"].as_str()), (Some("denied"), Some("no_keys")));
}

/// A webhook with the gather's digits, unsigned and signed with another token: the HTTP statuses.
fn forge(server: &Server, challenge: &Value, call: &Call, code: &str) -> (u16, u16) {
    let url = format!(
        "{}/api/v1/voice/twilio/gather?tx={}",
        server.url,
        challenge["transaction_id"].as_str().unwrap()
    );
    let params: Vec<(String, String)> = [
        ("AccountSid", crate::twilio_standin::ACCOUNT_SID),
        ("CallSid", call.sid.as_str()),
        ("Digits", code),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let client = reqwest::blocking::Client::new();
    let unsigned = client.post(&url).form(&params).send().unwrap().status().as_u16();
    let mut other = params.clone();
    other[2].1 = "000000".into();
    let forged = client
        .post(&url)
        .header("X-Twilio-Signature", sign(&url, &other))
        .form(&params)
        .send()
        .unwrap()
        .status()
        .as_u16();
    (unsigned, forged)
}

fn now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
        .unwrap()
}
