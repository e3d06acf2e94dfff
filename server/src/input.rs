//! Checks of free text that reaches the database, the audit log or a device's screen: names,
//! descriptions, phone numbers and email addresses.

use tessera_core::delivery::{EmailAddress, PhoneNumber};

use crate::error::ServiceError;

/// The service's lower-case message as a sentence, as a page, a phone or a VPN client shows it:
/// a capital letter first and a full stop at the end.
pub(crate) fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut text: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
    if !text.is_empty() && !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

/// At most `max` characters, none of them control characters.
pub(crate) fn check_text(field: &str, text: &str, max: usize) -> Result<(), ServiceError> {
    if text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(ServiceError::InvalidInput(format!(
            "{field} must be at most {max} printable characters"
        )));
    }
    Ok(())
}

/// Each of the optional fields that is present, checked as [`check_text`] does: `(field, value, max)`.
pub(crate) fn check_optional_texts(fields: &[(&str, &Option<String>, usize)]) -> Result<(), ServiceError> {
    for (field, value, max) in fields {
        if let Some(value) = value {
            check_text(field, value, *max)?;
        }
    }
    Ok(())
}

/// A name: non-empty, no surrounding spaces, at most 128 printable characters.
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), ServiceError> {
    if name.is_empty() || name.trim() != name {
        return Err(ServiceError::InvalidInput(format!(
            "{field} must be non-empty, without surrounding spaces"
        )));
    }
    check_text(field, name, 128)
}

/// A phone number in E.164 form (spaces and dashes dropped), or a clear error.
pub(crate) fn check_phone(phone: String) -> Result<String, ServiceError> {
    PhoneNumber::parse(&phone)
        .map(|number| number.as_str().to_owned())
        .map_err(|e| ServiceError::InvalidInput(format!("phone: {e}")))
}

/// Where a call goes: a SIP URI (`sip:2001@pbx.example`, a desk extension) or an E.164 number.
pub(crate) fn check_call_destination(to: String) -> Result<String, ServiceError> {
    let Some(rest) = to.strip_prefix("sip:") else { return check_phone(to) };
    let host = rest.rsplit('@').next().unwrap_or_default();
    if rest.is_empty()
        || host.is_empty()
        || to.len() > 256
        || to.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | '"'))
    {
        return Err(ServiceError::InvalidInput(
            "destination must be an E.164 number (+447700900123) or a SIP URI (sip:2001@pbx.example), \
             at most 256 characters"
                .into(),
        ));
    }
    Ok(to)
}

/// An email address of plausible shape (delivery proves the rest).
pub(crate) fn check_email(email: String) -> Result<String, ServiceError> {
    EmailAddress::parse(&email)
        .map(|address| address.as_str().to_owned())
        .map_err(|e| ServiceError::InvalidInput(format!("email: {e}")))
}
