//! The self-service portal's sign-in and sessions. Signing in is [`Service::validate`] through
//! the portal's door, nothing else: rate limits, lockout, `-nopush`, keywords, push, sent codes,
//! temporary passcodes and their audit records behave exactly as for `/api/v1/validate`. What the
//! portal adds is the session: a random 256-bit id the browser keeps in a cookie, stored only as
//! its SHA-256 so any replica can find it, renewed at every change of stage (against fixation), and
//! ended by idle and absolute timeouts. Forms carry a token derived from the session id, which a
//! page from another site cannot read.

use tessera_core::secret::SecretString;

use super::validate::{ValidateRequest, ValidateResponse, ValidationResult};
use super::voice::call_prompt;
use super::{Caller, DeliveryChoice, Door, NewDevice, Service, ServiceError, TokenKind};
use crate::clock::now_i64;
use crate::config::{PortalSettings, SecondFactor};
use crate::delivery::Delivery;
use crate::keys::{KeyError, credential_hash, new_key};
use crate::store::{
    AuditFilter, AuditResult, Channel, NewAudit, NewPortalSession, PortalSessionRow, SessionStage, UserRow,
};
use tessera_core::wire::{SignInAnswer, SignInRequest, SignInResult};

/// Why a sign-in with an allowed password and code is refused all the same.
const FACTOR_NOT_ALLOWED: &str =
    "this kind of token cannot sign in to the portal: use another, or ask the help desk";
/// Sign-ins shown on the portal's first page.
const RECENT_SIGN_INS: i64 = 10;
/// A session's last-seen time is written at most this often (seconds), and at least four times
/// per idle period.
const TOUCH_EVERY_SECS: i64 = 60;

/// A portal session's id, as the browser's cookie carries it: 64 lower-case hex digits.
pub struct SessionId(SecretString);

impl SessionId {
    fn new() -> Result<Self, KeyError> {
        new_key("").map(Self)
    }

    /// The id a cookie holds, when it has the shape of one.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(SecretString::new(text.to_owned())))
    }

    /// The id, for the cookie.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    fn hash(&self) -> String {
        credential_hash(self.0.expose())
    }

    /// The token every form of this session carries: derived from the id (which only this
    /// browser holds), and telling nothing about it.
    pub fn form_token(&self) -> String {
        credential_hash(&format!("tessera-portal-form:{}", self.0.expose()))
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId([REDACTED])")
    }
}

/// A live portal session.
#[derive(Debug)]
pub struct PortalSession {
    id: SessionId,
    row: PortalSessionRow,
}

impl PortalSession {
    /// The user's name.
    pub fn username(&self) -> &str {
        &self.row.username
    }

    /// Where it stands.
    pub fn stage(&self) -> SessionStage {
        self.row.stage
    }

    /// What the page asks while a challenge is awaited.
    pub fn prompt(&self) -> Option<&str> {
        self.row.prompt.as_deref()
    }

    /// The push or sent-code challenge awaited.
    pub fn transaction_id(&self) -> Option<&str> {
        self.row.transaction_id.as_deref()
    }

    /// Whether a form's token is this session's.
    pub fn accepts_form_token(&self, token: &str) -> bool {
        crate::keys::secrets_match(token, &self.id.form_token())
    }

    /// This session's form token.
    pub fn form_token(&self) -> String {
        self.id.form_token()
    }

    /// Refuses a session whose second factor is still awaited: only a signed-in session may see
    /// or change the user's devices.
    pub(super) fn signed_in(&self) -> Result<(), ServiceError> {
        match self.row.stage {
            SessionStage::SignedIn => Ok(()),
            SessionStage::AwaitingApproval | SessionStage::AwaitingCode => {
                Err(ServiceError::Unauthorized("finish signing in first".into()))
            }
        }
    }

    /// The user's row id.
    pub(super) fn user_id(&self) -> i64 {
        self.row.user_id
    }

    /// Whether the user proved a second factor within the last `step_up_secs` before `now`.
    pub(super) fn factor_is_fresh(&self, now: i64, step_up_secs: u64) -> bool {
        self.row.factor_at.is_some_and(|at| now - at <= i64::try_from(step_up_secs).unwrap_or(i64::MAX))
    }

    /// Whether the last second factor proved was a temporary passcode (which cannot get another).
    pub fn proved_with_temporary_passcode(&self) -> bool {
        self.row.factor_kind == Some(TokenKind::Temp)
    }
}

/// How a step of signing in ended.
#[derive(Debug)]
pub enum SignIn {
    /// Both factors proved: the browser gets this new session id.
    SignedIn(SessionId),
    /// The password was right and a push or a sent code is awaited: the browser gets this
    /// session id, whose page shows what to do.
    Challenge(SessionId),
    /// The password was right and a voice token's call is on its way: the browser gets this
    /// session id and the code to show (kept out of the database, which holds only its MAC).
    Call(SessionId, DisplayCode),
    /// Not yet: the page asks again with this text (a passcode after `-nopush`, a push still
    /// pending).
    Again(String),
    /// Refused, with the text to show.
    Refused(String),
}

/// How proving a second factor again (step-up) went.
#[derive(Debug)]
pub enum StepUpAnswer {
    /// Proved: sensitive actions are open for `[portal] step_up_secs`.
    Fresh,
    /// A push or a sent code is awaited: the page shows `prompt` and posts `transaction_id` back.
    Waiting {
        /// The challenge to complete.
        transaction_id: String,
        /// What to do.
        prompt: String,
        /// A sent code is awaited (else a push approval).
        awaiting_code: bool,
    },
    /// Not proved; the text says why.
    Refused(String),
}

/// What the signed-in user sees first.
#[derive(Debug)]
pub struct PortalOverview {
    /// Their devices and tokens, oldest first.
    pub devices: Vec<DeviceView>,
    /// Their latest sign-ins, newest first.
    pub sign_ins: Vec<SignInView>,
    /// Where their code goes when they give only their password.
    pub delivery: DeliveryChoice,
}

/// One of the user's tokens, as the portal shows it.
#[derive(Debug)]
pub struct DeviceView {
    /// Its serial.
    pub serial: String,
    /// What kind of token it is.
    pub kind: TokenKind,
    /// Its name: the device's, or the description given at enrolment.
    pub name: Option<String>,
    /// Unix seconds.
    pub added_at: i64,
    /// Unix seconds of its last accepted code.
    pub last_used_at: Option<i64>,
    /// Where its codes go, masked (SMS and email tokens).
    pub destination: Option<String>,
    /// Whether it accepts codes.
    pub enabled: bool,
    /// Added and not proved yet: given up after this (Unix seconds).
    pub pending_until: Option<i64>,
    /// Pending: the serial of the device it replaces once proved.
    pub replaces: Option<String>,
}

/// A past sign-in, from the audit log.
#[derive(Debug)]
pub struct SignInView {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Whether it went through (a challenge counts as neither).
    pub result: AuditResult,
    /// From where.
    pub client_ip: Option<String>,
    /// Through which door: `portal`, `validate`, or an application's name.
    pub via: String,
}

impl Service {
    /// The portal's settings.
    pub fn portal(&self) -> &PortalSettings {
        &self.portal
    }

    /// Signs in with the form's credentials, through [`Service::validate`].
    pub async fn portal_sign_in(
        &self,
        request: SignInRequest,
        caller: &Caller<'_>,
    ) -> Result<SignIn, ServiceError> {
        let username = request.username.clone();
        let response = self.validate_at_portal(request, caller).await?;
        match response.result {
            ValidationResult::Accept => {
                self.signed_in(&username, response.serial.as_deref(), None, caller).await
            }
            ValidationResult::Challenge => match response.transaction_id.clone() {
                Some(transaction_id) => {
                    let stage = match response.channel {
                        Some(Channel::Voice) | None => SessionStage::AwaitingApproval,
                        Some(_) => SessionStage::AwaitingCode,
                    };
                    let shown = response.display_code.clone();
                    let prompt = call_prompt(&response, false).unwrap_or_else(|| response.message.clone());
                    let Some(user) = self.store.user(&username).await? else {
                        return Ok(SignIn::Refused(response.message));
                    };
                    let id = SessionId::new()?;
                    let now = now_i64();
                    let session = NewPortalSession {
                        transaction_id: Some(&transaction_id),
                        prompt: Some(&prompt),
                        factor_at: None,
                        stage,
                        ..self.new_session(&id, user.id, now, caller)
                    };
                    self.store.start_portal_session(&session, None, None).await?;
                    Ok(match shown {
                        Some(code) => {
                            let expires_at = response.expires_at.unwrap_or(now);
                            SignIn::Call(id, DisplayCode { code, expires_at, transaction_id })
                        }
                        None => SignIn::Challenge(id),
                    })
                }
                None => Ok(SignIn::Again(response.message)),
            },
            ValidationResult::Reject => Ok(SignIn::Refused(response.message)),
        }
    }

    /// Completes a session's challenge: the push's answer, or the code that was sent (`passcode`).
    pub async fn portal_complete(
        &self,
        session: &PortalSession,
        passcode: Option<SecretString>,
        caller: &Caller<'_>,
    ) -> Result<SignIn, ServiceError> {
        let Some(transaction_id) = session.transaction_id().filter(|_| session.stage().is_challenge()) else {
            return Ok(SignIn::Refused("there is nothing to approve: sign in again".into()));
        };
        let request = SignInRequest {
            username: session.username().to_owned(),
            password: None,
            passcode,
            transaction_id: Some(transaction_id.to_owned()),
            registration_code: None,
        };
        let response = self.validate_at_portal(request, caller).await?;
        match response.result {
            ValidationResult::Accept => {
                self.signed_in(session.username(), response.serial.as_deref(), Some(&session.id), caller)
                    .await
            }
            ValidationResult::Challenge => Ok(SignIn::Again(response.message)),
            ValidationResult::Reject => {
                self.store.end_portal_session(&session.id.hash(), None).await?;
                Ok(SignIn::Refused(response.message))
            }
        }
    }

    /// Proves a second factor again within a session (before deleting or replacing a device):
    /// the password and a passcode, or an empty passcode for a push or a sent code, completed by
    /// posting its `transaction_id` back, all through [`Service::validate`]. Once proved,
    /// `session` says so at once.
    pub async fn portal_step_up(
        &self,
        session: &mut PortalSession,
        password: Option<SecretString>,
        passcode: Option<SecretString>,
        transaction_id: Option<String>,
        caller: &Caller<'_>,
    ) -> Result<StepUpAnswer, ServiceError> {
        session.signed_in()?;
        let request = SignInRequest {
            username: session.username().to_owned(),
            password: password.filter(|_| transaction_id.is_none()),
            passcode,
            transaction_id,
            registration_code: None,
        };
        let response = self.validate_at_portal(request, caller).await?;
        Ok(match (response.result, response.transaction_id) {
            (ValidationResult::Accept, _) => {
                let now = now_i64();
                let kind = match response.serial.as_deref() {
                    Some(serial) => self.store.token(serial).await?.map(|token| token.kind),
                    None => None,
                };
                self.store.refresh_portal_factor(&session.id.hash(), now, kind).await?;
                session.row.factor_at = Some(now);
                session.row.factor_kind = kind;
                StepUpAnswer::Fresh
            }
            (ValidationResult::Challenge, Some(transaction_id)) => StepUpAnswer::Waiting {
                transaction_id,
                prompt: response.message,
                awaiting_code: response.channel.is_some_and(|channel| channel != Channel::Voice),
            },
            (ValidationResult::Challenge, None) | (ValidationResult::Reject, _) => {
                StepUpAnswer::Refused(response.message)
            }
        })
    }

    /// The live session a cookie names: none when it is unknown, idle too long or past its
    /// absolute end (an ended session is deleted).
    pub async fn portal_session(&self, id: SessionId) -> Result<Option<PortalSession>, ServiceError> {
        let hash = id.hash();
        let Some(row) = self.store.portal_session(&hash).await? else { return Ok(None) };
        let now = now_i64();
        let idle = i64::try_from(self.portal.idle_secs).unwrap_or(i64::MAX);
        if now >= row.expires_at || now - row.last_seen_at >= idle {
            self.store.end_portal_session(&hash, None).await?;
            return Ok(None);
        }
        if now - row.last_seen_at >= TOUCH_EVERY_SECS.min(idle / 4) {
            self.store.touch_portal_session(&hash, now).await?;
        }
        Ok(Some(PortalSession { id, row }))
    }

    /// Ends a session at the user's request.
    pub async fn portal_sign_out(
        &self,
        session: &PortalSession,
        caller: &Caller<'_>,
    ) -> Result<(), ServiceError> {
        let ip = caller.ip.map(|ip| ip.to_string());
        let audit = NewAudit {
            at_ms: crate::clock::unix_now_ms(),
            actor: "portal",
            action: "portal.sign_out",
            username: Some(session.username()),
            serial: None,
            client_ip: ip.as_deref(),
            result: AuditResult::Ok,
            reason: None,
        };
        self.store.end_portal_session(&session.id.hash(), Some(&audit)).await?;
        Ok(())
    }

    /// Deletes ended sessions and devices added in the portal that were never proved; returns how
    /// many of each.
    pub async fn prune_portal(&self) -> Result<(u64, u64), ServiceError> {
        let now = now_i64();
        let idle = i64::try_from(self.portal.idle_secs).unwrap_or(i64::MAX / 2);
        let sessions = self.store.prune_portal_sessions(now, now - idle).await?;
        let devices = self.store.prune_pending_tokens(now).await?;
        Ok((sessions, devices))
    }

    /// The signed-in user's devices and latest sign-ins.
    pub async fn portal_overview(&self, session: &PortalSession) -> Result<PortalOverview, ServiceError> {
        session.signed_in()?;
        let user = self.existing_user(session.username()).await?;
        let devices = self
            .store
            .tokens_of(user.id)
            .await?
            .iter()
            .map(|token| DeviceView {
                serial: token.serial.clone(),
                kind: token.kind,
                name: token
                    .description
                    .clone()
                    .or_else(|| token.device().and_then(|device| device.name.clone())),
                added_at: token.created_at,
                last_used_at: token.last_used_at,
                destination: token
                    .kind
                    .channel()
                    .and_then(|channel| self.delivery.destination_of(&user, token).ok().map(|d| (channel, d)))
                    .map(|(channel, destination)| Delivery::masked(channel, &destination)),
                enabled: token.state.enabled,
                pending_until: token.pending.as_ref().map(|p| p.until),
                replaces: token.pending.as_ref().and_then(|p| p.replaces.clone()),
            })
            .collect();
        let filter = AuditFilter {
            username: Some(user.username.clone()),
            action: Some("validate".into()),
            limit: Some(RECENT_SIGN_INS * 3),
            ..AuditFilter::default()
        };
        let sign_ins = self
            .store
            .audit_entries(&filter)
            .await?
            .into_iter()
            .filter_map(|entry| {
                let result = [AuditResult::Accept, AuditResult::Reject]
                    .into_iter()
                    .find(|result| result.as_str() == entry.result)?;
                Some(SignInView { at_ms: entry.at_ms, result, client_ip: entry.client_ip, via: entry.actor })
            })
            .take(usize::try_from(RECENT_SIGN_INS).unwrap_or(10))
            .collect();
        let delivery = self.portal_delivery(session).await?;
        Ok(PortalOverview { devices, sign_ins, delivery })
    }

    /// Starts the signed-in session of `username`, whose second factor (the token `serial`, or a
    /// registration code when there is none) was just proved, ending `replaces`.
    async fn signed_in(
        &self,
        username: &str,
        serial: Option<&str>,
        replaces: Option<&SessionId>,
        caller: &Caller<'_>,
    ) -> Result<SignIn, ServiceError> {
        let Some((user, factor_kind)) = self.allowed_second_factor(username, serial, caller).await? else {
            return Ok(SignIn::Refused(FACTOR_NOT_ALLOWED.into()));
        };
        let id = SessionId::new()?;
        let now = now_i64();
        let session = NewPortalSession { factor_kind, ..self.new_session(&id, user.id, now, caller) };
        let replaced = replaces.map(SessionId::hash);
        self.store.start_portal_session(&session, replaced.as_deref(), None).await?;
        Ok(SignIn::SignedIn(id))
    }

    /// The user and the kind of the token that proved the second factor (the token `serial`, or
    /// none for a registration code), when `[portal] second_factors` allows it; otherwise the
    /// refusal is audited and there is none.
    async fn allowed_second_factor(
        &self,
        username: &str,
        serial: Option<&str>,
        caller: &Caller<'_>,
    ) -> Result<Option<(UserRow, Option<TokenKind>)>, ServiceError> {
        let Some((user, tokens)) = self.store.user_with_tokens(username).await? else { return Ok(None) };
        let kind = serial.and_then(|serial| tokens.iter().find(|t| t.serial == serial)).map(|t| t.kind);
        if kind.is_none_or(|kind| self.portal.second_factors.contains(&second_factor(kind))) {
            return Ok(Some((user, kind)));
        }
        let ip = caller.ip.map(|ip| ip.to_string());
        let audit = NewAudit {
            at_ms: crate::clock::unix_now_ms(),
            actor: "portal",
            action: "portal.sign_in",
            username: Some(username),
            serial,
            client_ip: ip.as_deref(),
            result: AuditResult::Reject,
            reason: Some("second_factor_not_allowed"),
        };
        self.store.audit(&audit).await?;
        Ok(None)
    }

    /// An app signing in to the organisation (`POST /api/v1/signin`): the same validation as the
    /// portal's sign-in; once it accepts, a push token is added for the app, pending until the
    /// app registers with the enrollment link in the answer (under the same rules as a link
    /// shown as a QR code).
    pub async fn app_sign_in(
        &self,
        request: SignInRequest,
        caller: &Caller<'_>,
    ) -> Result<SignInAnswer, ServiceError> {
        let username = request.username.clone();
        let response = self.validate_at_portal(request, caller).await?;
        let answer = |result, message: String| SignInAnswer {
            result,
            message,
            transaction_id: None,
            number: None,
            code_sent: false,
            display_code: None,
            expires_at: None,
            enrollment_uri: None,
        };
        match response.result {
            ValidationResult::Accept => {
                let Some((user, _)) =
                    self.allowed_second_factor(&username, response.serial.as_deref(), caller).await?
                else {
                    return Ok(answer(SignInResult::Reject, FACTOR_NOT_ALLOWED.into()));
                };
                let device = self.add_pending_device(&user, NewDevice::App, None, caller).await?;
                Ok(SignInAnswer {
                    enrollment_uri: Some(device.link),
                    ..answer(
                        SignInResult::Accept,
                        "signed in: register this app with the enrollment link".into(),
                    )
                })
            }
            ValidationResult::Challenge => {
                let message = call_prompt(&response, true).unwrap_or(response.message);
                Ok(SignInAnswer {
                    transaction_id: response.transaction_id,
                    number: response.number,
                    code_sent: response.channel.is_some_and(|channel| channel != Channel::Voice),
                    expires_at: response.display_code.as_ref().and(response.expires_at),
                    display_code: response.display_code,
                    ..answer(SignInResult::Challenge, message)
                })
            }
            ValidationResult::Reject => Ok(answer(SignInResult::Reject, response.message)),
        }
    }

    /// `request` through [`Service::validate`] at the portal's door, for the portal's and the
    /// apps' sign-in and step-up: a registration code counts only where `[portal]
    /// first_enrolment` allows it.
    async fn validate_at_portal(
        &self,
        request: SignInRequest,
        caller: &Caller<'_>,
    ) -> Result<ValidateResponse, ServiceError> {
        let SignInRequest { username, password, passcode, transaction_id, registration_code } = request;
        let registration_code =
            registration_code.as_ref().filter(|_| self.portal.first_enrolment.allows_registration_codes());
        let validation = ValidateRequest {
            username,
            password,
            passcode,
            transaction_id,
            client_ip: None,
            user_agent: None,
            service: None,
        };
        let door = Door::Portal {
            registration_code,
            first_code_by_sms: self.portal.first_enrolment.allows_codes_by_sms(),
        };
        self.validate(validation, &Caller { door, ..caller.clone() }).await
    }

    /// A signed-in session's row for `id`, starting `now`.
    fn new_session<'a>(
        &self,
        id: &SessionId,
        user_id: i64,
        now: i64,
        caller: &'a Caller<'a>,
    ) -> NewPortalSession<'a> {
        NewPortalSession {
            id_hash: id.hash(),
            user_id,
            stage: SessionStage::SignedIn,
            transaction_id: None,
            prompt: None,
            now,
            expires_at: now + i64::try_from(self.portal.absolute_secs).unwrap_or(i64::MAX / 2),
            factor_at: Some(now),
            factor_kind: None,
            client_ip: caller.ip.map(|ip| ip.to_string()),
            user_agent: caller.user_agent,
        }
    }
}

/// The code a voice token's call waits for, to show on the page until it expires.
#[derive(Debug)]
pub struct DisplayCode {
    /// The six digits.
    pub code: SecretString,
    /// Unix seconds.
    pub expires_at: i64,
    /// The call's transaction.
    pub transaction_id: String,
}

/// The `[portal] second_factors` entry a token kind falls under.
fn second_factor(kind: TokenKind) -> SecondFactor {
    match kind {
        TokenKind::Totp => SecondFactor::Totp,
        TokenKind::Hotp => SecondFactor::Hotp,
        TokenKind::Push => SecondFactor::Push,
        TokenKind::Sms => SecondFactor::Sms,
        TokenKind::Email => SecondFactor::Email,
        TokenKind::Temp => SecondFactor::Temp,
        TokenKind::Voice => SecondFactor::Voice,
    }
}
