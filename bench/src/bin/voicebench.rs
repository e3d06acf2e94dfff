//! `tessera-voicebench`: logins with a voice token against a real `tessera-server`, the phone it
//! calls played by a SIP user agent in this program, all on loopback.
//!
//! Starts the server (SQLite in a temporary directory, or `--database-url`) with calls over SIP
//! (`[delivery.voice]`, straight to the phone's URI, a one-second quiet tone as the prompt, written
//! here with `hound`) and the delivery limits off, gives each of `--concurrency` users the password
//! `2580` and a voice token that calls `sip:USER@127.0.0.1:PORT`, then runs `--logins` logins,
//! one after another per user:
//!
//! 1. t0: the login client sends the password with an empty passcode and must get a `voice`
//!    challenge with a six-digit `display_code`; it long-polls `GET /api/v1/transactions/{id}`
//!    at once, as a login page does;
//! 2. t1: the phone receives the server's INVITE (the offer must carry PCMU and
//!    telephone-events) and answers at once, 200 OK with PCMU and telephone-event 101;
//! 3. once the server's first audio packet arrives (the ACK and the prompt: the call is up), the
//!    phone keys the code as RFC 4733 telephone-events to the RTP address of the server's offer:
//!    per digit a start packet and two updates 20 ms apart, then at 50 ms the end packet three
//!    times back to back (same timestamp, 8,000 Hz clock), and 50 ms before the next digit;
//!    t2: when the last end packet of the last digit was sent;
//! 4. t3: the waiting long-poll answers `approved`; the login client then completes with
//!    `{username, transaction_id}`, which must answer `accept` with the token's serial, and the
//!    server must hang up with a BYE (answered 200 OK) after its confirmation tone.
//!
//! **Login → phone rings** is t1 − t0 (target p50 and p99 ≤ 500 ms); **last digit → login client
//! sees approved** is t3 − t2 (target p99 ≤ 100 ms). Both include the loopback hops and this
//! program's own scheduling (client, phone and server share the machine's cores). The phone is
//! rsipstack's user agent server (`DialogLayer::get_or_create_server_invite`, `accept` with the
//! SDP answer): t1 is when its transaction layer hands the parsed INVITE over. Every answer is
//! checked; anything unexpected fails the run.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use reqwest::Method;
use rsipstack::EndpointBuilder;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::platform::CancellationToken;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transport::TransportLayer;
use rsipstack::transport::udp::UdpConnection;
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use serde_json::{Value, json};
use tessera_bench::{Server, ServerOptions, histogram, record};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// The users' password.
const PASSWORD: &str = "2580";
/// How long a key is held (the event's duration).
const KEY_MS: u64 = 50;
/// The pause between two keys.
const GAP_MS: u64 = 50;
/// The update interval of an event's packets.
const UPDATE_MS: u64 = 20;
/// RTP timestamp units per millisecond (8,000 Hz).
const UNITS_PER_MS: u32 = 8;
/// The payload type the phone answers for telephone-events.
const TELEPHONE_EVENT: u8 = 101;
/// The events' power level, -dBm0.
const VOLUME: u8 = 10;

/// Voice-token logins: login → phone rings, last digit keyed → login client sees approved.
#[derive(Parser)]
#[command(name = "tessera-voicebench", version, about)]
struct Args {
    /// Logins measured (each a call answered and keyed)
    #[arg(long, default_value_t = 200)]
    logins: usize,
    /// Logins in flight at once (each by its own user)
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Database URL for the spawned server (default: SQLite in a temporary directory)
    #[arg(long)]
    database_url: Option<String>,
    /// tessera-server binary [default: next to this program]
    #[arg(long)]
    server: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    tessera_bench::main("tessera-voicebench", run(Args::parse()))
}

/// What one login measured.
struct Timings {
    challenged: Duration,
    rang: Duration,
    approved: Duration,
}

async fn run(args: Args) -> Result<(), String> {
    let concurrency = args.concurrency.clamp(1, args.logins.max(1));
    let phone = Phone::start().await?;
    let prompt = std::env::temp_dir().join(format!("tessera-voicebench-{}.wav", std::process::id()));
    write_prompt(&prompt)?;
    let config = format!(
        "[delivery.limits]\ncooldown_secs = 0\nper_user_per_window = 0\nper_user_per_day = 0\n\
         per_destination_per_day = 0\nglobal_per_hour = 0\n\n[delivery.voice]\nkind = \"sip\"\nring_secs = 30\n\
         [delivery.voice.sip]\nfrom = \"sip:tessera@127.0.0.1\"\nprompt_wav = \"{}\"\n",
        prompt.display()
    );
    let http = tessera_bench::http_client(2 * concurrency)?;
    let options = ServerOptions {
        database_url: args.database_url.as_deref(),
        binary: args.server.clone(),
        config: &config,
    };
    let started = Server::start(options, &http).await;
    let _ = std::fs::remove_file(&prompt);
    let server = started?;
    let database = if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" };

    eprintln!("creating {concurrency} users with a voice token calling the phone at {}...", phone.address);
    let mut users = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let name = format!("voice{i:03}");
        let user = json!({ "username": name, "password": PASSWORD });
        server.admin(&http, Method::POST, "/api/v1/users", Some(&user)).await?;
        let token = json!({ "kind": "voice", "destination": phone.uri(&name) });
        let enrolled =
            server.admin(&http, Method::POST, &format!("/api/v1/users/{name}/tokens"), Some(&token)).await?;
        let serial = text(&enrolled, "serial");
        if serial.is_empty() {
            return Err(format!("the voice token for {name} has no serial: {enrolled}"));
        }
        users.push((name, serial));
    }

    let server = Arc::new(server);
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for (i, (name, serial)) in users.into_iter().enumerate() {
        let logins = args.logins / concurrency + usize::from(i < args.logins % concurrency);
        let (server, http, phone) = (Arc::clone(&server), http.clone(), Arc::clone(&phone));
        workers.push(tokio::spawn(async move {
            let mut timings = Vec::with_capacity(logins);
            for _ in 0..logins {
                timings.push(login(&server, &http, &phone, &name, &serial).await?);
            }
            Ok::<_, String>(timings)
        }));
    }
    let (mut challenged, mut rang, mut approved) = (histogram()?, histogram()?, histogram()?);
    let mut failure = None;
    for worker in workers {
        match worker.await.map_err(|e| e.to_string()).and_then(|outcome| outcome) {
            Ok(timings) => {
                for timing in timings {
                    record(&mut challenged, timing.challenged);
                    record(&mut rang, timing.rang);
                    record(&mut approved, timing.approved);
                }
            }
            Err(error) => failure = failure.or(Some(error)),
        }
    }
    let elapsed = started.elapsed();
    if let Some(error) = failure {
        if let Some(mut server) = Arc::into_inner(server) {
            eprintln!("server data kept in {}", server.keep_files().display());
        }
        return Err(error);
    }
    let unexpected = phone.unexpected.lock().map(|u| u.clone()).unwrap_or_default();
    if !unexpected.is_empty() {
        return Err(format!("the phone got requests no login expected: {unexpected:?}"));
    }
    let at_once =
        if concurrency == 1 { "one at a time".to_owned() } else { format!("{concurrency} at a time") };
    println!(
        "{database}: {} voice logins, {at_once}, in {:.1} s (a call answered and keyed each; phone on loopback)",
        rang.len(),
        elapsed.as_secs_f64()
    );
    println!("  login -> validate answers the voice challenge: {}", quantiles(&challenged));
    let rings_met = rang.value_at_quantile(0.5) <= 500_000 && rang.value_at_quantile(0.99) <= 500_000;
    println!(
        "  login -> phone rings (INVITE received): {} (target p50, p99 <= 500 ms: {})",
        quantiles(&rang),
        verdict(rings_met)
    );
    println!(
        "  last digit keyed -> waiting login client sees approved: {} (target p99 <= 100 ms: {})",
        quantiles(&approved),
        verdict(approved.value_at_quantile(0.99) <= 100_000)
    );
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// `p50 A ms, p95 B ms, p99 C ms, max D ms` of a microsecond histogram.
fn quantiles(histogram: &Histogram<u64>) -> String {
    let ms = |micros: u64| micros as f64 / 1000.0;
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(histogram.value_at_quantile(0.50)),
        ms(histogram.value_at_quantile(0.95)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max())
    )
}

/// A string field of a JSON answer (empty when missing).
fn text(answer: &Value, name: &str) -> String {
    answer.get(name).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// One login by `name`, timed and checked from the password to the server's BYE.
async fn login(
    server: &Server,
    http: &reqwest::Client,
    phone: &Phone,
    name: &str,
    serial: &str,
) -> Result<Timings, String> {
    let validate = format!("{}/api/v1/validate", server.base);
    let ringing = phone.expect(name)?;
    let t0 = Instant::now();
    let challenge = post(http, &validate, &json!({ "username": name, "password": PASSWORD, "passcode": "" }))
        .await
        .map_err(|e| format!("{name}'s login: {e}"))?;
    let challenged = t0.elapsed();
    let (code, id) = (text(&challenge, "display_code"), text(&challenge, "transaction_id"));
    if text(&challenge, "result") != "challenge"
        || text(&challenge, "channel") != "voice"
        || code.len() != 6
        || !code.bytes().all(|b| b.is_ascii_digit())
        || id.is_empty()
    {
        phone.forget(name);
        return Err(format!(
            "{name}'s login: expected a voice challenge with a six-digit code, got {challenge}"
        ));
    }
    let poll =
        tokio::spawn(wait_settled(http.clone(), format!("{}/api/v1/transactions/{id}?wait=25", server.base)));

    let call = tokio::time::timeout(Duration::from_secs(10), ringing)
        .await
        .map_err(|_| format!("{name}'s phone did not ring within 10 s"))?
        .map_err(|_| format!("{name}'s phone stopped"))??;
    let rang = call.rang_at.saturating_duration_since(t0);
    let Call { media, server_rtp, telephone_event, dialog, mut states, .. } = call;
    first_audio(&media).await.map_err(|e| format!("{name}'s call: {e}"))?;
    let keyed = key_in(&media, server_rtp, telephone_event, &code).await?;
    let (seen, status) = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .map_err(|_| format!("{name}'s login client saw no answer within 10 s of the last digit"))?
        .map_err(|e| e.to_string())??;
    if status != "approved" {
        return Err(format!("{name}'s login: the transaction ended {status} after the code was keyed"));
    }
    let approved = seen.saturating_duration_since(keyed);

    let done = post(http, &validate, &json!({ "username": name, "transaction_id": id })).await?;
    if text(&done, "result") != "accept" || text(&done, "serial") != serial {
        return Err(format!("{name}'s login: completing with the transaction answered {done}"));
    }
    hung_up(&mut states, &dialog).await.map_err(|e| format!("{name}'s call: {e}"))?;
    phone.dialogs.remove_dialog(&dialog.id());
    Ok(Timings { challenged, rang, approved })
}

/// POSTs `body`; the JSON answer of a 200.
async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value, String> {
    let response = http.post(url).json(body).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let answer = response.json::<Value>().await.map_err(|e| e.to_string())?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("{url}: {status}: {answer}"));
    }
    Ok(answer)
}

/// Long-polls a transaction until it is no longer pending (at most a minute): when its answer
/// arrived, and the status.
async fn wait_settled(http: reqwest::Client, url: String) -> Result<(Instant, String), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let response = http.get(&url).send().await.map_err(|e| format!("long-poll: {e}"))?;
        let status = response.status();
        let answer = response.json::<Value>().await.map_err(|e| format!("long-poll: {e}"))?;
        let seen = Instant::now();
        if status != reqwest::StatusCode::OK {
            return Err(format!("long-poll: {status}: {answer}"));
        }
        match text(&answer, "status").as_str() {
            "pending" => {}
            "" => return Err(format!("long-poll: no status in {answer}")),
            settled => return Ok((seen, settled.to_owned())),
        }
    }
    Err("the transaction stayed pending for a minute".into())
}

/// Waits for the server's first audio packet (PCMU, 20 ms) on the call's media socket.
async fn first_audio(media: &UdpSocket) -> Result<(), String> {
    let mut buffer = [0u8; 1500];
    let wait = async {
        loop {
            let (len, _) = media.recv_from(&mut buffer).await.map_err(|e| e.to_string())?;
            let packet = buffer.get(..len).unwrap_or_default();
            if let Ok(rtp) = RtpReader::new(packet) {
                if rtp.payload_type() == 0 && rtp.payload().len() == 160 {
                    return Ok::<(), String>(());
                }
                return Err(format!(
                    "the first RTP packet was payload type {}, not PCMU",
                    rtp.payload_type()
                ));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .map_err(|_| "no audio from the server within 5 s of answering".to_owned())?
}

/// Keys `code` as RFC 4733 telephone-events to `to`; when the last end packet was sent.
async fn key_in(media: &UdpSocket, to: SocketAddr, payload_type: u8, code: &str) -> Result<Instant, String> {
    let mut stream = EventStream {
        payload_type,
        ssrc: rand::random(),
        sequence: rand::random(),
        timestamp: rand::random(),
    };
    let mut last = Instant::now();
    for (i, key) in code.bytes().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(GAP_MS)).await;
            stream.timestamp = stream.timestamp.wrapping_add(UNITS_PER_MS * (KEY_MS + GAP_MS) as u32);
        }
        let event = key.wrapping_sub(b'0');
        let mut held = 0;
        while held < KEY_MS {
            if held > 0 {
                tokio::time::sleep(Duration::from_millis(UPDATE_MS)).await;
            }
            let packet = stream.packet(event, false, held == 0, duration(held))?;
            media.send_to(&packet, to).await.map_err(|e| e.to_string())?;
            held += UPDATE_MS;
        }
        tokio::time::sleep(Duration::from_millis(KEY_MS - (held - UPDATE_MS))).await;
        for _ in 0..3 {
            let packet = stream.packet(event, true, false, duration(KEY_MS))?;
            media.send_to(&packet, to).await.map_err(|e| e.to_string())?;
        }
        last = Instant::now();
    }
    Ok(last)
}

/// An event's duration so far, in timestamp units.
fn duration(ms: u64) -> u16 {
    u16::try_from(ms * u64::from(UNITS_PER_MS)).unwrap_or(u16::MAX)
}

/// The phone's outgoing telephone-event stream.
struct EventStream {
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl EventStream {
    /// The next packet of the event that started at `self.timestamp` (RFC 4733 §2.3).
    fn packet(&mut self, event: u8, end: bool, first: bool, duration: u16) -> Result<Vec<u8>, String> {
        let [high, low] = duration.to_be_bytes();
        let payload = [event, if end { 0x80 | VOLUME } else { VOLUME }, high, low];
        let packet = RtpPacketBuilder::new()
            .payload_type(self.payload_type)
            .ssrc(self.ssrc)
            .sequence(Seq::from(self.sequence))
            .timestamp(self.timestamp)
            .marked(first)
            .payload(&payload)
            .build()
            .map_err(|e| format!("an RTP packet: {e:?}"))?;
        self.sequence = self.sequence.wrapping_add(1);
        Ok(packet)
    }
}

/// Waits for the server's BYE after the confirmation tone; the server must have ACKed the answer.
async fn hung_up(states: &mut DialogStateReceiver, dialog: &InviteDialog) -> Result<(), String> {
    let mut confirmed = false;
    let ended = async {
        while let Some(state) = states.recv().await {
            match state {
                DialogState::Confirmed(..) => confirmed = true,
                DialogState::Terminated(_, TerminatedReason::UacBye) if confirmed => return Ok(()),
                DialogState::Terminated(_, reason) => {
                    return Err(format!("the call ended with {reason:?} (ACK received: {confirmed})"));
                }
                _ => {}
            }
        }
        Err("the phone's dialog went away".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), ended).await.map_err(|_| {
        format!("the server did not hang up within 5 s of the approval (dialog {})", dialog.id())
    })?
}

/// A call the phone answered, handed to the login that expected it.
struct Call {
    rang_at: Instant,
    dialog: InviteDialog,
    states: DialogStateReceiver,
    media: UdpSocket,
    server_rtp: SocketAddr,
    telephone_event: u8,
}

/// The phone: a SIP user agent server on a loopback UDP port that answers every INVITE at once
/// with PCMU and telephone-events and hands the call to the login waiting for it (by the user in
/// the request URI).
struct Phone {
    address: SocketAddr,
    dialogs: Arc<DialogLayer>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Result<Call, String>>>>,
    unexpected: Mutex<Vec<String>>,
    cancel: CancellationToken,
}

impl Phone {
    async fn start() -> Result<Arc<Self>, String> {
        let cancel = CancellationToken::new();
        let local: SocketAddr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
        let signalling = UdpConnection::create_connection(local, None, Some(cancel.child_token()))
            .await
            .map_err(|e| format!("the phone's SIP socket: {e}"))?;
        let transport = TransportLayer::new(cancel.clone());
        transport.add_transport(signalling.into());
        let endpoint = EndpointBuilder::new()
            .with_cancel_token(cancel.clone())
            .with_transport_layer(transport)
            .with_user_agent("tessera-voicebench")
            .build();
        let address = endpoint
            .get_addrs()
            .first()
            .and_then(|a| a.addr.to_string().parse::<SocketAddr>().ok())
            .ok_or("the phone's SIP socket has no address")?;
        let serving = endpoint.inner.clone();
        tokio::spawn(async move { serving.serve().await });
        let incoming = endpoint.incoming_transactions().map_err(|e| format!("the phone: {e}"))?;
        let phone = Arc::new(Self {
            address,
            dialogs: Arc::new(DialogLayer::new(endpoint.inner.clone())),
            waiting: Mutex::new(HashMap::new()),
            unexpected: Mutex::new(Vec::new()),
            cancel,
        });
        tokio::spawn(Arc::clone(&phone).serve(incoming, endpoint));
        Ok(phone)
    }

    /// The URI that calls `user` on this phone.
    fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.address)
    }

    /// Expects a call for `user`: the call once answered.
    fn expect(&self, user: &str) -> Result<oneshot::Receiver<Result<Call, String>>, String> {
        let (sender, receiver) = oneshot::channel();
        let mut waiting = self.waiting.lock().map_err(|e| e.to_string())?;
        if waiting.insert(user.to_owned(), sender).is_some() {
            return Err(format!("two logins of {user} waited for a call at once"));
        }
        Ok(receiver)
    }

    /// Expects no call for `user` any more.
    fn forget(&self, user: &str) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(user);
        }
    }

    fn unexpected(&self, what: String) {
        if let Ok(mut unexpected) = self.unexpected.lock() {
            unexpected.push(what);
        }
    }

    /// Answers requests until the program ends: in-dialog ones (ACK, BYE) through their dialog,
    /// new INVITEs by answering them.
    async fn serve(
        self: Arc<Self>,
        mut incoming: TransactionReceiver,
        _endpoint: rsipstack::transaction::Endpoint,
    ) {
        loop {
            let transaction = tokio::select! {
                transaction = incoming.recv() => transaction,
                () = self.cancel.cancelled() => None,
            };
            let Some(mut transaction) = transaction else { break };
            let rang_at = Instant::now();
            if let Some(mut dialog) = self.dialogs.match_dialog(&transaction) {
                tokio::spawn(async move { dialog.handle(&mut transaction).await });
                continue;
            }
            match transaction.original.method {
                rsipstack::sip::Method::Invite => {
                    let phone = Arc::clone(&self);
                    tokio::spawn(async move { phone.answer(transaction, rang_at).await });
                }
                rsipstack::sip::Method::Ack => {}
                method => {
                    self.unexpected(format!("{method} {}", transaction.original.uri));
                    tokio::spawn(
                        async move { transaction.reply(StatusCode::CallTransactionDoesNotExist).await },
                    );
                }
            }
        }
    }

    /// Answers a new INVITE for the login waiting for it.
    async fn answer(
        &self,
        mut transaction: rsipstack::transaction::transaction::Transaction,
        rang_at: Instant,
    ) {
        let user = transaction.original.uri.user().unwrap_or_default().to_owned();
        let waiter = self.waiting.lock().ok().and_then(|mut waiting| waiting.remove(&user));
        let Some(waiter) = waiter else {
            self.unexpected(format!("INVITE {} (no login waits for it)", transaction.original.uri));
            let _ = transaction.reply(StatusCode::NotFound).await;
            return;
        };
        let offer = String::from_utf8_lossy(transaction.original.body()).into_owned();
        let Some((server_rtp, telephone_event)) = offered(&offer) else {
            let _ =
                waiter.send(Err(format!("the INVITE's offer has no PCMU and telephone-events: {offer:?}")));
            let _ = transaction.reply(StatusCode::NotAcceptableHere).await;
            return;
        };
        let media = match UdpSocket::bind("127.0.0.1:0").await {
            Ok(media) => media,
            Err(error) => {
                let _ = waiter.send(Err(format!("the phone's RTP socket: {error}")));
                let _ = transaction.reply(StatusCode::ServerInternalError).await;
                return;
            }
        };
        let media_port = media.local_addr().map(|a| a.port()).unwrap_or_default();
        let contact = rsipstack::sip::Uri::try_from(format!("sip:phone@{}", self.address).as_str()).ok();
        let (sender, states) = self.dialogs.new_dialog_state_channel();
        let dialog = match self.dialogs.get_or_create_server_invite(&transaction, sender, None, contact) {
            Ok(dialog) => dialog,
            Err(error) => {
                let _ = waiter.send(Err(format!("the phone could not take the INVITE: {error}")));
                let _ = transaction.reply(StatusCode::ServerInternalError).await;
                return;
            }
        };
        let headers = vec![Header::ContentType("application/sdp".into())];
        if let Err(error) = dialog.accept(Some(headers), Some(answer_sdp(media_port).into_bytes())) {
            let _ = waiter.send(Err(format!("the phone could not answer: {error}")));
            return;
        }
        let call = Call { rang_at, dialog: dialog.clone(), states, media, server_rtp, telephone_event };
        let _ = waiter.send(Ok(call));
        let mut dialog = dialog;
        let _ = dialog.handle(&mut transaction).await;
    }
}

/// The phone's SDP answer: PCMU and telephone-events, receiving on `port`.
fn answer_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=phone\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 {TELEPHONE_EVENT}\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:{TELEPHONE_EVENT} telephone-event/8000\r\na=fmtp:{TELEPHONE_EVENT} 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// Where an SDP offer receives audio and its telephone-event payload type, if it offers PCMU and
/// telephone-events.
fn offered(sdp: &str) -> Option<(SocketAddr, u8)> {
    let (mut ip, mut port, mut formats, mut events) = (None, None, Vec::new(), None);
    for line in sdp.lines().map(str::trim) {
        if let Some(connection) = line.strip_prefix("c=IN IP4 ") {
            ip = connection.trim().parse::<std::net::IpAddr>().ok();
        } else if let Some(audio) = line.strip_prefix("m=audio ") {
            let mut fields = audio.split_whitespace();
            port = fields.next().and_then(|p| p.parse::<u16>().ok());
            formats = fields.skip(1).filter_map(|f| f.parse::<u8>().ok()).collect();
        } else if let Some((number, name)) = line.strip_prefix("a=rtpmap:").and_then(|m| m.split_once(' '))
            && name.eq_ignore_ascii_case("telephone-event/8000")
        {
            events = number.parse::<u8>().ok();
        }
    }
    let events = events.filter(|e| formats.contains(e))?;
    formats.contains(&0).then_some(())?;
    Some((SocketAddr::new(ip?, port.filter(|p| *p > 0)?), events))
}

/// Writes the prompt: one second of a quiet 440 Hz tone, 8 kHz mono 16-bit PCM.
fn write_prompt(path: &std::path::Path) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(|e| format!("{}: {e}", path.display()))?;
    for n in 0..8000u32 {
        let phase = 2.0 * std::f64::consts::PI * 440.0 * f64::from(n) / 8000.0;
        writer.write_sample((phase.sin() * 2000.0) as i16).map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_offer_names_its_rtp_address_and_event_payload_type() {
        let offer = "v=0\r\no=tessera 1 1 IN IP4 127.0.0.1\r\ns=Tessera\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                     m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
                     a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";
        assert_eq!(offered(offer), Some(("127.0.0.1:40000".parse().unwrap(), 101)));
        assert_eq!(offered(&offer.replace("0 8 101", "8 101")), None, "no PCMU");
        assert_eq!(offered(&offer.replace("0 8 101", "0 8")), None, "no events in the formats");
        assert_eq!(offered(&answer_sdp(4000)), Some(("127.0.0.1:4000".parse().unwrap(), TELEPHONE_EVENT)));
    }

    #[test]
    fn event_packets_carry_the_key_its_end_and_its_duration() {
        let mut stream = EventStream { payload_type: 101, ssrc: 7, sequence: 65_535, timestamp: 1_000 };
        let start = stream.packet(4, false, true, duration(0)).unwrap();
        let end = stream.packet(4, true, false, duration(KEY_MS)).unwrap();
        let (start, end) = (RtpReader::new(&start).unwrap(), RtpReader::new(&end).unwrap());
        assert_eq!(
            (start.payload_type(), start.mark(), start.payload()),
            (101, true, &[4, VOLUME, 0, 0][..])
        );
        assert_eq!(end.payload(), &[4, 0x80 | VOLUME, 1, 144][..], "E set, 400 units");
        assert_eq!((end.timestamp(), end.sequence_number()), (1_000, Seq::from(0)));
    }
}
