//! A stand-in for Twilio's Messages API, which this machine cannot reach: it speaks Twilio's wire
//! format (a form POSTed to `/2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP Basic
//! authentication, answered `201` with the message's `sid`), then reports each message's fate to
//! its `StatusCallback`, signed with `X-Twilio-Signature` as Twilio signs it. A number ending in
//! 999 is reported undelivered (error 30003, "unreachable handset").

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

/// The running stand-in.
pub struct TwilioStandIn {
    /// Its base URL (the gateway's `url`).
    pub url: String,
    accepted: Arc<Mutex<Vec<Accepted>>>,
}

#[derive(Clone)]
struct Shared {
    accepted: Arc<Mutex<Vec<Accepted>>>,
    http: reqwest::Client,
}

impl TwilioStandIn {
    /// Starts it on a free loopback port, on its own thread.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let shared = Shared { accepted: accepted.clone(), http: reqwest::Client::new() };
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new()
                    .route("/2010-04-01/Accounts/{account}/Messages.json", axum::routing::post(messages))
                    .with_state(shared);
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { url, accepted }
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

async fn messages(
    State(shared): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let expected =
        format!("Basic {}", data_encoding::BASE64.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}").as_bytes()));
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if account != ACCOUNT_SID || !authorized {
        let error = json!({ "code": 20003, "message": "Authenticate", "status": 401 });
        return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
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
