//! Users and tokens brought in from elsewhere: users from a CSV file, hardware-token seed files
//! (PSKC, RFC 6030, in the clear or protected with a password or a pre-shared key) and
//! `otpauth://` lists, each token assigned to a user. An import is all or nothing: every entry is checked first (its format, its user, its
//! serial against the file and the database), and only when none is refused are they all stored,
//! sealed, in one transaction with one audit record each. The report names each refused entry
//! and why.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tessera_core::otp::{OtpMethod, unix_now};
use tessera_core::otpauth::OtpAuth;
use tessera_core::pskc::{self, Unlock};
use tessera_core::secret::{SecretBytes, SecretString};
use utoipa::ToSchema;

use super::audit::AdminAudit;
use super::tokens::new_serial;
use super::{Actor, Service, ServiceError};
use crate::clock::now_i64;
use crate::error::conflict;
use crate::input::{check_email, check_name, check_phone};
use crate::store::{NewToken, NewUserRow, TokenKind};

/// The most entries one import may hold.
pub const MAX_IMPORT_ENTRIES: usize = 100_000;

/// A token file to import and what opens it: the admin API's body, and what the admin CLI reads
/// from its files.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenImport {
    /// The PSKC document or the `otpauth://` list, as text.
    pub file: String,
    /// Who gets each token: CSV with the columns `serial,username`.
    #[serde(default)]
    pub user_map: Option<String>,
    /// The password a PSKC file's key is derived from (PBKDF2).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub pskc_password: Option<SecretString>,
    /// A PSKC file's pre-shared AES key, in hex.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub pskc_key_hex: Option<SecretString>,
}

impl TokenImport {
    fn unlock(&self) -> Result<Unlock, ServiceError> {
        match (&self.pskc_password, &self.pskc_key_hex) {
            (Some(_), Some(_)) => {
                Err(ServiceError::InvalidInput("give the PSKC file's password or its key, not both".into()))
            }
            (Some(password), None) => Ok(Unlock::Password(password.clone())),
            (None, Some(hex)) => data_encoding::HEXLOWER_PERMISSIVE
                .decode(hex.expose().trim().as_bytes())
                .map(|key| Unlock::Key(SecretBytes::new(key)))
                .map_err(|_| ServiceError::InvalidInput("the PSKC key must be hexadecimal".into())),
            (None, None) => Ok(Unlock::Nothing),
        }
    }
}

/// A users CSV to import: the admin API's body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserImport {
    /// CSV with a header row and the columns `username,display_name,phone,email`.
    pub csv: String,
}

/// A file's tokens, read but not yet checked against the database.
struct TokenFile {
    entries: Vec<Entry>,
    refused: Vec<RejectedEntry>,
    set_aside: Vec<RejectedEntry>,
    notes: Vec<String>,
}

/// One token from a file.
struct Entry {
    position: usize,
    name: String,
    serial: Option<String>,
    account: Option<String>,
    method: OtpMethod,
    secret: SecretBytes,
    description: Option<String>,
}

/// A token that was imported.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportedToken {
    /// Its serial.
    pub serial: String,
    /// Its owner.
    pub username: String,
    /// `hotp` or `totp`.
    pub kind: TokenKind,
}

/// An entry that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RejectedEntry {
    /// Its position in the file: the key package (PSKC) or the line (otpauth list), from 1.
    pub entry: usize,
    /// Its serial, key id or account, as the file names it.
    pub name: String,
    /// Why it was refused.
    pub reason: String,
}

/// What an import did: everything imported, or nothing and every reason.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ImportReport {
    /// The tokens stored (none when any entry was refused).
    pub imported: Vec<ImportedToken>,
    /// The entries refused.
    pub rejected: Vec<RejectedEntry>,
    /// Entries that are not tokens and need nothing (a device's PIN in a PSKC file), with what
    /// they are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<RejectedEntry>,
    /// What the administrator should know about the file as a whole.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl TokenFile {
    /// Reads a PSKC document (it starts with `<`) or an `otpauth://` list, one URI per line.
    fn read(text: &str, unlock: &Unlock) -> Result<Self, ServiceError> {
        let text = text.trim_start_matches('\u{feff}');
        if text.trim_start().starts_with('<') { Self::pskc(text, unlock) } else { Self::otpauth(text) }
    }

    fn pskc(text: &str, unlock: &Unlock) -> Result<Self, ServiceError> {
        let file = pskc::read(text, unlock, unix_now())
            .map_err(|e| ServiceError::InvalidInput(format!("PSKC: {e}")))?;
        let entry_of =
            |r: pskc::Rejected| RejectedEntry { entry: r.position, name: r.name, reason: r.reason };
        let refused = file.rejected.into_iter().map(entry_of).collect();
        let set_aside = file.set_aside.into_iter().map(entry_of).collect();
        let notes = if file.signed { vec![UNCHECKED_SIGNATURE.to_owned()] } else { Vec::new() };
        let entries = file
            .tokens
            .into_iter()
            .map(|token| Entry {
                position: token.position,
                name: token.serial.clone(),
                description: Some(pskc_description(&token)),
                serial: Some(token.serial),
                account: None,
                method: token.method,
                secret: token.secret,
            })
            .collect();
        Self { entries, refused, set_aside, notes }.limited()
    }

    fn otpauth(text: &str) -> Result<Self, ServiceError> {
        let mut file =
            Self { entries: Vec::new(), refused: Vec::new(), set_aside: Vec::new(), notes: Vec::new() };
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match OtpAuth::parse(line) {
                Ok(parsed) => {
                    let otp = parsed.otp;
                    file.entries.push(Entry {
                        position: index + 1,
                        name: otp.display_name(),
                        serial: None,
                        account: Some(otp.account().to_owned()),
                        method: *otp.method(),
                        secret: otp.secret().clone(),
                        description: otp.issuer().map(str::to_owned),
                    });
                }
                Err(error) => file.refused.push(RejectedEntry {
                    entry: index + 1,
                    name: format!("line {}", index + 1),
                    reason: error.to_string(),
                }),
            }
        }
        if file.entries.is_empty() && file.refused.is_empty() {
            return Err(ServiceError::InvalidInput("the file holds no otpauth:// URIs".into()));
        }
        file.limited()
    }

    fn limited(self) -> Result<Self, ServiceError> {
        if self.entries.len() + self.refused.len() > MAX_IMPORT_ENTRIES {
            return Err(ServiceError::InvalidInput(format!(
                "the file holds more than {MAX_IMPORT_ENTRIES} entries: split it"
            )));
        }
        Ok(self)
    }
}

/// The note on a signed PSKC file.
const UNCHECKED_SIGNATURE: &str = "the file's XML signature (ds:Signature) was not checked: the secrets \
     rest on their MACs (in an encrypted file) and on how the file reached you";

fn pskc_description(token: &pskc::PskcToken) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if let Some(manufacturer) = &token.manufacturer {
        parts.push(manufacturer);
    }
    if let Some(issuer) = &token.issuer {
        parts.push(issuer);
    }
    let origin = if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) };
    format!("hardware token{origin}, imported from PSKC")
}

/// Which user each token goes to: a CSV with the columns `serial,username`.
#[derive(Debug, Default)]
struct UserMap(BTreeMap<String, String>);

impl UserMap {
    /// Reads the CSV; a header row `serial,username` is required.
    fn from_csv(text: &str) -> Result<Self, ServiceError> {
        let bad = |message: String| ServiceError::InvalidInput(format!("user map: {message}"));
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
        let column = |name: &str| {
            headers.iter().position(|h| h.eq_ignore_ascii_case(name)).ok_or_else(|| {
                bad(format!("the header row must name the columns serial and username, not {headers:?}"))
            })
        };
        let (serial, username) = (column("serial")?, column("username")?);
        let mut map = BTreeMap::new();
        for (index, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(e.to_string()))?;
            let field = |i: usize| record.get(i).unwrap_or_default().to_owned();
            let line = index + 2;
            if field(serial).is_empty() || field(username).is_empty() {
                return Err(bad(format!("line {line}: serial and username are both needed")));
            }
            if map.insert(field(serial), field(username)).is_some() {
                return Err(bad(format!("line {line}: serial {:?} is listed twice", field(serial))));
            }
        }
        Ok(Self(map))
    }
}

/// Whether `serial` is one Tessera can store and show (a vendor's serial printed on a token).
fn serial_is_usable(serial: &str) -> bool {
    (1..=64).contains(&serial.len())
        && serial.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Service {
    /// Reads an import's file and user map and imports its tokens: all of them, or none and
    /// every reason.
    pub async fn import_token_file(
        &self,
        actor: &Actor,
        import: &TokenImport,
    ) -> Result<ImportReport, ServiceError> {
        let file = TokenFile::read(&import.file, &import.unlock()?)?;
        let users = match &import.user_map {
            Some(csv) => UserMap::from_csv(csv)?,
            None => UserMap::default(),
        };
        self.import_tokens(actor, file, &users).await
    }

    /// Imports `file`'s tokens, each to the user `users` names for its serial (or, for an
    /// otpauth line, the user named by its account): all of them, or none and every reason.
    async fn import_tokens(
        &self,
        actor: &Actor,
        file: TokenFile,
        users: &UserMap,
    ) -> Result<ImportReport, ServiceError> {
        let mut report = ImportReport {
            imported: Vec::new(),
            rejected: file.refused,
            set_aside: file.set_aside,
            notes: file.notes,
        };
        let mut seen = BTreeSet::new();
        let mut accepted = Vec::new();
        for entry in file.entries {
            match self.check_entry(&entry, users, &mut seen).await? {
                Ok(checked) => accepted.push((entry, checked)),
                Err(reason) => {
                    report.rejected.push(RejectedEntry { entry: entry.position, name: entry.name, reason })
                }
            }
        }
        if !report.rejected.is_empty() {
            report.rejected.sort_by_key(|r| r.entry);
            return Ok(report);
        }
        let now = now_i64();
        let mut sealed = Vec::with_capacity(accepted.len());
        for (entry, (serial, user)) in &accepted {
            sealed.push(self.key.seal_seed(serial, &entry.secret)?);
            report.imported.push(ImportedToken {
                serial: serial.clone(),
                username: user.username.clone(),
                kind: kind_of(&entry.method),
            });
        }
        let audits: Vec<AdminAudit> = accepted
            .iter()
            .map(|(_, (serial, user))| {
                AdminAudit::new(actor, "token.import").user(&user.username).serial(serial).reason("imported")
            })
            .collect();
        let rows: Vec<NewToken<'_>> = accepted
            .iter()
            .zip(&sealed)
            .map(|((entry, (serial, user)), seed)| NewToken {
                serial,
                user_id: user.id,
                kind: kind_of(&entry.method),
                algorithm: entry.method.algorithm().as_str(),
                digits: i64::from(entry.method.code_length()),
                period: entry.method.period().map_or(30, |p| i64::from(p.get())),
                counter: match entry.method {
                    OtpMethod::Hotp { counter, .. } => i64::try_from(counter).unwrap_or(i64::MAX),
                    _ => 0,
                },
                seed,
                description: entry.description.as_deref(),
                created_at: now,
                enrollment_code_hash: None,
                enrollment_expires_at: None,
                delivery: None,
                temporary: None,
                pending: None,
            })
            .collect();
        let records: Vec<_> = audits.iter().map(AdminAudit::record).collect();
        self.store.create_tokens(rows.into_iter().zip(records).collect()).await.map_err(conflict)?;
        Ok(report)
    }

    /// An entry's serial and user, or why it cannot be imported.
    async fn check_entry(
        &self,
        entry: &Entry,
        users: &UserMap,
        seen: &mut BTreeSet<String>,
    ) -> Result<Result<(String, crate::store::UserRow), String>, ServiceError> {
        if !matches!(entry.method, OtpMethod::Hotp { .. } | OtpMethod::Totp { .. }) {
            return Ok(Err("only HOTP and TOTP tokens can be imported".into()));
        }
        if entry.method.period().is_some_and(|p| !(10..=300).contains(&p.get())) {
            return Ok(Err("a TOTP time step must be 10 to 300 seconds".into()));
        }
        let serial = match &entry.serial {
            Some(serial) if !serial_is_usable(serial) => {
                return Ok(Err(format!(
                    "serial {serial:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
                )));
            }
            Some(serial) => serial.clone(),
            None => new_serial(kind_of(&entry.method))?,
        };
        if !seen.insert(serial.clone()) {
            return Ok(Err(format!("serial {serial} appears twice in the file")));
        }
        if self.store.token(&serial).await?.is_some() {
            return Ok(Err(format!("a token with serial {serial} exists already")));
        }
        let username = match (&entry.serial, &entry.account) {
            (Some(serial), _) => users.0.get(serial).cloned(),
            (None, Some(account)) => Some(users.0.get(account).cloned().unwrap_or_else(|| account.clone())),
            (None, None) => None,
        };
        let Some(username) = username else {
            return Ok(Err(format!("the user map names no user for serial {serial}")));
        };
        match self.store.user(&username).await? {
            Some(user) => Ok(Ok((serial, user))),
            None => Ok(Err(format!("there is no user {username:?}"))),
        }
    }
}

fn kind_of(method: &OtpMethod) -> TokenKind {
    match method {
        OtpMethod::Hotp { .. } => TokenKind::Hotp,
        _ => TokenKind::Totp,
    }
}

/// What a user import did: every user created, or none and every reason.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct UserImportReport {
    /// The users created (none when any row was refused).
    pub imported: Vec<String>,
    /// The rows refused.
    pub rejected: Vec<RejectedEntry>,
}

/// One checked row of a user CSV.
struct UserLine {
    username: String,
    display_name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
}

impl Service {
    /// Creates the users a CSV lists (columns `username,display_name,phone,email`, a header row
    /// first): all of them, or none and the reason for every refused row.
    pub async fn import_users(
        &self,
        actor: &Actor,
        csv_text: &str,
    ) -> Result<UserImportReport, ServiceError> {
        let bad = |message: String| ServiceError::InvalidInput(format!("users CSV: {message}"));
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(csv_text.as_bytes());
        let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
        let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let username_at = column("username").ok_or_else(|| {
            bad("the header row must name a username column (and display_name, phone, email)".into())
        })?;
        let (display_at, phone_at, email_at) = (column("display_name"), column("phone"), column("email"));
        let mut report = UserImportReport::default();
        let mut lines = Vec::new();
        let mut seen = BTreeSet::new();
        for (index, record) in reader.records().enumerate() {
            let entry = index + 2;
            let record = record.map_err(|e| bad(e.to_string()))?;
            let field = |at: Option<usize>| {
                at.and_then(|i| record.get(i)).filter(|v| !v.is_empty()).map(str::to_owned)
            };
            let username = field(Some(username_at)).unwrap_or_default();
            let checked = self
                .check_user_line(&username, field(display_at), field(phone_at), field(email_at), &mut seen)
                .await?;
            match checked {
                Ok(line) => lines.push(line),
                Err(reason) => report.rejected.push(RejectedEntry { entry, name: username, reason }),
            }
            if lines.len() + report.rejected.len() > MAX_IMPORT_ENTRIES {
                return Err(bad(format!("more than {MAX_IMPORT_ENTRIES} rows: split the file")));
            }
        }
        if !report.rejected.is_empty() {
            return Ok(report);
        }
        if lines.is_empty() {
            return Err(bad("the file lists no users".into()));
        }
        let now = now_i64();
        let audits: Vec<AdminAudit> =
            lines.iter().map(|l| AdminAudit::new(actor, "user.import").user(&l.username)).collect();
        let rows = lines.iter().zip(&audits).map(|(line, audit)| {
            let row = NewUserRow {
                username: &line.username,
                display_name: line.display_name.as_deref(),
                phone: line.phone.as_deref(),
                email: line.email.as_deref(),
                created_at: now,
                ..NewUserRow::default()
            };
            (row, audit.record())
        });
        self.store.create_users(rows.collect()).await.map_err(conflict)?;
        report.imported = lines.into_iter().map(|l| l.username).collect();
        Ok(report)
    }

    async fn check_user_line(
        &self,
        username: &str,
        display_name: Option<String>,
        phone: Option<String>,
        email: Option<String>,
        seen: &mut BTreeSet<String>,
    ) -> Result<Result<UserLine, String>, ServiceError> {
        let reason = |e: ServiceError| e.to_string();
        if let Err(e) = check_name("username", username) {
            return Ok(Err(reason(e)));
        }
        if let Some(name) = &display_name
            && let Err(e) = crate::input::check_text("display_name", name, 256)
        {
            return Ok(Err(reason(e)));
        }
        let phone = match phone.map(check_phone).transpose() {
            Ok(phone) => phone,
            Err(e) => return Ok(Err(reason(e))),
        };
        let email = match email.map(check_email).transpose() {
            Ok(email) => email,
            Err(e) => return Ok(Err(reason(e))),
        };
        if !seen.insert(username.to_owned()) {
            return Ok(Err(format!("user {username:?} appears twice in the file")));
        }
        if self.store.user(username).await?.is_some() {
            return Ok(Err(format!("user {username:?} exists already")));
        }
        Ok(Ok(UserLine { username: username.to_owned(), display_name, phone, email }))
    }
}
