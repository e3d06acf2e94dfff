//! Moving tokens in and out of the vault as plain otpauth URIs, one per line: the lowest common
//! denominator every authenticator (Aegis, 2FAS, andOTP, FreeOTP+, KeePassXC) can read or write.
//!
//! Imports are all-or-nothing: every line is parsed before anything is added, and one bad line
//! refuses the whole file, naming the line. Tokens already in the vault are skipped, not doubled.

use zeroize::Zeroizing;

use crate::otpauth::{OtpAuth, UriError, UriWarning};
use crate::secret::SecretString;
use crate::vault::{TokenError, TokenSummary, Vault};

/// Most tokens one import may carry.
pub const MAX_IMPORT_TOKENS: usize = 10_000;

/// Every token as an otpauth URI, one per line. The text carries every seed: treat it as a secret.
pub fn export_otpauth(vault: &Vault) -> SecretString {
    let uris: Vec<SecretString> = vault.tokens().iter().map(|t| t.otp().to_uri()).collect();
    let mut text = Zeroizing::new(String::with_capacity(uris.iter().map(|u| u.expose().len() + 1).sum()));
    for uri in &uris {
        text.push_str(uri.expose());
        text.push('\n');
    }
    SecretString::from(text)
}

/// One parsed line of an import file.
#[derive(Debug)]
pub struct ImportLine {
    /// 1-based line number.
    pub line: usize,
    /// The token.
    pub otp: OtpAuth,
    /// What the parser accepted but noticed.
    pub warnings: Vec<UriWarning>,
}

/// Why an import file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// A line is not a valid otpauth URI.
    #[error("line {line}: {error}")]
    InvalidLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        #[source]
        error: UriError,
    },
    /// More than [`MAX_IMPORT_TOKENS`] URIs.
    #[error("the file has more than {MAX_IMPORT_TOKENS} tokens")]
    TooMany,
    /// No URI at all.
    #[error("the file contains no otpauth URIs")]
    Empty,
}

impl crate::error::Classify for ImportError {
    fn code(&self) -> crate::error::ErrorCode {
        crate::error::ErrorCode::InvalidInput
    }
}

/// Parses a file of otpauth URIs, one per line. Blank lines and lines starting with `#` are skipped.
pub fn parse_otpauth_lines(text: &str) -> Result<Vec<ImportLine>, ImportError> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim().trim_start_matches('\u{feff}');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if lines.len() == MAX_IMPORT_TOKENS {
            return Err(ImportError::TooMany);
        }
        let parsed =
            OtpAuth::parse(trimmed).map_err(|error| ImportError::InvalidLine { line: index + 1, error })?;
        lines.push(ImportLine { line: index + 1, otp: parsed.otp, warnings: parsed.warnings });
    }
    if lines.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(lines)
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Tokens added.
    pub added: Vec<TokenSummary>,
    /// Lines skipped because the token was already in the vault (or earlier in the file).
    pub duplicates: Vec<usize>,
}

/// Adds parsed lines to the vault, skipping duplicates.
pub fn import_into(vault: &mut Vault, lines: Vec<ImportLine>, now: u64) -> Result<ImportReport, TokenError> {
    let mut report = ImportReport::default();
    for line in lines {
        match vault.add(line.otp, None, now) {
            Ok(token) => report.added.push(TokenSummary::of(token)),
            Err(TokenError::Duplicate(_)) => report.duplicates.push(line.line),
            Err(other) => return Err(other),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\u{feff}# exported by another app\n\
        otpauth://totp/GitHub:octocat?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=GitHub\n\
        \n\
        otpauth://hotp/Bank:me?secret=JBSWY3DPEHPK3PXP&counter=3\n";

    #[test]
    fn export_then_import_reproduces_the_tokens() {
        let mut vault = Vault::new();
        import_into(&mut vault, parse_otpauth_lines(FILE).unwrap(), 1).unwrap();
        let exported = export_otpauth(&vault);
        assert_eq!(exported.expose().lines().count(), 2);

        let mut copy = Vault::new();
        let report = import_into(&mut copy, parse_otpauth_lines(exported.expose()).unwrap(), 2).unwrap();
        assert_eq!(report.added.len(), 2);
        for (a, b) in vault.tokens().iter().zip(copy.tokens()) {
            assert_eq!(a.otp(), b.otp());
        }
    }

    #[test]
    fn duplicates_are_skipped_and_reported() {
        let mut vault = Vault::new();
        import_into(&mut vault, parse_otpauth_lines(FILE).unwrap(), 1).unwrap();
        let report = import_into(&mut vault, parse_otpauth_lines(FILE).unwrap(), 1).unwrap();
        assert!(report.added.is_empty());
        assert_eq!(report.duplicates, [2, 4]);
        assert_eq!(vault.len(), 2);
    }

    #[test]
    fn one_bad_line_refuses_the_file_and_names_the_line() {
        let text = format!("{FILE}otpauth://totp/x?secret=NOT-BASE32!\n");
        let error = parse_otpauth_lines(&text).unwrap_err();
        assert!(matches!(error, ImportError::InvalidLine { line: 5, .. }), "{error:?}");
        assert!(error.to_string().starts_with("line 5: invalid secret"));
    }

    #[test]
    fn empty_files_are_refused() {
        assert_eq!(parse_otpauth_lines("# nothing\n\n").unwrap_err(), ImportError::Empty);
    }
}
