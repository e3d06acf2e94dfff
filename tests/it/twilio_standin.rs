//! A stand-in for Twilio's Messages API, which this machine cannot reach: it speaks Twilio's wire
//! format (a form POSTed to `/2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP Basic
//! authentication, answered `201` with the message's `sid`), then reports each message's fate to
//! its `StatusCallback`, signed with `X-Twilio-Signature` as Twilio signs it. A number ending in
//! 999 is reported undelivered (error 30003, "unreachable handset").
//!
//! Its Calls API (`/2010-04-01/Accounts/{AccountSid}/Calls.json`) places a call as Twilio does: it
//! answers `201` with the call's `sid`, fetches the TwiML from the call's `Url` (a signed POST, as
//! the callee answers), and then the test keys digits into the `<Gather>` ([`TwilioStandIn::key`]:
//! a signed POST of `Digits` to its `action`, as Twilio posts what the callee pressed) and ends the
//! call ([`TwilioStandIn::hang_up`]: the signed status callback). A number ending in 486 is busy
//! and one ending in 408 does not answer: only their status callbacks come.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;

/// The account the stand-in accepts.
pub const ACCOUNT_SID: &str = "ACe2e0000000000000000000000000000";
/// Its auth token.
pub const AUTH_TOKEN: &str = "e2e-twilio-auth-token";

/// A message the stand-in accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// `To`.
    pub to: String,
    /// `Body`.
    pub body: String,
}

/// A call the stand-in placed.
#[derive(Debug, Clone)]
pub struct Call {
    /// Its sid.
    pub sid: String,
    /// `To`.
    pub to: String,
    /// `Timeout` (how long it may ring).
    pub timeout: String,
    /// The TwiML the server answered when the call was answered, or what went wrong fetching it.
    pub answered: String,
    status_callback: String,
}

/// The running stand-in.
pub struct TwilioStandIn {
    /// Its base URL (the gateway's `url`).
    pub url: String,
    accepted: Arc<Mutex<Vec<Accepted>>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

#[derive(Clone)]
struct Shared {
    accepted: Arc<Mutex<Vec<Accepted>>>,
    calls: Arc<Mutex<Vec<Call>>>,
    http: reqwest::Client,
}

impl TwilioStandIn {
    /// Starts it on a free loopback port, on its own thread.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let shared =
            Shared { accepted: accepted.clone(), calls: calls.clone(), http: reqwest::Client::new() };
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new()
                    .route("/2010-04-01/Accounts/{account}/Messages.json", axum::routing::post(messages))
                    .route("/2010-04-01/Accounts/{account}/Calls.json", axum::routing::post(place_call))
                    .with_state(shared);
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { url, accepted, calls }
    }

    /// The `[delivery.voice]` section for it, with its token in `token_file` (the server's webhooks
    /// under its own URL, the default `public_url`).
    pub fn voice_toml(&self, token_file: &std::path::Path) -> String {
        std::fs::write(token_file, format!("{AUTH_TOKEN}\n")).unwrap();
        format!(
            "[delivery.voice]\nkind = \"twilio\"\nring_secs = 25\n[delivery.voice.twilio]\naccount_sid = \"{ACCOUNT_SID}\"\n\
             auth_token_file = \"{}\"\nfrom = \"+15005550006\"\nurl = \"{}\"\n",
            token_file.display(),
            self.url
        )
    }

    /// The `n`th call placed (from 1), once it was answered (or refused), waiting up to 10 s.
    pub fn call(&self, n: usize) -> Call {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(call) = self.calls.lock().unwrap().get(n - 1).filter(|c| !c.answered.is_empty()) {
                return call.clone();
            }
            assert!(std::time::Instant::now() < deadline, "no call {n} was placed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Keys `digits` into the call's current `<Gather>` (`twiml` is the TwiML holding it), as
    /// Twilio posts them, signed; the TwiML the server answers.
    pub fn key(call: &Call, twiml: &str, digits: &str) -> String {
        let action = attribute(twiml, "action").expect("the TwiML gathers keys");
        let params = call_params(call, &[("Digits", digits), ("CallStatus", "in-progress")]);
        let response = reqwest::blocking::Client::new()
            .post(&action)
            .header("X-Twilio-Signature", sign(&action, &params))
            .form(&params)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().unwrap()
    }

    /// Ends the call with `status` (`completed`, `busy`, `no-answer`…): its status callback,
    /// signed; the HTTP status the server answered.
    pub fn hang_up(call: &Call, status: &str) -> u16 {
        post_status(&call.status_callback, &call_params(call, &[("CallStatus", status)]))
    }

    /// Every message accepted so far.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().unwrap().clone()
    }

    /// The `[[delivery.sms_gateway]]` entry for it, with its token in `token_file`.
    pub fn config_toml(&self, token_file: &std::path::Path) -> String {
        std::fs::write(token_file, format!("{AUTH_TOKEN}\n")).unwrap();
        format!(
            "[[delivery.sms_gateway]]\nid = \"twilio\"\nkind = \"twilio\"\nurl = \"{}\"\naccount_sid = \"{ACCOUNT_SID}\"\n\
             auth_token_file = \"{}\"\nfrom = \"+15005550006\"\n",
            self.url,
            token_file.display()
        )
    }
}

/// The parameters Twilio sends about `call`, with `extra`.
fn call_params(call: &Call, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    [
        ("AccountSid", ACCOUNT_SID),
        ("CallSid", call.sid.as_str()),
        ("To", call.to.as_str()),
        ("From", "+15005550006"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn post_status(url: &str, params: &[(String, String)]) -> u16 {
    let response = reqwest::blocking::Client::new()
        .post(url)
        .header("X-Twilio-Signature", sign(url, params))
        .form(params)
        .send()
        .unwrap();
    response.status().as_u16()
}

/// An attribute's value in TwiML (`&amp;` read back as `&`).
pub fn attribute(twiml: &str, name: &str) -> Option<String> {
    let start = twiml.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + twiml.get(start..)?.find('"')?;
    Some(twiml.get(start..end)?.replace("&amp;", "&"))
}

/// `X-Twilio-Signature` for a callback to `url` with `params`, as Twilio computes it.
pub fn sign(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let data: String =
        std::iter::once(url.to_owned()).chain(sorted.iter().map(|(k, v)| format!("{k}{v}"))).collect();
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(AUTH_TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    data_encoding::BASE64.encode(&mac.finalize().into_bytes())
}

/// Twilio's 401 for a request without the account's Basic credentials, as Twilio answers it.
fn unauthenticated(account: &str, headers: &HeaderMap) -> Option<Response> {
    let expected =
        format!("Basic {}", data_encoding::BASE64.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}").as_bytes()));
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    (account != ACCOUNT_SID || !authorized).then(|| {
        let error = json!({ "code": 20003, "message": "Authenticate", "status": 401 });
        (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response()
    })
}

async fn messages(
    State(shared): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = unauthenticated(&account, &headers) {
        return refused;
    }
    let (Some(to), Some(body), Some(_from), Some(callback)) =
        (form.get("To"), form.get("Body"), form.get("From"), form.get("StatusCallback"))
    else {
        let error = json!({ "code": 21604, "message": "A 'To', 'From', 'Body' and 'StatusCallback' are required", "status": 400 });
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    };
    let sid = {
        let mut accepted = shared.accepted.lock().unwrap();
        accepted.push(Accepted { to: to.clone(), body: body.clone() });
        format!("SM{:032}", accepted.len())
    };
    let mut params = vec![
        ("AccountSid".to_owned(), ACCOUNT_SID.to_owned()),
        ("MessageSid".to_owned(), sid.clone()),
        ("To".to_owned(), to.clone()),
    ];
    if to.ends_with("999") {
        params.push(("MessageStatus".to_owned(), "undelivered".to_owned()));
        params.push(("ErrorCode".to_owned(), "30003".to_owned()));
    } else {
        params.push(("MessageStatus".to_owned(), "delivered".to_owned()));
    }
    let (callback, http) = (callback.clone(), shared.http.clone());
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let signature = sign(&callback, &params);
        let _ = http.post(&callback).header("X-Twilio-Signature", signature).form(&params).send().await;
    });
    (StatusCode::CREATED, axum::Json(json!({ "sid": sid, "status": "queued", "to": to }))).into_response()
}

async fn place_call(
    State(shared): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = unauthenticated(&account, &headers) {
        return refused;
    }
    let (Some(to), Some(_from), Some(url), Some(status_callback)) =
        (form.get("To"), form.get("From"), form.get("Url"), form.get("StatusCallback"))
    else {
        let error = json!({ "code": 21205, "message": "'To', 'From', 'Url' and 'StatusCallback' are required", "status": 400 });
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    };
    let index = {
        let mut calls = shared.calls.lock().unwrap();
        let sid = format!("CA{:032}", calls.len() + 1);
        calls.push(Call {
            sid,
            to: to.clone(),
            timeout: form.get("Timeout").cloned().unwrap_or_default(),
            answered: String::new(),
            status_callback: status_callback.clone(),
        });
        calls.len() - 1
    };
    let call = shared.calls.lock().unwrap()[index].clone();
    let body = json!({ "sid": call.sid, "status": "queued", "to": call.to });
    let (url, http, calls) = (url.clone(), shared.http.clone(), shared.calls.clone());
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let unanswered = if call.to.ends_with("486") {
            Some("busy")
        } else if call.to.ends_with("408") {
            Some("no-answer")
        } else {
            None
        };
        let answered = match unanswered {
            Some(status) => {
                let params = call_params(&call, &[("CallStatus", status)]);
                let signature = sign(&call.status_callback, &params);
                let _ = http
                    .post(&call.status_callback)
                    .header("X-Twilio-Signature", signature)
                    .form(&params)
                    .send()
                    .await;
                format!("(not answered: {status})")
            }
            None => {
                let params = call_params(&call, &[("CallStatus", "in-progress")]);
                let signature = sign(&url, &params);
                match http.post(&url).header("X-Twilio-Signature", signature).form(&params).send().await {
                    Ok(response) => response.text().await.unwrap_or_default(),
                    Err(error) => format!("(the TwiML could not be fetched: {error})"),
                }
            }
        };
        calls.lock().unwrap()[index].answered = answered;
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}
