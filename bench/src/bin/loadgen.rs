//! `tessera-loadgen`: validations per second and latency percentiles of a real `tessera-server`.
//!
//! Starts the server (SQLite in a temporary directory, or `--database-url`), enrolls `--users`
//! users with an HOTP token each through the admin API, then sends validations from
//! `--concurrency` keep-alive connections for `--seconds`. Each user alternates a right code and a
//! wrong one, so every request writes: an accepted code advances the token's counter (replay
//! protection), a wrong one counts a failure. Every answer is checked; a wrong answer is an error.
//! Rate limits are off in the spawned server (one client address sends everything). With
//! `--application-key` the validations present a relying-party application's key, as a VPN or web
//! site does: the server checks it on every request (from its per-process cache).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tessera_bench::{Server, ServerOptions, histogram, percentiles, record};
use tessera_core::otp::{OtpMethod, hotp};
use tessera_core::otpauth::OtpAuth;
use tessera_core::secret::SecretBytes;

/// Load generator for tessera-server.
#[derive(Parser)]
#[command(name = "tessera-loadgen", version, about)]
struct Args {
    /// Database URL for the spawned server (default: SQLite in a temporary directory)
    #[arg(long)]
    database_url: Option<String>,
    /// Concurrent connections
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Users (each with one HOTP token)
    #[arg(long, default_value_t = 512)]
    users: usize,
    /// Measured seconds (after a 2-second warm-up)
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// tessera-server binary [default: next to this program]
    #[arg(long)]
    server: Option<PathBuf>,
    /// Send every validation with an application key (created through the admin API first)
    #[arg(long)]
    application_key: bool,
}

struct User {
    name: String,
    seed: SecretBytes,
    digits: tessera_core::otp::Digits,
    algorithm: tessera_core::otp::Algorithm,
    counter: u64,
    next_is_valid: bool,
}

#[derive(Default)]
struct Tally {
    accepted: AtomicU64,
    rejected: AtomicU64,
    wrong_answers: AtomicU64,
    http_errors: AtomicU64,
}

fn main() -> std::process::ExitCode {
    tessera_bench::main("tessera-loadgen", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    let http = tessera_bench::http_client(args.concurrency)?;
    let options =
        ServerOptions { database_url: args.database_url.as_deref(), binary: args.server.clone(), config: "" };
    let mut server = Server::start(options, &http).await?;
    let base = server.base.clone();

    let database = if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    eprintln!("enrolling {} users on {database}...", args.users);
    let mut users = Vec::with_capacity(args.users);
    for i in 0..args.users {
        users.push(enroll(&http, &server, &format!("load{i:05}")).await?);
    }

    let key = if args.application_key {
        let body = json!({ "name": "loadgen", "service_name": "Load generator" });
        let created = server.admin(&http, reqwest::Method::POST, "/api/v1/applications", Some(&body)).await?;
        Some(created.get("key").and_then(Value::as_str).ok_or("no application key in the answer")?.to_owned())
    } else {
        None
    };
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let warm_up = Duration::from_secs(2);
    let end = started + warm_up + Duration::from_secs(args.seconds);
    let mut shares: Vec<Vec<User>> = (0..args.concurrency).map(|_| Vec::new()).collect();
    for (i, user) in users.into_iter().enumerate() {
        if let Some(share) = shares.get_mut(i % args.concurrency) {
            share.push(user);
        }
    }
    let workers: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let (http, base, tally, key) = (http.clone(), base.clone(), tally.clone(), key.clone());
            tokio::spawn(async move { worker(http, base, key, share, tally, started + warm_up, end).await })
        })
        .collect();
    let mut histogram = histogram()?;
    for worker in workers {
        let part = worker.await.map_err(|e| e.to_string())??;
        histogram.add(part).map_err(|e| e.to_string())?;
    }

    let measured = histogram.len();
    let seconds = args.seconds as f64;
    println!(
        "{database}: {:.0} validations/s over {seconds:.0} s with {} connections{}; latency {}",
        measured as f64 / seconds,
        args.concurrency,
        if key.is_some() { " and an application key" } else { "" },
        percentiles(&histogram),
    );
    let wrong = tally.wrong_answers.load(Ordering::Relaxed);
    let errors = tally.http_errors.load(Ordering::Relaxed);
    println!(
        "  answers: {} accepted (right codes), {} rejected (wrong codes), {wrong} wrong answers, {errors} HTTP errors",
        tally.accepted.load(Ordering::Relaxed),
        tally.rejected.load(Ordering::Relaxed),
    );
    if wrong > 0 || errors > 0 {
        return Err(format!(
            "{wrong} wrong answers and {errors} HTTP errors (server data kept in {})",
            server.keep_files().display()
        ));
    }
    Ok(())
}

async fn worker(
    http: reqwest::Client,
    base: String,
    key: Option<String>,
    mut users: Vec<User>,
    tally: Arc<Tally>,
    measure_from: Instant,
    end: Instant,
) -> Result<Histogram<u64>, String> {
    let mut histogram = histogram()?;
    let url = format!("{base}/api/v1/validate");
    let mut index = 0;
    while Instant::now() < end && !users.is_empty() {
        let count = users.len();
        let Some(user) = users.get_mut(index % count) else { break };
        index += 1;
        let valid = user.next_is_valid;
        user.next_is_valid = !valid;
        let passcode = if valid {
            let code = hotp(&user.seed, user.algorithm, user.digits, user.counter);
            user.counter += 1;
            code.expose().to_owned()
        } else {
            wrong_code(user)
        };
        let sent = Instant::now();
        let mut request = http.post(&url).json(&json!({ "username": user.name, "passcode": passcode }));
        if let Some(key) = &key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await;
        let elapsed = sent.elapsed();
        let body = match response {
            Ok(response) if response.status().is_success() => response.json::<Value>().await.ok(),
            _ => None,
        };
        match body.as_ref().and_then(|b| b.get("result")).and_then(Value::as_str) {
            Some("accept") if valid => tally.accepted.fetch_add(1, Ordering::Relaxed),
            Some("reject") if !valid => tally.rejected.fetch_add(1, Ordering::Relaxed),
            Some(_) => {
                if tally.wrong_answers.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!(
                        "wrong answer for {} ({} code): {}",
                        user.name,
                        if valid { "right" } else { "wrong" },
                        body.unwrap_or_default()
                    );
                }
                1
            }
            None => tally.http_errors.fetch_add(1, Ordering::Relaxed),
        };
        if sent >= measure_from {
            record(&mut histogram, elapsed);
        }
    }
    Ok(histogram)
}

/// A code that matches none of the counters the server looks at (the next one and its look-ahead).
fn wrong_code(user: &User) -> String {
    let window: Vec<String> = (user.counter..user.counter + 16)
        .map(|c| hotp(&user.seed, user.algorithm, user.digits, c).expose().to_owned())
        .collect();
    (0u64..)
        .map(|n| format!("{n:0width$}", width = usize::from(user.digits.get())))
        .find(|candidate| !window.contains(candidate))
        .unwrap_or_default()
}

async fn enroll(http: &reqwest::Client, server: &Server, name: &str) -> Result<User, String> {
    let post = reqwest::Method::POST;
    server.admin(http, post.clone(), "/api/v1/users", Some(&json!({ "username": name }))).await?;
    let enrollment = server
        .admin(http, post, &format!("/api/v1/users/{name}/tokens"), Some(&json!({ "kind": "hotp" })))
        .await?;
    let uri =
        enrollment.get("otpauth_uri").and_then(Value::as_str).ok_or("no otpauth_uri in the enrollment")?;
    let otp = OtpAuth::parse(uri).map_err(|e| e.to_string())?.otp;
    let OtpMethod::Hotp { algorithm, digits, counter } = *otp.method() else {
        return Err("expected an HOTP token".into());
    };
    Ok(User {
        name: name.to_owned(),
        seed: otp.secret().clone(),
        digits,
        algorithm,
        counter,
        next_is_valid: true,
    })
}
