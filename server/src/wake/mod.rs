//! Optional wake-ups through Firebase Cloud Messaging and the Apple Push Notification service.
//!
//! Tessera's own channel carries every challenge; a wake-up only tells a sleeping phone app to
//! connect and fetch it. So a wake-up names nothing about the login (no user, address or
//! application): Google and Apple learn only that a device was woken, and an opaque
//! transaction id. A failed wake-up never fails the login: the device still gets the challenge
//! when it next connects.

mod apns;
mod fcm;

use std::time::Duration;

use tessera_core::push::WakeAddress;

use crate::config::PushPolicy;

/// Attempts per wake-up when the push service is busy or unreachable (429, 5xx, network).
const ATTEMPTS: u32 = 3;

/// What to wake a device for.
pub struct WakeUp<'a> {
    /// The push token woken.
    pub serial: &'a str,
    /// When the challenge expires (Unix seconds): the wake-up is worthless afterwards.
    pub expires_at: u64,
}

/// How a wake-up went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WakeOutcome {
    /// The push service accepted it.
    Sent,
    /// The push service says the device token is no longer valid (app uninstalled, token
    /// rotated): the server forgets the address.
    Unregistered,
    /// This server has no credentials for that push service.
    NotConfigured,
    /// It failed; the reason is safe to log (no credentials or tokens).
    Failed(String),
}

impl WakeOutcome {
    /// The outcome as a metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Unregistered => "unregistered",
            Self::NotConfigured => "not_configured",
            Self::Failed(_) => "failed",
        }
    }
}

/// A wake-up service's configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WakeError {
    /// A key or account file could not be read.
    #[error("could not read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A key or account file is not what it should be.
    #[error("{0}")]
    Invalid(String),
    /// The HTTP client could not be built.
    #[error("HTTP client for wake-ups: {0}")]
    Client(String),
}

/// Sends wake-ups through the push services this server has credentials for.
pub struct Waker {
    fcm: Option<fcm::Fcm>,
    apns: Option<apns::Apns>,
}

impl Waker {
    /// Loads the configured credentials. `http` is the server's outbound client (its trust
    /// store includes `push.ca_file`); APNs gets its own HTTP/2-only client built from `tls`.
    pub fn new(
        policy: &PushPolicy,
        http: &reqwest::Client,
        tls: impl Fn() -> reqwest::ClientBuilder,
    ) -> Result<Self, WakeError> {
        let fcm = policy.fcm.as_ref().map(|config| fcm::Fcm::new(config, http.clone())).transpose()?;
        let apns = policy
            .apns
            .as_ref()
            .map(|config| {
                let http2 =
                    tls().http2_prior_knowledge().build().map_err(|e| WakeError::Client(e.to_string()))?;
                apns::Apns::new(config, http2)
            })
            .transpose()?;
        Ok(Self { fcm, apns })
    }

    /// True when at least one push service is configured.
    pub fn is_enabled(&self) -> bool {
        self.fcm.is_some() || self.apns.is_some()
    }

    /// Wakes one device, retrying a busy or unreachable service with backoff until the
    /// challenge would expire.
    pub async fn wake(&self, address: &WakeAddress, wake: &WakeUp<'_>) -> WakeOutcome {
        let mut delay = Duration::from_millis(500);
        let mut outcome = WakeOutcome::NotConfigured;
        for attempt in 1..=ATTEMPTS {
            let (result, retry) = match address {
                WakeAddress::Fcm(token) => match &self.fcm {
                    Some(fcm) => fcm.send(token, wake).await,
                    None => return WakeOutcome::NotConfigured,
                },
                WakeAddress::Apns(token) => match &self.apns {
                    Some(apns) => apns.send(token, wake).await,
                    None => return WakeOutcome::NotConfigured,
                },
            };
            outcome = result;
            let before_expiry = tessera_core::otp::unix_now() + delay.as_secs() < wake.expires_at;
            if !retry || attempt == ATTEMPTS || !before_expiry {
                break;
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        outcome
    }
}

/// Seconds a wake-up stays worth delivering.
fn time_to_live(wake: &WakeUp<'_>) -> u64 {
    wake.expires_at.saturating_sub(tessera_core::otp::unix_now())
}

/// Whether an HTTP status is worth retrying.
fn retryable(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn read_file(path: &std::path::Path) -> Result<tessera_core::secret::SecretString, WakeError> {
    std::fs::read_to_string(path)
        .map(tessera_core::secret::SecretString::new)
        .map_err(|source| WakeError::Read { path: path.display().to_string(), source })
}

/// A factory of outbound HTTPS clients (webhook, FCM, APNs, SMS gateways) that trust the platform's CAs plus
/// those in `ca_file`, with a 10 s timeout, and follow no redirect (none of these services sends
/// one, and one to plain HTTP would carry an alert or an access token in the clear).
pub fn outbound_client(
    ca_file: Option<&std::path::Path>,
) -> Result<impl Fn() -> reqwest::ClientBuilder + Clone, String> {
    let extra = match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("push.ca_file {}: {e}", path.display()))?;
            reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("push.ca_file {}: not PEM certificates: {e}", path.display()))?
        }
        None => Vec::new(),
    };
    Ok(move || {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_merge(extra.clone())
    })
}

/// TLS client settings that trust the system's CA roots and the certificates in `extra_ca` (PEM),
/// for connections reqwest does not make (SMPP, LDAP); errors name the file.
pub fn tls_client_config(extra_ca: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let shown = extra_ca.display();
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let extra: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(extra_ca)
        .and_then(Iterator::collect)
        .map_err(|e| format!("{shown}: {e}"))?;
    if extra.is_empty() {
        return Err(format!("{shown} holds no PEM certificate"));
    }
    for certificate in extra {
        roots.add(certificate).map_err(|e| format!("{shown}: {e}"))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
