//! The `[radius]` section: where the RADIUS listener answers, and the clients it answers (VPN
//! concentrators, firewalls, Wi-Fi controllers), each by address range with its own shared secret
//! and mode. Checked when the server starts; a secret is read from its file, never written in the
//! configuration itself.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;
use tessera_core::secret::SecretString;

use super::ConfigError;
use super::delivery::read_secret;
use super::portal::address_range;

/// The file's `[radius]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRadius {
    listen: Option<SocketAddr>,
    accounting_listen: Option<SocketAddr>,
    #[serde(default)]
    client: Vec<FileRadiusClient>,
}

/// One `[[radius.client]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRadiusClient {
    name: String,
    address: String,
    secret_file: PathBuf,
    mode: Option<RadiusMode>,
    require_message_authenticator: Option<bool>,
    single_field: Option<bool>,
    auto_wait_secs: Option<u64>,
}

/// What a client's first request (user name and password) gets when a push or a call is needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RadiusMode {
    /// An Access-Challenge that tells the user what to do; the next request completes it.
    #[default]
    Challenge,
    /// A push is sent and the answer held until the phone answers (up to `auto_wait_secs`), for
    /// clients that cannot show a challenge (Duo's "auto").
    Auto,
}

/// A RADIUS client.
#[derive(Debug, Clone)]
pub struct RadiusClient {
    /// Its name in the audit log.
    pub name: String,
    /// The addresses it sends from.
    pub network: ipnet::IpNet,
    /// The shared secret.
    pub secret: SecretString,
    /// How a push is handled.
    pub mode: RadiusMode,
    /// Whether requests without a Message-Authenticator are dropped (BlastRADIUS).
    pub require_message_authenticator: bool,
    /// Whether `User-Password` carries the password and the passcode together (the last six digits).
    pub single_field: bool,
    /// Seconds a push is waited for in `auto` mode, or when the user answers a push challenge.
    pub auto_wait_secs: u64,
}

/// The RADIUS listener's settings (none when `[radius]` names no `listen` address).
#[derive(Debug, Clone)]
pub struct RadiusSettings {
    /// The UDP address for Access-Requests.
    pub listen: SocketAddr,
    /// The UDP address for Accounting-Requests (RFC 2866), when accounting is taken.
    pub accounting_listen: Option<SocketAddr>,
    /// The clients answered, first match wins.
    pub clients: Vec<RadiusClient>,
}

impl RadiusSettings {
    /// The client a packet from `ip` belongs to.
    pub fn client_at(&self, ip: IpAddr) -> Option<&RadiusClient> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        self.clients.iter().find(|client| client.network.contains(&ip))
    }
}

impl FileRadius {
    /// The settings, when a listen address is given.
    pub(super) fn settings(self) -> Result<Option<RadiusSettings>, ConfigError> {
        let bad = |message: String| ConfigError::OutOfRange(format!("radius: {message}"));
        let Some(listen) = self.listen else {
            if self.client.is_empty() && self.accounting_listen.is_none() {
                return Ok(None);
            }
            return Err(bad("clients or accounting are declared but no listen address is".into()));
        };
        if self.accounting_listen == Some(listen) {
            return Err(bad("accounting_listen must differ from listen (RADIUS uses 1812 and 1813)".into()));
        }
        let mut clients = Vec::with_capacity(self.client.len());
        for file in self.client {
            let name = file.name.trim().to_owned();
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(bad(format!("client name {:?} must be 1 to 64 printable characters", file.name)));
            }
            if clients.iter().any(|c: &RadiusClient| c.name == name) {
                return Err(bad(format!("two clients are named {name:?}")));
            }
            let network = address_range(&file.address).ok_or_else(|| {
                bad(format!(
                    "client {name}: address {:?} is not an address range like 10.0.0.0/8",
                    file.address.trim()
                ))
            })?;
            let secret = read_secret(&file.secret_file).map_err(|e| bad(format!("client {name}: {e}")))?;
            if secret.expose().len() < 16 {
                return Err(bad(format!(
                    "client {name}: the shared secret must be 16 characters or more (RFC 6614 advice; it guards every password)"
                )));
            }
            let auto_wait_secs = file.auto_wait_secs.unwrap_or(20);
            if !(1..=120).contains(&auto_wait_secs) {
                return Err(bad(format!("client {name}: auto_wait_secs must be 1 to 120")));
            }
            clients.push(RadiusClient {
                name,
                network,
                secret,
                mode: file.mode.unwrap_or_default(),
                require_message_authenticator: file.require_message_authenticator.unwrap_or(true),
                single_field: file.single_field.unwrap_or(false),
                auto_wait_secs,
            });
        }
        Ok(Some(RadiusSettings { listen, accounting_listen: self.accounting_listen, clients }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str, secret: &str) -> Result<Option<RadiusSettings>, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vpn.secret");
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        let toml = toml.replace("SECRET_FILE", &file.display().to_string());
        let parsed: FileRadius = toml::from_str(&toml).map_err(|e| e.to_string())?;
        parsed.settings().map_err(|e| e.to_string())
    }

    const CLIENT: &str = "listen = \"127.0.0.1:1812\"\n[[client]]\nname = \"vpn\"\naddress = \"10.1.2.3/8\"\nsecret_file = \"SECRET_FILE\"\n";

    #[test]
    fn clients_are_found_by_address_with_safe_defaults() {
        assert!(settings("", "x").unwrap().is_none(), "off without a listen address");
        let radius = settings(CLIENT, "a-shared-secret-of-32-characters").unwrap().unwrap();
        let client = radius.client_at("10.200.0.9".parse().unwrap()).unwrap();
        assert_eq!((client.name.as_str(), client.mode), ("vpn", RadiusMode::Challenge));
        assert!(client.require_message_authenticator && !client.single_field, "BlastRADIUS-safe by default");
        assert!(radius.client_at("::ffff:10.0.0.1".parse().unwrap()).is_some(), "IPv4 mapped into IPv6");
        assert!(radius.client_at("192.0.2.1".parse().unwrap()).is_none());
        assert!(!format!("{radius:?}").contains("a-shared-secret"), "no secret in Debug");
    }

    #[test]
    fn bad_radius_settings_are_refused_with_the_reason() {
        for (toml, secret, message) in [
            (CLIENT, "short", "16 characters"),
            (
                &*CLIENT.replace("10.1.2.3/8", "vpn.example"),
                "a-shared-secret-of-32-characters",
                "address range",
            ),
            (&*format!("{CLIENT}auto_wait_secs = 0\n"), "a-shared-secret-of-32-characters", "auto_wait_secs"),
            (&*format!("{CLIENT}mode = \"magic\"\n"), "a-shared-secret-of-32-characters", "unknown variant"),
            (
                &*CLIENT.replace("listen = \"127.0.0.1:1812\"\n", ""),
                "a-shared-secret-of-32-characters",
                "no listen",
            ),
            (
                &*CLIENT.replace(
                    "listen = \"127.0.0.1:1812\"\n",
                    "listen = \"127.0.0.1:1812\"\naccounting_listen = \"127.0.0.1:1812\"\n",
                ),
                "a-shared-secret-of-32-characters",
                "must differ",
            ),
            (
                &*format!("{CLIENT}{}", CLIENT.replace("listen = \"127.0.0.1:1812\"\n", "")),
                "a-shared-secret-of-32-characters",
                "two clients",
            ),
        ] {
            let error = settings(toml, secret).unwrap_err();
            assert!(error.contains(message), "{toml}: {error}");
        }
    }
}
