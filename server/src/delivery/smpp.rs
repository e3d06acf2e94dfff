//! Text messages to an SMSC over SMPP 3.4: one session per gateway, bound as a transmitter on
//! first use and kept open between messages (`enquire_link` keeps it alive and finds a dead one),
//! opened and bound again when it drops. Messages are GSM 7-bit (the templates are checked to be)
//! in one `submit_sm` each, with a validity period when the code expires, so the SMSC drops a
//! code it could not deliver in time instead of delivering a useless one late. The connection,
//! the PDUs and the keep-alive are `rusmppc`'s; this file is the policy.
//!
//! An SMSC's refusal is reported by its command status name (`ESME_RTHROTTLED`, …), and the
//! sender fails over to the next gateway or tries again later, as for any gateway. A session that
//! turns out to be dead when a message is submitted is replaced once, at once.

use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use rusmpp::extra::encoding::EncodedSubmitSmExt;
use rusmpp::pdus::{BindTransmitter, SubmitSm};
use rusmpp::types::{COctetString, EmptyOrFullCOctetString};
use rusmpp::values::{InterfaceVersion, Npi, Ton};
use rusmpp::{CommandId, CommandStatus};
use rusmppc::error::Error as SmppError;
use rusmppc::{Client, ConnectionBuilder, Event};
use tokio::sync::Mutex;

use super::gateway::{Accepted, Outgoing};
use crate::config::SmppGateway;
use crate::wake::tls_client_config;

/// Longest PDU read from an SMSC.
const MAX_COMMAND_LENGTH: usize = 4096;

/// One gateway's session with its SMSC.
pub struct SmppLink {
    gateway: SmppGateway,
    tls: Option<rustls::ClientConfig>,
    session: Mutex<Option<Client>>,
}

impl SmppLink {
    /// A link to `gateway`'s SMSC; nothing is connected until the first message. For `smpps://`
    /// the system's CA roots are trusted, and `ca_file`'s certificates beside them.
    pub fn new(gateway: &SmppGateway) -> Result<Self, String> {
        let tls = match &gateway.ca_file {
            Some(path) if gateway.url.starts_with("smpps:") => Some(
                tls_client_config(path)
                    .map_err(|e| format!("delivery.sms_gateway {:?}: ca_file {e}", gateway.id))?,
            ),
            _ => None,
        };
        Ok(Self { gateway: gateway.clone(), tls, session: Mutex::new(None) })
    }

    /// The gateway's id.
    pub fn id(&self) -> &str {
        &self.gateway.id
    }

    /// Submits `message`; the SMSC's message id when it accepted it.
    pub async fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, String> {
        let submit = self.submit_sm(message)?;
        let (client, fresh) = self.session().await?;
        let answer = match client.submit_sm(submit.clone()).await {
            Err(error) if !fresh && dropped(&error) => {
                tracing::info!(gateway = self.id(), %error, "the SMPP session had dropped; binding again");
                self.forget(&client).await;
                let (client, _) = self.session().await?;
                client.submit_sm(submit).await
            }
            answer => answer,
        };
        match answer {
            Ok(response) => {
                let message_id = response.message_id().to_string();
                Ok(Accepted {
                    answer: format!("submit_sm_resp ESME_ROK, message id {message_id:?}"),
                    message_id: Some(message_id).filter(|id| !id.is_empty()),
                })
            }
            Err(error) => {
                if dropped(&error) {
                    self.forget(&client).await;
                }
                Err(format!("gateway {}: {}", self.id(), describe(&error)))
            }
        }
    }

    /// Unbinds and closes the session, if one is open (at shutdown).
    pub async fn unbind(&self) {
        let Some(client) = self.session.lock().await.take() else { return };
        let polite = async {
            let _ = client.unbind().await;
            let _ = client.close_and_wait().await;
        };
        let _ = tokio::time::timeout(self.gateway.timeout, polite).await;
    }

    /// The bound session, and whether it was opened just now.
    async fn session(&self) -> Result<(Client, bool), String> {
        let mut session = self.session.lock().await;
        if let Some(client) = session.as_ref().filter(|client| client.is_active()) {
            return Ok((client.clone(), false));
        }
        let client = tokio::time::timeout(self.gateway.timeout, self.bind())
            .await
            .map_err(|_| format!("gateway {}: no bind within {:?}", self.id(), self.gateway.timeout))??;
        *session = Some(client.clone());
        Ok((client, true))
    }

    /// Drops `client`'s session if it is still the current one.
    async fn forget(&self, client: &Client) {
        let mut session = self.session.lock().await;
        if session.as_ref().is_some_and(|current| !current.is_active() || !client.is_active()) {
            *session = None;
        }
        let _ = client.close().await;
    }

    async fn bind(&self) -> Result<Client, String> {
        let gateway = &self.gateway;
        let mut builder = ConnectionBuilder::new()
            .max_command_length(MAX_COMMAND_LENGTH)
            .enquire_link_interval(gateway.enquire_link)
            .enquire_link_response_timeout(gateway.timeout)
            .response_timeout(gateway.timeout)
            .disable_interface_version_check();
        if let Some(tls) = &self.tls {
            builder = builder.rustls_config(tls.clone());
        }
        let (client, events) = builder
            .connect(&gateway.url)
            .await
            .map_err(|error| format!("gateway {}: {}", gateway.id, describe(&error)))?;
        tokio::spawn(watch(gateway.id.clone(), client.clone(), events));
        let bind = BindTransmitter::builder()
            .system_id(c_octets(&gateway.system_id, "system_id", &gateway.id)?)
            .password(c_octets(gateway.password.expose(), "password", &gateway.id)?)
            .system_type(c_octets(&gateway.system_type, "system_type", &gateway.id)?)
            .interface_version(InterfaceVersion::Smpp3_4)
            .addr_ton(Ton::Unknown)
            .addr_npi(Npi::Unknown)
            .address_range(COctetString::empty())
            .build();
        if let Err(error) = client.bind_transmitter(bind).await {
            let _ = client.close().await;
            return Err(format!("gateway {}: bind_transmitter refused: {}", gateway.id, describe(&error)));
        }
        tracing::info!(gateway = gateway.id, "bound to the SMSC as a transmitter");
        Ok(client)
    }

    /// The `submit_sm` for `message`: to the E.164 number as an international ISDN address, from
    /// the configured sender, GSM 7-bit, valid until the code expires.
    fn submit_sm(&self, message: &Outgoing<'_>) -> Result<SubmitSm, String> {
        let id = &self.gateway.id;
        let source = &self.gateway.source;
        let destination = message.to.strip_prefix('+').unwrap_or(message.to);
        let validity = message.valid_for.map(relative_time).unwrap_or_default();
        let unencoded = SubmitSm::builder()
            .source_addr_ton(Ton::from(source.ton))
            .source_addr_npi(Npi::from(source.npi))
            .source_addr(c_octets(&source.address, "from", id)?)
            .dest_addr_ton(Ton::International)
            .dest_addr_npi(Npi::Isdn)
            .destination_addr(c_octets(destination, "the destination", id)?)
            .validity_period(
                EmptyOrFullCOctetString::from_str(&validity)
                    .map_err(|_| format!("gateway {id}: the validity period cannot be encoded"))?,
            )
            .build();
        unencoded
            .encode(message.text.expose())
            .gsm7bit_unpacked()
            .build()
            .map_err(|_| format!("gateway {id}: the message is not in the GSM 7-bit alphabet"))
    }
}

/// Reads the session's events until it closes: an SMSC's `unbind` is answered and the session
/// closed; background errors (a keep-alive that went unanswered) are logged.
async fn watch(id: String, client: Client, mut events: impl futures_util::Stream<Item = Event> + Unpin) {
    while let Some(event) = events.next().await {
        match event {
            Event::Incoming(command) if command.id() == CommandId::Unbind => {
                tracing::info!(gateway = id, "the SMSC unbound the session");
                let _ = client.unbind_resp(command.sequence_number()).await;
                let _ = client.close().await;
            }
            Event::Incoming(command) => {
                tracing::debug!(gateway = id, command = ?command.id(), "ignored a command from the SMSC");
            }
            Event::Error(error) => {
                tracing::warn!(gateway = id, error = %describe(&error), "the SMPP session failed");
            }
        }
    }
    tracing::debug!(gateway = id, "the SMPP session closed");
}

/// Whether `error` means the session is gone (so a fresh one may succeed).
fn dropped(error: &SmppError) -> bool {
    matches!(
        error,
        SmppError::ConnectionClosed
            | SmppError::ConnectionClosedByPeer
            | SmppError::Io(_)
            | SmppError::EnquireLinkTimeout { .. }
    )
}

/// `error` for the outbox and the logs: an SMSC's refusal by its command status name.
fn describe(error: &SmppError) -> String {
    match error {
        SmppError::UnexpectedResponse { response } => {
            format!("the SMSC answered {}", status_name(response.status))
        }
        SmppError::ResponseTimeout { timeout, .. } => format!("no answer within {timeout:?}"),
        SmppError::ConnectionClosedByPeer => "the SMSC closed the connection".into(),
        other => other.to_string(),
    }
}

/// `ESME_RTHROTTLED (0x00000058)`: the name SMPP 3.4 gives a command status, and its code.
fn status_name(status: CommandStatus) -> String {
    let code = u32::from(status);
    let name = match status {
        CommandStatus::Other(_) => "unknown status".to_owned(),
        known => {
            let debug = format!("{known:?}");
            debug.strip_prefix("Esme").map_or(debug.clone(), |rest| format!("ESME_{}", rest.to_uppercase()))
        }
    };
    format!("{name} (0x{code:08X})")
}

/// SMPP's relative time format, `YYMMDDhhmmss000R`, for `duration` (whole seconds, at least one).
fn relative_time(duration: Duration) -> String {
    let total = duration.as_secs().max(1);
    let (days, rest) = (total / 86_400, total % 86_400);
    let (hours, minutes, seconds) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let (years, days) = (days / 365, days % 365);
    let (months, days) = (days / 30, days % 30);
    format!("{years:02}{months:02}{days:02}{hours:02}{minutes:02}{seconds:02}000R")
}

fn c_octets<const MIN: usize, const MAX: usize>(
    value: &str,
    what: &str,
    gateway: &str,
) -> Result<COctetString<MIN, MAX>, String> {
    COctetString::from_str(value).map_err(|_| format!("gateway {gateway}: {what} does not fit an SMPP field"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_is_smpps_relative_time() {
        assert_eq!(relative_time(Duration::from_secs(300)), "000000000500000R");
        assert_eq!(relative_time(Duration::from_secs(99 * 60)), "000000013900000R");
        assert_eq!(relative_time(Duration::from_secs(0)), "000000000001000R");
        assert_eq!(relative_time(Duration::from_secs(2 * 86_400 + 1)), "000002000001000R");
    }

    #[test]
    fn a_refusal_is_named_as_smpp_names_it() {
        assert_eq!(status_name(CommandStatus::EsmeRthrottled), "ESME_RTHROTTLED (0x00000058)");
        assert_eq!(status_name(CommandStatus::EsmeRinvdstadr), "ESME_RINVDSTADR (0x0000000B)");
        assert_eq!(status_name(CommandStatus::Other(0x400)), "unknown status (0x00000400)");
    }
}
