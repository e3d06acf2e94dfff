//! RADIUS challenges in progress, shared by every replica: a challenge's `State` is found by its
//! SHA-256 (the octets themselves travel only between the client and the server), taken once.

use super::db::{Param, Row, statement};
use super::{Store, StoreError, int_at, opt_text_at, text_at};

/// An Access-Challenge waiting for the client's next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusState {
    /// SHA-256 of the `State`, hex.
    pub state_hash: String,
    /// The user signing in.
    pub username: String,
    /// The client that asked.
    pub client: String,
    /// The push or sent-code transaction, when there is one.
    pub transaction_id: Option<String>,
    /// Whether the transaction is a push (the next request waits for the phone).
    pub push: bool,
    /// Unix seconds.
    pub expires_at: i64,
}

fn state_from(hash: &str, row: &Row) -> Result<RadiusState, StoreError> {
    Ok(RadiusState {
        state_hash: hash.to_owned(),
        username: text_at(row, 0)?,
        client: text_at(row, 1)?,
        transaction_id: opt_text_at(row, 2)?,
        push: int_at(Some(row), 3)? != 0,
        expires_at: int_at(Some(row), 4)?,
    })
}

impl Store {
    /// Stores a challenge's state.
    pub async fn put_radius_state(&self, state: &RadiusState) -> Result<(), StoreError> {
        self.db
            .execute(statement(
                "INSERT INTO radius_states (state_hash, username, client, transaction_id, push, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    Param::Text(state.state_hash.clone()),
                    Param::Text(state.username.clone()),
                    Param::Text(state.client.clone()),
                    Param::OptText(state.transaction_id.clone()),
                    Param::Int(i64::from(state.push)),
                    Param::Int(state.expires_at),
                ],
            ))
            .await?;
        Ok(())
    }

    /// Takes (deletes and returns) the live state whose hash is `state_hash`: once only.
    pub async fn take_radius_state(
        &self,
        state_hash: &str,
        now: i64,
    ) -> Result<Option<RadiusState>, StoreError> {
        let take = statement(
            "DELETE FROM radius_states WHERE state_hash = $1 AND expires_at > $2 \
             RETURNING username, client, transaction_id, push, expires_at",
            vec![Param::Text(state_hash.into()), Param::Int(now)],
        );
        let rows = self.db.atomically(vec![], vec![take]).await?.map(|(_, rows)| rows).unwrap_or_default();
        rows.into_iter().next().unwrap_or_default().first().map(|row| state_from(state_hash, row)).transpose()
    }

    /// Deletes states that ran out by `now`.
    pub async fn prune_radius_states(&self, now: i64) -> Result<u64, StoreError> {
        self.db
            .execute(statement("DELETE FROM radius_states WHERE expires_at <= $1", vec![Param::Int(now)]))
            .await
    }
}
