//! Stored credentials of the server's callers: admin API keys and relying-party application keys.
//! Only their SHA-256 is kept; creating and revoking one is audited in the same transaction.

use super::db::{Guarded, Param, Row, statement};
use super::{NewAudit, Store, StoreError, audited, int_at, text_at, unique_violation};

/// An admin API key, as listed (never the key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AdminKeyRow {
    /// Row id (what `revoke-key` takes).
    pub id: i64,
    /// The name given at creation (shown in the audit log as `admin:<name>`).
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A relying-party application.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ApplicationRow {
    /// Row id.
    pub id: i64,
    /// Unique name (shown in the audit log as `app:<name>`).
    pub name: String,
    /// What devices show as the application asking for a login.
    pub service_name: String,
    /// Unix seconds.
    pub created_at: i64,
}

fn admin_key_from(row: &Row) -> Result<AdminKeyRow, StoreError> {
    Ok(AdminKeyRow { id: int_at(Some(row), 0)?, name: text_at(row, 1)?, created_at: int_at(Some(row), 2)? })
}

fn application_from(row: &Row) -> Result<ApplicationRow, StoreError> {
    Ok(ApplicationRow {
        id: int_at(Some(row), 0)?,
        name: text_at(row, 1)?,
        service_name: text_at(row, 2)?,
        created_at: int_at(Some(row), 3)?,
    })
}

impl Store {
    /// Number of admin keys.
    pub async fn admin_key_count(&self) -> Result<i64, StoreError> {
        let rows = self.db.query(statement("SELECT COUNT(*) FROM admin_keys", vec![])).await?;
        int_at(rows.first(), 0)
    }

    /// Stores an admin key's hash, with its audit record.
    pub async fn create_admin_key(
        &self,
        name: &str,
        key_hash: &str,
        now: i64,
        audit: &NewAudit<'_>,
    ) -> Result<(), StoreError> {
        let insert = statement(
            "INSERT INTO admin_keys (name, key_hash, created_at) VALUES ($1, $2, $3)",
            vec![Param::Text(name.into()), Param::Text(key_hash.into()), Param::Int(now)],
        );
        self.db
            .atomically(vec![Guarded { statement: insert, rows: Some(1) }, audited(audit)], vec![])
            .await
            .map_err(|e| unique_violation(e, "admin key"))?;
        Ok(())
    }

    /// Stores `user_id`'s registration code (its hash), replacing any earlier one.
    pub async fn put_registration_code(
        &self,
        user_id: i64,
        code_hash: &str,
        now: i64,
        expires_at: i64,
        audit: &NewAudit<'_>,
    ) -> Result<(), StoreError> {
        let upsert = statement(
            "INSERT INTO registration_codes (user_id, code_hash, issued_at, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id) DO UPDATE SET code_hash = $2, issued_at = $3, expires_at = $4",
            vec![Param::Int(user_id), Param::Text(code_hash.into()), Param::Int(now), Param::Int(expires_at)],
        );
        self.db
            .atomically(vec![Guarded { statement: upsert, rows: Some(1) }, audited(audit)], vec![])
            .await?;
        Ok(())
    }

    /// Uses up `user_id`'s registration code when its hash is `code_hash` and it is live at `now`:
    /// whether it was, once. A code presented for another user is left alone; an expired one is
    /// removed.
    pub async fn take_registration_code(
        &self,
        user_id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let rows = self
            .db
            .query(statement(
                "DELETE FROM registration_codes WHERE user_id = $1 AND code_hash = $2 RETURNING expires_at",
                vec![Param::Int(user_id), Param::Text(code_hash.into())],
            ))
            .await?;
        Ok(match rows.first() {
            Some(row) => int_at(Some(row), 0)? > now,
            None => false,
        })
    }

    /// The name of the admin key with this hash.
    pub async fn admin_key_name(&self, key_hash: &str) -> Result<Option<String>, StoreError> {
        let rows = self
            .db
            .query(statement(
                "SELECT name FROM admin_keys WHERE key_hash = $1",
                vec![Param::Text(key_hash.into())],
            ))
            .await?;
        rows.first().map(|row| text_at(row, 0)).transpose()
    }

    /// The admin keys, oldest first.
    pub async fn admin_keys(&self) -> Result<Vec<AdminKeyRow>, StoreError> {
        let rows = self
            .db
            .query(statement("SELECT id, name, created_at FROM admin_keys ORDER BY id", vec![]))
            .await?;
        rows.iter().map(admin_key_from).collect()
    }

    /// The admin key with this id.
    pub async fn admin_key(&self, id: i64) -> Result<Option<AdminKeyRow>, StoreError> {
        let rows = self
            .db
            .query(statement(
                "SELECT id, name, created_at FROM admin_keys WHERE id = $1",
                vec![Param::Int(id)],
            ))
            .await?;
        rows.first().map(admin_key_from).transpose()
    }

    /// Deletes an admin key, with its audit record; false when there was none.
    pub async fn delete_admin_key(&self, id: i64, audit: &NewAudit<'_>) -> Result<bool, StoreError> {
        let delete = statement("DELETE FROM admin_keys WHERE id = $1", vec![Param::Int(id)]);
        Ok(self
            .db
            .atomically(vec![Guarded { statement: delete, rows: Some(1) }, audited(audit)], vec![])
            .await?
            .is_some())
    }

    /// Stores an application and its key's hash, with its audit record.
    pub async fn create_application(
        &self,
        name: &str,
        key_hash: &str,
        service_name: &str,
        now: i64,
        audit: &NewAudit<'_>,
    ) -> Result<(), StoreError> {
        let insert = statement(
            "INSERT INTO applications (name, key_hash, service_name, created_at) VALUES ($1, $2, $3, $4)",
            vec![
                Param::Text(name.into()),
                Param::Text(key_hash.into()),
                Param::Text(service_name.into()),
                Param::Int(now),
            ],
        );
        self.db
            .atomically(vec![Guarded { statement: insert, rows: Some(1) }, audited(audit)], vec![])
            .await
            .map_err(|e| unique_violation(e, "application"))?;
        Ok(())
    }

    /// The application whose key has this hash.
    pub async fn application_by_key(&self, key_hash: &str) -> Result<Option<ApplicationRow>, StoreError> {
        let rows = self
            .db
            .query(statement(
                "SELECT id, name, service_name, created_at FROM applications WHERE key_hash = $1",
                vec![Param::Text(key_hash.into())],
            ))
            .await?;
        rows.first().map(application_from).transpose()
    }

    /// The applications, by name.
    pub async fn applications(&self) -> Result<Vec<ApplicationRow>, StoreError> {
        let rows = self
            .db
            .query(statement(
                "SELECT id, name, service_name, created_at FROM applications ORDER BY name",
                vec![],
            ))
            .await?;
        rows.iter().map(application_from).collect()
    }

    /// Deletes an application (its key stops working), with its audit record; false when there
    /// was none.
    pub async fn delete_application(&self, name: &str, audit: &NewAudit<'_>) -> Result<bool, StoreError> {
        let delete = statement("DELETE FROM applications WHERE name = $1", vec![Param::Text(name.into())]);
        Ok(self
            .db
            .atomically(vec![Guarded { statement: delete, rows: Some(1) }, audited(audit)], vec![])
            .await?
            .is_some())
    }
}
