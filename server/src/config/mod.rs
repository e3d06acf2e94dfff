//! Server configuration: defaults, overridden by a TOML file, overridden by environment variables
//! and command-line flags (clap reads both, flags first).

mod delivery;
mod directory;
mod portal;
mod radius;
mod voice;

pub use delivery::{
    DaycodeClock, DeliverySettings, EmailSettings, EmailTls, HttpGateway, HttpMethod, SendLimits,
    SmppAddress, SmppGateway, SmsGateway, TWILIO_STATUS_PATH, Templates, TwilioGateway, TwilioSender,
};
pub use directory::{DirectoryAttributes, DirectorySettings, GroupKinds, WhenUnreachable};
pub use portal::{FirstEnrolment, NoticeChannel, PortalSettings, SecondFactor, TemporaryPasscodePolicy};
pub use radius::{RadiusClient, RadiusMode, RadiusSettings};
pub use voice::{DEFAULT_PROMPT_WAV, SipSettings, TWILIO_VOICE_PATH, TwilioVoice, VoiceSettings};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;
use tessera_core::otp::TotpWindow;
use tessera_core::verifier::Policy;

/// Longest a request may take before it is answered with 503.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Where the server listens when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8480";

/// Flags and environment variables shared by `serve` and `admin`.
#[derive(Clone, Default, Args)]
pub struct ConfigArgs {
    /// TOML configuration file
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8480]
    #[arg(long, global = true, env = "TESSERA_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database, the server key and the first admin key
    /// [default: the platform data directory's tessera/server]
    #[arg(long, global = true, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER:PASS@HOST/DB [default: SQLite in the data directory]
    #[arg(long, global = true, env = "TESSERA_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// TOTP steps accepted either side of the current one [default: 1]
    #[arg(long, global = true, env = "TESSERA_TOTP_WINDOW", value_name = "STEPS")]
    pub totp_window: Option<u32>,
    /// HOTP counters accepted beyond the expected one [default: 10]
    #[arg(long, global = true, env = "TESSERA_HOTP_LOOK_AHEAD", value_name = "COUNTERS")]
    pub hotp_look_ahead: Option<u32>,
    /// Consecutive failures that lock a token [default: 10]
    #[arg(long, global = true, env = "TESSERA_MAX_FAILURES", value_name = "N")]
    pub max_failures: Option<u32>,
    /// Seconds the first lock lasts, doubling with each further failure; 0 = until an admin unlocks [default: 900]
    #[arg(long, global = true, env = "TESSERA_LOCKOUT_RESET_SECS", value_name = "SECONDS")]
    pub lockout_reset_secs: Option<u64>,
    /// The login page's web files (the One Swipe decoder) [default: `web` beside the executable]
    #[arg(long, global = true, env = "TESSERA_WEB_DIR", value_name = "DIR")]
    pub web_dir: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS
    #[arg(long, global = true, env = "TESSERA_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, global = true, env = "TESSERA_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The TOML file's shape; every field is optional.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    web_dir: Option<PathBuf>,
    issuer: Option<String>,
    log_format: Option<LogFormat>,
    trust_forwarded_for: Option<bool>,
    audit_retention_days: Option<u32>,
    #[serde(default)]
    policy: FilePolicy,
    require_application_key: Option<bool>,
    #[serde(default)]
    rate_limit: FileRateLimit,
    #[serde(default)]
    limits: FileLimits,
    tls: Option<TlsConfig>,
    #[serde(default)]
    push: FilePush,
    #[serde(default)]
    delivery: delivery::FileDelivery,
    #[serde(default)]
    directory: Vec<directory::FileDirectory>,
    #[serde(default)]
    portal: portal::FilePortal,
    #[serde(default)]
    radius: radius::FileRadius,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePush {
    public_url: Option<String>,
    service_name: Option<String>,
    expiry_secs: Option<u64>,
    number_matching: Option<tessera_core::push::NumberMatching>,
    max_pending: Option<u32>,
    max_per_window: Option<u32>,
    window_secs: Option<u64>,
    mute_secs: Option<u64>,
    enrollment_ttl_secs: Option<u64>,
    oneswipe_clock_skew_secs: Option<u64>,
    webhook_url: Option<String>,
    ca_file: Option<PathBuf>,
    fcm: Option<FcmConfig>,
    apns: Option<ApnsConfig>,
}

/// Firebase Cloud Messaging (HTTP v1 API) wake-ups for Android devices.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    /// The Firebase service account's JSON key file (its `project_id`, `client_email`,
    /// `private_key` and `token_uri` are used).
    pub service_account_file: PathBuf,
    /// Base URL of the FCM API.
    #[serde(default = "default_fcm_endpoint")]
    pub endpoint: String,
}

/// Apple Push Notification service wake-ups for iOS devices, with token-based authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    /// The `.p8` signing key from the Apple developer account.
    pub key_file: PathBuf,
    /// The key's 10-character id.
    pub key_id: String,
    /// The developer team's 10-character id.
    pub team_id: String,
    /// The app's bundle id (`apns-topic`).
    pub topic: String,
    /// Base URL of APNs: `https://api.push.apple.com`, or `https://api.sandbox.push.apple.com`
    /// for development builds.
    #[serde(default = "default_apns_endpoint")]
    pub endpoint: String,
}

fn default_fcm_endpoint() -> String {
    "https://fcm.googleapis.com".into()
}

fn default_apns_endpoint() -> String {
    "https://api.push.apple.com".into()
}

/// Push approval settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPolicy {
    /// The server's URL as devices reach it (written into enrollment links).
    pub public_url: String,
    /// The application name shown on devices.
    pub service_name: String,
    /// Seconds a push challenge stays answerable (at most 600).
    pub expiry_secs: u64,
    /// How devices confirm the login screen's number.
    pub number_matching: tessera_core::push::NumberMatching,
    /// Unanswered pushes a user may have at once.
    pub max_pending: u32,
    /// Pushes a user may receive within `window_secs` since their last success.
    pub max_per_window: u32,
    /// The fatigue window.
    pub window_secs: u64,
    /// How long a "not me" answer mutes pushes for the user.
    pub mute_secs: u64,
    /// How long an enrollment link stays usable.
    pub enrollment_ttl_secs: u64,
    /// How far ahead of the server's clock a device may date a One Swipe code (the skew widens
    /// the start of a code's validity, never its end).
    pub oneswipe_clock_skew_secs: u64,
    /// Where "not me" alerts are POSTed, if anywhere.
    pub webhook_url: Option<String>,
    /// Extra CA certificates (PEM) trusted for outbound HTTPS: the webhook, FCM and APNs.
    pub ca_file: Option<PathBuf>,
    /// FCM wake-ups, when configured.
    pub fcm: Option<FcmConfig>,
    /// APNs wake-ups, when configured.
    pub apns: Option<ApnsConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePolicy {
    totp_window: Option<u32>,
    hotp_look_ahead: Option<u32>,
    max_failures: Option<u32>,
    /// 0 keeps locks until an administrator unlocks.
    lockout_reset_secs: Option<u64>,
    resync_window: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRateLimit {
    per_ip_per_minute: Option<u32>,
    per_user_per_minute: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_in_flight: Option<usize>,
    max_long_polls: Option<usize>,
    max_device_streams: Option<usize>,
    streams_per_device: Option<usize>,
    stream_max_secs: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    body_read_timeout_secs: Option<u64>,
}

/// How much of the server one kind of work may hold, and for how long. Long-polls and device
/// streams have their own, smaller pools, and request bodies are read before a request takes a
/// place in any pool, so slow or parked connections cannot starve validations and health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests served at once (validations, One Swipe, answers, admin); more get 503.
    pub max_in_flight: usize,
    /// Long-polls (`/push/pending`, `/transactions/{id}`) waiting at once; more get 503.
    pub max_long_polls: usize,
    /// Device streams (`/push/stream`) open at once; more get 503. Streams hold no place of the
    /// other pools, so this is sized for the devices a server keeps connected (about 31 KiB each).
    pub max_device_streams: usize,
    /// Streams one push device may hold; a newer one closes its oldest.
    pub streams_per_device: usize,
    /// A device stream ends after this many seconds and the device authenticates again.
    pub stream_max_secs: u64,
    /// Time allowed to send a request's headers.
    pub header_read_timeout_secs: u64,
    /// Time allowed to send a request's body, in all.
    pub body_read_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            max_long_polls: 256,
            max_device_streams: 16_384,
            streams_per_device: 4,
            stream_max_secs: 3600,
            header_read_timeout_secs: 5,
            body_read_timeout_secs: 10,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// TLS certificate chain and private key, both PEM.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
}

/// Validation requests allowed per minute, per client address and per user name (0 = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per client IP address.
    pub per_ip_per_minute: u32,
    /// Per user name.
    pub per_user_per_minute: u32,
}

/// The effective configuration. Its `Debug` leaves the database URL out: it may hold a password.
#[derive(Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Where the login page's One Swipe decoder is.
    pub web_dir: PathBuf,
    /// Issuer written into enrollment URIs.
    pub issuer: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Use the address the proxy appended to `X-Forwarded-For` as the client IP (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Audit records older than this many days are deleted (0 keeps them forever).
    pub audit_retention_days: u32,
    /// Verification policy.
    pub policy: Policy,
    /// Rate limits on validation.
    pub rate_limits: RateLimits,
    /// Concurrency pools and read timeouts.
    pub limits: Limits,
    /// Refuse validations that present no application key.
    pub require_application_key: bool,
    /// TLS, when configured.
    pub tls: Option<TlsConfig>,
    /// Push approval.
    pub push: PushPolicy,
    /// Delivered passcodes (SMS, email).
    pub delivery: DeliverySettings,
    /// Company directories whose users log in with their directory password, tried in order.
    pub directories: Vec<DirectorySettings>,
    /// The self-service portal.
    pub portal: PortalSettings,
    /// The RADIUS listener, when `[radius] listen` is set.
    pub radius: Option<RadiusSettings>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &if self.is_sqlite() { "sqlite" } else { "postgres ([REDACTED])" })
            .field("issuer", &self.issuer)
            .field("policy", &self.policy)
            .field("rate_limits", &self.rate_limits)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// `web` beside the server executable, where `scripts/build-web.sh` puts the decoder.
fn default_web_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("web")))
        .unwrap_or_else(|| PathBuf::from("web"))
}

/// A configuration problem, reported before the server starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid configuration file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No data directory can be determined.
    #[error("no home directory for the default data directory; pass --data-dir")]
    NoDataDir,
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    OutOfRange(String),
}

impl Config {
    /// Builds the effective configuration from flags/environment and the optional file.
    pub fn load(args: &ConfigArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = match args.data_dir.clone().or(file.data_dir) {
            Some(dir) => dir,
            None => directories::ProjectDirs::from("dev", "Tessera", "tessera")
                .map(|dirs| dirs.data_dir().join("server"))
                .ok_or(ConfigError::NoDataDir)?,
        };
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tessera.db").display()));
        let defaults = Policy::default();
        let totp_window = args.totp_window.or(file.policy.totp_window).unwrap_or(defaults.totp_window.behind);
        let policy = Policy {
            totp_window: TotpWindow { behind: totp_window, ahead: totp_window },
            hotp_look_ahead: args
                .hotp_look_ahead
                .or(file.policy.hotp_look_ahead)
                .unwrap_or(defaults.hotp_look_ahead),
            max_failures: args.max_failures.or(file.policy.max_failures).unwrap_or(defaults.max_failures),
            lockout_reset_secs: match args.lockout_reset_secs.or(file.policy.lockout_reset_secs) {
                Some(0) => None,
                Some(secs) => Some(secs),
                None => defaults.lockout_reset_secs,
            },
            resync_window: file.policy.resync_window.unwrap_or(defaults.resync_window),
        };
        check_policy(&policy)?;
        let default_listen: SocketAddr =
            DEFAULT_LISTEN.parse().map_err(|_| ConfigError::OutOfRange("default listen address".into()))?;
        let listen = args.listen.or(file.listen).unwrap_or(default_listen);
        let tls = match (args.tls_cert.clone(), args.tls_key.clone()) {
            (Some(cert), Some(key)) => Some(TlsConfig { cert, key }),
            _ => file.tls,
        };
        let issuer = file.issuer.unwrap_or_else(|| "Tessera".into());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url_configured = file.push.public_url.is_some();
        let push = PushPolicy {
            public_url: file
                .push
                .public_url
                .map(trimmed_url)
                .unwrap_or_else(|| format!("{scheme}://{listen}")),
            service_name: file.push.service_name.unwrap_or_else(|| issuer.clone()),
            expiry_secs: file.push.expiry_secs.unwrap_or(120),
            number_matching: file.push.number_matching.unwrap_or_default(),
            max_pending: file.push.max_pending.unwrap_or(3),
            max_per_window: file.push.max_per_window.unwrap_or(10),
            window_secs: file.push.window_secs.unwrap_or(15 * 60),
            mute_secs: file.push.mute_secs.unwrap_or(20 * 60),
            enrollment_ttl_secs: file.push.enrollment_ttl_secs.unwrap_or(10 * 60),
            oneswipe_clock_skew_secs: file
                .push
                .oneswipe_clock_skew_secs
                .unwrap_or(tessera_core::oneswipe::DEFAULT_CLOCK_SKEW_SECS),
            webhook_url: file.push.webhook_url,
            ca_file: file.push.ca_file,
            fcm: file.push.fcm.map(|fcm| FcmConfig { endpoint: trimmed_url(fcm.endpoint), ..fcm }),
            apns: file.push.apns.map(|apns| ApnsConfig { endpoint: trimmed_url(apns.endpoint), ..apns }),
        };
        check_push(&push)?;
        let delivery = file.delivery.settings(&push.service_name, &push.public_url)?;
        let limits = limits_of(&file.limits)?;
        let directories = directory::directories(file.directory)?;
        let portal = file.portal.settings(&push.public_url, url_configured)?;
        let radius = file.radius.settings()?;
        Ok(Self {
            listen,
            web_dir: args.web_dir.clone().or(file.web_dir).unwrap_or_else(default_web_dir),
            data_dir,
            database_url,
            issuer,
            log_format: file.log_format.unwrap_or_default(),
            trust_forwarded_for: file.trust_forwarded_for.unwrap_or(false),
            audit_retention_days: file.audit_retention_days.unwrap_or(365),
            policy,
            rate_limits: RateLimits {
                per_ip_per_minute: file.rate_limit.per_ip_per_minute.unwrap_or(600),
                per_user_per_minute: file.rate_limit.per_user_per_minute.unwrap_or(30),
            },
            limits,
            require_application_key: file.require_application_key.unwrap_or(false),
            tls,
            push,
            delivery,
            directories,
            portal,
            radius,
        })
    }

    /// True when the database is SQLite.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    toml::from_str(&text).map_err(|e| ConfigError::Invalid { path: path.into(), message: e.to_string() })
}

fn check_push(push: &PushPolicy) -> Result<(), ConfigError> {
    if !(10..=tessera_core::push::MAX_CHALLENGE_LIFETIME_SECS).contains(&push.expiry_secs) {
        return Err(ConfigError::OutOfRange(
            "push.expiry_secs must be 10 to 600 (NIST SP 800-63B: 10 minutes at most)".into(),
        ));
    }
    if push.max_pending == 0 || push.max_per_window == 0 {
        return Err(ConfigError::OutOfRange(
            "push.max_pending and push.max_per_window must be at least 1".into(),
        ));
    }
    if !(push.public_url.starts_with("http://") || push.public_url.starts_with("https://")) {
        return Err(ConfigError::OutOfRange("push.public_url must start with http:// or https://".into()));
    }
    if push.webhook_url.as_deref().is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
        return Err(ConfigError::OutOfRange("push.webhook_url must start with http:// or https://".into()));
    }
    if push.oneswipe_clock_skew_secs > 300 {
        return Err(ConfigError::OutOfRange("push.oneswipe_clock_skew_secs must be 0 to 300".into()));
    }
    if !(10..=86_400).contains(&push.enrollment_ttl_secs) {
        return Err(ConfigError::OutOfRange("push.enrollment_ttl_secs must be 10 to 86400".into()));
    }
    if push.fcm.as_ref().is_some_and(|fcm| !fcm.endpoint.starts_with("https://")) {
        return Err(ConfigError::OutOfRange("push.fcm.endpoint must start with https://".into()));
    }
    if let Some(apns) = &push.apns {
        if !apns.endpoint.starts_with("https://") {
            return Err(ConfigError::OutOfRange("push.apns.endpoint must start with https://".into()));
        }
        let apple_id = |id: &str| id.len() == 10 && id.chars().all(|c| c.is_ascii_alphanumeric());
        if !apple_id(&apns.key_id) || !apple_id(&apns.team_id) {
            return Err(ConfigError::OutOfRange(
                "push.apns.key_id and push.apns.team_id must be Apple's 10-character ids".into(),
            ));
        }
        if apns.topic.is_empty() || apns.topic.contains(char::is_whitespace) {
            return Err(ConfigError::OutOfRange("push.apns.topic must be the app's bundle id".into()));
        }
    }
    Ok(())
}

fn limits_of(file: &FileLimits) -> Result<Limits, ConfigError> {
    let default = Limits::default();
    let limits = Limits {
        max_in_flight: file.max_in_flight.unwrap_or(default.max_in_flight),
        max_long_polls: file.max_long_polls.unwrap_or(default.max_long_polls),
        max_device_streams: file.max_device_streams.unwrap_or(default.max_device_streams),
        streams_per_device: file.streams_per_device.unwrap_or(default.streams_per_device),
        stream_max_secs: file.stream_max_secs.unwrap_or(default.stream_max_secs),
        header_read_timeout_secs: file.header_read_timeout_secs.unwrap_or(default.header_read_timeout_secs),
        body_read_timeout_secs: file.body_read_timeout_secs.unwrap_or(default.body_read_timeout_secs),
    };
    let request_timeout = REQUEST_TIMEOUT.as_secs();
    if [limits.max_in_flight, limits.max_long_polls, limits.max_device_streams, limits.streams_per_device]
        .contains(&0)
    {
        return Err(ConfigError::OutOfRange(
            "limits.max_in_flight, max_long_polls, max_device_streams and streams_per_device must be at least 1"
                .into(),
        ));
    }
    if !(1..=86_400).contains(&limits.stream_max_secs) {
        return Err(ConfigError::OutOfRange("limits.stream_max_secs must be 1 to 86400".into()));
    }
    for (name, secs) in [
        ("header_read_timeout_secs", limits.header_read_timeout_secs),
        ("body_read_timeout_secs", limits.body_read_timeout_secs),
    ] {
        if !(1..request_timeout).contains(&secs) {
            return Err(ConfigError::OutOfRange(format!(
                "limits.{name} must be 1 to {} (under the {request_timeout} s request timeout)",
                request_timeout - 1
            )));
        }
    }
    Ok(limits)
}

fn trimmed_url(url: String) -> String {
    url.trim_end_matches('/').to_owned()
}

fn check_policy(policy: &Policy) -> Result<(), ConfigError> {
    if policy.totp_window.behind > 10 {
        return Err(ConfigError::OutOfRange("policy.totp_window is at most 10 steps".into()));
    }
    if policy.hotp_look_ahead > 100 {
        return Err(ConfigError::OutOfRange("policy.hotp_look_ahead is at most 100".into()));
    }
    if !(1..=100).contains(&policy.max_failures) {
        return Err(ConfigError::OutOfRange(
            "policy.max_failures must be 1 to 100 (NIST SP 800-63B allows at most 100)".into(),
        ));
    }
    if !(1..=10_000).contains(&policy.resync_window) {
        return Err(ConfigError::OutOfRange("policy.resync_window must be 1 to 10000".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile_dir();
        let path = dir.join("tessera.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nissuer = \"ACME\"\n[policy]\nmax_failures = 5\nlockout_reset_secs = 0\ntotp_window = 2\n",
        )
        .unwrap();
        let from_file = Config::load(&ConfigArgs {
            config: Some(path.clone()),
            data_dir: Some(dir.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(from_file.listen.port(), 9000);
        assert_eq!(from_file.issuer, "ACME");
        assert_eq!(from_file.policy.max_failures, 5);
        assert_eq!(from_file.policy.lockout_reset_secs, None);
        assert_eq!(from_file.policy.totp_window, TotpWindow { behind: 2, ahead: 2 });
        assert_eq!(from_file.policy.hotp_look_ahead, Policy::default().hotp_look_ahead);
        assert!(from_file.database_url.ends_with("tessera.db") && from_file.is_sqlite());

        let flagged = Config::load(&ConfigArgs {
            config: Some(path),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            data_dir: Some(dir.clone()),
            database_url: Some("postgres://x@localhost/y".into()),
            max_failures: Some(7),
            lockout_reset_secs: Some(60),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(flagged.listen.port(), 9100);
        assert_eq!(
            flagged.push.public_url, "http://127.0.0.1:9100",
            "links point at the listen address by default"
        );
        assert_eq!(flagged.push.expiry_secs, 120);
        assert_eq!((flagged.policy.max_failures, flagged.policy.lockout_reset_secs), (7, Some(60)));
        assert!(!flagged.is_sqlite());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_files_are_reported() {
        let dir = tempfile_dir();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "listne = \"x\"\n").unwrap();
        let error =
            Config::load(&ConfigArgs { config: Some(path.clone()), ..Default::default() }).unwrap_err();
        assert!(error.to_string().contains("unknown field `listne`"), "{error}");
        std::fs::write(&path, "[push]\nexpiry_secs = 601\n").unwrap();
        let error = Config::load(&ConfigArgs {
            config: Some(path.clone()),
            data_dir: Some(dir.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains("10 minutes at most"), "{error}");
        std::fs::write(&path, "[policy]\nmax_failures = 1000\n").unwrap();
        let error = Config::load(&ConfigArgs {
            config: Some(path.clone()),
            data_dir: Some(dir.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains("at most 100"), "{error}");
        let apns = "[push.apns]\nkey_file = \"k.p8\"\ntopic = \"org.example.app\"\n";
        for (text, message) in [
            (format!("{apns}key_id = \"SHORT\"\nteam_id = \"TEAMID6789\"\n"), "10-character ids"),
            (
                format!("{apns}key_id = \"KEYID12345\"\nteam_id = \"TEAMID6789\"\nendpoint = \"http://x\"\n"),
                "must start with https://",
            ),
            ("[push.fcm]\nservice_account_file = \"sa.json\"\nendpoint = \"http://x\"\n".into(), "https://"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = Config::load(&ConfigArgs {
                config: Some(path.clone()),
                data_dir: Some(dir.clone()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(error.to_string().contains(message), "{error}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        tempfile::tempdir().unwrap().keep()
    }
}
