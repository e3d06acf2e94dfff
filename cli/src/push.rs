//! Push from the terminal: enrolling the vault as a push device, listening for login requests,
//! and approving or denying them. The protocol is `tessera-client`'s; this module asks the person
//! and prints.

use std::io::IsTerminal;
use std::path::Path;

use futures_util::StreamExt;
use serde::Serialize;
use tessera_client::ChannelEvent;
use tessera_client::devices::{self, Delivered, VaultDevice};
use tessera_core::otp::unix_now;
use tessera_core::push::{Challenge, Cleartext, Decision, DenyReason, EnrollmentLink, NumberMatching};
use tessera_core::qr;
use tessera_core::vault::{TokenError, UnlockedVault, VaultError};

use tessera_core::error::Classify;

use crate::commands::pin_if_set;
use crate::terminal::{self, Failure, NEW_PIN_ENV, note, output, read_line, warn};

impl From<tessera_client::ClientError> for Failure {
    fn from(error: tessera_client::ClientError) -> Self {
        match error {
            tessera_client::ClientError::Vault(error) => Self::Vault(*error),
            other => Self::Refused { code: other.code(), message: other.to_string() },
        }
    }
}

impl From<tessera_core::push::PushError> for Failure {
    fn from(error: tessera_core::push::PushError) -> Self {
        Self::Refused { code: error.code(), message: error.to_string() }
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(format!("cannot start the network runtime: {e}")))
}

/// The link from an argument: the link itself, `-` for standard input, or a QR image holding it.
fn enrollment_link(argument: &str) -> Result<EnrollmentLink, Failure> {
    if argument == "-" {
        return Ok(EnrollmentLink::parse(terminal::argument_or_stdin("-")?.expose())?);
    }
    if EnrollmentLink::is_meant(argument) || !Path::new(argument).is_file() {
        return Ok(EnrollmentLink::parse(argument)?);
    }
    let texts = qr::decode_image_file(Path::new(argument))?;
    EnrollmentLink::find_in(&texts)
        .ok_or_else(|| Failure::Usage(format!("no Tessera enrollment QR code found in {argument}")))
}

/// `tessera enroll`: shows where the link leads and asks (unless `yes`), then registers a new
/// device key with the server and keeps it in the vault. A server on another computer reached by
/// plain HTTP is refused unless `insecure_http`.
pub fn enroll(
    vault: &UnlockedVault,
    argument: &str,
    name: Option<String>,
    yes: bool,
    insecure_http: bool,
) -> Result<(), Failure> {
    let link = enrollment_link(argument)?;
    let cleartext = if insecure_http { Cleartext::AcceptedByUser } else { Cleartext::Refuse };
    link.check_transport(cleartext)
        .map_err(|refused| Failure::Usage(format!("{refused} (--insecure-http)")))?;
    let preview = link.preview();
    note(format!(
        "Enroll this vault as a push device?\n  Server:  {} ({})\n  Issuer:  {}\n  Account: {}",
        preview.host,
        preview.server,
        preview.issuer.as_deref().unwrap_or("(not named)"),
        preview.account.as_deref().unwrap_or("(not named)"),
    ));
    if let Some(warning) = link.cleartext_warning() {
        warn(warning);
    }
    if !yes && !terminal::confirm("Enroll?")? {
        return Err(Failure::Usage("enrollment cancelled: nothing was sent".into()));
    }
    let name = name.or_else(|| std::env::var("HOSTNAME").ok()).map(|n| n.chars().take(64).collect());
    let (_, registered) = runtime()?.block_on(devices::enroll(vault, &link, name, cleartext, unix_now()))?;
    note(format!(
        "Enrolled as a push device for {} at {} ({}). Run `tessera push listen` to receive login requests.",
        registered.username, registered.issuer, registered.serial
    ));
    Ok(())
}

/// The vault's push devices; none is an error.
fn vault_devices(vault: &UnlockedVault) -> Result<Vec<VaultDevice>, Failure> {
    let found = devices::vault_devices(&vault.read()?)?;
    if found.is_empty() {
        return Err(TokenError::NoPushDevice.into());
    }
    Ok(found)
}

/// A challenge as `listen --json` prints it.
#[derive(Serialize)]
struct ChallengeLine<'a> {
    seq: u64,
    transaction_id: &'a str,
    username: &'a str,
    serial: &'a str,
    service: &'a str,
    client_ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    created_at: u64,
    expires_at: u64,
    number_matching: NumberMatching,
    number_choices: &'a [u8],
}

fn describe(challenge: &Challenge) -> String {
    let from = match (&challenge.client_ip, &challenge.user_agent) {
        (Some(ip), Some(agent)) => format!(" from {ip} ({agent})"),
        (Some(ip), None) => format!(" from {ip}"),
        (None, Some(agent)) => format!(" from {agent}"),
        (None, None) => String::new(),
    };
    let numbers = match challenge.number_matching {
        NumberMatching::Pick => format!(
            "\n  Pick the number the login screen shows: {}",
            challenge.number_choices.iter().map(u8::to_string).collect::<Vec<_>>().join("  ")
        ),
        NumberMatching::Type => "\n  Type the number the login screen shows.".into(),
        NumberMatching::Off => String::new(),
    };
    format!(
        "Login request for {} at {}{from}, expires in {} s\n  Transaction {}{numbers}",
        challenge.username,
        challenge.service,
        challenge.seconds_left(unix_now()),
        challenge.transaction_id
    )
}

/// `tessera push listen`.
pub fn listen(vault: &UnlockedVault, json: bool, auto_deny: bool, count: Option<u32>) -> Result<(), Failure> {
    let found = vault_devices(vault)?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let mut events = devices::channels(&found);
        let mut seen = 0u32;
        while let Some((id, event)) = events.next().await {
            match event {
                ChannelEvent::Connected if !json => note("Listening for login requests (Ctrl-C stops)."),
                ChannelEvent::Connected => {}
                ChannelEvent::Disconnected(error) => warn(format!("{error}; reconnecting")),
                ChannelEvent::Rejected(error) => {
                    warn(format!("ignored a login request that failed verification: {error}"))
                }
                ChannelEvent::Challenge(delivery) => {
                    let seq = delivery.seq;
                    devices::record_seen(vault, &id, seq)?;
                    let challenge = &delivery.challenge.challenge;
                    if json {
                        let line = ChallengeLine {
                            seq,
                            transaction_id: &challenge.transaction_id,
                            username: &challenge.username,
                            serial: &challenge.serial,
                            service: &challenge.service,
                            client_ip: challenge.client_ip.as_deref(),
                            user_agent: challenge.user_agent.as_deref(),
                            created_at: challenge.created_at,
                            expires_at: challenge.expires_at,
                            number_matching: challenge.number_matching,
                            number_choices: &challenge.number_choices,
                        };
                        output(serde_json::to_string(&line).map_err(|e| Failure::Usage(e.to_string()))?);
                    } else {
                        output(describe(challenge));
                    }
                    if let Some(device) = found.iter().find(|d| d.token == id) {
                        if auto_deny {
                            send(vault, device, challenge, Decision::Deny(DenyReason::Cancelled), None)
                                .await?;
                        } else if std::io::stdin().is_terminal()
                            && let Some((decision, number)) = ask(challenge)?
                            && let Err(failure) = send(vault, device, challenge, decision, number).await
                        {
                            warn(format!("{failure}; the request is left unanswered"));
                        }
                    }
                    seen += 1;
                    if count.is_some_and(|count| seen >= count) {
                        break;
                    }
                }
            }
        }
        Ok(())
    })
}

/// Asks approve/deny at the terminal: a number approves, `d` denies, `n` reports "not me",
/// an empty line leaves the request unanswered.
fn ask(challenge: &Challenge) -> Result<Option<(Decision, Option<u8>)>, Failure> {
    let prompt = match challenge.number_matching {
        NumberMatching::Off => "Approve? [y] yes, [d] deny, [n] not me, Enter to skip: ",
        _ => "Type the number to approve, [d] deny, [n] not me, Enter to skip: ",
    };
    let answer = read_line(prompt)?;
    Ok(match answer.trim() {
        "" => None,
        "d" | "D" => Some((Decision::Deny(DenyReason::Cancelled), None)),
        "n" | "N" => Some((Decision::Deny(DenyReason::NotMe), None)),
        "y" | "Y" if challenge.number_matching == NumberMatching::Off => Some((Decision::Approve, None)),
        number => match number.parse::<u8>() {
            Ok(number) => Some((Decision::Approve, Some(number))),
            Err(_) => {
                warn("not a number; the request is left unanswered");
                None
            }
        },
    })
}

/// Signs and sends an answer (asking for the answer PIN when the vault has one); an approval
/// carries the token's current TOTP (approve-with-OTP).
async fn send(
    vault: &UnlockedVault,
    device: &VaultDevice,
    challenge: &Challenge,
    decision: Decision,
    number: Option<u8>,
) -> Result<(), Failure> {
    let pin = pin_if_set(&vault.read()?)?;
    let answer =
        devices::sign_answer(vault, &device.token, challenge, decision, number, pin.as_ref(), unix_now())?;
    let transaction = &challenge.transaction_id;
    match (decision, devices::deliver(&device.device, answer, decision).await?) {
        (Decision::Approve, Delivered::Answered(_)) => note(format!("Approved {transaction}.")),
        (Decision::Deny(reason), Delivered::Answered(_)) => {
            note(format!("Denied {transaction} ({}).", reason.as_str()));
        }
        (_, Delivered::NotApproved(refusal)) => {
            return Err(Failure::Usage(format!("{transaction}: {}", refusal.message())));
        }
        (_, Delivered::Gone) => {
            return Err(Failure::Usage(format!("{transaction} has expired or was answered already")));
        }
    }
    Ok(())
}

/// `tessera push approve`.
pub fn approve(vault: &UnlockedVault, transaction_id: &str, number: Option<u8>) -> Result<(), Failure> {
    let found = vault_devices(vault)?;
    runtime()?.block_on(async {
        let (device, challenge) = devices::find_pending(&found, transaction_id).await?;
        let number = match (challenge.number_matching, number) {
            (NumberMatching::Off, _) | (_, Some(_)) => number,
            (_, None) if std::io::stdin().is_terminal() => {
                output(describe(&challenge));
                read_line("Which number does the login screen show? ")?.trim().parse().ok()
            }
            (_, None) => {
                return Err(Failure::Usage(
                    "this request needs --number (the number on the login screen)".into(),
                ));
            }
        };
        send(vault, device, &challenge, Decision::Approve, number).await
    })
}

/// `tessera push deny`.
pub fn deny(vault: &UnlockedVault, transaction_id: &str, reason: &str) -> Result<(), Failure> {
    let found = vault_devices(vault)?;
    let reason = if reason == "not-me" { DenyReason::NotMe } else { DenyReason::Cancelled };
    runtime()?.block_on(async {
        let (device, challenge) = devices::find_pending(&found, transaction_id).await?;
        send(vault, device, &challenge, Decision::Deny(reason), None).await
    })
}

/// `tessera push pin set`.
pub fn set_pin(vault: &UnlockedVault) -> Result<(), Failure> {
    let current = pin_if_set(&vault.read()?)?;
    let new = terminal::new_secret(NEW_PIN_ENV, "PIN")?;
    vault.update(|v| Ok::<_, VaultError>(v.set_answer_pin(current.as_ref(), &new, unix_now())))??;
    note(
        "This vault now asks for its PIN before answering login requests and before showing push tokens' codes.",
    );
    Ok(())
}

/// `tessera push pin clear`.
pub fn clear_pin(vault: &UnlockedVault) -> Result<(), Failure> {
    let current = pin_if_set(&vault.read()?)?;
    vault.update(|v| Ok::<_, VaultError>(v.clear_answer_pin(current.as_ref(), unix_now())))??;
    note("This vault no longer asks for a PIN.");
    Ok(())
}
