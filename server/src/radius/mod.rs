//! The RADIUS listener (`[radius] listen`): UDP packets from the declared clients, each read by
//! [`packet`], answered through [`Service::radius_access`], and signed. A packet from an unknown
//! address, one that does not parse, one without a Message-Authenticator from a client that
//! requires it (every client, by default: BlastRADIUS), or one whose Message-Authenticator is
//! wrong is dropped without an answer and audited (at most once a minute per kind and address).
//! A retransmission (same address, identifier and Request Authenticator, RFC 5080 §2.2.2) gets
//! the answer already sent, and while the first is still being answered it is dropped: it never
//! starts a second push or a second text message. On `accounting_listen`, Accounting-Requests
//! (RFC 2866) signed by their Request Authenticator are recorded ([`Service::radius_accounting`])
//! and answered.

pub mod packet;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_core::secret::SecretString;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

use crate::config::{RadiusClient, RadiusSettings};
use crate::service::{
    AccountingStatus, Caller, RadiusAccess, RadiusAccounting, RadiusAnswer, ReplyAttribute, Service,
};
use packet::{Attribute, Code, MessageAuthenticator, Packet, attribute, encode_reply};

/// How long an answer is kept for retransmissions at least (RFC 5080 suggests the client's whole
/// retry period; clients give up well within this).
const REMEMBERED: Duration = Duration::from_secs(30);
/// Requests answered at once; more wait for a slot (a push held in `auto` mode holds one).
const IN_FLIGHT: usize = 4096;
/// The longest `NAS-Identifier` shown on the phone and in the audit log (a longer one is left out).
const MAX_NAS_IDENTIFIER: usize = 64;
/// Answers remembered at most in a generation (beyond it, new ones are not remembered).
const MAX_REMEMBERED: usize = 65_536;

/// Why a packet was dropped, as audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dropped {
    UnknownClient,
    Malformed,
    NotAccessRequest,
    NotAccountingRequest,
    MissingMessageAuthenticator,
    BadMessageAuthenticator,
    BadRequestAuthenticator,
    NoAccountingStatus,
    NotRecorded,
}

impl Dropped {
    fn reason(self) -> &'static str {
        match self {
            Self::UnknownClient => "unknown_client",
            Self::Malformed => "malformed_packet",
            Self::NotAccessRequest => "not_access_request",
            Self::NotAccountingRequest => "not_accounting_request",
            Self::MissingMessageAuthenticator => "missing_message_authenticator",
            Self::BadMessageAuthenticator => "bad_message_authenticator",
            Self::BadRequestAuthenticator => "bad_request_authenticator",
            Self::NoAccountingStatus => "no_accounting_status",
            Self::NotRecorded => "accounting_not_recorded",
        }
    }
}

/// A request's identity for retransmissions.
type RequestKey = (SocketAddr, u8, [u8; 16]);

/// What is known of a request seen lately.
enum Seen {
    /// Being answered: a retransmission is dropped.
    Working,
    /// Answered with these octets: a retransmission gets them again.
    Answered(Arc<Vec<u8>>),
}

/// Requests seen lately, in two generations swapped every [`REMEMBERED`]: an entry lives 30 to 60
/// seconds, and forgetting costs nothing per request (no scan, however busy the listener).
struct Recent {
    current: HashMap<RequestKey, Seen>,
    previous: HashMap<RequestKey, Seen>,
    since: Instant,
}

impl Recent {
    fn new() -> Self {
        Self { current: HashMap::new(), previous: HashMap::new(), since: Instant::now() }
    }

    fn rotate(&mut self) {
        if self.since.elapsed() >= REMEMBERED {
            self.previous = std::mem::take(&mut self.current);
            self.since = Instant::now();
        }
    }

    fn get(&mut self, key: &RequestKey) -> Option<&Seen> {
        self.rotate();
        self.current.get(key).or_else(|| self.previous.get(key))
    }

    /// Records `seen` for `key` (nothing beyond [`MAX_REMEMBERED`] a generation).
    fn insert(&mut self, key: RequestKey, seen: Seen) {
        self.rotate();
        if self.current.len() < MAX_REMEMBERED || self.current.contains_key(&key) {
            self.previous.remove(&key);
            self.current.insert(key, seen);
        }
    }

    fn remove(&mut self, key: &RequestKey) {
        self.current.remove(key);
        self.previous.remove(key);
    }
}

/// The listener's shared state.
struct Listener {
    service: Arc<Service>,
    settings: RadiusSettings,
    seen: Mutex<Recent>,
    slots: Arc<Semaphore>,
}

/// Which of the listener's ports a packet came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    /// `listen`: Access-Requests (and Status-Server).
    Authentication,
    /// `accounting_listen`: Accounting-Requests (and Status-Server).
    Accounting,
}

/// Serves RADIUS on `access` (and accounting on `accounting`) until the task is dropped.
pub async fn serve(
    service: Arc<Service>,
    settings: RadiusSettings,
    access: UdpSocket,
    accounting: Option<UdpSocket>,
) {
    let listener = Arc::new(Listener {
        service,
        settings,
        seen: Mutex::new(Recent::new()),
        slots: Arc::new(Semaphore::new(IN_FLIGHT)),
    });
    let accounting = async {
        if let Some(socket) = accounting {
            Arc::clone(&listener).receive(Arc::new(socket), Port::Accounting).await;
        }
    };
    tokio::join!(Arc::clone(&listener).receive(Arc::new(access), Port::Authentication), accounting);
}

impl Listener {
    async fn receive(self: Arc<Self>, socket: Arc<UdpSocket>, port: Port) {
        let mut buffer = vec![0u8; packet::MAX_PACKET_LEN + 1];
        loop {
            let (len, from) = match socket.recv_from(&mut buffer).await {
                Ok(received) => received,
                Err(error) => {
                    tracing::warn!(%error, "RADIUS receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(bytes) = buffer.get(..len).map(<[u8]>::to_vec) else { continue };
            let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else { return };
            let listener = Arc::clone(&self);
            let socket = Arc::clone(&socket);
            tokio::spawn(async move {
                listener.handle(&socket, port, &bytes, from).await;
                drop(slot);
            });
        }
    }

    async fn handle(&self, socket: &UdpSocket, port: Port, bytes: &[u8], from: SocketAddr) {
        let Some(client) = self.settings.client_at(from.ip()) else {
            return self.dropped(None, from, Dropped::UnknownClient).await;
        };
        let Ok(request) = Packet::decode(bytes) else {
            return self.dropped(Some(client), from, Dropped::Malformed).await;
        };
        let secret = client.secret.expose().as_bytes();
        if let Some(why) = unauthentic(client, port, &request) {
            return self.dropped(Some(client), from, why).await;
        }
        let key = (from, request.identifier, request.authenticator);
        if let Some(again) = self.first_sight(key) {
            if let Some(answer) = again {
                send(socket, &answer, from).await;
            }
            return;
        }
        let (code, attributes) = match (port, request.code) {
            (Port::Authentication, Code::AccessRequest) => self.access(client, &request, from).await,
            (Port::Authentication, Code::StatusServer) => (Code::AccessAccept, Vec::new()),
            (Port::Accounting, Code::AccountingRequest) => {
                if let Err(why) = self.accounting(client, &request, from).await {
                    self.forget(key);
                    return self.dropped(Some(client), from, why).await;
                }
                (Code::AccountingResponse, Vec::new())
            }
            (Port::Accounting, Code::StatusServer) => (Code::AccountingResponse, Vec::new()),
            (Port::Authentication, _) => {
                self.forget(key);
                return self.dropped(Some(client), from, Dropped::NotAccessRequest).await;
            }
            (Port::Accounting, _) => {
                self.forget(key);
                return self.dropped(Some(client), from, Dropped::NotAccountingRequest).await;
            }
        };
        let answer = Arc::new(encode_reply(code, &request, &attributes, secret));
        self.remember(key, Arc::clone(&answer));
        send(socket, &answer, from).await;
    }

    /// Records an Accounting-Request; an error when it cannot be (no readable `Acct-Status-Type`,
    /// or the record could not be written: the client resends).
    async fn accounting(
        &self,
        client: &RadiusClient,
        request: &Packet,
        from: SocketAddr,
    ) -> Result<(), Dropped> {
        let status = request
            .integer(attribute::ACCT_STATUS_TYPE)
            .and_then(AccountingStatus::of_value)
            .ok_or(Dropped::NoAccountingStatus)?;
        let record = RadiusAccounting {
            client,
            status,
            username: request.text(attribute::USER_NAME).map(str::to_owned),
            nas_identifier: nas_identifier(request),
            calling_station: calling_station(request),
            session_id: request
                .text(attribute::ACCT_SESSION_ID)
                .map(str::to_owned)
                .filter(|id| id.len() <= 64),
            session_secs: request.integer(attribute::ACCT_SESSION_TIME),
        };
        let caller = Caller { ip: Some(from.ip()), ..Caller::default() };
        self.service.radius_accounting(record, &caller).await.map_err(|error| {
            tracing::warn!(client = %client.name, %error, "RADIUS accounting could not be recorded");
            Dropped::NotRecorded
        })
    }

    /// An Access-Request's answer.
    async fn access(
        &self,
        client: &RadiusClient,
        request: &Packet,
        from: SocketAddr,
    ) -> (Code, Vec<Attribute>) {
        let reject = |text: &str| (Code::AccessReject, vec![text_attribute(attribute::REPLY_MESSAGE, text)]);
        let Some(username) = request.text(attribute::USER_NAME).map(str::to_owned).filter(|u| !u.is_empty())
        else {
            return reject("A user name is needed.");
        };
        let state = request.attribute(attribute::STATE).map(<[u8]>::to_vec);
        let password = match request.password(client.secret.expose().as_bytes()) {
            Some(Ok(password)) => password,
            Some(Err(error)) => return reject(&format!("The password could not be read: {error}.")),
            // An empty answer to a challenge (Enter after approving a push): clients leave the
            // attribute out, as it cannot be empty.
            None if state.is_some() => SecretString::new(String::new()),
            None => return reject("Only PAP (User-Password) is supported."),
        };
        let access = RadiusAccess {
            client,
            username,
            password,
            state,
            nas_identifier: request
                .text(attribute::NAS_IDENTIFIER)
                .filter(|nas| {
                    (1..=MAX_NAS_IDENTIFIER).contains(&nas.len()) && !nas.chars().any(char::is_control)
                })
                .map(str::to_owned),
            calling_station: request
                .text(attribute::CALLING_STATION_ID)
                .and_then(|station| station.parse().ok()),
        };
        let caller = Caller { ip: Some(from.ip()), ..Caller::default() };
        match self.service.radius_access(access, &caller).await {
            Ok(RadiusAnswer::Accept(reply)) => {
                (Code::AccessAccept, reply.iter().map(reply_attribute).collect())
            }
            Ok(RadiusAnswer::Reject(message)) => reject(&message),
            Ok(RadiusAnswer::Challenge { state, message, timeout_secs }) => (
                Code::AccessChallenge,
                vec![
                    Attribute { kind: attribute::STATE, value: state },
                    text_attribute(attribute::REPLY_MESSAGE, &message),
                    seconds_attribute(attribute::SESSION_TIMEOUT, timeout_secs),
                ],
            ),
            Err(error) => {
                tracing::warn!(client = %client.name, %error, "RADIUS request failed");
                reject("The sign-in service is not available; try again.")
            }
        }
    }

    /// Records a request as being answered; for one seen before, `Some(answer)` (none while it
    /// is still being answered).
    fn first_sight(&self, key: RequestKey) -> Option<Option<Arc<Vec<u8>>>> {
        let Ok(mut seen) = self.seen.lock() else { return Some(None) };
        if let Some(entry) = seen.get(&key) {
            return Some(match entry {
                Seen::Working => None,
                Seen::Answered(answer) => Some(Arc::clone(answer)),
            });
        }
        seen.insert(key, Seen::Working);
        None
    }

    fn remember(&self, key: RequestKey, answer: Arc<Vec<u8>>) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(key, Seen::Answered(answer));
        }
    }

    fn forget(&self, key: RequestKey) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(&key);
        }
    }

    async fn dropped(&self, client: Option<&RadiusClient>, from: SocketAddr, why: Dropped) {
        let client = client.map(|c| c.name.as_str());
        if let Err(error) = self.service.radius_dropped(client, from.ip(), why.reason()).await {
            tracing::warn!(%error, "a dropped RADIUS packet could not be audited");
        }
    }
}

async fn send(socket: &UdpSocket, answer: &[u8], to: SocketAddr) {
    if let Err(error) = socket.send_to(answer, to).await {
        tracing::warn!(%error, %to, "RADIUS send failed");
    }
}

/// Why a request from `client` to `port` is not the client's, if it is not: an Access-Request or
/// Status-Server is signed by its Message-Authenticator (required by default); an
/// Accounting-Request by its Request Authenticator (RFC 2866 §3), which covers the whole packet.
fn unauthentic(client: &RadiusClient, port: Port, request: &Packet) -> Option<Dropped> {
    let secret = client.secret.expose().as_bytes();
    if port == Port::Accounting && request.code == Code::AccountingRequest {
        return (!request.accounting_request_authentic(secret)).then_some(Dropped::BadRequestAuthenticator);
    }
    match request.message_authenticator(secret) {
        MessageAuthenticator::Valid => None,
        MessageAuthenticator::Missing if !client.require_message_authenticator => None,
        MessageAuthenticator::Missing => Some(Dropped::MissingMessageAuthenticator),
        MessageAuthenticator::Invalid => Some(Dropped::BadMessageAuthenticator),
    }
}

/// `NAS-Identifier`, when it is short printable text (shown on the phone and in the audit log).
fn nas_identifier(request: &Packet) -> Option<String> {
    request
        .text(attribute::NAS_IDENTIFIER)
        .filter(|nas| (1..=MAX_NAS_IDENTIFIER).contains(&nas.len()) && !nas.chars().any(char::is_control))
        .map(str::to_owned)
}

/// `Calling-Station-Id`, when it is an IP address (a Wi-Fi controller sends the device's MAC).
fn calling_station(request: &Packet) -> Option<std::net::IpAddr> {
    request.text(attribute::CALLING_STATION_ID).and_then(|station| station.parse().ok())
}

/// A user's reply attribute as it travels.
fn reply_attribute(reply: &ReplyAttribute) -> Attribute {
    match reply {
        ReplyAttribute::Class(class) => text_attribute(attribute::CLASS, class),
        ReplyAttribute::FilterId(filter) => text_attribute(attribute::FILTER_ID, filter),
        ReplyAttribute::FramedIpAddress(address) => {
            Attribute { kind: attribute::FRAMED_IP_ADDRESS, value: address.octets().to_vec() }
        }
        ReplyAttribute::FramedPool(pool) => text_attribute(attribute::FRAMED_POOL, pool),
        ReplyAttribute::SessionTimeout(secs) => seconds_attribute(attribute::SESSION_TIMEOUT, *secs),
        ReplyAttribute::IdleTimeout(secs) => seconds_attribute(attribute::IDLE_TIMEOUT, *secs),
        ReplyAttribute::VendorSpecific { vendor, kind, value } => {
            let mut octets = vendor.to_be_bytes().to_vec();
            octets.push(*kind);
            octets.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
            octets.extend_from_slice(value.as_bytes());
            Attribute { kind: attribute::VENDOR_SPECIFIC, value: octets }
        }
    }
}

/// A text attribute (one longer than an attribute holds is split by [`encode_reply`]).
fn text_attribute(kind: u8, text: &str) -> Attribute {
    Attribute { kind, value: text.as_bytes().to_vec() }
}

/// An integer attribute holding seconds.
fn seconds_attribute(kind: u8, secs: u32) -> Attribute {
    Attribute { kind, value: secs.to_be_bytes().to_vec() }
}
