//! A vault's push devices: keeping a new registration in the vault, opening the channels of all
//! of them, and answering a login request. The CLI, the desktop app and the mobile library do
//! these the same way, so the rules are written once, here: an answer is signed only after the
//! answer PIN checked out (every attempt saved, so the limit on wrong PINs holds), and an approval
//! carries the token's TOTP for a time step it has not signed before.

use std::future::Future;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tessera_core::push::{
    Answer, Challenge, Cleartext, Decision, EnrollmentLink, KeyPair, RegisterResponse, SignedAnswer,
};
use tessera_core::secret::SecretString;
use tessera_core::vault::{PushBinding, TokenError, TokenId, TokenInfo, UnlockedVault, Vault, VaultError};

use crate::{AnswerStatus, ChannelEvent, ClientError, Device};

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

/// What to tell the user when the vault locked between registering with the server and keeping
/// the registration (apps that lock while the network works: the desktop's idle lock, a phone
/// going to the background).
pub const LOCKED_WHILE_REGISTERING: &str = "the vault locked while this device registered, so the device could not be saved; unlock and ask for a new enrollment link";

/// Registers with the server of `link` (see [`crate::register`] for `cleartext`) and keeps the
/// device in the vault.
pub async fn enroll(
    vault: &UnlockedVault,
    link: &EnrollmentLink,
    device_name: Option<String>,
    cleartext: Cleartext,
    now: u64,
) -> Result<(TokenInfo, RegisterResponse), ClientError> {
    let (key, registered) = crate::register(link, device_name, None, cleartext).await?;
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
    answering: Vec<String>,
}

impl Inbox {
    /// Serves `devices` from now on; requests for devices no longer among them are dropped.
    /// True when the devices are not the ones served before (by server and serial), so the
    /// listener's channels must be reopened.
    pub fn serve(&mut self, devices: Vec<VaultDevice>) -> bool {
        let address = |d: &VaultDevice| (d.device.server().to_owned(), d.device.serial().to_owned());
        let changed = !self.devices.iter().map(address).eq(devices.iter().map(address));
        self.pending.retain(|p| devices.iter().any(|d| d.token == p.device.token));
        self.devices = devices;
        changed
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

    /// Request `transaction_id` for answering, unless it expired before `now` or an answer to it
    /// is on its way already (a second tap would spend another time step's code for nothing).
    /// End with [`Inbox::end_answer`].
    pub fn begin_answer(&mut self, transaction_id: &str, now: u64) -> Option<Pending> {
        if self.answering.iter().any(|t| t == transaction_id) {
            return None;
        }
        let pending = self.pending(transaction_id, now)?;
        self.answering.push(transaction_id.to_owned());
        Some(pending)
    }

    /// Ends an answer [`Inbox::begin_answer`] began: a settled request (answered, or refused by
    /// the server as answered or expired) is forgotten; an unsettled one (a network error) can be
    /// answered again.
    pub fn end_answer(&mut self, transaction_id: &str, settled: bool) {
        self.answering.retain(|t| t != transaction_id);
        if settled {
            self.pending.retain(|p| p.challenge.transaction_id != transaction_id);
        }
    }
}

/// What became of an answer sent with [`deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The server took it: `approved` or `denied`.
    Answered(String),
    /// An approval the server turned into a denial.
    NotApproved(Refusal),
    /// The request had expired or was answered elsewhere.
    Gone,
}

/// Why the server turned an approval into a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The number picked or typed is not the login screen's.
    WrongNumber,
    /// The one-time code the approval carried was refused (most often a device clock that is off).
    CodeRefused,
}

impl Refusal {
    /// The refusal the server's receipt names (`bad_otp`; anything else is taken as the number).
    fn of(reason: Option<&str>) -> Self {
        if reason == Some("bad_otp") { Self::CodeRefused } else { Self::WrongNumber }
    }

    /// What to tell the user.
    pub fn message(self) -> &'static str {
        match self {
            Self::WrongNumber => {
                "the server refused the approval: the number did not match the login screen's"
            }
            Self::CodeRefused => {
                "the server refused the approval's one-time code: check that this device's clock is right"
            }
        }
    }
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
    if decision == Decision::Approve && receipt.status != AnswerStatus::Approved {
        return Ok(Delivered::NotApproved(Refusal::of(receipt.reason.as_deref())));
    }
    Ok(Delivered::Answered(receipt.status.as_str().to_owned()))
}

/// Longest wait for a time step's code to free up before an approval (one step of 30 s, with a
/// margin); a token with a longer step gives its error instead.
const MAX_CODE_WAIT: Duration = Duration::from_secs(61);

/// How long to wait before `error`'s token has an unused code again: the token signed the codes
/// of this time step and the next already (approvals or One Swipe codes moments ago).
fn code_wait(error: &ClientError) -> Option<Duration> {
    let ClientError::Vault(vault) = error else { return None };
    let VaultError::Token(TokenError::CodeNotReady { wait_secs }) = vault.as_ref() else { return None };
    let wait = Duration::from_secs(u64::from(*wait_secs)) + Duration::from_millis(200);
    (wait <= MAX_CODE_WAIT).then_some(wait)
}

/// Answers `pending` and sends the answer: `sign` runs [`sign_answer`] on the edge's unlocked
/// vault (its outer error is the edge's own, a locked vault say). When the token has no unused
/// time step's code left, it is signed once more at the next step, a few seconds later, rather
/// than refused. Every `Ok` settles the request, as for [`deliver`].
pub async fn answer<E, F, Fut>(pending: &Pending, decision: Decision, mut sign: F) -> Result<Delivered, E>
where
    E: From<ClientError>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<SignedAnswer, ClientError>, E>>,
{
    let signed = match sign().await? {
        Err(error) => match code_wait(&error) {
            Some(wait) => {
                tokio::time::sleep(wait).await;
                sign().await??
            }
            None => return Err(error.into()),
        },
        Ok(signed) => signed,
    };
    Ok(deliver(&pending.device.device, signed, decision).await?)
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
        assert!(inbox.begin_answer("t3", 1_500).is_some());
        inbox.end_answer("t3", true);
        assert!(inbox.waiting(0).is_empty(), "an answered request is forgotten");

        assert!(inbox.arrived(&TokenId::parse(b).unwrap(), challenge("t4", 2_000)).is_some());
        assert!(inbox.serve(vec![device(a)]), "a device fewer");
        assert!(inbox.waiting(0).is_empty(), "a removed device's requests go with it");
        assert_eq!(inbox.devices().len(), 1);
        assert!(!inbox.serve(vec![device(a)]), "the same devices again");
        assert!(inbox.serve(vec![device(a), device(b)]));
    }

    #[test]
    fn one_answer_at_a_time_and_a_failed_one_can_be_tried_again() {
        let a = "00000000000000aa";
        let token = TokenId::parse(a).unwrap();
        let mut inbox = Inbox::default();
        inbox.serve(vec![device(a)]);
        inbox.arrived(&token, challenge("t1", 1_000));
        inbox.arrived(&token, challenge("t2", 1_000));
        assert!(inbox.begin_answer("t1", 10).is_some());
        assert!(inbox.begin_answer("t1", 10).is_none(), "a second tap while the first is on its way");
        assert!(inbox.begin_answer("t2", 10).is_some(), "another request is not held up");
        inbox.end_answer("t1", false);
        assert!(inbox.begin_answer("t1", 10).is_some(), "after a network error, try again");
        inbox.end_answer("t1", true);
        assert!(inbox.begin_answer("t1", 10).is_none(), "settled");
        assert_eq!(inbox.waiting(10).len(), 1);
    }

    #[test]
    fn a_refused_approval_says_whether_the_number_or_the_code_was_wrong() {
        assert_eq!(Refusal::of(Some("bad_otp")), Refusal::CodeRefused);
        assert_eq!(Refusal::of(Some("wrong_number")), Refusal::WrongNumber);
        assert_eq!(Refusal::of(None), Refusal::WrongNumber, "a server that gives no reason");
        assert!(Refusal::CodeRefused.message().contains("clock"));
    }

    #[test]
    fn only_a_used_up_time_step_is_waited_for() {
        let not_ready =
            |wait_secs| ClientError::from(VaultError::Token(TokenError::CodeNotReady { wait_secs }));
        assert_eq!(code_wait(&not_ready(12)), Some(Duration::from_millis(12_200)));
        assert_eq!(code_wait(&not_ready(3_600)), None, "a long step is reported, not waited for");
        assert_eq!(code_wait(&ClientError::from(VaultError::Token(TokenError::NoPushDevice))), None);
    }
}
