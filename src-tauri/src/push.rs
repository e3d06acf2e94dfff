//! Push on the desktop: the challenge channel of every push device in the vault stays open in the
//! background, and each login request it delivers is kept until it is answered or expires, shown
//! in a system notification, and brought to the user in the window's approval dialog.
//!
//! The channels start at the first unlock and stay open while the vault is locked, so a request
//! still reaches the user, who unlocks to answer it. The devices' keys stay in memory for that
//! (they open the channel and sign answers); an approval also needs the token's TOTP, which only
//! the unlocked vault gives, so a locked app cannot approve anything.

use std::sync::{Mutex, MutexGuard};

use futures_util::StreamExt;
use serde::Serialize;
use tauri::async_runtime::JoinHandle;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;
use tessera_client::ChannelEvent;
use tessera_client::devices::{self, Inbox, Pending, VaultDevice};
use tessera_core::otp::unix_now;
use tessera_core::push::{Challenge, NumberMatching};
use tessera_core::vault::{TokenId, Vault};

use crate::error::CommandResult;
use crate::session::Session;

/// Event sent to the web view when a login request arrives (payload: the [`PushRequest`]).
pub const REQUEST_EVENT: &str = "push-request";

/// A login request waiting for the user, as the approval dialog shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PushRequest {
    /// The server's transaction.
    transaction_id: String,
    /// The vault's push token it is for.
    token_id: String,
    /// The account at the server.
    username: String,
    /// What the user is logging in to.
    service: String,
    /// Where the login comes from, as the server saw it.
    client_ip: Option<String>,
    /// The login's browser or program, as the server saw it.
    user_agent: Option<String>,
    /// When the login started and when the request expires (Unix seconds).
    created_at: u64,
    /// See `created_at`.
    expires_at: u64,
    /// Seconds left when this view was made (the UI counts down from it).
    seconds_left: u64,
    /// How the user proves they see the login screen: `pick`, `type` or `off`.
    number_matching: NumberMatching,
    /// The numbers to pick from (`pick` only).
    number_choices: Vec<u8>,
}

impl PushRequest {
    fn of(token: &TokenId, challenge: &Challenge, now: u64) -> Self {
        Self {
            transaction_id: challenge.transaction_id.clone(),
            token_id: token.to_string(),
            username: challenge.username.clone(),
            service: challenge.service.clone(),
            client_ip: challenge.client_ip.clone(),
            user_agent: challenge.user_agent.clone(),
            created_at: challenge.created_at,
            expires_at: challenge.expires_at,
            seconds_left: challenge.seconds_left(now),
            number_matching: challenge.number_matching,
            number_choices: challenge.number_choices.clone(),
        }
    }
}

/// The open channels and the requests waiting for an answer.
#[derive(Default)]
pub struct PushCenter {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    listener: Option<JoinHandle<()>>,
    inbox: Inbox,
    connected: bool,
}

/// Whether push works, for the token list's status line.
#[derive(Debug, Serialize)]
pub struct PushStatus {
    /// Push devices in the vault.
    devices: usize,
    /// The channels are open (at least one connected since the last drop).
    connected: bool,
    /// Login requests waiting.
    requests: Vec<PushRequest>,
}

impl PushCenter {
    /// Opens the channels of `contents`' push devices, unless they are already open; closes those
    /// of devices that are gone.
    pub fn sync<R: Runtime>(&self, app: &AppHandle<R>, contents: &Vault) -> CommandResult<()> {
        let found = devices::vault_devices(contents)?;
        let mut state = self.lock_state();
        let changed = state.inbox.serve(found.clone());
        if !changed && (state.listener.is_some() || found.is_empty()) {
            return Ok(());
        }
        if let Some(listener) = state.listener.take() {
            listener.abort();
        }
        state.connected = false;
        if !found.is_empty() {
            state.listener = Some(tauri::async_runtime::spawn(listen(app.clone(), found)));
        }
        Ok(())
    }

    /// The push devices, channel state and requests still pending now.
    pub fn status(&self) -> PushStatus {
        let now = unix_now();
        let mut state = self.lock_state();
        let requests = state
            .inbox
            .waiting(now)
            .iter()
            .map(|p| PushRequest::of(&p.device.token, &p.challenge, now))
            .collect();
        PushStatus { devices: state.inbox.devices().len(), connected: state.connected, requests }
    }

    /// The pending request of `transaction_id` for answering, unless it expired or an answer to it
    /// is on its way already; end with [`PushCenter::end_answer`].
    pub fn begin_answer(&self, transaction_id: &str) -> Option<Pending> {
        self.lock_state().inbox.begin_answer(transaction_id, unix_now())
    }

    /// Ends an answer: a settled request is forgotten, an unsettled one can be answered again.
    pub fn end_answer(&self, transaction_id: &str, settled: bool) {
        self.lock_state().inbox.end_answer(transaction_id, settled);
    }

    fn arrived(&self, token: &TokenId, challenge: Challenge) -> Option<PushRequest> {
        let mut state = self.lock_state();
        let kept = state.inbox.arrived(token, challenge)?;
        Some(PushRequest::of(token, &kept.challenge, unix_now()))
    }

    fn set_connected(&self, connected: bool) {
        self.lock_state().connected = connected;
    }

    /// The state, even if a panic elsewhere poisoned the mutex (each change is one assignment
    /// or one list edit, so it stays consistent).
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs the channels until the app quits or [`PushCenter::sync`] replaces them.
async fn listen<R: Runtime>(app: AppHandle<R>, found: Vec<VaultDevice>) {
    let mut events = devices::channels(&found);
    while let Some((token, event)) = events.next().await {
        let center = app.state::<PushCenter>();
        match event {
            ChannelEvent::Connected => center.set_connected(true),
            ChannelEvent::Disconnected(_) => center.set_connected(false),
            ChannelEvent::Rejected(_) => {}
            ChannelEvent::Challenge(delivery) => {
                let _ = app
                    .state::<Session>()
                    .with_vault(|vault| Ok(devices::record_seen(vault, &token, delivery.seq)?));
                if let Some(request) = center.arrived(&token, delivery.challenge.challenge) {
                    bring_to_user(&app, &request);
                }
            }
        }
    }
}

/// Tells the web view, shows a system notification, and raises the window.
fn bring_to_user<R: Runtime>(app: &AppHandle<R>, request: &PushRequest) {
    let _ = app.emit(REQUEST_EVENT, request);
    let _ = app
        .notification()
        .builder()
        .title(format!("Login request: {}", request.service))
        .body(format!("{} is logging in. Open Tessera to approve or deny.", request.username))
        .show();
    crate::tray::show_window(app);
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.request_user_attention(Some(tauri::UserAttentionType::Critical));
    }
}
