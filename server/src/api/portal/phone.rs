//! The portal's phone number change: the new number is asked for (after a fresh second factor),
//! a code is sent to it, and the page waits for that code.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;

use super::devices::{Done, Then, bad_form, done, perform, trouble};
use super::{Chrome, Notice, Posted, caller, render};
use crate::api::AppState;
use crate::api::extract::ClientIp;
use crate::service::{Confirmation, PhoneCheck, PortalSession};

/// The phone number routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/portal/phone", post(change)).route("/portal/phone/confirm", post(confirm))
}

#[derive(Template)]
#[template(path = "phone.html")]
struct PhonePage {
    chrome: Chrome,
    notice: Option<Notice>,
    serial: String,
    transaction_id: String,
    masked: Option<String>,
}

/// `POST /portal/phone`: `phone`, the new number.
async fn change(State(state): State<AppState>, ClientIp(ip): ClientIp, posted: Posted) -> Response {
    let Posted { session, mut form, headers } = posted;
    let Some(number) = form.take("phone") else { return bad_form() };
    perform(&state, &session, Then::Phone { number }, &caller(ip, &headers)).await
}

/// `POST /portal/phone/confirm`: `serial`, `transaction_id` and the `passcode` sent to the number.
async fn confirm(State(state): State<AppState>, ClientIp(ip): ClientIp, posted: Posted) -> Response {
    let Posted { session, mut form, headers } = posted;
    let (Some(serial), Some(transaction_id)) = (form.take("serial"), form.take("transaction_id")) else {
        return bad_form();
    };
    let check = PhoneCheck { serial, transaction_id, masked: None };
    let Some(code) = form.secret("passcode") else {
        return check_page(&state, &session, &check, Notice::error("Enter the code we sent."));
    };
    let caller = caller(ip, &headers);
    let confirmed =
        state.service.portal_confirm_phone(&session, &check.serial, &check.transaction_id, &code, &caller);
    match confirmed.await {
        Ok(Confirmation::Ready) => done(Done::Phone),
        Ok(Confirmation::WrongCode) => {
            let notice = Notice::error("That is not the code we sent. Check the message and try again.");
            let mut response = check_page(&state, &session, &check, notice);
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            response
        }
        Ok(Confirmation::Gone) => done(Done::PhoneGone),
        Err(error) => trouble(&error),
    }
}

/// The page that asks for the code sent to the new number.
pub(super) fn check_page(
    state: &AppState,
    session: &PortalSession,
    check: &PhoneCheck,
    notice: Option<Notice>,
) -> Response {
    let page = PhonePage {
        chrome: super::chrome(state, session),
        notice,
        serial: check.serial.clone(),
        transaction_id: check.transaction_id.clone(),
        masked: check.masked.clone(),
    };
    render(&page, StatusCode::OK)
}
