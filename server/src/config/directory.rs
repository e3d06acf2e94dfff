//! The `[[directory]]` sections: company directories (LDAP, Active Directory) whose users log in
//! with their directory password, checked by bind. Everything is checked when the server starts:
//! the URL and its TLS (StartTLS or LDAPS, plain only to this machine), the service account's
//! password file, the filter's `{username}` placeholder.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tessera_core::secret::SecretString;

use super::ConfigError;
use super::delivery::read_secret;

/// One `[[directory]]` as the file gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDirectory {
    name: String,
    url: String,
    starttls: Option<bool>,
    bind_dn: String,
    bind_password_file: PathBuf,
    base_dn: String,
    user_filter: Option<String>,
    ca_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
    when_unreachable: Option<String>,
    allowed_groups: Option<Vec<String>>,
    sync_interval_secs: Option<u64>,
    #[serde(default)]
    attributes: FileAttributes,
    #[serde(default)]
    kinds_by_group: Vec<FileGroupKinds>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroupKinds {
    group: String,
    kinds: Vec<String>,
}

/// The token kinds members of a group may have enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupKinds {
    /// The group's DN.
    pub group: String,
    /// The kinds (`totp`, `hotp`, `push`, `sms`, `email`).
    pub kinds: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAttributes {
    username: Option<String>,
    display_name: Option<String>,
    phone: Option<String>,
    mobile: Option<String>,
    email: Option<String>,
    groups: Option<String>,
}

/// What a login does when its user's directory cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnreachable {
    /// Refuse the login, saying the directory is unreachable (the default).
    Refuse,
    /// Check the PIN an administrator set in Tessera for the user, if any.
    LocalPin,
}

/// The directory attributes Tessera reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryAttributes {
    /// The login name (`uid`; `sAMAccountName` on Active Directory).
    pub username: String,
    /// The display name (`cn`, `displayName`).
    pub display_name: String,
    /// The phone codes are sent to (`mobile`, `telephoneNumber`).
    pub phone: String,
    /// A mobile number, preferred to `phone` when the entry has one (`mobile`, with `phone =
    /// "telephoneNumber"`).
    pub mobile: Option<String>,
    /// The email address (`mail`).
    pub email: String,
    /// Group membership (`memberOf`).
    pub groups: String,
}

/// One company directory.
#[derive(Clone)]
pub struct DirectorySettings {
    /// Its name, stored with each user it brings in.
    pub name: String,
    /// `ldaps://host`, or `ldap://host` with StartTLS (or plain, to this machine only).
    pub url: String,
    /// Whether `ldap://` is upgraded with StartTLS.
    pub starttls: bool,
    /// The service account that searches for users.
    pub bind_dn: String,
    /// Its password.
    pub bind_password: SecretString,
    /// Where users are searched.
    pub base_dn: String,
    /// The search filter, with `{username}` where the (escaped) login name goes.
    pub user_filter: String,
    /// An extra CA certificate (PEM) trusted beside the system's roots.
    pub ca_file: Option<PathBuf>,
    /// How long connecting, binding or one search may take.
    pub timeout: Duration,
    /// What a login does when the directory cannot be reached.
    pub when_unreachable: WhenUnreachable,
    /// Group DNs, one of which a user must be in to use Tessera (empty: everyone the filter finds).
    pub allowed_groups: Vec<String>,
    /// How often the server syncs the directory's users (`None`: only at login and `admin sync`).
    pub sync_interval: Option<Duration>,
    /// The attributes read.
    pub attributes: DirectoryAttributes,
    /// Which token kinds members of these groups may have enrolled (a user in none of them may
    /// have any kind).
    pub kinds_by_group: Vec<GroupKinds>,
}

impl std::fmt::Debug for DirectorySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectorySettings")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .finish_non_exhaustive()
    }
}

/// Checks the `[[directory]]` sections.
pub(super) fn directories(files: Vec<FileDirectory>) -> Result<Vec<DirectorySettings>, ConfigError> {
    let settings = files.into_iter().map(directory).collect::<Result<Vec<_>, _>>()?;
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = settings.iter().find(|d| !seen.insert(d.name.as_str())) {
        return Err(ConfigError::OutOfRange(format!("directory {:?} is named twice", twice.name)));
    }
    Ok(settings)
}

fn directory(file: FileDirectory) -> Result<DirectorySettings, ConfigError> {
    let bad = |message: String| ConfigError::OutOfRange(format!("directory {:?}: {message}", file.name));
    if file.name.is_empty() || file.name.len() > 64 || file.name.chars().any(|c| c.is_control()) {
        return Err(bad("name must be 1 to 64 characters".into()));
    }
    let url = reqwest::Url::parse(&file.url).map_err(|e| bad(format!("url {:?}: {e}", file.url)))?;
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
    if host.is_empty() {
        return Err(bad("url has no host".into()));
    }
    let starttls = file.starttls.unwrap_or(false);
    match (url.scheme(), starttls) {
        ("ldaps", true) => {
            return Err(bad("starttls is for ldap:// (ldaps:// is TLS from the first byte)".into()));
        }
        ("ldaps", false) | ("ldap", true) => {}
        ("ldap", false) => {
            let loopback =
                host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(bad(format!(
                    "ldap:// without starttls = true sends passwords in the clear: it is allowed only to a directory on this machine, not {host}"
                )));
            }
        }
        (other, _) => return Err(bad(format!("url must be ldaps:// or ldap://, not {other}://"))),
    }
    let user_filter = file.user_filter.unwrap_or_else(|| "(&(objectClass=person)(uid={username}))".into());
    if !user_filter.contains("{username}") || !user_filter.starts_with('(') || !user_filter.ends_with(')') {
        return Err(bad("user_filter must be a parenthesised LDAP filter with {username} in it".into()));
    }
    let bind_password =
        read_secret(&file.bind_password_file).map_err(|e| bad(format!("bind_password_file: {e}")))?;
    if let Some(path) = &file.ca_file {
        std::fs::metadata(path).map_err(|e| bad(format!("ca_file {}: {e}", path.display())))?;
    }
    let timeout_secs = file.timeout_secs.unwrap_or(5);
    if !(1..=60).contains(&timeout_secs) {
        return Err(bad("timeout_secs must be 1 to 60".into()));
    }
    let when_unreachable = match file.when_unreachable.as_deref().unwrap_or("refuse") {
        "refuse" => WhenUnreachable::Refuse,
        "local_pin" => WhenUnreachable::LocalPin,
        other => return Err(bad(format!("when_unreachable = {other:?}: use \"refuse\" or \"local_pin\""))),
    };
    let sync_interval = match file.sync_interval_secs.unwrap_or(0) {
        0 => None,
        secs if secs >= 60 => Some(Duration::from_secs(secs)),
        _ => return Err(bad("sync_interval_secs must be 0 (off) or at least 60".into())),
    };
    let attribute = |given: Option<String>, default: &str| -> Result<String, ConfigError> {
        let name = given.unwrap_or_else(|| default.to_owned());
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(bad(format!("attribute {name:?} is not an LDAP attribute name")));
        }
        Ok(name)
    };
    let attributes = DirectoryAttributes {
        username: attribute(file.attributes.username, "uid")?,
        display_name: attribute(file.attributes.display_name, "cn")?,
        phone: attribute(file.attributes.phone, "mobile")?,
        mobile: file.attributes.mobile.map(|name| attribute(Some(name), "")).transpose()?,
        email: attribute(file.attributes.email, "mail")?,
        groups: attribute(file.attributes.groups, "memberOf")?,
    };
    const KINDS: [&str; 5] = ["totp", "hotp", "push", "sms", "email"];
    let mut kinds_by_group = Vec::new();
    for entry in file.kinds_by_group {
        if let Some(unknown) = entry.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(bad(format!(
                "kinds_by_group {:?}: {unknown:?} is not a kind (totp, hotp, push, sms, email)",
                entry.group
            )));
        }
        kinds_by_group.push(GroupKinds { group: entry.group, kinds: entry.kinds });
    }
    Ok(DirectorySettings {
        name: file.name,
        url: file.url,
        starttls,
        bind_dn: file.bind_dn,
        bind_password,
        base_dn: file.base_dn,
        user_filter,
        ca_file: file.ca_file,
        timeout: Duration::from_secs(timeout_secs),
        when_unreachable,
        allowed_groups: file.allowed_groups.unwrap_or_default(),
        sync_interval,
        attributes,
        kinds_by_group,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(url: &str, starttls: Option<bool>, password_file: PathBuf) -> FileDirectory {
        FileDirectory {
            name: "corp".into(),
            url: url.into(),
            starttls,
            bind_dn: "cn=tessera,dc=example,dc=com".into(),
            bind_password_file: password_file,
            base_dn: "dc=example,dc=com".into(),
            user_filter: None,
            ca_file: None,
            timeout_secs: None,
            when_unreachable: None,
            allowed_groups: None,
            sync_interval_secs: None,
            attributes: FileAttributes::default(),
            kinds_by_group: Vec::new(),
        }
    }

    #[test]
    fn passwords_go_to_a_directory_off_this_machine_only_over_tls() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("ldap.pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let check = |url: &str, starttls| directories(vec![file(url, starttls, pw.clone())]).map(|d| d.len());
        assert_eq!(check("ldaps://dc1.example.com", None).unwrap(), 1);
        assert_eq!(check("ldap://dc1.example.com", Some(true)).unwrap(), 1);
        assert_eq!(check("ldap://127.0.0.1:3389", None).unwrap(), 1);
        let plain = check("ldap://dc1.example.com", None).unwrap_err().to_string();
        assert!(plain.contains("in the clear") && plain.contains("dc1.example.com"), "{plain}");
        let both = check("ldaps://dc1.example.com", Some(true)).unwrap_err().to_string();
        assert!(both.contains("starttls is for ldap://"), "{both}");
        let scheme = check("http://dc1.example.com", None).unwrap_err().to_string();
        assert!(scheme.contains("ldaps:// or ldap://"), "{scheme}");
        let mut no_placeholder = file("ldaps://dc1.example.com", None, pw.clone());
        no_placeholder.user_filter = Some("(uid=alice)".into());
        let error = directories(vec![no_placeholder]).unwrap_err().to_string();
        assert!(error.contains("{username}"), "{error}");
        let twice = directories(vec![file("ldaps://a", None, pw.clone()), file("ldaps://b", None, pw)]);
        assert!(twice.unwrap_err().to_string().contains("named twice"));
    }
}
