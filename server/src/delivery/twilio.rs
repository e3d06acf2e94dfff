//! Twilio's Messages API, and providers that speak it: a message is a form POSTed with HTTP Basic
//! authentication (`To`, `From` or `MessagingServiceSid`, `Body`, `StatusCallback`), answered
//! `201` with the message's `sid`; the provider later reports the message's fate to the status
//! callback, signed with `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, the callback URL and
//! every parameter's name and value in name order)). Unsigned or forged callbacks are refused.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use tessera_core::secret::SecretString;

use super::gateway::{Accepted, Outgoing, excerpt, read_limited};
use crate::config::{TwilioGateway, TwilioSender};

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
