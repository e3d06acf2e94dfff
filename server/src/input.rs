//! Checks of free text that reaches the database, the audit log or a device's screen: names,
//! descriptions, phone numbers and email addresses.

use crate::error::ServiceError;

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

/// An E.164 phone number: `+` and 7 to 15 digits.
pub(crate) fn check_phone(phone: String) -> Result<String, ServiceError> {
    let digits = phone.strip_prefix('+').unwrap_or("");
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(phone)
    } else {
        Err(ServiceError::InvalidInput("phone must be in E.164 form: + and 7 to 15 digits".into()))
    }
}

/// An email address of plausible shape (delivery proves the rest).
pub(crate) fn check_email(email: String) -> Result<String, ServiceError> {
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(email) } else { Err(ServiceError::InvalidInput("email is not a valid address".into())) }
}
