//! The self-service portal's sessions, shared by every replica through the database. Rows are
//! found by the SHA-256 of the session id (the id itself lives only in the browser's cookie), so a
//! copy of the table lets nobody in.

use super::db::{Guarded, Param, Row, statement};
use super::delivery::challenge_settlement;
use super::{
    ChallengeRow, ChallengeStatus, NewAudit, StateUpdate, Store, StoreError, TokenKind, audited, int_at,
    opt_int_at, opt_text_at, state_update, text_at,
};

/// Where a portal session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// The password was right; a push approval is awaited.
    AwaitingApproval,
    /// The password was right; the code just sent is awaited.
    AwaitingCode,
    /// Both factors were proved.
    SignedIn,
}

impl SessionStage {
    /// Whether a push or a sent code is awaited.
    pub fn is_challenge(self) -> bool {
        self != Self::SignedIn
    }

    /// The name stored in the `stage` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingApproval => "awaiting_approval",
            Self::AwaitingCode => "awaiting_code",
            Self::SignedIn => "signed_in",
        }
    }

    fn parse(name: &str) -> Result<Self, StoreError> {
        match name {
            "awaiting_approval" => Ok(Self::AwaitingApproval),
            "awaiting_code" => Ok(Self::AwaitingCode),
            "signed_in" => Ok(Self::SignedIn),
            _ => Err(StoreError::Corrupt("unknown portal session stage")),
        }
    }
}

/// A portal session to store.
#[derive(Debug, Clone)]
pub struct NewPortalSession<'a> {
    /// SHA-256 of the session id.
    pub id_hash: String,
    /// The signed-in user.
    pub user_id: i64,
    /// Where it stands.
    pub stage: SessionStage,
    /// The push or sent-code challenge awaited.
    pub transaction_id: Option<&'a str>,
    /// What the page asks of the user while the challenge is awaited.
    pub prompt: Option<&'a str>,
    /// Unix seconds.
    pub now: i64,
    /// When it ends however active (Unix seconds).
    pub expires_at: i64,
    /// When the user last proved a second factor (Unix seconds).
    pub factor_at: Option<i64>,
    /// The kind of token that proved it (none for a registration code).
    pub factor_kind: Option<TokenKind>,
    /// The browser's address.
    pub client_ip: Option<String>,
    /// The browser's `User-Agent`.
    pub user_agent: Option<&'a str>,
}

/// A stored portal session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSessionRow {
    /// The user.
    pub user_id: i64,
    /// The user's name.
    pub username: String,
    /// Where it stands.
    pub stage: SessionStage,
    /// The challenge awaited.
    pub transaction_id: Option<String>,
    /// What the page asks while the challenge is awaited.
    pub prompt: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last request seen (updated at most every few seconds).
    pub last_seen_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds of the last second factor proved.
    pub factor_at: Option<i64>,
    /// The kind of token that proved it.
    pub factor_kind: Option<TokenKind>,
}

fn session_from(row: &Row) -> Result<PortalSessionRow, StoreError> {
    Ok(PortalSessionRow {
        user_id: int_at(Some(row), 0)?,
        username: text_at(row, 1)?,
        stage: SessionStage::parse(&text_at(row, 2)?)?,
        transaction_id: opt_text_at(row, 3)?,
        prompt: opt_text_at(row, 4)?,
        created_at: int_at(Some(row), 5)?,
        last_seen_at: int_at(Some(row), 6)?,
        expires_at: int_at(Some(row), 7)?,
        factor_at: opt_int_at(row, 8)?,
        factor_kind: opt_text_at(row, 9)?.as_deref().and_then(TokenKind::parse),
    })
}

impl Store {
    /// Stores `session`, ending the session `replaces` (its previous id: a new id at every change
    /// of stage, against fixation) in the same transaction, with `audit` when given.
    pub async fn start_portal_session(
        &self,
        session: &NewPortalSession<'_>,
        replaces: Option<&str>,
        audit: Option<&NewAudit<'_>>,
    ) -> Result<(), StoreError> {
        let mut statements = Vec::new();
        if let Some(old) = replaces {
            statements.push(Guarded {
                statement: statement(
                    "DELETE FROM portal_sessions WHERE id_hash = $1",
                    vec![Param::Text(old.into())],
                ),
                rows: None,
            });
        }
        statements.push(Guarded {
            statement: statement(
                "INSERT INTO portal_sessions (id_hash, user_id, stage, transaction_id, prompt, created_at, \
                 last_seen_at, expires_at, factor_at, factor_kind, client_ip, user_agent) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11)",
                vec![
                    Param::Text(session.id_hash.clone()),
                    Param::Int(session.user_id),
                    Param::Text(session.stage.as_str().into()),
                    Param::OptText(session.transaction_id.map(Into::into)),
                    Param::OptText(session.prompt.map(Into::into)),
                    Param::Int(session.now),
                    Param::Int(session.expires_at),
                    Param::OptInt(session.factor_at),
                    Param::OptText(session.factor_kind.map(|kind| kind.as_str().into())),
                    Param::OptText(session.client_ip.clone()),
                    Param::OptText(session.user_agent.map(Into::into)),
                ],
            ),
            rows: Some(1),
        });
        statements.extend(audit.map(audited));
        self.db.atomically(statements, vec![]).await?;
        Ok(())
    }

    /// The session whose id hashes to `id_hash`, with its user's name.
    pub async fn portal_session(&self, id_hash: &str) -> Result<Option<PortalSessionRow>, StoreError> {
        let rows = self
            .db
            .query(statement(
                "SELECT s.user_id, u.username, s.stage, s.transaction_id, s.prompt, s.created_at, \
                 s.last_seen_at, s.expires_at, s.factor_at, s.factor_kind \
                 FROM portal_sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1",
                vec![Param::Text(id_hash.into())],
            ))
            .await?;
        rows.first().map(session_from).transpose()
    }

    /// Records a request on the session at `now`.
    pub async fn touch_portal_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        self.db
            .execute(statement(
                "UPDATE portal_sessions SET last_seen_at = $2 WHERE id_hash = $1 AND last_seen_at < $2",
                vec![Param::Text(id_hash.into()), Param::Int(now)],
            ))
            .await?;
        Ok(())
    }

    /// Ends a session, with `audit` when given: whether there was one.
    pub async fn end_portal_session(
        &self,
        id_hash: &str,
        audit: Option<&NewAudit<'_>>,
    ) -> Result<bool, StoreError> {
        let mut statements = vec![Guarded {
            statement: statement(
                "DELETE FROM portal_sessions WHERE id_hash = $1",
                vec![Param::Text(id_hash.into())],
            ),
            rows: Some(1),
        }];
        statements.extend(audit.map(audited));
        Ok(self.db.atomically(statements, vec![]).await?.is_some())
    }

    /// Deletes sessions that ended by `now` (absolute expiry, or idle since `idle_before`).
    pub async fn prune_portal_sessions(&self, now: i64, idle_before: i64) -> Result<u64, StoreError> {
        self.db
            .execute(statement(
                "DELETE FROM portal_sessions WHERE expires_at <= $1 OR last_seen_at < $2",
                vec![Param::Int(now), Param::Int(idle_before)],
            ))
            .await
    }

    /// Makes a pending token active once its first code was right: the code's state change
    /// (compare-and-swap, so the code is used up), the token it replaces deleted, and the audit
    /// records, in one transaction. False, with nothing changed, when the token moved, is no longer
    /// pending, or its time ran out.
    pub async fn activate_token(
        &self,
        update: &StateUpdate,
        now: i64,
        audit: &NewAudit<'_>,
        retired: Option<&NewAudit<'_>>,
    ) -> Result<bool, StoreError> {
        let statements = activation(update, now, audit, retired)?;
        Ok(self.db.atomically(statements, vec![]).await?.is_some())
    }

    /// Makes a pending SMS token active once the code sent to its number was right, as
    /// [`Store::activate_token`] does, in the same transaction as the challenge it answered (used
    /// up) and, when `phone` is given, the user's phone number on file.
    pub async fn activate_verified_phone(
        &self,
        challenge: &ChallengeRow,
        update: &StateUpdate,
        now: i64,
        phone: Option<&str>,
        audit: &NewAudit<'_>,
        retired: Option<&NewAudit<'_>>,
    ) -> Result<bool, StoreError> {
        let mut statements = vec![challenge_settlement(challenge, ChallengeStatus::Used)];
        statements.extend(phone.map(|phone| Guarded {
            statement: statement(
                "UPDATE users SET phone = $1 WHERE id = $2",
                vec![Param::Text(phone.into()), Param::Int(challenge.user_id)],
            ),
            rows: Some(1),
        }));
        statements.extend(activation(update, now, audit, retired)?);
        Ok(self.db.atomically(statements, vec![]).await?.is_some())
    }

    /// Deletes tokens added in the portal and never proved before `now`.
    pub async fn prune_pending_tokens(&self, now: i64) -> Result<u64, StoreError> {
        self.db
            .execute(statement(
                "DELETE FROM tokens WHERE pending_until IS NOT NULL AND pending_until < $1",
                vec![Param::Int(now)],
            ))
            .await
    }

    /// Gives token `token_id` the name `name`, with its audit record: whether it was there.
    pub async fn rename_token(
        &self,
        token_id: i64,
        name: &str,
        audit: &NewAudit<'_>,
    ) -> Result<bool, StoreError> {
        let rename = statement(
            "UPDATE tokens SET description = $1 WHERE id = $2",
            vec![Param::Text(name.into()), Param::Int(token_id)],
        );
        Ok(self
            .db
            .atomically(vec![Guarded { statement: rename, rows: Some(1) }, audited(audit)], vec![])
            .await?
            .is_some())
    }

    /// Records a second factor of `kind` proved now in the session (step-up).
    pub async fn refresh_portal_factor(
        &self,
        id_hash: &str,
        now: i64,
        kind: Option<TokenKind>,
    ) -> Result<(), StoreError> {
        self.db
            .execute(statement(
                "UPDATE portal_sessions SET factor_at = $2, last_seen_at = $2, factor_kind = $3 WHERE id_hash = $1",
                vec![
                    Param::Text(id_hash.into()),
                    Param::Int(now),
                    Param::OptText(kind.map(|kind| kind.as_str().into())),
                ],
            ))
            .await?;
        Ok(())
    }
}

/// The statements that make a pending token active (its first code's state change, compare-and-
/// swap), delete the token it replaces, and record both.
fn activation(
    update: &StateUpdate,
    now: i64,
    audit: &NewAudit<'_>,
    retired: Option<&NewAudit<'_>>,
) -> Result<Vec<Guarded>, StoreError> {
    let token = Param::Int(update.token_id);
    let retire = statement(
        "DELETE FROM tokens WHERE serial = (SELECT replaces FROM tokens WHERE id = $1) \
         AND user_id = (SELECT user_id FROM tokens WHERE id = $1)",
        vec![token.clone()],
    );
    let activate = statement(
        "UPDATE tokens SET pending_until = NULL, replaces = NULL WHERE id = $1 AND pending_until >= $2",
        vec![token, Param::Int(now)],
    );
    Ok([
        state_update(update)?,
        Guarded { statement: retire, rows: None },
        Guarded { statement: activate, rows: Some(1) },
        audited(audit),
    ]
    .into_iter()
    .chain(retired.map(audited))
    .collect())
}
