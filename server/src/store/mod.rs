//! The database: SQLite (embedded default) or PostgreSQL (shared by replicas), one set of queries.
//!
//! Every query is written once with `$N` placeholders and runs on both backends through the
//! primitives of [`db`]; only the schema's DDL differs per dialect (`migrations/sqlite`,
//! `migrations/postgres`, embedded in the binary). Security state — a token's last accepted step
//! or counter, its failures and lock — changes only by compare-and-swap on the token's `version`,
//! in the same transaction as the audit record of the validation that changed it. Two requests
//! (or two server processes on one PostgreSQL) racing on one token cannot both succeed: the
//! second sees a moved version, re-reads and decides again, and a code the first accepted is then
//! a replay.

#[cfg(test)]
mod contract;
mod credentials;
pub mod db;
mod delivery;
mod portal;
mod push;
mod radius;

pub use credentials::{AdminKeyRow, ApplicationRow};
pub use delivery::{
    ChallengeRow, ChallengeStatus, Channel, DeliveredToken, DeliveryPreference, DeliveryProgress,
    DeliveryRow, DeliveryStatus, MessageMode, NewCall, NewChallenge, NewDelivery, Queued, SendLimit,
    SendLimits, SendResult,
};
pub use portal::{NewPortalSession, PortalSessionRow, SessionStage};
pub use push::{
    NewTransaction, PushLimits, PushRefusal, RecordedAnswer, TransactionRow, TxChannel, TxStatus,
};
pub use radius::{MAX_REPLY_ATTRIBUTES, RadiusReplyAttribute, RadiusState, ReplyAttribute, ReplyValue};

use std::path::Path;

use crate::keys::KeyError;
use db::{Database, Guarded, Param, Row, Statement, Value, statement};
use tessera_core::delivery::DeliveryMode;
use tessera_core::otp::{Algorithm, Digits, OtpMethod, Period};
use tessera_core::push::{PublicKey, WakeAddress};
use tessera_core::secret::SecretBytes;
use tessera_core::verifier::{Lockout, TokenState};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name is taken.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A stored value is out of range (corruption or a foreign writer).
    #[error("stored data is invalid: {0}")]
    Corrupt(&'static str),
    /// PostgreSQL failed.
    #[error("database error: {0}")]
    Postgres(#[from] sqlx::Error),
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A transaction did not commit.
    #[error("the database could not commit: {0}")]
    Commit(String),
    /// The database was closed.
    #[error("the database is not available")]
    Closed,
    /// A compare-and-swap found a moved version (internal; surfaces as `Ok(false)`).
    #[error("the row changed concurrently")]
    VersionMoved,
    /// The data directory cannot be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A user row.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Row id.
    pub id: i64,
    /// Unique user name.
    pub username: String,
    /// Argon2id PHC string of the password/PIN, if the user has one.
    pub password_hash: Option<String>,
    /// Phone number for SMS/voice delivery.
    pub phone: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Pushes are muted until this time (after a "not me").
    pub push_muted_until: Option<i64>,
    /// The last successful login (the push fatigue window starts here).
    pub last_success_at: Option<i64>,
    /// Consecutive wrong passwords and the lock they caused.
    pub password_lockout: Lockout,
    /// Where a code goes when the user gives only their password.
    pub delivery_preference: DeliveryPreference,
    /// The name people know the user by.
    pub display_name: Option<String>,
    /// The `[[directory]]` the user comes from; their password is checked there.
    pub directory: Option<String>,
    /// When that directory stopped listing the user (Unix seconds): they cannot log in.
    pub directory_gone_at: Option<i64>,
    /// The attributes their RADIUS Access-Accepts carry.
    pub radius_reply: Vec<ReplyAttribute>,
}

/// A user to insert.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewUserRow<'a> {
    /// Unique user name.
    pub username: &'a str,
    /// Argon2id PHC string of a local password/PIN.
    pub password_hash: Option<&'a str>,
    /// Phone (E.164).
    pub phone: Option<&'a str>,
    /// Email address.
    pub email: Option<&'a str>,
    /// The name people know the user by.
    pub display_name: Option<&'a str>,
    /// The `[[directory]]` the user comes from.
    pub directory: Option<&'a str>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A token row.
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Row id.
    pub id: i64,
    /// Public identifier.
    pub serial: String,
    /// Owner.
    pub user_id: i64,
    /// What kind of token it is.
    pub kind: TokenKind,
    /// `SHA1`, `SHA256`, `SHA512`.
    pub algorithm: String,
    /// Code length.
    pub digits: i64,
    /// TOTP period.
    pub period: i64,
    /// Seed sealed with the server key.
    pub seed: Option<Vec<u8>>,
    /// Free text.
    pub description: Option<String>,
    /// Verification state.
    pub state: TokenState,
    /// Compare-and-swap version.
    pub version: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last accepted code.
    pub last_used_at: Option<i64>,
    /// A push token's device side (present exactly for push tokens).
    pub push: Option<PushDevice>,
    /// A delivered token's mode and progress (present exactly for SMS and email tokens).
    pub delivery: Option<DeliveredToken>,
    /// A temporary passcode's hash, expiry and allowance (present exactly for `temp` tokens; the
    /// state's counter counts its uses).
    pub temporary: Option<TemporaryPasscode>,
    /// Added in the portal and not proved yet: it accepts no code until then.
    pub pending: Option<PendingToken>,
}

/// A token the user added in the portal, waiting for its first code or its device's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingToken {
    /// Unix seconds after which it is given up (and pruned).
    pub until: i64,
    /// The serial of the user's token it retires when it is proved (replace my phone).
    pub replaces: Option<String>,
}

/// A temporary passcode as stored: never the passcode itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporaryPasscode {
    /// Argon2id PHC string of the passcode.
    pub hash: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Logins it may complete.
    pub max_uses: u32,
}

/// A push token's device side: the enrollment credential until a device registers, then the
/// device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushDevice {
    /// No device has registered; the credential is gone once used (and never was for a token
    /// whose link was not issued).
    Unregistered(Option<PendingEnrollment>),
    /// A device registered with its key.
    Registered(RegisteredDevice),
}

/// A push token's single-use enrollment credential, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEnrollment {
    /// SHA-256 (hex) of the credential.
    pub code_hash: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The device a push token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredDevice {
    /// Its Ed25519 public key (base64url).
    pub public_key: String,
    /// The name it gave ("Pixel 8").
    pub name: Option<String>,
    /// Where FCM or APNs can wake it, when it said.
    pub wake: Option<WakeAddress>,
}

/// Token kinds that can be enrolled by this server so far.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Time-based codes.
    Totp,
    /// Counter-based codes.
    Hotp,
    /// A push device (the Tessera app or CLI): approves logins, and is a TOTP token too.
    Push,
    /// Codes sent by text message (HOTP; the seed never leaves the server).
    Sms,
    /// Codes sent by email (HOTP; the seed never leaves the server). Administrators only.
    Email,
    /// A temporary passcode the help desk hands out: a few uses within a few hours.
    Temp,
    /// A phone (a number or a desk extension's SIP URI) that is called at login: the user keys
    /// in the code their login screen shows.
    Voice,
}

impl TokenKind {
    /// The name stored in the `kind` column and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Hotp => "hotp",
            Self::Push => "push",
            Self::Sms => "sms",
            Self::Email => "email",
            Self::Temp => "temp",
            Self::Voice => "voice",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Totp, Self::Hotp, Self::Push, Self::Sms, Self::Email, Self::Temp, Self::Voice]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// What users call it: "Tessera app", "Authenticator app", "Text messages"…
    pub fn title(self) -> &'static str {
        match self {
            Self::Push => "Tessera app",
            Self::Totp => "Authenticator app",
            Self::Hotp => "Hardware token",
            Self::Sms => "Text messages",
            Self::Email => "Email",
            Self::Temp => "Temporary passcode",
            Self::Voice => "Phone call",
        }
    }

    /// Whether codes come from a clock (TOTP and push tokens) rather than a counter.
    pub fn is_time_based(self) -> bool {
        matches!(self, Self::Totp | Self::Push)
    }

    /// How a delivered kind's codes travel (`None` for tokens that make their own codes).
    pub fn channel(self) -> Option<Channel> {
        match self {
            Self::Sms => Some(Channel::Sms),
            Self::Email => Some(Channel::Email),
            Self::Voice => Some(Channel::Voice),
            Self::Totp | Self::Hotp | Self::Push | Self::Temp => None,
        }
    }
}

impl TokenRow {
    /// The token's code parameters (its HOTP counter from its state).
    pub fn otp_method(&self) -> Result<OtpMethod, StoreError> {
        let corrupt = |_| StoreError::Corrupt("token parameters");
        let algorithm = Algorithm::parse(&self.algorithm).map_err(corrupt)?;
        let digits = Digits::new(u8::try_from(self.digits).unwrap_or(0)).map_err(corrupt)?;
        Ok(if self.kind.is_time_based() {
            let period = Period::new(u32::try_from(self.period).unwrap_or(0)).map_err(corrupt)?;
            OtpMethod::Totp { algorithm, digits, period }
        } else {
            OtpMethod::Hotp { algorithm, digits, counter: self.state.counter }
        })
    }

    /// The token's seed, opened with the server key (a token without one is as unreadable as a
    /// tampered one).
    pub fn open_seed(&self, key: &crate::keys::ServerKey) -> Result<SecretBytes, KeyError> {
        key.open_seed(&self.serial, self.seed.as_deref().ok_or(KeyError::Undecryptable)?)
    }

    /// The write that moves this token to `state`, applied only if its version is still the one
    /// read (compare-and-swap); `used_at` when it accepted a code.
    pub fn moved_to(&self, state: TokenState, used_at: Option<i64>) -> StateUpdate {
        StateUpdate { token_id: self.id, expected_version: self.version, state, used_at, delivery: None }
    }

    /// The device of a push token that has one.
    pub fn device(&self) -> Option<&RegisteredDevice> {
        match &self.push {
            Some(PushDevice::Registered(device)) => Some(device),
            _ => None,
        }
    }

    /// The registered device's public key (a stored key that does not parse counts as none).
    pub fn device_key(&self) -> Option<PublicKey> {
        self.device().and_then(|device| PublicKey::parse(&device.public_key).ok())
    }

    /// Whether this is a temporary passcode that can still log in at `now`.
    pub fn is_live_temporary(&self, now: i64) -> bool {
        self.temporary
            .as_ref()
            .is_some_and(|t| now < t.expires_at && self.state.counter < u64::from(t.max_uses))
    }

    /// Whether this is a push token whose device has registered and which is enabled.
    pub fn is_registered_push_device(&self) -> bool {
        self.device().is_some() && self.state.enabled
    }
}

/// An audit record's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditResult {
    /// An administrative action or a device's step succeeded.
    Ok,
    /// A login was accepted.
    Accept,
    /// Refused.
    Reject,
    /// More is needed (a push sent, a passcode asked for).
    Challenge,
    /// Something an administrator should look at ("not me").
    Alert,
}

impl AuditResult {
    /// The name stored in the `result` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Challenge => "challenge",
            Self::Alert => "alert",
        }
    }
}

/// A new token.
pub struct NewToken<'a> {
    /// Public identifier.
    pub serial: &'a str,
    /// Owner.
    pub user_id: i64,
    /// Kind.
    pub kind: TokenKind,
    /// Algorithm name.
    pub algorithm: &'a str,
    /// Digits.
    pub digits: i64,
    /// Period.
    pub period: i64,
    /// Sealed seed.
    pub seed: &'a [u8],
    /// HOTP: the next counter (an imported token's); 0 for a new one.
    pub counter: i64,
    /// Free text.
    pub description: Option<&'a str>,
    /// Unix seconds.
    pub created_at: i64,
    /// Push tokens: SHA-256 (hex) of the enrollment credential.
    pub enrollment_code_hash: Option<&'a str>,
    /// Push tokens: when the enrollment credential expires.
    pub enrollment_expires_at: Option<i64>,
    /// SMS and email tokens: their mode and destination.
    pub delivery: Option<&'a DeliveredToken>,
    /// Temporary passcodes: the hash, expiry and allowance.
    pub temporary: Option<&'a TemporaryPasscode>,
    /// Added in the portal: pending until proved.
    pub pending: Option<&'a PendingToken>,
}

/// One audit record. Never holds a seed, PIN, password or passcode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// `admin:<key name>`, `validate`, `cli`.
    pub actor: String,
    /// `validate`, `user.create`, `token.enroll`, ...
    pub action: String,
    /// The user concerned.
    pub username: Option<String>,
    /// The token concerned.
    pub serial: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
    /// `accept`, `reject`, `ok`.
    pub result: String,
    /// Why (internal detail, for operators).
    pub reason: Option<String>,
}

/// Filters for [`Store::audit_entries`].
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct AuditFilter {
    /// Only this user.
    pub username: Option<String>,
    /// Only this token.
    pub serial: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this result.
    pub result: Option<String>,
    /// From this time (Unix ms, inclusive).
    pub since_ms: Option<i64>,
    /// Before this id (paging backwards).
    pub before_id: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// A token's seed as stored, sealed with the server key.
#[derive(Debug, Clone)]
pub struct SealedSeed {
    /// Token row id.
    pub token_id: i64,
    /// The token's serial (the seal's associated data).
    pub serial: String,
    /// `nonce | ciphertext | tag`.
    pub sealed: Vec<u8>,
}

/// A token state change guarded by the version it was computed from.
#[derive(Debug, Clone)]
pub struct StateUpdate {
    /// Token row id.
    pub token_id: i64,
    /// The version the new state was computed from.
    pub expected_version: i64,
    /// The new state.
    pub state: TokenState,
    /// Set when a code was accepted.
    pub used_at: Option<i64>,
    /// A delivered token's new progress, when codes were sent.
    pub delivery: Option<DeliveryProgress>,
}

/// An audit record to append.
#[derive(Debug, Clone, Copy)]
pub struct NewAudit<'a> {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Who acted.
    pub actor: &'a str,
    /// What was done.
    pub action: &'a str,
    /// The user concerned.
    pub username: Option<&'a str>,
    /// The token concerned.
    pub serial: Option<&'a str>,
    /// The client's address.
    pub client_ip: Option<&'a str>,
    /// Outcome.
    pub result: AuditResult,
    /// Why.
    pub reason: Option<&'a str>,
}

/// The user columns every user query reads, in the order `user_from` expects.
macro_rules! user_columns {
    () => {
        "id, username, password_hash, phone, email, created_at, push_muted_until, last_success_at, \
         password_failures, password_locked_at, delivery_preference, display_name, directory, directory_gone_at, \
         radius_reply"
    };
}

const USER_COLUMNS_BY_NAME: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE username = $1");
const OWNER_OF_SERIAL: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE id = (SELECT user_id FROM tokens WHERE serial = $1)"
);
/// The token columns every token query reads, in the order `token_from` expects.
macro_rules! token_columns {
    () => {
        "id, serial, user_id, kind, algorithm, digits, period, seed, description, enabled, counter, last_step, drift, \
         failures, locked_at, version, created_at, last_used_at, device_public_key, device_name, enrollment_code_hash, \
         enrollment_expires_at, wake_service, wake_token, delivery_mode, destination, ttl_secs, period_days, issued_upto, \
         last_delivered_period, passcode_hash, expires_at, max_uses, pending_until, replaces"
    };
}

const TOKENS_OF_USER: &str =
    concat!("SELECT ", token_columns!(), " FROM tokens WHERE user_id = $1 ORDER BY id");
const TOKENS_OF_USERNAME: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM tokens WHERE user_id = (SELECT id FROM users WHERE username = $1) ORDER BY id"
);
const TOKEN_BY_SERIAL: &str = concat!("SELECT ", token_columns!(), " FROM tokens WHERE serial = $1");
const TOKEN_BY_ID: &str = concat!("SELECT ", token_columns!(), " FROM tokens WHERE id = $1");
const INSERT_AUDIT: &str = "INSERT INTO audit (at_ms, actor, action, username, serial, client_ip, result, reason) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// The database, with Tessera's queries.
#[derive(Clone)]
pub struct Store {
    db: Database,
    backend: Backend,
}

impl Store {
    /// Connects (creating a SQLite file and its directory if needed) and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = Path::new(path.split('?').next().unwrap_or(path));
            create_parent_dir(path)?;
            let store =
                Self { db: Database::Sqlite(db::SqliteThread::open(path)?), backend: Backend::Sqlite };
            store.migrate_sqlite().await?;
            store
        } else {
            let pool = db::connect_postgres(url).await?;
            let migrations = [
                ("init", include_str!("../../migrations/postgres/0001_init.sql")),
                ("push", include_str!("../../migrations/postgres/0002_push.sql")),
                ("oneswipe", include_str!("../../migrations/postgres/0003_oneswipe.sql")),
                ("review", include_str!("../../migrations/postgres/0004_review.sql")),
                ("delivery", include_str!("../../migrations/postgres/0005_delivery.sql")),
                ("directory", include_str!("../../migrations/postgres/0006_directory.sql")),
                ("registration", include_str!("../../migrations/postgres/0007_registration.sql")),
                ("portal", include_str!("../../migrations/postgres/0008_portal.sql")),
                ("radius", include_str!("../../migrations/postgres/0009_radius.sql")),
                ("radius_reply", include_str!("../../migrations/postgres/0010_radius_reply.sql")),
                ("voice", include_str!("../../migrations/postgres/0011_voice.sql")),
            ];
            let migrations = (1i64..)
                .zip(migrations)
                .map(|(version, (name, sql))| {
                    sqlx::migrate::Migration::new(
                        version,
                        std::borrow::Cow::Borrowed(name),
                        sqlx::migrate::MigrationType::Simple,
                        sqlx::SqlStr::from_static(sql),
                        false,
                    )
                })
                .collect();
            sqlx::migrate::Migrator::with_migrations(migrations).run(&pool).await?;
            Self { db: Database::Postgres(pool), backend: Backend::Postgres }
        };
        Ok(store)
    }

    /// Applies the SQLite schema versions past `PRAGMA user_version`, each in a transaction.
    async fn migrate_sqlite(&self) -> Result<(), StoreError> {
        const MIGRATIONS: [&str; 11] = [
            include_str!("../../migrations/sqlite/0001_init.sql"),
            include_str!("../../migrations/sqlite/0002_push.sql"),
            include_str!("../../migrations/sqlite/0003_oneswipe.sql"),
            include_str!("../../migrations/sqlite/0004_review.sql"),
            include_str!("../../migrations/sqlite/0005_delivery.sql"),
            include_str!("../../migrations/sqlite/0006_directory.sql"),
            include_str!("../../migrations/sqlite/0007_registration.sql"),
            include_str!("../../migrations/sqlite/0008_portal.sql"),
            include_str!("../../migrations/sqlite/0009_radius.sql"),
            include_str!("../../migrations/sqlite/0010_radius_reply.sql"),
            include_str!("../../migrations/sqlite/0011_voice.sql"),
        ];
        let version = match self
            .db
            .query(statement("PRAGMA user_version", vec![]))
            .await?
            .first()
            .and_then(|r| r.first())
        {
            Some(Value::Int(version)) => *version,
            _ => 0,
        };
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
            self.db.migrate_sqlite(sql, i64::try_from(index + 1).unwrap_or(i64::MAX)).await?;
        }
        Ok(())
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the database.
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        self.db.query(statement("SELECT 1", vec![])).await.is_ok()
    }

    // --- meta ---------------------------------------------------------------------------------

    /// A value of the `meta` table.
    pub async fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self
            .db
            .query(statement("SELECT value FROM meta WHERE name = $1", vec![Param::Text(name.into())]))
            .await?;
        match rows.first().and_then(|r| r.first()) {
            Some(Value::Blob(bytes)) => Ok(Some(bytes.clone())),
            None => Ok(None),
            Some(_) => Err(StoreError::Corrupt("meta value")),
        }
    }

    /// Every token's row id, serial and sealed seed.
    pub async fn sealed_seeds(&self) -> Result<Vec<SealedSeed>, StoreError> {
        let rows = self
            .db
            .query(statement(
                "SELECT id, serial, seed FROM tokens WHERE seed IS NOT NULL ORDER BY id",
                vec![],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SealedSeed {
                    token_id: int_at(Some(row), 0)?,
                    serial: text_at(row, 1)?,
                    sealed: match row.get(2) {
                        Some(Value::Blob(bytes)) => bytes.clone(),
                        _ => return Err(StoreError::Corrupt("expected a blob column")),
                    },
                })
            })
            .collect()
    }

    /// Replaces every sealed seed (each only if it is still the one read), sets the `meta`
    /// values, and records `marker`, all in one transaction. False when another process did it
    /// first (the marker exists) or a seed changed meanwhile.
    pub async fn reseal(
        &self,
        seeds: &[(SealedSeed, Vec<u8>)],
        meta: &[(&str, Vec<u8>)],
        marker: (&str, &[u8]),
    ) -> Result<bool, StoreError> {
        let mut statements = vec![Guarded {
            statement: statement(
                "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                vec![Param::Text(marker.0.into()), Param::Blob(marker.1.to_vec())],
            ),
            rows: Some(1),
        }];
        for (old, new) in seeds {
            statements.push(Guarded {
                statement: statement(
                    "UPDATE tokens SET seed = $1 WHERE id = $2 AND seed = $3",
                    vec![Param::Blob(new.clone()), Param::Int(old.token_id), Param::Blob(old.sealed.clone())],
                ),
                rows: Some(1),
            });
        }
        for (name, value) in meta {
            statements.push(Guarded {
                statement: statement(
                    "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",
                    vec![Param::Text((*name).into()), Param::Blob(value.clone())],
                ),
                rows: Some(1),
            });
        }
        Ok(self.db.atomically(statements, vec![]).await?.is_some())
    }

    // --- users --------------------------------------------------------------------------------

    /// Inserts a user, with its audit record.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        phone: Option<&str>,
        email: Option<&str>,
        now: i64,
        audit: &NewAudit<'_>,
    ) -> Result<UserRow, StoreError> {
        let user =
            NewUserRow { username, password_hash, phone, email, created_at: now, ..NewUserRow::default() };
        self.insert_user(&user, audit).await
    }

    /// Inserts a user described in full (a directory's or an imported one), with its audit record.
    pub async fn insert_user(
        &self,
        user: &NewUserRow<'_>,
        audit: &NewAudit<'_>,
    ) -> Result<UserRow, StoreError> {
        let insert = user_insert(user);
        let username = user.username;
        let read = statement(USER_COLUMNS_BY_NAME, vec![Param::Text(username.into())]);
        let created = self
            .db
            .atomically(vec![Guarded { statement: insert, rows: Some(1) }, audited(audit)], vec![read])
            .await
            .map_err(|e| unique_violation(e, "user"))?;
        let rows = created.map(|(_, rows)| rows).unwrap_or_default();
        rows.first()
            .and_then(|r| r.first())
            .map(user_from)
            .ok_or(StoreError::Corrupt("created user vanished"))?
    }

    /// A user by name.
    pub async fn user(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let rows = self.db.query(statement(USER_COLUMNS_BY_NAME, vec![Param::Text(username.into())])).await?;
        rows.first().map(user_from).transpose()
    }

    /// A user and their tokens, in one round trip (the validation hot path).
    pub async fn user_with_tokens(
        &self,
        username: &str,
    ) -> Result<Option<(UserRow, Vec<TokenRow>)>, StoreError> {
        let name = || Param::Text(username.into());
        let results = self
            .db
            .read(vec![
                statement(USER_COLUMNS_BY_NAME, vec![name()]),
                statement(TOKENS_OF_USERNAME, vec![name()]),
            ])
            .await?;
        let mut results = results.into_iter();
        let user = results.next().unwrap_or_default();
        let Some(user) = user.first().map(user_from).transpose()? else { return Ok(None) };
        let tokens = results.next().unwrap_or_default().iter().map(token_from).collect::<Result<_, _>>()?;
        Ok(Some((user, tokens)))
    }

    /// All users, by name.
    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = self
            .db
            .query(statement(concat!("SELECT ", user_columns!(), " FROM users ORDER BY username"), vec![]))
            .await?;
        rows.iter().map(user_from).collect()
    }

    /// The name of the user with this id.
    pub async fn username_of(&self, user_id: i64) -> Result<Option<String>, StoreError> {
        let rows = self
            .db
            .query(statement("SELECT username FROM users WHERE id = $1", vec![Param::Int(user_id)]))
            .await?;
        Ok(rows.first().and_then(|r| r.first()).and_then(|v| match v {
            Value::Text(name) => Some(name.clone()),
            _ => None,
        }))
    }

    /// Inserts users in one transaction, each with its audit record: all of them or none.
    pub async fn create_users(&self, users: Vec<(NewUserRow<'_>, NewAudit<'_>)>) -> Result<(), StoreError> {
        let mut statements = Vec::with_capacity(users.len() * 2);
        for (user, audit) in &users {
            statements.push(Guarded { statement: user_insert(user), rows: Some(1) });
            statements.push(audited(audit));
        }
        self.db
            .atomically(statements, vec![])
            .await
            .map_err(|e| unique_violation(e, "user"))?
            .map(|_| ())
            .ok_or(StoreError::Corrupt("a user insert wrote no row"))
    }

    /// The users a directory brought in.
    pub async fn directory_users(&self, directory: &str) -> Result<Vec<UserRow>, StoreError> {
        const SQL: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE directory = $1 ORDER BY id");
        self.db
            .query(statement(SQL, vec![Param::Text(directory.into())]))
            .await?
            .iter()
            .map(user_from)
            .collect()
    }

    /// A directory no longer lists `user`: from `at` they cannot log in, and their tokens are
    /// disabled, in one transaction with its audit record.
    pub async fn directory_gone(
        &self,
        user: &UserRow,
        at: i64,
        audit: &NewAudit<'_>,
    ) -> Result<(), StoreError> {
        let gone = statement(
            "UPDATE users SET directory_gone_at = $1 WHERE id = $2 AND directory_gone_at IS NULL",
            vec![Param::Int(at), Param::Int(user.id)],
        );
        let disabled = statement(
            "UPDATE tokens SET enabled = 0, version = version + 1 WHERE user_id = $1 AND enabled = 1",
            vec![Param::Int(user.id)],
        );
        self.db
            .atomically(
                vec![
                    Guarded { statement: gone, rows: Some(1) },
                    Guarded { statement: disabled, rows: None },
                    audited(audit),
                ],
                vec![],
            )
            .await?;
        Ok(())
    }

    /// Replaces a user's password hash, phone, email, preference, display name and directory
    /// standing, with its audit record; false when the user no longer exists.
    pub async fn update_user(&self, user: &UserRow, audit: &NewAudit<'_>) -> Result<bool, StoreError> {
        let update = statement(
            "UPDATE users SET password_hash = $1, phone = $2, email = $3, delivery_preference = $5, \
             display_name = $6, directory = $7, directory_gone_at = $8, radius_reply = $9 WHERE id = $4",
            vec![
                Param::OptText(user.password_hash.clone()),
                Param::OptText(user.phone.clone()),
                Param::OptText(user.email.clone()),
                Param::Int(user.id),
                Param::Text(user.delivery_preference.as_str().into()),
                Param::OptText(user.display_name.clone()),
                Param::OptText(user.directory.clone()),
                Param::OptInt(user.directory_gone_at),
                Param::OptText(radius::reply_attributes_json(&user.radius_reply)),
            ],
        );
        Ok(self
            .db
            .atomically(vec![Guarded { statement: update, rows: Some(1) }, audited(audit)], vec![])
            .await?
            .is_some())
    }

    /// Deletes a user and their tokens, with its audit record; false when there was no such user.
    pub async fn delete_user(&self, username: &str, audit: &NewAudit<'_>) -> Result<bool, StoreError> {
        let name = || Param::Text(username.into());
        let deleted = self
            .db
            .atomically(
                vec![
                    Guarded {
                        statement: statement(
                            "DELETE FROM tokens WHERE user_id IN (SELECT id FROM users WHERE username = $1)",
                            vec![name()],
                        ),
                        rows: None,
                    },
                    Guarded {
                        statement: statement("DELETE FROM users WHERE username = $1", vec![name()]),
                        rows: Some(1),
                    },
                    audited(audit),
                ],
                vec![],
            )
            .await?;
        Ok(deleted.is_some())
    }

    // --- tokens -------------------------------------------------------------------------------

    /// Inserts a token in its initial state, with its audit record.
    pub async fn create_token(&self, token: NewToken<'_>, audit: &NewAudit<'_>) -> Result<(), StoreError> {
        self.create_tokens(vec![(token, *audit)]).await
    }

    /// Inserts tokens in their initial state, each with its audit record, in one transaction: all
    /// of them or none.
    pub async fn create_tokens(&self, tokens: Vec<(NewToken<'_>, NewAudit<'_>)>) -> Result<(), StoreError> {
        let mut statements = Vec::with_capacity(tokens.len() * 2);
        for (token, audit) in &tokens {
            statements.push(Guarded { statement: token_insert(token), rows: Some(1) });
            statements.push(audited(audit));
        }
        self.db
            .atomically(statements, vec![])
            .await
            .map_err(|e| unique_violation(e, "token serial"))?
            .map(|_| ())
            .ok_or(StoreError::Corrupt("a token insert wrote no row"))
    }

    /// A user's tokens, oldest first.
    pub async fn tokens_of(&self, user_id: i64) -> Result<Vec<TokenRow>, StoreError> {
        self.db
            .query(statement(TOKENS_OF_USER, vec![Param::Int(user_id)]))
            .await?
            .iter()
            .map(token_from)
            .collect()
    }

    /// A token by serial.
    pub async fn token(&self, serial: &str) -> Result<Option<TokenRow>, StoreError> {
        let rows = self.db.query(statement(TOKEN_BY_SERIAL, vec![Param::Text(serial.into())])).await?;
        rows.first().map(token_from).transpose()
    }

    /// A token by row id.
    pub async fn token_by_id(&self, id: i64) -> Result<Option<TokenRow>, StoreError> {
        let rows = self.db.query(statement(TOKEN_BY_ID, vec![Param::Int(id)])).await?;
        rows.first().map(token_from).transpose()
    }

    /// A token and the user it belongs to, in one round trip.
    pub async fn token_with_owner(&self, serial: &str) -> Result<Option<(TokenRow, UserRow)>, StoreError> {
        let serial = || Param::Text(serial.into());
        let results = self
            .db
            .read(vec![
                statement(TOKEN_BY_SERIAL, vec![serial()]),
                statement(OWNER_OF_SERIAL, vec![serial()]),
            ])
            .await?;
        let mut results = results.into_iter();
        let token = results.next().unwrap_or_default().first().map(token_from).transpose()?;
        let owner = results.next().unwrap_or_default().first().map(user_from).transpose()?;
        Ok(token.zip(owner))
    }

    /// Deletes a token, with its audit record; false when there was none.
    pub async fn delete_token(&self, serial: &str, audit: &NewAudit<'_>) -> Result<bool, StoreError> {
        let delete = statement("DELETE FROM tokens WHERE serial = $1", vec![Param::Text(serial.into())]);
        Ok(self
            .db
            .atomically(vec![Guarded { statement: delete, rows: Some(1) }, audited(audit)], vec![])
            .await?
            .is_some())
    }

    /// Applies token state changes, the user's change and an audit record in one transaction.
    /// Returns false (and changes nothing) when any token's version, or the user's password
    /// failure count, moved since it was read.
    pub async fn commit(
        &self,
        updates: &[StateUpdate],
        user: Option<&UserChange>,
        audit: &NewAudit<'_>,
    ) -> Result<bool, StoreError> {
        let mut statements = updates.iter().map(state_update).collect::<Result<Vec<_>, _>>()?;
        if let Some(change) = user {
            statements.push(user_change(change)?);
        }
        statements.push(audited(audit));
        Ok(self.db.atomically(statements, vec![]).await?.is_some())
    }

    // --- audit --------------------------------------------------------------------------------

    /// Appends an audit record.
    pub async fn audit(&self, entry: &NewAudit<'_>) -> Result<(), StoreError> {
        self.db.execute(audit_statement(entry)).await?;
        Ok(())
    }

    /// Deletes audit records older than `before_ms`; returns how many.
    pub async fn prune_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.db.execute(statement("DELETE FROM audit WHERE at_ms < $1", vec![Param::Int(before_ms)])).await
    }

    /// Audit records matching `filter`, newest first.
    pub async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .db
            .query(statement(
                "SELECT id, at_ms, actor, action, username, serial, client_ip, result, reason FROM audit \
                 WHERE ($1 IS NULL OR username = $1) AND ($2 IS NULL OR serial = $2) AND ($3 IS NULL OR action = $3) \
                 AND ($4 IS NULL OR result = $4) AND ($5 IS NULL OR at_ms >= $5) AND ($6 IS NULL OR id < $6) \
                 ORDER BY id DESC LIMIT $7",
                vec![
                    Param::OptText(filter.username.clone()),
                    Param::OptText(filter.serial.clone()),
                    Param::OptText(filter.action.clone()),
                    Param::OptText(filter.result.clone()),
                    Param::OptInt(filter.since_ms),
                    Param::OptInt(filter.before_id),
                    Param::Int(filter.limit.unwrap_or(100).clamp(1, 1000)),
                ],
            ))
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: int_at(Some(r), 0)?,
                    at_ms: int_at(Some(r), 1)?,
                    actor: text_at(r, 2)?,
                    action: text_at(r, 3)?,
                    username: opt_text_at(r, 4)?,
                    serial: opt_text_at(r, 5)?,
                    client_ip: opt_text_at(r, 6)?,
                    result: text_at(r, 7)?,
                    reason: opt_text_at(r, 8)?,
                })
            })
            .collect()
    }
}

impl Database {
    /// Applies one SQLite schema script and records its version, atomically.
    async fn migrate_sqlite(&self, sql: &'static str, version: i64) -> Result<(), StoreError> {
        let Database::Sqlite(thread) = self else { return Ok(()) };
        thread.migrate(sql, version).await
    }
}

/// What a validation changes on its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    /// A successful login at this time: the push fatigue window restarts there and the password
    /// failures are cleared.
    Success {
        /// The user.
        user_id: i64,
        /// Unix seconds.
        at: i64,
    },
    /// A wrong password: the new lockout, applied only if the failure count is still the one
    /// read (compare-and-swap, as for tokens).
    WrongPassword {
        /// The user.
        user_id: i64,
        /// The failure count the new lockout was computed from.
        expected_failures: u32,
        /// The new lockout.
        lockout: Lockout,
    },
    /// An administrator's unlock.
    Unlock {
        /// The user.
        user_id: i64,
    },
}

fn user_change(change: &UserChange) -> Result<Guarded, StoreError> {
    Ok(match *change {
        UserChange::Success { user_id, at } => {
            Guarded { statement: recorded_success(user_id, at), rows: None }
        }
        UserChange::WrongPassword { user_id, expected_failures, lockout } => Guarded {
            statement: statement(
                "UPDATE users SET password_failures = $1, password_locked_at = $2 \
                 WHERE id = $3 AND password_failures = $4",
                vec![
                    Param::Int(i64::from(lockout.failures)),
                    Param::OptInt(lockout.locked_at.map(to_i64).transpose()?),
                    Param::Int(user_id),
                    Param::Int(i64::from(expected_failures)),
                ],
            ),
            rows: Some(1),
        },
        UserChange::Unlock { user_id } => Guarded {
            statement: statement(
                "UPDATE users SET password_failures = 0, password_locked_at = NULL WHERE id = $1",
                vec![Param::Int(user_id)],
            ),
            rows: None,
        },
    })
}

/// Records a user's successful login (the push fatigue window restarts there) and clears their
/// password failures.
fn recorded_success(user_id: i64, at: i64) -> Statement {
    statement(
        "UPDATE users SET last_success_at = $1, password_failures = 0, password_locked_at = NULL WHERE id = $2",
        vec![Param::Int(at), Param::Int(user_id)],
    )
}

/// A token's compare-and-swap state change: applies only if the version is the one read.
fn state_update(update: &StateUpdate) -> Result<Guarded, StoreError> {
    let s = &update.state;
    Ok(Guarded {
        statement: statement(
            "UPDATE tokens SET enabled = $1, counter = $2, last_step = $3, drift = $4, failures = $5, \
             locked_at = $6, last_used_at = COALESCE($7, last_used_at), version = version + 1, \
             issued_upto = COALESCE($10, issued_upto), last_delivered_period = COALESCE($11, last_delivered_period) \
             WHERE id = $8 AND version = $9",
            vec![
                Param::Int(i64::from(s.enabled)),
                Param::Int(to_i64(s.counter)?),
                Param::OptInt(s.last_step.map(to_i64).transpose()?),
                Param::Int(s.drift),
                Param::Int(i64::from(s.failures)),
                Param::OptInt(s.locked_at.map(to_i64).transpose()?),
                Param::OptInt(update.used_at),
                Param::Int(update.token_id),
                Param::Int(update.expected_version),
                Param::OptInt(update.delivery.map(|d| to_i64(d.issued_upto)).transpose()?),
                Param::OptInt(update.delivery.and_then(|d| d.last_delivered_period).map(to_i64).transpose()?),
            ],
        ),
        rows: Some(1),
    })
}

/// The audit record's insert, as a statement that must add one row.
fn audited(audit: &NewAudit<'_>) -> Guarded {
    Guarded { statement: audit_statement(audit), rows: Some(1) }
}

fn audit_statement(a: &NewAudit<'_>) -> Statement {
    statement(
        INSERT_AUDIT,
        vec![
            Param::Int(a.at_ms),
            Param::Text(a.actor.into()),
            Param::Text(a.action.into()),
            Param::OptText(a.username.map(Into::into)),
            Param::OptText(a.serial.map(Into::into)),
            Param::OptText(a.client_ip.map(Into::into)),
            Param::Text(a.result.as_str().into()),
            Param::OptText(a.reason.map(Into::into)),
        ],
    )
}

fn create_parent_dir(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::keys::create_private_dir(dir)
            .map_err(|source| StoreError::DataDir { path: dir.display().to_string(), source })?;
    }
    Ok(())
}

fn unique_violation(error: StoreError, what: &'static str) -> StoreError {
    let unique = match &error {
        StoreError::Postgres(sqlx::Error::Database(db)) => db.is_unique_violation(),
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
            e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        }
        _ => false,
    };
    if unique { StoreError::Conflict(what) } else { error }
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt("counter beyond 2^63"))
}

fn to_u64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt("negative counter"))
}

fn int_at(row: Option<&Row>, index: usize) -> Result<i64, StoreError> {
    match row.and_then(|r| r.get(index)) {
        Some(Value::Int(value)) => Ok(*value),
        _ => Err(StoreError::Corrupt("expected an integer column")),
    }
}

fn opt_int_at(row: &Row, index: usize) -> Result<Option<i64>, StoreError> {
    match row.get(index) {
        Some(Value::Int(value)) => Ok(Some(*value)),
        Some(Value::Null) => Ok(None),
        _ => Err(StoreError::Corrupt("expected an integer column")),
    }
}

fn text_at(row: &Row, index: usize) -> Result<String, StoreError> {
    opt_text_at(row, index)?.ok_or(StoreError::Corrupt("expected a text column"))
}

fn opt_text_at(row: &Row, index: usize) -> Result<Option<String>, StoreError> {
    match row.get(index) {
        Some(Value::Text(text)) => Ok(Some(text.clone())),
        Some(Value::Null) => Ok(None),
        _ => Err(StoreError::Corrupt("expected a text column")),
    }
}

fn user_from(row: &Row) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: int_at(Some(row), 0)?,
        username: text_at(row, 1)?,
        password_hash: opt_text_at(row, 2)?,
        phone: opt_text_at(row, 3)?,
        email: opt_text_at(row, 4)?,
        created_at: int_at(Some(row), 5)?,
        push_muted_until: opt_int_at(row, 6)?,
        last_success_at: opt_int_at(row, 7)?,
        password_lockout: Lockout {
            failures: u32::try_from(int_at(Some(row), 8)?)
                .map_err(|_| StoreError::Corrupt("failure count"))?,
            locked_at: opt_int_at(row, 9)?.map(to_u64).transpose()?,
        },
        delivery_preference: DeliveryPreference::parse(&text_at(row, 10)?)
            .ok_or(StoreError::Corrupt("delivery preference"))?,
        display_name: opt_text_at(row, 11)?,
        directory: opt_text_at(row, 12)?,
        directory_gone_at: opt_int_at(row, 13)?,
        radius_reply: radius::reply_attributes_from(opt_text_at(row, 14)?)?,
    })
}

fn token_from(row: &Row) -> Result<TokenRow, StoreError> {
    let seed = match row.get(7) {
        Some(Value::Blob(bytes)) => Some(bytes.clone()),
        Some(Value::Null) => None,
        _ => return Err(StoreError::Corrupt("expected a blob column")),
    };
    let kind = TokenKind::parse(&text_at(row, 3)?).ok_or(StoreError::Corrupt("unknown token kind"))?;
    Ok(TokenRow {
        id: int_at(Some(row), 0)?,
        serial: text_at(row, 1)?,
        user_id: int_at(Some(row), 2)?,
        algorithm: text_at(row, 4)?,
        digits: int_at(Some(row), 5)?,
        period: int_at(Some(row), 6)?,
        seed,
        description: opt_text_at(row, 8)?,
        state: TokenState {
            enabled: int_at(Some(row), 9)? != 0,
            counter: to_u64(int_at(Some(row), 10)?)?,
            last_step: opt_int_at(row, 11)?.map(to_u64).transpose()?,
            drift: int_at(Some(row), 12)?,
            failures: u32::try_from(int_at(Some(row), 13)?)
                .map_err(|_| StoreError::Corrupt("failure count"))?,
            locked_at: opt_int_at(row, 14)?.map(to_u64).transpose()?,
        },
        version: int_at(Some(row), 15)?,
        created_at: int_at(Some(row), 16)?,
        last_used_at: opt_int_at(row, 17)?,
        push: (kind == TokenKind::Push).then(|| push_device_from(row)).transpose()?,
        delivery: kind.channel().map(|_| delivered_token_from(row)).transpose()?,
        temporary: (kind == TokenKind::Temp).then(|| temporary_from(row)).transpose()?,
        pending: opt_int_at(row, 33)?
            .map(|until| opt_text_at(row, 34).map(|replaces| PendingToken { until, replaces }))
            .transpose()?,
        kind,
    })
}

/// A temporary passcode's columns, as one typed part.
fn temporary_from(row: &Row) -> Result<TemporaryPasscode, StoreError> {
    Ok(TemporaryPasscode {
        hash: opt_text_at(row, 30)?.ok_or(StoreError::Corrupt("temporary passcode hash"))?,
        expires_at: opt_int_at(row, 31)?.ok_or(StoreError::Corrupt("temporary passcode expiry"))?,
        max_uses: opt_int_at(row, 32)?
            .and_then(|uses| u32::try_from(uses).ok())
            .ok_or(StoreError::Corrupt("temporary passcode uses"))?,
    })
}

/// A delivered token's columns, as one typed part.
fn delivered_token_from(row: &Row) -> Result<DeliveredToken, StoreError> {
    let mode = opt_text_at(row, 24)?.and_then(|mode| DeliveryMode::parse(&mode));
    let small = |value: Option<i64>| {
        value.map(|v| u32::try_from(v).map_err(|_| StoreError::Corrupt("delivery setting")))
    };
    Ok(DeliveredToken {
        mode: mode.ok_or(StoreError::Corrupt("delivery mode"))?,
        destination: opt_text_at(row, 25)?,
        ttl_secs: small(opt_int_at(row, 26)?).transpose()?,
        period_days: small(opt_int_at(row, 27)?).transpose()?.unwrap_or(1),
        issued_upto: to_u64(int_at(Some(row), 28)?)?,
        last_delivered_period: opt_int_at(row, 29)?.map(to_u64).transpose()?,
    })
}

/// A push token's device columns, as one typed part.
fn push_device_from(row: &Row) -> Result<PushDevice, StoreError> {
    if let Some(public_key) = opt_text_at(row, 18)? {
        let wake = match (opt_text_at(row, 22)?, opt_text_at(row, 23)?) {
            (Some(service), Some(token)) => WakeAddress::from_parts(&service, &token),
            _ => None,
        };
        return Ok(PushDevice::Registered(RegisteredDevice {
            public_key,
            name: opt_text_at(row, 19)?,
            wake,
        }));
    }
    let enrollment = match (opt_text_at(row, 20)?, opt_int_at(row, 21)?) {
        (Some(code_hash), Some(expires_at)) => Some(PendingEnrollment { code_hash, expires_at }),
        _ => None,
    };
    Ok(PushDevice::Unregistered(enrollment))
}

/// The insert of a new token.
fn token_insert(token: &NewToken<'_>) -> Statement {
    statement(
        "INSERT INTO tokens (serial, user_id, kind, algorithm, digits, period, seed, description, enabled, counter, \
         last_step, drift, failures, locked_at, version, created_at, last_used_at, enrollment_code_hash, \
         enrollment_expires_at, delivery_mode, destination, ttl_secs, period_days, passcode_hash, expires_at, \
         max_uses, pending_until, replaces) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $19, NULL, 0, 0, NULL, 0, $9, \
         NULL, $10, $11, $12, $13, $14, $15, $16, $17, $18, $20, $21)",
        vec![
            Param::Text(token.serial.into()),
            Param::Int(token.user_id),
            Param::Text(token.kind.as_str().into()),
            Param::Text(token.algorithm.into()),
            Param::Int(token.digits),
            Param::Int(token.period),
            Param::Blob(token.seed.to_vec()),
            Param::OptText(token.description.map(Into::into)),
            Param::Int(token.created_at),
            Param::OptText(token.enrollment_code_hash.map(Into::into)),
            Param::OptInt(token.enrollment_expires_at),
            Param::OptText(token.delivery.map(|d| d.mode.as_str().into())),
            Param::OptText(token.delivery.and_then(|d| d.destination.clone())),
            Param::OptInt(token.delivery.and_then(|d| d.ttl_secs).map(i64::from)),
            Param::OptInt(token.delivery.map(|d| i64::from(d.period_days))),
            Param::OptText(token.temporary.map(|t| t.hash.clone())),
            Param::OptInt(token.temporary.map(|t| t.expires_at)),
            Param::OptInt(token.temporary.map(|t| i64::from(t.max_uses))),
            Param::Int(token.counter),
            Param::OptInt(token.pending.map(|p| p.until)),
            Param::OptText(token.pending.and_then(|p| p.replaces.clone())),
        ],
    )
}

/// The insert of a new user.
fn user_insert(user: &NewUserRow<'_>) -> Statement {
    statement(
        "INSERT INTO users (username, password_hash, phone, email, created_at, display_name, directory) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            Param::Text(user.username.into()),
            Param::OptText(user.password_hash.map(Into::into)),
            Param::OptText(user.phone.map(Into::into)),
            Param::OptText(user.email.map(Into::into)),
            Param::Int(user.created_at),
            Param::OptText(user.display_name.map(Into::into)),
            Param::OptText(user.directory.map(Into::into)),
        ],
    )
}
