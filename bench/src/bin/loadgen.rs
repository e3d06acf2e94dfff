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

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use tessera_bench::{HotpUser, HttpAsker, Load, Server, ServerOptions, Tally, drive, histogram, percentiles};

/// Load generator for tessera-server.
#[derive(Parser)]
#[command(name = "tessera-loadgen", version, about)]
struct Args {
    /// Database URL for the spawned server (default: SQLite in a temporary directory)
    #[arg(long)]
    database_url: Option<String>,
    #[command(flatten)]
    load: Load,
    /// Send every validation with an application key (created through the admin API first)
    #[arg(long)]
    application_key: bool,
}

fn main() -> std::process::ExitCode {
    tessera_bench::main("tessera-loadgen", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    let http = tessera_bench::http_client(args.load.concurrency)?;
    let options = ServerOptions {
        database_url: args.database_url.as_deref(),
        binary: args.load.server.clone(),
        config: "",
    };
    let mut server = Server::start(options, &http).await?;
    let base = server.base.clone();

    let database = if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    eprintln!("enrolling {} users on {database}...", args.load.users);
    let mut users = Vec::with_capacity(args.load.users);
    for i in 0..args.load.users {
        users.push(HotpUser::enroll(&http, &server, &format!("load{i:05}")).await?);
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
    let end = started + warm_up + Duration::from_secs(args.load.seconds);
    let mut shares: Vec<Vec<HotpUser>> = (0..args.load.concurrency).map(|_| Vec::new()).collect();
    for (i, user) in users.into_iter().enumerate() {
        if let Some(share) = shares.get_mut(i % args.load.concurrency) {
            share.push(user);
        }
    }
    let workers: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let (http, base, tally, key) = (http.clone(), base.clone(), tally.clone(), key.clone());
            let url = format!("{base}/api/v1/validate");
            let mut share = share;
            tokio::spawn(async move {
                drive(&mut HttpAsker { http, url, key }, &mut share, tally, started + warm_up, end).await
            })
        })
        .collect();
    let mut histogram = histogram()?;
    for worker in workers {
        let part = worker.await.map_err(|e| e.to_string())??;
        histogram.add(part).map_err(|e| e.to_string())?;
    }

    let measured = histogram.len();
    let seconds = args.load.seconds as f64;
    println!(
        "{database}: {:.0} validations/s over {seconds:.0} s with {} connections{}; latency {}",
        measured as f64 / seconds,
        args.load.concurrency,
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
