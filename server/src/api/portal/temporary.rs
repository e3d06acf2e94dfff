//! The page that shows a self-service temporary passcode, once.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use super::{Chrome, render, when};
use crate::api::AppState;
use crate::service::{IssuedPasscode, PortalSession};

#[derive(Template)]
#[template(path = "temporary.html")]
struct TemporaryPage {
    chrome: Chrome,
    groups: Vec<String>,
    spoken: String,
    until: String,
    max_uses: u32,
}

/// The new passcode in groups of three digits, with when it stops working.
pub(super) fn passcode_page(state: &AppState, session: &PortalSession, issued: &IssuedPasscode) -> Response {
    let digits: Vec<char> = issued.passcode.expose().chars().collect();
    let groups: Vec<String> = digits.chunks(3).map(|group| group.iter().collect()).collect();
    let page = TemporaryPage {
        chrome: super::chrome(state, session),
        spoken: digits.iter().map(char::to_string).collect::<Vec<_>>().join(" "),
        groups,
        until: when(issued.expires_at),
        max_uses: issued.max_uses,
    };
    render(&page, StatusCode::OK)
}
