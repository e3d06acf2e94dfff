//! The `[delivery]` section: SMS gateways tried in order, the cost-bearing limits, message
//! templates, real-time codes' default time to live and the Daycode clock. Everything is checked
//! when the server starts (templates in the GSM 7-bit alphabet and one segment long, gateway
//! secrets readable), so a mistake stops the start with a clear message instead of failing a login.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_core::delivery::{DeliveryMode, Template, Ttl};
use tessera_core::secret::SecretString;

use super::ConfigError;

/// The file's `[delivery]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDelivery {
    country_allowlist: Option<Vec<String>>,
    default_ttl_secs: Option<u32>,
    claim_secs: Option<u64>,
    #[serde(default)]
    limits: FileSendLimits,
    #[serde(default)]
    templates: FileTemplates,
    #[serde(default)]
    daycode: FileDaycode,
    #[serde(default)]
    sms_gateway: Vec<FileSmsGateway>,
    email: Option<FileEmail>,
    voice: Option<super::voice::FileVoice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEmail {
    url: String,
    tls: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    from: String,
    subject: Option<String>,
    ca_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
}

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587).
    Starttls,
    /// TLS from the first byte (`smtps://`, port 465).
    Implicit,
    /// No TLS: only to a mail server on this machine.
    None,
}

/// The mail server codes by email go through.
#[derive(Clone)]
pub struct EmailSettings {
    /// Host name (checked against its certificate).
    pub host: String,
    /// Port.
    pub port: u16,
    /// How the connection is protected.
    pub tls: EmailTls,
    /// SMTP AUTH user name and password (from `password_file`), when the server wants them.
    pub credentials: Option<(String, SecretString)>,
    /// The sender, as `Name <address>` or an address.
    pub from: String,
    /// The subject template (`{service}` only).
    pub subject: String,
    /// Extra CA certificates (PEM) trusted for the mail server.
    pub ca_file: Option<PathBuf>,
    /// How long one message may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSendLimits {
    window_secs: Option<i64>,
    per_user_per_window: Option<i64>,
    per_user_per_day: Option<i64>,
    per_destination_per_day: Option<i64>,
    global_per_hour: Option<i64>,
    cooldown_secs: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTemplates {
    realtime: Option<String>,
    preload: Option<String>,
    preload3: Option<String>,
    daycode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDaycode {
    time_zone: Option<String>,
    day_starts_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSmsGateway {
    id: String,
    kind: String,
    method: Option<String>,
    url: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
    json: Option<serde_json::Value>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    secret_file: Option<PathBuf>,
    success_status: Option<Vec<u16>>,
    success_body_contains: Option<String>,
    message_id_pointer: Option<String>,
    timeout_secs: Option<u64>,
    account_sid: Option<String>,
    auth_token_file: Option<PathBuf>,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    system_id: Option<String>,
    system_type: Option<String>,
    source_ton: Option<u8>,
    source_npi: Option<u8>,
    enquire_link_secs: Option<u64>,
    ca_file: Option<PathBuf>,
}

impl FileSmsGateway {
    /// The fields given that a gateway of this one's kind does not use.
    fn foreign_fields(&self) -> Vec<&'static str> {
        const HTTP: &[&str] = &["http"];
        const TWILIO: &[&str] = &["twilio"];
        const SMPP: &[&str] = &["smpp"];
        let fields: [(&str, bool, &[&str]); 18] = [
            ("method", self.method.is_some(), HTTP),
            ("params", !self.params.is_empty(), HTTP),
            ("json", self.json.is_some(), HTTP),
            ("headers", !self.headers.is_empty(), HTTP),
            ("secret_file", self.secret_file.is_some(), &["http", "smpp"]),
            ("success_status", self.success_status.is_some(), HTTP),
            ("success_body_contains", self.success_body_contains.is_some(), HTTP),
            ("message_id_pointer", self.message_id_pointer.is_some(), HTTP),
            ("account_sid", self.account_sid.is_some(), TWILIO),
            ("auth_token_file", self.auth_token_file.is_some(), TWILIO),
            ("from", self.from.is_some(), &["twilio", "smpp"]),
            ("messaging_service_sid", self.messaging_service_sid.is_some(), TWILIO),
            ("system_id", self.system_id.is_some(), SMPP),
            ("system_type", self.system_type.is_some(), SMPP),
            ("source_ton", self.source_ton.is_some(), SMPP),
            ("source_npi", self.source_npi.is_some(), SMPP),
            ("enquire_link_secs", self.enquire_link_secs.is_some(), SMPP),
            ("ca_file", self.ca_file.is_some(), SMPP),
        ];
        fields
            .into_iter()
            .filter(|(_, given, kinds)| *given && !kinds.contains(&self.kind.as_str()))
            .map(|(name, _, _)| name)
            .collect()
    }
}

/// Who a Twilio-compatible gateway sends as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioSender {
    /// A phone number or alphanumeric sender id (`From`).
    From(String),
    /// A messaging service (`MessagingServiceSid`), which picks the number.
    Service(String),
}

/// A Twilio-compatible SMS API (Twilio's Messages API, or a provider that speaks it): messages
/// are POSTed with HTTP Basic authentication, and the provider reports each message's fate to a
/// status callback signed with `X-Twilio-Signature`.
#[derive(Clone)]
pub struct TwilioGateway {
    /// Name in logs, the audit and the outbox.
    pub id: String,
    /// `https://api.twilio.com`, or a compatible provider's base URL.
    pub base_url: String,
    /// The account (`AC…`).
    pub account_sid: String,
    /// The account's auth token (Basic password and the callbacks' signing key).
    pub auth_token: SecretString,
    /// Who messages come from.
    pub sender: TwilioSender,
    /// Where the provider reports each message's status (this server's public URL).
    pub status_callback: String,
    /// How long one request may take.
    pub timeout: Duration,
}

/// An SMPP 3.4 connection to an SMSC: bound as a transmitter, kept open between messages with
/// `enquire_link`, and opened again when it drops.
#[derive(Clone)]
pub struct SmppGateway {
    /// Name in logs, the audit and the outbox.
    pub id: String,
    /// `smpp://host:port`, or `smpps://host:port` for TLS.
    pub url: String,
    /// The account the SMSC knows this server by (`system_id`, at most 15 characters).
    pub system_id: String,
    /// Its password (at most 8 characters, as SMPP 3.4 allows), read from `secret_file`.
    pub password: SecretString,
    /// The ESME type some SMSCs ask for (`system_type`, at most 12 characters).
    pub system_type: String,
    /// Who messages come from.
    pub source: SmppAddress,
    /// How often an idle connection is checked with `enquire_link`.
    pub enquire_link: Duration,
    /// An extra CA certificate (PEM) trusted for `smpps://`, beside the system's roots.
    pub ca_file: Option<PathBuf>,
    /// How long connecting, binding or one submit may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmppGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmppGateway")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("system_id", &self.system_id)
            .finish_non_exhaustive()
    }
}

/// An SMPP source address with its type of number and numbering plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmppAddress {
    /// The address: digits, or an alphanumeric sender id; empty lets the SMSC choose.
    pub address: String,
    /// Type of number (1 international, 5 alphanumeric, …).
    pub ton: u8,
    /// Numbering plan (1 ISDN/E.164, …).
    pub npi: u8,
}

impl SmppAddress {
    /// The address for `from`: `+` and digits are international E.164, digits alone a short code
    /// or national number, anything else an alphanumeric sender id (at most 11 characters);
    /// `ton` and `npi` override what the form implies.
    pub fn parse(from: Option<&str>, ton: Option<u8>, npi: Option<u8>) -> Result<Self, String> {
        let from = from.unwrap_or_default();
        let (address, implied) = if from.is_empty() {
            (String::new(), (0, 0))
        } else if let Some(digits) = from.strip_prefix('+') {
            if !(1..=20).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("from {from:?}: a number is + and 1 to 20 digits"));
            }
            (digits.to_owned(), (1, 1))
        } else if from.bytes().all(|b| b.is_ascii_digit()) {
            if from.len() > 20 {
                return Err(format!("from {from:?}: a number has at most 20 digits"));
            }
            (from.to_owned(), (0, 1))
        } else {
            if from.chars().count() > 11 || !from.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
                return Err(format!("from {from:?}: a sender name is at most 11 letters, digits and spaces"));
            }
            (from.to_owned(), (5, 0))
        };
        Ok(Self { address, ton: ton.unwrap_or(implied.0), npi: npi.unwrap_or(implied.1) })
    }
}

impl std::fmt::Debug for TwilioGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioGateway")
            .field("id", &self.id)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The cost-bearing limits on sending codes, counted in the database so they hold across
/// replicas (0 turns one off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimits {
    /// The per-user window, in seconds.
    pub window_secs: i64,
    /// Messages a user may be sent within the window.
    pub per_user_per_window: i64,
    /// Messages a user may be sent per day.
    pub per_user_per_day: i64,
    /// Messages one phone number or address may be sent per day.
    pub per_destination_per_day: i64,
    /// Messages the whole server may send per hour.
    pub global_per_hour: i64,
    /// Seconds after one message for a token before the user may ask for another.
    pub cooldown_secs: i64,
}

impl Default for SendLimits {
    /// 3 per 5 minutes and 10 a day per user, 10 a day per destination, 1,000 an hour in all,
    /// 30 seconds between sends a user asks for.
    fn default() -> Self {
        Self {
            window_secs: 300,
            per_user_per_window: 3,
            per_user_per_day: 10,
            per_destination_per_day: 10,
            global_per_hour: 1_000,
            cooldown_secs: 30,
        }
    }
}

/// How a generic HTTP gateway sends its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// Parameters in the query string (Kannel's `/cgi-bin/sendsms`).
    Get,
    /// Parameters as a form body, or the `json` template as a JSON body.
    Post,
}

/// A generic HTTP SMS gateway: a request template filled with `{phone}`, `{message}` and
/// `{secret}`, and the answer that counts as accepted.
#[derive(Clone)]
pub struct HttpGateway {
    /// Name in logs, the audit and the outbox.
    pub id: String,
    /// GET or POST.
    pub method: HttpMethod,
    /// The endpoint.
    pub url: String,
    /// Query or form parameters.
    pub params: BTreeMap<String, String>,
    /// A JSON body template (POST only); its strings are filled like `params`.
    pub json: Option<serde_json::Value>,
    /// Extra request headers, filled like `params`.
    pub headers: BTreeMap<String, String>,
    /// The secret read from `secret_file`.
    pub secret: Option<SecretString>,
    /// Statuses that mean accepted.
    pub success_status: Vec<u16>,
    /// Text the answer's body must contain to count as accepted.
    pub success_body_contains: Option<String>,
    /// Where the message id sits in a JSON answer (a JSON pointer such as `/sid`).
    pub message_id_pointer: Option<String>,
    /// How long one request may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for HttpGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpGateway").field("id", &self.id).field("url", &self.url).finish_non_exhaustive()
    }
}

/// An SMS gateway.
#[derive(Debug, Clone)]
pub enum SmsGateway {
    /// A generic HTTP gateway (Kannel, most SMS providers' REST APIs).
    Http(HttpGateway),
    /// Twilio's Messages API or a provider that speaks it.
    Twilio(TwilioGateway),
    /// An SMSC over SMPP 3.4.
    Smpp(SmppGateway),
}

impl SmsGateway {
    /// The gateway's id.
    pub fn id(&self) -> &str {
        match self {
            Self::Http(gateway) => &gateway.id,
            Self::Twilio(gateway) => &gateway.id,
            Self::Smpp(gateway) => &gateway.id,
        }
    }

    /// The longest one request to it may take.
    pub fn timeout(&self) -> Duration {
        match self {
            Self::Http(gateway) => gateway.timeout,
            Self::Twilio(gateway) => gateway.timeout,
            Self::Smpp(gateway) => gateway.timeout,
        }
    }
}

/// The message templates, one per mode.
#[derive(Debug, Clone)]
pub struct Templates {
    by_mode: [(DeliveryMode, Template); 4],
}

impl Templates {
    /// The template for `mode`.
    pub fn of(&self, mode: DeliveryMode) -> &Template {
        let index = DeliveryMode::ALL.iter().position(|m| *m == mode).unwrap_or(0);
        self.by_mode.get(index).map_or(&self.by_mode[0].1, |(_, template)| template)
    }
}

/// When a Daycode period starts: local midnight (or another time of day) in a time zone.
#[derive(Debug, Clone)]
pub struct DaycodeClock {
    /// The zone whose calendar days count.
    pub time_zone: jiff::tz::TimeZone,
    /// Seconds after local midnight at which a day begins.
    pub day_starts_at_secs: i64,
}

impl DaycodeClock {
    /// Days since 1970-01-01 on the local calendar, shifted by the day boundary.
    pub fn local_day(&self, unix_secs: u64) -> i64 {
        let seconds = i64::try_from(unix_secs).unwrap_or(i64::MAX);
        let Ok(now) = jiff::Timestamp::from_second(seconds) else { return 0 };
        let local = now.to_zoned(self.time_zone.clone()).datetime();
        let shifted =
            local.checked_sub(jiff::SignedDuration::from_secs(self.day_starts_at_secs)).unwrap_or(local);
        let epoch = jiff::civil::date(1970, 1, 1);
        epoch.until(shifted.date()).map(|span| i64::from(span.get_days())).unwrap_or(0)
    }
}

/// Delivered passcodes' settings.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// SMS gateways, tried in order.
    pub sms_gateways: Vec<SmsGateway>,
    /// Country calling code prefixes (`+44`) a code may be sent to; empty allows all.
    pub country_allowlist: Vec<String>,
    /// Real-time codes' time to live when the token sets none.
    pub default_ttl: Ttl,
    /// Cost-bearing limits.
    pub limits: SendLimits,
    /// Message templates.
    pub templates: Templates,
    /// The Daycode calendar.
    pub daycode: DaycodeClock,
    /// The mail server, when codes may be sent by email.
    pub email: Option<EmailSettings>,
    /// How voice-token calls are placed, when they may be.
    pub voice: Option<super::VoiceSettings>,
    /// How long a sender holds a message it took from the outbox; a sender that dies leaves it to
    /// another after this (longer than any send may take, so a slow send is never taken twice).
    pub claim_secs: u64,
}

const DEFAULT_TEMPLATES: [(DeliveryMode, &str); 4] = [
    (DeliveryMode::Realtime, "{code} is your {service} passcode. It expires in {ttl_minutes} min."),
    (DeliveryMode::Preload, "Your next {service} passcode: {code}. Keep this message for your next login."),
    (DeliveryMode::Preload3, "Your next {service} passcodes, one per login: {codes}"),
    (DeliveryMode::Daycode, "Your {service} passcode for today: {code}"),
];

impl FileDelivery {
    /// The effective settings; `service` is the name messages show (checked in GSM 7-bit too).
    pub(super) fn settings(self, service: &str, public_url: &str) -> Result<DeliverySettings, ConfigError> {
        let out_of_range = ConfigError::OutOfRange;
        let default_ttl = Ttl::new(self.default_ttl_secs.unwrap_or(tessera_core::delivery::DEFAULT_TTL_SECS))
            .map_err(|e| out_of_range(format!("delivery.default_ttl_secs: {e}")))?;
        let country_allowlist = self.country_allowlist.unwrap_or_default();
        if let Some(bad) = country_allowlist.iter().find(|p| {
            p.strip_prefix('+').is_none_or(|d| d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()))
        }) {
            return Err(out_of_range(format!(
                "delivery.country_allowlist: {bad:?} is not a calling code prefix such as \"+44\""
            )));
        }
        let sms_gateways = self
            .sms_gateway
            .into_iter()
            .map(|file| gateway(file, public_url))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ids: Vec<&str> = sms_gateways.iter().map(SmsGateway::id).collect();
        ids.sort_unstable();
        if let Some(twice) =
            ids.windows(2).find(|pair| pair.first() == pair.get(1)).and_then(|pair| pair.first())
        {
            return Err(out_of_range(format!("delivery.sms_gateway: the id {twice:?} is used twice")));
        }
        let email = self.email.map(email).transpose()?;
        let claim_secs = claim_secs(self.claim_secs, &sms_gateways, email.as_ref())?;
        Ok(DeliverySettings {
            claim_secs,
            sms_gateways,
            country_allowlist,
            default_ttl,
            limits: send_limits(&self.limits)?,
            templates: templates(self.templates, service)?,
            daycode: daycode_clock(self.daycode)?,
            email,
            voice: self.voice.map(|voice| voice.settings(public_url)).transpose()?,
        })
    }
}

/// Each mode's template (the file's, or the default), checked as an SMS: GSM 7-bit, one segment.
fn templates(file: FileTemplates, service: &str) -> Result<Templates, ConfigError> {
    let given = [file.realtime, file.preload, file.preload3, file.daycode];
    let mut by_mode = Vec::with_capacity(4);
    for ((mode, default), text) in DEFAULT_TEMPLATES.into_iter().zip(given) {
        let invalid = |e: tessera_core::delivery::DeliveryError| {
            ConfigError::OutOfRange(format!("delivery.templates.{}: {e}", mode.as_str()))
        };
        let template = Template::parse(text.as_deref().unwrap_or(default)).map_err(invalid)?;
        template.check_sms(usize::try_from(mode.batch()).unwrap_or(3), 10, service).map_err(invalid)?;
        by_mode.push((mode, template));
    }
    let by_mode = by_mode.try_into().map_err(|_| ConfigError::OutOfRange("delivery.templates".into()))?;
    Ok(Templates { by_mode })
}

/// The cost limits, each 0 (off) to 10,000,000.
fn send_limits(file: &FileSendLimits) -> Result<SendLimits, ConfigError> {
    let defaults = SendLimits::default();
    let limits = SendLimits {
        window_secs: file.window_secs.unwrap_or(defaults.window_secs),
        per_user_per_window: file.per_user_per_window.unwrap_or(defaults.per_user_per_window),
        per_user_per_day: file.per_user_per_day.unwrap_or(defaults.per_user_per_day),
        per_destination_per_day: file.per_destination_per_day.unwrap_or(defaults.per_destination_per_day),
        global_per_hour: file.global_per_hour.unwrap_or(defaults.global_per_hour),
        cooldown_secs: file.cooldown_secs.unwrap_or(defaults.cooldown_secs),
    };
    let values = [
        limits.window_secs,
        limits.per_user_per_window,
        limits.per_user_per_day,
        limits.per_destination_per_day,
        limits.global_per_hour,
        limits.cooldown_secs,
    ];
    if values.iter().any(|v| !(0..=10_000_000).contains(v)) {
        return Err(ConfigError::OutOfRange("delivery.limits: every limit must be 0 to 10000000".into()));
    }
    Ok(limits)
}

/// How long a sender holds a message: longer than the slowest send (the SMS gateways' timeouts in
/// turn, or the mail server's), at most an hour.
fn claim_secs(
    given: Option<u64>,
    gateways: &[SmsGateway],
    email: Option<&EmailSettings>,
) -> Result<u64, ConfigError> {
    let slowest_send = gateways
        .iter()
        .map(|gateway| gateway.timeout().as_secs())
        .sum::<u64>()
        .max(email.map_or(0, |e| e.timeout.as_secs()));
    let claim_secs = given.unwrap_or(60);
    if claim_secs <= slowest_send || claim_secs > 3600 {
        return Err(ConfigError::OutOfRange(format!(
            "delivery.claim_secs must be above the longest a send may take ({slowest_send} s: the gateways' \
             timeouts in turn, or the mail server's) and at most 3600"
        )));
    }
    Ok(claim_secs)
}

fn email(file: FileEmail) -> Result<EmailSettings, ConfigError> {
    let bad = |message: String| ConfigError::OutOfRange(format!("delivery.email: {message}"));
    let url = reqwest::Url::parse(&file.url).map_err(|e| bad(format!("url {:?}: {e}", file.url)))?;
    let implicit = match url.scheme() {
        "smtp" => false,
        "smtps" => true,
        other => return Err(bad(format!("url must be smtp:// or smtps://, not {other}://"))),
    };
    let host =
        url.host_str().ok_or_else(|| bad("url has no host".into()))?.trim_matches(['[', ']']).to_owned();
    let tls = match (file.tls.as_deref(), implicit) {
        (Some("tls") | None, true) => EmailTls::Implicit,
        (Some("starttls") | None, false) => EmailTls::Starttls,
        (Some("none"), false) => EmailTls::None,
        (Some(other), _) => {
            return Err(bad(format!(
                "tls = {other:?} does not fit {}: use \"starttls\" with smtp://, \"tls\" with smtps://, or \"none\" with smtp:// to this machine",
                file.url
            )));
        }
    };
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if tls == EmailTls::None && !loopback {
        return Err(bad(format!(
            "tls = \"none\" sends codes and passwords in the clear: it is allowed only to a mail server on this machine, not {host}"
        )));
    }
    let port = url.port().unwrap_or(if implicit { 465 } else { 587 });
    let credentials = match (file.username, file.password_file) {
        (Some(user), Some(path)) => Some((user, read_secret(&path).map_err(bad)?)),
        (None, None) => None,
        _ => return Err(bad("username and password_file go together".into())),
    };
    let from = file.from.trim().to_owned();
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(bad(format!("from = {from:?} is not an address such as \"Tessera <2fa@example.com>\"")));
    }
    let subject = file.subject.unwrap_or_else(|| "Your {service} passcode".into());
    if subject.chars().any(char::is_control) || subject.chars().count() > 200 {
        return Err(bad("subject must be one line of at most 200 characters".into()));
    }
    let timeout_secs = file.timeout_secs.unwrap_or(10);
    if !(1..=60).contains(&timeout_secs) {
        return Err(bad("timeout_secs must be 1 to 60".into()));
    }
    Ok(EmailSettings {
        host,
        port,
        tls,
        credentials,
        from,
        subject,
        ca_file: file.ca_file,
        timeout: Duration::from_secs(timeout_secs),
    })
}

fn daycode_clock(file: FileDaycode) -> Result<DaycodeClock, ConfigError> {
    let zone = file.time_zone.unwrap_or_else(|| "UTC".into());
    let time_zone = jiff::tz::TimeZone::get(&zone).map_err(|e| {
        ConfigError::OutOfRange(format!(
            "delivery.daycode.time_zone: {zone:?} is not a known time zone ({e})"
        ))
    })?;
    let boundary = file.day_starts_at.unwrap_or_else(|| "00:00".into());
    let time: jiff::civil::Time = boundary.parse().map_err(|_| {
        ConfigError::OutOfRange(format!(
            "delivery.daycode.day_starts_at: {boundary:?} is not a time such as \"04:00\""
        ))
    })?;
    let day_starts_at_secs =
        i64::from(time.hour()) * 3600 + i64::from(time.minute()) * 60 + i64::from(time.second());
    Ok(DaycodeClock { time_zone, day_starts_at_secs })
}

/// The path of the Twilio-compatible status callback, under the server's public URL.
pub const TWILIO_STATUS_PATH: &str = "/api/v1/sms/twilio/status";

fn gateway(file: FileSmsGateway, public_url: &str) -> Result<SmsGateway, ConfigError> {
    let field = format!("delivery.sms_gateway {:?}", file.id);
    let bad = |message: &str| ConfigError::OutOfRange(format!("{field}: {message}"));
    if file.id.is_empty()
        || file.id.len() > 64
        || file.id.chars().any(|c| c.is_control() || c.is_whitespace())
        || file.id == "email"
    {
        return Err(bad("id must be 1 to 64 characters without spaces, and not \"email\""));
    }
    let timeout_secs = file.timeout_secs.unwrap_or(5);
    if !(1..=60).contains(&timeout_secs) {
        return Err(bad("timeout_secs must be 1 to 60"));
    }
    if !matches!(file.kind.as_str(), "http" | "twilio" | "smpp") {
        return Err(bad(&format!(
            "kind {:?} is not supported: use \"http\", \"twilio\" or \"smpp\"",
            file.kind
        )));
    }
    let foreign = file.foreign_fields();
    if !foreign.is_empty() {
        return Err(bad(&format!("{} not used by {} gateways", foreign.join(", "), file.kind)));
    }
    match file.kind.as_str() {
        "http" => http_gateway(file, &bad, timeout_secs),
        "twilio" => twilio_gateway(file, &bad, timeout_secs, public_url),
        _ => smpp_gateway(file, &bad, timeout_secs),
    }
}

fn twilio_gateway(
    file: FileSmsGateway,
    bad: &dyn Fn(&str) -> ConfigError,
    timeout_secs: u64,
    public_url: &str,
) -> Result<SmsGateway, ConfigError> {
    let account_sid = file.account_sid.ok_or_else(|| bad("a twilio gateway needs account_sid"))?;
    if account_sid.is_empty() || !account_sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad("account_sid must be letters and digits (AC…)"));
    }
    let path = file.auth_token_file.ok_or_else(|| bad("a twilio gateway needs auth_token_file"))?;
    let auth_token = read_secret(&path).map_err(|e| bad(&e))?;
    let sender = match (file.from, file.messaging_service_sid) {
        (Some(from), None) => TwilioSender::From(from),
        (None, Some(service)) => TwilioSender::Service(service),
        _ => return Err(bad("give exactly one of from and messaging_service_sid")),
    };
    let base_url =
        file.url.unwrap_or_else(|| "https://api.twilio.com".into()).trim_end_matches('/').to_owned();
    let parsed = reqwest::Url::parse(&base_url).map_err(|e| bad(&format!("url {base_url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("url must be http:// or https://"));
    }
    Ok(SmsGateway::Twilio(TwilioGateway {
        id: file.id,
        base_url,
        account_sid,
        auth_token,
        sender,
        status_callback: format!("{}{TWILIO_STATUS_PATH}", public_url.trim_end_matches('/')),
        timeout: Duration::from_secs(timeout_secs),
    }))
}

fn http_gateway(
    file: FileSmsGateway,
    bad: &dyn Fn(&str) -> ConfigError,
    timeout_secs: u64,
) -> Result<SmsGateway, ConfigError> {
    let url = file.url.ok_or_else(|| bad("an http gateway needs url"))?;
    let method = match file.method.as_deref().unwrap_or("POST") {
        "GET" | "get" => HttpMethod::Get,
        "POST" | "post" => HttpMethod::Post,
        other => return Err(bad(&format!("method {other:?} must be GET or POST"))),
    };
    if method == HttpMethod::Get && file.json.is_some() {
        return Err(bad("a json body needs method = \"POST\""));
    }
    let parsed = reqwest::Url::parse(&url).map_err(|e| bad(&format!("url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("url must be http:// or https://"));
    }
    let secret = file.secret_file.as_deref().map(read_secret).transpose().map_err(|e| bad(&e))?;
    let uses_secret = file.params.values().chain(file.headers.values()).any(|v| v.contains("{secret}"))
        || file.json.as_ref().is_some_and(|json| json.to_string().contains("{secret}"));
    if uses_secret && secret.is_none() {
        return Err(bad("{secret} is used but no secret_file is given"));
    }
    let success_status = file.success_status.unwrap_or_else(|| vec![200, 201, 202]);
    if success_status.is_empty() || success_status.iter().any(|s| !(100..=599).contains(s)) {
        return Err(bad("success_status must list HTTP statuses (100 to 599)"));
    }
    Ok(SmsGateway::Http(HttpGateway {
        id: file.id,
        method,
        url,
        params: file.params,
        json: file.json,
        headers: file.headers,
        secret,
        success_status,
        success_body_contains: file.success_body_contains,
        message_id_pointer: file.message_id_pointer,
        timeout: Duration::from_secs(timeout_secs),
    }))
}

fn smpp_gateway(
    file: FileSmsGateway,
    bad: &dyn Fn(&str) -> ConfigError,
    timeout_secs: u64,
) -> Result<SmsGateway, ConfigError> {
    let url = file.url.ok_or_else(|| bad("an smpp gateway needs url (smpp://host:2775)"))?;
    let parsed = reqwest::Url::parse(&url).map_err(|e| bad(&format!("url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "smpp" | "smpps") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("url must be smpp://host:port, or smpps://host:port for TLS"));
    }
    let ascii_up_to = |value: &str, most: usize| {
        value.len() <= most && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    };
    let system_id = file.system_id.ok_or_else(|| bad("an smpp gateway needs system_id"))?;
    if system_id.is_empty() || !ascii_up_to(&system_id, 15) {
        return Err(bad("system_id must be 1 to 15 ASCII characters"));
    }
    let system_type = file.system_type.unwrap_or_default();
    if !ascii_up_to(&system_type, 12) {
        return Err(bad("system_type must be at most 12 ASCII characters"));
    }
    let path = file.secret_file.ok_or_else(|| bad("an smpp gateway needs secret_file (its password)"))?;
    let password = read_secret(&path).map_err(|e| bad(&e))?;
    if !ascii_up_to(password.expose(), 8) {
        return Err(bad("the password in secret_file must be at most 8 ASCII characters (SMPP 3.4)"));
    }
    let source =
        SmppAddress::parse(file.from.as_deref(), file.source_ton, file.source_npi).map_err(|e| bad(&e))?;
    let enquire_link_secs = file.enquire_link_secs.unwrap_or(30);
    if !(1..=3600).contains(&enquire_link_secs) {
        return Err(bad("enquire_link_secs must be 1 to 3600"));
    }
    if let Some(path) = &file.ca_file {
        std::fs::metadata(path).map_err(|e| bad(&format!("ca_file {}: {e}", path.display())))?;
    }
    Ok(SmsGateway::Smpp(SmppGateway {
        id: file.id,
        url,
        system_id,
        password,
        system_type,
        source,
        enquire_link: Duration::from_secs(enquire_link_secs),
        ca_file: file.ca_file,
        timeout: Duration::from_secs(timeout_secs),
    }))
}

/// A secret file's first line.
pub(super) fn read_secret(path: &Path) -> Result<SecretString, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.lines().next().unwrap_or_default().trim().to_owned();
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(SecretString::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(zone: &str, starts: &str) -> DaycodeClock {
        daycode_clock(FileDaycode { time_zone: Some(zone.into()), day_starts_at: Some(starts.into()) })
            .unwrap()
    }

    #[test]
    fn a_local_day_follows_the_zone_and_the_boundary() {
        let utc = clock("UTC", "00:00");
        assert_eq!(utc.local_day(86_400 * 20_000), 20_000);
        assert_eq!(utc.local_day(86_400 * 20_000 - 1), 19_999);
        let london_at_four = clock("Europe/London", "04:00");
        let three_am_in_london = 1_751_328_000 + 2 * 3600;
        assert_eq!(london_at_four.local_day(three_am_in_london), utc.local_day(three_am_in_london) - 1);
        assert!(
            daycode_clock(FileDaycode { time_zone: Some("Mars/Olympus".into()), day_starts_at: None })
                .is_err()
        );
    }

    fn email_config(url: &str, tls: Option<&str>) -> Result<EmailSettings, ConfigError> {
        email(FileEmail {
            url: url.into(),
            tls: tls.map(Into::into),
            username: None,
            password_file: None,
            from: "Tessera <2fa@example.com>".into(),
            subject: None,
            ca_file: None,
            timeout_secs: None,
        })
    }

    #[test]
    fn plain_smtp_is_allowed_only_to_this_machine_and_tls_must_fit_the_url() {
        let error = email_config("smtp://mail.example.com:25", Some("none")).unwrap_err().to_string();
        assert!(error.contains("in the clear") && error.contains("mail.example.com"), "{error}");
        assert_eq!(email_config("smtp://127.0.0.1:2525", Some("none")).unwrap().tls, EmailTls::None);
        let starttls = email_config("smtp://mail.example.com", None).unwrap();
        assert_eq!((starttls.tls, starttls.port), (EmailTls::Starttls, 587));
        let implicit = email_config("smtps://mail.example.com", None).unwrap();
        assert_eq!((implicit.tls, implicit.port), (EmailTls::Implicit, 465));
        assert!(email_config("smtps://mail.example.com", Some("starttls")).is_err());
        assert!(email_config("http://mail.example.com", None).is_err());
    }

    #[test]
    fn a_claim_must_outlast_the_slowest_send() {
        let gateway = |id: &str| FileSmsGateway {
            id: id.into(),
            kind: "http".into(),
            method: Some("GET".into()),
            url: Some("http://127.0.0.1:13013/cgi-bin/sendsms".into()),
            timeout_secs: Some(5),
            ..FileSmsGateway::default()
        };
        let file = |claim_secs| FileDelivery {
            claim_secs: Some(claim_secs),
            sms_gateway: vec![gateway("a"), gateway("b")],
            ..FileDelivery::default()
        };
        let error = file(10).settings("Tessera", "https://auth.example.com").unwrap_err().to_string();
        assert!(error.contains("delivery.claim_secs") && error.contains("10 s"), "{error}");
        assert_eq!(file(11).settings("Tessera", "https://auth.example.com").unwrap().claim_secs, 11);
    }

    #[test]
    fn templates_outside_gsm7_or_one_segment_stop_the_start() {
        let file = FileDelivery {
            templates: FileTemplates { preload3: Some("✓ {codes}".into()), ..FileTemplates::default() },
            ..FileDelivery::default()
        };
        let error = file.settings("Tessera", "https://auth.example.com").unwrap_err().to_string();
        assert!(error.contains("delivery.templates.preload3") && error.contains("GSM 7-bit"), "{error}");
    }

    fn smpp(password: &str, edit: impl FnOnce(&mut FileSmsGateway)) -> Result<SmppGateway, String> {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("smpp.pw");
        std::fs::write(&secret, format!("{password}\n")).unwrap();
        let mut file = FileSmsGateway {
            id: "smsc".into(),
            kind: "smpp".into(),
            url: Some("smpp://127.0.0.1:2775".into()),
            system_id: Some("tessera".into()),
            secret_file: Some(secret),
            ..FileSmsGateway::default()
        };
        edit(&mut file);
        match gateway(file, "https://auth.example.com").map_err(|e| e.to_string())? {
            SmsGateway::Smpp(smpp) => Ok(smpp),
            other => Err(format!("not an smpp gateway: {other:?}")),
        }
    }

    #[test]
    fn an_smpp_gateway_is_checked_against_smpp_3_4s_limits() {
        let smsc = smpp("s3cret", |_| {}).unwrap();
        assert_eq!((smsc.system_id.as_str(), smsc.password.expose()), ("tessera", "s3cret"));
        assert_eq!(smsc.source, SmppAddress::default());
        assert_eq!(smsc.enquire_link, Duration::from_secs(30));
        let refused = [
            (smpp("ninechars", |_| {}), "at most 8"),
            (smpp("pw", |f| f.url = Some("http://127.0.0.1:2775".into())), "smpp://host:port"),
            (smpp("pw", |f| f.system_id = Some("a-system-id-of-16".into())), "1 to 15"),
            (smpp("pw", |f| f.system_id = None), "needs system_id"),
            (smpp("pw", |f| f.secret_file = None), "needs secret_file"),
            (smpp("pw", |f| f.from = Some("Tessera Login".into())), "at most 11"),
            (smpp("pw", |f| f.enquire_link_secs = Some(0)), "1 to 3600"),
            (
                smpp("pw", |f| {
                    f.params.insert("to".into(), "{phone}".into());
                }),
                "params not used by smpp",
            ),
            (smpp("pw", |f| f.ca_file = Some("/nonexistent/ca.pem".into())), "ca_file /nonexistent/ca.pem"),
        ];
        for (result, expected) in refused {
            let error = result.map(|g| g.id).unwrap_err();
            assert!(error.contains("delivery.sms_gateway \"smsc\"") && error.contains(expected), "{error}");
        }
    }

    #[test]
    fn an_smpp_sender_is_a_number_or_a_name_with_the_type_it_implies() {
        let parse = |from: &str| SmppAddress::parse(Some(from), None, None);
        assert_eq!(
            parse("+447700900100").unwrap(),
            SmppAddress { address: "447700900100".into(), ton: 1, npi: 1 }
        );
        assert_eq!(parse("60010").unwrap(), SmppAddress { address: "60010".into(), ton: 0, npi: 1 });
        assert_eq!(parse("Tessera").unwrap(), SmppAddress { address: "Tessera".into(), ton: 5, npi: 0 });
        assert_eq!(SmppAddress::parse(Some("60010"), Some(3), Some(0)).unwrap().ton, 3);
        assert!(parse("+44 7700").unwrap_err().contains("digits"));
        assert!(parse("Tëssera").unwrap_err().contains("letters"));
    }

    #[test]
    fn a_field_of_another_kind_of_gateway_is_named_in_the_error() {
        let file = FileSmsGateway {
            id: "kannel".into(),
            kind: "http".into(),
            url: Some("http://127.0.0.1:13013/cgi-bin/sendsms".into()),
            system_id: Some("tessera".into()),
            from: Some("Tessera".into()),
            ..FileSmsGateway::default()
        };
        let error = gateway(file, "https://auth.example.com").unwrap_err().to_string();
        assert!(error.contains("from, system_id not used by http gateways"), "{error}");
    }
}
