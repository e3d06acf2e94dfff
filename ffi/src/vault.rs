//! The vault as the apps hold it: one object per vault file, locked or unlocked, with the key
//! store the app provides. Calls that run Argon2 (create, unlock) or the network (enroll, answer)
//! take time: apps call them off the main thread (the network ones are `suspend`/`async`).

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tessera_client::devices;
use tessera_client::organisation::{self, NextStep};
use tessera_core::oneswipe;
use tessera_core::otp::unix_now;
use tessera_core::otpauth::{self, ManualEntry, OtpAuth, ParsedUri};
use tessera_core::push::{Cleartext, EnrollmentLink};
use tessera_core::secret::SecretString;
use tessera_core::vault::{
    CodeState, KdfParams, Listed, TokenEdit, TokenId, TokenInfo, UnlockedVault, VaultError, VaultStore,
};

use crate::TesseraError;
use crate::keystore::{KeyStore, PlatformKeyStore};
use crate::push::Inboxes;
use crate::runtime;

/// A vault file, locked or unlocked. The unlocked vault (which holds the master key) lives only
/// in this object and is dropped, zeroizing the key, on [`Vault::lock`] (once a call that was
/// using it returns).
#[derive(uniffi::Object)]
pub struct Vault {
    me: Weak<Vault>,
    store: VaultStore,
    key_store: PlatformKeyStore,
    unlocked: Mutex<Option<Arc<UnlockedVault>>>,
    pub(crate) push: Inboxes,
}

/// A token's public details (never its seed).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Token {
    /// The token id (16 hex digits).
    pub id: String,
    /// The issuer, if any.
    pub issuer: Option<String>,
    /// The account name.
    pub label: String,
    /// `issuer:label`, or the label alone: how lists name the token.
    pub name: String,
    /// `totp`, `hotp` or `steam`.
    pub kind: String,
    /// `SHA1`, `SHA256` or `SHA512`.
    pub algorithm: String,
    /// Code length.
    pub digits: u8,
    /// The time step in seconds (time-based tokens).
    pub period: Option<u32>,
    /// The counter of the next code (HOTP).
    pub counter: Option<u64>,
    /// The group (folder), if any.
    pub group: Option<String>,
    /// The icon URL from the enrollment URI, if any.
    pub icon: Option<String>,
    /// When it was added (Unix seconds).
    pub created_at: u64,
    /// When a code was last taken (Unix seconds).
    pub last_used_at: Option<u64>,
    /// For a push token: the server it answers login requests for.
    pub push_server: Option<String>,
}

impl From<TokenInfo> for Token {
    fn from(info: TokenInfo) -> Self {
        Self {
            name: info.display_name(),
            id: info.id,
            issuer: info.issuer,
            label: info.label,
            kind: info.kind.to_owned(),
            algorithm: info.algorithm.to_owned(),
            digits: info.digits,
            period: info.period,
            counter: info.counter,
            group: info.group,
            icon: info.icon,
            created_at: info.created_at,
            last_used_at: info.last_used_at,
            push_server: info.push.map(|push| push.server),
        }
    }
}

/// What a token row shows of its code.
#[derive(uniffi::Enum)]
pub enum Code {
    /// A time-based code with the next one and the seconds left.
    Live {
        /// The current code.
        code: String,
        /// The next time step's code (shown on long press).
        next: String,
        /// The time step in seconds.
        period: u32,
        /// Seconds until `next` replaces `code`.
        seconds_left: u32,
    },
    /// A counter-based code: shown when taken ([`Vault::take_code`]).
    OnRequest,
    /// A push token's code, which needs the answer PIN first.
    PinRequired,
}

/// A token with its code, as the token list shows it.
#[derive(uniffi::Record)]
pub struct TokenRow {
    /// The token.
    pub token: Token,
    /// Its code now.
    pub code: Code,
}

impl From<Listed> for TokenRow {
    fn from(listed: Listed) -> Self {
        let code = match listed.code {
            CodeState::Live { code, next, period, seconds_left } => Code::Live {
                code: code.expose().to_owned(),
                next: next.expose().to_owned(),
                period,
                seconds_left,
            },
            CodeState::OnRequest => Code::OnRequest,
            CodeState::PinRequired => Code::PinRequired,
        };
        Self { token: listed.info.into(), code }
    }
}

/// What an add did: the tokens added, and what was odd but accepted. For an enrollment link
/// nothing is added yet: `enrollment` says where it leads; show it, ask, then call
/// [`Vault::enroll`].
#[derive(Debug, uniffi::Record)]
pub struct Added {
    /// The new tokens.
    pub tokens: Vec<Token>,
    /// Warnings for the user (a short seed, a plain-HTTP server).
    pub warnings: Vec<String>,
    /// An enrollment link waiting for the user's confirmation.
    pub enrollment: Option<EnrollmentPreview>,
}

/// Where an enrollment link leads, shown to the user before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrollmentPreview {
    /// The server's base URL.
    pub server: String,
    /// The server's host (and port): what the user should recognise.
    pub host: String,
    /// The organization the link names.
    pub issuer: Option<String>,
    /// The account the link names.
    pub account: Option<String>,
    /// Plain HTTP to another computer: ask a second time, with a red warning, and pass
    /// `accept_cleartext` to [`Vault::enroll`] only when the user insists.
    pub cleartext: bool,
}

impl From<tessera_core::push::EnrollmentPreview> for EnrollmentPreview {
    fn from(preview: tessera_core::push::EnrollmentPreview) -> Self {
        let tessera_core::push::EnrollmentPreview { server, host, issuer, account, cleartext } = preview;
        Self { server, host, issuer, account, cleartext }
    }
}

/// A token typed in by hand.
#[derive(uniffi::Record)]
pub struct ManualToken {
    /// The issuer (service name), if any.
    pub issuer: Option<String>,
    /// The account name.
    pub label: String,
    /// The base32 secret key as the service showed it (spaces and case do not matter).
    pub secret: String,
    /// `totp`, `hotp` or `steam`.
    pub kind: String,
    /// `SHA1`, `SHA256` or `SHA512` (ignored for Steam).
    pub algorithm: String,
    /// Code length (ignored for Steam).
    pub digits: u8,
    /// Time step in seconds (time-based kinds).
    pub period: u32,
    /// The counter of the first code (HOTP).
    pub counter: u64,
    /// The group to file it in, if any.
    pub group: Option<String>,
}

/// A One Swipe code to show as a QR code (a login credential until it expires: keep the screen
/// out of screenshots).
#[derive(uniffi::Record)]
pub struct OneSwipeCode {
    /// The token's name.
    pub token_name: String,
    /// The text to put in the QR code.
    pub payload: String,
    /// When it expires (Unix seconds).
    pub expires_at: u64,
    /// Its whole lifetime in seconds.
    pub lifetime_secs: u8,
}

#[uniffi::export]
impl Vault {
    /// The vault at `path` (which may not exist yet), locked, with the app's key store.
    #[uniffi::constructor]
    pub fn new(path: String, key_store: Arc<dyn KeyStore>) -> Arc<Self> {
        runtime::install_tls();
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            store: VaultStore::new(path),
            key_store: PlatformKeyStore(key_store),
            unlocked: Mutex::new(None),
            push: Inboxes::default(),
        })
    }

    /// True when the vault file exists.
    pub fn exists(&self) -> bool {
        self.store.exists()
    }

    /// The kinds of the vault's key slots: `os-keystore`, `passphrase`.
    pub fn slots(&self) -> Result<Vec<String>, TesseraError> {
        Ok(self.store.slots()?.iter().map(|slot| slot.kind.as_str().to_owned()).collect())
    }

    /// Creates the vault, unlocked by the app's key store, a passphrase, or both, and unlocks it.
    pub fn create(&self, passphrase: Option<String>, use_key_store: bool) -> Result<(), TesseraError> {
        let passphrase = SecretString::from_field(passphrase);
        let key_store = use_key_store.then_some(&self.key_store as _);
        let unlocked = self.store.create(key_store, passphrase.as_ref().map(|p| (p, KdfParams::DEFAULT)))?;
        *self.lock_state() = Some(Arc::new(unlocked));
        Ok(())
    }

    /// Unlocks the vault: by the app's key store when the vault has such a slot and it opens it,
    /// else with `passphrase` (a `Locked` error when it is needed and missing or wrong).
    pub fn unlock(&self, passphrase: Option<String>) -> Result<(), TesseraError> {
        let unlocked =
            self.store.unlock_any(Some(&self.key_store), || SecretString::from_field(passphrase))?;
        *self.lock_state() = Some(Arc::new(unlocked));
        // The channels may not have opened yet (a listener set while locked).
        let _ = self.sync_push(false);
        Ok(())
    }

    /// Locks the vault now (apps call it when they go to the background).
    pub fn lock(&self) {
        self.lock_state().take();
    }

    /// True while the vault is unlocked.
    pub fn is_unlocked(&self) -> bool {
        self.lock_state().is_some()
    }

    /// Every token with what may be shown of its code now.
    pub fn tokens(&self) -> Result<Vec<TokenRow>, TesseraError> {
        self.tokens_at(unix_now())
    }

    /// Every token with its code at `unix_time` (seconds).
    pub fn tokens_at(&self, unix_time: u64) -> Result<Vec<TokenRow>, TesseraError> {
        self.with_unlocked(|vault| {
            Ok(vault.read()?.listing(unix_time).into_iter().map(TokenRow::from).collect())
        })
    }

    /// Adds the token of an `otpauth://` URI (a `tessera://enroll` link goes to [`Vault::enroll`]).
    pub fn add_uri(&self, uri: String, group: Option<String>) -> Result<Added, TesseraError> {
        let uri = SecretString::new(uri);
        if EnrollmentLink::is_meant(uri.expose()) {
            return Err(TesseraError::InvalidInput {
                reason: "this is a push enrollment link: enroll the device with it instead".into(),
            });
        }
        self.add_all(vec![OtpAuth::parse(uri.expose().trim())?], group)
    }

    /// Adds a token typed in by hand.
    pub fn add_manual(&self, entry: ManualToken) -> Result<Added, TesseraError> {
        let group = entry.group.clone();
        let entry = ManualEntry {
            issuer: entry.issuer,
            label: entry.label,
            secret: SecretString::new(entry.secret),
            kind: entry.kind,
            algorithm: entry.algorithm,
            digits: entry.digits,
            period: entry.period,
            counter: entry.counter,
        };
        self.add_all(vec![entry.into_token()?], group)
    }

    /// Renames a token or moves it to another group (`None` or blank removes the issuer or group).
    pub fn edit_token(
        &self,
        id: String,
        issuer: Option<String>,
        label: String,
        group: Option<String>,
    ) -> Result<Token, TesseraError> {
        let id = TokenId::parse(&id)?;
        let edit = TokenEdit { issuer: Some(issuer), label: Some(label), group: Some(group), icon: None };
        self.with_unlocked(|vault| {
            Ok(vault.update(|v| -> Result<_, TesseraError> { Ok(TokenInfo::of(v.edit(&id, edit)?)) })?.into())
        })
    }

    /// Removes a token (the app asks for confirmation first).
    pub fn remove_token(&self, id: String) -> Result<(), TesseraError> {
        let id = TokenId::parse(&id)?;
        self.with_unlocked(|vault| {
            vault.update(|v| -> Result<_, TesseraError> { Ok(v.remove(&id).map(drop)?) })
        })?;
        self.sync_push(false)
    }

    /// Takes a token's code for use: for HOTP this advances the counter; the use is recorded. A
    /// push token's code approves logins, so with an answer PIN set it is not given out here.
    pub fn take_code(&self, id: String) -> Result<String, TesseraError> {
        let id = TokenId::parse(&id)?;
        let code =
            self.with_unlocked(|vault| Ok(vault.update(|v| v.take_unguarded_code(&id, unix_now()))?))?;
        Ok(code.expose().to_owned())
    }

    /// True when the vault asks for its answer PIN before answering login requests, making One
    /// Swipe codes and giving out push tokens' codes.
    pub fn has_answer_pin(&self) -> Result<bool, TesseraError> {
        self.with_unlocked(|vault| Ok(vault.read()?.has_answer_pin()))
    }

    /// Sets the answer PIN (4 to 64 characters); replacing one needs the `current` PIN, which is
    /// checked and counted as for answers.
    pub fn set_answer_pin(&self, current: Option<String>, new: String) -> Result<(), TesseraError> {
        let (current, new) = (SecretString::from_field(current), SecretString::new(new));
        let at = unix_now();
        self.with_unlocked(|vault| {
            Ok(vault.update(|v| Ok::<_, VaultError>(v.set_answer_pin(current.as_ref(), &new, at)))??)
        })
    }

    /// Removes the answer PIN, given the current one (checked and counted).
    pub fn clear_answer_pin(&self, current: String) -> Result<(), TesseraError> {
        let current = SecretString::new(current);
        let at = unix_now();
        self.with_unlocked(|vault| {
            Ok(vault.update(|v| Ok::<_, VaultError>(v.clear_answer_pin(Some(&current), at)))??)
        })
    }

    /// Makes a One Swipe code of push token `id`, valid for 30 s: a signed, single-use payload that
    /// a login screen's webcam reads. With an answer PIN set, `pin` is checked and the attempt
    /// counted, right or wrong.
    pub fn one_swipe(&self, id: String, pin: Option<String>) -> Result<OneSwipeCode, TesseraError> {
        let (id, pin) = (TokenId::parse(&id)?, SecretString::from_field(pin));
        let (at, lifetime_secs) = (unix_now(), oneswipe::DEFAULT_LIFETIME_SECS);
        self.with_unlocked(|vault| {
            let (code, token_name) = vault.update_behind_pin(pin.as_ref(), at, |v| {
                let code = v.take_one_swipe(&id, at, lifetime_secs)?;
                Ok((code, v.get(&id).map(|t| t.display_name()).unwrap_or_default()))
            })?;
            Ok(OneSwipeCode {
                token_name,
                payload: code.to_text().expose().to_owned(),
                expires_at: code.expires_at(),
                lifetime_secs,
            })
        })
    }

    /// Where a `tessera://enroll` link leads, to show the user before [`Vault::enroll`].
    pub fn enrollment_preview(&self, link: String) -> Result<EnrollmentPreview, TesseraError> {
        Ok(EnrollmentLink::parse(link.trim())?.preview().into())
    }

    /// Registers this phone as a push device from a `tessera://enroll` link (pasted or scanned)
    /// and keeps it in the vault; the listener's channels then include it. `device_name` is what
    /// the server shows in the user's devices. Call it only after the user confirmed the
    /// [`Vault::enrollment_preview`]; a server reached by plain HTTP on another computer is
    /// refused (`Denied`) unless `accept_cleartext` says the user confirmed a second warning.
    pub async fn enroll(
        &self,
        link: String,
        device_name: String,
        accept_cleartext: bool,
    ) -> Result<Added, TesseraError> {
        let link = EnrollmentLink::parse(link.trim())?;
        if !self.is_unlocked() {
            return Err(locked());
        }
        let cleartext = if accept_cleartext { Cleartext::AcceptedByUser } else { Cleartext::Refuse };
        link.check_transport(cleartext)?;
        self.register_with(link, device_name, cleartext).await
    }

    /// Signs in to an organisation's server (`https://` when `server` names none) with the
    /// user's password and second factor: a passcode, the help desk's registration code, or
    /// nothing to approve on a device they have (or get a code by text). Once accepted, this
    /// phone registers as their push device with no QR code (`Enrolled`); otherwise the answer
    /// says what to ask next, for [`Vault::continue_organisation_sign_in`]. A refusal is `Denied`;
    /// a server reached by plain HTTP on another computer is refused.
    pub async fn sign_in_to_organisation(
        &self,
        server: String,
        username: String,
        password: Option<String>,
        factor: Option<String>,
        device_name: String,
    ) -> Result<OrganisationStep, TesseraError> {
        if !self.is_unlocked() {
            return Err(locked());
        }
        let server = organisation::server_url(&server);
        let request = organisation::first_request(
            &username,
            password.map(SecretString::new),
            factor.map(SecretString::new),
        );
        let step = runtime::run(async move {
            Ok::<_, TesseraError>(organisation::next_step(&server, &request, Cleartext::Refuse).await?)
        })
        .await?;
        self.organisation_outcome(step, device_name).await
    }

    /// Goes on with a sign-in: waits (up to three minutes) for the approval on the user's other
    /// device when `code` is none, or sends the code that was sent to them.
    pub async fn continue_organisation_sign_in(
        &self,
        server: String,
        username: String,
        transaction_id: String,
        code: Option<String>,
        device_name: String,
    ) -> Result<OrganisationStep, TesseraError> {
        if !self.is_unlocked() {
            return Err(locked());
        }
        let server = organisation::server_url(&server);
        let code = code.map(SecretString::new);
        let step = runtime::run(async move {
            Ok::<_, TesseraError>(
                organisation::continue_step(&server, &username, transaction_id, code, Cleartext::Refuse)
                    .await?,
            )
        })
        .await?;
        self.organisation_outcome(step, device_name).await
    }

    /// Adds what was scanned or pasted: the token of an `otpauth://` URI; for a
    /// `tessera://enroll` link, nothing yet: the answer's `enrollment` says where it leads, and
    /// [`Vault::enroll`] registers once the user confirmed. A text that is neither is an
    /// `InvalidInput` error.
    pub fn add_scanned(&self, text: String) -> Result<Added, TesseraError> {
        if EnrollmentLink::is_meant(text.trim()) {
            let enrollment = Some(self.enrollment_preview(text)?);
            return Ok(Added { tokens: Vec::new(), warnings: Vec::new(), enrollment });
        }
        if !otpauth::adds_to_vault(text.trim()) {
            return Err(TesseraError::InvalidInput {
                reason: "this QR code holds no token and no push enrollment link".into(),
            });
        }
        self.add_uri(text, None)
    }
}

impl Vault {
    /// Runs `action` on the unlocked vault; a locked vault is a `Locked` error. The lock is not
    /// held while `action` runs (Argon2 for a PIN, a file write), so locking never waits for it.
    pub(crate) fn with_unlocked<R>(
        &self,
        action: impl FnOnce(&UnlockedVault) -> Result<R, TesseraError>,
    ) -> Result<R, TesseraError> {
        let unlocked = self.lock_state().clone().ok_or_else(locked)?;
        action(&unlocked)
    }

    /// This object, for the library's tasks (which must not keep it alive).
    pub(crate) fn me(&self) -> Weak<Vault> {
        self.me.clone()
    }

    fn add_all(&self, parsed: Vec<ParsedUri>, group: Option<String>) -> Result<Added, TesseraError> {
        let warnings = parsed.iter().flat_map(|p| p.warnings.iter().map(ToString::to_string)).collect();
        let at = unix_now();
        let tokens = self.with_unlocked(|vault| {
            vault.update(|v| -> Result<Vec<Token>, TesseraError> {
                parsed
                    .into_iter()
                    .map(|p| Ok(v.add(p.otp, group.clone(), at).map(TokenInfo::of)?.into()))
                    .collect()
            })
        })?;
        Ok(Added { tokens, warnings, enrollment: None })
    }

    /// The unlocked vault slot, even if a panic elsewhere poisoned the mutex (every change to it
    /// is one assignment).
    fn lock_state(&self) -> MutexGuard<'_, Option<Arc<UnlockedVault>>> {
        self.unlocked.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The error for a call that needs the unlocked vault.
pub(crate) fn locked() -> TesseraError {
    TesseraError::Locked { reason: "the vault is locked: unlock it first".into() }
}

impl Vault {
    /// Registers this phone as a push device with `link` (already checked for transport) and
    /// keeps it in the vault, as one task.
    async fn register_with(
        &self,
        link: EnrollmentLink,
        device_name: String,
        cleartext: Cleartext,
    ) -> Result<Added, TesseraError> {
        let warnings = link.cleartext_warning().into_iter().collect();
        let vault = self.me();
        // Registering and keeping run as one task: were the caller's coroutine cancelled between
        // them, the server would hold a device (and a spent link) this vault does not know.
        let token = runtime::run(async move {
            let (key, registered) =
                tessera_client::register(&link, Some(device_name), None, cleartext).await?;
            let keep = move || {
                let vault = vault.upgrade().ok_or_else(locked)?;
                vault.with_unlocked(|v| {
                    Ok(devices::keep_registration(v, &link, &key, &registered, unix_now())?)
                })
            };
            tokio::task::spawn_blocking(keep).await.map_err(TesseraError::internal)?.map_err(|error| {
                match error {
                    TesseraError::Locked { .. } => {
                        TesseraError::Locked { reason: devices::LOCKED_WHILE_REGISTERING.into() }
                    }
                    other => other,
                }
            })
        })
        .await?;
        let _ = self.sync_push(false);
        Ok(Added { tokens: vec![token.into()], warnings, enrollment: None })
    }

    /// What the app shows after a sign-in step: enrolled (registered here), or what to ask next.
    async fn organisation_outcome(
        &self,
        step: NextStep,
        device_name: String,
    ) -> Result<OrganisationStep, TesseraError> {
        Ok(match step {
            NextStep::Register(link) => OrganisationStep::Enrolled {
                added: self.register_with(link, device_name, Cleartext::Refuse).await?,
            },
            NextStep::Approve { message, number, transaction_id } => {
                OrganisationStep::Approve { message, number, transaction_id }
            }
            NextStep::EnterSentCode { message, transaction_id } => {
                OrganisationStep::EnterSentCode { message, transaction_id }
            }
            NextStep::EnterPasscode { message } => OrganisationStep::EnterPasscode { message },
            NextStep::Refused { message } => return Err(TesseraError::Denied { reason: message }),
        })
    }
}

/// What signing in to an organisation asks next, or that it is done.
#[derive(Debug, uniffi::Enum)]
pub enum OrganisationStep {
    /// Signed in: this phone is the user's push device now.
    Enrolled {
        /// The push token added.
        added: Added,
    },
    /// Approve on a device the user already has (choosing `number`), then
    /// [`Vault::continue_organisation_sign_in`] without a code waits for it.
    Approve {
        /// What to tell the user.
        message: String,
        /// The number to choose.
        number: Option<u8>,
        /// The request being approved.
        transaction_id: String,
    },
    /// Type the code just sent, then [`Vault::continue_organisation_sign_in`] with it.
    EnterSentCode {
        /// Where the code went.
        message: String,
        /// The challenge it completes.
        transaction_id: String,
    },
    /// Type a passcode and call [`Vault::sign_in_to_organisation`] again with it.
    EnterPasscode {
        /// What to tell the user.
        message: String,
    },
}
