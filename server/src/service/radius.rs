//! Signing in through RADIUS: what an Access-Request means in terms of [`Service::validate`], and
//! how a second factor that needs a second request (a push to approve, a code sent, a passcode to
//! type) becomes an Access-Challenge. A challenge's `State` is 16 random octets whose SHA-256 is
//! stored with the user, the client and the push or sent-code transaction, so any replica takes the
//! next request; it works once and for a few minutes. The password is checked in the first request
//! only: the `State` proves it, as a push transaction's id does for `/api/v1/validate`. After a
//! push challenge, Enter completes the approved push and anything typed is taken as a passcode (or
//! a keyword, `sms`, for a code by text message instead). An Access-Accept carries the user's
//! reply attributes.

use std::net::IpAddr;
use std::time::Duration;

use tessera_core::secret::{SecretString, fill_random};

use super::validate::{ValidateRequest, ValidateResponse, ValidationResult, Way};
use super::voice::call_prompt;
use super::{Caller, Door, Service, ServiceError, radius_actor};
use crate::clock::now_i64;
use crate::config::{RadiusClient, RadiusMode};
use crate::input::{check_name, sentence};
use crate::keys::{KeyError, credential_hash};
use crate::store::{Channel, RadiusState, ReplyAttribute};

/// How long an Access-Challenge's `State` works when the validation gave no expiry (a passcode to
/// type).
const PASSCODE_CHALLENGE_SECS: i64 = 120;
/// The longest a `State` works, however long the push or code does.
const MAX_CHALLENGE_SECS: i64 = 300;
/// Passcode digits taken from the end of a single-field `User-Password`.
const SINGLE_FIELD_DIGITS: usize = 6;

/// An Access-Request, as the listener read it.
pub struct RadiusAccess<'a> {
    /// The client it came from.
    pub client: &'a RadiusClient,
    /// `User-Name`.
    pub username: String,
    /// `User-Password`, revealed.
    pub password: SecretString,
    /// `State`, when the request answers a challenge.
    pub state: Option<Vec<u8>>,
    /// `NAS-Identifier`: the service shown on the phone.
    pub nas_identifier: Option<String>,
    /// `Calling-Station-Id`, when it is an IP address (a Wi-Fi controller's is the device's MAC
    /// address): where the user connects from, shown on the phone.
    pub calling_station: Option<IpAddr>,
}

/// What the listener answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RadiusAnswer {
    /// Access-Accept, with the user's reply attributes.
    Accept(Vec<ReplyAttribute>),
    /// Access-Reject, with the text for the user.
    Reject(String),
    /// Access-Challenge: the user does what `message` says and the client sends `state` back.
    Challenge {
        /// The new `State`.
        state: Vec<u8>,
        /// `Reply-Message`.
        message: String,
        /// `Session-Timeout`: seconds the challenge works.
        timeout_secs: u32,
    },
}

impl RadiusAccess<'_> {
    /// The door this request comes through (`password_proved` once a `State` vouches for it).
    fn door(&self, password_proved: bool) -> Door<'_> {
        Door::Radius {
            client: &self.client.name,
            nas: self.nas_identifier.as_deref(),
            shows_number: self.client.mode == RadiusMode::Challenge,
            password_proved,
        }
    }

    /// The validation this request asks for, with the NAS as the service and the calling station
    /// as the user's address.
    fn request(
        &self,
        password: Option<SecretString>,
        passcode: Option<SecretString>,
        transaction_id: Option<String>,
    ) -> ValidateRequest {
        ValidateRequest {
            username: self.username.clone(),
            password,
            passcode,
            transaction_id,
            client_ip: self.calling_station.map(|ip| ip.to_string()),
            user_agent: None,
            service: self.nas_identifier.clone(),
        }
    }
}

impl Service {
    /// Answers an Access-Request from `access.client`.
    pub async fn radius_access(
        &self,
        access: RadiusAccess<'_>,
        caller: &Caller<'_>,
    ) -> Result<RadiusAnswer, ServiceError> {
        let caller = Caller { door: access.door(false), ..caller.clone() };
        match access.state.clone() {
            None => self.radius_first(&access, &caller).await,
            Some(state) => self.radius_next(&access, &state, &caller).await,
        }
    }

    /// The first request: the password (and in single-field mode the passcode after it).
    async fn radius_first(
        &self,
        access: &RadiusAccess<'_>,
        caller: &Caller<'_>,
    ) -> Result<RadiusAnswer, ServiceError> {
        let (password, passcode) = if access.client.single_field {
            split_single_field(&access.password)
        } else {
            (access.password.clone(), SecretString::new(String::new()))
        };
        let password = Some(password).filter(|password| !password.expose().is_empty());
        let response = self.validate(access.request(password, Some(passcode), None), caller).await?;
        let waits = response.result == ValidationResult::Challenge
            && response.channel.is_none()
            && access.client.mode == RadiusMode::Auto;
        if let Some(transaction_id) = response.transaction_id.clone().filter(|_| waits) {
            return self.radius_push_wait(access, transaction_id, caller).await;
        }
        self.radius_answer(access, response).await
    }

    /// A request with a `State`: the code that was sent or asked for, or Enter after a push.
    async fn radius_next(
        &self,
        access: &RadiusAccess<'_>,
        state: &[u8],
        caller: &Caller<'_>,
    ) -> Result<RadiusAnswer, ServiceError> {
        let hash = credential_hash(&data_encoding::HEXLOWER.encode(state));
        let taken = self.store.take_radius_state(&hash, now_i64()).await?;
        let ours =
            taken.filter(|found| found.username == access.username && found.client == access.client.name);
        let Some(found) = ours else {
            return Ok(RadiusAnswer::Reject(sentence("this sign-in has ended: start again")));
        };
        match found.transaction_id {
            Some(transaction_id) if found.push && access.password.expose().is_empty() => {
                self.radius_push_wait(access, transaction_id, caller).await
            }
            transaction_id => {
                let transaction_id = transaction_id.filter(|_| !found.push);
                let request = access.request(None, Some(access.password.clone()), transaction_id);
                let response =
                    self.validate(request, &Caller { door: access.door(true), ..caller.clone() }).await?;
                self.radius_answer(access, response).await
            }
        }
    }

    /// Waits for the phone's answer to push `transaction_id` (up to the client's `auto_wait_secs`),
    /// then completes it: accepted, refused, or still waiting (another challenge).
    async fn radius_push_wait(
        &self,
        access: &RadiusAccess<'_>,
        transaction_id: String,
        caller: &Caller<'_>,
    ) -> Result<RadiusAnswer, ServiceError> {
        let wait = Duration::from_secs(access.client.auto_wait_secs);
        self.push.transaction_status(&transaction_id, wait, None).await?;
        let request = access.request(None, None, Some(transaction_id));
        let response = self.validate(request, caller).await?;
        self.radius_answer(access, response).await
    }

    /// A validation's answer as RADIUS says it; a challenge gets a new `State`.
    async fn radius_answer(
        &self,
        access: &RadiusAccess<'_>,
        response: ValidateResponse,
    ) -> Result<RadiusAnswer, ServiceError> {
        match response.result {
            ValidationResult::Accept => {
                let user = self.store.user(&access.username).await?;
                Ok(RadiusAnswer::Accept(user.map(|user| user.radius_reply).unwrap_or_default()))
            }
            ValidationResult::Reject => Ok(RadiusAnswer::Reject(sentence(&response.message))),
            ValidationResult::Challenge => {
                let push = matches!(response.channel, None | Some(Channel::Voice))
                    && response.transaction_id.is_some();
                let now = now_i64();
                let expires_at = response
                    .expires_at
                    .unwrap_or(now + PASSCODE_CHALLENGE_SECS)
                    .min(now + MAX_CHALLENGE_SECS);
                let mut state = [0u8; 16];
                fill_random(&mut state).map_err(|e| KeyError::Random(e.to_string()))?;
                let row = RadiusState {
                    state_hash: credential_hash(&data_encoding::HEXLOWER.encode(&state)),
                    username: access.username.clone(),
                    client: access.client.name.clone(),
                    transaction_id: response.transaction_id.clone(),
                    push,
                    expires_at,
                };
                self.store.put_radius_state(&row).await?;
                let said = call_prompt(&response, true).unwrap_or_else(|| response.message.clone());
                let message = if push {
                    format!("{} Then press Enter{}.", sentence(&said), other_ways(&response))
                } else {
                    sentence(&said)
                };
                let timeout_secs = u32::try_from((expires_at - now).max(1)).unwrap_or(u32::MAX);
                Ok(RadiusAnswer::Challenge { state: state.to_vec(), message, timeout_secs })
            }
        }
    }
}

/// After a push challenge: what else the user may type at the prompt.
fn other_ways(response: &ValidateResponse) -> String {
    let keywords: Vec<&str> = response
        .ways
        .iter()
        .flatten()
        .filter_map(|way| match way {
            Way::Push => None,
            Way::Sms => Some("sms for a code by text message"),
            Way::Email => Some("email for a code by email"),
            Way::Voice => Some("call for a phone call"),
        })
        .collect();
    match keywords.as_slice() {
        [] => ", or type a passcode instead".to_owned(),
        ways => format!(", or type a passcode, or {}", ways.join(", or ")),
    }
}

/// A single-field `User-Password`: the password, then the passcode in its last six digits (all of
/// it is the passcode when it is only digits and at most six long, for users without a password).
fn split_single_field(field: &SecretString) -> (SecretString, SecretString) {
    let text = field.expose();
    let digits = text.chars().rev().take_while(char::is_ascii_digit).count();
    if digits < SINGLE_FIELD_DIGITS || text.len() <= SINGLE_FIELD_DIGITS {
        return (SecretString::new(String::new()), field.clone());
    }
    let (password, passcode) = text.split_at(text.len() - SINGLE_FIELD_DIGITS);
    (SecretString::new(password.to_owned()), SecretString::new(passcode.to_owned()))
}

/// What an Accounting-Request reports (RFC 2866 §5.1, `Acct-Status-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountingStatus {
    /// A session started.
    Start,
    /// A session ended.
    Stop,
    /// A session is still going.
    InterimUpdate,
    /// The client (re)started: sessions it had are gone.
    AccountingOn,
    /// The client is stopping.
    AccountingOff,
}

impl AccountingStatus {
    /// The status an `Acct-Status-Type` value stands for.
    pub fn of_value(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::Start),
            2 => Some(Self::Stop),
            3 => Some(Self::InterimUpdate),
            7 => Some(Self::AccountingOn),
            8 => Some(Self::AccountingOff),
            _ => None,
        }
    }

    /// Its name in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::InterimUpdate => "interim_update",
            Self::AccountingOn => "accounting_on",
            Self::AccountingOff => "accounting_off",
        }
    }
}

/// An Accounting-Request, as the listener read it.
pub struct RadiusAccounting<'a> {
    /// The client it came from.
    pub client: &'a RadiusClient,
    /// What it reports.
    pub status: AccountingStatus,
    /// `User-Name`.
    pub username: Option<String>,
    /// `NAS-Identifier`.
    pub nas_identifier: Option<String>,
    /// `Calling-Station-Id`, when it is an IP address.
    pub calling_station: Option<IpAddr>,
    /// `Acct-Session-Id`.
    pub session_id: Option<String>,
    /// `Acct-Session-Time`: seconds the session lasted.
    pub session_secs: Option<u32>,
}

impl Service {
    /// Records an Accounting-Request: a session's start and stop, and a client turning accounting
    /// on or off, in the audit log (`radius.accounting`, the status as its reason) and the server
    /// log; an interim update only in the server log (they come every few minutes per session).
    pub async fn radius_accounting(
        &self,
        record: RadiusAccounting<'_>,
        caller: &Caller<'_>,
    ) -> Result<(), ServiceError> {
        let username = record.username.filter(|name| check_name("username", name).is_ok());
        tracing::info!(
            client = %record.client.name,
            nas = record.nas_identifier.as_deref(),
            username = username.as_deref(),
            status = record.status.as_str(),
            session_id = record.session_id.as_deref(),
            session_secs = record.session_secs,
            "RADIUS accounting"
        );
        if record.status == AccountingStatus::InterimUpdate {
            return Ok(());
        }
        let actor = radius_actor(&record.client.name, record.nas_identifier.as_deref());
        let ip = record.calling_station.or(caller.ip).map(|ip| ip.to_string());
        let audit = crate::store::NewAudit {
            at_ms: crate::clock::unix_now_ms(),
            actor: &actor,
            action: "radius.accounting",
            username: username.as_deref(),
            serial: None,
            client_ip: ip.as_deref(),
            result: crate::store::AuditResult::Ok,
            reason: Some(record.status.as_str()),
        };
        self.store.audit(&audit).await?;
        Ok(())
    }

    /// Deletes RADIUS challenges that ran out; returns how many.
    pub async fn prune_radius_states(&self) -> Result<u64, ServiceError> {
        Ok(self.store.prune_radius_states(now_i64()).await?)
    }

    /// Audits a RADIUS packet dropped without an answer (at most once a minute per reason,
    /// address and client).
    pub async fn radius_dropped(
        &self,
        client: Option<&str>,
        ip: IpAddr,
        reason: &'static str,
    ) -> Result<(), ServiceError> {
        if !self.limiter.audit_refusal(reason, Some(ip), client.unwrap_or_default()) {
            return Ok(());
        }
        let actor = client.map_or_else(|| "radius".to_owned(), |client| radius_actor(client, None));
        let ip = ip.to_string();
        let audit = crate::store::NewAudit {
            at_ms: crate::clock::unix_now_ms(),
            actor: &actor,
            action: "radius.drop",
            username: None,
            serial: None,
            client_ip: Some(&ip),
            result: crate::store::AuditResult::Reject,
            reason: Some(reason),
        };
        self.store.audit(&audit).await?;
        Ok(())
    }
}
