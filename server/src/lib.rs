//! `tessera-server`: the verification server that applications, VPNs and web agents ask "is this
//! user's passcode right?".
//!
//! - [`config`]: flags, environment and TOML file.
//! - [`applications`]: relying parties' keys, which decide what a push device shows.
//! - [`keys`]: the server key (seeds encrypted at rest), admin API keys, password hashing.
//! - [`store`]: SQLite or PostgreSQL behind one set of queries, with compare-and-swap state updates.
//! - [`service`]: users, enrollment, validation, audit; the rules come from `tessera_core::verifier`.
//! - [`api`]: the HTTP edge and its OpenAPI document.
//! - [`push`]: push approval: enrollment, challenges, device channel, answers.
//! - [`delivery`]: codes sent by SMS and email: the outbox sender and its gateways.
//! - [`directory`]: company directories (LDAP, Active Directory): passwords checked by bind, users found and synced.
//! - [`oneswipe`]: One Swipe: redeeming the signed, single-use QR codes push devices show.
//! - [`wake`]: optional FCM and APNs wake-ups for sleeping phone apps.
//! - [`metrics`], [`ratelimit`]: Prometheus metrics and per-client/per-user rate limits.

pub mod api;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod directory;
pub mod error;
pub mod input;
pub mod keys;
pub mod metrics;
pub mod push;
pub mod radius;
pub mod ratelimit;
pub mod service;
pub mod store;
pub mod voice;
pub mod wake;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use config::{Config, LogFormat};
use service::{Actor, Service};
use store::Store;
use tessera_core::secret::SecretString;

/// File in the data directory holding the admin key created on first run.
pub const FIRST_ADMIN_KEY_FILE: &str = "admin-token";
/// Environment variable naming an admin key that is always accepted.
pub const ADMIN_TOKEN_ENV: &str = "TESSERA_ADMIN_TOKEN";
/// Shortest `TESSERA_ADMIN_TOKEN` accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// A startup or serving failure, reported in one line.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Key material.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// The database.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The service refused to start or an admin command failed.
    #[error(transparent)]
    Service(#[from] service::ServiceError),
    /// Files, sockets, TLS.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Sets up logging to standard error (`RUST_LOG` filters, default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn,rsipstack=warn")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Creates the data directory (0700), loads the server key, opens the database, builds the service.
pub async fn open_service(config: &Config) -> Result<Arc<Service>, ServerError> {
    keys::create_private_dir(&config.data_dir).map_err(|source| ServerError::Io {
        action: format!("create the data directory {}", config.data_dir.display()),
        source,
    })?;
    let key = keys::ServerKey::load_or_create(&config.data_dir)?;
    let store = Store::open(&config.database_url).await?;
    let admin_token = std::env::var(ADMIN_TOKEN_ENV).ok().filter(|t| !t.is_empty()).map(SecretString::new);
    if admin_token.as_ref().is_some_and(|t| t.char_count() < MIN_ADMIN_TOKEN_CHARS) {
        return Err(ServerError::Service(service::ServiceError::InvalidInput(format!(
            "{ADMIN_TOKEN_ENV} must be at least {MIN_ADMIN_TOKEN_CHARS} characters (for example the output of `tessera-server admin create-key`)"
        ))));
    }
    Ok(Service::new(store, key, config, admin_token).await?)
}

/// On a database without admin keys (and no `TESSERA_ADMIN_TOKEN`), creates one, saves it to
/// `admin-token` (0600) in the data directory and shows it once on standard error.
pub async fn ensure_first_admin_key(service: &Service, data_dir: &Path) -> Result<(), ServerError> {
    if std::env::var_os(ADMIN_TOKEN_ENV).is_some() || !service.has_no_admin_keys().await? {
        return Ok(());
    }
    let key = service.create_admin_key(&Actor::Cli, "initial").await?;
    let path = data_dir.join(FIRST_ADMIN_KEY_FILE);
    let _ = std::fs::remove_file(&path);
    keys::write_private_file(&path, format!("{}\n", key.expose()).as_bytes())
        .map_err(|source| ServerError::Io { action: format!("write {}", path.display()), source })?;
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "First run: created an admin API key (shown only this once; also saved to {}):",
            path.display()
        );
        eprintln!("  {}", key.expose());
    }
    Ok(())
}

/// Runs the server until SIGINT or SIGTERM, then drains connections and closes the database.
pub async fn serve(config: Config) -> Result<(), ServerError> {
    let service = open_service(&config).await?;
    ensure_first_admin_key(&service, &config.data_dir).await?;
    warn_about_unsafe_settings(&config);
    let web_decoder = api::login::WebDecoder::load(&config.web_dir);
    if web_decoder.is_none() {
        tracing::warn!(
            web_dir = %config.web_dir.display(),
            "no One Swipe web decoder there (scripts/build-web.sh builds it): /login offers passcodes and push only"
        );
    }
    let app = api::router(api::AppState {
        service: service.clone(),
        trust_forwarded_for: config.trust_forwarded_for,
        web_decoder,
    })
    .into_make_service_with_connect_info::<SocketAddr>();

    let cleanup = {
        let service = service.clone();
        let retention_days = config.audit_retention_days;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            for minute in 0u64.. {
                tick.tick().await;
                service.limiter().forget_idle();
                if minute % 60 == 0 {
                    prune(&service, retention_days).await;
                }
            }
        })
    };
    let sender = {
        let delivery = service.delivery().clone();
        tokio::spawn(async move { delivery.run_sender().await })
    };
    let syncs = {
        let service = service.clone();
        tokio::spawn(async move { service.run_directory_syncs().await })
    };
    let calls = tokio::spawn(service.clone().run_calls());
    let listener = service.store().postgres_pool().map(|pool| {
        let service = service.clone();
        tokio::spawn(async move { republish_notifications(&pool, &service).await })
    });
    let radius = match &config.radius {
        Some(settings) => {
            let bind = |address: SocketAddr, what: &'static str| async move {
                tokio::net::UdpSocket::bind(address).await.map_err(|source| ServerError::Io {
                    action: format!("listen for RADIUS {what} on {address}"),
                    source,
                })
            };
            let access = bind(settings.listen, "authentication").await?;
            let accounting = match settings.accounting_listen {
                Some(address) => Some(bind(address, "accounting").await?),
                None => None,
            };
            tracing::info!(address = %settings.listen, accounting = ?settings.accounting_listen, clients = settings.clients.len(), "RADIUS listening");
            Some(tokio::spawn(radius::serve(service.clone(), settings.clone(), access, accounting)))
        }
        None => None,
    };
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let database = match service.store().backend() {
        store::Backend::Sqlite => "SQLite",
        store::Backend::Postgres => "PostgreSQL",
    };
    let handle = axum_server::Handle::new();
    let stopping = {
        let (service, handle) = (service.clone(), handle.clone());
        tokio::spawn(async move {
            shutdown_signal().await;
            service.stop();
            handle.graceful_shutdown(Some(GRACE));
        })
    };
    let listener_socket = std::net::TcpListener::bind(config.listen)
        .map_err(|source| ServerError::Io { action: format!("listen on {}", config.listen), source })?;
    let address =
        listener_socket.local_addr().map_err(|source| ServerError::Io { action: "listen".into(), source })?;
    let mut server = axum_server::from_tcp(listener_socket)
        .map_err(|source| ServerError::Io { action: format!("listen on {address}"), source })?
        .handle(handle);
    server
        .http_builder()
        .http1()
        .header_read_timeout(Duration::from_secs(config.limits.header_read_timeout_secs));
    tracing::info!(%address, database, data_dir = %config.data_dir.display(), "listening on {scheme}://{address}");
    let served = match &config.tls {
        None => server.serve(app).await,
        Some(tls) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .map_err(|source| ServerError::Io {
                    action: format!(
                        "load TLS certificate {} and key {}",
                        tls.cert.display(),
                        tls.key.display()
                    ),
                    source,
                })?;
            server.acceptor(axum_server::tls_rustls::RustlsAcceptor::new(rustls)).serve(app).await
        }
    };
    cleanup.abort();
    stopping.abort();
    sender.abort();
    syncs.abort();
    calls.abort();
    service.delivery().unbind().await;
    if let Some(listener) = listener {
        listener.abort();
    }
    if let Some(radius) = radius {
        radius.abort();
    }
    service.store().close().await;
    tracing::info!("stopped");
    served.map_err(|source| ServerError::Io { action: "serve".into(), source })
}

/// Hourly: old audit records (past the retention) and push transactions (past a day).
async fn prune(service: &Service, retention_days: u32) {
    if retention_days > 0 {
        match service.prune_audit(retention_days).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, retention_days, "pruned old audit records"),
            Err(error) => tracing::warn!(%error, "pruning the audit log failed"),
        }
    }
    match service.prune_transactions().await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "pruned old push transactions"),
        Err(error) => tracing::warn!(%error, "pruning push transactions failed"),
    }
    match service.prune_portal().await {
        Ok((0, 0)) => {}
        Ok((sessions, devices)) => {
            tracing::info!(sessions, devices, "pruned ended portal sessions and unconfirmed devices")
        }
        Err(error) => tracing::warn!(%error, "pruning portal sessions failed"),
    }
    match service.prune_radius_states().await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "pruned RADIUS challenges that ran out"),
        Err(error) => tracing::warn!(%error, "pruning RADIUS challenges failed"),
    }
}

/// Says at startup what an operator should change before users depend on the server.
fn warn_about_unsafe_settings(config: &Config) {
    if !config.push.public_url.starts_with("https://") {
        tracing::warn!(
            public_url = %config.push.public_url,
            "push.public_url is not https: enrollment links and device traffic can be read and altered on the network (devices refuse such links off this computer unless the user insists)"
        );
    }
    if config.portal.enabled && tessera_core::push::is_cleartext_server(&config.portal.origin) {
        tracing::warn!(
            origin = %config.portal.origin,
            "the self-service portal is served over plain HTTP to other computers: browsers drop its Secure cookies there, so nobody can sign in; serve it over HTTPS ([tls] or a proxy) and set [portal] public_url"
        );
    }
    if !config.require_application_key {
        tracing::warn!(
            "require_application_key is off: anyone may call /api/v1/validate, and devices show the server's service name for such calls; create application keys (tessera-server admin create-app) and turn it on"
        );
    }
}

/// Listens to other replicas' push notifications (PostgreSQL `LISTEN`) and wakes this process's
/// waiting devices and login clients; reconnects after a failure.
async fn republish_notifications(pool: &sqlx::PgPool, service: &Service) {
    loop {
        match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(mut listener) => match listener.listen("tessera_push").await {
                Ok(()) => {
                    while let Ok(notification) = listener.recv().await {
                        service.notified(notification.payload());
                    }
                    tracing::warn!("the push notification listener lost its connection; reconnecting");
                }
                Err(error) => tracing::warn!(%error, "LISTEN failed"),
            },
            Err(error) => tracing::warn!(%error, "the push notification listener cannot connect"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How long a graceful shutdown waits for open requests.
const GRACE: Duration = Duration::from_secs(10);

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
