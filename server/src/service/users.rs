//! User administration: create, read, change, unlock and delete users.

use serde::{Deserialize, Serialize};
use tessera_core::secret::SecretString;
use tessera_core::verifier::Policy;
use utoipa::ToSchema;

use super::audit::AdminAudit;
use super::{Actor, MAX_ATTEMPTS, Service, ServiceError};
use crate::clock::{now_i64, unix_now};
use crate::error::conflict;
use crate::input::{check_email, check_name, check_phone};
use crate::store::{
    DeliveryPreference, MAX_REPLY_ATTRIBUTES, RadiusReplyAttribute, ReplyAttribute, StateUpdate, TokenKind,
    UserChange, UserRow,
};

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Unique name, 1–128 printable characters.
    pub username: String,
    /// Optional password or PIN checked at validation (4–1024 characters).
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    /// Phone number for SMS/voice passcodes, E.164 (`+` and 7–15 digits).
    pub phone: Option<String>,
    /// Email address for emailed passcodes.
    pub email: Option<String>,
}

/// Changes to a user; absent fields stay, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    /// New password/PIN; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<SecretString>>,
    /// New phone; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// New email; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// Where a code goes when the user gives only their password: `app` (push, the default),
    /// `sms` or `email`.
    #[serde(default)]
    pub delivery_preference: Option<DeliveryPreference>,
    /// New display name; `null` removes it. A directory user's is replaced at their next login
    /// or sync.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// The attributes the user's RADIUS Access-Accepts carry, replacing those they had (at most
    /// 16; `[]` or `null` removes them).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<RadiusReplyAttribute>>)]
    pub radius_reply: Option<Option<Vec<ReplyAttribute>>>,
}

fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Name.
    pub username: String,
    /// Whether a password/PIN is required at validation.
    pub has_password: bool,
    /// Consecutive wrong passwords.
    pub password_failures: u32,
    /// Locked by wrong passwords (every validation answers `locked` until the lock lifts or an
    /// administrator unlocks the user).
    pub locked: bool,
    /// Phone.
    pub phone: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// `app`, `sms` or `email`.
    pub delivery_preference: DeliveryPreference,
    /// The name people know the user by.
    pub display_name: Option<String>,
    /// The `[[directory]]` the user comes from (their password is checked there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// When that directory stopped listing the user (Unix seconds): they cannot log in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_gone_at: Option<i64>,
    /// The attributes the user's RADIUS Access-Accepts carry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<RadiusReplyAttribute>)]
    pub radius_reply: Vec<ReplyAttribute>,
    /// Unix seconds.
    pub created_at: i64,
}

impl UserView {
    fn of(user: &UserRow, now: u64, policy: &Policy) -> Self {
        Self {
            username: user.username.clone(),
            has_password: user.password_hash.is_some(),
            password_failures: user.password_lockout.failures,
            locked: user.password_lockout.is_locked(now, policy),
            phone: user.phone.clone(),
            email: user.email.clone(),
            delivery_preference: user.delivery_preference,
            display_name: user.display_name.clone(),
            directory: user.directory.clone(),
            directory_gone_at: user.directory_gone_at,
            radius_reply: user.radius_reply.clone(),
            created_at: user.created_at,
        }
    }
}

impl Service {
    /// Creates a user.
    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<UserView, ServiceError> {
        check_name("username", &new.username)?;
        let phone = new.phone.map(check_phone).transpose()?;
        let email = new.email.map(check_email).transpose()?;
        let hash = match new.password {
            Some(password) => Some(self.hash_password(password).await?),
            None => None,
        };
        let audit = AdminAudit::new(actor, "user.create").user(&new.username);
        let user = self
            .store
            .create_user(
                &new.username,
                hash.as_deref(),
                phone.as_deref(),
                email.as_deref(),
                now_i64(),
                &audit.record(),
            )
            .await
            .map_err(conflict)?;
        Ok(self.user_view(&user))
    }

    fn user_view(&self, user: &UserRow) -> UserView {
        UserView::of(user, unix_now(), &self.policy)
    }

    /// One user.
    pub async fn user(&self, username: &str) -> Result<UserView, ServiceError> {
        Ok(self.user_view(&self.existing_user(username).await?))
    }

    /// All users.
    pub async fn users(&self) -> Result<Vec<UserView>, ServiceError> {
        Ok(self.store.users().await?.iter().map(|user| self.user_view(user)).collect())
    }

    /// Clears a user's password lock and unlocks all their tokens, audited in one transaction.
    pub async fn unlock_user(&self, actor: &Actor, username: &str) -> Result<UserView, ServiceError> {
        for _ in 0..MAX_ATTEMPTS {
            let (user, tokens) = self
                .store
                .user_with_tokens(username)
                .await?
                .ok_or_else(|| ServiceError::NotFound("user", username.into()))?;
            let updates: Vec<StateUpdate> = tokens
                .iter()
                .filter(|t| t.state.failures > 0 || t.state.locked_at.is_some())
                .map(|t| t.moved_to(t.state.unlocked(), None))
                .collect();
            let audit = AdminAudit::new(actor, "user.unlock").user(username);
            let change = UserChange::Unlock { user_id: user.id };
            if self.store.commit(&updates, Some(&change), &audit.record()).await? {
                let unlocked = UserRow { password_lockout: Default::default(), ..user };
                return Ok(self.user_view(&unlocked));
            }
        }
        Err(ServiceError::Conflict("the user is changing too often; try again".into()))
    }

    /// Changes a user's password, phone, email, delivery preference, display name or RADIUS reply
    /// attributes.
    pub async fn update_user(
        &self,
        actor: &Actor,
        username: &str,
        changes: UserChanges,
    ) -> Result<UserView, ServiceError> {
        let mut user = self.existing_user(username).await?;
        if let Some(password) = changes.password {
            user.password_hash = match password {
                Some(password) => Some(self.hash_password(password).await?),
                None => None,
            };
        }
        if let Some(phone) = changes.phone {
            user.phone = phone.map(check_phone).transpose()?;
        }
        if let Some(email) = changes.email {
            user.email = email.map(check_email).transpose()?;
        }
        if let Some(preference) = changes.delivery_preference {
            user.delivery_preference = preference;
        }
        if let Some(display_name) = changes.display_name {
            if let Some(name) = &display_name {
                crate::input::check_text("display_name", name, 256)?;
            }
            user.display_name = display_name;
        }
        if let Some(attributes) = changes.radius_reply {
            let attributes = attributes.unwrap_or_default();
            if attributes.len() > MAX_REPLY_ATTRIBUTES {
                return Err(ServiceError::InvalidInput(format!(
                    "a user has at most {MAX_REPLY_ATTRIBUTES} RADIUS reply attributes"
                )));
            }
            user.radius_reply = attributes;
        }
        let audit = AdminAudit::new(actor, "user.update").user(username);
        if !self.store.update_user(&user, &audit.record()).await? {
            return Err(ServiceError::NotFound("user", username.into()));
        }
        Ok(self.user_view(&user))
    }

    /// Deletes a user and their tokens.
    pub async fn delete_user(&self, actor: &Actor, username: &str) -> Result<(), ServiceError> {
        let audit = AdminAudit::new(actor, "user.delete").user(username);
        let user = self.existing_user(username).await?;
        let tokens = self.store.tokens_of(user.id).await?;
        if !self.store.delete_user(username, &audit.record()).await? {
            return Err(ServiceError::NotFound("user", username.into()));
        }
        for token in tokens.iter().filter(|t| t.kind == TokenKind::Push) {
            self.push.revoke_device(&token.serial).await;
        }
        Ok(())
    }

    pub(super) async fn existing_user(&self, username: &str) -> Result<UserRow, ServiceError> {
        self.store.user(username).await?.ok_or_else(|| ServiceError::NotFound("user", username.into()))
    }
}
