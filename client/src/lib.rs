//! `tessera-client`: what a device (the CLI, the desktop app, the mobile apps) does with a Tessera
//! server: register as a push device, hold the challenge channel open, fetch pending challenges,
//! and send signed answers.
//!
//! The channel is Server-Sent Events with automatic reconnection: each reconnect sends
//! `Last-Event-ID`, so nothing is lost or repeated, and back-off grows to 30 s while the server is
//! unreachable. Every challenge's server signature is checked here, before any caller sees it; a
//! challenge that fails the check is reported as such and never shown as a login request.
//!
//! [`organisation`] signs an app in to an organisation's server and enrols it with no QR code.
//!
//! [`devices`] is the same for a vault's push tokens: keeping a registration, answering with
//! the answer PIN and a fresh TOTP, so every app follows the same rules.

pub mod devices;
pub mod organisation;

use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use tessera_core::error::{Classify, ErrorCode};
use tessera_core::otp::unix_now;
use tessera_core::push::{
    Challenge, Cleartext, Delivery, EnrollmentLink, KeyPair, PublicKey, PushError, RegisterRequest,
    RegisterResponse, SignedAnswer, WakeAddress, WakeUpdate, device_auth_message,
};
use tessera_core::secret::SecretBytes;
use tessera_core::vault::{PushBinding, VaultError};
use tessera_core::wire::{
    API_PREFIX, ErrorBody, PUSH_ANSWER_PATH, PUSH_PENDING_PATH, PUSH_REGISTER_PATH, PUSH_STREAM_PATH,
    PUSH_WAKE_PATH, SERIAL_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// True when a redirect would leave HTTPS for plain HTTP: enrollment codes, device signatures
/// and answers must never travel in the clear because a server (or someone on its path) said so.
fn downgrades(previous: &[reqwest::Url], next: &reqwest::Url) -> bool {
    next.scheme() == "http" && previous.iter().any(|url| url.scheme() == "https")
}

/// Why a request to the server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the server: {0}")]
    Network(String),
    /// The server answered with an error.
    #[error("the server refused: {message} (HTTP {status})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's error class from its error body; `None` when the body had none (a proxy's
        /// page, an older server), and the HTTP status decides.
        code: Option<ErrorCode>,
        /// The server's message.
        message: String,
    },
    /// The server answered something that is not what the protocol says.
    #[error("the server's answer is malformed: {0}")]
    Malformed(String),
    /// A signature or key check failed.
    #[error(transparent)]
    Push(#[from] PushError),
    /// The vault refused (a wrong answer PIN, an unknown token, a failed write).
    #[error(transparent)]
    Vault(Box<VaultError>),
    /// The server registered the device but the vault could not keep it.
    #[error("the device registered but could not be saved ({0}); ask for a new enrollment link")]
    NotKept(Box<VaultError>),
}

impl From<VaultError> for ClientError {
    fn from(error: VaultError) -> Self {
        Self::Vault(Box::new(error))
    }
}

impl Classify for ClientError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Network(_) => ErrorCode::Network,
            Self::Refused { code: Some(code), .. } => *code,
            Self::Refused { status: 401 | 403, .. } => ErrorCode::Denied,
            Self::Refused { status: 404, .. } => ErrorCode::NotFound,
            Self::Refused { status: 409, .. } => ErrorCode::Conflict,
            Self::Refused { status: 410, .. } => ErrorCode::Expired,
            Self::Refused { status: 429, .. } => ErrorCode::RateLimited,
            Self::Refused { status: 500..=599, .. } => ErrorCode::Network,
            Self::Refused { .. } => ErrorCode::InvalidInput,
            Self::Malformed(_) => ErrorCode::Internal,
            Self::Push(e) => e.code(),
            Self::Vault(e) | Self::NotKept(e) => e.code(),
        }
    }
}

pub use tessera_core::wire::{AnswerReceipt, AnswerStatus};

fn http_client() -> Result<reqwest::Client, ClientError> {
    #[cfg(feature = "ring")]
    let _ = rustls::crypto::ring::default_provider().install_default();
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(ClientError::Malformed(
            "no TLS crypto provider is installed in this program (a bug)".into(),
        ));
    }
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if downgrades(attempt.previous(), attempt.url()) {
                attempt.error("the server redirected from HTTPS to plain HTTP")
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .user_agent(concat!("tessera-client/", env!("CARGO_PKG_VERSION")));
    with_trusted_roots(builder)?.build().map_err(|e| ClientError::Network(e.to_string()))
}

/// Elsewhere the operating system's verifier decides which servers to trust. Android's needs the
/// app's Java context handed over first, which a library loaded through JNA cannot do, so there the
/// client trusts Mozilla's root certificates instead.
#[cfg(target_os = "android")]
fn with_trusted_roots(builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, ClientError> {
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| reqwest::Certificate::from_der(der.as_ref()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Network(format!("the built-in root certificates are unreadable: {e}")))?;
    Ok(builder.tls_certs_only(roots))
}

#[cfg(not(target_os = "android"))]
#[allow(clippy::unnecessary_wraps)]
fn with_trusted_roots(builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, ClientError> {
    Ok(builder)
}

/// The wait before reconnect attempt `failures`: doubling from 250 ms up to [`MAX_BACKOFF`], each
/// wait drawn at random from its upper half, so devices dropped together (a server restart) do
/// not all come back in the same instant.
fn backoff(failures: u32) -> Duration {
    let ceiling = Duration::from_millis(250u64 << failures.min(7)).min(MAX_BACKOFF);
    let mut random = [0u8; 2];
    let fraction = match tessera_core::secret::fill_random(&mut random) {
        Ok(()) => f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX),
        Err(_) => 1.0,
    };
    ceiling.mul_f64(0.5 + fraction / 2.0)
}

async fn checked(
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, ClientError> {
    let response = response.map_err(|e| ClientError::Network(e.without_url().to_string()))?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&body) {
        Ok(error) => (Some(error.code), error.message),
        Err(_) => (None, body.chars().take(200).collect()),
    };
    Err(ClientError::Refused { status, code, message })
}

async fn json<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
    response.json().await.map_err(|e| ClientError::Malformed(e.without_url().to_string()))
}

/// Registers this device from an enrollment link: a new key pair is made here and only its
/// public half leaves the device. Returns the key pair and what the server sent back.
///
/// Callers show [`EnrollmentLink::preview`] and ask the person first. A link to another computer
/// over plain HTTP is refused before anything is sent unless `cleartext` says the person accepted
/// that risk.
pub async fn register(
    link: &EnrollmentLink,
    device_name: Option<String>,
    wake: Option<WakeAddress>,
    cleartext: Cleartext,
) -> Result<(KeyPair, RegisterResponse), ClientError> {
    link.check_transport(cleartext)?;
    let key = KeyPair::generate().map_err(|e| ClientError::Malformed(e.to_string()))?;
    let request = RegisterRequest {
        serial: link.serial.clone(),
        code: link.code.clone(),
        device_public_key: key.public(),
        device_name,
        wake,
    };
    let http = http_client()?;
    let response = checked(
        http.post(format!("{}{API_PREFIX}{PUSH_REGISTER_PATH}", link.server)).json(&request).send().await,
    )
    .await?;
    let registered: RegisterResponse = json(response).await?;
    if registered.serial != link.serial {
        return Err(ClientError::Malformed("the server registered another serial".into()));
    }
    Ok((key, registered))
}

/// A registered push device talking to its server.
#[derive(Clone)]
pub struct Device {
    server: String,
    serial: String,
    key: KeyPair,
    server_key: PublicKey,
    http: reqwest::Client,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("server", &self.server)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// What the challenge channel reports.
#[derive(Debug)]
pub enum ChannelEvent {
    /// The channel is (again) open.
    Connected,
    /// The channel dropped or could not open; it retries by itself.
    Disconnected(ClientError),
    /// A login request whose signature and validity checked out.
    Challenge(Delivery),
    /// A message that failed the signature or validity check (never shown to the user).
    Rejected(PushError),
}

type EventStream = Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, String>> + Send>>;

impl Device {
    /// The device of a vault's push binding.
    pub fn new(binding: &PushBinding) -> Result<Self, ClientError> {
        Self::from_parts(&binding.server, &binding.serial, &binding.device_key, binding.server_key)
    }

    /// A device from its parts (for programs without a vault).
    pub fn from_parts(
        server: &str,
        serial: &str,
        device_key: &SecretBytes,
        server_key: PublicKey,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            server: server.trim_end_matches('/').to_owned(),
            serial: serial.to_owned(),
            key: KeyPair::from_seed(device_key)?,
            server_key,
            http: http_client()?,
        })
    }

    /// This device, using `other`'s connection pool: a program with several push tokens (or a
    /// test with thousands) keeps one HTTP client and its TLS settings for all of them.
    #[must_use]
    pub fn share_connections_with(mut self, other: &Device) -> Self {
        self.http = other.http.clone();
        self
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The push token's serial.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    fn signed(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let timestamp = unix_now();
        let signature = self.key.sign(&device_auth_message(&self.serial, timestamp));
        request
            .header(SERIAL_HEADER, &self.serial)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
    }

    /// Checks a delivery's server signature and validity now.
    pub fn verify(&self, delivery: &Delivery) -> Result<(), PushError> {
        let challenge = delivery.challenge.verify(&self.server_key, unix_now())?;
        if challenge.serial != self.serial {
            return Err(PushError::BadSignature);
        }
        Ok(())
    }

    /// The pending challenges after stream position `after`, waiting up to `wait` for one
    /// (long-poll). Each one's signature is checked; any that fails makes the call fail.
    pub async fn pending(&self, after: u64, wait: Duration) -> Result<Vec<Delivery>, ClientError> {
        let url =
            format!("{}{API_PREFIX}{PUSH_PENDING_PATH}?after={after}&wait={}", self.server, wait.as_secs());
        let request = self.signed(self.http.get(url)).timeout(wait + Duration::from_secs(15));
        let deliveries: Vec<Delivery> = json(checked(request.send().await).await?).await?;
        for delivery in &deliveries {
            self.verify(delivery)?;
        }
        Ok(deliveries)
    }

    /// The pending challenge of a transaction, if the server still has it for this device.
    pub async fn find(&self, transaction_id: &str) -> Result<Option<Challenge>, ClientError> {
        Ok(self
            .pending(0, Duration::ZERO)
            .await?
            .into_iter()
            .map(|d| d.challenge.challenge)
            .find(|c| c.transaction_id == transaction_id))
    }

    /// Sends a signed answer.
    pub async fn answer(&self, answer: SignedAnswer) -> Result<AnswerReceipt, ClientError> {
        let request = self
            .http
            .post(format!("{}{API_PREFIX}{PUSH_ANSWER_PATH}", self.server))
            .json(&answer)
            .timeout(Duration::from_secs(20));
        json(checked(request.send().await).await?).await
    }

    /// Tells the server where FCM or APNs can wake this device (their tokens rotate: report
    /// each new one), or, with `None`, to stop waking it.
    pub async fn set_wake(&self, wake: Option<WakeAddress>) -> Result<(), ClientError> {
        let request = self
            .signed(self.http.post(format!("{}{API_PREFIX}{PUSH_WAKE_PATH}", self.server)))
            .json(&WakeUpdate { wake })
            .timeout(Duration::from_secs(20));
        checked(request.send().await).await.map(drop)
    }

    /// The key pair that signs this device's answers.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    async fn open_stream(&self, after: u64) -> Result<EventStream, ClientError> {
        let request = self
            .signed(self.http.get(format!("{}{API_PREFIX}{PUSH_STREAM_PATH}", self.server)))
            .header("Accept", "text/event-stream")
            .header("Last-Event-ID", after.to_string());
        let response = checked(request.send().await).await?;
        Ok(Box::pin(response.bytes_stream().eventsource().map(|event| event.map_err(|e| e.to_string()))))
    }

    /// The challenge channel, from stream position `after` on: connects, reconnects with
    /// growing back-off, resumes where it left off, and yields each verified challenge once.
    pub fn channel(self, after: u64) -> impl Stream<Item = ChannelEvent> + Send {
        struct State {
            device: Device,
            after: u64,
            events: Option<EventStream>,
            failures: u32,
        }
        let start = State { device: self, after, events: None, failures: 0 };
        futures_util::stream::unfold(start, |mut state| async move {
            loop {
                let Some(events) = state.events.as_mut() else {
                    if state.failures > 0 {
                        tokio::time::sleep(backoff(state.failures)).await;
                    }
                    match state.device.open_stream(state.after).await {
                        Ok(events) => {
                            state.events = Some(events);
                            state.failures = 0;
                            return Some((ChannelEvent::Connected, state));
                        }
                        Err(error) => {
                            state.failures = state.failures.saturating_add(1);
                            return Some((ChannelEvent::Disconnected(error), state));
                        }
                    }
                };
                match events.next().await {
                    Some(Ok(event)) if event.event == "challenge" => {
                        let delivery: Delivery = match serde_json::from_str(&event.data) {
                            Ok(delivery) => delivery,
                            Err(error) => {
                                return Some((
                                    ChannelEvent::Disconnected(ClientError::Malformed(error.to_string())),
                                    state,
                                ));
                            }
                        };
                        if delivery.seq <= state.after {
                            continue;
                        }
                        state.after = delivery.seq;
                        return Some(match state.device.verify(&delivery) {
                            Ok(()) => (ChannelEvent::Challenge(delivery), state),
                            Err(error) => (ChannelEvent::Rejected(error), state),
                        });
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => {
                        state.events = None;
                        state.failures = 1;
                        return Some((ChannelEvent::Disconnected(ClientError::Network(error)), state));
                    }
                    None => {
                        state.events = None;
                        state.failures = 1;
                        let closed = ClientError::Network("the server closed the channel".into());
                        return Some((ChannelEvent::Disconnected(closed), state));
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_class_comes_from_the_servers_body_and_the_status_only_without_one() {
        let refused = |status, code| ClientError::Refused { status, code, message: String::new() };
        assert_eq!(refused(409, Some(ErrorCode::Conflict)).code(), ErrorCode::Conflict);
        assert_eq!(refused(409, None).code(), ErrorCode::Conflict, "an older server's 409 is a conflict too");
        assert_eq!(refused(503, Some(ErrorCode::RateLimited)).code(), ErrorCode::RateLimited);
        assert_eq!(refused(410, None).code(), ErrorCode::Expired);
        assert_eq!(
            refused(502, None).code(),
            ErrorCode::Network,
            "a proxy's page: the server is out of reach"
        );
        assert_eq!(refused(400, None).code(), ErrorCode::InvalidInput);
    }

    #[test]
    fn only_redirects_from_https_to_http_are_downgrades() {
        let url = |text: &str| reqwest::Url::parse(text).unwrap();
        assert!(downgrades(&[url("https://a.example/x")], &url("http://a.example/x")));
        assert!(downgrades(
            &[url("https://a.example/"), url("https://b.example/")],
            &url("http://c.example/")
        ));
        assert!(!downgrades(&[url("https://a.example/")], &url("https://b.example/")));
        assert!(!downgrades(&[url("http://127.0.0.1:8480/")], &url("http://127.0.0.1:8481/")));
    }

    #[tokio::test]
    async fn a_cleartext_link_to_another_computer_is_refused_before_anything_is_sent() {
        let link = EnrollmentLink::parse(
            "tessera://enroll?v=1&server=http%3A%2F%2F192.0.2.1%3A9&serial=PUSH-A&code=AAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .unwrap();
        let refused = register(&link, None, None, Cleartext::Refuse).await;
        assert!(
            matches!(refused, Err(ClientError::Push(PushError::Cleartext(ref server))) if server == "http://192.0.2.1:9"),
            "{refused:?}"
        );
    }

    #[test]
    fn reconnect_waits_grow_stay_bounded_and_spread() {
        let waits: Vec<Duration> = (0..64).map(|_| backoff(1)).collect();
        assert!(waits.iter().all(|w| (Duration::from_millis(250)..=Duration::from_millis(500)).contains(w)));
        assert!(waits.iter().any(|w| *w != waits[0]), "waits are spread, not all equal");
        assert!(backoff(5) >= Duration::from_secs(4));
        assert!(backoff(40) <= MAX_BACKOFF);
    }
}
