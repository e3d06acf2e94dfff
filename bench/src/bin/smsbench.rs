//! `tessera-smsbench`: codes by text message, measured against real `tessera-server` processes and
//! an SMS gateway stand-in on loopback that speaks the generic HTTP gateway's wire format (a GET
//! with `to` and `text`, answered `202 Accepted` as Kannel answers).
//!
//! 1. **Latency**: `--logins` logins one after another, each with an empty passcode for a user
//!    with a real-time SMS token: from the login's request to the message arriving at the gateway.
//! 2. **Throughput**: `--messages` such logins, `--concurrency` at a time, spread over
//!    `--replicas` servers on one database: how many messages per second the outboxes send, and
//!    that each message arrives exactly once.
//! 3. **Simulation** of the case the product we replace makes for pre-loading: `--users` users log
//!    in within two minutes of starting; SMS delays follow the operator's figure (96 % within 20 s,
//!    the rest later); how many logins succeed with real-time codes and with pre-loaded ones.
//!
//! Every answer is checked; anything unexpected fails the run.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use clap::Parser;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::json;
use tessera_bench::{Server, ServerOptions, histogram, percentiles, record};
use tokio::sync::Notify;

/// Codes by text message: latency, outbox throughput, and the pre-loading simulation.
#[derive(Parser)]
#[command(name = "tessera-smsbench", version, about)]
struct Args {
    /// Logins measured one after another for the latency
    #[arg(long, default_value_t = 500)]
    logins: usize,
    /// Messages sent for the throughput
    #[arg(long, default_value_t = 5_000)]
    messages: usize,
    /// Logins in flight at once for the throughput
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Servers sharing the database (more than one needs --database-url)
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Users in the simulation
    #[arg(long, default_value_t = 1_000)]
    users: usize,
    /// Database URL for the servers (default: SQLite in a temporary directory)
    #[arg(long)]
    database_url: Option<String>,
    /// tessera-server binary [default: next to this program]
    #[arg(long)]
    server: Option<PathBuf>,
}

/// What the gateway stand-in received: arrival times per destination, and a wake-up for waiters.
#[derive(Default)]
struct Received {
    arrivals: Mutex<HashMap<String, Vec<Instant>>>,
    arrived: Notify,
}

impl Received {
    fn count(&self, to: &str) -> usize {
        self.arrivals.lock().map(|a| a.get(to).map_or(0, Vec::len)).unwrap_or(0)
    }

    /// Waits until `to` has received more than `seen` messages; when the newest arrived.
    async fn wait_past(&self, to: &str, seen: usize, within: Duration) -> Result<Instant, String> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.arrived.notified();
            if let Some(at) =
                self.arrivals.lock().ok().and_then(|a| a.get(to).and_then(|v| v.get(seen).copied()))
            {
                return Ok(at);
            }
            if Instant::now() > deadline {
                return Err(format!("no message reached {to} within {within:?}"));
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }
}

async fn gateway(
    State(received): State<Arc<Received>>,
    Query(params): Query<HashMap<String, String>>,
) -> StatusCode {
    let (Some(to), Some(text)) = (params.get("to"), params.get("text")) else {
        return StatusCode::BAD_REQUEST;
    };
    if !text.chars().any(|c| c.is_ascii_digit()) {
        return StatusCode::BAD_REQUEST;
    }
    if let Ok(mut arrivals) = received.arrivals.lock() {
        arrivals.entry(to.clone()).or_default().push(Instant::now());
    }
    received.arrived.notify_waiters();
    StatusCode::ACCEPTED
}

fn main() -> std::process::ExitCode {
    tessera_bench::main("tessera-smsbench", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    if args.replicas > 1 && args.database_url.is_none() {
        return Err("--replicas above 1 needs --database-url (replicas share PostgreSQL)".into());
    }
    simulate(args.users);
    let received = Arc::new(Received::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let gateway_url = format!("http://{}/send", listener.local_addr().map_err(|e| e.to_string())?);
    let app = axum::Router::new().route("/send", axum::routing::get(gateway)).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = format!(
        "[delivery.limits]\ncooldown_secs = 0\nper_user_per_window = 0\nper_user_per_day = 0\n\
         per_destination_per_day = 0\nglobal_per_hour = 0\n\n[[delivery.sms_gateway]]\nid = \"stand-in\"\n\
         kind = \"http\"\nmethod = \"GET\"\nurl = \"{gateway_url}\"\n\
         params = {{ to = \"{{phone}}\", text = \"{{message}}\" }}\nsuccess_status = [202]\n"
    );
    let http = tessera_bench::http_client(args.concurrency.max(8))?;
    let mut servers = Vec::with_capacity(args.replicas);
    for _ in 0..args.replicas.max(1) {
        let options = ServerOptions {
            database_url: args.database_url.as_deref(),
            binary: args.server.clone(),
            config: &config,
        };
        servers.push(Server::start(options, &http).await?);
    }
    let database = if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    let users = args.logins.max(args.messages);
    eprintln!("creating {users} users with a real-time SMS token on {database}...");
    futures_util::stream::iter(0..users)
        .map(|i| {
            let (servers, http) = (&servers, &http);
            async move {
                let server = pick(servers, 0)?;
                let user = json!({ "username": format!("u{i}"), "phone": phone(i) });
                server.admin(http, Method::POST, "/api/v1/users", Some(&user)).await?;
                let token = json!({ "kind": "sms", "mode": "realtime" });
                server.admin(http, Method::POST, &format!("/api/v1/users/u{i}/tokens"), Some(&token)).await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    let mut latency = histogram()?;
    for i in 0..args.logins {
        let seen = received.count(&phone(i));
        let started = Instant::now();
        login(&servers, &http, i).await?;
        let arrived = received.wait_past(&phone(i), seen, Duration::from_secs(10)).await?;
        record(&mut latency, arrived.saturating_duration_since(started));
    }
    println!(
        "login with an empty passcode → message at the gateway ({database}, {} replica(s), {} logins one at a time): {}",
        servers.len(),
        args.logins,
        percentiles(&latency)
    );

    let before: usize = (0..args.messages).map(|i| received.count(&phone(i))).sum();
    let started = Instant::now();
    futures_util::stream::iter(0..args.messages)
        .map(|i| login(&servers, &http, i))
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let logins_done = started.elapsed();
    for i in 0..args.messages {
        let already = if i < args.logins { 1 } else { 0 };
        received.wait_past(&phone(i), already, Duration::from_secs(60)).await?;
    }
    let sent_in = started.elapsed();
    let after: usize = (0..args.messages).map(|i| received.count(&phone(i))).sum();
    if after - before != args.messages {
        return Err(format!(
            "{} messages arrived for {} logins: each must arrive once",
            after - before,
            args.messages
        ));
    }
    println!(
        "outbox ({database}, {} replica(s), {} logins {} at a time): {:.0} logins/s, {:.0} messages/s sent, the last \
         message {:.0} ms after the last login; each message arrived exactly once",
        servers.len(),
        args.messages,
        args.concurrency,
        args.messages as f64 / logins_done.as_secs_f64(),
        args.messages as f64 / sent_in.as_secs_f64(),
        sent_in.saturating_sub(logins_done).as_secs_f64() * 1000.0
    );
    Ok(())
}

fn phone(i: usize) -> String {
    format!("+447700{i:06}")
}

/// The server the `i`-th request goes to (round robin).
fn pick(servers: &[Server], i: usize) -> Result<&Server, String> {
    servers.get(i % servers.len().max(1)).ok_or_else(|| "no server is running".to_owned())
}

/// A login with an empty passcode through the `i`-th user's server, which must answer with an
/// SMS challenge.
async fn login(servers: &[Server], http: &reqwest::Client, i: usize) -> Result<(), String> {
    let server = pick(servers, i)?;
    let response = http
        .post(format!("{}/api/v1/validate", server.base))
        .json(&json!({ "username": format!("u{i}"), "passcode": "" }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let answer: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    let field =
        |name: &str| answer.get(name).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    if field("result") != "challenge" || field("channel") != "sms" {
        return Err(format!("login u{i}: expected an SMS challenge, got {answer}"));
    }
    Ok(())
}

/// The pre-loading case, simulated: `users` users each start a login at a random moment within
/// two minutes; the SMS sent for it arrives after a delay drawn from the operator's figure (96 %
/// within 20 s; the other 4 % from 20 s to 30 min: congestion, dead spots, a phone on a data call).
/// A real-time login succeeds when its code arrives while the login screen still waits (its
/// two-minute time to live, less 10 s to type it). A pre-loaded code was sent at the previous
/// login, at least an hour before, so it is there unless its delay was longer than that.
fn simulate(users: usize) {
    use rand::{Rng, SeedableRng};
    let mut random = rand::rngs::StdRng::seed_from_u64(15);
    let mut delay = || -> f64 {
        if random.random_bool(0.96) {
            random.random_range(1.0..20.0)
        } else {
            random.random_range(20.0..1800.0)
        }
    };
    let (mut realtime, mut preloaded) = (0usize, 0usize);
    for _ in 0..users {
        realtime += usize::from(delay() <= 120.0 - 10.0);
        preloaded += usize::from(delay() <= 3600.0);
    }
    let share = |n: usize| 100.0 * n as f64 / users.max(1) as f64;
    println!(
        "simulation ({users} users, SMS 96 % within 20 s, logins within 2 min): real-time codes {:.1} % of logins succeed, \
         pre-loaded codes {:.1} %",
        share(realtime),
        share(preloaded)
    );
}
