//! Company directories (LDAP, Active Directory): finding a user, checking their password by
//! binding as them, and listing every user for a sync. Tessera stores no copy of a directory
//! password. Each check opens its own connection (LDAPS, or StartTLS, or plain to this machine),
//! binds the service account, searches with the configured filter (the login name escaped),
//! then binds as the user's DN. An empty password is never sent: many directories treat a bind
//! with one as an anonymous bind, which succeeds. Nothing here touches the database; the service
//! does that with what these functions find.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, StdStream, ldap_escape};
use tessera_core::secret::SecretString;

use crate::config::{DirectorySettings, GroupKinds, WhenUnreachable};
use crate::wake::tls_client_config;

/// LDAP's result code for a wrong password (or a disabled or expired account).
const INVALID_CREDENTIALS: u32 = 49;
/// The most entries one sync reads from a directory.
const MAX_SYNC_ENTRIES: usize = 200_000;

/// A user as a directory describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The directory's name.
    pub directory: String,
    /// Their distinguished name.
    pub dn: String,
    /// Their login name.
    pub username: String,
    /// Their display name.
    pub display_name: Option<String>,
    /// Their phone, as the directory writes it.
    pub phone: Option<String>,
    /// Their email address.
    pub email: Option<String>,
    /// The groups they are a member of.
    pub groups: Vec<String>,
}

/// What a password check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// The password is the user's; their current entry.
    Matches(DirectoryUser),
    /// The directory refused the password (or the account is disabled there).
    Wrong,
    /// The directory no longer lists the user, or they are in none of the allowed groups.
    Gone,
}

/// The directory could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("directory {directory}: {reason}")]
pub struct Unreachable {
    /// Which directory.
    pub directory: String,
    /// What failed (connecting, TLS, the service account's bind, a search).
    pub reason: String,
}

/// The configured directories.
pub struct Directories {
    list: Vec<Directory>,
}

struct Directory {
    settings: DirectorySettings,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Directories {
    /// The directories `settings` describe (their CA files read now).
    pub fn new(settings: &[DirectorySettings]) -> Result<Self, String> {
        let list = settings
            .iter()
            .map(|settings| {
                let tls = settings
                    .ca_file
                    .as_deref()
                    .map(|path| tls_client_config(path).map(Arc::new))
                    .transpose()
                    .map_err(|e| format!("directory {:?}: ca_file {e}", settings.name))?;
                Ok(Directory { settings: settings.clone(), tls })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { list })
    }

    /// Whether any directory is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The names of the configured directories, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|d| d.settings.name.as_str())
    }

    /// What a login does when `directory` cannot be reached (refuse when it is not configured).
    pub fn when_unreachable(&self, directory: &str) -> WhenUnreachable {
        self.get(directory).map_or(WhenUnreachable::Refuse, |d| d.settings.when_unreachable)
    }

    /// The kinds `groups` may have enrolled in `directory`, or `None` when its table names none
    /// of them (any kind then).
    pub fn kinds_for(&self, directory: &str, groups: &[String]) -> Option<Vec<String>> {
        let table = &self.get(directory)?.settings.kinds_by_group;
        let member = |entry: &&GroupKinds| groups.iter().any(|g| g.eq_ignore_ascii_case(&entry.group));
        if !table.iter().any(|entry| member(&entry)) {
            return None;
        }
        let mut kinds: Vec<String> =
            table.iter().filter(member).flat_map(|entry| entry.kinds.iter().cloned()).collect();
        kinds.sort();
        kinds.dedup();
        Some(kinds)
    }

    /// Whether `directory` restricts token kinds by group.
    pub fn restricts_kinds(&self, directory: &str) -> bool {
        self.get(directory).is_some_and(|d| !d.settings.kinds_by_group.is_empty())
    }

    /// How often `directory` is synced, if it is synced on a schedule.
    pub fn sync_interval(&self, directory: &str) -> Option<Duration> {
        self.get(directory).and_then(|d| d.settings.sync_interval)
    }

    fn get(&self, name: &str) -> Option<&Directory> {
        self.list.iter().find(|d| d.settings.name == name)
    }

    /// The first directory, in order, that lists `username` (and lets them in by group).
    pub async fn find(&self, username: &str) -> Result<Option<DirectoryUser>, Unreachable> {
        for directory in &self.list {
            if let Some(user) = directory.find(username).await? {
                return Ok(Some(user));
            }
        }
        Ok(None)
    }

    /// `username` as `directory` lists them, if it does.
    pub async fn find_in(
        &self,
        directory: &str,
        username: &str,
    ) -> Result<Option<DirectoryUser>, Unreachable> {
        let Some(directory) = self.get(directory) else {
            return Err(Unreachable {
                directory: directory.to_owned(),
                reason: "it is not configured".into(),
            });
        };
        directory.find(username).await
    }

    /// Checks `password` for `username` by binding as them in `directory`.
    pub async fn bind(
        &self,
        directory: &str,
        username: &str,
        password: &SecretString,
    ) -> Result<Bind, Unreachable> {
        let Some(directory) = self.get(directory) else {
            return Err(Unreachable {
                directory: directory.to_owned(),
                reason: "it is not configured".into(),
            });
        };
        directory.bind(username, password).await
    }

    /// Every user `directory` lists (and lets in by group).
    pub async fn users(&self, directory: &str) -> Result<Vec<DirectoryUser>, Unreachable> {
        let Some(directory) = self.get(directory) else {
            return Err(Unreachable {
                directory: directory.to_owned(),
                reason: "it is not configured".into(),
            });
        };
        directory.users().await
    }
}

/// A connection bound as the service account.
struct Session {
    ldap: ldap3::Ldap,
}

impl Directory {
    fn unreachable(&self, reason: impl std::fmt::Display) -> Unreachable {
        Unreachable { directory: self.settings.name.clone(), reason: reason.to_string() }
    }

    async fn connect(&self) -> Result<Session, Unreachable> {
        let settings = &self.settings;
        let stream = tokio::time::timeout(settings.timeout, self.tcp())
            .await
            .map_err(|_| self.unreachable(format!("cannot connect within {:?}", settings.timeout)))??;
        let mut options = LdapConnSettings::new()
            .set_conn_timeout(settings.timeout)
            .set_starttls(settings.starttls)
            .set_std_stream(StdStream::Tcp(stream));
        if let Some(tls) = &self.tls {
            options = options.set_config(tls.clone());
        }
        let (connection, mut ldap) = LdapConnAsync::with_settings(options, &settings.url)
            .await
            .map_err(|e| self.unreachable(format!("cannot connect: {e}")))?;
        ldap3::drive!(connection);
        ldap.with_timeout(settings.timeout);
        let bound = ldap
            .simple_bind(&settings.bind_dn, settings.bind_password.expose())
            .await
            .map_err(|e| self.unreachable(format!("the service account's bind failed: {e}")))?;
        if bound.rc != 0 {
            return Err(self.unreachable(format!(
                "the service account's bind was refused (result {}: {})",
                bound.rc, bound.text
            )));
        }
        Ok(Session { ldap })
    }

    /// A TCP connection to the directory with Nagle's algorithm off: the LDAP exchanges are small
    /// requests answered at once, which delayed acknowledgements would otherwise hold up by
    /// tens of milliseconds each.
    async fn tcp(&self) -> Result<std::net::TcpStream, Unreachable> {
        let url = reqwest::Url::parse(&self.settings.url).map_err(|e| self.unreachable(e))?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
        let port = url.port().unwrap_or(if url.scheme() == "ldaps" { 636 } else { 389 });
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| self.unreachable(format!("cannot connect: {e}")))?;
        stream.set_nodelay(true).map_err(|e| self.unreachable(e))?;
        stream.into_std().map_err(|e| self.unreachable(e))
    }

    fn attributes(&self) -> Vec<&str> {
        let a = &self.settings.attributes;
        let mut names = vec![&a.username, &a.display_name, &a.phone, &a.email, &a.groups];
        names.extend(&a.mobile);
        names.into_iter().map(String::as_str).collect()
    }

    async fn search(&self, session: &mut Session, filter: &str) -> Result<Vec<DirectoryUser>, Unreachable> {
        let found = session
            .ldap
            .with_timeout(self.settings.timeout)
            .search(&self.settings.base_dn, Scope::Subtree, filter, self.attributes())
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(|e| self.unreachable(format!("the search failed: {e}")))?;
        let entries = found.0;
        if entries.len() > MAX_SYNC_ENTRIES {
            return Err(self.unreachable(format!("the search found more than {MAX_SYNC_ENTRIES} users")));
        }
        if entries.iter().any(|entry| !well_formed(&entry.0)) {
            return Err(self.unreachable("the search answered with an entry that is not valid LDAP"));
        }
        Ok(entries
            .into_iter()
            .map(|entry| self.user_of(SearchEntry::construct(entry)))
            .filter(|user| self.allowed(user))
            .collect())
    }

    fn user_of(&self, entry: SearchEntry) -> DirectoryUser {
        let a = &self.settings.attributes;
        let first = |name: &str| {
            entry
                .attrs
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .and_then(|(_, values)| values.first())
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let groups = entry
            .attrs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(&a.groups))
            .map(|(_, values)| values.clone())
            .unwrap_or_default();
        DirectoryUser {
            directory: self.settings.name.clone(),
            username: first(&a.username).unwrap_or_default(),
            display_name: first(&a.display_name),
            phone: a.mobile.as_deref().and_then(first).or_else(|| first(&a.phone)),
            email: first(&a.email),
            groups,
            dn: entry.dn,
        }
    }

    fn allowed(&self, user: &DirectoryUser) -> bool {
        let allowed = &self.settings.allowed_groups;
        !user.username.is_empty()
            && (allowed.is_empty()
                || user.groups.iter().any(|group| allowed.iter().any(|a| a.eq_ignore_ascii_case(group))))
    }

    fn filter_for(&self, username: &str) -> String {
        self.settings.user_filter.replace("{username}", &ldap_escape(username))
    }

    async fn find(&self, username: &str) -> Result<Option<DirectoryUser>, Unreachable> {
        let mut session = self.connect().await?;
        let found = self.search(&mut session, &self.filter_for(username)).await;
        let _ = session.ldap.unbind().await;
        let mut found = found?;
        found.retain(|user| user.username.eq_ignore_ascii_case(username));
        Ok(if found.len() == 1 { found.pop() } else { None })
    }

    async fn bind(&self, username: &str, password: &SecretString) -> Result<Bind, Unreachable> {
        let mut session = self.connect().await?;
        let outcome = self.bind_in(&mut session, username, password).await;
        let _ = session.ldap.unbind().await;
        outcome
    }

    async fn bind_in(
        &self,
        session: &mut Session,
        username: &str,
        password: &SecretString,
    ) -> Result<Bind, Unreachable> {
        let mut found = self.search(session, &self.filter_for(username)).await?;
        found.retain(|user| user.username.eq_ignore_ascii_case(username));
        let user = match found.len() {
            1 => found.remove(0),
            0 => return Ok(Bind::Gone),
            _ => {
                return Err(
                    self.unreachable(format!("the filter finds {} entries for one user", found.len()))
                );
            }
        };
        if password.expose().is_empty() {
            return Ok(Bind::Wrong);
        }
        let bound = session
            .ldap
            .with_timeout(self.settings.timeout)
            .simple_bind(&user.dn, password.expose())
            .await
            .map_err(|e| self.unreachable(format!("the user's bind failed: {e}")))?;
        match bound.rc {
            0 => Ok(Bind::Matches(user)),
            INVALID_CREDENTIALS => Ok(Bind::Wrong),
            rc => Err(self.unreachable(format!("the user's bind answered result {rc}: {}", bound.text))),
        }
    }

    async fn users(&self) -> Result<Vec<DirectoryUser>, Unreachable> {
        let mut session = self.connect().await?;
        let every = self.settings.user_filter.replace("{username}", "*");
        let found = self.search(&mut session, &every).await;
        let _ = session.ldap.unbind().await;
        found
    }
}

/// Whether a search result entry has the shape `SearchEntry::construct` expects (a DN and
/// attributes, names in UTF-8), which it panics without. A search with a malformed entry fails
/// as a whole: skipping the entry would make a sync take its user for gone.
fn well_formed(entry: &ldap3::asn1::StructureTag) -> bool {
    let utf8 =
        |tag: ldap3::asn1::StructureTag| tag.expect_primitive().is_some_and(|b| String::from_utf8(b).is_ok());
    let Some(mut parts) = entry.clone().match_id(4).and_then(|t| t.expect_constructed()).map(Vec::into_iter)
    else {
        return false;
    };
    let (Some(dn), Some(attributes)) = (parts.next(), parts.next()) else { return false };
    let Some(attributes) = attributes.expect_constructed() else { return false };
    utf8(dn)
        && attributes.into_iter().all(|attribute| {
            let Some(mut pair) = attribute.expect_constructed().map(Vec::into_iter) else { return false };
            let (Some(name), Some(values)) = (pair.next(), pair.next()) else { return false };
            utf8(name)
                && values
                    .expect_constructed()
                    .is_some_and(|v| v.into_iter().all(|t| t.expect_primitive().is_some()))
        })
}

#[cfg(test)]
mod tests {
    use ldap3::asn1::{PL, StructureTag, TagClass};
    use ldap3::{ResultEntry, SearchEntry};

    use super::well_formed;

    fn tag(id: u64, payload: PL) -> StructureTag {
        StructureTag { class: TagClass::Application, id, payload }
    }

    fn text(value: &[u8]) -> StructureTag {
        StructureTag { class: TagClass::Universal, id: 4, payload: PL::P(value.to_vec()) }
    }

    fn set(items: Vec<StructureTag>) -> StructureTag {
        StructureTag { class: TagClass::Universal, id: 16, payload: PL::C(items) }
    }

    fn entry(dn: &[u8], attributes: Vec<StructureTag>) -> StructureTag {
        tag(4, PL::C(vec![text(dn), set(attributes)]))
    }

    #[test]
    fn entries_construct_reads_are_kept_and_those_it_would_panic_on_are_not() {
        let mobile = set(vec![text(b"mobile"), set(vec![text(b"+447700900123")])]);
        let photo = set(vec![text(b"jpegPhoto"), set(vec![text(&[0xff, 0xd8, 0xff])])]);
        let good = entry(b"uid=ann,dc=example", vec![mobile.clone(), photo]);
        assert!(well_formed(&good));
        let read = SearchEntry::construct(ResultEntry::new(good));
        assert_eq!(read.attrs["mobile"], ["+447700900123"]);

        assert!(!well_formed(&entry(&[0xc3, 0x28], vec![mobile.clone()])), "a DN that is not UTF-8");
        let bad_name = set(vec![text(&[0xff]), set(vec![text(b"x")])]);
        assert!(!well_formed(&entry(b"uid=ann", vec![bad_name])), "an attribute name that is not UTF-8");
        let no_values = set(vec![text(b"mobile")]);
        assert!(!well_formed(&entry(b"uid=ann", vec![no_values])), "an attribute without values");
        assert!(!well_formed(&tag(4, PL::C(vec![text(b"uid=ann")]))), "an entry without attributes");
        assert!(!well_formed(&tag(19, PL::C(vec![text(b"ldap://elsewhere")]))), "a referral");
        assert!(!well_formed(&tag(4, PL::P(b"uid=ann".to_vec()))), "a primitive entry");
    }
}
