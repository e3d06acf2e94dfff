//! Push storage: device registration, transactions and their answers, fatigue limits.
//!
//! Every decision that must hold across replicas is a guarded statement in one transaction: a
//! push is created only while the user is neither muted nor over the pending/window limits (after
//! bumping the user's `push_guard`, which makes PostgreSQL serialize a user's concurrent triggers on
//! the row lock), an answer applies only to a still-pending, unexpired transaction, and an approved
//! transaction is consumed only once.

use tessera_core::push::NumberMatching;

use super::db::{Guarded, Param, Row, Value, statement};
use super::{NewAudit, StateUpdate, Store, StoreError, audited, int_at, opt_int_at, opt_text_at, text_at};

/// A push transaction.
#[derive(Debug, Clone)]
pub struct TransactionRow {
    /// Stream position.
    pub seq: i64,
    /// Public id (the login client waits on it).
    pub id: String,
    /// The user logging in.
    pub user_id: i64,
    /// The application asking.
    pub service: String,
    /// The login client's address.
    pub client_ip: Option<String>,
    /// The login client's user agent.
    pub user_agent: Option<String>,
    /// How the device confirms the number on the login screen.
    pub number_matching: NumberMatching,
    /// The number on the login screen.
    pub number: Option<i64>,
    /// Choices offered by devices (`pick`).
    pub choices: Vec<u8>,
    /// Where it stands.
    pub status: TxStatus,
    /// Why it was denied.
    pub deny_reason: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds.
    pub answered_at: Option<i64>,
    /// Serial of the push token that answered (or the voice token whose call approved).
    pub answered_by: Option<String>,
    /// A push to a device, or a voice token's call.
    pub channel: TxChannel,
    /// A call's displayed code, as [`crate::keys::ServerKey::code_mac`] keyed it.
    pub code_mac: Option<String>,
    /// Wrong codes keyed during the call.
    pub tries: u32,
    /// The voice token called.
    pub token_serial: Option<String>,
}

/// What answers a transaction: the user's push device, or the user keying the displayed code
/// into a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxChannel {
    /// A push to the Tessera app.
    Push,
    /// A voice token's call.
    Voice,
}

impl TxChannel {
    /// The name stored in the `channel` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Voice => "voice",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::Push, Self::Voice].into_iter().find(|c| c.as_str() == name)
    }
}

/// Where a push transaction stands in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Waiting for the device (until it expires).
    Pending,
    /// Approved on the device; not yet used by the login client.
    Approved,
    /// Denied on the device.
    Denied,
    /// Approved and used: it completed its login.
    Consumed,
}

impl TxStatus {
    /// The name stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Consumed => "consumed",
        }
    }

    /// The status a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Consumed].into_iter().find(|s| s.as_str() == name)
    }
}

/// A device's answer to record.
pub struct RecordedAnswer<'a> {
    /// The transaction answered.
    pub id: &'a str,
    /// `Approved` or `Denied`.
    pub status: TxStatus,
    /// Why it was denied.
    pub deny_reason: Option<&'a str>,
    /// Unix seconds.
    pub answered_at: i64,
    /// Serial of the push token that answered (or the voice token whose call did).
    pub answered_by: &'a str,
    /// Who may answer: a push device answers only a push, a call only its own transaction.
    pub channel: TxChannel,
}

/// A transaction to create.
pub struct NewTransaction<'a> {
    /// Public id.
    pub id: &'a str,
    /// The user.
    pub user_id: i64,
    /// The application asking.
    pub service: &'a str,
    /// The login client's address.
    pub client_ip: Option<&'a str>,
    /// The login client's user agent.
    pub user_agent: Option<&'a str>,
    /// `off`, `pick` or `type`.
    pub number_matching: NumberMatching,
    /// The number on the login screen.
    pub number: Option<i64>,
    /// Choices offered by devices.
    pub choices: &'a [u8],
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The fatigue limits a new push must pass.
pub struct PushLimits {
    /// Unanswered, unexpired pushes allowed at once.
    pub max_pending: i64,
    /// Pushes allowed since `recent_since`.
    pub max_recent: i64,
    /// Start of the window (the later of the last success and now minus the window).
    pub recent_since: i64,
}

/// Why a push could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushRefusal {
    /// A "not me" answer muted the user's pushes.
    Muted,
    /// Too many unanswered pushes.
    TooManyPending,
    /// Too many pushes since the last success.
    TooManyRecent,
}

/// The transaction columns every transaction query reads, in the order `transaction_from` expects.
macro_rules! transaction_columns {
    () => {
        "seq, id, user_id, service, client_ip, user_agent, number_matching, number, choices, status, deny_reason, \
         created_at, expires_at, answered_at, answered_by, channel, code_mac, tries, token_serial"
    };
}

impl Store {
    /// Creates a pending push unless the user is muted or over a limit; otherwise says why not.
    pub async fn create_transaction(
        &self,
        tx: &NewTransaction<'_>,
        limits: &PushLimits,
        audit: &NewAudit<'_>,
    ) -> Result<Result<(), PushRefusal>, StoreError> {
        let guard = statement(
            "UPDATE users SET push_guard = push_guard + 1 WHERE id = $1",
            vec![Param::Int(tx.user_id)],
        );
        let insert = statement(
            "INSERT INTO push_transactions (id, user_id, service, client_ip, user_agent, number_matching, number, choices, \
             status, created_at, expires_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10 \
             WHERE COALESCE((SELECT push_muted_until FROM users WHERE id = $2), 0) <= $9 \
             AND (SELECT COUNT(*) FROM push_transactions WHERE user_id = $2 AND channel = 'push' AND status = 'pending' \
                  AND expires_at >= $9) < $11 \
             AND (SELECT COUNT(*) FROM push_transactions WHERE user_id = $2 AND channel = 'push' AND created_at > $12) < $13",
            vec![
                Param::Text(tx.id.into()),
                Param::Int(tx.user_id),
                Param::Text(tx.service.into()),
                Param::OptText(tx.client_ip.map(Into::into)),
                Param::OptText(tx.user_agent.map(Into::into)),
                Param::Text(tx.number_matching.as_str().into()),
                Param::OptInt(tx.number),
                Param::Text(tx.choices.iter().map(u8::to_string).collect::<Vec<_>>().join(",")),
                Param::Int(tx.created_at),
                Param::Int(tx.expires_at),
                Param::Int(limits.max_pending),
                Param::Int(limits.recent_since),
                Param::Int(limits.max_recent),
            ],
        );
        let created = self
            .db
            .atomically(
                vec![
                    Guarded { statement: guard, rows: Some(1) },
                    Guarded { statement: insert, rows: Some(1) },
                    audited(audit),
                ],
                vec![],
            )
            .await?;
        if created.is_some() {
            return Ok(Ok(()));
        }
        let state = self
            .db
            .read(vec![
                statement("SELECT COALESCE(push_muted_until, 0) FROM users WHERE id = $1", vec![Param::Int(tx.user_id)]),
                statement(
                    "SELECT COUNT(*) FROM push_transactions WHERE user_id = $1 AND channel = 'push' AND status = 'pending' \
                     AND expires_at >= $2",
                    vec![Param::Int(tx.user_id), Param::Int(tx.created_at)],
                ),
            ])
            .await?;
        let muted_until = int_at(state.first().and_then(|r| r.first()), 0).unwrap_or(0);
        let pending = int_at(state.get(1).and_then(|r| r.first()), 0).unwrap_or(0);
        Ok(Err(if muted_until > tx.created_at {
            PushRefusal::Muted
        } else if pending >= limits.max_pending {
            PushRefusal::TooManyPending
        } else {
            PushRefusal::TooManyRecent
        }))
    }

    /// A transaction by id.
    pub async fn transaction(&self, id: &str) -> Result<Option<TransactionRow>, StoreError> {
        let rows = self
            .db
            .query(statement(
                concat!("SELECT ", transaction_columns!(), " FROM push_transactions WHERE id = $1"),
                vec![Param::Text(id.into())],
            ))
            .await?;
        rows.first().map(transaction_from).transpose()
    }

    /// A user's pending, unexpired transactions after stream position `after`, oldest first.
    pub async fn pending_transactions(
        &self,
        user_id: i64,
        after: i64,
        now: i64,
    ) -> Result<Vec<TransactionRow>, StoreError> {
        let rows = self
            .db
            .query(statement(
                concat!(
                    "SELECT ",
                    transaction_columns!(),
                    " FROM push_transactions WHERE user_id = $1 AND seq > $2 AND status = 'pending' AND expires_at >= $3 \
                     AND channel = 'push' \
                     ORDER BY seq LIMIT 100"
                ),
                vec![Param::Int(user_id), Param::Int(after), Param::Int(now)],
            ))
            .await?;
        rows.iter().map(transaction_from).collect()
    }

    /// Records a device's answer: the transaction moves from pending (and unexpired at
    /// `answered_at`) to `status`, with the token's state (an approval's OTP) and the user's mute
    /// (a "not me") in the same transaction. False when the transaction was no longer pending
    /// or the token's version moved.
    pub async fn answer_transaction(
        &self,
        answer: &RecordedAnswer<'_>,
        token_update: Option<&StateUpdate>,
        mute: Option<(i64, i64)>,
        audit: &NewAudit<'_>,
    ) -> Result<bool, StoreError> {
        let mut statements = vec![Guarded {
            statement: statement(
                "UPDATE push_transactions SET status = $1, deny_reason = $2, answered_at = $3, answered_by = $4 \
                 WHERE id = $5 AND status = 'pending' AND expires_at >= $3 AND channel = $6",
                vec![
                    Param::Text(answer.status.as_str().into()),
                    Param::OptText(answer.deny_reason.map(Into::into)),
                    Param::Int(answer.answered_at),
                    Param::Text(answer.answered_by.into()),
                    Param::Text(answer.id.into()),
                    Param::Text(answer.channel.as_str().into()),
                ],
            ),
            rows: Some(1),
        }];
        if let Some(update) = token_update {
            statements.push(super::state_update(update)?);
        }
        if let Some((user_id, until)) = mute {
            statements.push(Guarded {
                statement: statement(
                    "UPDATE users SET push_muted_until = $1 WHERE id = $2",
                    vec![Param::Int(until), Param::Int(user_id)],
                ),
                rows: Some(1),
            });
        }
        statements.push(audited(audit));
        Ok(self.db.atomically(statements, vec![]).await?.is_some())
    }

    /// Mutes the user's pushes and calls until `until` (never shortening a mute), with its audit
    /// record: a login reported after its transaction had already ended.
    pub async fn mute_user(&self, user_id: i64, until: i64, audit: &NewAudit<'_>) -> Result<(), StoreError> {
        let mute = statement(
            "UPDATE users SET push_muted_until = $1 WHERE id = $2 AND COALESCE(push_muted_until, 0) < $1",
            vec![Param::Int(until), Param::Int(user_id)],
        );
        self.db.atomically(vec![Guarded { statement: mute, rows: None }, audited(audit)], vec![]).await?;
        Ok(())
    }

    /// Counts a wrong code keyed into a call's still-pending transaction; the tries now, or
    /// `None` when the transaction is no longer pending.
    pub async fn count_wrong_code(&self, id: &str) -> Result<Option<u32>, StoreError> {
        let count = statement(
            "UPDATE push_transactions SET tries = tries + 1 WHERE id = $1 AND status = 'pending' RETURNING tries",
            vec![Param::Text(id.into())],
        );
        let rows = self.db.atomically(vec![], vec![count]).await?.map(|(_, rows)| rows).unwrap_or_default();
        let tries = rows.into_iter().next().unwrap_or_default();
        tries
            .first()
            .map(|row| int_at(Some(row), 0).map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
            .transpose()
    }

    /// Consumes an approved transaction for the user (once, while it has not expired more than
    /// `grace` seconds before `now`) and records the success.
    pub async fn consume_transaction(
        &self,
        id: &str,
        user_id: i64,
        now: i64,
        grace: i64,
        audit: &NewAudit<'_>,
    ) -> Result<bool, StoreError> {
        let consume = statement(
            "UPDATE push_transactions SET status = 'consumed' \
             WHERE id = $1 AND user_id = $2 AND status = 'approved' AND expires_at >= $3",
            vec![Param::Text(id.into()), Param::Int(user_id), Param::Int(now.saturating_sub(grace))],
        );
        let success = super::recorded_success(user_id, now);
        Ok(self
            .db
            .atomically(
                vec![
                    Guarded { statement: consume, rows: Some(1) },
                    Guarded { statement: success, rows: None },
                    audited(audit),
                ],
                vec![],
            )
            .await?
            .is_some())
    }

    /// Claims a One Swipe code's nonce for the token: true the first time, false when it was
    /// redeemed before (on any replica). Forgets the token's expired nonces on the way.
    pub async fn claim_one_swipe_nonce(
        &self,
        token_id: i64,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let forget = statement(
            "DELETE FROM oneswipe_nonces WHERE token_id = $1 AND expires_at < $2",
            vec![Param::Int(token_id), Param::Int(now)],
        );
        let claim = statement(
            "INSERT INTO oneswipe_nonces (token_id, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            vec![Param::Int(token_id), Param::Text(nonce.into()), Param::Int(expires_at)],
        );
        let outcome = self
            .db
            .atomically(
                vec![Guarded { statement: forget, rows: None }, Guarded { statement: claim, rows: Some(1) }],
                vec![],
            )
            .await?;
        Ok(outcome.is_some())
    }

    /// Binds a device key to a push token, consuming its enrollment credential (once, before it
    /// expires). A token added in the portal becomes active in the same transaction, and the
    /// token it replaces is deleted (audited as `retired`). False when the credential is wrong, used or expired.
    #[allow(clippy::too_many_arguments)]
    pub async fn register_device(
        &self,
        token_id: i64,
        code_hash: &str,
        device_public_key: &str,
        device_name: Option<&str>,
        wake: Option<(&str, &str)>,
        now: i64,
        audit: &NewAudit<'_>,
        retired: Option<&NewAudit<'_>>,
    ) -> Result<bool, StoreError> {
        let retire = statement(
            "DELETE FROM tokens WHERE serial = (SELECT replaces FROM tokens WHERE id = $1) \
             AND user_id = (SELECT user_id FROM tokens WHERE id = $1)",
            vec![Param::Int(token_id)],
        );
        let register = statement(
            "UPDATE tokens SET device_public_key = $1, device_name = $2, wake_service = $3, wake_token = $4, \
             enrollment_code_hash = NULL, enrollment_expires_at = NULL, pending_until = NULL, replaces = NULL, \
             version = version + 1 \
             WHERE id = $5 AND enrollment_code_hash = $6 AND enrollment_expires_at >= $7 AND device_public_key IS NULL",
            vec![
                Param::Text(device_public_key.into()),
                Param::OptText(device_name.map(Into::into)),
                Param::OptText(wake.map(|(service, _)| service.to_owned())),
                Param::OptText(wake.map(|(_, token)| token.to_owned())),
                Param::Int(token_id),
                Param::Text(code_hash.into()),
                Param::Int(now),
            ],
        );
        Ok(self
            .db
            .atomically(
                [
                    Guarded { statement: retire, rows: None },
                    Guarded { statement: register, rows: Some(1) },
                    audited(audit),
                ]
                .into_iter()
                .chain(retired.map(audited))
                .collect(),
                vec![],
            )
            .await?
            .is_some())
    }

    /// Sets or clears a push token's wake-up address (the device's FCM or APNs token), with an
    /// audit record. False when no registered push token has that serial.
    pub async fn set_wake_address(
        &self,
        serial: &str,
        wake: Option<(&str, &str)>,
        audit: &NewAudit<'_>,
    ) -> Result<bool, StoreError> {
        let update = statement(
            "UPDATE tokens SET wake_service = $1, wake_token = $2 \
             WHERE serial = $3 AND kind = 'push' AND device_public_key IS NOT NULL",
            vec![
                Param::OptText(wake.map(|(service, _)| service.to_owned())),
                Param::OptText(wake.map(|(_, token)| token.to_owned())),
                Param::Text(serial.into()),
            ],
        );
        Ok(self
            .db
            .atomically(vec![Guarded { statement: update, rows: Some(1) }, audited(audit)], vec![])
            .await?
            .is_some())
    }

    /// Forgets a wake-up address the push service called invalid, unless the device has
    /// registered another one meanwhile. True when it was forgotten.
    pub async fn forget_wake_address(&self, serial: &str, wake_token: &str) -> Result<bool, StoreError> {
        let forgotten = self
            .db
            .execute(statement(
                "UPDATE tokens SET wake_service = NULL, wake_token = NULL WHERE serial = $1 AND wake_token = $2",
                vec![Param::Text(serial.into()), Param::Text(wake_token.into())],
            ))
            .await?;
        Ok(forgotten == 1)
    }

    /// Tells every replica that `key` changed (PostgreSQL `NOTIFY`; a no-op on SQLite, which
    /// serves one process).
    pub async fn notify(&self, key: &str) -> Result<(), StoreError> {
        if let super::db::Database::Postgres(_) = &self.db {
            self.db
                .execute(statement("SELECT pg_notify('tessera_push', $1)", vec![Param::Text(key.into())]))
                .await?;
        }
        Ok(())
    }

    /// The PostgreSQL pool, to LISTEN for other replicas' notifications.
    pub fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        match &self.db {
            super::db::Database::Postgres(pool) => Some(pool.clone()),
            super::db::Database::Sqlite(_) => None,
        }
    }

    /// Deletes push transactions older than `before` (seconds); returns how many.
    pub async fn prune_transactions(&self, before: i64) -> Result<u64, StoreError> {
        self.db
            .execute(statement(
                "DELETE FROM push_transactions WHERE created_at < $1",
                vec![Param::Int(before)],
            ))
            .await
    }
}

fn transaction_from(row: &Row) -> Result<TransactionRow, StoreError> {
    let choices = match row.get(8) {
        Some(Value::Text(text)) => {
            text.split(',').filter(|s| !s.is_empty()).filter_map(|n| n.parse().ok()).collect()
        }
        _ => Vec::new(),
    };
    Ok(TransactionRow {
        seq: int_at(Some(row), 0)?,
        id: text_at(row, 1)?,
        user_id: int_at(Some(row), 2)?,
        service: text_at(row, 3)?,
        client_ip: opt_text_at(row, 4)?,
        user_agent: opt_text_at(row, 5)?,
        number_matching: NumberMatching::parse(&text_at(row, 6)?)
            .ok_or(StoreError::Corrupt("number matching"))?,
        number: opt_int_at(row, 7)?,
        choices,
        status: TxStatus::parse(&text_at(row, 9)?).ok_or(StoreError::Corrupt("transaction status"))?,
        deny_reason: opt_text_at(row, 10)?,
        created_at: int_at(Some(row), 11)?,
        expires_at: int_at(Some(row), 12)?,
        answered_at: opt_int_at(row, 13)?,
        answered_by: opt_text_at(row, 14)?,
        channel: TxChannel::parse(&text_at(row, 15)?).ok_or(StoreError::Corrupt("transaction channel"))?,
        code_mac: opt_text_at(row, 16)?,
        tries: u32::try_from(int_at(Some(row), 17)?).map_err(|_| StoreError::Corrupt("transaction tries"))?,
        token_serial: opt_text_at(row, 18)?,
    })
}
