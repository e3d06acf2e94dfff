//! The browser login page (`/login`): username and password, then a passcode, a push approval, or
//! One Swipe read by the webcam. The page, its script and style are built into the server; the One
//! Swipe decoder (Tessera's Rust QR decoder compiled to WebAssembly by `scripts/build-web.sh`) is
//! loaded at start-up from the web directory, and without it the page still offers the other two.
//! Everything is served under a strict Content Security Policy: same-origin scripts only, no
//! inline code, WebAssembly allowed, no framing.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

const PAGE: &str = include_str!("../../web/login.html");
const SCRIPT: &str = include_str!("../../web/login.js");
const STYLE: &str = include_str!("../../web/login.css");
/// The files `scripts/build-web.sh` puts in the web directory.
const DECODER_SCRIPT: &str = "tessera_wasm.js";
const DECODER_MODULE: &str = "tessera_wasm_bg.wasm";
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                   connect-src 'self'; media-src 'self' blob: mediastream:; img-src 'self' data:; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The One Swipe decoder's files, read once at start-up.
pub struct WebDecoder {
    script: Bytes,
    module: Bytes,
}

impl WebDecoder {
    /// The decoder in `dir`, if both of its files are there.
    pub fn load(dir: &Path) -> Option<Arc<Self>> {
        let script = std::fs::read(dir.join(DECODER_SCRIPT)).ok()?.into();
        let module = std::fs::read(dir.join(DECODER_MODULE)).ok()?.into();
        Some(Arc::new(Self { script, module }))
    }
}

/// The page's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/login",
            get(|| async { asset("text/html; charset=utf-8", Bytes::from_static(PAGE.as_bytes())) }),
        )
        .route(
            "/login/login.js",
            get(|| async { asset("text/javascript; charset=utf-8", Bytes::from_static(SCRIPT.as_bytes())) }),
        )
        .route(
            "/login/login.css",
            get(|| async { asset("text/css; charset=utf-8", Bytes::from_static(STYLE.as_bytes())) }),
        )
        .route(&format!("/login/decoder/{DECODER_SCRIPT}"), get(decoder_script))
        .route(&format!("/login/decoder/{DECODER_MODULE}"), get(decoder_module))
}

async fn decoder_script(State(state): State<AppState>) -> Response {
    match &state.web_decoder {
        Some(decoder) => asset("text/javascript; charset=utf-8", decoder.script.clone()),
        None => missing_decoder(),
    }
}

async fn decoder_module(State(state): State<AppState>) -> Response {
    match &state.web_decoder {
        Some(decoder) => asset("application/wasm", decoder.module.clone()),
        None => missing_decoder(),
    }
}

fn missing_decoder() -> Response {
    (StatusCode::NOT_FOUND, "the One Swipe web decoder is not installed on this server").into_response()
}

fn asset(content_type: &'static str, body: Bytes) -> Response {
    with_page_headers(body.into_response(), content_type, CSP, "camera=(self), microphone=()")
}

/// `response` as a page or a page's file: its type, the Content Security Policy `csp`, the
/// `permissions` policy, no sniffing, no referrer, never cached (pages may show credentials).
pub(super) fn with_page_headers(
    mut response: Response,
    content_type: &'static str,
    csp: &'static str,
    permissions: &'static str,
) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("permissions-policy", HeaderValue::from_static(permissions));
    response
}
