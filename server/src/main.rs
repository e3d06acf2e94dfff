//! `tessera-server`: with no subcommand, serves the HTTP API; `tessera-server admin ...` works on
//! the database directly (on the server's machine, with its data directory and key).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera_core::delivery::DeliveryMode;
use tessera_core::qr;
use tessera_core::secret::SecretString;
use tessera_server::config::{Config, ConfigArgs};
use tessera_server::service::{
    Actor, EnrollRequest, NewUser, RegistrationCodeRequest, ReplyAttribute, Service, ServiceError,
    TemporaryPasscodeRequest, TokenImport, TokenKind, UserChanges,
};
use tessera_server::store::{AuditFilter, DeliveryPreference};
use tessera_server::{ServerError, init_logging, open_service, serve};

/// Tessera verification server.
#[derive(Parser)]
#[command(name = "tessera-server", version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default)
    Serve,
    /// Administer users, tokens and keys directly on the database
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user
    CreateUser {
        /// User name
        username: String,
        /// Read a password/PIN for the user from standard input
        #[arg(long)]
        password_stdin: bool,
        /// Phone number (E.164)
        #[arg(long)]
        phone: Option<String>,
        /// Email address
        #[arg(long)]
        email: Option<String>,
    },
    /// Enroll a token and print its otpauth URI and QR code
    Enroll {
        /// User name
        username: String,
        /// What kind of token
        #[arg(long, value_enum, default_value_t = TokenKind::Totp)]
        kind: TokenKind,
        /// SHA1, SHA256 or SHA512
        #[arg(long)]
        algorithm: Option<String>,
        /// 6 to 10
        #[arg(long)]
        digits: Option<u8>,
        /// TOTP period in seconds
        #[arg(long)]
        period: Option<u32>,
        /// SMS and email tokens: realtime, preload, preload3 or daycode [default: realtime]
        #[arg(long, value_parser = parse_mode)]
        mode: Option<DeliveryMode>,
        /// SMS and email real-time codes: time to live in seconds, 60 to 5940 [default: 300]
        #[arg(long, value_name = "SECONDS")]
        ttl_secs: Option<u32>,
        /// SMS and email Daycodes: the period in days, 1 to 31 [default: 1]
        #[arg(long, value_name = "DAYS")]
        period_days: Option<u32>,
        /// SMS, email and voice tokens: the token's own phone number or address (voice: a number
        /// or a desk extension's SIP URI, `sip:2001@pbx.example`) [default: the user's]
        #[arg(long)]
        destination: Option<String>,
        /// Write the QR code to this PNG file instead of the terminal
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
    },
    /// Send a test message (no code) through a gateway now and print what it answered
    TestGateway {
        /// The gateway's id, or `email` for the mail server
        id: String,
        /// A phone number (E.164), or an address for `email`
        #[arg(long)]
        to: String,
    },
    /// Call a phone now through [delivery.voice]: it plays the prompt and reports the keys pressed
    TestCall {
        /// A SIP URI (sip:2001@pbx.example), or an E.164 number called at the proxy
        #[arg(long)]
        to: String,
        /// Keys to wait for before hanging up
        #[arg(long, default_value_t = 6)]
        keys: usize,
        /// Seconds the phone may ring (1 to 120)
        #[arg(long, default_value_t = 30)]
        ring_secs: u64,
    },
    /// Send a pre-loaded or Daycode token's codes now (fresh pre-loaded codes void the unused ones)
    SendCodes {
        /// The token's serial
        serial: String,
    },
    /// Change a user's phone, email, display name, delivery preference or RADIUS reply attributes
    SetUser {
        /// User name
        username: String,
        /// Phone number (E.164); an empty value removes it
        #[arg(long)]
        phone: Option<String>,
        /// Email address; an empty value removes it
        #[arg(long)]
        email: Option<String>,
        /// Where a code goes when the user gives only their password
        #[arg(long, value_enum)]
        delivery_preference: Option<DeliveryPreference>,
        /// The name people know the user by; an empty value removes it
        #[arg(long)]
        display_name: Option<String>,
        /// An attribute for the user's RADIUS Access-Accepts (`Class=staff`, `Filter-Id=vpn-staff`,
        /// `Vendor-Specific:9:1=shell:priv-lvl=15`); repeat it for more. They replace the user's
        /// attributes; one empty value removes them all
        #[arg(long, value_name = "NAME=VALUE")]
        radius_reply: Vec<String>,
    },
    /// List users
    ListUsers,
    /// List a user's tokens
    ListTokens {
        /// User name
        username: String,
    },
    /// Clear a token's failures and lock
    Unlock {
        /// Token serial
        serial: String,
    },
    /// Clear a user's password lock and the locks of all their tokens
    UnlockUser {
        /// User name
        username: String,
    },
    /// Issue a temporary passcode for a user (printed once; stored only as a hash)
    TemporaryPasscode {
        /// User name
        username: String,
        /// Hours it works, 1 to 720
        #[arg(long, default_value_t = 24)]
        valid_hours: u32,
        /// Logins it may complete, 1 to 100
        #[arg(long, default_value_t = 1)]
        max_uses: u32,
    },
    /// Issue a registration code: it lets a user without any token into the self-service portal
    /// once to enrol their first one (a new code replaces the earlier one)
    RegistrationCode {
        /// User name
        username: String,
        /// Hours it works, 1 to 720
        #[arg(long, default_value_t = 72)]
        valid_hours: u32,
    },
    /// Sync the users of every [[directory]] now: create the new ones, update display names,
    /// phones and emails, and disable the tokens of users the directory no longer lists
    Sync,
    /// Create the users a CSV lists (columns username,display_name,phone,email, a header row
    /// first), all or nothing; prints the users created, or every row refused and why
    ImportUsers {
        /// The CSV file
        file: PathBuf,
    },
    /// Import tokens from a PSKC file (RFC 6030; hardware-token seeds) or an otpauth:// list, all
    /// or nothing; prints what was imported, or every entry refused and why
    ImportTokens {
        /// The PSKC (XML) or otpauth list file
        file: PathBuf,
        /// CSV with the columns serial,username: who gets each token (a PSKC token's serial is its
        /// DeviceInfo/SerialNo, or its Key Id when it has none); otpauth tokens go to the user
        /// their account names, or the one this map gives for that account
        #[arg(long, value_name = "CSV")]
        user_map: Option<PathBuf>,
        /// A file whose first line is the password of a password-protected PSKC file (PBKDF2)
        #[arg(long, value_name = "FILE")]
        pskc_password_file: Option<PathBuf>,
        /// A file holding the pre-shared AES key of a key-protected PSKC file, in hex
        #[arg(long, value_name = "FILE", conflicts_with = "pskc_password_file")]
        pskc_key_file: Option<PathBuf>,
    },
    /// Create an admin API key and print it (once)
    CreateKey {
        /// A name for the key (shown in the audit log)
        name: String,
    },
    /// List the admin API keys (ids, names, creation times; never the keys)
    ListKeys,
    /// Revoke an admin API key by its id (see list-keys)
    RevokeKey {
        /// The key's id
        id: i64,
    },
    /// Create a relying-party application and print its key (once): the application sends it as
    /// `Authorization: Bearer <key>` on /api/v1/validate, and devices show its service name
    CreateApp {
        /// A unique name (shown in the audit log as app:<name>)
        name: String,
        /// What devices show as the application asking for a login [default: the name]
        #[arg(long, value_name = "NAME")]
        service: Option<String>,
    },
    /// List the relying-party applications (never their keys)
    ListApps,
    /// Revoke an application: its key stops working at once
    RevokeApp {
        /// The application's name
        name: String,
    },
    /// Show recent audit records
    Audit {
        /// Only this user
        #[arg(long)]
        username: Option<String>,
        /// How many
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(error) => return fail(&ServerError::from(error)),
    };
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(source) => return fail(&ServerError::Io { action: "start the async runtime".into(), source }),
    };
    let result = runtime.block_on(async {
        match cli.command {
            None | Some(Command::Serve) => serve(config).await,
            Some(Command::Admin(command)) => {
                let service = open_service(&config).await?;
                let result = admin(&service, command).await;
                service.store().close().await;
                result
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

#[allow(clippy::print_stderr)]
fn fail(error: &ServerError) -> ExitCode {
    eprintln!("tessera-server: error: {error}");
    ExitCode::FAILURE
}

#[allow(clippy::print_stdout)]
async fn admin(service: &Service, command: AdminCommand) -> Result<(), ServerError> {
    let actor = Actor::Cli;
    match command {
        AdminCommand::CreateUser { username, password_stdin, phone, email } => {
            let password = if password_stdin { Some(read_stdin_line()?) } else { None };
            let user = service.create_user(&actor, NewUser { username, password, phone, email }).await?;
            println!("{}", pretty(&user));
        }
        AdminCommand::TestGateway { id, to } => {
            println!("{}", pretty(&service.test_gateway(&actor, &id, &to).await?));
        }
        AdminCommand::TestCall { to, keys, ring_secs } => {
            println!("{}", pretty(&service.test_call(&actor, &to, keys, ring_secs).await?));
        }
        AdminCommand::SendCodes { serial } => {
            println!("{}", pretty(&service.send_codes(&actor, &serial).await?))
        }
        AdminCommand::SetUser { username, phone, email, delivery_preference, display_name, radius_reply } => {
            let cleared = |value: Option<String>| value.map(|v| Some(v).filter(|v| !v.is_empty()));
            let radius_reply = match radius_reply.as_slice() {
                [] => None,
                [only] if only.is_empty() => Some(None),
                assignments => Some(Some(
                    assignments
                        .iter()
                        .map(|a| ReplyAttribute::parse_assignment(a))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(ServiceError::InvalidInput)?,
                )),
            };
            let changes = UserChanges {
                phone: cleared(phone),
                email: cleared(email),
                delivery_preference,
                display_name: cleared(display_name),
                radius_reply,
                ..UserChanges::default()
            };
            println!("{}", pretty(&service.update_user(&actor, &username, changes).await?));
        }
        AdminCommand::Enroll {
            username,
            kind,
            algorithm,
            digits,
            period,
            mode,
            ttl_secs,
            period_days,
            destination,
            png,
        } => {
            let request = EnrollRequest {
                algorithm,
                digits,
                period,
                mode,
                ttl_secs,
                period_days,
                destination,
                ..EnrollRequest::of_kind(kind)
            };
            let enrollment = service.enroll(&actor, &username, request).await?;
            if kind.channel().is_some() {
                println!("serial: {}", enrollment.serial);
                return Ok(());
            }
            let uri = enrollment
                .otpauth_uri
                .as_ref()
                .or(enrollment.enrollment_uri.as_ref())
                .map(|u| u.expose().to_owned());
            let uri = uri.unwrap_or_default();
            println!("serial: {}", enrollment.serial);
            println!("{uri}");
            match png {
                Some(path) => {
                    let bytes = qr::render_png(&uri, 8).map_err(|e| ServerError::Io {
                        action: "render the QR code".into(),
                        source: std::io::Error::other(e),
                    })?;
                    tessera_server::keys::write_private_file(&path, &bytes).map_err(|source| {
                        ServerError::Io { action: format!("write {}", path.display()), source }
                    })?;
                    println!("QR code written to {}", path.display());
                }
                None => {
                    if let Ok(text) = qr::render_terminal(&uri) {
                        println!("{text}");
                    }
                }
            }
        }
        AdminCommand::ListUsers => println!("{}", pretty(&service.users().await?)),
        AdminCommand::ListTokens { username } => println!("{}", pretty(&service.tokens(&username).await?)),
        AdminCommand::Unlock { serial } => println!("{}", pretty(&service.unlock(&actor, &serial).await?)),
        AdminCommand::TemporaryPasscode { username, valid_hours, max_uses } => {
            let request =
                TemporaryPasscodeRequest { valid_hours: Some(valid_hours), max_uses: Some(max_uses) };
            let issued = service.issue_temporary_passcode(&actor, &username, request).await?;
            println!("passcode: {}", issued.passcode.expose());
            println!("serial: {}", issued.serial);
            println!("expires_at: {}", issued.expires_at);
        }
        AdminCommand::RegistrationCode { username, valid_hours } => {
            let request = RegistrationCodeRequest { valid_hours: Some(valid_hours) };
            let issued = service.issue_registration_code(&actor, &username, request).await?;
            println!("code: {}", issued.code.expose());
            println!("expires_at: {}", issued.expires_at);
            if let Some(url) = &issued.portal_url {
                println!("portal_url: {}", url.expose());
            }
        }
        AdminCommand::UnlockUser { username } => {
            println!("{}", pretty(&service.unlock_user(&actor, &username).await?));
        }
        AdminCommand::Sync => println!("{}", pretty(&service.sync_directories(&actor).await?)),
        AdminCommand::ImportUsers { file } => {
            let report = service.import_users(&actor, &read_text(&file)?).await?;
            println!("{}", pretty(&report));
            refused_any(report.rejected.len(), "rows")?;
        }
        AdminCommand::ImportTokens { file, user_map, pskc_password_file, pskc_key_file } => {
            let import = TokenImport {
                file: read_text(&file)?,
                user_map: user_map.as_deref().map(read_text).transpose()?,
                pskc_password: pskc_password_file.as_deref().map(first_line).transpose()?,
                pskc_key_hex: pskc_key_file.as_deref().map(first_line).transpose()?,
            };
            let report = service.import_token_file(&actor, &import).await?;
            println!("{}", pretty(&report));
            refused_any(report.rejected.len(), "entries")?;
        }
        AdminCommand::CreateKey { name } => {
            let key = service.create_admin_key(&actor, &name).await?;
            println!("{}", key.expose());
        }
        AdminCommand::ListKeys => println!("{}", pretty(&service.admin_keys().await?)),
        AdminCommand::RevokeKey { id } => {
            service.revoke_admin_key(&actor, id).await?;
            println!("revoked admin key {id}");
        }
        AdminCommand::CreateApp { name, service: service_name } => {
            let created = service.create_application(&actor, &name, service_name.as_deref()).await?;
            println!("{}", created.key.expose());
        }
        AdminCommand::ListApps => println!("{}", pretty(&service.applications().await?)),
        AdminCommand::RevokeApp { name } => {
            service.revoke_application(&actor, &name).await?;
            println!("revoked application {name}");
        }
        AdminCommand::Audit { username, limit } => {
            let filter = AuditFilter { username, limit: Some(limit), ..AuditFilter::default() };
            println!("{}", pretty(&service.audit(&filter).await?));
        }
    }
    Ok(())
}

/// An all-or-nothing import's failure when it refused any of its `what`.
fn refused_any(refused: usize, what: &str) -> Result<(), ServerError> {
    if refused == 0 {
        return Ok(());
    }
    Err(ServerError::Service(ServiceError::InvalidInput(format!(
        "nothing was imported: {refused} {what} were refused (listed above)"
    ))))
}

/// A whole text file, or why it cannot be read.
fn read_text(path: &std::path::Path) -> Result<String, ServerError> {
    std::fs::read_to_string(path)
        .map_err(|source| ServerError::Io { action: format!("read {}", path.display()), source })
}

/// What opens a protected PSKC file: the password file's first line, or the key file's hex key.
/// The first line of the file at `path`, trimmed: a password or a key kept in a file.
fn first_line(path: &std::path::Path) -> Result<SecretString, ServerError> {
    let mut text = read_text(path)?;
    let line = SecretString::new(text.lines().next().unwrap_or_default().trim().to_owned());
    zeroize::Zeroize::zeroize(&mut text);
    Ok(line)
}

fn read_stdin_line() -> Result<SecretString, ServerError> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|source| ServerError::Io {
        action: "read the password from standard input".into(),
        source,
    })?;
    let password = SecretString::new(line.trim_end_matches(['\n', '\r']).to_owned());
    zeroize::Zeroize::zeroize(&mut line);
    Ok(password)
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A delivery mode named on the command line.
fn parse_mode(text: &str) -> Result<DeliveryMode, String> {
    DeliveryMode::parse(text)
        .ok_or_else(|| format!("{text:?} is not a mode: use realtime, preload, preload3 or daycode"))
}
