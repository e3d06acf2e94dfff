//! Delivered passcodes: codes the server sends by SMS or email to a user who has no app, and the
//! rules that decide which codes a delivered token accepts and which it sends next.
//!
//! A delivered token is an HOTP token whose seed only the server knows. Its mode decides when codes
//! are sent and which are accepted:
//! - [`DeliveryMode::Realtime`]: one fresh code per login, valid only inside that login's challenge
//!   for its time to live;
//! - [`DeliveryMode::Preload`] and [`DeliveryMode::Preload3`]: the next code (or the next three) is
//!   already on the phone before the login, sent when the previous one was used; a code that was
//!   never sent can never be accepted, as the look-ahead window stops at the last code sent;
//! - [`DeliveryMode::Daycode`]: one reusable code per period of days.
//!
//! Also here: message templates (SMS text must stay in the GSM 7-bit alphabet so that three codes
//! fit one 160-character segment), phone numbers (E.164) and email addresses checked on entry, and
//! the masked form of a destination that a login screen may show.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::otp::{Algorithm, Digits, hotp};
use crate::secret::{SecretBytes, SecretString};

/// Shortest time to live of a real-time code, in seconds (one minute).
pub const MIN_TTL_SECS: u32 = 60;
/// Longest time to live of a real-time code, in seconds (99 minutes).
pub const MAX_TTL_SECS: u32 = 99 * 60;
/// A real-time code's time to live when neither the token nor the user sets one (five minutes).
pub const DEFAULT_TTL_SECS: u32 = 5 * 60;
/// Wrong tries a real-time challenge takes before it is void.
pub const CHALLENGE_TRIES: u32 = 3;
/// Longest Daycode period, in days.
pub const MAX_PERIOD_DAYS: u32 = 31;
/// Characters in one GSM 7-bit SMS segment.
pub const SMS_SEGMENT_CHARS: usize = 160;

/// When a delivered token's codes are sent and which it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// A fresh code at each login, valid inside that login's challenge for its time to live.
    Realtime,
    /// The next code is sent when the last one is used.
    Preload,
    /// Three codes per message; the next three when the last of them is used.
    Preload3,
    /// One reusable code per period of days, sent at the first login of the period.
    Daycode,
}

impl DeliveryMode {
    /// Every mode.
    pub const ALL: [Self; 4] = [Self::Realtime, Self::Preload, Self::Preload3, Self::Daycode];

    /// The name stored and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Realtime => "realtime",
            Self::Preload => "preload",
            Self::Preload3 => "preload3",
            Self::Daycode => "daycode",
        }
    }

    /// The mode a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == name)
    }

    /// Codes per message.
    pub fn batch(self) -> u64 {
        match self {
            Self::Preload3 => 3,
            Self::Realtime | Self::Preload | Self::Daycode => 1,
        }
    }

    /// Whether codes are sent ahead of the login that uses them.
    pub fn is_preloaded(self) -> bool {
        matches!(self, Self::Preload | Self::Preload3)
    }
}

/// Which counters a delivered token accepts now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Pre-loaded codes: the counters sent and not yet used or voided (empty when none is out).
    Sent(Range<u64>),
    /// A real-time challenge's one counter.
    Challenge(u64),
    /// The Daycode of this period: reusable until the period ends.
    Period(u64),
}

/// The counters a pre-loaded token accepts: from the next unused counter up to the last one sent.
pub fn preloaded_window(next_counter: u64, issued_upto: u64) -> Accepted {
    Accepted::Sent(next_counter..issued_upto.max(next_counter))
}

/// The codes to send after a pre-loaded code was accepted: the next batch once every code sent
/// has been used, nothing while some are still on the phone.
pub fn batch_after_use(mode: DeliveryMode, next_counter: u64, issued_upto: u64) -> Option<Range<u64>> {
    (mode.is_preloaded() && next_counter >= issued_upto).then(|| fresh_batch(mode, next_counter))
}

/// A fresh batch that starts at `from` (the first send, or "send me new codes", which voids the
/// unused codes by moving the next counter to `from`).
pub fn fresh_batch(mode: DeliveryMode, from: u64) -> Range<u64> {
    from..from.saturating_add(mode.batch())
}

/// The Daycode period a local day falls in: `local_day` counts days since 1970-01-01 in the
/// server's time zone, already shifted by the configured day boundary.
pub fn daycode_period(local_day: i64, period_days: u32) -> u64 {
    let days = u64::try_from(local_day).unwrap_or(0);
    days / u64::from(period_days.clamp(1, MAX_PERIOD_DAYS))
}

/// The codes for `counters`, in order.
pub fn codes(
    secret: &SecretBytes,
    algorithm: Algorithm,
    digits: Digits,
    counters: Range<u64>,
) -> Vec<SecretString> {
    counters
        .map(|counter| SecretString::new(hotp(secret, algorithm, digits, counter).expose().to_owned()))
        .collect()
}

/// A checked time to live for real-time codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl(u32);

impl Ttl {
    /// Accepts 60 to 5,940 seconds (1 to 99 minutes).
    pub fn new(secs: u32) -> Result<Self, DeliveryError> {
        if (MIN_TTL_SECS..=MAX_TTL_SECS).contains(&secs) {
            Ok(Self(secs))
        } else {
            Err(DeliveryError::Ttl(secs))
        }
    }

    /// Seconds.
    pub fn secs(self) -> u32 {
        self.0
    }

    /// Whole minutes, rounded up, as a message shows them.
    pub fn minutes(self) -> u32 {
        self.0.div_ceil(60)
    }
}

impl Default for Ttl {
    fn default() -> Self {
        Self(DEFAULT_TTL_SECS)
    }
}

/// Why a delivery setting, destination or template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// A time to live outside 1–99 minutes.
    #[error("a code's time to live must be 60 to 5940 seconds (1 to 99 minutes), not {0}")]
    Ttl(u32),
    /// A Daycode period outside 1–31 days.
    #[error("a Daycode period must be 1 to 31 days, not {0}")]
    PeriodDays(u32),
    /// Not an E.164 phone number.
    #[error("a phone number must be in international form: + and 7 to 15 digits, as in +447700900123")]
    Phone,
    /// Not an email address.
    #[error("not an email address: it must look like name@example.com, without spaces")]
    Email,
    /// A template names a placeholder that does not exist.
    #[error(
        "the message template has an unknown placeholder {{{0}}}: use {{code}}, {{codes}}, {{ttl_minutes}} or {{service}}"
    )]
    Placeholder(String),
    /// A template has no placeholder for the code.
    #[error("the message template must contain {{code}} or {{codes}}")]
    NoCode,
    /// An SMS template uses a character outside the GSM 7-bit alphabet.
    #[error(
        "the SMS template has {0:?}, which is not in the GSM 7-bit alphabet (it would split the message)"
    )]
    NotGsm7(char),
    /// A rendered SMS would take more than one segment.
    #[error("the SMS template can make a message of {0} characters; one SMS holds 160")]
    TooLong(usize),
}

/// Checks a Daycode period.
pub fn check_period_days(days: u32) -> Result<u32, DeliveryError> {
    if (1..=MAX_PERIOD_DAYS).contains(&days) { Ok(days) } else { Err(DeliveryError::PeriodDays(days)) }
}

/// A phone number in E.164 form (`+` and 7 to 15 digits; spaces, dots, dashes and brackets in the
/// input are dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses `+44 7700 900123`, `+44-7700-900123` or `+447700900123`.
    pub fn parse(text: &str) -> Result<Self, DeliveryError> {
        let kept: String = text.chars().filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')')).collect();
        let digits = kept.strip_prefix('+').ok_or(DeliveryError::Phone)?;
        let valid = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if valid { Ok(Self(kept)) } else { Err(DeliveryError::Phone) }
    }

    /// `+447700900123`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The country calling code's digits (1 to 3, from the ITU assignment's length rules).
    pub fn country_code(&self) -> &str {
        let digits = self.0.get(1..).unwrap_or_default();
        let length = country_code_length(digits);
        digits.get(..length).unwrap_or(digits)
    }

    /// The form a login screen shows: the country code and the last three digits
    /// (`+44 ••• ••123`).
    pub fn masked(&self) -> String {
        let tail = self.0.get(self.0.len().saturating_sub(3)..).unwrap_or_default();
        format!("+{} ••• ••{tail}", self.country_code())
    }
}

/// Length of the country calling code that starts `digits` (E.164 codes are prefix-free).
fn country_code_length(digits: &str) -> usize {
    const TWO_DIGIT: [&str; 44] = [
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48",
        "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81",
        "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else if TWO_DIGIT.iter().any(|code| digits.starts_with(code)) {
        2
    } else {
        3
    }
}

/// An email address, checked for the shape `local@domain` without spaces or control characters
/// (the mail transport checks it again when it sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses `ann@example.com`.
    pub fn parse(text: &str) -> Result<Self, DeliveryError> {
        let text = text.trim();
        let (local, domain) = text.rsplit_once('@').ok_or(DeliveryError::Email)?;
        let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"');
        let valid = !local.is_empty()
            && local.len() <= 64
            && text.len() <= 254
            && !text.chars().any(bad)
            && domain.contains('.')
            && !domain.contains('@')
            && domain
                .split('.')
                .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        if valid { Ok(Self(text.to_owned())) } else { Err(DeliveryError::Email) }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form a login screen shows: the first character and the domain (`a•••@example.com`).
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}•••@{domain}")
    }
}

/// The values a message template is filled with.
pub struct MessageValues<'a> {
    /// The codes the message carries, in the order they will be used.
    pub codes: &'a [SecretString],
    /// Real-time codes: the time to live.
    pub ttl: Option<Ttl>,
    /// The name of the service the code logs in to.
    pub service: &'a str,
}

/// A message template with `{code}`, `{codes}`, `{ttl_minutes}` and `{service}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

/// The placeholders a template may use.
const PLACEHOLDERS: [&str; 4] = ["code", "codes", "ttl_minutes", "service"];

impl Template {
    /// Checks that every placeholder exists and one carries the code.
    pub fn parse(text: &str) -> Result<Self, DeliveryError> {
        let mut has_code = false;
        for name in placeholders(text) {
            if !PLACEHOLDERS.contains(&name) {
                return Err(DeliveryError::Placeholder(name.to_owned()));
            }
            has_code |= matches!(name, "code" | "codes");
        }
        if has_code { Ok(Self(text.to_owned())) } else { Err(DeliveryError::NoCode) }
    }

    /// Checks the template as an SMS: GSM 7-bit characters only, and one segment when filled with
    /// `batch` codes of `digits` digits, a 99-minute time to live and `service`.
    pub fn check_sms(&self, batch: usize, digits: usize, service: &str) -> Result<(), DeliveryError> {
        if let Some(bad) = self.0.chars().chain(service.chars()).find(|c| !is_gsm7(*c)) {
            return Err(DeliveryError::NotGsm7(bad));
        }
        let codes = vec![SecretString::new("9".repeat(digits)); batch];
        let longest = MessageValues { codes: &codes, ttl: Ttl::new(MAX_TTL_SECS).ok(), service };
        let length = gsm7_length(self.render(&longest).expose());
        if length > SMS_SEGMENT_CHARS { Err(DeliveryError::TooLong(length)) } else { Ok(()) }
    }

    /// The message, filled in.
    pub fn render(&self, values: &MessageValues<'_>) -> SecretString {
        let mut out = String::with_capacity(self.0.len() + 32);
        let mut rest = self.0.as_str();
        while let Some(start) = rest.find('{') {
            out.push_str(rest.get(..start).unwrap_or_default());
            let after = rest.get(start + 1..).unwrap_or_default();
            match after.find('}') {
                Some(end) => {
                    let name = after.get(..end).unwrap_or_default();
                    fill(&mut out, name, values);
                    rest = after.get(end + 1..).unwrap_or_default();
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        SecretString::new(out)
    }
}

fn fill(out: &mut String, name: &str, values: &MessageValues<'_>) {
    match name {
        "code" => out.push_str(values.codes.first().map(SecretString::expose).unwrap_or_default()),
        "codes" => {
            let joined: Vec<&str> = values.codes.iter().map(SecretString::expose).collect();
            out.push_str(&joined.join(", "));
        }
        "ttl_minutes" => out.push_str(&values.ttl.unwrap_or_default().minutes().to_string()),
        "service" => out.push_str(values.service),
        other => {
            out.push('{');
            out.push_str(other);
            out.push('}');
        }
    }
}

/// The placeholder names in a template, in order.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{').skip(1).filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// Whether a character is in the GSM 03.38 default alphabet or its extension table.
pub fn is_gsm7(c: char) -> bool {
    const OTHERS: &str = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà \n\r";
    c.is_ascii_alphanumeric() || OTHERS.contains(c) || is_gsm7_extension(c)
}

/// Characters of the GSM extension table, which take two of a segment's 160.
fn is_gsm7_extension(c: char) -> bool {
    "^{}\\[~]|€\u{c}".contains(c)
}

/// Characters a GSM 7-bit text takes in a segment.
pub fn gsm7_length(text: &str) -> usize {
    text.chars().map(|c| if is_gsm7_extension(c) { 2 } else { 1 }).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preloaded_token_accepts_only_codes_that_were_sent() {
        assert_eq!(preloaded_window(4, 7), Accepted::Sent(4..7));
        assert_eq!(preloaded_window(7, 7), Accepted::Sent(7..7), "every sent code used: none is out");
        assert_eq!(preloaded_window(9, 7), Accepted::Sent(9..9));
    }

    #[test]
    fn the_next_batch_goes_out_when_the_last_sent_code_is_used() {
        assert_eq!(batch_after_use(DeliveryMode::Preload, 1, 1), Some(1..2));
        assert_eq!(batch_after_use(DeliveryMode::Preload3, 2, 3), None, "one of three still on the phone");
        assert_eq!(batch_after_use(DeliveryMode::Preload3, 3, 3), Some(3..6));
        assert_eq!(batch_after_use(DeliveryMode::Realtime, 3, 3), None);
        assert_eq!(batch_after_use(DeliveryMode::Daycode, 3, 3), None);
    }

    #[test]
    fn daycode_periods_count_whole_periods_of_local_days() {
        assert_eq!(daycode_period(20_000, 1), 20_000);
        assert_eq!((daycode_period(20_001, 3), daycode_period(20_003, 3)), (6_667, 6_667));
        assert_eq!(daycode_period(20_004, 3), 6_667 + 1);
        assert_eq!(daycode_period(-5, 1), 0, "days before 1970 do not wrap");
    }

    #[test]
    fn ttls_outside_one_to_ninety_nine_minutes_are_refused() {
        assert!(Ttl::new(59).is_err() && Ttl::new(5_941).is_err());
        assert_eq!(Ttl::new(61).map(Ttl::minutes), Ok(2));
        assert_eq!(Ttl::default().secs(), 300);
    }

    #[test]
    fn phone_numbers_are_e164_and_mask_to_country_code_and_last_three_digits() {
        let uk = PhoneNumber::parse("+44 7700 900-789").unwrap();
        assert_eq!((uk.as_str(), uk.masked()), ("+447700900789", "+44 ••• ••789".to_owned()));
        assert_eq!(PhoneNumber::parse("+1 (555) 010-4567").unwrap().masked(), "+1 ••• ••567");
        assert_eq!(PhoneNumber::parse("+353851234567").unwrap().country_code(), "353");
        for bad in
            ["07700900789", "+44", "+447700", "+44 7700 9OO789", "+0447700900789", "+1234567890123456", ""]
        {
            assert_eq!(PhoneNumber::parse(bad), Err(DeliveryError::Phone), "{bad}");
        }
    }

    #[test]
    fn email_addresses_need_a_local_part_and_a_domain() {
        let address = EmailAddress::parse(" ann@example.com ").unwrap();
        assert_eq!((address.as_str(), address.masked()), ("ann@example.com", "a•••@example.com".to_owned()));
        for bad in [
            "ann",
            "@example.com",
            "ann@",
            "ann@localhost",
            "an n@example.com",
            "ann@exa..mple.com",
            "a<b@example.com",
        ] {
            assert_eq!(EmailAddress::parse(bad), Err(DeliveryError::Email), "{bad}");
        }
    }

    #[test]
    fn templates_fill_their_placeholders_and_refuse_unknown_ones() {
        let template = Template::parse("{code} is your {service} code, valid {ttl_minutes} min").unwrap();
        let codes = [SecretString::new("123456".into())];
        let values = MessageValues { codes: &codes, ttl: Ttl::new(600).ok(), service: "VPN" };
        assert_eq!(template.render(&values).expose(), "123456 is your VPN code, valid 10 min");
        let three = ["1", "2", "3"].map(|c| SecretString::new(c.into()));
        let values = MessageValues { codes: &three, ttl: None, service: "VPN" };
        assert_eq!(Template::parse("Codes: {codes}").unwrap().render(&values).expose(), "Codes: 1, 2, 3");
        assert_eq!(Template::parse("{pin}"), Err(DeliveryError::Placeholder("pin".into())));
        assert_eq!(Template::parse("no code here"), Err(DeliveryError::NoCode));
    }

    #[test]
    fn sms_templates_stay_in_gsm7_and_in_one_segment() {
        let template = Template::parse("Your codes: {codes}").unwrap();
        assert_eq!(template.check_sms(3, 10, "VPN"), Ok(()));
        let emoji = Template::parse("🔐 {code}").unwrap();
        assert_eq!(emoji.check_sms(1, 6, "VPN"), Err(DeliveryError::NotGsm7('🔐')));
        let long = Template::parse(&format!("{} {{codes}}", "x".repeat(140))).unwrap();
        assert_eq!(long.check_sms(3, 6, "VPN"), Err(DeliveryError::TooLong(141 + 22)));
        assert_eq!(gsm7_length("€[]"), 6, "extension characters take two");
    }
}
