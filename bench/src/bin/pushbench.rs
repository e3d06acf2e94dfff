//! `tessera-pushbench`: push latency and device-connection capacity of a real `tessera-server`.
//!
//! Starts the server (SQLite in a temporary directory, or `--database-url`), enrolls `--devices`
//! push devices through the real protocol (admin API enrollment, device registration with a fresh
//! Ed25519 key) and opens every device's challenge channel (Server-Sent Events), as
//! `tessera-client` does on a phone or desktop. With all of them connected and idle it reports the
//! server's memory per connection, then runs `--round-trips` logins one after another:
//!
//! 1. the login client sends an empty passcode and gets `challenge` with the number;
//! 2. **trigger → device**: until the device holds the challenge, its server signature checked;
//! 3. the login client waits on `GET /api/v1/transactions/{id}` (long-poll), the person takes
//!    `--think-ms` to read the number, and the device approves (number + TOTP, signed);
//! 4. **approval → login client**: from the moment the person approves until the waiting login
//!    client sees `approved`; then the login client's `validate` with the transaction id must
//!    answer `accept`.
//!
//! Every answer is checked; anything unexpected fails the run.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tessera_bench::{Server, ServerOptions, histogram, percentiles, record};
use tessera_client::{ChannelEvent, Device};
use tessera_core::otpauth::OtpAuth;
use tessera_core::push::{Answer, Challenge, Cleartext, Decision, EnrollmentLink};
use tessera_core::secret::SecretString;
use tokio::sync::mpsc;

/// Push latency and connection capacity of tessera-server.
#[derive(Parser)]
#[command(name = "tessera-pushbench", version, about)]
struct Args {
    /// Push devices enrolled and connected (idle) for the whole run
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Logins measured, one after another, each by a different device
    #[arg(long, default_value_t = 1_000)]
    round_trips: usize,
    /// Milliseconds the person takes to approve after the device shows the request
    #[arg(long, default_value_t = 20)]
    think_ms: u64,
    /// Enrollments in flight at once while setting up
    #[arg(long, default_value_t = 32)]
    setup_concurrency: usize,
    /// Database URL for the spawned server (default: SQLite in a temporary directory)
    #[arg(long)]
    database_url: Option<String>,
    /// tessera-server binary [default: next to this program]
    #[arg(long)]
    server: Option<PathBuf>,
}

/// An enrolled device: its user, its client, and its approve-with-OTP token.
struct Enrolled {
    username: String,
    device: Device,
    otp: OtpAuth,
}

/// A challenge as the device holds it, and when it got there.
struct Held {
    username: String,
    challenge: Challenge,
    at: Instant,
}

fn main() -> std::process::ExitCode {
    tessera_bench::main("tessera-pushbench", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    if args.round_trips > args.devices {
        return Err("each round trip needs its own device: --round-trips must not exceed --devices".into());
    }
    let http = tessera_bench::http_client(64)?;
    let options =
        ServerOptions { database_url: args.database_url.as_deref(), binary: args.server.clone(), config: "" };
    let server = Server::start(options, &http).await?;
    let database = if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" };

    eprintln!("enrolling {} push devices on {database}...", args.devices);
    let started = Instant::now();
    let enrolled = enroll_all(&server, &http, &args).await?;
    eprintln!(
        "  {} devices enrolled in {:.1} s (user, push token, device registration each)",
        enrolled.len(),
        started.elapsed().as_secs_f64()
    );

    let before = server.resident_kib()?;
    let (held_sender, mut held) = mpsc::unbounded_channel();
    let connected = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let mut devices = HashMap::with_capacity(enrolled.len());
    let mut channels = Channels(Vec::with_capacity(enrolled.len()));
    for device in enrolled {
        let channel = device.device.clone().channel(0);
        let username = device.username.clone();
        channels.0.push(tokio::spawn(listen(
            channel,
            username,
            held_sender.clone(),
            connected.clone(),
            retries.clone(),
        )));
        devices.insert(device.username.clone(), device);
    }
    let opening = Instant::now();
    while connected.load(Ordering::Relaxed) < devices.len() {
        if opening.elapsed() > Duration::from_secs(300) {
            return Err(format!(
                "only {} of {} device channels opened",
                connected.load(Ordering::Relaxed),
                devices.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opened_in = opening.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let server_count = connection_gauge(&server, &http).await?;
    if server_count != devices.len() as u64 {
        return Err(format!(
            "the server counts {server_count} device connections, expected {}",
            devices.len()
        ));
    }
    let after = server.resident_kib()?;
    let refused = retries.swap(0, Ordering::Relaxed);
    if refused > 0 {
        eprintln!(
            "  {refused} connection attempts were refused or dropped while all devices connected at once (the server sheds load beyond its in-flight limit); the devices retried by themselves"
        );
    }
    println!(
        "{database}: {} idle device channels (SSE) held by one server, opened in {:.1} s; server RSS {:.1} MiB before, {:.1} MiB after: {:.1} KiB per connection",
        devices.len(),
        opened_in.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / devices.len() as f64,
    );

    let mut to_device = histogram()?;
    let mut to_login = histogram()?;
    let mut finished = histogram()?;
    let names: Vec<String> = {
        let mut names: Vec<String> = devices.keys().cloned().collect();
        names.sort();
        names.truncate(args.round_trips);
        names
    };
    for username in &names {
        let device = devices.get(username).ok_or("a device vanished")?;
        let trigger = Instant::now();
        let started = login_client_trigger(&server, &http, username).await?;
        let held = tokio::time::timeout(Duration::from_secs(10), held.recv())
            .await
            .map_err(|_| format!("{username}'s device got no challenge within 10 s"))?
            .ok_or("the device channels stopped")?;
        if held.challenge.transaction_id != started.transaction_id {
            return Err(format!("{} received a challenge meant for another login", held.username));
        }
        let Held { challenge, at: held_at, .. } = held;
        record(&mut to_device, held_at - trigger);

        let waiting =
            tokio::spawn(wait_for_answer(server.base.clone(), http.clone(), started.transaction_id.clone()));
        tokio::time::sleep(Duration::from_millis(args.think_ms)).await;
        let approved_at = Instant::now();
        approve(device, &challenge, started.number).await?;
        let status = waiting.await.map_err(|e| e.to_string())??;
        let seen_at = Instant::now();
        if status != "approved" {
            return Err(format!("the login client saw {status}, expected approved"));
        }
        record(&mut to_login, seen_at - approved_at);
        let result = validate(
            &server,
            &http,
            &json!({ "username": username, "transaction_id": started.transaction_id }),
        )
        .await?;
        if text(&result, "result") != Some("accept") {
            return Err(format!("finishing the login answered {result}, expected accept"));
        }
        record(&mut finished, approved_at.elapsed());
    }
    println!(
        "{database}: {} push logins, one at a time, with {} device channels open",
        names.len(),
        devices.len()
    );
    println!("  trigger -> device holds the verified challenge: {}", percentiles(&to_device));
    println!("  approval -> waiting login client sees approved: {}", percentiles(&to_login));
    println!("  approval -> login client's validate answers accept: {}", percentiles(&finished));
    let dropped = retries.load(Ordering::Relaxed);
    if dropped > 0 {
        return Err(format!("{dropped} device channels dropped during the logins"));
    }
    Ok(())
}

/// Creates users, push tokens and registered devices, `setup_concurrency` at a time.
async fn enroll_all(server: &Server, http: &reqwest::Client, args: &Args) -> Result<Vec<Enrolled>, String> {
    let shared = Arc::new(tokio::sync::OnceCell::<Device>::new());
    futures_util::stream::iter((0..args.devices).map(|i| {
        let shared = shared.clone();
        async move {
            let username = format!("push{i:05}");
            let post = Method::POST;
            server.admin(http, post.clone(), "/api/v1/users", Some(&json!({ "username": username }))).await?;
            let enrollment = server
                .admin(
                    http,
                    post,
                    &format!("/api/v1/users/{username}/tokens"),
                    Some(&json!({ "kind": "push" })),
                )
                .await?;
            let uri = text(&enrollment, "enrollment_uri").ok_or("no enrollment_uri")?;
            let link = EnrollmentLink::parse(uri).map_err(|e| e.to_string())?;
            // The operator named the server to load with throwaway devices: a plain-HTTP test
            // server on another machine is theirs to choose.
            let (key, registered) = tessera_client::register(&link, None, None, Cleartext::AcceptedByUser)
                .await
                .map_err(|e| e.to_string())?;
            let otp = registered.totp().map_err(|e| e.to_string())?;
            let device = Device::from_parts(
                &link.server,
                &registered.serial,
                &key.seed(),
                registered.server_public_key,
            )
            .map_err(|e| e.to_string())?;
            let first = shared.get_or_init(|| async { device.clone() }).await;
            Ok::<_, String>(Enrolled { username, device: device.share_connections_with(first), otp })
        }
    }))
    .buffer_unordered(args.setup_concurrency)
    .try_collect()
    .await
}

/// Runs one device's channel: counts it connected once and its dropped or refused connections,
/// forwards each verified challenge.
async fn listen(
    channel: impl futures_util::Stream<Item = ChannelEvent>,
    username: String,
    held: mpsc::UnboundedSender<Held>,
    connected: Arc<AtomicUsize>,
    retries: Arc<AtomicUsize>,
) {
    let mut channel = std::pin::pin!(channel);
    let mut counted = false;
    while let Some(event) = channel.next().await {
        match event {
            ChannelEvent::Connected if !counted => {
                counted = true;
                connected.fetch_add(1, Ordering::Relaxed);
            }
            ChannelEvent::Challenge(delivery) => {
                let at = Instant::now();
                let held_challenge =
                    Held { username: username.clone(), challenge: delivery.challenge.challenge, at };
                if held.send(held_challenge).is_err() {
                    return;
                }
            }
            ChannelEvent::Rejected(error) => {
                eprintln!("{username}: a challenge failed verification: {error}")
            }
            ChannelEvent::Disconnected(_) => {
                retries.fetch_add(1, Ordering::Relaxed);
            }
            ChannelEvent::Connected => {}
        }
    }
}

/// The devices' channel tasks, stopped before the server is (so its shutdown is not reported
/// as thousands of dropped channels).
struct Channels(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Channels {
    fn drop(&mut self) {
        for channel in &self.0 {
            channel.abort();
        }
    }
}

/// What the login client learns from its trigger.
struct Started {
    transaction_id: String,
    number: Option<u8>,
}

async fn login_client_trigger(
    server: &Server,
    http: &reqwest::Client,
    username: &str,
) -> Result<Started, String> {
    let body = validate(server, http, &json!({ "username": username, "passcode": "" })).await?;
    if text(&body, "result") != Some("challenge") {
        return Err(format!("the trigger answered {body}, expected a challenge"));
    }
    Ok(Started {
        transaction_id: text(&body, "transaction_id").ok_or("no transaction_id")?.to_owned(),
        number: body.get("number").and_then(Value::as_u64).and_then(|n| u8::try_from(n).ok()),
    })
}

async fn validate(server: &Server, http: &reqwest::Client, body: &Value) -> Result<Value, String> {
    let response = http
        .post(format!("{}/api/v1/validate", server.base))
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

/// The login client's long-poll on its transaction.
async fn wait_for_answer(
    base: String,
    http: reqwest::Client,
    transaction_id: String,
) -> Result<String, String> {
    let response = http
        .get(format!("{base}/api/v1/transactions/{transaction_id}?wait=30"))
        .bearer_auth(tessera_bench::ADMIN_KEY)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    text(&body, "status").map(str::to_owned).ok_or_else(|| format!("no status in {body}"))
}

/// Approves as a person would: the number from the login screen, the token's current TOTP.
async fn approve(device: &Enrolled, challenge: &Challenge, number: Option<u8>) -> Result<(), String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let code = device.otp.method().code_at(device.otp.secret(), now);
    let otp = SecretString::new(code.expose().to_owned());
    let answer = Answer::to(challenge, Decision::Approve, number, Some(otp), now)
        .map_err(|e| e.to_string())?
        .sign(device.device.key());
    let receipt = device.device.answer(answer).await.map_err(|e| e.to_string())?;
    if receipt.status != tessera_client::AnswerStatus::Approved {
        return Err(format!("the server answered {} to an approval", receipt.status.as_str()));
    }
    Ok(())
}

/// The server's own count of open device channels (`/metrics`).
async fn connection_gauge(server: &Server, http: &reqwest::Client) -> Result<u64, String> {
    let text = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|line| line.strip_prefix("tessera_push_device_connections "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .ok_or_else(|| "no tessera_push_device_connections gauge in /metrics".into())
}

/// A string field of a JSON object.
fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name).and_then(Value::as_str)
}
