//! The portal's device pages: adding the Tessera app or an authenticator app by QR code (pending
//! until it proves itself), replacing a phone, renaming, deleting, and the step-up page that
//! sensitive actions go through first.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::{Chrome, Form, Notice, Posted, caller, failed, render, sentence, session_of, when};
use crate::api::AppState;
use crate::api::extract::ClientIp;
use crate::service::{
    AddedDevice, Caller, CodeChoice, Confirmation, NewDevice, PortalSession, ServiceError, StepUp,
    StepUpAnswer,
};

/// The device pages' routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/devices/add", post(add))
        .route("/portal/devices/pending", get(pending))
        .route("/portal/devices/confirm", post(confirm))
        .route("/portal/devices/status", get(status))
        .route("/portal/devices/rename", post(rename))
        .route("/portal/devices/delete", post(delete))
        .route("/portal/delivery", post(delivery))
        .route("/portal/step-up", post(step_up))
        .merge(super::phone::routes())
        .route("/portal/temporary", post(temporary))
}

/// What a step-up leads to, carried through its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Then {
    Add { kind: NewDevice, replaces: Option<String> },
    Delete { serial: String },
    Phone { number: String },
    Temporary,
}

impl Then {
    fn from_form(form: &mut Form) -> Option<Self> {
        match form.take("then").as_deref() {
            Some("add") => Some(Self::Add { kind: kind_of(form)?, replaces: form.take("replaces") }),
            Some("delete") => Some(Self::Delete { serial: form.take("serial")? }),
            Some("phone") => Some(Self::Phone { number: form.take("phone")? }),
            Some("temporary") => Some(Self::Temporary),
            _ => None,
        }
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Add { kind, replaces } => {
                let mut fields = vec![("then", "add".to_owned()), ("kind", kind_name(*kind).to_owned())];
                fields.extend(replaces.clone().map(|serial| ("replaces", serial)));
                fields
            }
            Self::Delete { serial } => vec![("then", "delete".to_owned()), ("serial", serial.clone())],
            Self::Phone { number } => vec![("then", "phone".to_owned()), ("phone", number.clone())],
            Self::Temporary => vec![("then", "temporary".to_owned())],
        }
    }

    fn purpose(&self) -> &'static str {
        match self {
            Self::Add { .. } => "Replacing a phone",
            Self::Delete { .. } => "Deleting a device",
            Self::Phone { .. } => "Changing your phone number",
            Self::Temporary => "Getting a temporary passcode",
        }
    }
}

fn kind_of(form: &mut Form) -> Option<NewDevice> {
    match form.take("kind").as_deref() {
        Some("app") => Some(NewDevice::App),
        Some("authenticator") => Some(NewDevice::Authenticator),
        _ => None,
    }
}

fn kind_name(kind: NewDevice) -> &'static str {
    match kind {
        NewDevice::App => "app",
        NewDevice::Authenticator => "authenticator",
    }
}

#[derive(Template)]
#[template(path = "add.html")]
struct AddPage {
    chrome: Chrome,
    notice: Option<Notice>,
    serial: String,
    app: bool,
    link: String,
    qr_png_base64: String,
    until: String,
    replacing: bool,
}

#[derive(Template)]
#[template(path = "stepup.html")]
struct StepUpPage {
    chrome: Chrome,
    notice: Option<Notice>,
    purpose: &'static str,
    then: Vec<(&'static str, String)>,
    waiting: Option<Waiting>,
}

struct Waiting {
    transaction_id: String,
    prompt: String,
    number: Option<String>,
    awaiting_code: bool,
}

/// `POST /portal/devices/add`: `kind` (`app`, `authenticator`), `replaces` (a serial).
async fn add(State(state): State<AppState>, ClientIp(ip): ClientIp, posted: Posted) -> Response {
    let Posted { session, mut form, headers } = posted;
    let Some(kind) = kind_of(&mut form) else { return bad_form() };
    let then = Then::Add { kind, replaces: form.take("replaces").filter(|s| !s.is_empty()) };
    perform(&state, &session, then, &caller(ip, &headers)).await
}

/// `GET /portal/devices/pending?serial=…`: a pending authenticator app's QR code again.
async fn pending(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SerialQuery>,
) -> Response {
    let session = match session_of(&state, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return Redirect::to("/portal").into_response(),
        Err(response) => return response,
    };
    match state.service.portal_pending_device(&session, &query.serial).await {
        Ok(Some(device)) => add_page(&state, &session, &device, None),
        Ok(None) => done(Done::Gone),
        Err(error) => trouble(&error),
    }
}

/// `POST /portal/devices/confirm`: `serial` and the app's first `passcode`.
async fn confirm(State(state): State<AppState>, ClientIp(ip): ClientIp, posted: Posted) -> Response {
    let Posted { session, mut form, headers } = posted;
    let Some(serial) = form.take("serial") else { return bad_form() };
    let Some(code) = form.secret("passcode") else {
        return again(&state, &session, &serial, "Enter the code your app shows.").await;
    };
    match state.service.portal_confirm_device(&session, &serial, &code, &caller(ip, &headers)).await {
        Ok(Confirmation::Ready) => done(Done::Ready),
        Ok(Confirmation::WrongCode) => {
            again(&state, &session, &serial, "That is not the code your app shows now. Try the next one.")
                .await
        }
        Ok(Confirmation::Gone) => done(Done::Gone),
        Err(error) => trouble(&error),
    }
}

#[derive(serde::Deserialize)]
struct SerialQuery {
    serial: String,
}

/// `GET /portal/devices/status?serial=…`: `{"ready": bool}`, for the page waiting on a phone.
async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SerialQuery>,
) -> Response {
    let session = match session_of(&state, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(response) => return response,
    };
    match state.service.portal_device_is_ready(&session, &query.serial).await {
        Ok(ready) => {
            let mut response = axum::Json(serde_json::json!({ "ready": ready })).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => trouble(&error),
    }
}

/// `POST /portal/devices/rename`: `serial`, `name`.
async fn rename(State(state): State<AppState>, ClientIp(ip): ClientIp, posted: Posted) -> Response {
    let Posted { session, mut form, headers } = posted;
    let (Some(serial), Some(name)) = (form.take("serial"), form.take("name")) else { return bad_form() };
    match state.service.portal_rename_device(&session, &serial, &name, &caller(ip, &headers)).await {
        Ok(()) => done(Done::Renamed),
        Err(error @ (ServiceError::InvalidInput(_) | ServiceError::NotFound(..))) => {
            super::session_page(&state, &session, Notice::error(sentence(&error.to_string()))).await
        }
        Err(error) => trouble(&error),
    }
}

/// `POST /portal/delivery`: `choice` (`app` or `sms`), where a code goes when the user gives only
/// their password.
async fn delivery(State(state): State<AppState>, ClientIp(ip): ClientIp, posted: Posted) -> Response {
    let Posted { session, mut form, headers } = posted;
    let choice = match form.take("choice").as_deref() {
        Some("app") => CodeChoice::App,
        Some("sms") => CodeChoice::TextMessage,
        _ => return bad_form(),
    };
    match state.service.portal_choose_delivery(&session, choice, &caller(ip, &headers)).await {
        Ok(()) => done(Done::Delivery),
        Err(error @ ServiceError::InvalidInput(_)) => {
            super::session_page(&state, &session, Notice::error(sentence(&error.to_string()))).await
        }
        Err(error) => trouble(&error),
    }
}

/// `POST /portal/temporary`: a temporary passcode for the signed-in user, where policy allows.
async fn temporary(State(state): State<AppState>, ClientIp(ip): ClientIp, posted: Posted) -> Response {
    let Posted { session, headers, .. } = posted;
    perform(&state, &session, Then::Temporary, &caller(ip, &headers)).await
}

/// `POST /portal/devices/delete`: `serial`.
async fn delete(State(state): State<AppState>, ClientIp(ip): ClientIp, posted: Posted) -> Response {
    let Posted { session, mut form, headers } = posted;
    let Some(serial) = form.take("serial") else { return bad_form() };
    perform(&state, &session, Then::Delete { serial }, &caller(ip, &headers)).await
}

/// `POST /portal/step-up`: `password` and `passcode` (or `transaction_id` and, for a sent code,
/// `passcode`), then the action it was asked for.
async fn step_up(State(state): State<AppState>, ClientIp(ip): ClientIp, posted: Posted) -> Response {
    let Posted { mut session, mut form, headers } = posted;
    let Some(then) = Then::from_form(&mut form) else { return bad_form() };
    let transaction_id = form.take("transaction_id").filter(|t| !t.is_empty());
    let (password, passcode) = (form.secret("password"), form.secret("passcode"));
    let caller = caller(ip, &headers);
    match state.service.portal_step_up(&mut session, password, passcode, transaction_id, &caller).await {
        Ok(StepUpAnswer::Fresh) => perform(&state, &session, then, &caller).await,
        Ok(StepUpAnswer::Waiting { transaction_id, prompt, awaiting_code }) => {
            let waiting = Waiting {
                number: super::number_in(&prompt),
                prompt: sentence(&prompt),
                transaction_id,
                awaiting_code,
            };
            step_up_page(&state, &session, &then, None, Some(waiting))
        }
        Ok(StepUpAnswer::Refused(message)) => {
            let mut response = step_up_page(&state, &session, &then, Notice::error(sentence(&message)), None);
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
        }
        Err(error) => trouble(&error),
    }
}

/// Carries out `then`, or asks for a step-up first.
pub(super) async fn perform(
    state: &AppState,
    session: &PortalSession,
    then: Then,
    caller: &Caller<'_>,
) -> Response {
    match &then {
        Then::Add { kind, replaces } => {
            match state.service.portal_add_device(session, *kind, replaces.as_deref(), caller).await {
                Ok(StepUp::Done(device)) => add_page(state, session, &device, None),
                Ok(StepUp::Needed) => step_up_page(state, session, &then, None, None),
                Err(error @ (ServiceError::Conflict(_) | ServiceError::NotFound(..))) => {
                    super::session_page(state, session, Notice::error(sentence(&error.to_string()))).await
                }
                Err(error) => trouble(&error),
            }
        }
        Then::Delete { serial } => match state.service.portal_delete_device(session, serial, caller).await {
            Ok(StepUp::Done(())) => done(Done::Deleted),
            Ok(StepUp::Needed) => step_up_page(state, session, &then, None, None),
            Err(error @ ServiceError::NotFound(..)) => {
                super::session_page(state, session, Notice::error(sentence(&error.to_string()))).await
            }
            Err(error) => trouble(&error),
        },
        Then::Phone { number } => match state.service.portal_change_phone(session, number, caller).await {
            Ok(StepUp::Done(check)) => super::phone::check_page(state, session, &check, None),
            Ok(StepUp::Needed) => step_up_page(state, session, &then, None, None),
            Err(error @ (ServiceError::InvalidInput(_) | ServiceError::TooManyRequests(_))) => {
                super::session_page(state, session, Notice::error(sentence(&error.to_string()))).await
            }
            Err(error) => trouble(&error),
        },
        Then::Temporary => match state.service.portal_temporary_passcode(session, caller).await {
            Ok(StepUp::Done(issued)) => super::temporary::passcode_page(state, session, &issued),
            Ok(StepUp::Needed) => {
                let notice = session.proved_with_temporary_passcode().then_some(
                    "A temporary passcode cannot get another: confirm with a code from one of your devices or one sent to you.",
                );
                step_up_page(state, session, &then, notice.and_then(Notice::error), None)
            }
            Err(error @ (ServiceError::InvalidInput(_) | ServiceError::Conflict(_))) => {
                super::session_page(state, session, Notice::error(sentence(&error.to_string()))).await
            }
            Err(error) => trouble(&error),
        },
    }
}

/// The QR code page again, with `message`, for a pending authenticator app.
async fn again(state: &AppState, session: &PortalSession, serial: &str, message: &str) -> Response {
    match state.service.portal_pending_device(session, serial).await {
        Ok(Some(device)) => {
            let mut response = add_page(state, session, &device, Notice::error(message));
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            response
        }
        Ok(None) => done(Done::Gone),
        Err(error) => trouble(&error),
    }
}

fn add_page(
    state: &AppState,
    session: &PortalSession,
    device: &AddedDevice,
    notice: Option<Notice>,
) -> Response {
    let page = AddPage {
        chrome: super::chrome(state, session),
        notice,
        serial: device.serial.clone(),
        app: device.kind == NewDevice::App,
        link: device.link.expose().to_owned(),
        qr_png_base64: device.qr_png_base64.clone(),
        until: when(device.pending_until),
        replacing: device.replaces.is_some(),
    };
    render(&page, StatusCode::OK)
}

fn step_up_page(
    state: &AppState,
    session: &PortalSession,
    then: &Then,
    notice: Option<Notice>,
    waiting: Option<Waiting>,
) -> Response {
    let page = StepUpPage {
        chrome: super::chrome(state, session),
        notice,
        purpose: then.purpose(),
        then: then.fields(),
        waiting,
    };
    render(&page, StatusCode::OK)
}

/// What the first page says after an action (carried in the redirect as a fixed word, so no
/// text of the request is ever shown back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Done {
    Ready,
    Phone,
    PhoneGone,
    Renamed,
    Deleted,
    Gone,
    Delivery,
}

impl Done {
    pub(super) fn parse(word: &str) -> Option<Self> {
        [Self::Ready, Self::Phone, Self::PhoneGone, Self::Renamed, Self::Deleted, Self::Gone, Self::Delivery]
            .into_iter()
            .find(|done| done.word() == word)
    }

    fn word(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Phone => "phone",
            Self::PhoneGone => "phone-gone",
            Self::Renamed => "renamed",
            Self::Deleted => "deleted",
            Self::Gone => "gone",
            Self::Delivery => "delivery",
        }
    }

    pub(super) fn notice(self) -> Option<Notice> {
        match self {
            Self::Ready => Notice::info("Your new device is ready. Use it the next time you sign in."),
            Self::Phone => Notice::info("Your phone number was changed: your codes now go to the new one."),
            Self::PhoneGone => Notice::error(
                "Your number was not changed: the code ran out or was wrong three times. Start again to get a new one.",
            ),
            Self::Renamed => Notice::info("The device was renamed."),
            Self::Deleted => Notice::info("The device was deleted. It no longer signs you in."),
            Self::Delivery => {
                Notice::info("Saved: that is where your code goes when you sign in with your password.")
            }
            Self::Gone => Notice::error(
                "That device is no longer waiting: it was confirmed, deleted, or its time ran out.",
            ),
        }
    }
}

pub(super) fn done(done: Done) -> Response {
    Redirect::to(&format!("/portal?done={}", done.word())).into_response()
}

/// A session still awaiting its second factor goes back to that page; anything else failed.
pub(super) fn trouble(error: &ServiceError) -> Response {
    match error {
        ServiceError::Unauthorized(_) => Redirect::to("/portal").into_response(),
        other => failed(&other.to_string()),
    }
}

pub(super) fn bad_form() -> Response {
    super::plain(
        StatusCode::UNPROCESSABLE_ENTITY,
        "This form is incomplete. Go back to the portal and try again.",
    )
}
