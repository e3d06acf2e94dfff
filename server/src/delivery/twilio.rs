//! Twilio's Messages API, and providers that speak it: a message is a form POSTed with HTTP Basic
//! authentication (`To`, `From` or `MessagingServiceSid`, `Body`, `StatusCallback`), answered
//! `201` with the message's `sid`; the provider later reports the message's fate to the status
//! callback, signed with `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, the callback URL and
//! every parameter's name and value in name order)). Unsigned or forged callbacks are refused.
//!
//! Its Calls API places voice-token calls the same way: a call is POSTed with the URL the provider
//! fetches its instructions from (TwiML: a `<Gather>` of the keys, whose digits the provider posts
//! back) and a status callback, every webhook signed alike.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use tessera_core::secret::SecretString;

use super::gateway::{Accepted, Outgoing, excerpt, read_limited};
use crate::config::{TWILIO_VOICE_PATH, TwilioGateway, TwilioSender, TwilioVoice};
use crate::voice::sip::CallEnd;

/// The webhooks of a call through a Twilio-compatible provider, each at
/// `{public_url}/api/v1/voice/twilio/{step}?tx={transaction}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoiceStep {
    /// The call was answered: what to say and gather.
    Answer,
    /// The keys the callee pressed.
    Gather,
    /// How the call ended.
    Status,
}

impl VoiceStep {
    /// Its path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Gather => "gather",
            Self::Status => "status",
        }
    }

    /// The URL the provider calls for this step of transaction `tx` (what its signature covers).
    pub fn url(self, twilio: &TwilioVoice, tx: &str) -> String {
        format!("{}{TWILIO_VOICE_PATH}/{}?tx={tx}", twilio.public_url, self.as_str())
    }
}

/// What a voice webhook brought, once its signature was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoiceEvent {
    /// The callee answered: the TwiML that gathers the keys is wanted.
    Answered,
    /// The keys pressed in the `<Gather>` (empty when none came in time).
    Keys(String),
    /// The call ended so (`None` for a status that ends nothing, such as `ringing`).
    Ended(Option<CallEnd>),
}

impl VoiceEvent {
    /// The event of a webhook for `step` with `params`.
    pub fn of(step: VoiceStep, params: &[(String, String)]) -> Self {
        let value = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
        match step {
            VoiceStep::Answer => Self::Answered,
            VoiceStep::Gather => Self::Keys(value("Digits").unwrap_or_default().to_owned()),
            VoiceStep::Status => Self::Ended(match value("CallStatus").unwrap_or_default() {
                "completed" => Some(CallEnd::HungUp),
                "busy" => Some(CallEnd::Busy),
                "no-answer" | "canceled" => Some(CallEnd::NotAnswered),
                "failed" => Some(CallEnd::Failed("the provider could not place it".into())),
                _ => None,
            }),
        }
    }
}

/// Asks the provider to call `to`, fetching its instructions for transaction `tx` from this
/// server; the call's sid.
pub async fn place_call(
    twilio: &TwilioVoice,
    http: &reqwest::Client,
    to: &str,
    tx: &str,
) -> Result<String, String> {
    let url = format!("{}/2010-04-01/Accounts/{}/Calls.json", twilio.base_url, twilio.account_sid);
    let answer = VoiceStep::Answer.url(twilio, tx);
    let status = VoiceStep::Status.url(twilio, tx);
    let ring = twilio.ring_for.as_secs().to_string();
    let form = [
        ("To", to),
        ("From", twilio.from.as_str()),
        ("Url", answer.as_str()),
        ("Method", "POST"),
        ("StatusCallback", status.as_str()),
        ("StatusCallbackMethod", "POST"),
        ("Timeout", ring.as_str()),
    ];
    let response = http
        .post(url)
        .basic_auth(&twilio.account_sid, Some(twilio.auth_token.expose()))
        .form(&form)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(
            |e| if e.is_timeout() { "no answer in time".to_owned() } else { e.without_url().to_string() },
        )?;
    let code = response.status().as_u16();
    let body = read_limited(response).await.replace(twilio.auth_token.expose(), "[REDACTED]");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let field = |name: &str| json.get(name).and_then(serde_json::Value::as_str).map(str::to_owned);
    if !matches!(code, 200 | 201) {
        return Err(format!(
            "the Calls API answered {code}: {}",
            field("message").unwrap_or_else(|| excerpt(&body))
        ));
    }
    field("sid")
        .ok_or_else(|| format!("the Calls API answered {code} without a call sid: {}", excerpt(&body)))
}

/// TwiML: `say` (if any), then either a `<Gather>` of `digits` keys posted to `action` (with
/// `prompt` said inside it; no keys within 10 s posts an empty entry), or a hang-up.
pub fn twiml(say: Option<&str>, gather: Option<(&str, usize, &str)>) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    };
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
    if let Some(say) = say {
        xml.push_str(&format!("<Say>{}</Say>", escape(say)));
    }
    match gather {
        Some((action, digits, prompt)) => xml.push_str(&format!(
            "<Gather input=\"dtmf\" numDigits=\"{digits}\" finishOnKey=\"#\" timeout=\"10\" \
             actionOnEmptyResult=\"true\" action=\"{}\" method=\"POST\"><Say>{}</Say></Gather>",
            escape(action),
            escape(prompt)
        )),
        None => xml.push_str("<Hangup/>"),
    }
    xml.push_str("</Response>");
    xml
}

/// Sends a message through the Messages API.
pub async fn send_twilio(
    gateway: &TwilioGateway,
    http: &reqwest::Client,
    message: &Outgoing<'_>,
) -> Result<Accepted, String> {
    let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", gateway.base_url, gateway.account_sid);
    let sender = match &gateway.sender {
        TwilioSender::From(from) => ("From", from.as_str()),
        TwilioSender::Service(service) => ("MessagingServiceSid", service.as_str()),
    };
    let form = [
        ("To", message.to),
        sender,
        ("Body", message.text.expose()),
        ("StatusCallback", gateway.status_callback.as_str()),
    ];
    let response = http
        .post(url)
        .basic_auth(&gateway.account_sid, Some(gateway.auth_token.expose()))
        .form(&form)
        .timeout(gateway.timeout)
        .send()
        .await
        .map_err(|e| {
            let reason =
                if e.is_timeout() { "no answer in time".to_owned() } else { e.without_url().to_string() };
            format!("gateway {}: {reason}", gateway.id)
        })?;
    let status = response.status().as_u16();
    let body = message.redact(&read_limited(response).await, Some(gateway.auth_token.expose()));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let field = |name: &str| json.get(name).and_then(serde_json::Value::as_str).map(str::to_owned);
    if !matches!(status, 200 | 201) {
        let reason = field("message").unwrap_or_else(|| excerpt(&body));
        return Err(format!("gateway {} answered {status}: {reason}", gateway.id));
    }
    let sid = field("sid").ok_or_else(|| {
        format!("gateway {} answered {status} without a message sid: {}", gateway.id, excerpt(&body))
    })?;
    Ok(Accepted {
        message_id: Some(sid),
        answer: format!("{status}: {}", field("status").unwrap_or_default()),
    })
}

/// The `X-Twilio-Signature` of a callback to `url` with `params`.
pub fn signature(auth_token: &SecretString, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(auth_token.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(data.as_bytes());
    data_encoding::BASE64.encode(&mac.finalize().into_bytes())
}

/// Whether `given` is the callback's signature (compared in constant time).
pub fn signature_matches(
    auth_token: &SecretString,
    url: &str,
    params: &[(String, String)],
    given: &str,
) -> bool {
    let expected = signature(auth_token, url, params);
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiml_gathers_the_keys_or_hangs_up_with_everything_escaped() {
        let gather = twiml(
            Some("That code is not right."),
            Some(("https://mfa.example/g?tx=A&b", 6, "Key in <code>")),
        );
        assert!(
            gather.contains("<Say>That code is not right.</Say><Gather input=\"dtmf\" numDigits=\"6\""),
            "{gather}"
        );
        assert!(gather.contains("action=\"https://mfa.example/g?tx=A&amp;b\""), "{gather}");
        assert!(gather.contains("<Say>Key in &lt;code&gt;</Say></Gather>"), "{gather}");
        assert!(
            gather.ends_with("</Gather></Response>") && gather.contains("actionOnEmptyResult=\"true\""),
            "{gather}"
        );
        assert_eq!(
            twiml(Some("Goodbye."), None),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Goodbye.</Say><Hangup/></Response>"
        );
    }

    #[test]
    fn the_signature_is_twilios_example() {
        // Twilio's documented example (docs: "Validating Signatures from Twilio").
        let token = SecretString::new("12345".into());
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(signature(&token, url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(signature_matches(&token, url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!signature_matches(&token, url, &params[1..], "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    }
}
