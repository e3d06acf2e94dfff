//! Delivered passcodes on the server: where a delivered token's codes go, and the sender that
//! empties the outbox through the configured gateways.
//!
//! [`Delivery`] is its own object, owned by the service like push. `validate` and enrolment queue
//! messages through `Store::queue_message` in the same transaction as the state that needs them,
//! then call [`Delivery::wake`]; the sender ([`Delivery::run_sender`], one per replica) claims
//! due messages, computes their codes from the sealed seed only now, renders the mode's template
//! and tries the gateways in order, retrying with back-off. Nothing here calls back into the
//! service.
//!
//! | file | what |
//! |---|---|
//! | `sender.rs` | the outbox loop: claim, render, send, record, retry |
//! | `gateway.rs` | one message through a generic HTTP gateway (Kannel, REST providers) |
//! | `twilio.rs` | one message through Twilio's Messages API (or a compatible one); callbacks' signatures |
//! | `smpp.rs` | one message to an SMSC over SMPP 3.4 (a bound session kept open, rusmppc) |
//! | `email.rs` | one message through an SMTP server (STARTTLS or TLS required, lettre) |
//!
//! Voice-token calls go through [`crate::voice`] (over SIP, the prompt loaded here at start-up)
//! or a Twilio-compatible Calls API (`twilio.rs`).

mod email;
mod gateway;
mod sender;
mod smpp;
mod twilio;

use std::sync::Arc;

use futures_util::future::join_all;
use tessera_core::delivery::{EmailAddress, PhoneNumber, Ttl, daycode_period};
use tokio::sync::{Notify, mpsc, watch};

use crate::config::{Config, DeliverySettings, SipSettings, SmsGateway, TwilioVoice, VoiceSettings};
use crate::error::ServiceError;
use crate::keys::ServerKey;
use crate::store::{Channel, DeliveryRow, Store, TokenRow, UserRow};
use crate::voice::prompt::{G711, Prompt};
use crate::voice::sip::{AnyEntry, CallAudio, CallOutcome, CallRequest, Judge};
use crate::wake::outbound_client;
use gateway::{Outgoing, send_http};
use tessera_core::secret::SecretString;
use twilio::signature_matches;
pub use twilio::{VoiceEvent, VoiceStep, twiml};

/// Delivered passcodes: the settings, the gateways' HTTP client and the sender's wake-up.
pub struct Delivery {
    store: Store,
    key: Arc<ServerKey>,
    settings: DeliverySettings,
    service_name: String,
    http: reqwest::Client,
    mailer: Option<email::Mailer>,
    smpp: Vec<smpp::SmppLink>,
    sip_audio: Vec<CallAudio>,
    handed_calls:
        (mpsc::UnboundedSender<DeliveryRow>, std::sync::Mutex<Option<mpsc::UnboundedReceiver<DeliveryRow>>>),
    due: Notify,
    stopping: watch::Sender<bool>,
}

/// What calls over SIP play, in both G.711 codecs, read from the account's prompt at start-up.
fn sip_audio(sip: &SipSettings) -> Result<Vec<CallAudio>, ServiceError> {
    [G711::MuLaw, G711::ALaw]
        .into_iter()
        .map(|codec| Prompt::from_file(&sip.prompt_wav, codec).map(CallAudio::around))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServiceError::InvalidInput(format!("delivery.voice.sip.prompt_wav: {e}")))
}

/// How long each entry's keys may take once a call is answered.
pub const KEYS_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// No `[delivery.voice]` is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoVoice;

/// A callback whose signature is missing or wrong, or that names no configured account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forged;

/// What a provider reported about a message it had accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The gateway's id.
    pub gateway: String,
    /// The provider's id for the message.
    pub message_id: String,
    /// Delivered, or failed and why.
    pub outcome: Result<(), String>,
}

/// No gateway has the id asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoGateway;

/// What a gateway answered to a test message.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct GatewayTest {
    /// The gateway's id (`email` for the mail server).
    pub gateway: String,
    /// Whether it accepted the message.
    pub accepted: bool,
    /// Its id for the message, when it gave one.
    pub message_id: Option<String>,
    /// What it answered (status and body, or the mail server's reply), or why the send failed.
    pub answer: String,
}

/// Why a delivered token has nowhere to send to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoDestination {
    /// Neither the token nor the user has a phone number or address.
    #[error("no {0} is set for this user or token")]
    Missing(&'static str),
    /// The stored number or address does not parse.
    #[error("the stored {0} is not valid")]
    Invalid(&'static str),
    /// The number's country is not in `delivery.country_allowlist`.
    #[error("codes may not be sent to this country")]
    CountryNotAllowed,
}

impl Delivery {
    /// Delivery over the database and the server key, configured by `config`'s `[delivery]`.
    pub fn new(store: Store, key: Arc<ServerKey>, config: &Config) -> Result<Self, ServiceError> {
        let outbound = outbound_client(config.push.ca_file.as_deref()).map_err(ServiceError::InvalidInput)?;
        let http = outbound().build().map_err(|e| ServiceError::InvalidInput(format!("HTTP client: {e}")))?;
        let mailer = config
            .delivery
            .email
            .as_ref()
            .map(email::Mailer::new)
            .transpose()
            .map_err(ServiceError::InvalidInput)?;
        let smpp = config
            .delivery
            .sms_gateways
            .iter()
            .filter_map(|gateway| match gateway {
                SmsGateway::Smpp(smpp) => Some(smpp::SmppLink::new(smpp)),
                _ => None,
            })
            .collect::<Result<_, _>>()
            .map_err(ServiceError::InvalidInput)?;
        let sip_audio = match &config.delivery.voice {
            Some(VoiceSettings::Sip(sip)) => sip_audio(sip)?,
            Some(VoiceSettings::Twilio(_)) | None => Vec::new(),
        };
        Ok(Self {
            store,
            key,
            mailer,
            smpp,
            sip_audio,
            handed_calls: {
                let (sender, receiver) = mpsc::unbounded_channel();
                (sender, std::sync::Mutex::new(Some(receiver)))
            },
            settings: config.delivery.clone(),
            service_name: config.push.service_name.clone(),
            http,
            due: Notify::new(),
            stopping: watch::Sender::new(false),
        })
    }

    /// The `[delivery]` settings.
    pub fn settings(&self) -> &DeliverySettings {
        &self.settings
    }

    /// The name messages show.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// Tells this replica's sender that a message was queued.
    pub fn wake(&self) {
        self.due.notify_one();
    }

    /// Stops the sender after the message it is sending.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
        self.due.notify_one();
    }

    /// Unbinds the SMPP sessions (at shutdown, after the sender stopped).
    pub async fn unbind(&self) {
        join_all(self.smpp.iter().map(smpp::SmppLink::unbind)).await;
    }

    /// Sends a test message (no code) to `to` through the gateway `id` (`email` for the mail
    /// server), now and not through the outbox; what the gateway answered, or why it failed.
    pub async fn test_gateway(&self, id: &str, to: &str) -> Result<GatewayTest, NoGateway> {
        let text = format!("This is a test message from {}. It carries no code.", self.service_name);
        let outgoing =
            Outgoing { to, text: SecretString::new(text), codes: Vec::new(), valid_for: None, subject: None };
        let outcome = if id == "email" {
            let mailer = self.mailer.as_ref().ok_or(NoGateway)?;
            mailer
                .send(&outgoing, &self.service_name)
                .await
                .map(|answer| (answer.clone(), answer.unwrap_or_default()))
        } else {
            let gateway = self.settings.sms_gateways.iter().find(|g| g.id() == id).ok_or(NoGateway)?;
            self.send_sms(gateway, &outgoing).await.map(|accepted| (accepted.message_id, accepted.answer))
        };
        Ok(match outcome {
            Ok((message_id, answer)) => {
                GatewayTest { gateway: id.to_owned(), accepted: true, message_id, answer }
            }
            Err(error) => {
                GatewayTest { gateway: id.to_owned(), accepted: false, message_id: None, answer: error }
            }
        })
    }

    /// Calls `to` now (a SIP URI, or a number at the proxy), lets it ring up to `ring_for`, plays
    /// the prompt and collects up to `keys` keys: what the callee did.
    pub async fn test_call(
        &self,
        to: &str,
        keys: usize,
        ring_for: std::time::Duration,
    ) -> Result<CallOutcome, NoVoice> {
        let request = CallRequest {
            to: to.to_owned(),
            keys_wanted: keys,
            ring_for,
            keys_within: KEYS_WITHIN,
            fraud_key: None,
        };
        self.call(&request, &AnyEntry).await
    }

    /// Places a call over SIP as `request` asks, `judge` deciding what the callee's entries mean
    /// (`NoVoice` unless calls go over SIP).
    pub async fn call(&self, request: &CallRequest, judge: &impl Judge) -> Result<CallOutcome, NoVoice> {
        let Some(VoiceSettings::Sip(account)) = &self.settings.voice else { return Err(NoVoice) };
        Ok(crate::voice::sip::call(account, &self.sip_audio, request, judge).await)
    }

    /// The Twilio-compatible account calls go through, if they do.
    pub fn twilio_voice(&self) -> Option<&TwilioVoice> {
        match &self.settings.voice {
            Some(VoiceSettings::Twilio(twilio)) => Some(twilio),
            Some(VoiceSettings::Sip(_)) | None => None,
        }
    }

    /// A Twilio-compatible provider's webhook for transaction `tx`'s call, if its signature and
    /// account are the configured account's: what it brought.
    pub fn voice_webhook(
        &self,
        step: VoiceStep,
        tx: &str,
        params: &[(String, String)],
        signature: &str,
    ) -> Result<VoiceEvent, Forged> {
        let twilio = self.twilio_voice().ok_or(Forged)?;
        let account = params.iter().find(|(key, _)| key == "AccountSid").map(|(_, value)| value.as_str());
        if account != Some(twilio.account_sid.as_str())
            || !signature_matches(&twilio.auth_token, &step.url(twilio, tx), params, signature)
        {
            return Err(Forged);
        }
        Ok(VoiceEvent::of(step, params))
    }

    /// Asks the Twilio-compatible provider to call `to` for transaction `tx`: its call's sid.
    pub async fn place_twilio_call(&self, to: &str, tx: &str) -> Result<String, String> {
        let twilio = self.twilio_voice().ok_or("calls do not go through a Twilio-compatible provider")?;
        twilio::place_call(twilio, &self.http, to, tx).await
    }

    /// How long a login's call may ring.
    pub fn ring_for(&self) -> std::time::Duration {
        self.settings.voice.as_ref().map_or(std::time::Duration::from_secs(30), VoiceSettings::ring_for)
    }

    /// Whether calls can be placed (`[delivery.voice]` is configured).
    pub fn places_calls(&self) -> bool {
        self.settings.voice.is_some()
    }

    /// The calls the outbox hands over, for whoever places them (taken once; the service does,
    /// as only it can judge what the callee keys).
    pub fn calls_to_place(&self) -> Option<mpsc::UnboundedReceiver<DeliveryRow>> {
        self.handed_calls.1.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    /// A Twilio-compatible status callback, if its signature is the account's: the gateway, the
    /// message's id, and what became of it (`None` for a status that changes nothing, such as
    /// `queued` or `sent`).
    pub fn twilio_report(
        &self,
        params: &[(String, String)],
        signature: &str,
    ) -> Result<Option<Report>, Forged> {
        let value = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
        let account = value("AccountSid").ok_or(Forged)?;
        let gateway = self
            .settings
            .sms_gateways
            .iter()
            .find_map(|g| match g {
                SmsGateway::Twilio(twilio) if twilio.account_sid == account => Some(twilio),
                _ => None,
            })
            .ok_or(Forged)?;
        if !signature_matches(&gateway.auth_token, &gateway.status_callback, params, signature) {
            return Err(Forged);
        }
        let message_id = value("MessageSid").or_else(|| value("SmsSid")).ok_or(Forged)?.to_owned();
        let outcome = match value("MessageStatus").or_else(|| value("SmsStatus")).unwrap_or_default() {
            "delivered" => Some(Ok(())),
            status @ ("undelivered" | "failed") => {
                let code = value("ErrorCode").map(|code| format!(" (error {code})")).unwrap_or_default();
                Some(Err(format!("the carrier reported the message {status}{code}")))
            }
            _ => None,
        };
        Ok(outcome.map(|outcome| Report { gateway: gateway.id.clone(), message_id, outcome }))
    }

    /// One text message through one SMS gateway, whatever its kind.
    async fn send_sms(
        &self,
        gateway: &SmsGateway,
        outgoing: &Outgoing<'_>,
    ) -> Result<gateway::Accepted, String> {
        match gateway {
            SmsGateway::Http(http) => send_http(http, &self.http, outgoing).await,
            SmsGateway::Twilio(twilio) => twilio::send_twilio(twilio, &self.http, outgoing).await,
            SmsGateway::Smpp(smpp) => match self.smpp.iter().find(|link| link.id() == smpp.id) {
                Some(link) => link.send(outgoing).await,
                None => Err(format!("gateway {}: no SMPP session", smpp.id)),
            },
        }
    }

    /// Where `token`'s codes go: its own destination, or its owner's phone or email, checked.
    pub fn destination_of(&self, user: &UserRow, token: &TokenRow) -> Result<String, NoDestination> {
        let channel = token.kind.channel().unwrap_or(Channel::Sms);
        self.destination(user, channel, token.delivery.as_ref().and_then(|d| d.destination.as_deref()))
    }

    /// Where codes on `channel` go: `own` (a token's destination), or the user's phone or email.
    pub fn destination(
        &self,
        user: &UserRow,
        channel: Channel,
        own: Option<&str>,
    ) -> Result<String, NoDestination> {
        let own = own.map(str::to_owned);
        match (channel, own) {
            (Channel::Voice, Some(uri)) if uri.starts_with("sip:") => Ok(uri),
            (Channel::Sms | Channel::Voice, own) => {
                let text =
                    own.or_else(|| user.phone.clone()).ok_or(NoDestination::Missing("phone number"))?;
                let phone = PhoneNumber::parse(&text).map_err(|_| NoDestination::Invalid("phone number"))?;
                let allowed = &self.settings.country_allowlist;
                if !allowed.is_empty()
                    && !allowed.iter().any(|prefix| phone.as_str().starts_with(prefix.as_str()))
                {
                    return Err(NoDestination::CountryNotAllowed);
                }
                Ok(phone.as_str().to_owned())
            }
            (Channel::Email, own) => {
                let text =
                    own.or_else(|| user.email.clone()).ok_or(NoDestination::Missing("email address"))?;
                let address =
                    EmailAddress::parse(&text).map_err(|_| NoDestination::Invalid("email address"))?;
                Ok(address.as_str().to_owned())
            }
        }
    }

    /// The masked form of a destination a login screen may show.
    pub fn masked(channel: Channel, destination: &str) -> String {
        match channel {
            Channel::Voice if destination.starts_with("sip:") => masked_sip_uri(destination),
            Channel::Sms | Channel::Voice => {
                PhoneNumber::parse(destination).map(|p| p.masked()).unwrap_or_else(|_| "your phone".into())
            }
            Channel::Email => {
                EmailAddress::parse(destination).map(|a| a.masked()).unwrap_or_else(|_| "your email".into())
            }
        }
    }

    /// A real-time token's time to live: its own, or the server's default.
    pub fn ttl(&self, token: &TokenRow) -> Ttl {
        token
            .delivery
            .as_ref()
            .and_then(|d| d.ttl_secs)
            .and_then(|secs| Ttl::new(secs).ok())
            .unwrap_or(self.settings.default_ttl)
    }

    /// The Daycode period `now` falls in for `token`.
    pub fn period_at(&self, token: &TokenRow, now: u64) -> u64 {
        let days = token.delivery.as_ref().map_or(1, |d| d.period_days);
        daycode_period(self.settings.daycode.local_day(now), days)
    }
}

/// A SIP URI with all but the last two characters of its user part hidden
/// (`sip:••01@pbx.example`).
fn masked_sip_uri(uri: &str) -> String {
    let rest = uri.trim_start_matches("sip:");
    let Some((user, host)) = rest.split_once('@') else { return "your desk phone".into() };
    let shown: String = user.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
    let hidden = "•".repeat(user.chars().count().saturating_sub(2).clamp(2, 6));
    format!("sip:{hidden}{shown}@{host}")
}
