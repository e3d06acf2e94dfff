//! Users from company directories (`[[directory]]`): their password checked by binding as them
//! (Tessera keeps no copy), their account created at their first successful login or by a sync,
//! their phone, email and display name kept current, and their tokens disabled when the
//! directory stops listing them. A locked user's directory is never asked, so attackers cannot
//! trip the directory's own lockout through Tessera; a name no directory knows takes as long as
//! a typical bind, so timing does not tell which names exist.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tessera_core::delivery::{EmailAddress, PhoneNumber};
use tessera_core::secret::SecretString;
use utoipa::ToSchema;

use super::audit::AdminAudit;
use super::{Actor, Service, ServiceError};
use crate::clock::now_i64;
use crate::config::WhenUnreachable;
use crate::directory::{Bind, DirectoryUser};
use crate::store::{AuditResult, NewAudit, NewUserRow, UserRow};

/// What checking a user's password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PasswordCheck {
    /// The password is the user's.
    Matches,
    /// It is not (counts towards the user's lock).
    Wrong,
    /// The user's directory cannot be reached, and its policy is to refuse.
    DirectoryUnavailable,
    /// The user's directory no longer lists them.
    DirectoryGone,
}

/// How long a directory user's wrong password and a name no directory knows take to answer
/// (moving averages of the work, from the request's start). Both answers wait for the slower of
/// the two, so their timing does not tell which names exist.
#[derive(Debug, Default)]
pub(crate) struct BindTiming {
    wrong_micros: AtomicU64,
    unknown_micros: AtomicU64,
}

/// Which answer a time belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A directory user's wrong password.
    WrongPassword,
    /// A name no directory knows.
    UnknownName,
}

impl BindTiming {
    /// Records how long `refusal`'s work took since `started`, then waits until the slower
    /// answer's typical time has passed.
    pub(crate) async fn even_out(&self, refusal: Refusal, started: Instant) {
        let average = match refusal {
            Refusal::WrongPassword => &self.wrong_micros,
            Refusal::UnknownName => &self.unknown_micros,
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let old = average.load(Ordering::Relaxed);
        average.store(if old == 0 { micros } else { (old * 7 + micros) / 8 }, Ordering::Relaxed);
        let slower =
            self.wrong_micros.load(Ordering::Relaxed).max(self.unknown_micros.load(Ordering::Relaxed));
        if let Some(left) = Duration::from_micros(slower).checked_sub(started.elapsed()) {
            tokio::time::sleep(left).await;
        }
    }
}

/// What a first login by a name Tessera does not know found.
pub(crate) enum FirstLogin {
    /// A directory knows the name and the password is right: the user now exists in Tessera.
    Created,
    /// A directory knows the name, and the password is wrong.
    WrongPassword,
    /// No directory knows the name.
    Unknown,
    /// A directory could not be asked.
    Unavailable,
}

/// What a sync of one directory did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SyncReport {
    /// The directory.
    pub directory: String,
    /// Users created.
    pub created: Vec<String>,
    /// Users whose display name, phone or email changed.
    pub updated: Vec<String>,
    /// Users the directory no longer lists (their tokens are disabled).
    pub gone: Vec<String>,
    /// Users it lists again after they were gone (their tokens stay disabled until an
    /// administrator enables them).
    pub back: Vec<String>,
    /// Names that are local Tessera users or another directory's (left alone).
    pub conflicts: Vec<String>,
    /// Users the directory lists that were already current.
    pub unchanged: usize,
}

impl Service {
    /// Checks `password` for `user`: by Argon2 for a local user, by bind for a directory's. A
    /// `locked` user's directory is not asked (the answer is `Wrong` and the caller refuses as
    /// locked anyway).
    pub(crate) async fn check_user_password(
        &self,
        user: &UserRow,
        password: Option<&SecretString>,
        locked: bool,
    ) -> Result<PasswordCheck, ServiceError> {
        let Some(directory) = &user.directory else {
            return Ok(if self.password_matches(user, password).await {
                PasswordCheck::Matches
            } else {
                PasswordCheck::Wrong
            });
        };
        if user.directory_gone_at.is_some() {
            return Ok(PasswordCheck::DirectoryGone);
        }
        let Some(password) = password.filter(|p| !p.expose().is_empty()) else {
            return Ok(PasswordCheck::Wrong);
        };
        if locked {
            return Ok(PasswordCheck::Wrong);
        }
        match self.directories.bind(directory, &user.username, password).await {
            Ok(Bind::Matches(entry)) => {
                self.keep_current(user, &entry).await?;
                Ok(PasswordCheck::Matches)
            }
            Ok(Bind::Wrong) => Ok(PasswordCheck::Wrong),
            Ok(Bind::Gone) => {
                let audit = AdminAudit::system("directory", "user.directory_gone")
                    .user(&user.username)
                    .reason(directory);
                self.store.directory_gone(user, now_i64(), &audit.record()).await?;
                Ok(PasswordCheck::DirectoryGone)
            }
            Err(unreachable) => {
                tracing::warn!(error = %unreachable, "a directory password could not be checked");
                self.audit_unreachable(&user.username, &unreachable.to_string()).await?;
                match self.directories.when_unreachable(directory) {
                    WhenUnreachable::LocalPin if user.password_hash.is_some() => {
                        Ok(if self.check_password(password, user.password_hash.as_deref()).await {
                            PasswordCheck::Matches
                        } else {
                            PasswordCheck::Wrong
                        })
                    }
                    _ => Ok(PasswordCheck::DirectoryUnavailable),
                }
            }
        }
    }

    /// A name Tessera does not know, logging in with `password`: the first directory that knows
    /// the name checks it, and on success the user is created from their entry.
    pub(crate) async fn first_directory_login(
        &self,
        username: &str,
        password: Option<&SecretString>,
    ) -> Result<FirstLogin, ServiceError> {
        let Some(password) = password.filter(|p| !p.expose().is_empty()) else {
            return Ok(FirstLogin::Unknown);
        };
        for name in self.directories.names() {
            match self.directories.bind(name, username, password).await {
                Ok(Bind::Matches(entry)) => {
                    let audit =
                        AdminAudit::system("directory", "user.provision").user(&entry.username).reason(name);
                    self.insert_directory_user(&entry, &audit).await?;
                    return Ok(FirstLogin::Created);
                }
                Ok(Bind::Wrong) => return Ok(FirstLogin::WrongPassword),
                Ok(Bind::Gone) => {}
                Err(unreachable) => {
                    tracing::warn!(error = %unreachable, "a directory could not be asked about a first login");
                    self.audit_unreachable(username, &unreachable.to_string()).await?;
                    return Ok(FirstLogin::Unavailable);
                }
            }
        }
        Ok(FirstLogin::Unknown)
    }

    /// Refuses to enroll `kind` for a directory user whose groups the directory's
    /// `kinds_by_group` table does not allow it (their groups are read from the directory now).
    pub(crate) async fn check_kind_allowed(&self, user: &UserRow, kind: &str) -> Result<(), ServiceError> {
        let Some(directory) = user.directory.as_deref().filter(|d| self.directories.restricts_kinds(d))
        else {
            return Ok(());
        };
        let entry = self.directories.find_in(directory, &user.username).await.map_err(|e| {
            ServiceError::Unavailable(format!(
                "which tokens {} may have cannot be checked: {e}",
                user.username
            ))
        })?;
        let Some(entry) = entry else {
            return Err(ServiceError::InvalidInput(format!(
                "directory {directory} no longer lists {}",
                user.username
            )));
        };
        match self.directories.kinds_for(directory, &entry.groups) {
            Some(kinds) if !kinds.iter().any(|k| k == kind) => Err(ServiceError::InvalidInput(format!(
                "{}'s groups in directory {directory} allow only these token kinds: {}",
                user.username,
                kinds.join(", ")
            ))),
            _ => Ok(()),
        }
    }

    /// Reads every configured directory's users and brings Tessera's users in line.
    pub async fn sync_directories(&self, actor: &Actor) -> Result<Vec<SyncReport>, ServiceError> {
        let mut reports = Vec::new();
        for name in self.directories.names() {
            reports.push(self.sync_directory(actor, name).await?);
        }
        Ok(reports)
    }

    /// One directory's sync.
    pub async fn sync_directory(&self, actor: &Actor, name: &str) -> Result<SyncReport, ServiceError> {
        let listed =
            self.directories.users(name).await.map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        let mut report = SyncReport { directory: name.to_owned(), ..SyncReport::default() };
        let now = now_i64();
        for entry in &listed {
            match self.store.user(&entry.username).await? {
                None => {
                    let audit = AdminAudit::new(actor, "user.sync").user(&entry.username).reason("created");
                    self.insert_directory_user(entry, &audit).await?;
                    report.created.push(entry.username.clone());
                }
                Some(user) if user.directory.as_deref() != Some(name) => {
                    report.conflicts.push(user.username);
                }
                Some(user) => {
                    let back = user.directory_gone_at.is_some();
                    if self.keep_current(&UserRow { directory_gone_at: None, ..user.clone() }, entry).await?
                        || back
                    {
                        if back {
                            let current = self.store.user(&user.username).await?.unwrap_or(user.clone());
                            let returned = UserRow { directory_gone_at: None, ..current };
                            let audit =
                                AdminAudit::new(actor, "user.sync").user(&user.username).reason("back");
                            self.store.update_user(&returned, &audit.record()).await?;
                            report.back.push(user.username);
                        } else {
                            report.updated.push(user.username);
                        }
                    } else {
                        report.unchanged += 1;
                    }
                }
            }
        }
        for user in self.store.directory_users(name).await? {
            let listed_now = listed.iter().any(|entry| entry.username == user.username);
            if !listed_now && user.directory_gone_at.is_none() {
                let audit = AdminAudit::new(actor, "user.directory_gone").user(&user.username).reason(name);
                self.store.directory_gone(&user, now, &audit.record()).await?;
                report.gone.push(user.username);
            }
        }
        tracing::info!(
            directory = name,
            created = report.created.len(),
            updated = report.updated.len(),
            gone = report.gone.len(),
            "directory synced"
        );
        Ok(report)
    }

    /// Syncs each directory that asks for it on its schedule, until the process ends.
    pub async fn run_directory_syncs(&self) {
        let scheduled: Vec<(String, Duration)> = self
            .directories
            .names()
            .filter_map(|name| self.directories.sync_interval(name).map(|every| (name.to_owned(), every)))
            .collect();
        if scheduled.is_empty() {
            return;
        }
        let shortest = scheduled.iter().map(|(_, every)| *every).min().unwrap_or(Duration::from_secs(3600));
        let mut last: Vec<Option<Instant>> = vec![None; scheduled.len()];
        loop {
            for ((name, every), last) in scheduled.iter().zip(last.iter_mut()) {
                if last.is_none_or(|at| at.elapsed() >= *every) {
                    *last = Some(Instant::now());
                    if let Err(error) = self.sync_directory(&Actor::Cli, name).await {
                        tracing::warn!(directory = name, %error, "the scheduled directory sync failed");
                    }
                }
            }
            tokio::time::sleep(shortest.min(Duration::from_secs(60))).await;
        }
    }

    /// Writes the directory's display name, phone and email over the user's when they differ;
    /// whether anything changed.
    async fn keep_current(&self, user: &UserRow, entry: &DirectoryUser) -> Result<bool, ServiceError> {
        let (phone, email) = contact_of(entry);
        if user.display_name == entry.display_name && user.phone == phone && user.email == email {
            return Ok(false);
        }
        let current = UserRow { display_name: entry.display_name.clone(), phone, email, ..user.clone() };
        let audit = AdminAudit::system("directory", "user.sync").user(&user.username).reason("attributes");
        self.store.update_user(&current, &audit.record()).await?;
        Ok(true)
    }

    async fn insert_directory_user(
        &self,
        entry: &DirectoryUser,
        audit: &AdminAudit,
    ) -> Result<UserRow, ServiceError> {
        let (phone, email) = contact_of(entry);
        let row = NewUserRow {
            username: &entry.username,
            display_name: entry.display_name.as_deref(),
            phone: phone.as_deref(),
            email: email.as_deref(),
            directory: Some(&entry.directory),
            created_at: now_i64(),
            ..NewUserRow::default()
        };
        Ok(self.store.insert_user(&row, &audit.record()).await?)
    }

    async fn audit_unreachable(&self, username: &str, reason: &str) -> Result<(), ServiceError> {
        let audit = NewAudit {
            at_ms: crate::clock::unix_now_ms(),
            actor: "directory",
            action: "directory.unreachable",
            username: Some(username),
            serial: None,
            client_ip: None,
            result: AuditResult::Reject,
            reason: Some(reason),
        };
        Ok(self.store.audit(&audit).await?)
    }
}

/// The phone (E.164, spaces and dashes dropped) and email an entry gives; values that do not
/// parse are left out.
fn contact_of(entry: &DirectoryUser) -> (Option<String>, Option<String>) {
    let phone = entry.phone.as_deref().and_then(|text| {
        let compact: String = text.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
        PhoneNumber::parse(&compact).ok().map(|p| p.as_str().to_owned())
    });
    let email =
        entry.email.as_deref().and_then(|text| EmailAddress::parse(text).ok()).map(|a| a.as_str().to_owned());
    (phone, email)
}
