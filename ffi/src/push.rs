//! Push on the phone: while the app runs, a listener holds the challenge channel of every push
//! device in the vault open and hands each verified login request to the app's [`PushListener`];
//! the app shows it and answers with [`Vault::answer_push`]. Dropping (closing) the
//! [`PushSubscription`] closes the channels. When the app is not running, a platform push (FCM,
//! APNs) wakes it to listen; the request itself only ever comes through the signed channel.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures_util::StreamExt;
use tessera_client::devices::{self, Delivered, Inbox, VaultDevice};
use tessera_client::{ChannelEvent, ClientError};
use tessera_core::otp::unix_now;
use tessera_core::push::{Challenge, Decision, DenyReason, NumberMatching, SignedAnswer};
use tessera_core::secret::SecretString;
use tessera_core::vault::TokenId;
use tokio::task::AbortHandle;

use crate::vault::Vault;
use crate::{TesseraError, runtime};

/// The login requests waiting for an answer, the devices the listener serves, and the listener.
#[derive(Default)]
pub(crate) struct Inboxes {
    inbox: Mutex<Inbox>,
    listening: Mutex<Option<Listening>>,
    subscriptions: std::sync::atomic::AtomicU64,
}

/// The app's listener and the task running its channels (none while there are no devices).
struct Listening {
    subscription: u64,
    listener: Arc<dyn PushListener>,
    task: Option<AbortHandle>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Inboxes {
    /// The inbox, even if a panic elsewhere poisoned the mutex (each change is one list edit).
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn listening(&self) -> MutexGuard<'_, Option<Listening>> {
        self.listening.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `listener` the one listener (the one before it stops); returns its subscription's number.
    fn subscribe(&self, listener: Arc<dyn PushListener>) -> u64 {
        let subscription = self.subscriptions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.listening() = Some(Listening { subscription, listener, task: None });
        subscription
    }

    /// Stops listening, if `subscription` is still the listener's.
    fn unsubscribe(&self, subscription: u64) {
        let mut listening = self.listening();
        if listening.as_ref().is_some_and(|l| l.subscription == subscription) {
            listening.take();
        }
    }

    /// Serves `found`, the vault's devices now: the listener's channels are reopened when they
    /// changed (or `restart`), closed when there are none.
    fn sync(&self, vault: &Weak<Vault>, found: Vec<VaultDevice>, restart: bool) -> Result<(), TesseraError> {
        let changed = self.lock().serve(found.clone());
        let mut listening = self.listening();
        let Some(listening) = listening.as_mut() else { return Ok(()) };
        if !(changed || restart || (listening.task.is_none() && !found.is_empty())) {
            return Ok(());
        }
        if let Some(task) = listening.task.take() {
            task.abort();
        }
        if !found.is_empty() {
            let task = runtime::runtime()?.spawn(listen(vault.clone(), listening.listener.clone(), found));
            listening.task = Some(task.abort_handle());
        }
        Ok(())
    }
}

/// Runs the channels of `found` for `listener` until the subscription ends or the devices change.
async fn listen(vault: Weak<Vault>, listener: Arc<dyn PushListener>, found: Vec<VaultDevice>) {
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
                let Some(vault) = vault.upgrade() else { return };
                let seq = delivery.seq;
                let (recording, seen) = (vault.clone(), token.clone());
                // A vault write (fsync): off the runtime's two threads.
                let _ = tokio::task::spawn_blocking(move || {
                    recording.with_unlocked(|v| Ok(devices::record_seen(v, &seen, seq)?))
                })
                .await;
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
    vault: Weak<Vault>,
    subscription: u64,
}

#[uniffi::export]
impl PushSubscription {
    /// Closes the channels now (closing the object does the same). The listener is released on
    /// the library's threads moments later.
    pub fn cancel(&self) {
        if let Some(vault) = self.vault.upgrade() {
            vault.push.unsubscribe(self.subscription);
        }
    }
}

impl Drop for PushSubscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[uniffi::export]
impl Vault {
    /// Hands each login request that reaches the vault's push devices to `listener` until the
    /// returned subscription is closed (keep a reference to it: dropping it stops listening).
    /// The channels open while the vault is unlocked (they need the devices' keys) and stay open
    /// when it locks; enrolling or removing a push token through this object reopens them, so
    /// call it once, at start. One listener at a time: a new one replaces the last.
    pub fn listen(&self, listener: Arc<dyn PushListener>) -> Result<Arc<PushSubscription>, TesseraError> {
        let subscription = self.push.subscribe(listener);
        if self.is_unlocked()
            && let Err(error) = self.sync_push(true)
        {
            self.push.unsubscribe(subscription);
            return Err(error);
        }
        Ok(Arc::new(PushSubscription { vault: self.me(), subscription }))
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
    /// Returns the server's status, `approved` or `denied`. A second call while one is on its way
    /// is refused; after a network error the request can be answered again.
    pub async fn answer_push(
        &self,
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
        let pending = self.push.lock().begin_answer(&transaction_id, unix_now()).ok_or_else(gone)?;
        let decision = match reply {
            Reply::Approve => Decision::Approve,
            Reply::Deny => Decision::Deny(DenyReason::Cancelled),
            Reply::NotMe => Decision::Deny(DenyReason::NotMe),
        };
        let pin = SecretString::from_field(pin).map(Arc::new);
        let vault = self.me();
        let delivered = runtime::run(async move {
            let sign = || {
                let (vault, pending, pin) = (vault.clone(), pending.clone(), pin.clone());
                // Argon2 for the PIN and a vault write: off the runtime's two threads.
                async move {
                    tokio::task::spawn_blocking(move || sign_answer(&vault, &pending, decision, number, pin))
                        .await
                        .map_err(TesseraError::internal)?
                }
            };
            devices::answer(&pending, decision, sign).await
        })
        .await;
        self.push.lock().end_answer(&transaction_id, delivered.is_ok());
        if delivered.is_err() {
            // Ten wrong PINs remove the push devices: their channels close.
            let _ = self.sync_push(false);
        }
        match delivered? {
            Delivered::Answered(status) => Ok(status),
            Delivered::NotApproved(refusal) => Err(TesseraError::Denied { reason: refusal.message().into() }),
            Delivered::Gone => Err(gone()),
        }
    }
}

/// Signs the answer to `pending` on the unlocked vault (the outer error: the vault is locked or gone).
fn sign_answer(
    vault: &Weak<Vault>,
    pending: &devices::Pending,
    decision: Decision,
    number: Option<u8>,
    pin: Option<Arc<SecretString>>,
) -> Result<Result<SignedAnswer, ClientError>, TesseraError> {
    let vault = vault.upgrade().ok_or_else(crate::vault::locked)?;
    vault.with_unlocked(|unlocked| {
        let (token, challenge) = (&pending.device.token, &pending.challenge);
        Ok(devices::sign_answer(unlocked, token, challenge, decision, number, pin.as_deref(), unix_now()))
    })
}

impl Vault {
    /// Reopens the listener's channels for the vault's push devices now, if they changed (or
    /// `restart`); nothing while the vault is locked or no one listens.
    pub(crate) fn sync_push(&self, restart: bool) -> Result<(), TesseraError> {
        if self.push.listening().is_none() {
            return Ok(());
        }
        let found = self.with_unlocked(|vault| Ok(devices::vault_devices(&vault.read()?)?))?;
        self.push.sync(&self.me(), found, restart)
    }
}
