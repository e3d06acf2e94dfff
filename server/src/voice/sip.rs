//! Calls over SIP, with Tessera as the calling user agent (rsipstack, over UDP): an INVITE to the
//! voice token's SIP URI, or to its number at the configured proxy (a PBX or a trunk, answering
//! digest challenges with the configured account), offering G.711 and RFC 4733 telephone-events;
//! once answered, the prompt plays and the keys the user presses are collected (telephone-events
//! in RTP, or SIP INFO) entry by entry, each judged by the caller's [`Judge`] (a wrong one hears a
//! low tone and the prompt again, a right one a rising tone), until the judge ends the call, the
//! callee hangs up, or time runs out; then BYE.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rsipstack::EndpointBuilder;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::message::HeadersExt;
use rsipstack::sip::{HostWithPort, StatusCode, Transport};
use rsipstack::transaction::Endpoint;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TransportLayer};
use rtp_rs::{RtpPacketBuilder, Seq};
use tessera_core::secret::fill_random;
use tessera_core::wire::CallDenial;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::dtmf::{Keypad, TelephoneEvent, info_key};
use super::prompt::{FRAME_SAMPLES, G711, Prompt};
use crate::config::SipSettings;

/// How far an RTP timestamp moves per 20 ms frame (8,000 samples a second).
const FRAME_TIMESTAMP_STEP: u32 = 160;
/// The payload type Tessera offers for telephone-events (the usual one; the answer may choose
/// another).
const TELEPHONE_EVENT: u8 = 101;

/// What to call and what to wait for.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// A SIP URI (`sip:2001@pbx.example`), or an E.164 number called at the proxy.
    pub to: String,
    /// Keys to collect before hanging up.
    pub keys_wanted: usize,
    /// How long the phone may ring.
    pub ring_for: Duration,
    /// How long an entry's keys may take once the call is answered (or after a wrong entry).
    pub keys_within: Duration,
    /// A key that, pressed first, ends the entry at once (`9`: "I did not ask for this").
    pub fraud_key: Option<char>,
}

/// What a call does once the callee keyed an entry (`keys_wanted` keys, fewer ended by `#`, or
/// the fraud key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The entry was right: a rising tone, then goodbye.
    Accepted,
    /// Wrong, with tries left: a low tone and the prompt again.
    TryAgain,
    /// No further entry is taken: goodbye.
    Refused,
}

/// Decides what the callee's entries mean.
pub trait Judge: Sync {
    /// What the call does after `entry`.
    fn judge(&self, entry: &str) -> impl Future<Output = Reply> + Send;
}

/// Takes any entry (a test call: the keys are only reported).
pub struct AnyEntry;

impl Judge for AnyEntry {
    async fn judge(&self, _entry: &str) -> Reply {
        Reply::Refused
    }
}

/// What a call plays, in one codec: the spoken prompt, the same after a wrong entry (a low
/// double tone first), and the rising tone that confirms a right one.
#[derive(Debug, Clone)]
pub struct CallAudio {
    entry: Prompt,
    again: Prompt,
    accepted: Prompt,
}

impl CallAudio {
    /// The signals around `prompt`, in its codec.
    pub fn around(prompt: Prompt) -> Self {
        let codec = prompt.codec();
        let wrong = Prompt::tones(&[(440, 180), (0, 80), (330, 300), (0, 400)], codec);
        Self {
            again: wrong.then(&prompt),
            accepted: Prompt::tones(&[(660, 150), (880, 150), (1320, 300), (0, 300)], codec),
            entry: prompt,
        }
    }

    /// The codec it plays in.
    pub fn codec(&self) -> G711 {
        self.entry.codec()
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEnd {
    /// The keys wanted were pressed.
    Keyed,
    /// The callee hung up first.
    HungUp,
    /// Answered, but the keys did not come in time.
    NoKeys,
    /// The callee was busy or declined.
    Busy,
    /// Nobody answered.
    NotAnswered,
    /// The call could not be placed (the text says why).
    Failed(String),
}

impl CallEnd {
    /// Why a login's transaction is denied when its call ended so (`Keyed` while it is still
    /// pending means the keys could not be judged).
    pub fn denial(&self) -> CallDenial {
        match self {
            Self::HungUp => CallDenial::HungUp,
            Self::NoKeys => CallDenial::NoKeys,
            Self::Busy => CallDenial::Busy,
            Self::NotAnswered => CallDenial::NotAnswered,
            Self::Keyed | Self::Failed(_) => CallDenial::Failed,
        }
    }

    /// Its name in the audit log and in `admin test-call`'s answer.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Keyed => "keyed",
            Self::HungUp => "hung_up",
            Self::NoKeys => "no_keys",
            Self::Busy => "busy",
            Self::NotAnswered => "not_answered",
            Self::Failed(_) => "failed",
        }
    }
}

/// What became of a call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallOutcome {
    /// Whether the callee answered.
    pub answered: bool,
    /// The keys pressed, in order (`0`–`9`, `*`, `#`).
    pub keys: String,
    /// How it ended.
    pub ended: CallEnd,
}

impl CallOutcome {
    /// A call that was never answered, ended so.
    pub fn unanswered(ended: CallEnd) -> Self {
        Self { answered: false, keys: String::new(), ended }
    }
}

/// Places one call with `account`, plays the prompt (`audio`: one per codec) to the callee, and
/// lets `judge` decide what their entries mean.
pub async fn call(
    account: &SipSettings,
    audio: &[CallAudio],
    request: &CallRequest,
    judge: &impl Judge,
) -> CallOutcome {
    let cancel = CancellationToken::new();
    let outcome =
        place(account, audio, request, judge, &cancel).await.unwrap_or_else(CallOutcome::unanswered);
    cancel.cancel();
    outcome
}

async fn place(
    account: &SipSettings,
    audio: &[CallAudio],
    request: &CallRequest,
    judge: &impl Judge,
    cancel: &CancellationToken,
) -> Result<CallOutcome, CallEnd> {
    let failed = |what: &str, error: &dyn std::fmt::Display| CallEnd::Failed(format!("{what}: {error}"));
    let callee = callee_uri(&request.to, account.proxy)?;
    let target = account.proxy.map_or_else(|| uri_address(&callee), Ok)?;
    let local_ip = local_ip_towards(target).await.map_err(|e| failed("no route to the callee", &e))?;
    let (endpoint, dialogs) = user_agent(local_ip, cancel).await?;
    let media = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await.map_err(|e| failed("RTP socket", &e))?;
    let media_port = media.local_addr().map_err(|e| failed("RTP socket", &e))?.port();
    let local = endpoint.get_addrs().first().map(|a| a.addr.to_string()).unwrap_or_default();
    let contact = format!("sip:{}@{local}", account.username.as_deref().unwrap_or("tessera"));
    let uri = |text: &str| {
        rsipstack::sip::Uri::try_from(text)
            .map_err(|e| CallEnd::Failed(format!("{text:?} is not a SIP URI: {e}")))
    };
    let mut call_id = [0u8; 16];
    fill_random(&mut call_id).map_err(|e| failed("randomness", &e))?;
    let (states, mut state_events) = dialogs.new_dialog_state_channel();
    let invite = InviteOption {
        caller: uri(&account.from)?,
        callee: uri(&callee)?,
        contact: uri(&contact)?,
        credential: account.username.clone().zip(account.password.clone()).map(|(username, password)| {
            Credential { username, password: password.expose().to_owned(), ..Credential::default() }
        }),
        destination: account.proxy.map(|proxy| SipAddr::new(Transport::Udp, HostWithPort::from(proxy))),
        content_type: Some("application/sdp".into()),
        offer: Some(offer(local_ip, media_port).into_bytes()),
        call_id: Some(format!("{}@tessera", data_encoding::HEXLOWER.encode(&call_id))),
        ..InviteOption::default()
    };
    let answered = tokio::time::timeout(request.ring_for, dialogs.do_invite(invite, states)).await;
    let (dialog, response) = match answered {
        Err(_) => {
            // The INVITE given up on is CANCELed as it drops: let that go out before the
            // endpoint closes.
            let ended =
                async { while state_events.recv().await.is_some_and(|state| !state.is_terminated()) {} };
            let _ = tokio::time::timeout(Duration::from_secs(2), ended).await;
            return Err(CallEnd::NotAnswered);
        }
        Ok(Err(error)) => return Err(failed("the call failed", &error)),
        Ok(Ok(answer)) => answer,
    };
    let Some(response) = response else { return Err(CallEnd::NotAnswered) };
    match response.status_code.code() {
        200..=299 => {}
        486 | 600 | 603 => return Err(CallEnd::Busy),
        408 | 480 | 487 => return Err(CallEnd::NotAnswered),
        code => return Err(CallEnd::Failed(format!("the callee's side answered {code}"))),
    }
    let answer = Answer::of(&String::from_utf8_lossy(response.body()));
    let Some(answer) = answer else {
        let _ = dialog.bye().await;
        return Err(CallEnd::Failed("the answer offered no G.711 audio".into()));
    };
    let audio = audio.iter().find(|a| a.codec() == answer.codec);
    let (keys, ended) = converse(&media, &answer, audio, &mut state_events, request, judge).await;
    if ended != CallEnd::HungUp {
        let _ = dialog.bye().await;
    }
    Ok(CallOutcome { answered: true, keys, ended })
}

/// A SIP user agent on a UDP socket at `local_ip`, answering in-dialog requests (BYE, INFO) as
/// they come, until `cancel`.
async fn user_agent(
    local_ip: IpAddr,
    cancel: &CancellationToken,
) -> Result<(Endpoint, Arc<DialogLayer>), CallEnd> {
    let failed = |what: &str, error: &dyn std::fmt::Display| CallEnd::Failed(format!("{what}: {error}"));
    let signalling =
        UdpConnection::create_connection(SocketAddr::new(local_ip, 0), None, Some(cancel.child_token()))
            .await
            .map_err(|e| failed("SIP socket", &e))?;
    let transport = TransportLayer::new(cancel.clone());
    transport.add_transport(signalling.into());
    let endpoint = EndpointBuilder::new()
        .with_cancel_token(cancel.clone())
        .with_transport_layer(transport)
        .with_user_agent("Tessera")
        .build();
    let serving = endpoint.inner.clone();
    tokio::spawn(async move { serving.serve().await });
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    let mut incoming = endpoint.incoming_transactions().map_err(|e| failed("SIP endpoint", &e))?;
    let matcher = Arc::clone(&dialogs);
    let stop = cancel.clone();
    tokio::spawn(async move {
        loop {
            let transaction = tokio::select! {
                transaction = incoming.recv() => transaction,
                () = stop.cancelled() => None,
            };
            let Some(mut transaction) = transaction else { break };
            if let Some(mut dialog) = matcher.match_dialog(&transaction) {
                tokio::spawn(async move { dialog.handle(&mut transaction).await });
            }
        }
    });
    Ok((endpoint, dialogs))
}

/// Plays the prompt (then silence) and collects keys, entry by entry, until the judge ends the
/// call, the callee hangs up, or the keys stop coming.
async fn converse(
    media: &UdpSocket,
    answer: &Answer,
    audio: Option<&CallAudio>,
    states: &mut DialogStateReceiver,
    request: &CallRequest,
    judge: &impl Judge,
) -> (String, CallEnd) {
    let mut outgoing = Outgoing::new(answer.codec, audio.map(|a| &a.entry));
    let mut callee = MediaSource::of(answer);
    let mut keypad = Keypad::default();
    let mut keys = String::new();
    let mut entry = String::new();
    let mut closing = false;
    let mut buffer = [0u8; 1500];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let deadline = tokio::time::sleep(request.keys_within);
    tokio::pin!(deadline);
    loop {
        let mut pressed = None;
        tokio::select! {
            _ = tick.tick() => {
                if closing && outgoing.finished() {
                    return (keys, CallEnd::Keyed);
                }
                if let Some(packet) = outgoing.next_packet() {
                    let _ = media.send_to(&packet, answer.media).await;
                }
            }
            received = media.recv_from(&mut buffer) => {
                // Keys count only from the callee's media stream: anyone else who can reach this
                // port (the person at the login screen, who knows the code) must not key it in.
                if let Ok((len, from)) = received
                    && callee.admits(from)
                {
                    let event = buffer.get(..len).and_then(|p| TelephoneEvent::from_rtp(p, answer.telephone_event));
                    pressed = event.and_then(|e| keypad.press(&e)).map(|key| key.as_char());
                }
            }
            state = states.recv() => match state {
                Some(DialogState::Terminated(..)) | None => return (keys, CallEnd::HungUp),
                Some(DialogState::Info(_, info, handle)) => {
                    let content_type = info.header_value("Content-Type").unwrap_or_default();
                    pressed = info_key(&content_type, &String::from_utf8_lossy(info.body())).map(|key| key.as_char());
                    let _ = handle.reply(StatusCode::OK).await;
                }
                Some(_) => {}
            },
            () = &mut deadline, if !closing => return (keys, CallEnd::NoKeys),
        }
        let Some(key) = pressed.filter(|_| !closing) else { continue };
        keys.push(key);
        if key != '#' {
            entry.push(key);
        }
        let complete = entry.len() >= request.keys_wanted
            || (key == '#' && !entry.is_empty())
            || (request.fraud_key.is_some_and(|fraud| entry.len() == 1 && entry.starts_with(fraud)));
        if !complete {
            continue;
        }
        match judge.judge(&entry).await {
            Reply::Accepted => {
                closing = true;
                outgoing.play(audio.map(|a| a.accepted.frames()).unwrap_or_default());
            }
            Reply::Refused => return (keys, CallEnd::Keyed),
            Reply::TryAgain => {
                outgoing.play(audio.map(|a| a.again.frames()).unwrap_or_default());
                deadline.as_mut().reset(tokio::time::Instant::now() + request.keys_within);
            }
        }
        entry.clear();
    }
}

/// Where the callee's media comes from: the address its SDP answer named, or, for a callee that
/// names one address and sends from another of the same port (a host with several interfaces,
/// an address-rewriting NAT), the first such source, held from then on. Packets from anywhere else
/// are not the callee's.
struct MediaSource {
    named: SocketAddr,
    latched: Option<SocketAddr>,
}

impl MediaSource {
    fn of(answer: &Answer) -> Self {
        Self { named: answer.media, latched: None }
    }

    /// Whether a packet from `from` is the callee's (latching it when it may be).
    fn admits(&mut self, from: SocketAddr) -> bool {
        match self.latched {
            _ if from == self.named => true,
            Some(latched) => from == latched,
            None if from.port() == self.named.port() => {
                self.latched = Some(from);
                true
            }
            None => false,
        }
    }
}

/// The audio Tessera sends: the prompt's frames, then silence, one RTP packet per 20 ms, from a
/// random SSRC, sequence number and timestamp (RFC 3550 §5.1).
struct Outgoing<'a> {
    codec: G711,
    frames: &'a [[u8; FRAME_SAMPLES]],
    silence: [u8; FRAME_SAMPLES],
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    sent: usize,
}

impl<'a> Outgoing<'a> {
    /// Plays `frames` from their start (then silence again).
    fn play(&mut self, frames: &'a [[u8; FRAME_SAMPLES]]) {
        self.frames = frames;
        self.sent = 0;
    }

    /// Whether what is playing has been sent in full.
    fn finished(&self) -> bool {
        self.sent >= self.frames.len()
    }

    fn new(codec: G711, prompt: Option<&'a Prompt>) -> Self {
        let mut random = [0u8; 10];
        let _ = fill_random(&mut random);
        let [a, b, c, d, e, f, g, h, i, j] = random;
        Self {
            codec,
            frames: prompt.map(Prompt::frames).unwrap_or_default(),
            silence: [codec.encode(0); FRAME_SAMPLES],
            ssrc: u32::from_be_bytes([a, b, c, d]),
            sequence: u16::from_be_bytes([e, f]),
            timestamp: u32::from_be_bytes([g, h, i, j]),
            sent: 0,
        }
    }

    /// The next 20 ms of audio, as an RTP packet.
    fn next_packet(&mut self) -> Option<Vec<u8>> {
        let frame = self.frames.get(self.sent).unwrap_or(&self.silence);
        let packet = RtpPacketBuilder::new()
            .payload_type(self.codec.payload_type())
            .ssrc(self.ssrc)
            .sequence(Seq::from(self.sequence))
            .timestamp(self.timestamp)
            .marked(self.sent == 0)
            .payload(frame)
            .build()
            .ok();
        self.sent += 1;
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(FRAME_TIMESTAMP_STEP);
        packet
    }
}

/// The callee's URI: a SIP URI as given, or an E.164 number at the proxy.
fn callee_uri(to: &str, proxy: Option<SocketAddr>) -> Result<String, CallEnd> {
    if to.starts_with("sip:") {
        return Ok(to.to_owned());
    }
    let proxy = proxy.ok_or_else(|| {
        CallEnd::Failed(format!("{to} is a number: calling it needs [delivery.voice.sip] proxy"))
    })?;
    Ok(format!("sip:{to}@{proxy}"))
}

/// The address a SIP URI's host and port name (an IP address: names need the proxy).
fn uri_address(uri: &str) -> Result<SocketAddr, CallEnd> {
    let host = uri.trim_start_matches("sip:").rsplit('@').next().unwrap_or_default();
    let host = host.split(';').next().unwrap_or_default();
    host.parse::<SocketAddr>()
        .or_else(|_| host.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 5060)))
        .map_err(|_| CallEnd::Failed(format!("{uri}: a host name needs [delivery.voice.sip] proxy")))
}

/// The local address packets to `target` leave from.
async fn local_ip_towards(target: SocketAddr) -> std::io::Result<IpAddr> {
    let probe = UdpSocket::bind(if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).await?;
    probe.connect(target).await?;
    Ok(probe.local_addr()?.ip())
}

/// The SDP offer: G.711 μ-law and A-law, and telephone-events.
fn offer(ip: IpAddr, port: u16) -> String {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=tessera 1 1 IN {family} {ip}\r\ns=Tessera\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 {TELEPHONE_EVENT}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{TELEPHONE_EVENT} telephone-event/8000\r\na=fmtp:{TELEPHONE_EVENT} 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// What the callee's SDP answer chose.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    /// Where its audio goes.
    media: SocketAddr,
    /// The G.711 codec it takes.
    codec: G711,
    /// The payload type of its telephone-events.
    telephone_event: u8,
}

impl Answer {
    /// Reads an SDP answer's connection address, audio port, first G.711 format and
    /// telephone-event payload type; none without G.711 audio.
    fn of(sdp: &str) -> Option<Self> {
        let mut ip = None;
        let mut port = None;
        let mut formats: Vec<u8> = Vec::new();
        let mut telephone_event = TELEPHONE_EVENT;
        for line in sdp.lines().map(str::trim) {
            if let Some(connection) = line.strip_prefix("c=IN ") {
                ip = connection.split_whitespace().nth(1).and_then(|a| a.parse::<IpAddr>().ok()).or(ip);
            } else if let Some(audio) = line.strip_prefix("m=audio ") {
                let mut fields = audio.split_whitespace();
                port = fields.next().and_then(|p| p.parse::<u16>().ok());
                formats = fields.skip(1).filter_map(|f| f.parse().ok()).collect();
            } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
                let (number, name) = map.split_once(' ')?;
                if name.to_ascii_lowercase().starts_with("telephone-event/8000") {
                    telephone_event = number.parse().ok()?;
                }
            }
        }
        let codec = formats.iter().find_map(|f| G711::of_payload_type(*f))?;
        Some(Self { media: SocketAddr::new(ip?, port.filter(|p| *p > 0)?), codec, telephone_event })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sdp_answer_names_the_audio_address_the_codec_and_the_events() {
        let baresip = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                       m=audio 10002 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        assert_eq!(
            Answer::of(baresip),
            Some(Answer {
                media: "127.0.0.1:10002".parse().unwrap(),
                codec: G711::ALaw,
                telephone_event: 101
            })
        );
        let other = baresip.replace("8 101", "0 96").replace("101 telephone", "96 telephone");
        assert_eq!(Answer::of(&other).map(|a| (a.codec, a.telephone_event)), Some((G711::MuLaw, 96)));
        assert_eq!(Answer::of(&baresip.replace("8 101", "9 101")), None, "G.722 only");
        assert_eq!(Answer::of(&baresip.replace("m=audio 10002", "m=audio 0")), None, "audio refused");
        assert_eq!(Answer::of(""), None);
        let offered = offer("192.0.2.5".parse().unwrap(), 4000);
        assert_eq!(Answer::of(&offered).map(|a| a.media), Some("192.0.2.5:4000".parse().unwrap()));
    }

    #[test]
    fn the_audio_sent_is_the_prompt_then_silence_in_one_numbered_stream() {
        let wav = {
            let mut bytes = std::io::Cursor::new(Vec::new());
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 8000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut writer = hound::WavWriter::new(&mut bytes, spec).unwrap();
            for i in 0..320 {
                writer.write_sample(if i % 2 == 0 { 9000i16 } else { -9000 }).unwrap();
            }
            writer.finalize().unwrap();
            bytes.into_inner()
        };
        let prompt = Prompt::from_wav(wav.as_slice(), G711::ALaw).unwrap();
        let mut outgoing = Outgoing::new(G711::ALaw, Some(&prompt));
        let packets: Vec<Vec<u8>> = (0..4).map(|_| outgoing.next_packet().unwrap()).collect();
        let read: Vec<rtp_rs::RtpReader<'_>> =
            packets.iter().map(|p| rtp_rs::RtpReader::new(p).unwrap()).collect();
        assert_eq!(read[0].payload(), prompt.frames()[0].as_slice());
        assert_eq!(read[1].payload(), prompt.frames()[1].as_slice());
        assert!(
            read[2].payload().iter().chain(read[3].payload()).all(|b| *b == G711::ALaw.encode(0)),
            "then silence"
        );
        assert!(read[0].mark() && !read[1].mark(), "the marker on the first packet only");
        for pair in read.windows(2) {
            assert_eq!(pair[1].sequence_number(), pair[0].sequence_number().next());
            assert_eq!(pair[1].timestamp(), pair[0].timestamp().wrapping_add(160));
            assert_eq!((pair[1].ssrc(), pair[1].payload_type()), (pair[0].ssrc(), 8));
        }
    }

    #[test]
    fn the_callees_media_is_its_named_address_or_the_first_source_of_its_port() {
        let named: SocketAddr = "192.0.2.2:20288".parse().unwrap();
        let mut source = MediaSource { named, latched: None };
        assert!(!source.admits("127.0.0.1:5555".parse().unwrap()), "another port");
        assert!(source.admits("127.0.0.1:20288".parse().unwrap()), "the named port from another interface");
        assert!(!source.admits("198.51.100.9:20288".parse().unwrap()), "held: no second source");
        assert!(source.admits("127.0.0.1:20288".parse().unwrap()) && source.admits(named));
    }

    #[tokio::test]
    async fn keys_count_only_from_the_callees_media_address() {
        let ours = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let intruder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let answer = Answer { media: callee.local_addr().unwrap(), codec: G711::MuLaw, telephone_event: 101 };
        let request = CallRequest {
            to: "sip:phone@127.0.0.1".into(),
            keys_wanted: 2,
            ring_for: Duration::from_secs(1),
            keys_within: Duration::from_secs(3),
            fraud_key: None,
        };
        let (_dialog, mut states) = tokio::sync::mpsc::unbounded_channel();
        let target = ours.local_addr().unwrap();
        let keying = async {
            for (sender, key, timestamp) in
                [(&intruder, 7, 1_000), (&callee, 4, 2_000), (&intruder, 8, 3_000), (&callee, 2, 4_000)]
            {
                for packet in super::super::dtmf::tests::press(key, timestamp, 10) {
                    sender.send_to(&packet, target).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        };
        let (_, (keys, ended)) =
            tokio::join!(keying, converse(&ours, &answer, None, &mut states, &request, &AnyEntry));
        assert_eq!((keys.as_str(), ended), ("42", CallEnd::Keyed), "the intruder's 7 and 8 are not heard");
    }

    #[test]
    fn a_number_is_called_at_the_proxy_and_a_uri_as_given() {
        let proxy: SocketAddr = "10.0.0.2:5060".parse().unwrap();
        assert_eq!(callee_uri("+447700900123", Some(proxy)), Ok("sip:+447700900123@10.0.0.2:5060".into()));
        assert_eq!(callee_uri("sip:2001@pbx.example", None), Ok("sip:2001@pbx.example".into()));
        assert!(matches!(callee_uri("+447700900123", None), Err(CallEnd::Failed(_))));
        assert_eq!(uri_address("sip:phone@127.0.0.1:5070"), Ok("127.0.0.1:5070".parse().unwrap()));
        assert_eq!(uri_address("sip:2001@10.0.0.9;transport=udp"), Ok("10.0.0.9:5060".parse().unwrap()));
        assert!(matches!(uri_address("sip:2001@pbx.example"), Err(CallEnd::Failed(_))));
    }
}
