//! The `[delivery.voice]` section: how voice-token calls are placed, and how long they ring
//! (`ring_secs`). `kind = "sip"`: Tessera
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

/// Where the prompt is when the configuration names none (the Debian package installs it).
pub const DEFAULT_PROMPT_WAV: &str = "/usr/share/tessera/voice/enter-code.wav";

/// The file's `[delivery.voice]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileVoice {
    kind: VoiceKind,
    ring_secs: Option<u64>,
    sip: Option<FileSip>,
}

/// How calls are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum VoiceKind {
    /// Tessera's own SIP user agent.
    Sip,
}

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
    /// The checked settings.
    pub(super) fn settings(self) -> Result<VoiceSettings, ConfigError> {
        let bad = |message: String| ConfigError::OutOfRange(format!("delivery.voice.sip: {message}"));
        let ring_secs = self.ring_secs.unwrap_or(30);
        if !(5..=120).contains(&ring_secs) {
            return Err(ConfigError::OutOfRange("delivery.voice.ring_secs must be 5 to 120".into()));
        }
        match self.kind {
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
                    prompt_wav: sip.prompt_wav.unwrap_or_else(|| PathBuf::from(DEFAULT_PROMPT_WAV)),
                    ring_for: std::time::Duration::from_secs(ring_secs),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Result<VoiceSettings, String> {
        let parsed: FileVoice = toml::from_str(toml).map_err(|e| e.to_string())?;
        parsed.settings().map_err(|e| e.to_string())
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
        let VoiceSettings::Sip(sip) = settings(&toml).unwrap();
        assert_eq!(sip.proxy, Some("10.0.0.2:5060".parse().unwrap()));
        assert_eq!(sip.password.as_ref().map(SecretString::expose), Some("pbx-secret"));
        assert_eq!(sip.prompt_wav, PathBuf::from(DEFAULT_PROMPT_WAV));
        assert!(!format!("{sip:?}").contains("pbx-secret"), "no password in Debug");
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
