//! The commands the web view may call (each listed in `build.rs` and allowed in
//! `capabilities/default.json`). Each one parses what the UI sent, calls the core, and converts
//! the result; the rules live in `tessera-core`.

use data_encoding::BASE64;
use serde::{Deserialize, Serialize};
use tauri::ipc::{Channel, InvokeBody, Request};
use tauri::{AppHandle, Manager, Runtime, State};
use tessera_client::devices::{self, Delivered};
use tessera_client::organisation::{self, NextStep};
use tessera_core::error::ErrorCode;
use tessera_core::oneswipe;
use tessera_core::otp::unix_now;
use tessera_core::otpauth::{self, ManualEntry, OtpAuth, ParsedUri};
use tessera_core::push::{Cleartext, Decision, DenyReason, EnrollmentLink, EnrollmentPreview};
use tessera_core::qr;
use tessera_core::secret::SecretString;
use tessera_core::vault::{
    CodeState, KdfParams, Listed, TokenEdit, TokenError, TokenId, TokenInfo, UnlockedVault,
};

use crate::camera::{self, CameraChoice, CameraControl};
use crate::clipboard;
use crate::error::{CommandError, CommandResult};
use crate::push::{PushCenter, PushStatus};
use crate::session::Session;
use crate::tray;

/// Largest image accepted for QR reading (a full-screen 4K screenshot is about 10 MB as PNG).
const MAX_IMAGE_BYTES: usize = 32 * 1024 * 1024;

/// An SVG image as a `data:` URL for an `<img>` (the CSP allows `data:` images only).
fn svg_data_url(svg: &str) -> String {
    format!("data:image/svg+xml;base64,{}", BASE64.encode(svg.as_bytes()))
}

/// What the first screen needs to know.
#[derive(Debug, Serialize)]
pub struct VaultStatus {
    /// A vault file exists.
    exists: bool,
    /// It is unlocked.
    unlocked: bool,
    /// Where it is.
    path: String,
    /// Its key slots' kinds (`os-keystore`, `passphrase`), when it exists and is readable.
    slots: Vec<&'static str>,
    /// The auto-lock time in seconds.
    auto_lock_secs: u64,
}

/// Where the vault is, whether it is unlocked, and how it can be unlocked.
#[tauri::command]
pub fn vault_status(session: State<'_, Session>) -> VaultStatus {
    let store = session.store();
    VaultStatus {
        exists: store.exists(),
        unlocked: session.is_unlocked(),
        path: store.path().display().to_string(),
        slots: store.slots().map(|slots| slots.iter().map(|s| s.kind.as_str()).collect()).unwrap_or_default(),
        auto_lock_secs: session.auto_lock().as_secs(),
    }
}

/// Creates the vault, unlocked by the OS key store, a passphrase, or both, and unlocks it.
#[tauri::command(async)]
pub fn create_vault(
    session: State<'_, Session>,
    passphrase: Option<String>,
    use_keystore: bool,
) -> CommandResult<()> {
    let passphrase = SecretString::from_field(passphrase);
    let keystore = use_keystore.then_some(session.keystore() as _);
    let vault = session.store().create(keystore, passphrase.as_ref().map(|p| (p, KdfParams::DEFAULT)))?;
    session.set_unlocked(vault);
    Ok(())
}

/// Unlocks the vault: with the OS key store when it has such a slot, else with `passphrase`
/// (a `locked` error asks the UI for it).
#[tauri::command(async)]
pub fn unlock<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
    center: State<'_, PushCenter>,
    passphrase: Option<String>,
) -> CommandResult<()> {
    let passphrase = SecretString::from_field(passphrase);
    let vault = session.store().unlock_any(Some(session.keystore()), || passphrase)?;
    session.set_unlocked(vault);
    open_push_channels(&app, &session, &center);
    Ok(())
}

/// Opens the channels of the vault's push devices (see [`PushCenter::sync`]). Push trouble never
/// fails the command that changed the vault: the token list shows whether push is connected.
fn open_push_channels<R: Runtime>(app: &AppHandle<R>, session: &Session, center: &PushCenter) {
    let _ = session.with_vault(|vault| center.sync(app, &vault.read()?));
}

/// Locks the vault now.
#[tauri::command]
pub fn lock<R: Runtime>(app: AppHandle<R>, session: State<'_, Session>) {
    session.lock();
    tray::show_tokens(&app, None);
}

/// The user did something: postpones the auto-lock.
#[tauri::command]
pub fn note_activity(session: State<'_, Session>) {
    session.note_activity();
}

/// A token list row as the web view receives it (no `Debug`: it holds codes).
#[derive(Serialize)]
pub struct TokenRow {
    #[serde(flatten)]
    info: TokenInfo,
    code: CodeView,
}

/// What the row shows of the code.
#[derive(Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CodeView {
    /// A time-based code with the next one and the seconds left.
    Live {
        /// The current code.
        code: String,
        /// The next time step's code.
        next: String,
        /// The time step in seconds.
        period: u32,
        /// Seconds until `next` replaces `code`.
        seconds_left: u32,
    },
    /// Shown when asked for ([`take_code`]).
    OnRequest,
    /// Needs the answer PIN first.
    PinRequired,
}

impl From<Listed> for TokenRow {
    fn from(listed: Listed) -> Self {
        let code = match listed.code {
            CodeState::Live { code, next, period, seconds_left } => CodeView::Live {
                code: code.expose().to_owned(),
                next: next.expose().to_owned(),
                period,
                seconds_left,
            },
            CodeState::OnRequest => CodeView::OnRequest,
            CodeState::PinRequired => CodeView::PinRequired,
        };
        Self { info: listed.info, code }
    }
}

/// Every token with what may be shown of its code now. Not user activity: the UI calls it to
/// refresh codes.
#[tauri::command(async)]
pub fn list_tokens<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
) -> CommandResult<Vec<TokenRow>> {
    let rows: Vec<TokenRow> = session.with_vault(|vault| {
        Ok(vault.read()?.listing(unix_now()).into_iter().map(TokenRow::from).collect())
    })?;
    let names = rows.iter().map(|row| (row.info.id.clone(), row.info.display_name())).collect();
    tray::show_tokens(&app, Some(names));
    Ok(rows)
}

/// Takes a token's code for use (for HOTP this advances the counter; the use is recorded); a push
/// token guarded by the answer PIN is refused.
fn take(vault: &UnlockedVault, id: &TokenId) -> CommandResult<String> {
    let code = vault.update(|v| v.take_unguarded_code(id, unix_now()))?;
    Ok(code.expose().to_owned())
}

/// Takes the next code of an HOTP token (or the current one of any other).
#[tauri::command(async)]
pub fn take_code(session: State<'_, Session>, id: String) -> CommandResult<String> {
    let id = TokenId::parse(&id)?;
    session.act(|vault| take(vault, &id))
}

/// What copying did.
#[derive(Debug, Serialize)]
pub struct Copied {
    /// Seconds after which the clipboard is cleared if it still holds the code.
    clears_in_secs: u64,
}

/// Copies a token's code to the clipboard, and clears the clipboard after
/// [`clipboard::CLEAR_AFTER`] if it still holds that code.
#[tauri::command(async)]
pub fn copy_code<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
    id: String,
) -> CommandResult<Copied> {
    copy_to_clipboard(&app, &session, &TokenId::parse(&id)?)
}

/// Takes token `id`'s code into the clipboard (for [`copy_code`] and the tray menu).
pub fn copy_to_clipboard<R: Runtime>(
    app: &AppHandle<R>,
    session: &Session,
    id: &TokenId,
) -> CommandResult<Copied> {
    let code = session.act(|vault| take(vault, id))?;
    clipboard::copy_then_clear(app, code, clipboard::CLEAR_AFTER)?;
    Ok(Copied { clears_in_secs: clipboard::CLEAR_AFTER.as_secs() })
}

/// A One Swipe code as the screen shows it (no `Debug`: the image is a login credential).
#[derive(Serialize)]
pub struct OneSwipeView {
    /// The token's name.
    name: String,
    /// The QR code, as an SVG `data:` URL.
    image: String,
    /// Seconds until the code expires.
    seconds_left: u64,
    /// Its whole lifetime in seconds.
    lifetime_secs: u8,
}

/// Makes a One Swipe code of push token `id` (a signed, single-use QR code that a login screen's
/// webcam reads), valid for the default 30 s. When the vault has an answer PIN, `pin` is checked
/// first and the attempt counted, right or wrong, as for push answers.
#[tauri::command(async)]
pub fn one_swipe(
    session: State<'_, Session>,
    id: String,
    pin: Option<String>,
) -> CommandResult<OneSwipeView> {
    let id = TokenId::parse(&id)?;
    let pin = SecretString::from_field(pin);
    session.act(|vault| {
        let (at, lifetime_secs) = (unix_now(), oneswipe::DEFAULT_LIFETIME_SECS);
        let (code, name) = vault.update_behind_pin(pin.as_ref(), at, |v| {
            let code = v.take_one_swipe(&id, at, lifetime_secs)?;
            let name = v.get(&id).map(|t| t.display_name()).unwrap_or_default();
            Ok((code, name))
        })?;
        Ok(OneSwipeView {
            name,
            image: svg_data_url(&qr::render_svg(code.to_text().expose())?),
            seconds_left: code.expires_at().saturating_sub(unix_now()),
            lifetime_secs,
        })
    })
}

/// A token's QR code for moving it to another device (no `Debug`: it holds the seed).
#[derive(Serialize)]
pub struct TokenQr {
    /// The token's name.
    name: String,
    /// The QR code of its `otpauth://` URI, as an SVG `data:` URL.
    image: String,
}

/// A token's QR code, to move it to another device. It shows the seed, so it needs the owner
/// again: the vault's passphrase when it has one (else the OS key store), and for a push token
/// the answer PIN when the vault has one.
#[tauri::command(async)]
pub fn token_qr<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
    center: State<'_, PushCenter>,
    id: String,
    passphrase: Option<String>,
    pin: Option<String>,
) -> CommandResult<TokenQr> {
    let id = TokenId::parse(&id)?;
    let (passphrase, pin) = (SecretString::from_field(passphrase), SecretString::from_field(pin));
    if !session.is_unlocked() {
        return Err(CommandError::locked());
    }
    session.store().reauthenticate(session.keystore(), passphrase.as_ref())?;
    let shown = session.act(|vault| {
        let contents = vault.read()?;
        let token = contents.get(&id).ok_or_else(|| TokenError::NotFound(id.to_string()))?;
        if contents.pin_guards(token) {
            vault.update_behind_pin(pin.as_ref(), unix_now(), |_| Ok(()))?;
        }
        let image = svg_data_url(&qr::render_svg(token.otp().to_uri().expose())?);
        Ok(TokenQr { name: token.display_name(), image })
    });
    shown.inspect_err(|_| open_push_channels(&app, &session, &center))
}

/// What an add did: the tokens added, and what was odd but accepted. When what was added is an
/// enrollment link, nothing is added yet: `enrollment` says where it leads, and the user confirms
/// with [`confirm_enrollment`] (or [`cancel_enrollment`]) before anything is sent.
#[derive(Debug, Serialize)]
pub struct Added {
    tokens: Vec<TokenInfo>,
    warnings: Vec<String>,
    enrollment: Option<EnrollmentPreview>,
}

impl Added {
    fn tokens(tokens: Vec<TokenInfo>, warnings: Vec<String>) -> Self {
        Self { tokens, warnings, enrollment: None }
    }
}

/// The enrollment link waiting for the user's confirmation (kept here: its single-use code never
/// goes to the web view).
#[derive(Default)]
pub struct PendingEnrollment(std::sync::Mutex<Option<EnrollmentLink>>);

impl PendingEnrollment {
    fn replace(&self, link: Option<EnrollmentLink>) -> Option<EnrollmentLink> {
        std::mem::replace(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner), link)
    }
}

fn add_all(session: &Session, parsed: Vec<ParsedUri>, group: Option<String>) -> CommandResult<Added> {
    let warnings = parsed.iter().flat_map(|p| p.warnings.iter().map(ToString::to_string)).collect();
    let tokens: Vec<OtpAuth> = parsed.into_iter().map(|p| p.otp).collect();
    let at = unix_now();
    let tokens = session.act(|vault| {
        vault.update(|v| -> CommandResult<_> {
            Ok(tokens
                .into_iter()
                .map(|otp| v.add(otp, group.clone(), at).map(TokenInfo::of))
                .collect::<Result<_, _>>()?)
        })
    })?;
    Ok(Added::tokens(tokens, warnings))
}

/// This computer's name, which the server shows in the user's device list.
fn device_name() -> String {
    let name = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().chars().take(48).collect::<String>())
        .filter(|name| !name.is_empty());
    name.map_or_else(|| "Tessera desktop".to_owned(), |name| format!("Tessera desktop ({name})"))
}

/// Holds an enrollment link until the user confirms where it leads.
fn ask_to_enroll(pending: &PendingEnrollment, link: EnrollmentLink) -> Added {
    let preview = link.preview();
    pending.replace(Some(link));
    Added { tokens: Vec::new(), warnings: Vec::new(), enrollment: Some(preview) }
}

/// Registers this app as a push device from the enrollment link the user just confirmed, keeps
/// it in the vault, and opens its channel. `accept_cleartext` says the user also confirmed the
/// second warning about a server reached by plain HTTP on another computer.
#[tauri::command]
pub async fn confirm_enrollment<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
    center: State<'_, PushCenter>,
    pending: State<'_, PendingEnrollment>,
    accept_cleartext: bool,
) -> CommandResult<Added> {
    if !session.is_unlocked() {
        return Err(CommandError::locked());
    }
    let link = pending.replace(None).ok_or_else(|| {
        CommandError::new(ErrorCode::NotFound, "no enrollment is waiting; add the link again")
    })?;
    let cleartext = if accept_cleartext { Cleartext::AcceptedByUser } else { Cleartext::Refuse };
    register_and_keep(&app, &session, &center, &link, cleartext).await
}

/// Registers this app as a push device with `link`, keeps it in the vault and opens its channel.
async fn register_and_keep<R: Runtime>(
    app: &AppHandle<R>,
    session: &Session,
    center: &PushCenter,
    link: &EnrollmentLink,
    cleartext: Cleartext,
) -> CommandResult<Added> {
    let (key, registered) = tessera_client::register(link, Some(device_name()), None, cleartext).await?;
    let token = session
        .act(|vault| Ok(devices::keep_registration(vault, link, &key, &registered, unix_now())?))
        .map_err(|error| match error.kind {
            ErrorCode::Locked => CommandError::new(ErrorCode::Locked, devices::LOCKED_WHILE_REGISTERING),
            _ => error,
        })?;
    open_push_channels(app, session, center);
    Ok(Added::tokens(vec![token], link.cleartext_warning().into_iter().collect()))
}

/// What signing in to an organisation asks of the user next, or that it is done.
#[derive(Debug, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum OrganisationStep {
    /// Signed in: this app is the user's push device now.
    Enrolled {
        /// The push token added.
        added: Added,
    },
    /// Approve on a device the user already has, choosing `number`; then
    /// [`continue_organisation_sign_in`] waits for the answer.
    Approve {
        /// What to tell the user.
        message: String,
        /// The number to choose.
        number: Option<u8>,
        /// The request to wait on.
        transaction_id: String,
    },
    /// Type the code just sent; then [`continue_organisation_sign_in`] with it.
    EnterSentCode {
        /// Where the code went.
        message: String,
        /// The challenge it completes.
        transaction_id: String,
    },
    /// Type a passcode and sign in again.
    EnterPasscode {
        /// What to tell the user.
        message: String,
    },
}

/// Signs in to an organisation's server with the user's password and second factor (a passcode,
/// the help desk's registration code, or nothing to approve on a device they have or get a code):
/// once accepted, this app registers as their push device with no QR code. Plain HTTP to
/// another computer is refused.
#[tauri::command]
pub async fn sign_in_to_organisation<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
    center: State<'_, PushCenter>,
    server: String,
    username: String,
    password: Option<String>,
    factor: Option<String>,
) -> CommandResult<OrganisationStep> {
    if !session.is_unlocked() {
        return Err(CommandError::locked());
    }
    let server = organisation::server_url(&server);
    let request = organisation::first_request(
        &username,
        password.map(SecretString::new),
        factor.map(SecretString::new),
    );
    let step = organisation::next_step(&server, &request, Cleartext::Refuse).await?;
    organisation_outcome(&app, &session, &center, step).await
}

/// Goes on with a sign-in: waits for the approval on the user's other device (no `code`), or
/// sends the code that was sent to them.
#[tauri::command]
pub async fn continue_organisation_sign_in<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
    center: State<'_, PushCenter>,
    server: String,
    username: String,
    transaction_id: String,
    code: Option<String>,
) -> CommandResult<OrganisationStep> {
    if !session.is_unlocked() {
        return Err(CommandError::locked());
    }
    let server = organisation::server_url(&server);
    let step = organisation::continue_step(
        &server,
        &username,
        transaction_id,
        code.map(SecretString::new),
        Cleartext::Refuse,
    )
    .await?;
    organisation_outcome(&app, &session, &center, step).await
}

/// What the window shows after a sign-in step: enrolled (registered here), or what to ask next.
async fn organisation_outcome<R: Runtime>(
    app: &AppHandle<R>,
    session: &Session,
    center: &PushCenter,
    step: NextStep,
) -> CommandResult<OrganisationStep> {
    Ok(match step {
        NextStep::Register(link) => OrganisationStep::Enrolled {
            added: register_and_keep(app, session, center, &link, Cleartext::Refuse).await?,
        },
        NextStep::Approve { message, number, transaction_id } => {
            OrganisationStep::Approve { message, number, transaction_id }
        }
        NextStep::EnterSentCode { message, transaction_id } => {
            OrganisationStep::EnterSentCode { message, transaction_id }
        }
        NextStep::EnterPasscode { message } => OrganisationStep::EnterPasscode { message },
        NextStep::Refused { message } => return Err(CommandError::new(ErrorCode::Denied, message)),
    })
}

/// Forgets the enrollment link waiting for confirmation: nothing was sent.
#[tauri::command]
pub fn cancel_enrollment(pending: State<'_, PendingEnrollment>) {
    pending.replace(None);
}

/// Adds the token an `otpauth://` URI describes, or enrolls this app as a push device from a
/// `tessera://enroll` link.
#[tauri::command(async)]
pub fn add_uri(
    session: State<'_, Session>,
    pending: State<'_, PendingEnrollment>,
    uri: String,
    group: Option<String>,
) -> CommandResult<Added> {
    add_text(&session, &pending, SecretString::new(uri), group)
}

/// Adds the token of an `otpauth://` URI, or asks to enroll from a `tessera://enroll` link.
fn add_text(
    session: &Session,
    pending: &PendingEnrollment,
    text: SecretString,
    group: Option<String>,
) -> CommandResult<Added> {
    if EnrollmentLink::is_meant(text.expose()) {
        if !session.is_unlocked() {
            return Err(CommandError::locked());
        }
        return Ok(ask_to_enroll(pending, EnrollmentLink::parse(text.expose())?));
    }
    add_all(session, vec![OtpAuth::parse(text.expose().trim())?], group)
}

/// The cameras to scan with.
#[tauri::command(async)]
pub fn list_cameras() -> Vec<CameraChoice> {
    camera::choices()
}

/// Scans `camera` until it sees a token's or an enrollment link's QR code, then adds it. Each
/// frame goes to `preview` as a JPEG `data:` URL. `None` when the user stopped the scan.
#[tauri::command]
pub async fn scan_camera<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
    pending: State<'_, PendingEnrollment>,
    camera: u32,
    group: Option<String>,
    preview: Channel<String>,
) -> CommandResult<Option<Added>> {
    session.note_activity();
    let scanning = app.clone();
    let read = tauri::async_runtime::spawn_blocking(move || {
        camera::scan(camera, &scanning.state::<CameraControl>(), |frame| {
            let _ = preview.send(frame);
        })
    })
    .await
    .map_err(|e| CommandError::new(ErrorCode::Internal, format!("the camera scan failed: {e}")))??;
    match read {
        Some(text) => add_text(&session, &pending, text, group).map(Some),
        None => Ok(None),
    }
}

/// Stops a running camera scan.
#[tauri::command]
pub fn stop_camera(control: State<'_, CameraControl>) {
    control.stop();
}

/// Adds every token in the QR codes of an image (PNG, JPEG, WebP, GIF or BMP) sent as the raw
/// request body (a screenshot, a photo, or a file the user opened), or asks to enroll this app as
/// a push device when the image holds an enrollment QR code.
#[tauri::command(async)]
pub fn add_image(
    session: State<'_, Session>,
    pending: State<'_, PendingEnrollment>,
    request: Request<'_>,
) -> CommandResult<Added> {
    let InvokeBody::Raw(bytes) = request.body() else {
        return Err(CommandError::new(ErrorCode::InvalidInput, "expected the image's bytes"));
    };
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(CommandError::new(ErrorCode::InvalidInput, "the image is larger than 32 MB"));
    }
    let texts = qr::decode_image(bytes)?;
    if let Some(link) = EnrollmentLink::find_in(&texts) {
        if !session.is_unlocked() {
            return Err(CommandError::locked());
        }
        return Ok(ask_to_enroll(&pending, link));
    }
    add_all(&session, otpauth::tokens_from_qr_texts(&texts)?, None)
}

/// A token typed in by hand, as the form sends it.
#[derive(Debug, Deserialize)]
pub struct ManualForm {
    issuer: Option<String>,
    label: String,
    secret: SecretString,
    kind: String,
    algorithm: String,
    digits: u8,
    period: u32,
    counter: u64,
    group: Option<String>,
}

/// Adds a token typed in by hand.
#[tauri::command(async)]
pub fn add_manual(session: State<'_, Session>, form: ManualForm) -> CommandResult<Added> {
    let entry = ManualEntry {
        issuer: form.issuer,
        label: form.label,
        secret: form.secret,
        kind: form.kind,
        algorithm: form.algorithm,
        digits: form.digits,
        period: form.period,
        counter: form.counter,
    };
    add_all(&session, vec![entry.into_token()?], form.group)
}

/// Renames a token or moves it to another group (empty texts remove the issuer or group).
#[tauri::command(async)]
pub fn edit_token(
    session: State<'_, Session>,
    id: String,
    issuer: String,
    label: String,
    group: String,
) -> CommandResult<TokenInfo> {
    let id = TokenId::parse(&id)?;
    let edit =
        TokenEdit { issuer: Some(Some(issuer)), label: Some(label), group: Some(Some(group)), icon: None };
    session.act(|vault| vault.update(|v| -> CommandResult<_> { Ok(TokenInfo::of(v.edit(&id, edit)?)) }))
}

/// Removes a token (the UI asks for confirmation first); a push token's channel closes.
#[tauri::command(async)]
pub fn remove_token<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
    center: State<'_, PushCenter>,
    id: String,
) -> CommandResult<()> {
    let id = TokenId::parse(&id)?;
    session.act(|vault| vault.update(|v| -> CommandResult<_> { Ok(v.remove(&id).map(drop)?) }))?;
    open_push_channels(&app, &session, &center);
    Ok(())
}

/// Push devices, whether their channels are open, and the login requests waiting. It shows no
/// secret, so it works while the vault is locked: the lock screen says when a request waits.
#[tauri::command]
pub fn push_status(center: State<'_, PushCenter>) -> PushStatus {
    center.status()
}

/// How the user answered a login request.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// It is me: approve (with the number, when the request asks for one).
    Approve,
    /// Deny without reporting.
    Deny,
    /// Deny and report that the user did not start this login.
    NotMe,
}

/// What the server did with an answer.
#[derive(Debug, Serialize)]
pub struct Answered {
    /// `approved` or `denied`.
    status: String,
}

/// Answers a login request: checks the answer PIN when the vault has one, signs the answer (an
/// approval carries the token's TOTP) and sends it to the server.
#[tauri::command]
pub async fn answer_push<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
    center: State<'_, PushCenter>,
    transaction_id: String,
    reply: Reply,
    number: Option<u8>,
    pin: Option<String>,
) -> CommandResult<Answered> {
    let gone =
        || CommandError::new(ErrorCode::Expired, "this login request has expired or was already answered");
    let pending = center.begin_answer(&transaction_id).ok_or_else(gone)?;
    let decision = match reply {
        Reply::Approve => Decision::Approve,
        Reply::Deny => Decision::Deny(DenyReason::Cancelled),
        Reply::NotMe => Decision::Deny(DenyReason::NotMe),
    };
    let pin = SecretString::from_field(pin);
    let (token, challenge) = (&pending.device.token, &pending.challenge);
    let delivered = devices::answer(&pending, decision, || {
        std::future::ready(session.act(|vault| {
            Ok(devices::sign_answer(vault, token, challenge, decision, number, pin.as_ref(), unix_now()))
        }))
    })
    .await;
    center.end_answer(&transaction_id, delivered.is_ok());
    let delivered = delivered.inspect_err(|_| open_push_channels(&app, &session, &center))?;
    match delivered {
        Delivered::Answered(status) => Ok(Answered { status }),
        Delivered::NotApproved(refusal) => Err(CommandError::new(ErrorCode::Denied, refusal.message())),
        Delivered::Gone => Err(gone()),
    }
}
