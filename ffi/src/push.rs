//! Push on the phone: while the app runs, a listener holds the challenge channel of every push
//! device in the vault open and hands each verified login request to the app's [`PushListener`];
//! the app shows it and answers with [`Vault::answer_push`]. Dropping (closing) the
//! [`PushSubscription`] closes the channels. When the app is not running, a platform push (FCM,
//! APNs) wakes it to listen; the request itself only ever comes through the signed channel.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use tessera_client::devices::{self, Delivered, Inbox};
use tessera_client::{ChannelEvent, ClientError};
use tessera_core::otp::unix_now;
use tessera_core::push::{Challenge, Decision, DenyReason, NumberMatching, SignedAnswer};
use tessera_core::secret::SecretString;
use tessera_core::vault::{TokenError, TokenId, VaultError};
use tokio::task::AbortHandle;

use crate::vault::Vault;
use crate::{TesseraError, runtime};

/// The seconds until the next time step, when `error` says the token's code for this one is used.
fn step_wait(error: &ClientError) -> Option<u32> {
    match error {
        ClientError::Vault(vault) => match vault.as_ref() {
            VaultError::Token(TokenError::CodeNotReady { wait_secs }) if *wait_secs <= 60 => Some(*wait_secs),
            _ => None,
        },
        _ => None,
    }
}

/// The login requests waiting for an answer, the devices the listener serves, and the listener.
#[derive(Default)]
pub(crate) struct Inboxes {
    inbox: Mutex<Inbox>,
    listener: Mutex<Option<AbortHandle>>,
}

impl Inboxes {
    /// The inbox, even if a panic elsewhere poisoned the mutex (each change is one list edit).
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `task` as the one listener, stopping the one before it.
    fn replace_listener(&self, task: AbortHandle) {
        let mut listener = self.listener.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(previous) = listener.replace(task) {
            previous.abort();
        }
    }
}

/// How the user must confirm the login screen's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum NumberMatchingMode {
    /// No number.
    Off,
    /// Pick the login screen's number among `number_choices`.
    Pick,
    /// Type the number the login screen shows.
    Type,
}

impl From<NumberMatching> for NumberMatchingMode {
    fn from(mode: NumberMatching) -> Self {
        match mode {
            NumberMatching::Off => Self::Off,
            NumberMatching::Pick => Self::Pick,
            NumberMatching::Type => Self::Type,
        }
    }
}

/// A login request waiting for the user, with what the approval screen shows.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushRequest {
    /// The server's transaction (pass it to [`Vault::answer_push`]).
    pub transaction_id: String,
    /// The vault's push token it is for.
    pub token_id: String,
    /// The account logging in.
    pub username: String,
    /// What the user is logging in to.
    pub service: String,
    /// Where the login comes from, as the server saw it.
    pub client_ip: Option<String>,
    /// The login's browser or program, as the server saw it.
    pub user_agent: Option<String>,
    /// When the login started (Unix seconds).
    pub created_at: u64,
    /// When the request expires (Unix seconds).
    pub expires_at: u64,
    /// How the user confirms the login screen's number.
    pub number_matching: NumberMatchingMode,
    /// The numbers to pick from ([`NumberMatchingMode::Pick`] only).
    pub number_choices: Vec<u32>,
}

impl PushRequest {
    fn of(token: &TokenId, challenge: &Challenge) -> Self {
        Self {
            transaction_id: challenge.transaction_id.clone(),
            token_id: token.to_string(),
            username: challenge.username.clone(),
            service: challenge.service.clone(),
            client_ip: challenge.client_ip.clone(),
            user_agent: challenge.user_agent.clone(),
            created_at: challenge.created_at,
            expires_at: challenge.expires_at,
            number_matching: challenge.number_matching.into(),
            number_choices: challenge.number_choices.iter().copied().map(u32::from).collect(),
        }
    }
}

/// How the user answered a login request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Reply {
    /// It is me: approve (with the number, when the request asks for one).
    Approve,
    /// Deny without reporting.
    Deny,
    /// Deny and report that the user did not start this login.
    NotMe,
}

/// What the app hears from the listener. Called on the library's threads: post to the UI thread.
/// An exception thrown here is ignored: the listener goes on.
#[uniffi::export(with_foreign)]
pub trait PushListener: Send + Sync {
    /// A login request arrived (signature and expiry already checked).
    fn on_request(&self, request: PushRequest) -> Result<(), TesseraError>;
    /// The channel to a server opened (`true`) or dropped (`false`; it reconnects by itself).
    fn on_connection_changed(&self, connected: bool) -> Result<(), TesseraError>;
}

/// The running listener: closing (dropping) it closes the channels.
#[derive(uniffi::Object)]
pub struct PushSubscription {
    task: AbortHandle,
}

#[uniffi::export]
impl PushSubscription {
    /// Closes the channels now (closing the object does the same). The listener is released on
    /// the library's threads moments later.
    pub fn cancel(&self) {
        self.task.abort();
    }
}

impl Drop for PushSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[uniffi::export]
impl Vault {
    /// Opens the challenge channels of the vault's push devices and hands each login request to
    /// `listener` until the returned subscription is closed (keep a reference to it: dropping it
    /// stops listening). Needs the unlocked vault (it reads the devices); the channels stay open if
    /// the vault locks, and answering unlocks nothing. One listener at a time: a new one replaces
    /// the last (call it again after enrolling or removing a push token).
    pub fn listen(
        self: Arc<Self>,
        listener: Arc<dyn PushListener>,
    ) -> Result<Arc<PushSubscription>, TesseraError> {
        let found = self.with_unlocked(|vault| Ok(devices::vault_devices(&vault.read()?)?))?;
        if found.is_empty() {
            return Err(TesseraError::NotFound {
                reason: "the vault has no push device: enroll one first".into(),
            });
        }
        self.push.lock().serve(found.clone());
        let vault = self.clone();
        let task = runtime::runtime()?.spawn(async move {
            let mut events = devices::channels(&found);
            while let Some((token, event)) = events.next().await {
                match event {
                    ChannelEvent::Connected => {
                        let _ = listener.on_connection_changed(true);
                    }
                    ChannelEvent::Disconnected(_) => {
                        let _ = listener.on_connection_changed(false);
                    }
                    ChannelEvent::Rejected(_) => {}
                    ChannelEvent::Challenge(delivery) => {
                        let _ = vault.with_unlocked(|v| Ok(devices::record_seen(v, &token, delivery.seq)?));
                        let request = vault
                            .push
                            .lock()
                            .arrived(&token, delivery.challenge.challenge)
                            .map(|kept| PushRequest::of(&token, &kept.challenge));
                        if let Some(request) = request {
                            let _ = listener.on_request(request);
                        }
                    }
                }
            }
        });
        self.push.replace_listener(task.abort_handle());
        Ok(Arc::new(PushSubscription { task: task.abort_handle() }))
    }

    /// The login requests waiting for an answer now.
    pub fn pending_requests(&self) -> Vec<PushRequest> {
        self.push
            .lock()
            .waiting(unix_now())
            .iter()
            .map(|p| PushRequest::of(&p.device.token, &p.challenge))
            .collect()
    }

    /// Answers login request `transaction_id`: checks the answer PIN when the vault has one (the
    /// attempt is counted), signs the answer (an approval carries the token's TOTP) and sends it.
    /// Returns the server's status, `approved` or `denied`.
    pub async fn answer_push(
        self: Arc<Self>,
        transaction_id: String,
        reply: Reply,
        number: Option<u32>,
        pin: Option<String>,
    ) -> Result<String, TesseraError> {
        let number = number
            .map(|n| {
                u8::try_from(n).map_err(|_| TesseraError::InvalidInput {
                    reason: format!("{n} is not a number the login screen shows"),
                })
            })
            .transpose()?;
        let gone = || TesseraError::Expired {
            reason: "this login request has expired or was already answered".into(),
        };
        let pending = self.push.lock().pending(&transaction_id, unix_now()).ok_or_else(gone)?;
        let decision = match reply {
            Reply::Approve => Decision::Approve,
            Reply::Deny => Decision::Deny(DenyReason::Cancelled),
            Reply::NotMe => Decision::Deny(DenyReason::NotMe),
        };
        let pin = pin.filter(|p| !p.is_empty()).map(SecretString::new);
        // Signing runs Argon2 for the PIN and writes the vault: off the caller's thread.
        runtime::run(async move {
            let vault = self.clone();
            let device = pending.device.clone();
            let signed = tokio::task::spawn_blocking(move || -> Result<SignedAnswer, TesseraError> {
                let (token, challenge) = (&pending.device.token, &pending.challenge);
                let sign = || {
                    vault.with_unlocked(|unlocked| {
                        Ok(devices::sign_answer(
                            unlocked,
                            token,
                            challenge,
                            decision,
                            number,
                            pin.as_ref(),
                            unix_now(),
                        ))
                    })
                };
                match sign()? {
                    // The token signed its code for this time step already (a One Swipe or an
                    // approval moments ago): approve with the next step's, a few seconds later.
                    Err(error) if let Some(wait_secs) = step_wait(&error) => {
                        std::thread::sleep(
                            Duration::from_secs(u64::from(wait_secs)) + Duration::from_millis(200),
                        );
                        Ok(sign()??)
                    }
                    signed => Ok(signed?),
                }
            })
            .await
            .map_err(TesseraError::internal)??;
            let delivered = devices::deliver(&device.device, signed, decision).await?;
            self.push.lock().forget(&transaction_id);
            match delivered {
                Delivered::Answered(status) => Ok(status),
                Delivered::NotApproved => {
                    Err(TesseraError::Denied { reason: Delivered::NOT_APPROVED.into() })
                }
                Delivered::Gone => Err(gone()),
            }
        })
        .await
    }
}
