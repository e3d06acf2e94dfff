//! A vault's push devices: keeping a new registration in the vault, opening the channels of all
//! of them, and answering a login request. The CLI, the desktop app and the mobile library do
//! these the same way, so the rules are written once, here: an answer is signed only after the
//! answer PIN checked out (every attempt saved, so the limit on wrong PINs holds), and an approval
//! carries the token's TOTP for a time step it has not signed before.

use futures_util::{Stream, StreamExt};
use tessera_core::push::{
    Answer, Challenge, Decision, EnrollmentLink, KeyPair, RegisterResponse, SignedAnswer,
};
use tessera_core::secret::SecretString;
use tessera_core::vault::{PushBinding, TokenError, TokenId, TokenInfo, UnlockedVault, Vault, VaultError};

use crate::{ChannelEvent, ClientError, Device};

/// A push token of the vault, ready to talk to its server.
#[derive(Debug, Clone)]
pub struct VaultDevice {
    /// The vault's token.
    pub token: TokenId,
    /// The device it is at its server.
    pub device: Device,
    /// The last challenge sequence number the vault has seen from it.
    pub cursor: u64,
}

/// The vault's push devices (none is not an error here: callers decide).
pub fn vault_devices(contents: &Vault) -> Result<Vec<VaultDevice>, ClientError> {
    contents
        .push_tokens()
        .filter_map(|token| token.push().map(|binding| (token.id().clone(), binding)))
        .map(|(token, binding)| {
            Ok(VaultDevice { token, device: Device::new(binding)?, cursor: binding.last_seq })
        })
        .collect()
}

/// Keeps a registration that [`crate::register`] made in the vault, as a push token; returns it.
/// When saving fails, the server has a device this vault does not know, so the error says to ask
/// for a new enrollment link.
pub fn keep_registration(
    vault: &UnlockedVault,
    link: &EnrollmentLink,
    key: &KeyPair,
    registered: &RegisterResponse,
    now: u64,
) -> Result<TokenInfo, ClientError> {
    let otp = registered.totp()?;
    let binding =
        PushBinding::new(link.server.clone(), registered.serial.clone(), key, registered.server_public_key);
    vault
        .update(|v| v.add_push(otp, binding, now).map(TokenInfo::of).map_err(VaultError::from))
        .map_err(|error| ClientError::NotKept(Box::new(error)))
}

/// Registers with the server of `link` and keeps the device in the vault.
pub async fn enroll(
    vault: &UnlockedVault,
    link: &EnrollmentLink,
    device_name: Option<String>,
    now: u64,
) -> Result<(TokenInfo, RegisterResponse), ClientError> {
    let (key, registered) = crate::register(link, device_name, None).await?;
    let token = keep_registration(vault, link, &key, &registered, now)?;
    Ok((token, registered))
}

/// The channels of all `devices` as one stream, each event with the token it came from.
pub fn channels(devices: &[VaultDevice]) -> impl Stream<Item = (TokenId, ChannelEvent)> + Send + use<> {
    let channels = devices.iter().map(|vault_device| {
        let token = vault_device.token.clone();
        Box::pin(
            vault_device.device.clone().channel(vault_device.cursor).map(move |event| (token.clone(), event)),
        )
    });
    futures_util::stream::select_all(channels)
}

/// Records that the vault has seen challenge `seq` of `token`, so a restarted channel resumes after it.
pub fn record_seen(vault: &UnlockedVault, token: &TokenId, seq: u64) -> Result<(), VaultError> {
    vault.update(|v| v.set_push_cursor(token, seq).map_err(VaultError::from))
}

/// The pending challenge `transaction_id` among `devices`, with the device it is for.
pub async fn find_pending<'d>(
    devices: &'d [VaultDevice],
    transaction_id: &str,
) -> Result<(&'d VaultDevice, Challenge), ClientError> {
    for vault_device in devices {
        if let Some(challenge) = vault_device.device.find(transaction_id).await? {
            return Ok((vault_device, challenge));
        }
    }
    Err(VaultError::Token(TokenError::NotFound(format!(
        "{transaction_id} (no pending login request: it may have expired or been answered)"
    )))
    .into())
}

/// Checks the answer PIN (`pin` may be `None` when the vault has none), then signs the answer to
/// `challenge` with `token`'s device key; an approval carries the token's next unused TOTP. The
/// number is checked before the vault is touched, and one vault write records the PIN attempt
/// and the code's time step together.
pub fn sign_answer(
    vault: &UnlockedVault,
    token: &TokenId,
    challenge: &Challenge,
    decision: Decision,
    number: Option<u8>,
    pin: Option<&SecretString>,
    now: u64,
) -> Result<SignedAnswer, ClientError> {
    let mut answer = Answer::to(challenge, decision, number, None, now)?;
    let (key, otp) = vault.update_behind_pin(pin, now, |v| {
        let key = v.get(token).and_then(|t| t.push()).ok_or(TokenError::NoPushDevice)?.key_pair();
        let otp = match decision {
            Decision::Approve => Some(v.take_push_code(token, now)?),
            Decision::Deny(_) => None,
        };
        Ok((key, otp))
    })?;
    answer.otp = otp.map(|code| SecretString::new(code.expose().to_owned()));
    Ok(answer.sign(&key?))
}

/// A login request kept for answering: the device it came to and its verified challenge.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The device, which signs and sends the answer.
    pub device: VaultDevice,
    /// The challenge, signature already checked.
    pub challenge: Challenge,
}

/// The devices a listener serves and the login requests they delivered that wait for the user.
/// The desktop app and the mobile library each keep one behind a mutex.
#[derive(Debug, Default)]
pub struct Inbox {
    devices: Vec<VaultDevice>,
    pending: Vec<Pending>,
}

impl Inbox {
    /// Serves `devices` from now on; requests for devices no longer among them are dropped.
    pub fn serve(&mut self, devices: Vec<VaultDevice>) {
        self.pending.retain(|p| devices.iter().any(|d| d.token == p.device.token));
        self.devices = devices;
    }

    /// The devices served.
    pub fn devices(&self) -> &[VaultDevice] {
        &self.devices
    }

    /// Keeps a request `token`'s channel delivered; `None` when it is already kept or the token
    /// is not a device served here.
    pub fn arrived(&mut self, token: &TokenId, challenge: Challenge) -> Option<&Pending> {
        let device = self.devices.iter().find(|d| d.token == *token)?.clone();
        if self.pending.iter().any(|p| p.challenge.transaction_id == challenge.transaction_id) {
            return None;
        }
        self.pending.push(Pending { device, challenge });
        self.pending.last()
    }

    /// The requests not yet expired at `now` (expired ones are dropped).
    pub fn waiting(&mut self, now: u64) -> &[Pending] {
        self.pending.retain(|p| p.challenge.expires_at > now);
        &self.pending
    }

    /// Request `transaction_id`, unless it expired before `now`.
    pub fn pending(&self, transaction_id: &str, now: u64) -> Option<Pending> {
        self.pending
            .iter()
            .find(|p| p.challenge.transaction_id == transaction_id && p.challenge.expires_at > now)
            .cloned()
    }

    /// Forgets a request (answered, or refused by the server as answered or expired).
    pub fn forget(&mut self, transaction_id: &str) {
        self.pending.retain(|p| p.challenge.transaction_id != transaction_id);
    }
}

/// What became of an answer sent with [`deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The server took it: `approved` or `denied`.
    Answered(String),
    /// An approval the server turned into a denial: the number (or the code) did not match.
    NotApproved,
    /// The request had expired or was answered elsewhere.
    Gone,
}

impl Delivered {
    /// What to tell the user when an approval was not approved.
    pub const NOT_APPROVED: &str =
        "the server refused the approval: the number did not match the login screen's";
}

/// Sends a signed answer. Every `Ok` means the request is settled and can be forgotten; an error
/// (the network, a busy server) leaves it for the user to try again.
pub async fn deliver(
    device: &Device,
    answer: SignedAnswer,
    decision: Decision,
) -> Result<Delivered, ClientError> {
    let receipt = match device.answer(answer).await {
        Err(ClientError::Refused { status: 404 | 409 | 410, .. }) => return Ok(Delivered::Gone),
        other => other?,
    };
    if decision == Decision::Approve && receipt.status != "approved" {
        return Ok(Delivered::NotApproved);
    }
    Ok(Delivered::Answered(receipt.status))
}

#[cfg(test)]
mod tests {
    use tessera_core::push::NumberMatching;
    use tessera_core::secret::SecretBytes;

    use super::*;

    fn device(token: &str) -> VaultDevice {
        let server_key = KeyPair::generate().unwrap().public();
        let device =
            Device::from_parts("http://127.0.0.1:1", token, &SecretBytes::new(vec![7; 32]), server_key);
        VaultDevice { token: TokenId::parse(token).unwrap(), device: device.unwrap(), cursor: 0 }
    }

    fn challenge(transaction_id: &str, expires_at: u64) -> Challenge {
        Challenge {
            v: 1,
            transaction_id: transaction_id.into(),
            username: "ann".into(),
            serial: "PUSH-1".into(),
            service: "VPN".into(),
            client_ip: None,
            user_agent: None,
            created_at: expires_at - 60,
            expires_at,
            number_matching: NumberMatching::Pick,
            number_choices: vec![12, 34, 56],
        }
    }

    #[test]
    fn an_inbox_keeps_each_request_once_until_it_expires_or_is_forgotten() {
        let (a, b) = ("00000000000000aa", "00000000000000bb");
        let mut inbox = Inbox::default();
        inbox.serve(vec![device(a), device(b)]);
        let token_a = TokenId::parse(a).unwrap();
        assert!(inbox.arrived(&token_a, challenge("t1", 1_000)).is_some());
        assert!(
            inbox.arrived(&token_a, challenge("t1", 1_000)).is_none(),
            "a redelivery is not a new request"
        );
        assert!(
            inbox.arrived(&TokenId::parse("00000000000000cc").unwrap(), challenge("t2", 1_000)).is_none()
        );
        assert!(inbox.arrived(&TokenId::parse(b).unwrap(), challenge("t3", 2_000)).is_some());

        assert_eq!(inbox.pending("t1", 999).map(|p| p.device.token), Some(token_a));
        assert!(inbox.pending("t1", 1_000).is_none(), "expired at its expiry time");
        assert_eq!(inbox.waiting(1_500).len(), 1, "expired requests are dropped");
        inbox.forget("t3");
        assert!(inbox.waiting(0).is_empty());

        assert!(inbox.arrived(&TokenId::parse(b).unwrap(), challenge("t4", 2_000)).is_some());
        inbox.serve(vec![device(a)]);
        assert!(inbox.waiting(0).is_empty(), "a removed device's requests go with it");
        assert_eq!(inbox.devices().len(), 1);
    }
}
