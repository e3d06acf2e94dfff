//! Codes by email through an SMTP server (lettre over rustls): STARTTLS required or TLS from the
//! first byte, the platform's CA roots plus an optional extra CA, AUTH when configured; plain SMTP
//! only to a mail server on this machine (the configuration refuses anything else). The server's
//! answer is kept as the message id; errors never carry the message, the code or the password.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tessera_core::secret::SecretString;

use super::gateway::Outgoing;
use crate::config::{EmailSettings, EmailTls};

/// Characters of the mail server's answer kept as the message id.
const MAX_ANSWER_CHARS: usize = 128;

/// A connection pool to the mail server and the sender's address.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    subject: String,
    password: Option<SecretString>,
}

impl Mailer {
    /// The pool for `settings` (nothing connects until the first message).
    pub fn new(settings: &EmailSettings) -> Result<Self, String> {
        let mut parameters = TlsParameters::builder(settings.host.clone());
        if let Some(path) = &settings.ca_file {
            let pem =
                std::fs::read(path).map_err(|e| format!("delivery.email.ca_file {}: {e}", path.display()))?;
            let certificate = Certificate::from_pem(&pem).map_err(|e| {
                format!("delivery.email.ca_file {}: not a PEM certificate: {e}", path.display())
            })?;
            parameters = parameters.add_root_certificate(certificate);
        }
        let parameters = parameters.build_rustls().map_err(|e| format!("delivery.email: TLS: {e}"))?;
        let tls = match settings.tls {
            EmailTls::Starttls => Tls::Required(parameters),
            EmailTls::Implicit => Tls::Wrapper(parameters),
            EmailTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
            .port(settings.port)
            .timeout(Some(settings.timeout))
            .tls(tls);
        if let Some((user, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        let from = settings.from.parse().map_err(|e| format!("delivery.email.from: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
            subject: settings.subject.clone(),
            password: settings.credentials.as_ref().map(|(_, password)| password.clone()),
        })
    }

    /// Sends one message; the mail server's answer ("2.0.0 Ok: queued as …").
    pub async fn send(&self, message: &Outgoing<'_>, service: &str) -> Result<Option<String>, String> {
        let redact = |text: String| message.redact(&text, self.password.as_ref().map(SecretString::expose));
        let to: Mailbox = message.to.parse().map_err(|e| format!("email address {}: {e}", message.to))?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.unwrap_or(&self.subject).replace("{service}", service))
            .header(ContentType::TEXT_PLAIN)
            .body(message.text.expose().to_owned())
            .map_err(|e| redact(format!("the message could not be built: {e}")))?;
        let answer = self.transport.send(email).await.map_err(|e| redact(format!("mail server: {e}")))?;
        let text: String =
            answer.message().collect::<Vec<_>>().join(" ").chars().take(MAX_ANSWER_CHARS).collect();
        Ok(Some(text).filter(|t| !t.is_empty()))
    }
}
