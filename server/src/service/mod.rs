//! The verification server's operations: users, token enrollment and management, validation, One
//! Swipe, applications, admin keys, audit.
//!
//! The per-token rules (windows, replay, lockout, drift, resync) are `tessera_core::verifier`'s;
//! this layer loads state, asks the core, and stores the outcome atomically with its audit record.
//! HTTP handlers and `tessera-server admin` subcommands both call these functions, so an action
//! behaves and is audited the same way whichever door it came through. Push approval is its own
//! object ([`crate::push::Push`]), owned here and reached through [`Service::push`].
//!
//! | file | what |
//! |---|---|
//! | `validate.rs` | `validate` as named steps: admit, push, a sent code or a passcode, compare-and-swap |
//! | `temporary.rs` | temporary passcodes: the help desk's, and the portal's self-service ones |
//! | `delivered.rs` | SMS and email tokens: enrolment, sends, real-time challenges, the next pre-loaded codes |
//! | `oneswipe.rs` | redeeming a One Swipe code |
//! | `portal.rs` | the self-service portal's sign-in and sessions |
//! | `devices.rs` | what a signed-in user does with their own devices: add, confirm, replace, rename, delete |
//! | `phone.rs` | proving a phone number by a code sent to it: a number change, a first sign-in by SMS |
//! | `notices.rs` | telling users of changes to their sign-in by another channel |
//! | `radius.rs` | RADIUS Access-Requests as validations, Access-Challenge and its `State` |
//! | `voice.rs` | voice tokens: the code shown, the call queued, what the callee keys judged |
//! | `users.rs`, `tokens.rs` | user and token administration |
//! | `passwords.rs` | Argon2id hashing and checks behind a semaphore |
//! | `admin_keys.rs`, `applications.rs` | admin API keys, relying parties' application keys |
//! | `audit.rs` | the audit record of administrative actions, reading and pruning the log |
//! | `reseal.rs` | the server key check and the one-time re-sealing of seeds at startup |

mod admin_keys;
mod applications;
mod audit;
mod delivered;
mod devices;
mod directory;
mod imports;
mod notices;
mod oneswipe;
mod passwords;
mod phone;
mod portal;
mod radius;
mod registration;
mod reseal;
mod temporary;
mod tokens;
mod users;
mod validate;
mod voice;

use std::net::IpAddr;
use std::sync::Arc;

use tessera_core::secret::SecretString;
use tessera_core::verifier::Policy;

pub use crate::error::ServiceError;
pub use crate::store::{ReplyAttribute, TokenKind};
pub use admin_keys::AdminAuth;
pub use applications::{APPLICATION_KEY_PREFIX, APPLICATIONS_CHANGED, Application, NewApplication};
pub use delivered::{DeliveryFilter, SentCodes};
pub use devices::{AddedDevice, CodeChoice, Confirmation, DeliveryChoice, NewDevice, StepUp};
pub use directory::SyncReport;
pub use imports::{ImportReport, ImportedToken, RejectedEntry, TokenImport, UserImport, UserImportReport};
pub use oneswipe::{OneSwipeRequest, OneSwipeResponse, OneSwipeResult, RejectReason};
pub use phone::PhoneCheck;
pub use portal::{
    DeviceView, DisplayCode, PortalOverview, PortalSession, SessionId, SignIn, SignInView, StepUpAnswer,
};
pub use radius::{AccountingStatus, RadiusAccess, RadiusAccounting, RadiusAnswer};
pub use registration::{RegistrationCode, RegistrationCodeRequest};
pub use temporary::{IssuedPasscode, TemporaryPasscodeRequest};
pub use tokens::{EnrollRequest, Enrollment, SEED_BYTES, TokenView};
pub use users::{NewUser, UserChanges, UserView};
pub use validate::{
    NOPUSH_SUFFIX, PublicReason, ValidateReason, ValidateRequest, ValidateResponse, ValidationResult,
};

use crate::clock::now_i64;
use crate::config::{Config, Limits, PortalSettings};
use crate::delivery::Delivery;
use crate::directory::Directories;
use crate::keys::ServerKey;
use crate::metrics::Metrics;
use crate::push::{Push, Shared};
use crate::ratelimit::Limiter;
use crate::store::Store;
use applications::ApplicationCache;

/// Compare-and-swap attempts before a contended operation gives up.
const MAX_ATTEMPTS: usize = 16;
/// Push transactions are kept this long (for the audit trail of who approved what), then pruned.
const TRANSACTION_RETENTION_SECS: i64 = 24 * 60 * 60;

/// Who is acting, for the audit log.
#[derive(Debug, Clone)]
pub enum Actor {
    /// An HTTP client authenticated by an admin API key.
    Admin {
        /// The key's name.
        key: String,
        /// The client's address.
        ip: Option<IpAddr>,
    },
    /// `tessera-server admin` on the server's machine.
    Cli,
    /// A signed-in user of the self-service portal, acting on their own devices.
    Portal {
        /// The browser's address.
        ip: Option<IpAddr>,
    },
}

impl Actor {
    fn audit_name(&self) -> String {
        match self {
            Self::Admin { key, .. } => format!("admin:{key}"),
            Self::Cli => "cli".into(),
            Self::Portal { .. } => "portal".into(),
        }
    }

    fn ip(&self) -> Option<String> {
        match self {
            Self::Admin { ip, .. } | Self::Portal { ip } => ip.map(|ip| ip.to_string()),
            Self::Cli => None,
        }
    }
}

/// The server's state shared by all requests.
pub struct Service {
    store: Store,
    key: Arc<ServerKey>,
    issuer: String,
    policy: Policy,
    limiter: Arc<Limiter>,
    metrics: Arc<Metrics>,
    admin_token: Option<SecretString>,
    hashing: tokio::sync::Semaphore,
    push: Push,
    delivery: Arc<Delivery>,
    directories: Directories,
    directory_timing: directory::BindTiming,
    applications: ApplicationCache,
    limits: Limits,
    require_application_key: bool,
    portal: PortalSettings,
}

/// Who asks for a validation, as the HTTP edge saw it.
#[derive(Debug, Clone, Default)]
pub struct Caller<'a> {
    /// The client's address (the connection's, or the one a trusted proxy appended).
    pub ip: Option<IpAddr>,
    /// The request's `User-Agent`.
    pub user_agent: Option<&'a str>,
    /// The relying party, when it presented its application key.
    pub application: Option<Application>,
    /// Which door the request came through.
    pub door: Door<'a>,
}

/// The door a validation comes through: the same rules either way, audited under its own name.
#[derive(Debug, Clone, Copy, Default)]
pub enum Door<'a> {
    /// `POST /api/v1/validate`.
    #[default]
    Api,
    /// The self-service portal's sign-in, which also takes a registration code from a user
    /// without any token.
    Portal {
        /// The help desk's registration code, when the user typed one.
        registration_code: Option<&'a SecretString>,
        /// Whether a user without any token gets a code by text message to the number on file.
        first_code_by_sms: bool,
    },
    /// The RADIUS listener, for a declared client.
    Radius {
        /// The client's name.
        client: &'a str,
        /// The `NAS-Identifier` the client sent: the device behind a proxy, or the client itself.
        nas: Option<&'a str>,
        /// Whether the client shows a challenge's text (a number to match) before the push is
        /// answered: not in `auto` mode.
        shows_number: bool,
        /// The request answers a challenge whose `State` proves the password was right.
        password_proved: bool,
    },
}

impl Door<'_> {
    /// Whether a login that gave only its password is asked for a passcode (a RADIUS client shows
    /// the question) rather than refused for a missing one.
    fn asks_for_passcode(self) -> bool {
        matches!(self, Self::Radius { .. })
    }
}

impl Caller<'_> {
    /// The audit log's actor: `app:<name>` for an application, `portal` for the portal,
    /// `radius:<client>` (`radius:<client>/<NAS-Identifier>` when the client names its NAS) for
    /// RADIUS, `validate` for anonymous calls.
    fn audit_actor(&self) -> std::borrow::Cow<'static, str> {
        match (&self.application, self.door) {
            (Some(app), _) => format!("app:{}", app.name).into(),
            (None, Door::Portal { .. }) => "portal".into(),
            (None, Door::Radius { client, nas, .. }) => radius_actor(client, nas).into(),
            (None, Door::Api) => "validate".into(),
        }
    }
}

/// The audit log's actor for a RADIUS `client`: `radius:<client>`, or
/// `radius:<client>/<NAS-Identifier>` when the client names its NAS.
fn radius_actor(client: &str, nas: Option<&str>) -> String {
    match nas {
        Some(nas) => format!("radius:{client}/{nas}"),
        None => format!("radius:{client}"),
    }
}

impl Service {
    /// A service over an opened store. Refuses a server key that did not encrypt this database's seeds.
    pub async fn new(
        store: Store,
        key: ServerKey,
        config: &Config,
        admin_token: Option<SecretString>,
    ) -> Result<Arc<Self>, ServiceError> {
        reseal::check_key_and_reseal(&store, &key).await?;
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let key = Arc::new(key);
        let limiter = Arc::new(Limiter::new(config.rate_limits, &config.policy));
        let metrics = Arc::new(Metrics::new());
        let shared = Shared {
            store: store.clone(),
            key: key.clone(),
            policy: config.policy,
            limiter: limiter.clone(),
            metrics: metrics.clone(),
        };
        Ok(Arc::new(Self {
            push: Push::new(shared, config)?,
            delivery: Arc::new(Delivery::new(store.clone(), key.clone(), config)?),
            directories: Directories::new(&config.directories).map_err(ServiceError::InvalidInput)?,
            directory_timing: directory::BindTiming::default(),
            store,
            key,
            issuer: config.issuer.clone(),
            policy: config.policy,
            limiter,
            metrics,
            admin_token,
            hashing: tokio::sync::Semaphore::new(2 * cores),
            applications: ApplicationCache::default(),
            limits: config.limits,
            require_application_key: config.require_application_key,
            portal: config.portal.clone(),
        }))
    }

    /// Push approval.
    pub fn push(&self) -> &Push {
        &self.push
    }

    /// Delivered passcodes: the outbox's sender runs on it.
    pub fn delivery(&self) -> &Arc<Delivery> {
        &self.delivery
    }

    /// Whether `/validate` refuses callers without an application key.
    pub fn requires_application_key(&self) -> bool {
        self.require_application_key
    }

    /// The request pools' and device streams' limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Handles another replica's notification: a revoked application empties the key cache;
    /// anything else wakes this process's waiters on that key.
    pub fn notified(&self, key: &str) {
        if key == APPLICATIONS_CHANGED {
            self.applications.clear();
        } else {
            self.push.hub().publish(key);
        }
    }

    /// Deletes push transactions created more than a day ago; returns how many.
    pub async fn prune_transactions(&self) -> Result<u64, ServiceError> {
        let cutoff = now_i64().saturating_sub(TRANSACTION_RETENTION_SECS);
        Ok(self.store.prune_transactions(cutoff).await?)
    }

    /// Starts the shutdown: open device channels close (devices reconnect, to another replica
    /// if there is one), so a graceful shutdown does not wait on them forever.
    pub fn stop(&self) {
        self.push.stop();
        self.delivery.stop();
    }

    /// The store (for health checks and shutdown).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The rate limiter (for periodic clean-up).
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A service over a temporary SQLite database, for the service-layer tests beside each
    //! operation.

    use std::sync::Arc;

    use tessera_core::secret::SecretString;

    use super::{Actor, NewUser, Service, ValidateRequest};
    use crate::config::{Config, ConfigArgs};

    /// A service on SQLite in a temporary directory, configured by `toml`.
    pub(crate) async fn service(toml: &str) -> (tempfile::TempDir, Arc<Service>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(
            &path,
            format!("{toml}\n[rate_limit]\nper_ip_per_minute = 0\nper_user_per_minute = 0\n"),
        )
        .unwrap();
        let args =
            ConfigArgs { config: Some(path), data_dir: Some(dir.path().join("data")), ..Default::default() };
        let service = crate::open_service(&Config::load(&args).unwrap()).await.unwrap();
        (dir, service)
    }

    pub(crate) fn request(username: &str, password: &str, passcode: &str) -> ValidateRequest {
        ValidateRequest {
            username: username.into(),
            password: Some(SecretString::new(password.into())),
            passcode: Some(SecretString::new(passcode.into())),
            transaction_id: None,
            client_ip: None,
            user_agent: None,
            service: None,
        }
    }

    /// Creates `username` with `password`.
    pub(crate) async fn user(service: &Service, username: &str, password: &str) {
        let new = NewUser {
            username: username.into(),
            password: Some(SecretString::new(password.into())),
            phone: None,
            email: None,
        };
        service.create_user(&Actor::Cli, new).await.unwrap();
    }
}
