//! The library's own async runtime: the push channels and the requests to the server run on it,
//! whatever the app's threads are. It is made at first use, after installing the TLS crypto
//! provider (graviola: pure Rust, so the library builds for phones without a C cross-compiler).

use std::future::Future;
use std::sync::{Once, OnceLock};

use tokio::runtime::Runtime;

use crate::TesseraError;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
static TLS: Once = Once::new();

/// Installs graviola as the process's TLS crypto provider, once. Every path that may make an
/// HTTP client (a vault's push devices are made with one) runs this first.
pub(crate) fn install_tls() {
    TLS.call_once(|| {
        let _ = rustls::crypto::CryptoProvider::install_default(rustls_graviola::default_provider());
    });
}

/// The runtime, made on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, TesseraError> {
    install_tls();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("tessera")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))
        })
        .as_ref()
        .map_err(TesseraError::internal)
}

/// Runs `task` on the runtime and waits for it, from whichever executor awaits this (uniffi's
/// foreign futures included).
pub(crate) async fn run<T: Send + 'static>(
    task: impl Future<Output = Result<T, TesseraError>> + Send + 'static,
) -> Result<T, TesseraError> {
    runtime()?.spawn(task).await.map_err(TesseraError::internal)?
}
