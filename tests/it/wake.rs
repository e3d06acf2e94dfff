//! FCM and APNs wake-ups, against a local HTTPS stand-in for Google's and Apple's endpoints
//! (the real services cannot be reached from CI). The stand-in speaks their wire formats and
//! checks each request as they would: for FCM HTTP v1, an RS256-signed OAuth assertion for
//! the service account and then the access token it granted; for APNs, HTTP/2, an ES256
//! provider token naming the key and team, and the `apns-*` headers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tessera_core::push::{Cleartext, EnrollmentLink, WakeAddress};

use crate::server_support::{Db, Server, free_port};
use crate::support::unix_now;

const PROJECT: &str = "tessera-e2e";
const CLIENT_EMAIL: &str = "tessera@tessera-e2e.iam.gserviceaccount.com";
const SERVICE_ACCOUNT_KEY_ID: &str = "sa-key-0001";
const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const APNS_KEY_ID: &str = "KEYID12345";
const APNS_TEAM_ID: &str = "TEAMID6789";
const APNS_TOPIC: &str = "org.tessera.app";

/// A request the stand-in accepted (or a problem it found in one).
#[derive(Debug)]
enum Seen {
    OAuth,
    Fcm { token: String, message: Value },
    Apns { token: String, headers: HashMap<String, String>, payload: Value },
    Problem(String),
}

struct Checks {
    token_uri: String,
    service_account: DecodingKey,
    apns_key: DecodingKey,
    granted: Mutex<Vec<String>>,
    seen: Mutex<mpsc::Sender<Seen>>,
}

impl Checks {
    fn record(&self, seen: Seen) {
        self.seen.lock().unwrap().send(seen).ok();
    }

    fn refuse(&self, status: StatusCode, problem: String) -> Response {
        self.record(Seen::Problem(problem.clone()));
        (status, problem).into_response()
    }
}

async fn oauth_token(
    State(checks): State<Arc<Checks>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return checks.refuse(StatusCode::BAD_REQUEST, format!("grant_type: {form:?}"));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&checks.token_uri]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let verified = match jsonwebtoken::decode::<Value>(&assertion, &checks.service_account, &validation) {
        Ok(verified) => verified,
        Err(error) => return checks.refuse(StatusCode::BAD_REQUEST, format!("assertion: {error}")),
    };
    let claims = verified.claims;
    let lifetime = claims["exp"].as_u64().unwrap_or(0).saturating_sub(claims["iat"].as_u64().unwrap_or(0));
    if verified.header.kid.as_deref() != Some(SERVICE_ACCOUNT_KEY_ID)
        || claims["scope"] != FCM_SCOPE
        || lifetime > 3600
    {
        return checks.refuse(StatusCode::BAD_REQUEST, format!("assertion claims: {claims}"));
    }
    let access_token = {
        let mut granted = checks.granted.lock().unwrap();
        let next = format!("ya29.e2e-{}", granted.len() + 1);
        granted.push(next);
        granted.last().cloned().unwrap()
    };
    checks.record(Seen::OAuth);
    axum::Json(json!({ "access_token": access_token, "expires_in": 3599, "token_type": "Bearer" }))
        .into_response()
}

async fn fcm_send(
    State(checks): State<Arc<Checks>>,
    UrlPath(project): UrlPath<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let granted = checks.granted.lock().unwrap().iter().any(|token| bearer == format!("Bearer {token}"));
    if !granted {
        return checks.refuse(StatusCode::UNAUTHORIZED, format!("access token: {bearer:?}"));
    }
    let message = &body["message"];
    let token = message["token"].as_str().unwrap_or_default().to_owned();
    let data_are_strings =
        message["data"].as_object().is_some_and(|data| data.values().all(Value::is_string));
    let ttl = message["android"]["ttl"].as_str().and_then(|t| t.strip_suffix('s')?.parse::<u64>().ok());
    if project != PROJECT
        || token.is_empty()
        || !data_are_strings
        || message["android"]["priority"] != "HIGH"
        || ttl.is_none_or(|ttl| ttl > 600)
    {
        return checks.refuse(StatusCode::BAD_REQUEST, format!("message: {body}"));
    }
    if token.starts_with("unregistered") {
        checks.record(Seen::Fcm { token, message: message.clone() });
        let error = json!({ "error": { "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
            "details": [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED" }] } });
        return (StatusCode::NOT_FOUND, axum::Json(error)).into_response();
    }
    checks.record(Seen::Fcm { token, message: message.clone() });
    axum::Json(json!({ "name": format!("projects/{PROJECT}/messages/0:1") })).into_response()
}

async fn apns_send(
    State(checks): State<Arc<Checks>>,
    UrlPath(token): UrlPath<String>,
    version: Version,
    headers: HeaderMap,
    body: String,
) -> Response {
    if version != Version::HTTP_2 {
        return checks.refuse(StatusCode::BAD_REQUEST, format!("APNs needs HTTP/2, got {version:?}"));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let provider_token = header("authorization").strip_prefix("bearer ").unwrap_or_default().to_owned();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "iat"]);
    validation.set_issuer(&[APNS_TEAM_ID]);
    let verified = match jsonwebtoken::decode::<Value>(&provider_token, &checks.apns_key, &validation) {
        Ok(verified) => verified,
        Err(error) => return checks.refuse(StatusCode::FORBIDDEN, format!("provider token: {error}")),
    };
    let issued = verified.claims["iat"].as_u64().unwrap_or(0);
    if verified.header.kid.as_deref() != Some(APNS_KEY_ID) || unix_now().abs_diff(issued) > 3600 {
        return checks.refuse(StatusCode::FORBIDDEN, format!("provider token: {:?}", verified.header));
    }
    let expiration = header("apns-expiration").parse::<u64>().unwrap_or(0);
    let payload: Value = serde_json::from_str(&body).unwrap_or_default();
    if header("apns-topic") != APNS_TOPIC
        || header("apns-push-type") != "alert"
        || header("apns-priority") != "10"
        || expiration <= unix_now()
        || header("apns-collapse-id").is_empty()
        || header("apns-collapse-id").len() > 64
        || !payload["aps"]["alert"].is_object()
        || body.len() > 4096
    {
        return checks.refuse(StatusCode::BAD_REQUEST, format!("request: {headers:?} {body}"));
    }
    let seen_headers = ["apns-collapse-id", "apns-expiration"].map(|name| (name.to_owned(), header(name)));
    checks.record(Seen::Apns { token: token.clone(), headers: seen_headers.into(), payload });
    if token.starts_with("dead") {
        return (
            StatusCode::GONE,
            axum::Json(json!({ "reason": "Unregistered", "timestamp": unix_now() * 1000 })),
        )
            .into_response();
    }
    (StatusCode::OK, [("apns-id", "6AE5C2B4-9C2B-4A37-8B7A-3A4E2E7C2A11")]).into_response()
}

/// The stand-in for Google's OAuth and FCM endpoints and Apple's APNs, on one HTTPS port.
struct PushServices {
    seen: mpsc::Receiver<Seen>,
    _dir: tempfile::TempDir,
    config: String,
}

impl PushServices {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let openssl = |args: &[&str]| {
            let output = std::process::Command::new("openssl").args(args).output().unwrap();
            assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        };
        let (sa_key, sa_public) = (path("service-account-key.pem"), path("service-account-public.pem"));
        openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", s(&sa_key)]);
        openssl(&["pkey", "-in", s(&sa_key), "-pubout", "-out", s(&sa_public)]);
        let apns_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        std::fs::write(path("AuthKey.p8"), apns_key.serialize_pem()).unwrap();

        let tls = crate::support::loopback_certificate();
        std::fs::write(path("ca.pem"), &tls.ca).unwrap();

        let port = free_port();
        let url = format!("https://127.0.0.1:{port}");
        let token_uri = format!("{url}/token");
        let account = json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": SERVICE_ACCOUNT_KEY_ID,
            "private_key": std::fs::read_to_string(&sa_key).unwrap(),
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "token_uri": token_uri,
        });
        std::fs::write(path("service-account.json"), account.to_string()).unwrap();

        let (sender, seen) = mpsc::channel();
        let checks = Arc::new(Checks {
            token_uri,
            service_account: DecodingKey::from_rsa_pem(&std::fs::read(&sa_public).unwrap()).unwrap(),
            apns_key: DecodingKey::from_ec_pem(apns_key.public_key_pem().as_bytes()).unwrap(),
            granted: Mutex::new(Vec::new()),
            seen: Mutex::new(sender),
        });
        let app = axum::Router::new()
            .route("/token", post(oauth_token))
            .route("/v1/projects/{project}/messages:send", post(fcm_send))
            .route("/3/device/{token}", post(apns_send))
            .with_state(checks);
        let (cert, key) = (tls.certificate.into_bytes(), tls.key.into_bytes());
        let (ready, started) = mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let tls = axum_server::tls_rustls::RustlsConfig::from_pem(cert, key).await.unwrap();
                let server =
                    axum_server::bind_rustls(std::net::SocketAddr::from(([127, 0, 0, 1], port)), tls);
                ready.send(()).unwrap();
                server.serve(app.into_make_service()).await.unwrap();
            });
        });
        started.recv().unwrap();
        let config = format!(
            "[push]\nmax_pending = 10\nca_file = \"{}\"\n\n[push.fcm]\nservice_account_file = \"{}\"\nendpoint = \"{url}\"\n\n\
             [push.apns]\nkey_file = \"{}\"\nkey_id = \"{APNS_KEY_ID}\"\nteam_id = \"{APNS_TEAM_ID}\"\ntopic = \"{APNS_TOPIC}\"\nendpoint = \"{url}\"\n",
            s(&path("ca.pem")),
            s(&path("service-account.json")),
            s(&path("AuthKey.p8")),
        );
        Self { seen, _dir: dir, config }
    }

    /// The next request the stand-in accepted; fails on any problem it found.
    fn next(&self) -> Seen {
        match self.seen.recv_timeout(Duration::from_secs(15)).expect("a wake-up reached the push service") {
            Seen::Problem(problem) => panic!("the push service refused a request: {problem}"),
            seen => seen,
        }
    }

    /// True when nothing more arrives within `wait`.
    fn quiet_for(&self, wait: Duration) -> bool {
        self.seen.recv_timeout(wait).is_err()
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A push token enrolled through the device client, reporting a wake-up address.
fn register(server: &Server, username: &str, wake: WakeAddress) -> tessera_client::Device {
    let (status, enrollment) =
        server.admin("POST", &format!("/api/v1/users/{username}/tokens"), Some(json!({ "kind": "push" })));
    assert_eq!(status, 201, "{enrollment}");
    let link = EnrollmentLink::parse(enrollment["enrollment_uri"].as_str().unwrap()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (key, registered) = runtime
        .block_on(tessera_client::register(&link, Some("phone".to_owned()), Some(wake), Cleartext::Refuse))
        .unwrap();
    tessera_client::Device::from_parts(
        &link.server,
        &registered.serial,
        &key.seed(),
        registered.server_public_key,
    )
    .unwrap()
}

fn start_push(server: &Server, username: &str) -> String {
    let response = crate::server_support::client()
        .post(format!("{}/api/v1/validate", server.url))
        .json(&json!({ "username": username, "passcode": "", "client_ip": "198.51.100.7", "service": "Payroll" }))
        .send()
        .unwrap();
    let body: Value = response.json().unwrap();
    assert_eq!(body["result"], "challenge", "{body}");
    body["transaction_id"].as_str().unwrap().to_owned()
}

fn wake_of(server: &Server, username: &str, serial: &str) -> Value {
    let (_, tokens) = server.admin("GET", &format!("/api/v1/users/{username}/tokens"), None);
    tokens.as_array().unwrap().iter().find(|t| t["serial"] == serial).map(|t| t["wake"].clone()).unwrap()
}

#[test]
fn fcm_and_apns_wake_sleeping_devices_without_revealing_the_login() {
    let services = PushServices::start();
    let server = Server::start(Db::Sqlite, &services.config);
    let (status, _) = server.admin("POST", "/api/v1/users", Some(json!({ "username": "wendy" })));
    assert_eq!(status, 201);
    let fcm_token = format!("fcm-{}:APA91b{}", "x".repeat(20), "y".repeat(100));
    let apns_token = "0123456789abcdef".repeat(4);
    let android = register(&server, "wendy", WakeAddress::Fcm(fcm_token.clone()));
    let iphone = register(&server, "wendy", WakeAddress::Apns(apns_token.clone()));
    assert_eq!(wake_of(&server, "wendy", android.serial()), "fcm");
    assert_eq!(wake_of(&server, "wendy", iphone.serial()), "apns");

    let transaction = start_push(&server, "wendy");
    let (oauth, wake_ups): (Vec<Seen>, Vec<Seen>) =
        (0..3).map(|_| services.next()).partition(|seen| matches!(seen, Seen::OAuth));
    assert_eq!(oauth.len(), 1, "FCM gets an access token first");
    for wake_up in &wake_ups {
        let text = format!("{wake_up:?}");
        for private in ["wendy", "198.51.100.7", "Payroll", transaction.as_str()] {
            assert!(!text.contains(private), "a wake-up names nothing about the login: {text}");
        }
        match wake_up {
            Seen::Fcm { token, message } => {
                assert_eq!(token, &fcm_token);
                assert!(message["data"].get("transaction_id").is_none(), "{message}");
                assert_eq!(message["data"]["serial"], android.serial());
            }
            Seen::Apns { token, headers, payload } => {
                assert_eq!(token, &apns_token);
                assert_eq!(headers["apns-collapse-id"], iphone.serial(), "one notification per device");
                let expires = headers["apns-expiration"].parse::<u64>().unwrap();
                assert!(expires > unix_now() && expires <= unix_now() + 120, "expires with the challenge");
                assert_eq!(payload["tessera"]["serial"], iphone.serial());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    let second = start_push(&server, "wendy");
    let seen: Vec<Seen> = (0..2).map(|_| services.next()).collect();
    assert!(seen.iter().all(|s| !matches!(s, Seen::OAuth)), "the FCM access token is reused: {seen:?}");
    let seen_text = format!("{seen:?}");
    assert!(
        seen_text.contains(android.serial())
            && seen_text.contains(iphone.serial())
            && !seen_text.contains(&second),
        "the second login wakes both devices again, naming only them: {seen_text}"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stale = format!("dead{}", "0".repeat(60));
    runtime.block_on(iphone.set_wake(Some(WakeAddress::Apns(stale.clone())))).unwrap();
    runtime.block_on(android.set_wake(None)).unwrap();
    assert_eq!(wake_of(&server, "wendy", android.serial()), Value::Null);
    match runtime.block_on(android.set_wake(Some(WakeAddress::Apns("not hex".into())))) {
        Err(tessera_client::ClientError::Refused { status, message, .. }) => {
            assert_eq!(status, 422);
            assert!(message.contains("invalid apns wake-up token"), "{message}");
        }
        other => panic!("a malformed token is refused, got {other:?}"),
    }

    start_push(&server, "wendy");
    match services.next() {
        Seen::Apns { token, .. } => assert_eq!(token, stale),
        other => panic!("only the iPhone is woken now, got {other:?}"),
    }
    assert!(services.quiet_for(Duration::from_millis(1500)), "no retry after Unregistered, no FCM");
    assert_eq!(wake_of(&server, "wendy", iphone.serial()), Value::Null, "APNs said the token is gone");
    let metrics = crate::server_support::client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for line in [
        "tessera_push_wakeups_total{service=\"fcm\",result=\"sent\"} 2",
        "tessera_push_wakeups_total{service=\"apns\",result=\"sent\"} 2",
        "tessera_push_wakeups_total{service=\"apns\",result=\"unregistered\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[test]
fn an_unusable_wake_up_key_stops_the_server_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("AuthKey.p8");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n").unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            "[push.apns]\nkey_file = \"{}\"\nkey_id = \"{APNS_KEY_ID}\"\nteam_id = \"{APNS_TEAM_ID}\"\ntopic = \"{APNS_TOPIC}\"\n",
            s(&key)
        ),
    )
    .unwrap();
    let output = std::process::Command::new(crate::support::binary("tessera-server"))
        .args(["--listen", &format!("127.0.0.1:{}", free_port()), "--data-dir", s(&dir.path().join("data"))])
        .arg("--config")
        .arg(&config)
        .env("TESSERA_SERVER_KEY", crate::server_support::SERVER_KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("is not an APNs signing key"), "{stderr}");
    assert!(!stderr.contains("bm90IGEga2V5"), "the key's contents stay out of messages");
}
