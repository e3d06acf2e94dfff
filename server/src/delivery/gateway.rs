//! Sending one text message through a generic HTTP gateway: the configured request template filled
//! with the destination, the message and the gateway's secret, and the answer judged by its status
//! and body. Errors name the gateway and what it answered, never the message, the code or the secret.

use tessera_core::secret::SecretString;

use crate::config::{HttpGateway, HttpMethod};

/// Most of a gateway's answer that is read (and kept, redacted, in an error).
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// Characters of a refusing answer kept in the outbox's error.
const ANSWER_EXCERPT_CHARS: usize = 200;

/// What a gateway that accepted a message said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its id for the message, when it gave one.
    pub message_id: Option<String>,
    /// Its answer, cut short, with the message, codes and secret cut out.
    pub answer: String,
}

/// A rendered message on its way out.
pub struct Outgoing<'a> {
    /// The phone number or address.
    pub to: &'a str,
    /// The text.
    pub text: SecretString,
    /// The codes it carries (cut from any answer that echoes them).
    pub codes: Vec<SecretString>,
    /// How long until its code expires, when it does (a real-time challenge's code).
    pub valid_for: Option<std::time::Duration>,
    /// An email subject of its own (`{service}` replaced); none takes the configured one.
    pub subject: Option<&'static str>,
}

impl Outgoing<'_> {
    /// `text` with the message, its codes and `secret` cut out (a gateway or mail server may echo
    /// what it was sent).
    pub fn redact(&self, text: &str, secret: Option<&str>) -> String {
        let mut redacted = text.replace(self.text.expose(), "[message]");
        for code in self.codes.iter().map(SecretString::expose).filter(|c| !c.is_empty()) {
            redacted = redacted.replace(code, "[code]");
        }
        if let Some(secret) = secret.filter(|s| !s.is_empty()) {
            redacted = redacted.replace(secret, "[secret]");
        }
        redacted
    }
}

/// Sends a message through `gateway`; the gateway's message id when it accepted and gave one.
pub async fn send_http(
    gateway: &HttpGateway,
    http: &reqwest::Client,
    message: &Outgoing<'_>,
) -> Result<Accepted, String> {
    let secret = gateway.secret.as_ref().map(SecretString::expose);
    let values = Values { phone: message.to, message: message.text.expose(), secret };
    let params: Vec<(&str, String)> =
        gateway.params.iter().map(|(k, v)| (k.as_str(), values.fill(v))).collect();
    let mut request = match (gateway.method, &gateway.json) {
        (HttpMethod::Get, _) => http.get(&gateway.url).query(&params),
        (HttpMethod::Post, Some(json)) => {
            http.post(&gateway.url).query(&params).json(&values.fill_json(json))
        }
        (HttpMethod::Post, None) => http.post(&gateway.url).form(&params),
    };
    for (name, value) in &gateway.headers {
        request = request.header(name.as_str(), values.fill(value));
    }
    let response = request.timeout(gateway.timeout).send().await.map_err(|e| {
        let reason =
            if e.is_timeout() { "no answer in time".to_owned() } else { e.without_url().to_string() };
        format!("gateway {}: {reason}", gateway.id)
    })?;
    let status = response.status().as_u16();
    let body = read_limited(response).await;
    let redacted = message.redact(&body, secret);
    if !gateway.success_status.contains(&status) {
        return Err(format!("gateway {} answered {status}: {}", gateway.id, excerpt(&redacted)));
    }
    if let Some(wanted) = &gateway.success_body_contains
        && !body.contains(wanted.as_str())
    {
        return Err(format!(
            "gateway {} answered {status} without {wanted:?}: {}",
            gateway.id,
            excerpt(&redacted)
        ));
    }
    Ok(Accepted {
        message_id: message_id(gateway, &body),
        answer: format!("{status}: {}", excerpt(&redacted)),
    })
}

/// The message id at the configured JSON pointer, or Kannel's `0: Accepted for delivery` has none.
fn message_id(gateway: &HttpGateway, body: &str) -> Option<String> {
    let pointer = gateway.message_id_pointer.as_deref()?;
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    match json.pointer(pointer)? {
        serde_json::Value::String(id) => Some(id.chars().take(128).collect()),
        serde_json::Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

pub(super) async fn read_limited(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        bytes.extend_from_slice(&chunk);
        if bytes.len() >= MAX_ANSWER_BYTES {
            bytes.truncate(MAX_ANSWER_BYTES);
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(super) fn excerpt(body: &str) -> String {
    let text: String = body.chars().filter(|c| !c.is_control()).take(ANSWER_EXCERPT_CHARS).collect();
    if text.trim().is_empty() { "(empty answer)".into() } else { text.trim().to_owned() }
}

/// The values a request template is filled with.
struct Values<'a> {
    phone: &'a str,
    message: &'a str,
    secret: Option<&'a str>,
}

impl Values<'_> {
    /// `template` with `{phone}`, `{message}` and `{secret}` replaced in one pass (a value that
    /// itself looks like a placeholder is not expanded again).
    fn fill(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + self.message.len());
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(rest.get(..start).unwrap_or_default());
            let after = rest.get(start..).unwrap_or_default();
            let (value, length) =
                [("{phone}", Some(self.phone)), ("{message}", Some(self.message)), ("{secret}", self.secret)]
                    .into_iter()
                    .find(|(name, _)| after.starts_with(name))
                    .map_or((None, 1), |(name, value)| (value, name.len()));
            match value {
                Some(value) => out.push_str(value),
                None => out.push_str(after.get(..length).unwrap_or_default()),
            }
            rest = after.get(length..).unwrap_or_default();
        }
        out.push_str(rest);
        out
    }

    fn fill_json(&self, template: &serde_json::Value) -> serde_json::Value {
        match template {
            serde_json::Value::String(text) => serde_json::Value::String(self.fill(text)),
            serde_json::Value::Array(items) => items.iter().map(|item| self.fill_json(item)).collect(),
            serde_json::Value::Object(fields) => {
                fields.iter().map(|(key, value)| (key.clone(), self.fill_json(value))).collect()
            }
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once_and_unknown_braces_stay() {
        let values = Values { phone: "+447700900123", message: "code {secret} 123456", secret: Some("pw") };
        assert_eq!(
            values.fill("to={phone}&text={message}&p={secret}&x={other}"),
            "to=+447700900123&text=code {secret} 123456&p=pw&x={other}"
        );
        let json = serde_json::json!({"to": ["{phone}"], "body": {"text": "{message}"}, "n": 1});
        assert_eq!(
            values.fill_json(&json),
            serde_json::json!({"to": ["+447700900123"], "body": {"text": "code {secret} 123456"}, "n": 1})
        );
    }

    #[test]
    fn an_echoed_message_or_secret_is_cut_from_the_error() {
        let outgoing = Outgoing {
            to: "+447700900123",
            text: SecretString::new("Your code 123456".into()),
            codes: vec![SecretString::new("123456".into())],
            valid_for: None,
            subject: None,
        };
        let echoed = "bad: Your code 123456 with hunter2 (123456)";
        assert_eq!(outgoing.redact(echoed, Some("hunter2")), "bad: [message] with [secret] ([code])");
    }
}
