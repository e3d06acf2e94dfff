//! PSKC (RFC 6030), the XML format hardware-token vendors ship seed files in: one
//! `KeyContainer` of `KeyPackage`s, each a device serial and a key (HOTP or TOTP, its digits,
//! counter or time step, and the secret). Secrets come in the clear, or encrypted with AES-CBC
//! under a pre-shared key or a key derived from a password with PBKDF2, each encrypted value
//! carrying an HMAC (`ValueMAC`) under a MAC key that is itself encrypted in the file.
//!
//! [`read`] checks the whole file and sorts its keys into those Tessera can use and those it
//! cannot, each with the reason, so an import can be all or nothing with a full report. A key's
//! `Policy` is honoured as RFC 6030 §5 asks: a key outside its validity dates, not meant for OTP,
//! or with a policy element Tessera does not understand is not used. A device's own PIN (a `pin`
//! key another key's `PINPolicy` names) is set aside, not taken for a token. What
//! makes the whole file unusable (not XML, not PSKC, a missing or wrong password) is an error
//! of its own. The XML parser takes no DTD, so no entity tricks; every MAC is compared in
//! constant time; decrypted secrets are zeroized when dropped.

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use roxmltree::{Document, Node, ParsingOptions};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use zeroize::Zeroizing;

use crate::otp::{Algorithm, Digits, OtpMethod, Period};
use crate::secret::{SecretBytes, SecretString};

/// PSKC's namespace.
const PSKC_NS: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
/// The most PBKDF2 iterations a file may ask for (a hostile file could ask for years of work).
const MAX_ITERATIONS: u32 = 10_000_000;
/// The most XML nodes a file may have (about 100,000 keys).
const MAX_NODES: u32 = 5_000_000;

/// What unlocks an encrypted file.
pub enum Unlock {
    /// Nothing given (a file in the clear).
    Nothing,
    /// The password PBKDF2 derives the key from.
    Password(SecretString),
    /// The pre-shared AES key itself.
    Key(SecretBytes),
}

/// A key from the file that Tessera can use.
pub struct PskcToken {
    /// Its `KeyPackage`'s position in the file, from 1.
    pub position: usize,
    /// The device's serial number (`DeviceInfo/SerialNo`), or the key's `Id` when it has none.
    pub serial: String,
    /// The key's `Id`.
    pub key_id: String,
    /// `DeviceInfo/Manufacturer`, when given.
    pub manufacturer: Option<String>,
    /// `Issuer`, when given.
    pub issuer: Option<String>,
    /// HOTP with its counter, or TOTP with its time step.
    pub method: OtpMethod,
    /// The shared secret.
    pub secret: SecretBytes,
}

impl std::fmt::Debug for PskcToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PskcToken")
            .field("serial", &self.serial)
            .field("key_id", &self.key_id)
            .field("method", &self.method.kind_name())
            .finish_non_exhaustive()
    }
}

/// A key from the file that Tessera cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its position in the file, from 1.
    pub position: usize,
    /// Its serial, key id, or `#position` when it has neither.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// A file's keys, sorted.
#[derive(Debug)]
pub struct PskcFile {
    /// The keys Tessera can use, in file order.
    pub tokens: Vec<PskcToken>,
    /// The keys it cannot use, in file order.
    pub rejected: Vec<Rejected>,
    /// Packages that are not tokens and need nothing from Tessera (a device's PIN, which the
    /// device checks), with what they are.
    pub set_aside: Vec<Rejected>,
    /// Whether the file carries an XML signature (`ds:Signature`), which Tessera does not check.
    pub signed: bool,
}

/// Why a whole file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PskcError {
    /// The text is not well-formed XML (or has a DTD).
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// The root is not PSKC's `KeyContainer`.
    #[error("not a PSKC file: the root element is not a PSKC KeyContainer")]
    NotPskc,
    /// A `Version` other than 1.0.
    #[error("PSKC version {0:?} is not supported (1.0 is)")]
    Version(String),
    /// The file holds no `KeyPackage`.
    #[error("the file holds no KeyPackage")]
    Empty,
    /// Its keys are encrypted under a password, and none was given.
    #[error("the keys are encrypted with a password ({0}): give the password file")]
    NeedsPassword(String),
    /// Its keys are encrypted under a pre-shared key, and none was given.
    #[error("the keys are encrypted with a pre-shared key ({0}): give the key file")]
    NeedsKey(String),
    /// The password or key given does not decrypt the file.
    #[error("the password or key does not decrypt this file")]
    WrongSecret,
    /// The file's protection is one Tessera does not implement.
    #[error("unsupported protection: {0}")]
    Unsupported(String),
    /// The protection is described wrongly.
    #[error("the file's protection is malformed: {0}")]
    Malformed(String),
}

/// Reads a PSKC document: the keys Tessera can use and those it cannot. `unlock` opens an
/// encrypted file; `now` (Unix seconds) is checked against each key's validity dates.
pub fn read(xml: &str, unlock: &Unlock, now: u64) -> Result<PskcFile, PskcError> {
    let options = ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES, ..ParsingOptions::default() };
    let document = Document::parse_with_options(xml, options).map_err(|e| PskcError::Xml(e.to_string()))?;
    let root = document.root_element();
    if root.tag_name().name() != "KeyContainer" || root.tag_name().namespace() != Some(PSKC_NS) {
        return Err(PskcError::NotPskc);
    }
    if let Some(version) = root.attribute("Version").filter(|v| *v != "1.0") {
        return Err(PskcError::Version(version.to_owned()));
    }
    let keys = Keys::of(root, unlock)?;
    let packages: Vec<Node<'_, '_>> = children(root, "KeyPackage").collect();
    if packages.is_empty() {
        return Err(PskcError::Empty);
    }
    let signed = child(root, "Signature").is_some();
    let mut file = PskcFile { tokens: Vec::new(), rejected: Vec::new(), set_aside: Vec::new(), signed };
    let device_pins: Vec<&str> = root
        .descendants()
        .filter(|node| node.is_element() && node.tag_name().name() == "PINPolicy")
        .filter_map(|policy| policy.attribute("PINKeyId"))
        .collect();
    let now =
        jiff::Timestamp::from_second(i64::try_from(now).unwrap_or(i64::MAX)).unwrap_or(jiff::Timestamp::MAX);
    let mut mac_failures = 0;
    for (index, package) in packages.iter().enumerate() {
        let noted = |reason: String| Rejected {
            position: index + 1,
            name: package_name(*package).unwrap_or_else(|| format!("#{}", index + 1)),
            reason,
        };
        if let Some(pin_key) = device_pin(*package, &device_pins) {
            file.set_aside.push(noted(format!(
                "the device's PIN (key {pin_key}), which a PINPolicy names: not a token"
            )));
            continue;
        }
        match token(*package, &keys, now) {
            Ok(token) => file.tokens.push(PskcToken { position: index + 1, ..token }),
            Err(reason) => {
                mac_failures += usize::from(reason == Reason::MacMismatch);
                file.rejected.push(noted(reason.to_string()));
            }
        }
    }
    if mac_failures > 0 && file.tokens.is_empty() && mac_failures == file.rejected.len() {
        return Err(PskcError::WrongSecret);
    }
    Ok(file)
}

/// Why one key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    MacMismatch,
    Other(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MacMismatch => {
                f.write_str("its MAC does not match: the value was altered or the password is wrong")
            }
            Self::Other(reason) => f.write_str(reason),
        }
    }
}

fn other(reason: impl Into<String>) -> Reason {
    Reason::Other(reason.into())
}

/// The file's encryption and MAC keys, when it has them.
struct Keys {
    encryption: Option<Zeroizing<Vec<u8>>>,
    mac: Option<(MacAlgorithm, Zeroizing<Vec<u8>>)>,
}

impl Keys {
    fn of(root: Node<'_, '_>, unlock: &Unlock) -> Result<Self, PskcError> {
        let Some(encryption_key) = child(root, "EncryptionKey") else {
            return Ok(Self { encryption: None, mac: None });
        };
        let public_key = encryption_key.descendants().any(|n| {
            n.is_element() && ["X509Data", "KeyValue", "RSAKeyValue"].contains(&n.tag_name().name())
        });
        let encryption = if public_key {
            return Err(PskcError::Unsupported(
                "the keys are encrypted to a public key (an X.509 certificate); Tessera reads files protected \
                 with a password or a pre-shared AES key, which the vendor can send instead"
                    .into(),
            ));
        } else if let Some(derived) = child(encryption_key, "DerivedKey") {
            let name = text_of(derived, "MasterKeyName").unwrap_or_else(|| "no name given".into());
            let Unlock::Password(password) = unlock else {
                return Err(PskcError::NeedsPassword(name));
            };
            derive(derived, password)?
        } else {
            let name = text_of(encryption_key, "KeyName").unwrap_or_else(|| "no name given".into());
            let Unlock::Key(key) = unlock else {
                return Err(PskcError::NeedsKey(name));
            };
            Zeroizing::new(key.expose().to_vec())
        };
        let mac = match child(root, "MACMethod") {
            None => None,
            Some(method) => {
                let algorithm = MacAlgorithm::of(method.attribute("Algorithm").unwrap_or_default())
                    .ok_or_else(|| {
                        PskcError::Unsupported(format!(
                            "MAC {:?}",
                            method.attribute("Algorithm").unwrap_or_default()
                        ))
                    })?;
                let key = match child(method, "MACKey") {
                    Some(mac_key) => decrypt(mac_key, &encryption).map_err(|_| PskcError::WrongSecret)?,
                    None => encryption.clone(),
                };
                Some((algorithm, key))
            }
        };
        Ok(Self { encryption: Some(encryption), mac })
    }
}

/// PBKDF2 over `password`, as the `DerivedKey` says.
fn derive(derived: Node<'_, '_>, password: &SecretString) -> Result<Zeroizing<Vec<u8>>, PskcError> {
    let malformed = |what: &str| PskcError::Malformed(what.to_owned());
    let method = child(derived, "KeyDerivationMethod").ok_or_else(|| malformed("no KeyDerivationMethod"))?;
    let algorithm = method.attribute("Algorithm").unwrap_or_default();
    if !algorithm.ends_with("#pbkdf2") {
        return Err(PskcError::Unsupported(format!("key derivation {algorithm:?}")));
    }
    let params = child(method, "PBKDF2-params").ok_or_else(|| malformed("no PBKDF2-params"))?;
    let salt = child(params, "Salt")
        .and_then(|salt| text_of(salt, "Specified"))
        .ok_or_else(|| malformed("no PBKDF2 salt"))?;
    let salt = base64(&salt).map_err(|()| malformed("the PBKDF2 salt is not base64"))?;
    let iterations: u32 = text_of(params, "IterationCount")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=MAX_ITERATIONS).contains(n))
        .ok_or_else(|| malformed("IterationCount must be 1 to 10,000,000"))?;
    let length: usize = text_of(params, "KeyLength")
        .map(|n| n.parse().map_err(|_| malformed("KeyLength is not a number")))
        .transpose()?
        .unwrap_or(16);
    if ![16, 24, 32].contains(&length) {
        return Err(malformed("KeyLength must be 16, 24 or 32 (an AES key)"));
    }
    let prf = child(params, "PRF").and_then(|prf| prf.attribute("Algorithm")).unwrap_or("#hmac-sha1");
    let mut key = Zeroizing::new(vec![0u8; length]);
    let password = password.expose().as_bytes();
    match MacAlgorithm::of(prf) {
        Some(MacAlgorithm::Sha1) => pbkdf2::pbkdf2_hmac::<Sha1>(password, &salt, iterations, &mut key),
        Some(MacAlgorithm::Sha256) => pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, iterations, &mut key),
        Some(MacAlgorithm::Sha512) => pbkdf2::pbkdf2_hmac::<Sha512>(password, &salt, iterations, &mut key),
        None => return Err(PskcError::Unsupported(format!("PBKDF2 PRF {prf:?}"))),
    }
    Ok(key)
}

/// The HMACs a file may use for its `ValueMAC`s (and PBKDF2 for its PRF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MacAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl MacAlgorithm {
    fn of(uri: &str) -> Option<Self> {
        match uri.rsplit_once('#').map_or(uri, |(_, name)| name) {
            "hmac-sha1" => Some(Self::Sha1),
            "hmac-sha256" => Some(Self::Sha256),
            "hmac-sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Whether `mac` is this HMAC of `data` under `key`, compared in constant time.
    fn verifies(self, key: &[u8], data: &[u8], mac: &[u8]) -> bool {
        fn check<M: Mac + KeyInit>(key: &[u8], data: &[u8], mac: &[u8]) -> bool {
            <M as KeyInit>::new_from_slice(key).is_ok_and(|mut m| {
                m.update(data);
                m.verify_slice(mac).is_ok()
            })
        }
        match self {
            Self::Sha1 => check::<Hmac<Sha1>>(key, data, mac),
            Self::Sha256 => check::<Hmac<Sha256>>(key, data, mac),
            Self::Sha512 => check::<Hmac<Sha512>>(key, data, mac),
        }
    }
}

/// An `EncryptedValue`-shaped element (`xenc:EncryptionMethod` and `xenc:CipherData`) decrypted
/// with `key`: AES-CBC, the IV the first block of the cipher value, PKCS #7 padding.
fn decrypt(element: Node<'_, '_>, key: &[u8]) -> Result<Zeroizing<Vec<u8>>, Reason> {
    let (method, data) = cipher_value(element)?;
    let (iv, ciphertext) =
        data.split_at_checked(16).ok_or_else(|| other("its encrypted value is too short"))?;
    let name = method.rsplit_once('#').map_or(method.as_str(), |(_, name)| name);
    let plain = match name {
        "aes128-cbc" => cbc::Decryptor::<Aes128>::new_from_slices(key, iv)
            .map_err(|_| other("the key does not fit AES-128"))?
            .decrypt_padded_vec::<Pkcs7>(ciphertext),
        "aes192-cbc" => cbc::Decryptor::<Aes192>::new_from_slices(key, iv)
            .map_err(|_| other("the key does not fit AES-192"))?
            .decrypt_padded_vec::<Pkcs7>(ciphertext),
        "aes256-cbc" => cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
            .map_err(|_| other("the key does not fit AES-256"))?
            .decrypt_padded_vec::<Pkcs7>(ciphertext),
        _ => return Err(other(format!("encryption {method:?} is not supported (AES-CBC is)"))),
    };
    plain.map(Zeroizing::new).map_err(|_| Reason::MacMismatch)
}

/// An encrypted element's method and cipher value (IV and ciphertext).
fn cipher_value(element: Node<'_, '_>) -> Result<(String, Vec<u8>), Reason> {
    let method = child(element, "EncryptionMethod")
        .and_then(|m| m.attribute("Algorithm"))
        .ok_or_else(|| other("its encrypted value names no EncryptionMethod"))?;
    let value = child(element, "CipherData")
        .and_then(|data| text_of(data, "CipherValue"))
        .ok_or_else(|| other("its encrypted value has no CipherValue"))?;
    let data = base64(&value).map_err(|()| other("its CipherValue is not base64"))?;
    Ok((method.to_owned(), data))
}

/// A `Data` child's bytes: its `PlainValue`, or its `EncryptedValue` checked against its
/// `ValueMAC` and decrypted.
fn value(data: Node<'_, '_>, name: &str, keys: &Keys) -> Result<Option<Zeroizing<Vec<u8>>>, Reason> {
    let Some(element) = child(data, name) else { return Ok(None) };
    if let Some(plain) = text_of(element, "PlainValue") {
        return base64_or_number(name, &plain).map(Some);
    }
    let encrypted = child(element, "EncryptedValue")
        .ok_or_else(|| other(format!("its {name} has neither a PlainValue nor an EncryptedValue")))?;
    let key = keys
        .encryption
        .as_ref()
        .ok_or_else(|| other(format!("its {name} is encrypted but the file has no EncryptionKey")))?;
    if let Some((algorithm, mac_key)) = &keys.mac {
        let mac = text_of(element, "ValueMAC").ok_or_else(|| other(format!("its {name} has no ValueMAC")))?;
        let mac = base64(&mac).map_err(|()| other(format!("its {name}'s ValueMAC is not base64")))?;
        let (_, cipher) = cipher_value(encrypted)?;
        if !algorithm.verifies(mac_key, &cipher, &mac) {
            return Err(Reason::MacMismatch);
        }
    }
    decrypt(encrypted, key).map(Some)
}

/// A plain value: base64 for the secret, a decimal number for the others (RFC 6030 §4.3.2).
fn base64_or_number(name: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, Reason> {
    if name == "Secret" {
        return base64(text).map(Zeroizing::new).map_err(|()| other("its secret is not base64"));
    }
    let number: u64 = text.trim().parse().map_err(|_| other(format!("its {name} is not a whole number")))?;
    Ok(Zeroizing::new(number.to_be_bytes().to_vec()))
}

/// A number value: an encrypted one is big-endian bytes, a plain one was turned into them.
fn number(bytes: &[u8], name: &str) -> Result<u64, Reason> {
    if bytes.is_empty() || bytes.len() > 8 {
        return Err(other(format!("its {name} is not a number of 1 to 8 bytes")));
    }
    Ok(bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
}

/// The `Id` of `package`'s key when it is a `pin` key that one of `device_pins` names.
fn device_pin<'a>(package: Node<'a, '_>, device_pins: &[&str]) -> Option<&'a str> {
    let key = child(package, "Key")?;
    let id = key.attribute("Id")?;
    let is_pin = key.attribute("Algorithm").is_some_and(|a| a.ends_with(":pin") || a.ends_with("#pin"));
    (is_pin && device_pins.contains(&id)).then_some(id)
}

/// Whether a key's `Policy` lets Tessera use it for one-time passwords `now` (RFC 6030 §5: a
/// policy element not understood forbids the key's use).
fn check_policy(key: Node<'_, '_>, now: jiff::Timestamp) -> Result<(), Reason> {
    let Some(policy) = child(key, "Policy") else { return Ok(()) };
    let mut usages = Vec::new();
    for element in policy.children().filter(Node::is_element) {
        let text = element.text().unwrap_or_default().trim();
        match element.tag_name().name() {
            "StartDate" if date(text)? > now => {
                return Err(other(format!("its policy makes it usable only from {text}")));
            }
            "ExpiryDate" if date(text)? <= now => return Err(other(format!("its policy ended on {text}"))),
            "StartDate" | "ExpiryDate" => {}
            "KeyUsage" => usages.push(text),
            "PINPolicy" => match element.attribute("PINUsageMode") {
                Some("Local") => {}
                Some(mode) => {
                    return Err(other(format!(
                        "its PIN is part of its codes (PINUsageMode {mode}), which Tessera does not check"
                    )));
                }
                None => return Err(other("its PINPolicy has no PINUsageMode")),
            },
            "NumberOfTransactions" => {
                return Err(other(format!(
                    "its policy limits it to {text} uses, which Tessera does not count"
                )));
            }
            unknown => {
                return Err(other(format!(
                    "its policy has {unknown}, which Tessera does not understand (RFC 6030 then forbids its use)"
                )));
            }
        }
    }
    if !usages.is_empty() && !usages.contains(&"OTP") {
        return Err(other(format!("its policy allows {} and not OTP", usages.join(", "))));
    }
    Ok(())
}

/// An `xs:dateTime`; one without a time zone is taken as UTC.
fn date(text: &str) -> Result<jiff::Timestamp, Reason> {
    text.parse::<jiff::Timestamp>()
        .or_else(|_| {
            text.parse::<jiff::civil::DateTime>()
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
                .map(|z| z.timestamp())
        })
        .map_err(|_| other(format!("its policy date {text:?} is not an xs:dateTime")))
}

/// One `KeyPackage` as a token, or why it cannot be one.
fn token(package: Node<'_, '_>, keys: &Keys, now: jiff::Timestamp) -> Result<PskcToken, Reason> {
    let key = child(package, "Key").ok_or_else(|| other("it holds no Key"))?;
    let key_id = key.attribute("Id").unwrap_or_default().trim().to_owned();
    let device = child(package, "DeviceInfo");
    let serial =
        device.and_then(|d| text_of(d, "SerialNo")).filter(|s| !s.is_empty()).unwrap_or(key_id.clone());
    if serial.is_empty() {
        return Err(other("it has neither a DeviceInfo/SerialNo nor a Key Id"));
    }
    let algorithm_uri = key.attribute("Algorithm").unwrap_or_default();
    let kind = algorithm_uri.rsplit(['#', ':']).next().unwrap_or_default();
    let parameters = child(key, "AlgorithmParameters");
    let format = parameters.and_then(|p| child(p, "ResponseFormat"));
    if let Some(encoding) = format.and_then(|f| f.attribute("Encoding")).filter(|e| *e != "DECIMAL") {
        return Err(other(format!("its codes are {encoding}, and Tessera checks decimal codes")));
    }
    let digits = format.and_then(|f| f.attribute("Length")).unwrap_or("6");
    let digits = digits
        .parse()
        .ok()
        .and_then(|d| Digits::new(d).ok())
        .ok_or_else(|| other(format!("{digits} digits is not supported (6 to 10 are)")))?;
    let suite = parameters.and_then(|p| text_of(p, "Suite")).unwrap_or_default().to_ascii_uppercase();
    let hash = if suite.contains("SHA512") {
        Algorithm::Sha512
    } else if suite.contains("SHA256") {
        Algorithm::Sha256
    } else {
        Algorithm::Sha1
    };
    check_policy(key, now)?;
    let missing_secret = || match text_of(key, "KeyReference") {
        Some(reference) => other(format!(
            "its secret is not in the file: the receiver derives it from the master key {reference:?} (KeyReference)"
        )),
        None => other("its Key has no Secret"),
    };
    let data = child(key, "Data").ok_or_else(missing_secret)?;
    let secret = value(data, "Secret", keys)?.ok_or_else(missing_secret)?;
    if secret.len() < 10 {
        return Err(other("its secret is shorter than 80 bits"));
    }
    let number_of = |name: &str| -> Result<Option<u64>, Reason> {
        value(data, name, keys)?.map(|bytes| number(&bytes, name)).transpose()
    };
    let method = match kind {
        "hotp" => OtpMethod::Hotp { algorithm: hash, digits, counter: number_of("Counter")?.unwrap_or(0) },
        "totp" => {
            if number_of("Time")?.is_some_and(|t0| t0 != 0) {
                return Err(other("its TOTP counts time from a start other than the Unix epoch"));
            }
            let seconds = number_of("TimeInterval")?.unwrap_or(30);
            let period = u32::try_from(seconds)
                .ok()
                .and_then(|s| Period::new(s).ok())
                .ok_or_else(|| other(format!("a time step of {seconds} s is not supported")))?;
            OtpMethod::Totp { algorithm: hash, digits, period }
        }
        _ => return Err(other(format!("its algorithm {algorithm_uri:?} is not HOTP or TOTP"))),
    };
    Ok(PskcToken {
        position: 0,
        serial,
        key_id,
        manufacturer: device.and_then(|d| text_of(d, "Manufacturer")),
        issuer: text_of(key, "Issuer"),
        method,
        secret: SecretBytes::new(secret.to_vec()),
    })
}

/// A package's name for the report: its serial or key id.
fn package_name(package: Node<'_, '_>) -> Option<String> {
    child(package, "DeviceInfo")
        .and_then(|d| text_of(d, "SerialNo"))
        .or_else(|| child(package, "Key").and_then(|k| k.attribute("Id")).map(str::to_owned))
        .filter(|name| !name.is_empty())
}

fn children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.children().find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The trimmed text of `node`'s child `name`.
fn text_of(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name).map(|c| c.text().unwrap_or_default().trim().to_owned())
}

/// Base64 with the line breaks and spaces XML files carry.
fn base64(text: &str) -> Result<Vec<u8>, ()> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    data_encoding::BASE64.decode(compact.as_bytes()).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN_HOTP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">
  <KeyPackage>
    <DeviceInfo><Manufacturer>Manufacturer</Manufacturer><SerialNo>987654321</SerialNo></DeviceInfo>
    <Key Id="12345678" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp">
      <Issuer>Issuer</Issuer>
      <AlgorithmParameters><ResponseFormat Length="8" Encoding="DECIMAL"/></AlgorithmParameters>
      <Data>
        <Secret><PlainValue>MTIzNDU2Nzg5MDEy
          MzQ1Njc4OTA=</PlainValue></Secret>
        <Counter><PlainValue>0</PlainValue></Counter>
      </Data>
    </Key>
  </KeyPackage>
</KeyContainer>"#;

    fn read(xml: &str, unlock: &Unlock) -> Result<PskcFile, PskcError> {
        super::read(xml, unlock, crate::otp::unix_now())
    }

    fn error_of(xml: &str, unlock: &Unlock) -> PskcError {
        read(xml, unlock).map(|file| file.tokens.len()).unwrap_err()
    }

    #[test]
    fn a_plain_key_package_becomes_a_token() {
        let file = read(PLAIN_HOTP, &Unlock::Nothing).unwrap();
        assert!(file.rejected.is_empty(), "{:?}", file.rejected);
        let token = &file.tokens[0];
        assert_eq!(
            (token.position, token.serial.as_str(), token.key_id.as_str()),
            (1, "987654321", "12345678")
        );
        assert_eq!(token.secret.expose(), b"12345678901234567890", "base64 across lines");
        assert_eq!(token.manufacturer.as_deref(), Some("Manufacturer"));
        assert!(matches!(token.method, OtpMethod::Hotp { algorithm: Algorithm::Sha1, counter: 0, .. }));
        assert_eq!(token.method.code_length(), 8);
        assert!(!format!("{token:?}").contains("MTIz"), "no secret in Debug");
    }

    #[test]
    fn a_file_that_is_not_pskc_or_not_xml_is_refused_whole() {
        let dtd = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><KeyContainer/>";
        assert!(matches!(error_of(dtd, &Unlock::Nothing), PskcError::Xml(_)), "no DTDs");
        assert_eq!(error_of("<KeyContainer/>", &Unlock::Nothing), PskcError::NotPskc, "PSKC's namespace");
        let version = PLAIN_HOTP.replace("Version=\"1.0\"", "Version=\"2.0\"");
        assert_eq!(error_of(&version, &Unlock::Nothing), PskcError::Version("2.0".into()));
        let empty = r#"<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"/>"#;
        assert_eq!(error_of(empty, &Unlock::Nothing), PskcError::Empty);
        assert!(matches!(error_of("<KeyContainer", &Unlock::Nothing), PskcError::Xml(_)));
    }

    #[test]
    fn keys_tessera_cannot_check_are_rejected_each_with_its_reason() {
        let reason = |from: &str, to: &str| {
            let file = read(&PLAIN_HOTP.replace(from, to), &Unlock::Nothing).unwrap();
            assert!(file.tokens.is_empty());
            file.rejected[0].reason.clone()
        };
        assert!(reason(":hotp\"", ":ocra\"").contains("is not HOTP or TOTP"));
        assert!(reason("Encoding=\"DECIMAL\"", "Encoding=\"ALPHANUMERIC\"").contains("ALPHANUMERIC"));
        assert!(reason("Length=\"8\"", "Length=\"4\"").contains("4 digits"));
        assert!(reason("MTIzNDU2Nzg5MDEy\n          MzQ1Njc4OTA=", "MTIz").contains("shorter than 80 bits"));
        assert!(reason("<PlainValue>0</PlainValue>", "<PlainValue>x</PlainValue>").contains("Counter"));
        let named = read(&PLAIN_HOTP.replace(":hotp\"", ":ocra\""), &Unlock::Nothing).unwrap();
        assert_eq!((named.rejected[0].position, named.rejected[0].name.as_str()), (1, "987654321"));
    }

    fn figure(number: u32) -> String {
        let path = format!("{}/tests/rfc6030/figure{number}.pskcxml", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn unix(date: &str) -> u64 {
        date.parse::<jiff::Timestamp>().unwrap().as_second().try_into().unwrap()
    }

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn the_rfc_6030_examples_in_the_clear_read_as_the_rfc_describes() {
        let two = read(&figure(2), &Unlock::Nothing).unwrap();
        assert!(two.tokens.is_empty());
        assert_eq!(two.rejected[0].name, "12345678", "named by its Key Id without a serial");
        assert!(two.rejected[0].reason.contains("shorter than 80 bits"), "{:?}", two.rejected);

        let three = read(&figure(3), &Unlock::Nothing).unwrap();
        let token = &three.tokens[0];
        assert_eq!((token.serial.as_str(), token.key_id.as_str()), ("987654321", "12345678"));
        assert_eq!(
            (token.manufacturer.as_deref(), token.issuer.as_deref()),
            (Some("Manufacturer"), Some("Issuer"))
        );
        assert_eq!(token.secret.expose(), RFC_SECRET);
        assert!(matches!(token.method, OtpMethod::Hotp { counter: 0, .. }));
        assert_eq!(token.method.code_length(), 8);
        assert!(!three.signed);

        let four = read(&figure(4), &Unlock::Nothing).unwrap();
        assert!(four.rejected[0].reason.contains("master key \"MasterKeyLabel\""), "{:?}", four.rejected);

        let five = read(&figure(5), &Unlock::Nothing).unwrap();
        assert_eq!(five.tokens.len(), 1, "{:?}", five.rejected);
        assert_eq!(five.tokens[0].secret.expose(), RFC_SECRET);
        assert!(five.rejected.is_empty(), "{:?}", five.rejected);
        assert_eq!(five.set_aside[0].position, 2);
        assert!(five.set_aside[0].reason.contains("PIN (key 123456781)"), "{:?}", five.set_aside);

        let nine = read(&figure(9), &Unlock::Nothing).unwrap();
        assert!(nine.signed);
        assert_eq!((nine.tokens[0].serial.as_str(), nine.tokens[0].method.code_length()), ("0755225266", 6));
    }

    #[test]
    fn the_rfc_6030_examples_under_a_key_or_a_password_open_with_it_only() {
        let key = |hex: &str| {
            Unlock::Key(SecretBytes::new(data_encoding::HEXLOWER.decode(hex.as_bytes()).unwrap()))
        };
        let six = figure(6);
        assert_eq!(error_of(&six, &Unlock::Nothing), PskcError::NeedsKey("Pre-shared-key".into()));
        let opened = read(&six, &key("12345678901234567890123456789012")).unwrap();
        assert_eq!(opened.tokens[0].secret.expose(), RFC_SECRET, "{:?}", opened.rejected);
        assert_eq!(error_of(&six, &key("12345678901234567890123456789013")), PskcError::WrongSecret);

        let seven = figure(7);
        assert_eq!(error_of(&seven, &Unlock::Nothing), PskcError::NeedsPassword("My Password 1".into()));
        let password = |text: &str| Unlock::Password(SecretString::new(text.into()));
        let opened = read(&seven, &password("qwerty")).unwrap();
        assert_eq!(opened.tokens[0].secret.expose(), RFC_SECRET, "{:?}", opened.rejected);
        assert_eq!(opened.tokens[0].serial, "987654321");
        assert_eq!(error_of(&seven, &password("qwertz")), PskcError::WrongSecret);

        let eight = error_of(&figure(8), &Unlock::Nothing);
        assert!(matches!(&eight, PskcError::Unsupported(why) if why.contains("public key")), "{eight}");
    }

    #[test]
    fn the_rfc_6030_bulk_example_follows_each_keys_validity_dates() {
        let ten = figure(10);
        let at = |date: &str| super::read(&ten, &Unlock::Nothing, unix(date)).unwrap();
        let today = read(&ten, &Unlock::Nothing).unwrap();
        assert!(today.tokens.is_empty());
        let reasons: Vec<&str> = today.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons[0], "its policy ended on 2006-05-31T00:00:00Z");
        assert_eq!(reasons[2], "its policy ended on 2006-03-31T00:00:00Z");

        let april = at("2006-04-15T12:00:00Z");
        let usable: Vec<&str> = april.tokens.iter().map(|t| t.key_id.as_str()).collect();
        assert_eq!(usable, ["4"], "only the April key of serial 9999999: {:?}", april.rejected);
        assert!(april.rejected[0].reason.contains("usable only from 2006-05-01T00:00:00Z"));

        let may = at("2006-05-15T00:00:00Z");
        let usable: Vec<&str> = may.tokens.iter().map(|t| t.key_id.as_str()).collect();
        assert_eq!(usable, ["1", "2"]);
    }

    #[test]
    fn a_policy_tessera_cannot_honour_rejects_its_key() {
        let with_policy = |policy: &str| {
            let xml = PLAIN_HOTP.replace("</Data>", &format!("</Data><Policy>{policy}</Policy>"));
            let file = read(&xml, &Unlock::Nothing).unwrap();
            file.rejected.first().map(|r| r.reason.clone()).unwrap_or_default()
        };
        assert_eq!(with_policy("<KeyUsage>OTP</KeyUsage><KeyUsage>CR</KeyUsage>"), "");
        assert_eq!(with_policy("<PINPolicy PINUsageMode=\"Local\" MaxFailedAttempts=\"3\"/>"), "");
        assert!(with_policy("<KeyUsage>Encrypt</KeyUsage>").contains("allows Encrypt and not OTP"));
        assert!(with_policy("<PINPolicy PINUsageMode=\"Prepend\"/>").contains("PINUsageMode Prepend"));
        assert!(with_policy("<NumberOfTransactions>5</NumberOfTransactions>").contains("5 uses"));
        assert!(with_policy("<Colour>red</Colour>").contains("Colour, which Tessera does not understand"));
        assert!(with_policy("<ExpiryDate>someday</ExpiryDate>").contains("not an xs:dateTime"));
        assert_eq!(with_policy("<ExpiryDate>2999-01-01T00:00:00</ExpiryDate>"), "", "no zone: UTC");
    }
}
