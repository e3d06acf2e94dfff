//! The self-service portal (`/portal`): server-rendered pages from compiled templates that escape
//! everything they insert, plain HTML forms that work without JavaScript (one small script only
//! waits on a push), and the same strict Content Security Policy as `/login`. Handlers parse the
//! form, call one [`Service`](crate::service::Service) function and render its answer.
//!
//! Every form is posted with a token only this browser's page can know (the sign-in form's is a
//! `__Host-` cookie's value, a session's is derived from its id), and must come from the portal's
//! own origin (`Sec-Fetch-Site`, `Origin`). Cookies are `__Host-`, `Secure`, `HttpOnly`,
//! `SameSite=Strict`, without an expiry: the server ends sessions.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tessera_core::secret::SecretString;
use tessera_core::wire::SignInRequest;

mod devices;
mod phone;
mod temporary;

use super::AppState;
use super::extract::{ClientIp, FormPairs};
use crate::config::TemporaryPasscodePolicy;
use crate::input::sentence;
use crate::service::{
    Caller, CodeChoice, DeliveryChoice, DeviceView, Door, PortalOverview, PortalSession, SessionId, SignIn,
    SignInView, TokenKind,
};
use crate::store::{AuditResult, SessionStage};

const STYLE: &str = include_str!("../../../web/portal/portal.css");
const SCRIPT: &str = include_str!("../../../web/portal/portal.js");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// The session's cookie.
const SESSION_COOKIE: &str = "__Host-tessera-portal";
/// The sign-in form's token, before there is a session.
const SIGN_IN_COOKIE: &str = "__Host-tessera-sign-in";
/// A voice token's code, its expiry and its transaction (`482913.1733430000.TX…`), shown while
/// that call is awaited: the browser keeps it, the database only its MAC.
const CALL_CODE_COOKIE: &str = "__Host-tessera-call-code";
const COOKIE_FLAGS: &str = "Path=/; Secure; HttpOnly; SameSite=Strict";

/// The portal's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal", get(page))
        .route("/portal/enroll", get(enroll))
        .route("/portal/sign-in", post(sign_in))
        .route("/portal/complete", post(complete))
        .route("/portal/sign-out", post(sign_out))
        .route("/portal/portal.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/portal/portal.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .merge(devices::routes())
}

/// Answers 403 to a client outside `[portal] allowed_networks` (a portal kept to the intranet).
pub(super) async fn only_from_allowed_networks(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.service.portal().admits(ip) {
        return next.run(request).await;
    }
    plain(StatusCode::FORBIDDEN, "The self-service portal is not available from your network.")
}

/// What every page's frame shows.
struct Chrome {
    service: String,
    username: Option<String>,
    form_token: String,
}

/// A message above a form.
struct Notice {
    text: String,
    tone: &'static str,
    role: &'static str,
}

impl Notice {
    fn error(text: impl Into<String>) -> Option<Self> {
        Some(Self { text: text.into(), tone: "error", role: "alert" })
    }

    fn info(text: impl Into<String>) -> Option<Self> {
        Some(Self { text: text.into(), tone: "info", role: "status" })
    }
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    chrome: Chrome,
    notice: Option<Notice>,
    username: String,
    registration_codes: bool,
    registration_open: bool,
    registration_code: String,
    first_code_by_sms: bool,
}

#[derive(Template)]
#[template(path = "challenge.html")]
struct ChallengePage {
    chrome: Chrome,
    notice: Option<Notice>,
    awaiting_code: bool,
    prompt: String,
    number: Option<String>,
    transaction_id: String,
    display_code: Option<String>,
    expires_at: i64,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    notice: Option<Notice>,
    devices: Vec<DeviceRow>,
    sign_ins: Vec<SignInRow>,
    delivery: DeliveryChoice,
    sms_chosen: bool,
    temporary: Option<TemporaryPasscodePolicy>,
}

struct DeviceRow {
    serial: String,
    name: String,
    detail: String,
    kind_class: &'static str,
    kind_badge: &'static str,
    destination: Option<String>,
    added: String,
    last_used: String,
    enabled: bool,
    pending: bool,
    pending_until: Option<String>,
    replaces: Option<String>,
    can_continue: bool,
    replaceable: bool,
}

struct SignInRow {
    when: String,
    result: &'static str,
    result_class: &'static str,
    from: String,
    via: String,
}

#[derive(serde::Deserialize)]
struct PageQuery {
    done: Option<String>,
}

/// `GET /portal`: the signed-in user's devices (with what the last action did), the challenge
/// being awaited, or the sign-in form.
async fn page(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<PageQuery>) -> Response {
    if !state.service.portal().enabled {
        return disabled();
    }
    let notice = query.done.as_deref().and_then(devices::Done::parse).and_then(devices::Done::notice);
    match session_of(&state, &headers).await {
        Ok(Some(session)) => {
            let shown = cookie(&headers, CALL_CODE_COOKIE)
                .and_then(|value| ShownCode::parse(&value))
                .filter(|shown| shown.is_for(&session));
            session_page_showing(&state, &session, notice, shown).await
        }
        Ok(None) => sign_in_page(&state, &headers, None, String::new(), false),
        Err(response) => response,
    }
}

#[derive(serde::Deserialize)]
struct EnrollQuery {
    code: Option<String>,
}

/// `GET /portal/enroll?code=…`: the link the help desk sends with a registration code: the
/// sign-in form with the code filled in (a code of any other shape is left out).
async fn enroll(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<EnrollQuery>,
) -> Response {
    if !state.service.portal().enabled {
        return disabled();
    }
    let code = query.code.filter(|code| {
        code.len() <= 32 && code.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ' '))
    });
    let notice = Notice::info(
        "Welcome. Sign in with your password and the registration code below to add your first device.",
    );
    sign_in_page_with_code(&state, &headers, notice, String::new(), true, code)
}

/// `POST /portal/sign-in`: username, password, passcode (or registration code).
async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    FormPairs(pairs): FormPairs,
) -> Response {
    if let Some(refused) = refuse_foreign(&state, &headers) {
        return refused;
    }
    let mut form = Form::from(pairs);
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    let token = form.take("form_token").unwrap_or_default();
    if expected.is_empty() || !crate::keys::secrets_match(&token, &expected) {
        return sign_in_page(
            &state,
            &headers,
            Notice::error("This page had expired. Sign in again."),
            form.take("username").unwrap_or_default(),
            false,
        );
    }
    let username = form.take("username").unwrap_or_default().trim().to_owned();
    let registration_code = form.secret("registration_code");
    let typed_registration_code = registration_code.is_some();
    let credentials = SignInRequest {
        username: username.clone(),
        password: form.secret("password"),
        passcode: form.secret("passcode"),
        transaction_id: None,
        registration_code,
    };
    match state.service.portal_sign_in(credentials, &caller(ip, &headers)).await {
        Ok(SignIn::SignedIn(id) | SignIn::Challenge(id)) => {
            let mut response = entered(&id);
            set_cookie(&mut response, &format!("{SIGN_IN_COOKIE}=; Max-Age=0; {COOKIE_FLAGS}"));
            set_cookie(&mut response, &format!("{CALL_CODE_COOKIE}=; Max-Age=0; {COOKIE_FLAGS}"));
            response
        }
        Ok(SignIn::Call(id, shown)) => {
            let mut response = entered(&id);
            set_cookie(&mut response, &format!("{SIGN_IN_COOKIE}=; Max-Age=0; {COOKIE_FLAGS}"));
            let max_age = (shown.expires_at - crate::clock::now_i64()).max(1);
            let value = format!("{}.{}.{}", shown.code.expose(), shown.expires_at, shown.transaction_id);
            set_cookie(
                &mut response,
                &format!("{CALL_CODE_COOKIE}={value}; Max-Age={max_age}; {COOKIE_FLAGS}"),
            );
            response
        }
        Ok(SignIn::Again(message)) => sign_in_page(
            &state,
            &headers,
            Notice::info(sentence(&message)),
            username,
            typed_registration_code,
        ),
        Ok(SignIn::Refused(message)) => {
            refused(&state, &headers, &message, username, typed_registration_code)
        }
        Err(error) => failed(&error.to_string()),
    }
}

/// `POST /portal/complete`: the push was answered, or the sent code is typed.
async fn complete(State(state): State<AppState>, ClientIp(ip): ClientIp, mut posted: Posted) -> Response {
    let passcode = posted.form.secret("passcode");
    let Posted { session, headers, .. } = posted;
    match state.service.portal_complete(&session, passcode, &caller(ip, &headers)).await {
        Ok(SignIn::SignedIn(id) | SignIn::Challenge(id) | SignIn::Call(id, _)) => {
            let mut response = entered(&id);
            set_cookie(&mut response, &format!("{CALL_CODE_COOKIE}=; Max-Age=0; {COOKIE_FLAGS}"));
            response
        }
        Ok(SignIn::Again(message)) => session_page(&state, &session, Notice::info(sentence(&message))).await,
        Ok(SignIn::Refused(message)) => {
            let mut response = refused(&state, &headers, &message, session.username().to_owned(), false);
            set_cookie(&mut response, &format!("{SESSION_COOKIE}=; Max-Age=0; {COOKIE_FLAGS}"));
            set_cookie(&mut response, &format!("{CALL_CODE_COOKIE}=; Max-Age=0; {COOKIE_FLAGS}"));
            response
        }
        Err(error) => failed(&error.to_string()),
    }
}

/// `POST /portal/sign-out`.
async fn sign_out(State(state): State<AppState>, ClientIp(ip): ClientIp, posted: Posted) -> Response {
    if let Err(error) = state.service.portal_sign_out(&posted.session, &caller(ip, &posted.headers)).await {
        return failed(&error.to_string());
    }
    let mut response = Redirect::to("/portal").into_response();
    set_cookie(&mut response, &format!("{SESSION_COOKIE}=; Max-Age=0; {COOKIE_FLAGS}"));
    response
}

/// On to the portal's first page, in the session `id`.
fn entered(id: &SessionId) -> Response {
    let mut response = Redirect::to("/portal").into_response();
    set_cookie(&mut response, &format!("{SESSION_COOKIE}={}; {COOKIE_FLAGS}", id.expose()));
    response
}

/// The sign-in form again, saying why it was refused (401).
fn refused(state: &AppState, headers: &HeaderMap, message: &str, username: String, open: bool) -> Response {
    let mut response = sign_in_page(state, headers, Notice::error(sentence(message)), username, open);
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
}

/// A form posted in a live session, with its origin and its token checked (see
/// [`checked_session`]); anything else is answered before the handler runs.
struct Posted {
    session: PortalSession,
    form: Form,
    headers: HeaderMap,
}

impl axum::extract::FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let headers = request.headers().clone();
        let FormPairs(pairs) =
            FormPairs::from_request(request, state).await.map_err(IntoResponse::into_response)?;
        let session = checked_session(state, &headers, &pairs).await?;
        Ok(Self { session, form: Form::from(pairs), headers })
    }
}

/// The portal's caller: the browser's address and `User-Agent`.
fn caller(ip: Option<std::net::IpAddr>, headers: &HeaderMap) -> Caller<'_> {
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    Caller {
        ip,
        user_agent,
        application: None,
        door: Door::Portal { registration_code: None, first_code_by_sms: false },
    }
}

/// The session a form was posted in, after the origin and the form's token are checked.
async fn checked_session(
    state: &AppState,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<PortalSession, Response> {
    if let Some(refused) = refuse_foreign(state, headers) {
        return Err(refused);
    }
    let Some(session) = session_of(state, headers).await? else {
        let notice = Notice::error("Your session ended. Sign in again.");
        let mut response = sign_in_page(state, headers, notice, String::new(), false);
        set_cookie(&mut response, &format!("{SESSION_COOKIE}=; Max-Age=0; {COOKIE_FLAGS}"));
        return Err(response);
    };
    let token = pairs.iter().find(|(name, _)| name == "form_token").map(|(_, value)| value.as_str());
    if !token.is_some_and(|token| session.accepts_form_token(token)) {
        return Err(forbidden("This form is not from your session. Go back to the portal and try again."));
    }
    Ok(session)
}

/// The live session the request's cookie names.
async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Option<PortalSession>, Response> {
    let Some(id) = cookie(headers, SESSION_COOKIE).and_then(|value| SessionId::parse(&value)) else {
        return Ok(None);
    };
    state.service.portal_session(id).await.map_err(|error| failed(&error.to_string()))
}

/// The frame of a signed-in session's pages.
fn chrome(state: &AppState, session: &PortalSession) -> Chrome {
    Chrome {
        service: state.service.push().settings().service_name.clone(),
        username: Some(session.username().to_owned()),
        form_token: session.form_token(),
    }
}

/// The code a voice token's call waits for, as its cookie holds it.
struct ShownCode {
    code: String,
    expires_at: i64,
    transaction_id: String,
}

impl ShownCode {
    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.splitn(3, '.');
        let code = parts.next().filter(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))?;
        let expires_at = parts.next()?.parse().ok()?;
        Some(Self { code: code.to_owned(), expires_at, transaction_id: parts.next()?.to_owned() })
    }

    /// Whether it is the code of the call `session` waits for, and still works.
    fn is_for(&self, session: &PortalSession) -> bool {
        session.transaction_id() == Some(self.transaction_id.as_str())
            && self.expires_at > crate::clock::now_i64()
    }
}

/// The page for a live session: what the challenge asks, or the user's devices.
async fn session_page(state: &AppState, session: &PortalSession, notice: Option<Notice>) -> Response {
    session_page_showing(state, session, notice, None).await
}

/// [`session_page`], showing a voice token's code while its call is awaited.
async fn session_page_showing(
    state: &AppState,
    session: &PortalSession,
    notice: Option<Notice>,
    shown: Option<ShownCode>,
) -> Response {
    let chrome = chrome(state, session);
    if session.stage().is_challenge() {
        let prompt = session.prompt().unwrap_or_default();
        let page = ChallengePage {
            chrome: Chrome { username: None, ..chrome },
            notice,
            awaiting_code: session.stage() == SessionStage::AwaitingCode,
            prompt: sentence(prompt),
            number: number_in(prompt).filter(|_| shown.is_none()),
            transaction_id: session.transaction_id().unwrap_or_default().to_owned(),
            display_code: shown.as_ref().map(|s| s.code.clone()),
            expires_at: shown.map_or(0, |s| s.expires_at),
        };
        return render(&page, StatusCode::OK);
    }
    match state.service.portal_overview(session).await {
        Ok(PortalOverview { devices, sign_ins, delivery }) => {
            let page = HomePage {
                chrome,
                notice,
                devices: devices.iter().map(device_row).collect(),
                sign_ins: sign_ins.iter().map(sign_in_row).collect(),
                sms_chosen: delivery.chosen == Some(CodeChoice::TextMessage),
                delivery,
                temporary: state.service.portal().temporary_passcodes,
            };
            render(&page, StatusCode::OK)
        }
        Err(error) => failed(&error.to_string()),
    }
}

/// The sign-in form, with a fresh form token in its cookie.
fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    notice: Option<Notice>,
    username: String,
    registration_open: bool,
) -> Response {
    sign_in_page_with_code(state, headers, notice, username, registration_open, None)
}

/// The sign-in form, its registration code field filled in with `prefilled` when given.
fn sign_in_page_with_code(
    state: &AppState,
    headers: &HeaderMap,
    notice: Option<Notice>,
    username: String,
    registration_open: bool,
    prefilled: Option<String>,
) -> Response {
    let token = cookie(headers, SIGN_IN_COOKIE)
        .filter(|value| SessionId::parse(value).is_some())
        .or_else(|| crate::keys::new_key("").ok().map(|key| key.expose().to_owned()));
    let Some(token) = token else { return failed("no randomness for a form token") };
    let page = SignInPage {
        chrome: Chrome {
            service: state.service.push().settings().service_name.clone(),
            username: None,
            form_token: token.clone(),
        },
        notice,
        username,
        registration_codes: state.service.portal().first_enrolment.allows_registration_codes(),
        registration_open: registration_open || prefilled.is_some(),
        registration_code: prefilled.unwrap_or_default(),
        first_code_by_sms: state.service.portal().first_enrolment.allows_codes_by_sms(),
    };
    let mut response = render(&page, StatusCode::OK);
    set_cookie(&mut response, &format!("{SIGN_IN_COOKIE}={token}; {COOKIE_FLAGS}"));
    response
}

/// A form from another site: refused. Browsers say where a request comes from in
/// `Sec-Fetch-Site` and `Origin`; at least one must be there, and each that is must name this
/// portal.
fn refuse_foreign(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    if !state.service.portal().enabled {
        return Some(disabled());
    }
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = text(header::ORIGIN);
    let site_ok = site.is_none_or(|site| matches!(site, "same-origin" | "none"));
    let origin_ok = origin.is_none_or(|origin| {
        let origin = origin.to_ascii_lowercase();
        origin == state.service.portal().origin
            || text(header::HOST).is_some_and(|host| {
                let host = host.to_ascii_lowercase();
                origin == format!("https://{host}") || origin == format!("http://{host}")
            })
    });
    let said = site.is_some() || origin.is_some();
    (!(said && site_ok && origin_ok))
        .then(|| forbidden("This form was sent from another site, and was refused."))
}

fn device_row(device: &DeviceView) -> DeviceRow {
    let title = device.kind.title();
    let (detail, kind_class, kind_badge) = match device.kind {
        TokenKind::Push => ("approvals and codes", "push", "APP"),
        TokenKind::Totp => ("time-based codes", "totp", "TOTP"),
        TokenKind::Hotp => ("counter-based codes", "hotp", "HOTP"),
        TokenKind::Sms => ("codes sent by SMS", "sms", "SMS"),
        TokenKind::Email => ("codes sent by email", "email", "MAIL"),
        TokenKind::Temp => ("from the help desk", "temp", "TEMP"),
        TokenKind::Voice => ("a call in which you key the code on screen", "voice", "CALL"),
    };
    let (name, detail) = match &device.name {
        Some(name) => (name.clone(), format!("{title}: {detail}")),
        None => (title.to_owned(), sentence(detail).trim_end_matches('.').to_owned()),
    };
    DeviceRow {
        serial: device.serial.clone(),
        name,
        detail,
        kind_class,
        kind_badge,
        destination: device.destination.clone(),
        added: when(device.added_at),
        last_used: device.last_used_at.map_or_else(|| "never".to_owned(), when),
        enabled: device.enabled,
        pending: device.pending_until.is_some(),
        pending_until: device.pending_until.map(when),
        replaces: device.replaces.clone(),
        can_continue: device.pending_until.is_some() && device.kind == TokenKind::Totp,
        replaceable: device.pending_until.is_none()
            && matches!(device.kind, TokenKind::Push | TokenKind::Totp),
    }
}

fn sign_in_row(sign_in: &SignInView) -> SignInRow {
    let (result, result_class) = match sign_in.result {
        AuditResult::Accept => ("signed in", "accept"),
        _ => ("refused", "reject"),
    };
    let via = match sign_in.via.as_str() {
        "portal" => "this portal".to_owned(),
        "validate" => "a login page".to_owned(),
        other => other.strip_prefix("app:").unwrap_or(other).to_owned(),
    };
    SignInRow {
        when: when_ms(sign_in.at_ms),
        result,
        result_class,
        from: sign_in.client_ip.clone().unwrap_or_else(|| "unknown".into()),
        via,
    }
}

/// Unix seconds as `5 Dec 2026, 14:03 UTC`.
fn when(unix: i64) -> String {
    crate::clock::readable_utc(unix)
}

fn when_ms(unix_ms: i64) -> String {
    when(unix_ms.div_euclid(1000))
}

/// The number a number-matching prompt names ("… it will ask for the number 42").
fn number_in(prompt: &str) -> Option<String> {
    let digits: String = prompt.rsplit(' ').next()?.chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty() && prompt.contains("the number")).then_some(digits)
}

/// A form's fields by name; secrets are moved out without copies.
struct Form(Vec<(String, String)>);

impl From<Vec<(String, String)>> for Form {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }
}

impl Form {
    fn take(&mut self, name: &str) -> Option<String> {
        let index = self.0.iter().position(|(field, _)| field == name)?;
        Some(self.0.swap_remove(index).1)
    }

    /// A non-empty secret field.
    fn secret(&mut self, name: &str) -> Option<SecretString> {
        self.take(name).map(SecretString::new).filter(|secret| !secret.expose().trim().is_empty())
    }
}

/// The value of the cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn render(page: &impl Template, status: StatusCode) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = asset("text/html; charset=utf-8", "");
            *response.body_mut() = axum::body::Body::from(html);
            *response.status_mut() = status;
            response
        }
        Err(error) => failed(&error.to_string()),
    }
}

/// A page or file with the login page's headers, except that the referrer goes to the portal
/// itself: with none, browsers send `Origin: null` with the portal's own forms.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let page = Bytes::from_static(body.as_bytes()).into_response();
    let mut response = super::login::with_page_headers(page, content_type, CSP, "camera=(), microphone=()");
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

fn disabled() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        "The self-service portal is not enabled on this server (set [portal] enabled = true, or a public_url).",
    )
}

fn forbidden(text: &str) -> Response {
    plain(StatusCode::FORBIDDEN, text)
}

fn failed(detail: &str) -> Response {
    tracing::error!(detail, "portal page failed");
    plain(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on the server. Try again in a moment.")
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut response = (status, text.to_owned()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; __Host-tessera-portal=abc"));
        headers.append(header::COOKIE, HeaderValue::from_static("__Host-tessera-portalx=no"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, SIGN_IN_COOKIE), None);
    }

    #[test]
    fn messages_read_as_sentences_and_numbers_are_found() {
        assert_eq!(sentence("authentication failed"), "Authentication failed.");
        assert_eq!(sentence(""), "");
        let prompt = "approve the login on your device; it will ask for the number 42";
        assert_eq!(number_in(prompt).as_deref(), Some("42"));
        assert_eq!(number_in("approve the login on your device"), None);
        assert_eq!(when(0), "1 Jan 1970, 00:00 UTC");
    }
}
