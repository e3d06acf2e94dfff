//! The `[portal]` section: the self-service portal ("Manage my token") at `/portal` — whether it
//! runs, the address users reach it at (its origin is what forms must come from), which second
//! factors may sign in to it, how a user without any token gets in the first time, and how long
//! sessions and a fresh second factor last. Checked when the server starts.

use serde::Deserialize;

use super::ConfigError;

/// The file's `[portal]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePortal {
    enabled: Option<bool>,
    public_url: Option<String>,
    second_factors: Option<Vec<SecondFactor>>,
    first_enrolment: Option<FirstEnrolment>,
    max_devices: Option<u32>,
    step_up_secs: Option<u64>,
    idle_secs: Option<u64>,
    absolute_secs: Option<u64>,
    allowed_networks: Option<Vec<String>>,
    temporary_passcodes: Option<FileTemporaryPasscodes>,
    notify: Option<Vec<NoticeChannel>>,
}

/// A channel by which users hear of changes to their sign-in ("a new device was added").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeChannel {
    /// To their email address, through `[delivery.email]`.
    Email,
    /// To their phone, through the SMS gateways.
    Sms,
}

/// `[portal.temporary_passcodes]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTemporaryPasscodes {
    enabled: Option<bool>,
    valid_hours: Option<u32>,
    max_uses: Option<u32>,
}

/// Whether signed-in users may get a temporary passcode for themselves, and what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemporaryPasscodePolicy {
    /// Hours a self-service temporary passcode works (1–72).
    pub valid_hours: u32,
    /// Sign-ins it may complete (1–10).
    pub max_uses: u32,
}

/// A kind of token whose code or approval may sign in to the portal, named as the token kinds are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecondFactor {
    /// An authenticator app's time-based codes.
    Totp,
    /// A hardware token's counter-based codes.
    Hotp,
    /// The Tessera app: a push approval or its codes.
    Push,
    /// A code by text message.
    Sms,
    /// A code by email.
    Email,
    /// The help desk's temporary passcode.
    Temp,
    /// A call in which the user keys the code shown on screen.
    Voice,
}

/// How a user without any token signs in to the portal the first time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstEnrolment {
    /// With a single-use registration code from the help desk.
    #[default]
    RegistrationCode,
    /// With a code sent by text message to the phone number on file (the directory's, or the
    /// help desk's): the number the organisation already trusts.
    Sms,
    /// Either: a registration code when the user has one, else a code to the number on file.
    RegistrationCodeOrSms,
    /// Not at all: an administrator enrols every first token.
    None,
}

impl FirstEnrolment {
    /// Whether a registration code lets a user without any token in.
    pub fn allows_registration_codes(self) -> bool {
        matches!(self, Self::RegistrationCode | Self::RegistrationCodeOrSms)
    }

    /// Whether a user without any token gets a code by text message to the number on file.
    pub fn allows_codes_by_sms(self) -> bool {
        matches!(self, Self::Sms | Self::RegistrationCodeOrSms)
    }
}

/// The portal's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSettings {
    /// Whether `/portal` is served.
    pub enabled: bool,
    /// The portal's origin (`https://host[:port]`): forms are accepted only from it.
    pub origin: String,
    /// The kinds of token whose codes or approvals sign in.
    pub second_factors: Vec<SecondFactor>,
    /// How a user without any token gets in the first time.
    pub first_enrolment: FirstEnrolment,
    /// The most devices a user may hold.
    pub max_devices: u32,
    /// Seconds a second factor counts as fresh for deleting a device or replacing a phone.
    pub step_up_secs: u64,
    /// Seconds without a request after which a session ends.
    pub idle_secs: u64,
    /// Seconds after sign-in at which a session ends, however active.
    pub absolute_secs: u64,
    /// The networks the portal (and apps' sign-in) answers; empty: every network.
    pub allowed_networks: Vec<ipnet::IpNet>,
    /// Self-service temporary passcodes, when offered (off by default).
    pub temporary_passcodes: Option<TemporaryPasscodePolicy>,
    /// The channels tried in order to tell users of changes made in the portal; empty: none.
    pub notify: Vec<NoticeChannel>,
}

impl PortalSettings {
    /// Whether a client at `ip` may reach the portal (an unknown address only when no network is
    /// named).
    pub fn admits(&self, ip: Option<std::net::IpAddr>) -> bool {
        self.allowed_networks.is_empty()
            || ip.is_some_and(|ip| self.allowed_networks.iter().any(|network| network.contains(&ip)))
    }
}

impl FilePortal {
    /// The settings, with `server_url` (the push section's public URL, explicit or derived from
    /// the listen address) as the default address; enabled by default when an administrator set
    /// a public URL in either section.
    pub(super) fn settings(
        self,
        server_url: &str,
        url_configured: bool,
    ) -> Result<PortalSettings, ConfigError> {
        let enabled = self.enabled.unwrap_or(url_configured || self.public_url.is_some());
        let url = self.public_url.as_deref().unwrap_or(server_url);
        let settings = PortalSettings {
            enabled,
            origin: origin_of(url)?,
            second_factors: self.second_factors.unwrap_or_else(|| {
                vec![
                    SecondFactor::Totp,
                    SecondFactor::Hotp,
                    SecondFactor::Push,
                    SecondFactor::Sms,
                    SecondFactor::Email,
                    SecondFactor::Temp,
                    SecondFactor::Voice,
                ]
            }),
            first_enrolment: self.first_enrolment.unwrap_or_default(),
            max_devices: self.max_devices.unwrap_or(5),
            step_up_secs: self.step_up_secs.unwrap_or(300),
            idle_secs: self.idle_secs.unwrap_or(600),
            absolute_secs: self.absolute_secs.unwrap_or(3600),
            allowed_networks: networks(self.allowed_networks.unwrap_or_default())?,
            temporary_passcodes: self.temporary_passcodes.unwrap_or_default().policy()?,
            notify: self.notify.unwrap_or_else(|| vec![NoticeChannel::Email]),
        };
        let out_of_range = |message: &str| Err(ConfigError::OutOfRange(format!("portal.{message}")));
        if settings.second_factors.is_empty() {
            return out_of_range("second_factors must name at least one kind of token");
        }
        if !(1..=50).contains(&settings.max_devices) {
            return out_of_range("max_devices must be 1 to 50");
        }
        if !(1..=86_400).contains(&settings.idle_secs) {
            return out_of_range("idle_secs must be 1 to 86400");
        }
        if !(settings.idle_secs..=86_400).contains(&settings.absolute_secs) {
            return out_of_range(
                "absolute_secs must be idle_secs to 86400 (NIST SP 800-63B: 24 hours at most)",
            );
        }
        if !(10..=3600).contains(&settings.step_up_secs) {
            return out_of_range("step_up_secs must be 10 to 3600");
        }
        Ok(settings)
    }
}

impl FileTemporaryPasscodes {
    fn policy(self) -> Result<Option<TemporaryPasscodePolicy>, ConfigError> {
        let policy = TemporaryPasscodePolicy {
            valid_hours: self.valid_hours.unwrap_or(8),
            max_uses: self.max_uses.unwrap_or(1),
        };
        let out_of_range =
            |message: &str| Err(ConfigError::OutOfRange(format!("portal.temporary_passcodes.{message}")));
        if !(1..=72).contains(&policy.valid_hours) {
            return out_of_range("valid_hours must be 1 to 72");
        }
        if !(1..=10).contains(&policy.max_uses) {
            return out_of_range("max_uses must be 1 to 10");
        }
        Ok(self.enabled.unwrap_or(false).then_some(policy))
    }
}

/// Address ranges as written (`10.0.0.0/8`, `2001:db8::/32`, or one address).
fn networks(texts: Vec<String>) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    texts
        .iter()
        .map(|text| {
            address_range(text).ok_or_else(|| {
                ConfigError::OutOfRange(format!(
                    "portal.allowed_networks: {:?} is not an address range like 10.0.0.0/8",
                    text.trim()
                ))
            })
        })
        .collect()
}

/// An address range as written (`10.0.0.0/8`, `2001:db8::/32`, or one address), host bits cleared.
pub(super) fn address_range(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .ok()
        .map(|network| network.trunc())
}

/// `scheme://host[:port]` of an `http(s)://` URL, lower-cased, without path.
fn origin_of(url: &str) -> Result<String, ConfigError> {
    let bad = || {
        ConfigError::OutOfRange(format!("portal.public_url must be an http:// or https:// URL, not {url:?}"))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default().to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https") || authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    Ok(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str, configured: bool) -> Result<PortalSettings, ConfigError> {
        toml::from_str::<FilePortal>(toml).unwrap().settings("http://127.0.0.1:8480", configured)
    }

    #[test]
    fn the_portal_is_on_when_a_public_url_is_configured() {
        assert!(!settings("", false).unwrap().enabled, "not published by accident");
        assert!(settings("", true).unwrap().enabled);
        let own = settings("public_url = \"HTTPS://Portal.Example.org:8443/portal/\"", false).unwrap();
        assert!(own.enabled);
        assert_eq!(own.origin, "https://portal.example.org:8443");
        assert!(!settings("enabled = false", true).unwrap().enabled);
        assert_eq!(settings("", false).unwrap().origin, "http://127.0.0.1:8480");
    }

    #[test]
    fn the_portal_can_be_kept_to_internal_networks() {
        let everyone = settings("", true).unwrap();
        assert!(everyone.admits(Some("203.0.113.9".parse().unwrap())) && everyone.admits(None));
        let internal =
            settings("allowed_networks = [\"10.1.2.3/8\", \"2001:db8::/32\", \"127.0.0.1\"]", true).unwrap();
        for (ip, admitted) in [
            ("10.200.0.1", true),
            ("2001:db8::5", true),
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("203.0.113.9", false),
        ] {
            assert_eq!(internal.admits(Some(ip.parse().unwrap())), admitted, "{ip}");
        }
        assert!(!internal.admits(None), "an unknown address is not internal");
    }

    #[test]
    fn temporary_passcodes_are_offered_only_when_turned_on() {
        assert_eq!(settings("", true).unwrap().temporary_passcodes, None);
        let on = settings("[temporary_passcodes]\nenabled = true\nmax_uses = 3", true).unwrap();
        assert_eq!(on.temporary_passcodes, Some(TemporaryPasscodePolicy { valid_hours: 8, max_uses: 3 }));
    }

    #[test]
    fn bad_portal_settings_are_refused_with_the_key_named() {
        for (toml, message) in [
            ("public_url = \"ftp://x\"", "portal.public_url"),
            ("public_url = \"https://user@host\"", "portal.public_url"),
            ("second_factors = []", "at least one"),
            ("second_factors = [\"fax\"]", "unknown variant"),
            ("max_devices = 0", "max_devices"),
            ("idle_secs = 600\nabsolute_secs = 60", "absolute_secs"),
            ("absolute_secs = 100000", "24 hours"),
            ("step_up_secs = 1", "step_up_secs"),
            ("first_enrolment = \"postcard\"", "unknown variant"),
            ("allowed_networks = [\"10.0.0.0/33\"]", "allowed_networks"),
            ("allowed_networks = [\"intranet\"]", "allowed_networks"),
            ("[temporary_passcodes]\nvalid_hours = 0", "temporary_passcodes.valid_hours"),
            ("[temporary_passcodes]\nmax_uses = 11", "temporary_passcodes.max_uses"),
        ] {
            let error = match toml::from_str::<FilePortal>(toml) {
                Ok(file) => file.settings("http://127.0.0.1:1", false).unwrap_err().to_string(),
                Err(error) => error.to_string(),
            };
            assert!(error.contains(message), "{toml}: {error}");
        }
    }
}
