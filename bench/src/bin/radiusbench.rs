//! `tessera-radiusbench`: Access-Requests per second and latency percentiles of a real
//! `tessera-server`'s RADIUS listener, side by side with HTTP `/api/v1/validate` in the same run.
//!
//! Starts the server (SQLite in a temporary directory) with a single-field RADIUS client, enrolls
//! `--users` users with an HOTP token each, then measures HTTP validations and then RADIUS
//! Access-Requests (PAP, one round, signed with a Message-Authenticator), each from
//! `--concurrency` clients for `--seconds`. Each user alternates a right code and a wrong one, so
//! every request writes. Every answer is checked (code, Response Authenticator and
//! Message-Authenticator); a wrong or unsigned answer is an error. HOTP rather than TOTP: a TOTP
//! code works once per 30 seconds, so a load this size would only measure replay refusals.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use tessera_bench::{
    Asker, HotpUser, HttpAsker, Load, Server, ServerOptions, Tally, Verdict, drive, histogram, percentiles,
};
use tessera_server::radius::packet::{
    Attribute, Code, Packet, attribute, encode_request, hide_password, reply_is_genuine,
};
use tokio::net::UdpSocket;

/// The benchmark client's shared secret.
const SECRET: &str = "radius-benchmark-secret-0123456789";

/// RADIUS and HTTP validation throughput of tessera-server.
#[derive(Parser)]
#[command(name = "tessera-radiusbench", version, about)]
struct Args {
    #[command(flatten)]
    load: Load,
}

fn main() -> std::process::ExitCode {
    tessera_bench::main("tessera-radiusbench", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    let http = tessera_bench::http_client(args.load.concurrency)?;
    let secret_file = std::env::temp_dir().join(format!("tessera-radiusbench-{}.secret", std::process::id()));
    std::fs::write(&secret_file, format!("{SECRET}\n")).map_err(|e| e.to_string())?;
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let config = format!(
        "[radius]\nlisten = \"127.0.0.1:{port}\"\n[[radius.client]]\nname = \"bench\"\naddress = \"127.0.0.1/32\"\n\
         secret_file = \"{}\"\nsingle_field = true\n",
        secret_file.display()
    );
    let started = Server::start(
        ServerOptions { database_url: None, binary: args.load.server.clone(), config: &config },
        &http,
    )
    .await;
    let _ = std::fs::remove_file(&secret_file);
    let mut server = started?;
    eprintln!("enrolling {} users on SQLite...", args.load.users);
    let mut users = Vec::with_capacity(args.load.users);
    for i in 0..args.load.users {
        users.push(HotpUser::enroll(&http, &server, &format!("radius{i:05}")).await?);
    }
    let mut shares: Vec<Vec<HotpUser>> = (0..args.load.concurrency).map(|_| Vec::new()).collect();
    for (i, user) in users.into_iter().enumerate() {
        if let Some(share) = shares.get_mut(i % args.load.concurrency) {
            share.push(user);
        }
    }
    let mut shares: Vec<Arc<tokio::sync::Mutex<Vec<HotpUser>>>> =
        shares.into_iter().map(|share| Arc::new(tokio::sync::Mutex::new(share))).collect();

    let tally = Arc::new(Tally::default());
    let (measure_from, end) = window(args.load.seconds);
    let url = format!("{}/api/v1/validate", server.base);
    let mut http_workers = Vec::new();
    for share in &shares {
        let (http, url, tally, share) = (http.clone(), url.clone(), tally.clone(), share.clone());
        http_workers.push(tokio::spawn(async move {
            let mut users = share.lock().await;
            drive(&mut HttpAsker { http, url, key: None }, &mut users, tally, measure_from, end).await
        }));
    }
    let http_histogram = gather(http_workers).await?;
    report("HTTP /api/v1/validate", &http_histogram, &tally, args.load.seconds, args.load.concurrency)?;

    let tally = Arc::new(Tally::default());
    let (measure_from, end) = window(args.load.seconds);
    let mut radius_workers = Vec::new();
    for share in shares.drain(..) {
        let tally = tally.clone();
        radius_workers.push(tokio::spawn(async move {
            let mut users = share.lock().await;
            let mut asker = RadiusAsker::connect(port).await?;
            drive(&mut asker, &mut users, tally, measure_from, end).await
        }));
    }
    let radius_histogram = gather(radius_workers).await?;
    let outcome = report(
        "RADIUS Access-Request (PAP, one round)",
        &radius_histogram,
        &tally,
        args.load.seconds,
        args.load.concurrency,
    );
    if outcome.is_err() {
        eprintln!("server data kept in {}", server.keep_files().display());
    }
    outcome
}

/// The warm-up's end and the measurement's end, from now.
fn window(seconds: u64) -> (Instant, Instant) {
    let measure_from = Instant::now() + Duration::from_secs(2);
    (measure_from, measure_from + Duration::from_secs(seconds))
}

async fn gather(
    workers: Vec<tokio::task::JoinHandle<Result<Histogram<u64>, String>>>,
) -> Result<Histogram<u64>, String> {
    let mut total = histogram()?;
    for worker in workers {
        let part = worker.await.map_err(|e| e.to_string())??;
        total.add(part).map_err(|e| e.to_string())?;
    }
    Ok(total)
}

fn report(
    path: &str,
    histogram: &Histogram<u64>,
    tally: &Tally,
    seconds: u64,
    concurrency: usize,
) -> Result<(), String> {
    println!(
        "{path}: {:.0}/s over {seconds} s with {concurrency} clients on SQLite; latency {}",
        histogram.len() as f64 / seconds as f64,
        percentiles(histogram)
    );
    let (wrong, errors) =
        (tally.wrong_answers.load(Ordering::Relaxed), tally.http_errors.load(Ordering::Relaxed));
    println!(
        "  answers: {} accepted (right codes), {} rejected (wrong codes), {wrong} wrong answers, {errors} unanswered",
        tally.accepted.load(Ordering::Relaxed),
        tally.rejected.load(Ordering::Relaxed)
    );
    if wrong > 0 || errors > 0 {
        Err(format!("{path}: {wrong} wrong answers and {errors} unanswered"))
    } else {
        Ok(())
    }
}

/// One RADIUS client: a socket of its own, one request at a time, every answer's authenticators
/// checked.
struct RadiusAsker {
    socket: UdpSocket,
    identifier: u8,
    buffer: Vec<u8>,
}

impl RadiusAsker {
    async fn connect(port: u16) -> Result<Self, String> {
        let socket = UdpSocket::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        socket.connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
        Ok(Self { socket, identifier: 0, buffer: vec![0u8; 4096] })
    }
}

impl Asker for RadiusAsker {
    async fn ask(&mut self, username: &str, passcode: &str) -> Result<Verdict, String> {
        self.identifier = self.identifier.wrapping_add(1);
        let authenticator: [u8; 16] = rand::random();
        let attributes = [
            Attribute { kind: attribute::USER_NAME, value: username.as_bytes().to_vec() },
            Attribute {
                kind: attribute::USER_PASSWORD,
                value: hide_password(passcode, &authenticator, SECRET.as_bytes()),
            },
        ];
        let request = encode_request(self.identifier, authenticator, &attributes, SECRET.as_bytes(), true);
        self.socket.send(&request).await.map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(Duration::from_secs(5), self.socket.recv(&mut self.buffer)).await;
        let reply = match answer {
            Ok(Ok(len)) => self.buffer.get(..len),
            _ => None,
        };
        let code = reply
            .filter(|reply| reply_is_genuine(reply, &authenticator, SECRET.as_bytes()))
            .and_then(|reply| Packet::decode(reply).ok())
            .filter(|packet| packet.identifier == self.identifier)
            .map(|packet| packet.code);
        Ok(match code {
            Some(Code::AccessAccept) => Verdict::Accepted,
            Some(Code::AccessReject) => Verdict::Rejected,
            Some(other) => Verdict::Other(format!("{other:?}")),
            None => Verdict::Unanswered,
        })
    }
}
