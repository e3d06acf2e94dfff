//! The `[delivery.voice]` section: how voice-token calls are placed, and how long they ring
//! (`ring_secs`). `kind = "twilio"`: through Twilio's Calls API or a compatible provider
//! (`[delivery.voice.twilio]`: `account_sid`, `auth_token_file`, `from`, `public_url` where its
//! webhooks arrive, `url` of its API). `kind = "sip"`: Tessera
//! calls as a SIP user agent, through `[delivery.voice.sip] proxy` (a PBX or trunk) or straight to
//! a SIP URI's host, with the account's `username` and `password_file` for digest
//! authentication, as `from`, playing `prompt_wav`. Checked at start-up; the password is read
//! from its file, never written in the configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use tessera_core::secret::SecretString;

use super::ConfigError;
use super::delivery::read_secret;

/// Where an installed server's prompt is, when the configuration names none and there is none
/// beside the executable.
pub const DEFAULT_PROMPT_WAV: &str = "/usr/share/tessera/voice/enter-code.wav";

/// The prompt when the configuration names none: `voice/enter-code.wav` beside the executable
/// (where `scripts/build-web.sh` speaks it), else [`DEFAULT_PROMPT_WAV`].
pub fn default_prompt_wav() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("voice").join("enter-code.wav")))
        .filter(|beside| beside.is_file())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PROMPT_WAV))
}

/// The file's `[delivery.voice]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileVoice {
    kind: VoiceKind,
    ring_secs: Option<u64>,
    sip: Option<FileSip>,
    twilio: Option<FileTwilio>,
}

/// How calls are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum VoiceKind {
    /// Tessera's own SIP user agent.
    Sip,
    /// Twilio's Calls API, or a provider that speaks it.
    Twilio,
}

/// The file's `[delivery.voice.twilio]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTwilio {
    account_sid: String,
    auth_token_file: PathBuf,
    from: String,
    public_url: Option<String>,
    url: Option<String>,
}

/// Where Twilio-compatible providers fetch a call's instructions (TwiML) and post its keys and
/// its status, under the server's public URL, each with `?tx=` the transaction.
pub const TWILIO_VOICE_PATH: &str = "/api/v1/voice/twilio";

/// The file's `[delivery.voice.sip]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSip {
    proxy: Option<SocketAddr>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    from: String,
    prompt_wav: Option<PathBuf>,
}

/// How voice-token calls are placed.
#[derive(Debug, Clone)]
pub enum VoiceSettings {
    /// Over SIP, as a user agent.
    Sip(SipSettings),
    /// Through Twilio's Calls API (or a compatible provider), which calls back for TwiML.
    Twilio(TwilioVoice),
}

impl VoiceSettings {
    /// How long a login's call may ring.
    pub fn ring_for(&self) -> std::time::Duration {
        match self {
            Self::Sip(sip) => sip.ring_for,
            Self::Twilio(twilio) => twilio.ring_for,
        }
    }
}

/// `[delivery.voice.twilio]`, checked.
#[derive(Clone)]
pub struct TwilioVoice {
    /// The account (`AC…`).
    pub account_sid: String,
    /// Its auth token (Basic password, and the key the provider signs its webhooks with).
    pub auth_token: SecretString,
    /// The number calls come from (E.164).
    pub from: String,
    /// This server's public URL, where the provider's webhooks arrive.
    pub public_url: String,
    /// `https://api.twilio.com`, or a compatible provider's base URL.
    pub base_url: String,
    /// How long a login's call may ring.
    pub ring_for: std::time::Duration,
}

impl std::fmt::Debug for TwilioVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioVoice")
            .field("account_sid", &self.account_sid)
            .field("from", &self.from)
            .field("public_url", &self.public_url)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// `[delivery.voice.sip]`, checked.
#[derive(Debug, Clone)]
pub struct SipSettings {
    /// The PBX or trunk every call goes through; none: straight to a SIP URI's host.
    pub proxy: Option<SocketAddr>,
    /// The account's name for digest authentication.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<SecretString>,
    /// The caller's SIP URI.
    pub from: String,
    /// The spoken prompt (8 kHz, mono, 16-bit WAV).
    pub prompt_wav: PathBuf,
    /// How long a login's call may ring (`[delivery.voice] ring_secs`, 5 to 120, default 30).
    pub ring_for: std::time::Duration,
}

impl FileVoice {
    /// The checked settings (`public_url`: the server's, the default for the provider's webhooks).
    pub(super) fn settings(self, public_url: &str) -> Result<VoiceSettings, ConfigError> {
        let bad = |message: String| ConfigError::OutOfRange(format!("delivery.voice.sip: {message}"));
        let ring_secs = self.ring_secs.unwrap_or(30);
        if !(5..=120).contains(&ring_secs) {
            return Err(ConfigError::OutOfRange("delivery.voice.ring_secs must be 5 to 120".into()));
        }
        let ring_for = std::time::Duration::from_secs(ring_secs);
        match self.kind {
            VoiceKind::Twilio => twilio(self.twilio, public_url, ring_for),
            VoiceKind::Sip => {
                let sip = self
                    .sip
                    .ok_or_else(|| bad("kind = \"sip\" needs a [delivery.voice.sip] section".into()))?;
                if !sip.from.starts_with("sip:") || !sip.from.contains('@') {
                    return Err(bad(format!(
                        "from {:?} must be a SIP URI such as sip:tessera@pbx.example",
                        sip.from
                    )));
                }
                let password = sip.password_file.as_deref().map(read_secret).transpose().map_err(bad)?;
                if password.is_some() && sip.username.is_none() {
                    return Err(bad("password_file needs a username".into()));
                }
                Ok(VoiceSettings::Sip(SipSettings {
                    proxy: sip.proxy,
                    username: sip.username,
                    password,
                    from: sip.from,
                    prompt_wav: sip.prompt_wav.unwrap_or_else(default_prompt_wav),
                    ring_for,
                }))
            }
        }
    }
}

/// `[delivery.voice.twilio]`, checked.
fn twilio(
    file: Option<FileTwilio>,
    public_url: &str,
    ring_for: std::time::Duration,
) -> Result<VoiceSettings, ConfigError> {
    let bad = |message: String| ConfigError::OutOfRange(format!("delivery.voice.twilio: {message}"));
    let file = file.ok_or_else(|| bad("kind = \"twilio\" needs a [delivery.voice.twilio] section".into()))?;
    if file.account_sid.is_empty() || !file.account_sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad("account_sid must be letters and digits (AC…)".into()));
    }
    tessera_core::delivery::PhoneNumber::parse(&file.from)
        .map_err(|e| bad(format!("from {:?}: {e}", file.from)))?;
    let auth_token = read_secret(&file.auth_token_file).map_err(bad)?;
    let url = |name: &str, text: String| {
        let text = text.trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&text) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(text),
            _ => Err(bad(format!("{name} {text:?} must be an http:// or https:// URL"))),
        }
    };
    Ok(VoiceSettings::Twilio(TwilioVoice {
        account_sid: file.account_sid,
        auth_token,
        from: file.from,
        public_url: url("public_url", file.public_url.unwrap_or_else(|| public_url.to_owned()))?,
        base_url: url("url", file.url.unwrap_or_else(|| "https://api.twilio.com".into()))?,
        ring_for,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Result<VoiceSettings, String> {
        let parsed: FileVoice = toml::from_str(toml).map_err(|e| e.to_string())?;
        parsed.settings("https://mfa.example").map_err(|e| e.to_string())
    }

    #[test]
    fn sip_settings_are_read_with_the_prompt_installed_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("sip.pw");
        std::fs::write(&password, "pbx-secret\n").unwrap();
        let toml = format!(
            "kind = \"sip\"\n[sip]\nproxy = \"10.0.0.2:5060\"\nusername = \"tessera\"\npassword_file = \"{}\"\nfrom = \"sip:tessera@pbx.example\"\n",
            password.display()
        );
        let VoiceSettings::Sip(sip) = settings(&toml).unwrap() else { panic!("SIP settings") };
        assert_eq!(sip.proxy, Some("10.0.0.2:5060".parse().unwrap()));
        assert_eq!(sip.password.as_ref().map(SecretString::expose), Some("pbx-secret"));
        assert_eq!(sip.prompt_wav, default_prompt_wav());
        assert!(!format!("{sip:?}").contains("pbx-secret"), "no password in Debug");
    }

    #[test]
    fn twilio_settings_default_to_the_servers_public_url_and_twilios_api() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("twilio.token");
        std::fs::write(&token, "auth-token-secret\n").unwrap();
        let toml = format!(
            "kind = \"twilio\"\nring_secs = 20\n[twilio]\naccount_sid = \"AC123\"\nauth_token_file = \"{}\"\nfrom = \"+15005550006\"\n",
            token.display()
        );
        let VoiceSettings::Twilio(twilio) = settings(&toml).unwrap() else { panic!("Twilio settings") };
        assert_eq!(
            (twilio.public_url.as_str(), twilio.base_url.as_str(), twilio.ring_for.as_secs()),
            ("https://mfa.example", "https://api.twilio.com", 20)
        );
        assert_eq!(twilio.auth_token.expose(), "auth-token-secret");
        assert!(!format!("{twilio:?}").contains("auth-token-secret"), "no token in Debug");
        let bad_from = toml.replace("+15005550006", "tessera");
        assert!(settings(&bad_from).unwrap_err().contains("from"));
        let bad_url = format!("{toml}public_url = \"ftp://mfa.example\"\n");
        assert!(settings(&bad_url).unwrap_err().contains("public_url"));
        assert!(settings("kind = \"twilio\"\n").unwrap_err().contains("needs a [delivery.voice.twilio]"));
    }

    #[test]
    fn bad_voice_settings_are_refused_with_the_reason() {
        for (toml, reason) in [
            ("kind = \"sip\"\n", "needs a [delivery.voice.sip]"),
            ("kind = \"sip\"\n[sip]\nfrom = \"tessera\"\n", "must be a SIP URI"),
            ("kind = \"carrier-pigeon\"\n", "unknown variant"),
            (
                "kind = \"sip\"\n[sip]\nfrom = \"sip:t@pbx\"\npassword_file = \"/nonexistent/pw\"\n",
                "cannot read",
            ),
            (
                "kind = \"sip\"\n[sip]\nfrom = \"sip:t@pbx\"\nproxy = \"pbx.example\"\n",
                "invalid socket address",
            ),
            ("kind = \"sip\"\nring_secs = 2\n[sip]\nfrom = \"sip:t@pbx\"\n", "ring_secs must be 5 to 120"),
        ] {
            let error = settings(toml).unwrap_err();
            assert!(error.contains(reason), "{toml}: {error}");
        }
    }
}
