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
