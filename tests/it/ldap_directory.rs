//! A real OpenLDAP directory for the suite: Debian's `slapd`, configured from LDIF by
//! `scripts/lib/slapd.sh` (which the directory benchmark uses too), its entries added through
//! `ldapadd` so the `memberOf` overlay sees them, serving `ldap://` with StartTLS and `ldaps://` on loopback with a certificate from a
//! test CA. The suite's directory starts once; a test that stops its directory starts its own.
//! `slapd` logs every bind (`olcLogLevel: stats`), so a test can count the binds a login caused.
//! A watchdog kills it when the test process is gone.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::server_support::free_port;
use crate::support::{loopback_certificate, output_with_input, watchdog};

/// The directory's suffix.
pub const BASE: &str = "dc=example,dc=com";
/// The group users must be in to use Tessera, in the tests that restrict by group.
pub const MFA_GROUP: &str = "cn=mfa-users,ou=groups,dc=example,dc=com";
const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
const ROOT_PW: &str = "admin-pw";
const SERVICE_DN: &str = "cn=tessera,ou=services,dc=example,dc=com";
const SERVICE_PW: &str = "service-pw";

/// A running `slapd`.
pub struct Slapd {
    /// `ldap://127.0.0.1:PORT` (StartTLS available).
    pub ldap_url: String,
    /// `ldaps://127.0.0.1:PORT`.
    pub ldaps_url: String,
    dir: tempfile::TempDir,
    process: Mutex<Option<Child>>,
    _watchdog: Child,
}

/// How a server reaches the directory.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    /// `ldap://` upgraded with StartTLS.
    StartTls,
    /// `ldaps://`.
    Ldaps,
    /// Plain `ldap://` (allowed to loopback only).
    Plain,
}

/// The suite's directory, started on first use.
pub fn directory() -> &'static Slapd {
    static SLAPD: OnceLock<Slapd> = OnceLock::new();
    SLAPD.get_or_init(Slapd::start)
}

impl Slapd {
    /// A fresh directory with the base entries, the service account and the MFA group.
    pub fn start() -> Self {
        for program in ["/usr/sbin/slapd", "/usr/sbin/slapadd", "/usr/bin/ldapadd"] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: install Debian's slapd and ldap-utils (scripts/setup-debian.sh does)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        loopback_certificate().write_to(dir.path());
        std::fs::write(path("service.pw"), format!("{SERVICE_PW}\n")).unwrap();
        let (plain, secure) = (free_port(), free_port());
        let ldap_url = format!("ldap://127.0.0.1:{plain}");
        let ldaps_url = format!("ldaps://127.0.0.1:{secure}");
        let log = std::fs::File::create(path("slapd.log")).unwrap();
        let process = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/slapd.sh"))
            .arg(dir.path())
            .args([plain.to_string(), secure.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let watchdog = watchdog(&[process.id()]);
        let slapd =
            Self { ldap_url, ldaps_url, dir, process: Mutex::new(Some(process)), _watchdog: watchdog };
        slapd.wait_until_up();
        slapd.add(&std::fs::read_to_string(slapd.file("base.ldif")).unwrap());
        slapd
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let probe = self.tool("/usr/bin/ldapsearch", &["-b", BASE, "-s", "base"], "");
            if probe.status.success() || probe.status.code() == Some(32) {
                return;
            }
            assert!(Instant::now() < deadline, "slapd did not start:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn tool(&self, program: &str, args: &[&str], input: &str) -> std::process::Output {
        let mut command = Command::new(program);
        command.args(["-x", "-H", &self.ldap_url, "-D", ROOT_DN, "-w", ROOT_PW]).args(args);
        output_with_input(&mut command, input)
    }

    fn must(&self, program: &str, args: &[&str], input: &str) {
        let output = self.tool(program, args, input);
        assert!(
            output.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Adds entries (LDIF) as the directory's administrator.
    pub fn add(&self, ldif: &str) {
        self.must("/usr/bin/ldapadd", &[], ldif);
    }

    /// Applies changes (LDIF with `changetype`) as the directory's administrator.
    pub fn modify(&self, ldif: &str) {
        self.must("/usr/bin/ldapmodify", &[], ldif);
    }

    /// Deletes an entry.
    pub fn delete(&self, dn: &str) {
        self.must("/usr/bin/ldapdelete", &[dn], "");
    }

    /// Adds a person under `ou=people` with a password, a mobile number and an address, in the
    /// MFA group when `in_group`.
    pub fn add_person(&self, uid: &str, name: &str, password: &str, mobile: &str, in_group: bool) -> String {
        let dn = format!("uid={uid},ou=people,{BASE}");
        self.add(&format!(
            "dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {name}\nsn: {uid}\nmobile: {mobile}\n\
             mail: {uid}@example.com\nuserPassword: {password}\n"
        ));
        if in_group {
            self.modify(&format!("dn: {MFA_GROUP}\nchangetype: modify\nadd: member\nmember: {dn}\n"));
        }
        dn
    }

    /// How many binds as `dn` the directory has seen.
    pub fn binds_as(&self, dn: &str) -> usize {
        let wanted = format!("bind dn=\"{}\" method=", dn.to_ascii_lowercase());
        self.log().lines().filter(|line| line.to_ascii_lowercase().contains(&wanted)).count()
    }

    /// What slapd has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Stops the directory (for the tests of a directory that goes away).
    pub fn stop(&self) {
        if let Some(mut process) = self.process.lock().unwrap().take() {
            process.kill().ok();
            process.wait().ok();
        }
    }

    /// A `[[directory]]` section for `tessera-server` named `name`, reaching this directory by
    /// `transport`, with `extra` lines (`allowed_groups = …`, `when_unreachable = …`, or a
    /// `user_filter` in place of the default one).
    pub fn config_toml(&self, name: &str, transport: Transport, extra: &str) -> String {
        let (url, starttls) = match transport {
            Transport::StartTls => (self.ldap_url.as_str(), "starttls = true\n"),
            Transport::Ldaps => (self.ldaps_url.as_str(), ""),
            Transport::Plain => (self.ldap_url.as_str(), ""),
        };
        let filter = if extra.contains("user_filter") {
            ""
        } else {
            "user_filter = \"(&(objectClass=inetOrgPerson)(uid={username}))\"\n"
        };
        format!(
            "[[directory]]\nname = \"{name}\"\nurl = \"{url}\"\n{starttls}bind_dn = \"{SERVICE_DN}\"\n\
             bind_password_file = \"{}\"\nbase_dn = \"ou=people,{BASE}\"\n{filter}ca_file = \"{}\"\n\
             timeout_secs = 3\n{extra}\n",
            self.file("service.pw").display(),
            self.file("ca.pem").display()
        )
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
