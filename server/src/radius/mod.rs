//! The RADIUS listener (`[radius] listen`): UDP packets from the declared clients, each read by
//! [`packet`], answered through [`Service::radius_access`], and signed. A packet from an unknown
//! address, one that does not parse, one without a Message-Authenticator from a client that
//! requires it (every client, by default: BlastRADIUS), or one whose Message-Authenticator is
//! wrong is dropped without an answer and audited (at most once a minute per kind and address).
//! A retransmission (same address, identifier and Request Authenticator, RFC 5080 §2.2.2) gets
//! the answer already sent, and while the first is still being answered it is dropped: it never
//! starts a second push or a second text message.

pub mod packet;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_core::secret::SecretString;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

use crate::config::{RadiusClient, RadiusSettings};
use crate::service::{Caller, RadiusAccess, RadiusAnswer, Service};
use packet::{Attribute, Code, MessageAuthenticator, Packet, attribute, encode_reply};

/// How long an answer is kept for retransmissions at least (RFC 5080 suggests the client's whole
/// retry period; clients give up well within this).
const REMEMBERED: Duration = Duration::from_secs(30);
/// Requests answered at once; more wait for a slot (a push held in `auto` mode holds one).
const IN_FLIGHT: usize = 4096;
/// Answers remembered at most in a generation (beyond it, new ones are not remembered).
const MAX_REMEMBERED: usize = 65_536;

/// Why a packet was dropped, as audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dropped {
    UnknownClient,
    Malformed,
    NotAccessRequest,
    MissingMessageAuthenticator,
    BadMessageAuthenticator,
}

impl Dropped {
    fn reason(self) -> &'static str {
        match self {
            Self::UnknownClient => "unknown_client",
            Self::Malformed => "malformed_packet",
            Self::NotAccessRequest => "not_access_request",
            Self::MissingMessageAuthenticator => "missing_message_authenticator",
            Self::BadMessageAuthenticator => "bad_message_authenticator",
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
    socket: UdpSocket,
    seen: Mutex<Recent>,
}

/// Serves RADIUS on `socket` until the task is dropped.
pub async fn serve(service: Arc<Service>, settings: RadiusSettings, socket: UdpSocket) {
    let listener = Arc::new(Listener { service, settings, socket, seen: Mutex::new(Recent::new()) });
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut buffer = vec![0u8; packet::MAX_PACKET_LEN + 1];
    loop {
        let (len, from) = match listener.socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                tracing::warn!(%error, "RADIUS receive failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(bytes) = buffer.get(..len).map(<[u8]>::to_vec) else { continue };
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
        let listener = Arc::clone(&listener);
        tokio::spawn(async move {
            listener.handle(&bytes, from).await;
            drop(slot);
        });
    }
}

impl Listener {
    async fn handle(&self, bytes: &[u8], from: SocketAddr) {
        let Some(client) = self.settings.client_at(from.ip()) else {
            return self.dropped(None, from, Dropped::UnknownClient).await;
        };
        let Ok(request) = Packet::decode(bytes) else {
            return self.dropped(Some(client), from, Dropped::Malformed).await;
        };
        let secret = client.secret.expose().as_bytes();
        match request.message_authenticator(secret) {
            MessageAuthenticator::Valid => {}
            MessageAuthenticator::Missing if !client.require_message_authenticator => {}
            MessageAuthenticator::Missing => {
                return self.dropped(Some(client), from, Dropped::MissingMessageAuthenticator).await;
            }
            MessageAuthenticator::Invalid => {
                return self.dropped(Some(client), from, Dropped::BadMessageAuthenticator).await;
            }
        }
        let key = (from, request.identifier, request.authenticator);
        if let Some(again) = self.first_sight(key) {
            if let Some(answer) = again {
                self.send(&answer, from).await;
            }
            return;
        }
        let (code, attributes) = match request.code {
            Code::AccessRequest => self.access(client, &request, from).await,
            Code::StatusServer => (Code::AccessAccept, Vec::new()),
            _ => {
                self.forget(key);
                return self.dropped(Some(client), from, Dropped::NotAccessRequest).await;
            }
        };
        let answer = Arc::new(encode_reply(code, &request, &attributes, secret));
        self.remember(key, Arc::clone(&answer));
        self.send(&answer, from).await;
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
            nas_identifier: request.text(attribute::NAS_IDENTIFIER).map(str::to_owned),
            calling_station: request.text(attribute::CALLING_STATION_ID).map(str::to_owned),
        };
        let caller = Caller { ip: Some(from.ip()), ..Caller::default() };
        match self.service.radius_access(access, &caller).await {
            Ok(RadiusAnswer::Accept) => (Code::AccessAccept, Vec::new()),
            Ok(RadiusAnswer::Reject(message)) => reject(&message),
            Ok(RadiusAnswer::Challenge { state, message, timeout_secs }) => (
                Code::AccessChallenge,
                vec![
                    Attribute { kind: attribute::STATE, value: state },
                    text_attribute(attribute::REPLY_MESSAGE, &message),
                    Attribute {
                        kind: attribute::SESSION_TIMEOUT,
                        value: timeout_secs.to_be_bytes().to_vec(),
                    },
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

    async fn send(&self, answer: &[u8], to: SocketAddr) {
        if let Err(error) = self.socket.send_to(answer, to).await {
            tracing::warn!(%error, %to, "RADIUS send failed");
        }
    }

    async fn dropped(&self, client: Option<&RadiusClient>, from: SocketAddr, why: Dropped) {
        let client = client.map(|c| c.name.as_str());
        if let Err(error) = self.service.radius_dropped(client, from.ip(), why.reason()).await {
            tracing::warn!(%error, "a dropped RADIUS packet could not be audited");
        }
    }
}

/// A text attribute (cut at a character boundary to fit, with the rest in more attributes).
fn text_attribute(kind: u8, text: &str) -> Attribute {
    Attribute { kind, value: text.as_bytes().to_vec() }
}
