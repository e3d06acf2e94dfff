//! Telling users, by another channel, of changes to how they sign in: a device added or deleted in
//! the portal, their phone number changed, a temporary passcode issued. Someone who got hold of a
//! password and one factor could otherwise add their own phone unseen. Notices go through the
//! outbox like codes (retried, audited on failure) by the first of `[portal] notify`'s channels
//! the user can be reached on; they carry no secret, and a notice that cannot be queued never
//! undoes the change it reports.

use super::{Service, TokenKind};
use crate::clock::{now_i64, readable_utc};
use crate::config::NoticeChannel;
use crate::store::{Channel, UserRow};

/// A change a user hears of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccountChange {
    /// A device (named) can now sign in.
    DeviceAdded(String),
    /// A device (named) no longer signs in.
    DeviceDeleted(String),
    /// Codes now go to the number ending in these digits (plain ASCII: SMS gateways turn `•`
    /// into `?`).
    PhoneChanged(String),
    /// A temporary passcode was issued.
    TemporaryPasscode,
}

impl AccountChange {
    fn describe(&self) -> String {
        match self {
            Self::DeviceAdded(name) => format!("a new sign-in device was added: {name}"),
            Self::DeviceDeleted(name) => format!("a sign-in device was deleted: {name}"),
            Self::PhoneChanged(last_digits) => {
                format!("your sign-in codes now go to the number ending in {last_digits}")
            }
            Self::TemporaryPasscode => "a temporary passcode was issued for your account".into(),
        }
    }
}

impl Service {
    /// Queues a notice of `change` to `user` by the first `[portal] notify` channel that reaches
    /// them (`old_phone` first for SMS: the number a change moved away from).
    pub(crate) async fn notify(&self, user: &UserRow, change: &AccountChange, old_phone: Option<&str>) {
        let Some((channel, destination)) = self.notice_destination(user, old_phone).await else {
            return;
        };
        let service = self.delivery.service_name();
        let now = now_i64();
        let text = format!(
            "{service}: {}, {}. Not you? Contact your help desk.",
            change.describe(),
            readable_utc(now)
        );
        let queued = self.store.queue_notice(user.id, channel, &destination, service, &text, now).await;
        match queued {
            Ok(()) => self.delivery.wake(),
            Err(error) => tracing::warn!(user = %user.username, %error, "a notice could not be queued"),
        }
    }

    /// Where a notice to `user` goes: the first configured channel with a working gateway and
    /// an address for them.
    async fn notice_destination(&self, user: &UserRow, old_phone: Option<&str>) -> Option<(Channel, String)> {
        let settings = self.delivery.settings();
        for channel in &self.portal.notify {
            let found = match channel {
                NoticeChannel::Email if settings.email.is_some() => {
                    self.delivery.destination(user, Channel::Email, None).ok().map(|d| (Channel::Email, d))
                }
                NoticeChannel::Sms if !settings.sms_gateways.is_empty() => {
                    let texted = match old_phone {
                        Some(phone) => Some(phone.to_owned()),
                        None => self.texted_number(user).await,
                    };
                    self.delivery
                        .destination(user, Channel::Sms, texted.as_deref())
                        .ok()
                        .map(|d| (Channel::Sms, d))
                }
                NoticeChannel::Email | NoticeChannel::Sms => None,
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// The number the user's text-message token sends to, when it has one of its own.
    async fn texted_number(&self, user: &UserRow) -> Option<String> {
        let tokens = self.store.tokens_of(user.id).await.ok()?;
        let token = tokens.iter().find(|t| t.kind == TokenKind::Sms && t.pending.is_none())?;
        token.delivery.as_ref()?.destination.clone()
    }

    /// The number the user's codes go to now: their text-message token's own, or the one on file.
    pub(crate) async fn current_number(&self, user: &UserRow) -> Option<String> {
        self.texted_number(user).await.or_else(|| user.phone.clone())
    }
}

/// How a notice names a device: its name, or what kind of device it is.
pub(crate) fn device_name(kind: TokenKind, name: Option<&str>) -> String {
    name.map_or_else(|| kind.title().to_owned(), str::to_owned)
}

/// The last three digits of a phone number, as a notice names it.
pub(crate) fn number_ending(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    digits.iter().skip(digits.len().saturating_sub(3)).collect()
}
