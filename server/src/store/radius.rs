//! RADIUS challenges in progress, shared by every replica: a challenge's `State` is found by its
//! SHA-256 (the octets themselves travel only between the client and the server), taken once.
//! Also the attributes a user's Access-Accept carries ([`ReplyAttribute`]), kept with the user.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::db::{Param, Row, statement};
use super::{Store, StoreError, int_at, opt_text_at, text_at};

/// The most reply attributes a user may have.
pub const MAX_REPLY_ATTRIBUTES: usize = 16;
/// The longest value of a text attribute (RFC 2865 §5: 253 octets, less a vendor's 6-octet header
/// and its own type and length for `Vendor-Specific`).
const MAX_TEXT: usize = 253;
const MAX_VENDOR_TEXT: usize = MAX_TEXT - 6 - 2;

/// An attribute sent in a user's Access-Accept (RFC 2865 §5) for the network device to act on:
/// the group a VPN maps to a policy (`Class`, `Filter-Id`), an address or pool, a session limit,
/// or a vendor's own attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RadiusReplyAttribute", into = "RadiusReplyAttribute")]
pub enum ReplyAttribute {
    /// `Class` (25): returned by the device in its accounting; most VPNs map it to a group.
    Class(String),
    /// `Filter-Id` (11): the name of a filter or group policy on the device.
    FilterId(String),
    /// `Framed-IP-Address` (8): the address the user is given.
    FramedIpAddress(Ipv4Addr),
    /// `Framed-Pool` (88): the address pool the user's address comes from.
    FramedPool(String),
    /// `Session-Timeout` (27): the longest session, in seconds.
    SessionTimeout(u32),
    /// `Idle-Timeout` (28): the longest idle time, in seconds.
    IdleTimeout(u32),
    /// `Vendor-Specific` (26): a text attribute of `vendor`'s (an IANA enterprise number).
    VendorSpecific {
        /// The vendor's IANA enterprise number (9 Cisco, 12356 Fortinet, 25461 Palo Alto).
        vendor: u32,
        /// The vendor's attribute number.
        kind: u8,
        /// Its text.
        value: String,
    },
}

/// A reply attribute as the admin API writes it: `{"name": "Class", "value": "staff"}`, or
/// `{"name": "Vendor-Specific", "vendor": 9, "type": 1, "value": "shell:priv-lvl=15"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RadiusReplyAttribute {
    /// `Class`, `Filter-Id`, `Framed-IP-Address`, `Framed-Pool`, `Session-Timeout`,
    /// `Idle-Timeout` or `Vendor-Specific`.
    pub name: String,
    /// For `Vendor-Specific`: the vendor's IANA enterprise number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<u32>,
    /// For `Vendor-Specific`: the vendor's attribute number.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<u8>,
    /// The value: text, an IPv4 address, or a number of seconds.
    pub value: ReplyValue,
}

/// A reply attribute's value, as text or (for the timeouts) a number.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ReplyValue {
    /// A number of seconds.
    Number(u64),
    /// Text or an address.
    Text(String),
}

impl ReplyValue {
    fn text(&self) -> String {
        match self {
            Self::Number(number) => number.to_string(),
            Self::Text(text) => text.clone(),
        }
    }
}

impl ReplyAttribute {
    /// The attribute's RADIUS name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Class(_) => "Class",
            Self::FilterId(_) => "Filter-Id",
            Self::FramedIpAddress(_) => "Framed-IP-Address",
            Self::FramedPool(_) => "Framed-Pool",
            Self::SessionTimeout(_) => "Session-Timeout",
            Self::IdleTimeout(_) => "Idle-Timeout",
            Self::VendorSpecific { .. } => "Vendor-Specific",
        }
    }

    /// Parses the CLI's `NAME=VALUE` (`Vendor-Specific:VENDOR:TYPE=VALUE` for a vendor's).
    pub fn parse_assignment(assignment: &str) -> Result<Self, String> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("{assignment:?} is not NAME=VALUE (for example Class=staff)"))?;
        let mut parts = name.split(':');
        let name = parts.next().unwrap_or_default().to_owned();
        let mut number = |what: &str| -> Result<Option<u32>, String> {
            parts
                .next()
                .map(|n| n.parse().map_err(|_| format!("the {what} in {assignment:?} is not a number")))
                .transpose()
        };
        let vendor = number("vendor")?;
        let kind = number("type")?
            .map(|kind| u8::try_from(kind).map_err(|_| format!("the type in {assignment:?} is above 255")))
            .transpose()?;
        Self::try_from(RadiusReplyAttribute { name, vendor, kind, value: ReplyValue::Text(value.into()) })
    }
}

fn checked_text(name: &str, value: &ReplyValue, longest: usize) -> Result<String, String> {
    let text = value.text();
    if text.is_empty() || text.len() > longest {
        return Err(format!("{name} must have 1 to {longest} octets of text"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{name} must not contain control characters"));
    }
    Ok(text)
}

fn seconds(name: &str, value: &ReplyValue) -> Result<u32, String> {
    value
        .text()
        .parse::<u32>()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("{name} must be a number of seconds from 1 to {}", u32::MAX))
}

impl TryFrom<RadiusReplyAttribute> for ReplyAttribute {
    type Error = String;

    fn try_from(attribute: RadiusReplyAttribute) -> Result<Self, String> {
        let RadiusReplyAttribute { name, vendor, kind, value } = attribute;
        let vendor_part = vendor.zip(kind);
        if name != "Vendor-Specific" && (vendor.is_some() || kind.is_some()) {
            return Err(format!("only Vendor-Specific has a vendor and a type, not {name}"));
        }
        Ok(match name.as_str() {
            "Class" => Self::Class(checked_text(&name, &value, MAX_TEXT)?),
            "Filter-Id" => Self::FilterId(checked_text(&name, &value, MAX_TEXT)?),
            "Framed-IP-Address" => Self::FramedIpAddress(
                value.text().parse().map_err(|_| "Framed-IP-Address must be an IPv4 address".to_owned())?,
            ),
            "Framed-Pool" => Self::FramedPool(checked_text(&name, &value, MAX_TEXT)?),
            "Session-Timeout" => Self::SessionTimeout(seconds(&name, &value)?),
            "Idle-Timeout" => Self::IdleTimeout(seconds(&name, &value)?),
            "Vendor-Specific" => {
                let Some((vendor, kind)) = vendor_part.filter(|(vendor, kind)| *vendor > 0 && *kind > 0)
                else {
                    return Err(
                        "Vendor-Specific needs a vendor (its IANA number) and a type, both above 0".into()
                    );
                };
                Self::VendorSpecific { vendor, kind, value: checked_text(&name, &value, MAX_VENDOR_TEXT)? }
            }
            _ => {
                return Err(format!(
                    "{name:?} is not a reply attribute Tessera sends: Class, Filter-Id, Framed-IP-Address, \
                     Framed-Pool, Session-Timeout, Idle-Timeout or Vendor-Specific"
                ));
            }
        })
    }
}

impl From<ReplyAttribute> for RadiusReplyAttribute {
    fn from(attribute: ReplyAttribute) -> Self {
        let name = attribute.name().to_owned();
        let plain = |value: ReplyValue| Self { name: name.clone(), vendor: None, kind: None, value };
        match attribute {
            ReplyAttribute::Class(text)
            | ReplyAttribute::FilterId(text)
            | ReplyAttribute::FramedPool(text) => plain(ReplyValue::Text(text)),
            ReplyAttribute::FramedIpAddress(address) => plain(ReplyValue::Text(address.to_string())),
            ReplyAttribute::SessionTimeout(secs) | ReplyAttribute::IdleTimeout(secs) => {
                plain(ReplyValue::Number(u64::from(secs)))
            }
            ReplyAttribute::VendorSpecific { vendor, kind, value } => {
                Self { name, vendor: Some(vendor), kind: Some(kind), value: ReplyValue::Text(value) }
            }
        }
    }
}

/// A user's reply attributes from their stored JSON (none when the column is empty).
pub(super) fn reply_attributes_from(json: Option<String>) -> Result<Vec<ReplyAttribute>, StoreError> {
    json.map_or(Ok(Vec::new()), |json| {
        serde_json::from_str(&json).map_err(|_| StoreError::Corrupt("RADIUS reply attributes"))
    })
}

/// A user's reply attributes as stored (`NULL` for none).
pub(super) fn reply_attributes_json(attributes: &[ReplyAttribute]) -> Option<String> {
    serde_json::to_string(attributes).ok().filter(|_| !attributes.is_empty())
}

/// An Access-Challenge waiting for the client's next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusState {
    /// SHA-256 of the `State`, hex.
    pub state_hash: String,
    /// The user signing in.
    pub username: String,
    /// The client that asked.
    pub client: String,
    /// The push or sent-code transaction, when there is one.
    pub transaction_id: Option<String>,
    /// Whether the transaction is a push (the next request waits for the phone).
    pub push: bool,
    /// Unix seconds.
    pub expires_at: i64,
}

fn state_from(hash: &str, row: &Row) -> Result<RadiusState, StoreError> {
    Ok(RadiusState {
        state_hash: hash.to_owned(),
        username: text_at(row, 0)?,
        client: text_at(row, 1)?,
        transaction_id: opt_text_at(row, 2)?,
        push: int_at(Some(row), 3)? != 0,
        expires_at: int_at(Some(row), 4)?,
    })
}

impl Store {
    /// Stores a challenge's state.
    pub async fn put_radius_state(&self, state: &RadiusState) -> Result<(), StoreError> {
        self.db
            .execute(statement(
                "INSERT INTO radius_states (state_hash, username, client, transaction_id, push, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    Param::Text(state.state_hash.clone()),
                    Param::Text(state.username.clone()),
                    Param::Text(state.client.clone()),
                    Param::OptText(state.transaction_id.clone()),
                    Param::Int(i64::from(state.push)),
                    Param::Int(state.expires_at),
                ],
            ))
            .await?;
        Ok(())
    }

    /// Takes (deletes and returns) the live state whose hash is `state_hash`: once only.
    pub async fn take_radius_state(
        &self,
        state_hash: &str,
        now: i64,
    ) -> Result<Option<RadiusState>, StoreError> {
        let take = statement(
            "DELETE FROM radius_states WHERE state_hash = $1 AND expires_at > $2 \
             RETURNING username, client, transaction_id, push, expires_at",
            vec![Param::Text(state_hash.into()), Param::Int(now)],
        );
        let rows = self.db.atomically(vec![], vec![take]).await?.map(|(_, rows)| rows).unwrap_or_default();
        rows.into_iter().next().unwrap_or_default().first().map(|row| state_from(state_hash, row)).transpose()
    }

    /// Deletes states that ran out by `now`.
    pub async fn prune_radius_states(&self, now: i64) -> Result<u64, StoreError> {
        self.db
            .execute(statement("DELETE FROM radius_states WHERE expires_at <= $1", vec![Param::Int(now)]))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(json: serde_json::Value) -> Result<ReplyAttribute, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn reply_attributes_read_as_the_admin_api_writes_them_and_back() {
        let written = serde_json::json!([
            { "name": "Class", "value": "staff" },
            { "name": "Filter-Id", "value": "vpn-staff" },
            { "name": "Framed-IP-Address", "value": "10.8.0.7" },
            { "name": "Session-Timeout", "value": 3600 },
            { "name": "Idle-Timeout", "value": "600" },
            { "name": "Vendor-Specific", "vendor": 9, "type": 1, "value": "shell:priv-lvl=15" },
        ]);
        let attributes: Vec<ReplyAttribute> = serde_json::from_value(written).unwrap();
        assert_eq!(attributes[3], ReplyAttribute::SessionTimeout(3600));
        assert_eq!(attributes[4], ReplyAttribute::IdleTimeout(600));
        let shown = serde_json::to_value(&attributes).unwrap();
        assert_eq!(shown[4], serde_json::json!({ "name": "Idle-Timeout", "value": 600 }));
        assert_eq!(serde_json::from_value::<Vec<ReplyAttribute>>(shown).unwrap(), attributes);
        let stored = reply_attributes_json(&attributes);
        assert_eq!(reply_attributes_from(stored).unwrap(), attributes);
        assert_eq!(reply_attributes_json(&[]), None);
    }

    #[test]
    fn a_reply_attribute_that_cannot_travel_is_refused_with_the_reason() {
        let refused = [
            (serde_json::json!({ "name": "User-Password", "value": "x" }), "not a reply attribute"),
            (serde_json::json!({ "name": "Class", "value": "" }), "1 to 253"),
            (serde_json::json!({ "name": "Class", "value": "x".repeat(254) }), "1 to 253"),
            (serde_json::json!({ "name": "Filter-Id", "value": "a\nb" }), "control characters"),
            (serde_json::json!({ "name": "Framed-IP-Address", "value": "::1" }), "IPv4"),
            (serde_json::json!({ "name": "Session-Timeout", "value": 0 }), "seconds"),
            (serde_json::json!({ "name": "Session-Timeout", "value": 4_294_967_296_u64 }), "seconds"),
            (serde_json::json!({ "name": "Class", "vendor": 9, "value": "x" }), "only Vendor-Specific"),
            (serde_json::json!({ "name": "Vendor-Specific", "value": "x" }), "needs a vendor"),
            (
                serde_json::json!({ "name": "Vendor-Specific", "vendor": 9, "type": 1, "value": "x".repeat(246) }),
                "1 to 245",
            ),
            (serde_json::json!({ "name": "Class", "value": "x", "colour": "red" }), "unknown field"),
        ];
        for (json, reason) in refused {
            let error = parsed(json.clone()).expect_err(&json.to_string());
            assert!(error.contains(reason), "{json}: {error}");
        }
    }

    #[test]
    fn the_command_line_names_attributes_as_name_equals_value() {
        assert_eq!(
            ReplyAttribute::parse_assignment("Class=staff=a").unwrap(),
            ReplyAttribute::Class("staff=a".into())
        );
        assert_eq!(
            ReplyAttribute::parse_assignment("Vendor-Specific:12356:1=vpn-admins").unwrap(),
            ReplyAttribute::VendorSpecific { vendor: 12356, kind: 1, value: "vpn-admins".into() }
        );
        for (assignment, reason) in [
            ("Class", "NAME=VALUE"),
            ("Vendor-Specific:nine:1=x", "vendor"),
            ("Vendor-Specific:9:300=x", "above 255"),
            ("Session-Timeout=soon", "seconds"),
        ] {
            let error = ReplyAttribute::parse_assignment(assignment).unwrap_err();
            assert!(error.contains(reason), "{assignment}: {error}");
        }
    }
}
