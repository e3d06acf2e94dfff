//! Delivered passcodes' storage: real-time challenges and the outbox of messages to send.
//!
//! A message is queued in the same transaction as what made it necessary (a challenge, an accepted
//! pre-loaded code, an enrolment), so a crash cannot lose one or send one for a login that did not
//! happen. The cost-bearing limits are counted from the outbox itself inside that transaction,
//! after the user's row is locked, so they hold across replicas. Senders claim due messages with a
//! lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer thread on SQLite): each
//! message goes to exactly one sender, and a sender that dies leaves its claim to expire.
//! No code is stored anywhere: a message names the counters it carries.

use std::ops::Range;

use tessera_core::delivery::DeliveryMode;

pub use crate::config::SendLimits;

use super::db::{Guarded, Param, Row, statement};
use super::{
    Backend, NewAudit, StateUpdate, Store, StoreError, UserChange, audited, int_at, opt_int_at, opt_text_at,
    state_update, text_at, to_i64, to_u64, user_change,
};

/// How a delivered token's messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Text message to a phone.
    Sms,
    /// Email.
    Email,
    /// A phone call in which the user keys the code their login screen shows.
    Voice,
}

impl Channel {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
            Self::Voice => "voice",
        }
    }

    /// The channel a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Sms, Self::Email, Self::Voice].into_iter().find(|channel| channel.as_str() == name)
    }
}

/// Where a user's second factor goes when they give only their password.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryPreference {
    /// The Tessera app: a push, as before delivered passcodes existed.
    #[default]
    App,
    /// A code by text message.
    Sms,
    /// A code by email.
    Email,
    /// A call in which the user keys the code shown on screen.
    Voice,
}

impl DeliveryPreference {
    /// The name stored in `users.delivery_preference`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Sms => "sms",
            Self::Email => "email",
            Self::Voice => "voice",
        }
    }

    /// The preference a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::App, Self::Sms, Self::Email, Self::Voice].into_iter().find(|p| p.as_str() == name)
    }
}

/// A delivered token's settings and progress (present exactly for `sms` and `email` tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredToken {
    /// When codes are sent and which are accepted.
    pub mode: DeliveryMode,
    /// The token's own destination; `None` follows the user's phone or email.
    pub destination: Option<String>,
    /// Real-time codes' time to live; `None` takes the server's default.
    pub ttl_secs: Option<u32>,
    /// Daycode period in days.
    pub period_days: u32,
    /// One past the highest counter ever sent (or handed to a challenge).
    pub issued_upto: u64,
    /// The Daycode period whose code was last sent.
    pub last_delivered_period: Option<u64>,
}

/// What a delivered token's progress becomes when a change commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryProgress {
    /// New `issued_upto`.
    pub issued_upto: u64,
    /// New `last_delivered_period`.
    pub last_delivered_period: Option<u64>,
}

/// Where a real-time challenge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    /// Waiting for the code.
    Pending,
    /// Its code logged the user in.
    Used,
    /// Too many wrong codes, or a newer challenge replaced it.
    Void,
}

impl ChallengeStatus {
    /// The name stored in `challenges.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Used => "used",
            Self::Void => "void",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Used, Self::Void].into_iter().find(|s| s.as_str() == name)
    }
}

/// A real-time challenge.
#[derive(Debug, Clone)]
pub struct ChallengeRow {
    /// Public id (the login client completes with it).
    pub id: String,
    /// The user logging in.
    pub user_id: i64,
    /// The delivered token whose code was sent.
    pub token_id: i64,
    /// The code's counter.
    pub counter: u64,
    /// Wrong codes tried so far.
    pub tries: u32,
    /// Where it stands.
    pub status: ChallengeStatus,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A new real-time challenge.
#[derive(Debug, Clone)]
pub struct NewChallenge {
    /// Public id.
    pub id: String,
    /// The code's counter.
    pub counter: u64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A voice token's transaction, opened with the call that answers it.
#[derive(Debug, Clone)]
pub struct NewCall {
    /// Public id (the login client waits on it).
    pub id: String,
    /// The displayed code, keyed by [`crate::keys::ServerKey::code_mac`].
    pub code_mac: String,
    /// The voice token called.
    pub serial: String,
    /// The login client's address.
    pub client_ip: Option<String>,
    /// The login client's user agent.
    pub user_agent: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    /// The user it goes to.
    pub user_id: i64,
    /// The delivered token whose codes it carries.
    pub token_id: i64,
    /// How it travels.
    pub channel: Channel,
    /// The phone number or address.
    pub destination: &'a str,
    /// Which template renders it.
    pub mode: DeliveryMode,
    /// The counters of the codes it carries.
    pub counters: Range<u64>,
    /// The service named in the message.
    pub service: &'a str,
    /// A real-time challenge created with it.
    pub challenge: Option<NewChallenge>,
    /// A voice token's call: the transaction the login waits on, created with it (not while the
    /// user is muted after reporting a login; the outbox row's `challenge_id` names it).
    pub call: Option<NewCall>,
    /// Whether the cost limits apply (sends a user asked for) or not (the next pre-loaded codes
    /// after a successful login, an administrator's enrolment).
    pub limited: bool,
    /// Unix seconds.
    pub now: i64,
}

/// What a queued message carries: codes, rendered by their delivery mode's template, or a notice
/// about the account ("a new device was added").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageMode {
    /// Codes of a delivered token.
    Codes(DeliveryMode),
    /// A notice, its text stored with it.
    Notice,
}

impl MessageMode {
    /// The name stored in `deliveries.mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Codes(mode) => mode.as_str(),
            Self::Notice => "notice",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        if name == "notice" { Some(Self::Notice) } else { DeliveryMode::parse(name).map(Self::Codes) }
    }
}

impl serde::Serialize for MessageMode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Which limit refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendLimit {
    /// A message for this token went out less than the cool-down ago.
    Cooldown,
    /// The user's window or daily allowance is used up.
    User,
    /// The destination's daily allowance is used up.
    Destination,
    /// The server's hourly budget is used up.
    Global,
}

impl SendLimit {
    /// The name audited.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cooldown => "send_cooldown",
            Self::User => "send_limit_user",
            Self::Destination => "send_limit_destination",
            Self::Global => "send_limit_global",
        }
    }

    /// What the user is told.
    pub fn explained(self) -> &'static str {
        match self {
            Self::Cooldown => "a code was sent moments ago: wait a little before asking for another",
            Self::User | Self::Destination | Self::Global => {
                "too many codes were sent: try again later, or use another way to sign in"
            }
        }
    }
}

/// What a send's transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Committed: the message is in the outbox.
    Yes,
    /// A limit refused it (nothing was written but the audit record).
    Limited(SendLimit),
    /// A token or the user moved since it was read: read again and decide again.
    Moved,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting to be sent (or to be tried again).
    Queued,
    /// A sender holds it.
    Sending,
    /// A gateway accepted it.
    Sent,
    /// The provider reported it delivered to the phone.
    Delivered,
    /// Every try failed, it was no longer worth sending, or the provider reported it undelivered.
    Failed,
}

impl DeliveryStatus {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::Queued, Self::Sending, Self::Sent, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A queued message, as a sender claims it or an administrator lists it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    /// Row id.
    pub id: i64,
    /// The user it goes to.
    #[serde(skip)]
    pub user_id: i64,
    /// The token whose codes it carries (gone when the token was deleted).
    #[serde(skip)]
    pub token_id: Option<i64>,
    /// The real-time challenge it belongs to, or the transaction a voice token's call answers.
    pub challenge_id: Option<String>,
    /// `sms` or `email`.
    pub channel: Channel,
    /// The phone number or address.
    pub destination: String,
    /// The delivery mode that made it, or `notice`.
    #[schema(value_type = String)]
    pub mode: MessageMode,
    /// A notice's text (it carries no code).
    pub notice: Option<String>,
    /// First counter carried.
    #[serde(skip)]
    pub counter_from: u64,
    /// One past the last counter carried.
    #[serde(skip)]
    pub counter_to: u64,
    /// The service named in the message.
    pub service: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Tries so far.
    pub attempts: u32,
    /// The gateway that accepted it (or was tried last).
    pub gateway: Option<String>,
    /// The gateway's id for the message.
    pub provider_message_id: Option<String>,
    /// Why the last try failed.
    pub error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub sent_at: Option<i64>,
    /// The claim's lease (a sender's own marker for its later update).
    #[serde(skip)]
    pub lease_until: Option<i64>,
}

/// A sender's outcome for one claimed message.
#[derive(Debug, Clone)]
pub enum SendResult<'a> {
    /// Accepted by `gateway`.
    Sent {
        /// The gateway's id.
        gateway: &'a str,
        /// The gateway's message id, when it gave one.
        provider_message_id: Option<&'a str>,
    },
    /// Failed; tried again at `retry_at`, or never when `None`.
    Failed {
        /// The last gateway tried.
        gateway: Option<&'a str>,
        /// What went wrong (no code, no secret).
        error: &'a str,
        /// When to try again.
        retry_at: Option<i64>,
    },
}

/// The outbox columns every outbox query reads, in the order `delivery_from` expects.
macro_rules! delivery_columns {
    () => {
        "id, user_id, token_id, challenge_id, channel, destination, mode, counter_from, counter_to, service, \
         status, attempts, gateway, provider_message_id, error, created_at, sent_at, lease_until, notice"
    };
}

const CLAIM_SQLITE: &str = concat!(
    "UPDATE deliveries SET status = 'sending', lease_until = $1, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM deliveries WHERE (status = 'queued' AND next_attempt_at <= $2) \
     OR (status = 'sending' AND lease_until < $2) ORDER BY id LIMIT $3) RETURNING ",
    delivery_columns!()
);
const CLAIM_POSTGRES: &str = concat!(
    "UPDATE deliveries SET status = 'sending', lease_until = $1, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM deliveries WHERE (status = 'queued' AND next_attempt_at <= $2) \
     OR (status = 'sending' AND lease_until < $2) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING ",
    delivery_columns!()
);
const RECENT_DELIVERIES: &str =
    concat!("SELECT ", delivery_columns!(), " FROM deliveries ORDER BY id DESC LIMIT $1");
const RECENT_DELIVERIES_OF_USER: &str =
    concat!("SELECT ", delivery_columns!(), " FROM deliveries WHERE user_id = $1 ORDER BY id DESC LIMIT $2");

/// The outbox insert, refused (no row) when a limit is reached and `$11` is 1.
const QUEUE_MESSAGE: &str = "INSERT INTO deliveries (user_id, token_id, challenge_id, channel, destination, mode, \
     counter_from, counter_to, service, status, attempts, next_attempt_at, created_at) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', 0, $10, $10 \
     WHERE $11 = 0 OR ( \
       (SELECT COUNT(*) FROM deliveries WHERE user_id = $1 AND created_at > $10 - $12) < $13 \
       AND (SELECT COUNT(*) FROM deliveries WHERE user_id = $1 AND created_at > $10 - 86400) < $14 \
       AND (SELECT COUNT(*) FROM deliveries WHERE destination = $5 AND created_at > $10 - 86400) < $15 \
       AND (SELECT COUNT(*) FROM deliveries WHERE created_at > $10 - 3600) < $16 \
       AND NOT EXISTS (SELECT 1 FROM deliveries WHERE token_id = $2 AND created_at > $10 - $17))";

impl Store {
    /// Queues a message with the token and user changes that go with it and their audit record,
    /// all or nothing; with the real-time challenge it opens, if any.
    pub async fn queue_message(
        &self,
        updates: &[StateUpdate],
        user: Option<&UserChange>,
        message: &NewDelivery<'_>,
        limits: &SendLimits,
        audit: &NewAudit<'_>,
    ) -> Result<Queued, StoreError> {
        let mut statements = vec![Guarded {
            statement: statement(
                "UPDATE users SET push_guard = push_guard + 1 WHERE id = $1",
                vec![Param::Int(message.user_id)],
            ),
            rows: Some(1),
        }];
        for update in updates {
            statements.push(state_update(update)?);
        }
        if let Some(change) = user {
            statements.push(user_change(change)?);
        }
        if let Some(challenge) = &message.challenge {
            statements.push(Guarded {
                statement: statement(
                    "INSERT INTO challenges (id, user_id, token_id, counter, tries, status, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, 0, 'pending', $5, $6)",
                    vec![
                        Param::Text(challenge.id.clone()),
                        Param::Int(message.user_id),
                        Param::Int(message.token_id),
                        Param::Int(to_i64(challenge.counter)?),
                        Param::Int(message.now),
                        Param::Int(challenge.expires_at),
                    ],
                ),
                rows: Some(1),
            });
        }
        if let Some(call) = &message.call {
            statements.push(Guarded {
                statement: statement(
                    "INSERT INTO push_transactions (id, user_id, service, client_ip, user_agent, number_matching, \
                     choices, status, created_at, expires_at, channel, code_mac, token_serial) \
                     SELECT $1, $2, $3, $4, $5, 'off', '', 'pending', $6, $7, 'voice', $8, $9 \
                     WHERE COALESCE((SELECT push_muted_until FROM users WHERE id = $2), 0) <= $6",
                    vec![
                        Param::Text(call.id.clone()),
                        Param::Int(message.user_id),
                        Param::Text(message.service.into()),
                        Param::OptText(call.client_ip.clone()),
                        Param::OptText(call.user_agent.clone()),
                        Param::Int(message.now),
                        Param::Int(call.expires_at),
                        Param::Text(call.code_mac.clone()),
                        Param::Text(call.serial.clone()),
                    ],
                ),
                rows: Some(1),
            });
        }
        statements.push(Guarded { statement: queue_statement(message, limits)?, rows: Some(1) });
        statements.push(audited(audit));
        if self.db.atomically(statements, vec![]).await?.is_some() {
            return Ok(Queued::Yes);
        }
        Ok(match self.limit_reached(message, limits).await? {
            Some(limit) if message.limited => Queued::Limited(limit),
            _ => Queued::Moved,
        })
    }

    /// Which limit a send would break now, if any.
    async fn limit_reached(
        &self,
        message: &NewDelivery<'_>,
        limits: &SendLimits,
    ) -> Result<Option<SendLimit>, StoreError> {
        let now = message.now;
        let count = |sql: &'static str, params: Vec<Param>| statement(sql, params);
        let rows = self
            .db
            .read(vec![
                count(
                    "SELECT COUNT(*) FROM deliveries WHERE token_id = $1 AND created_at > $2",
                    vec![Param::Int(message.token_id), Param::Int(now - limits.cooldown_secs)],
                ),
                count(
                    "SELECT COUNT(*) FROM deliveries WHERE user_id = $1 AND created_at > $2",
                    vec![Param::Int(message.user_id), Param::Int(now - limits.window_secs)],
                ),
                count(
                    "SELECT COUNT(*) FROM deliveries WHERE user_id = $1 AND created_at > $2",
                    vec![Param::Int(message.user_id), Param::Int(now - 86_400)],
                ),
                count(
                    "SELECT COUNT(*) FROM deliveries WHERE destination = $1 AND created_at > $2",
                    vec![Param::Text(message.destination.into()), Param::Int(now - 86_400)],
                ),
                count("SELECT COUNT(*) FROM deliveries WHERE created_at > $1", vec![Param::Int(now - 3_600)]),
            ])
            .await?;
        let counts: Vec<i64> = rows.iter().map(|rows| int_at(rows.first(), 0)).collect::<Result<_, _>>()?;
        let over = |index: usize, max: i64| max > 0 && counts.get(index).is_some_and(|count| *count >= max);
        Ok(if limits.cooldown_secs > 0 && counts.first().is_some_and(|count| *count > 0) {
            Some(SendLimit::Cooldown)
        } else if over(1, limits.per_user_per_window) || over(2, limits.per_user_per_day) {
            Some(SendLimit::User)
        } else if over(3, limits.per_destination_per_day) {
            Some(SendLimit::Destination)
        } else if over(4, limits.global_per_hour) {
            Some(SendLimit::Global)
        } else {
            None
        })
    }

    /// A real-time challenge by id.
    pub async fn challenge(&self, id: &str) -> Result<Option<ChallengeRow>, StoreError> {
        let rows = self
            .db
            .query(statement(
                "SELECT id, user_id, token_id, counter, tries, status, expires_at FROM challenges WHERE id = $1",
                vec![Param::Text(id.into())],
            ))
            .await?;
        rows.first().map(challenge_from).transpose()
    }

    /// Moves a challenge on (a wrong code counted, or its code used), with the token's and the
    /// user's changes and the audit record; false when the challenge or the token moved since it
    /// was read.
    pub async fn settle_challenge(
        &self,
        challenge: &ChallengeRow,
        status: ChallengeStatus,
        update: Option<&StateUpdate>,
        user: Option<&UserChange>,
        audit: &NewAudit<'_>,
    ) -> Result<bool, StoreError> {
        let mut statements = vec![challenge_settlement(challenge, status)];
        if let Some(update) = update {
            statements.push(state_update(update)?);
        }
        if let Some(change) = user {
            statements.push(user_change(change)?);
        }
        statements.push(audited(audit));
        Ok(self.db.atomically(statements, vec![]).await?.is_some())
    }

    /// Queues a notice to `destination` on `channel` (no code, no token, no cost limit).
    pub async fn queue_notice(
        &self,
        user_id: i64,
        channel: Channel,
        destination: &str,
        service: &str,
        text: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.db
            .execute(statement(
                "INSERT INTO deliveries (user_id, channel, destination, mode, counter_from, counter_to, service, \
                 status, attempts, next_attempt_at, created_at, notice) \
                 VALUES ($1, $2, $3, 'notice', 0, 0, $4, 'queued', 0, $5, $5, $6)",
                vec![
                    Param::Int(user_id),
                    Param::Text(channel.as_str().into()),
                    Param::Text(destination.into()),
                    Param::Text(service.into()),
                    Param::Int(now),
                    Param::Text(text.into()),
                ],
            ))
            .await?;
        Ok(())
    }

    /// Claims up to `max` due messages (queued and due, or held by a sender whose lease ran out)
    /// until `lease_until`.
    pub async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        max: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => CLAIM_SQLITE,
            Backend::Postgres => CLAIM_POSTGRES,
        };
        let claim = statement(sql, vec![Param::Int(lease_until), Param::Int(now), Param::Int(max)]);
        let rows = self.db.atomically(vec![], vec![claim]).await?.map(|(_, rows)| rows).unwrap_or_default();
        rows.into_iter().next().unwrap_or_default().iter().map(delivery_from).collect()
    }

    /// Records a claimed message's outcome; false when the claim was lost (its lease ran out and
    /// another sender took it).
    pub async fn record_send(
        &self,
        message: &DeliveryRow,
        result: &SendResult<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let lease = Param::OptInt(message.lease_until);
        let update = match result {
            SendResult::Sent { gateway, provider_message_id } => statement(
                "UPDATE deliveries SET status = 'sent', gateway = $1, provider_message_id = $2, error = NULL, \
                 sent_at = $3, lease_until = NULL WHERE id = $4 AND status = 'sending' AND lease_until = $5",
                vec![
                    Param::Text((*gateway).into()),
                    Param::OptText(provider_message_id.map(Into::into)),
                    Param::Int(now),
                    Param::Int(message.id),
                    lease,
                ],
            ),
            SendResult::Failed { gateway, error, retry_at } => statement(
                "UPDATE deliveries SET status = $1, gateway = $2, error = $3, next_attempt_at = $4, \
                 lease_until = NULL WHERE id = $5 AND status = 'sending' AND lease_until = $6",
                vec![
                    Param::Text(
                        if retry_at.is_some() { DeliveryStatus::Queued } else { DeliveryStatus::Failed }
                            .as_str()
                            .into(),
                    ),
                    Param::OptText(gateway.map(Into::into)),
                    Param::Text((*error).into()),
                    Param::Int(retry_at.unwrap_or(now)),
                    Param::Int(message.id),
                    lease,
                ],
            ),
        };
        Ok(self.db.atomically(vec![Guarded { statement: update, rows: Some(1) }], vec![]).await?.is_some())
    }

    /// Records what a provider reported about a message it accepted (`Err` with why it was not
    /// delivered); false when no sent message has that gateway and id.
    pub async fn record_report(
        &self,
        gateway: &str,
        message_id: &str,
        outcome: &Result<(), String>,
    ) -> Result<bool, StoreError> {
        let (status, error) = match outcome {
            Ok(()) => (DeliveryStatus::Delivered, None),
            Err(error) => (DeliveryStatus::Failed, Some(error.clone())),
        };
        let update = statement(
            "UPDATE deliveries SET status = $1, error = COALESCE($2, error) \
             WHERE gateway = $3 AND provider_message_id = $4 AND status IN ('sent', 'delivered')",
            vec![
                Param::Text(status.as_str().into()),
                Param::OptText(error),
                Param::Text(gateway.into()),
                Param::Text(message_id.into()),
            ],
        );
        Ok(self.db.execute(update).await? > 0)
    }

    /// Messages, newest first: all, or one user's.
    pub async fn deliveries(&self, user_id: Option<i64>, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        let query = match user_id {
            Some(user_id) => {
                statement(RECENT_DELIVERIES_OF_USER, vec![Param::Int(user_id), Param::Int(limit)])
            }
            None => statement(RECENT_DELIVERIES, vec![Param::Int(limit)]),
        };
        let rows = self.db.query(query).await?;
        rows.iter().map(delivery_from).collect()
    }
}

fn queue_statement(
    message: &NewDelivery<'_>,
    limits: &SendLimits,
) -> Result<super::db::Statement, StoreError> {
    Ok(statement(
        QUEUE_MESSAGE,
        vec![
            Param::Int(message.user_id),
            Param::Int(message.token_id),
            Param::OptText(
                message
                    .challenge
                    .as_ref()
                    .map(|c| c.id.clone())
                    .or_else(|| message.call.as_ref().map(|c| c.id.clone())),
            ),
            Param::Text(message.channel.as_str().into()),
            Param::Text(message.destination.into()),
            Param::Text(message.mode.as_str().into()),
            Param::Int(to_i64(message.counters.start)?),
            Param::Int(to_i64(message.counters.end)?),
            Param::Text(message.service.into()),
            Param::Int(message.now),
            Param::Int(i64::from(message.limited)),
            Param::Int(limits.window_secs),
            Param::Int(unlimited(limits.per_user_per_window)),
            Param::Int(unlimited(limits.per_user_per_day)),
            Param::Int(unlimited(limits.per_destination_per_day)),
            Param::Int(unlimited(limits.global_per_hour)),
            Param::Int(limits.cooldown_secs),
        ],
    ))
}

/// A limit of 0 means none.
fn unlimited(max: i64) -> i64 {
    if max == 0 { i64::MAX } else { max }
}

fn challenge_from(row: &Row) -> Result<ChallengeRow, StoreError> {
    Ok(ChallengeRow {
        id: text_at(row, 0)?,
        user_id: int_at(Some(row), 1)?,
        token_id: int_at(Some(row), 2)?,
        counter: to_u64(int_at(Some(row), 3)?)?,
        tries: u32::try_from(int_at(Some(row), 4)?).map_err(|_| StoreError::Corrupt("challenge tries"))?,
        status: ChallengeStatus::parse(&text_at(row, 5)?).ok_or(StoreError::Corrupt("challenge status"))?,
        expires_at: int_at(Some(row), 6)?,
    })
}

fn delivery_from(row: &Row) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        id: int_at(Some(row), 0)?,
        user_id: int_at(Some(row), 1)?,
        token_id: opt_int_at(row, 2)?,
        challenge_id: opt_text_at(row, 3)?,
        channel: Channel::parse(&text_at(row, 4)?).ok_or(StoreError::Corrupt("delivery channel"))?,
        destination: text_at(row, 5)?,
        mode: MessageMode::parse(&text_at(row, 6)?).ok_or(StoreError::Corrupt("delivery mode"))?,
        counter_from: to_u64(int_at(Some(row), 7)?)?,
        counter_to: to_u64(int_at(Some(row), 8)?)?,
        service: text_at(row, 9)?,
        status: DeliveryStatus::parse(&text_at(row, 10)?).ok_or(StoreError::Corrupt("delivery status"))?,
        attempts: u32::try_from(int_at(Some(row), 11)?)
            .map_err(|_| StoreError::Corrupt("delivery attempts"))?,
        gateway: opt_text_at(row, 12)?,
        provider_message_id: opt_text_at(row, 13)?,
        error: opt_text_at(row, 14)?,
        created_at: int_at(Some(row), 15)?,
        sent_at: opt_int_at(row, 16)?,
        lease_until: opt_int_at(row, 17)?,
        notice: opt_text_at(row, 18)?,
    })
}

/// The statement that moves a pending challenge to `status` (a wrong code counted unless it is
/// used), compare-and-swap on its tries so two answers cannot both count.
pub(super) fn challenge_settlement(challenge: &ChallengeRow, status: ChallengeStatus) -> Guarded {
    let tries = i64::from(challenge.tries);
    let next_tries = if status == ChallengeStatus::Used { tries } else { tries + 1 };
    Guarded {
        statement: statement(
            "UPDATE challenges SET status = $1, tries = $2 WHERE id = $3 AND status = 'pending' AND tries = $4",
            vec![
                Param::Text(status.as_str().into()),
                Param::Int(next_tries),
                Param::Text(challenge.id.clone()),
                Param::Int(tries),
            ],
        ),
        rows: Some(1),
    }
}
