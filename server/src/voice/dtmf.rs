//! The keys a user presses on the phone during a voice-token call, as they reach the server: RFC
//! 4733 telephone-events in the call's RTP stream (what SIP phones and trunks send by default),
//! or the body of a SIP INFO request (`application/dtmf-relay`, `application/dtmf`: what some
//! PBXs send instead). A key press is one event sent in several packets, its last ("end") packet
//! three times (RFC 4733 §2.5.1.4); [`Keypad`] turns that stream into each key once.

use rtp_rs::RtpReader;

/// A key on a telephone keypad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `0` to `9`.
    Digit(u8),
    /// `*`.
    Star,
    /// `#`.
    Pound,
}

impl Key {
    /// The key a DTMF event number stands for (RFC 4733 §3.2: 0–9, 10 `*`, 11 `#`; the A–D
    /// keys, 12–15, are not on phones and are ignored).
    pub fn of_event(event: u8) -> Option<Self> {
        match event {
            0..=9 => Some(Self::Digit(event)),
            10 => Some(Self::Star),
            11 => Some(Self::Pound),
            _ => None,
        }
    }

    /// The key as typed: `0`–`9`, `*` or `#`.
    pub fn as_char(self) -> char {
        match self {
            Self::Digit(digit) => char::from(b'0' + digit.min(9)),
            Self::Star => '*',
            Self::Pound => '#',
        }
    }

    /// The key a typed character stands for.
    pub fn of_char(c: char) -> Option<Self> {
        match c {
            '*' => Some(Self::Star),
            '#' => Some(Self::Pound),
            _ => c.to_digit(10).and_then(|d| u8::try_from(d).ok()).map(Self::Digit),
        }
    }
}

/// One telephone-event packet (RFC 4733 §2.3) and the RTP header fields that place it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event number (a key: see [`Key::of_event`]).
    pub event: u8,
    /// Whether this is the event's end packet.
    pub end: bool,
    /// Its power level, in -dBm0 (0 loudest, 63 quietest).
    pub volume: u8,
    /// How long it has lasted so far, in timestamp units.
    pub duration: u16,
    /// The RTP timestamp: the event's start, the same in all its packets.
    pub timestamp: u32,
    /// The RTP marker bit: set on an event's first packet.
    pub marker: bool,
}

impl TelephoneEvent {
    /// Reads an RTP packet that carries telephone-events as `payload_type` (the number the SDP
    /// gave `telephone-event/8000`, usually 101); none for any other packet, or one too short.
    pub fn from_rtp(packet: &[u8], payload_type: u8) -> Option<Self> {
        let rtp = RtpReader::new(packet).ok()?;
        if rtp.version() != 2 || rtp.payload_type() != payload_type {
            return None;
        }
        let [event, flags, high, low, ..] = *rtp.payload() else { return None };
        Some(Self {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([high, low]),
            timestamp: rtp.timestamp(),
            marker: rtp.mark(),
        })
    }
}

/// Turns telephone-event packets into key presses: a key when its event ends, once however often
/// the end packet is repeated. A packet before the end (an event's start or its updates) readies
/// the next key, so the same key pressed twice counts twice even when a sender reuses the
/// timestamp (SIPp's recorded presses all start at one timestamp); an end packet for another
/// event or timestamp counts on its own, so a press whose earlier packets were lost still counts.
#[derive(Debug, Default)]
pub struct Keypad {
    ready: bool,
    last: Option<(u32, u8)>,
}

impl Keypad {
    /// The key `event` completes, if it completes one.
    pub fn press(&mut self, event: &TelephoneEvent) -> Option<Key> {
        if !event.end {
            self.ready = true;
            return None;
        }
        let this = (event.timestamp, event.event);
        let counts = self.ready || self.last != Some(this);
        self.ready = false;
        if !counts {
            return None;
        }
        self.last = Some(this);
        Key::of_event(event.event)
    }
}

/// The key a SIP INFO request carries: `application/dtmf-relay` (`Signal=5` on a line of its
/// own, the usual form) or `application/dtmf` (the key alone); none for another content type or
/// a body without a key.
pub fn info_key(content_type: &str, body: &str) -> Option<Key> {
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let signal = match media.as_str() {
        "application/dtmf-relay" => body.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim().eq_ignore_ascii_case("signal").then(|| value.trim())
        })?,
        "application/dtmf" => body.trim(),
        _ => return None,
    };
    match signal {
        "10" => Some(Key::Star),
        "11" => Some(Key::Pound),
        _ => {
            let mut chars = signal.chars();
            let key = chars.next().and_then(Key::of_char)?;
            chars.next().is_none().then_some(key)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use rtp_rs::{RtpPacketBuilder, Seq};

    use super::*;

    const TELEPHONE_EVENT: u8 = 101;

    fn packet(event: u8, end: bool, duration: u16, timestamp: u32, marker: bool, sequence: u16) -> Vec<u8> {
        let payload = [event, if end { 0x8a } else { 0x0a }, (duration >> 8) as u8, duration as u8];
        RtpPacketBuilder::new()
            .payload_type(TELEPHONE_EVENT)
            .ssrc(0x0e05_384e)
            .sequence(Seq::from(sequence))
            .timestamp(timestamp)
            .marked(marker)
            .payload(&payload)
            .build()
            .unwrap()
    }

    /// One key press as a phone sends it: a start, updates, and the end three times.
    pub(crate) fn press(event: u8, timestamp: u32, first_sequence: u16) -> Vec<Vec<u8>> {
        let mut packets = vec![packet(event, false, 0, timestamp, true, first_sequence)];
        for step in 1..4u16 {
            packets.push(packet(event, false, step * 320, timestamp, false, first_sequence + step));
        }
        for _ in 0..3 {
            packets.push(packet(event, true, 1280, timestamp, false, first_sequence + 4));
        }
        packets
    }

    fn keys_of(packets: &[Vec<u8>]) -> String {
        let mut keypad = Keypad::default();
        packets
            .iter()
            .filter_map(|p| TelephoneEvent::from_rtp(p, TELEPHONE_EVENT))
            .filter_map(|e| keypad.press(&e))
            .map(Key::as_char)
            .collect()
    }

    #[test]
    fn each_press_counts_once_however_often_its_end_is_repeated() {
        let packets: Vec<Vec<u8>> = [(4, 160), (8, 1600), (2, 3200), (9, 4800), (1, 6400), (3, 8000)]
            .iter()
            .enumerate()
            .flat_map(|(i, &(event, timestamp))| press(event, timestamp, (i as u16) * 10))
            .collect();
        assert_eq!(keys_of(&packets), "482913");
        let first = TelephoneEvent::from_rtp(&packets[0], TELEPHONE_EVENT).unwrap();
        assert_eq!((first.event, first.end, first.volume, first.marker), (4, false, 10, true));
    }

    #[test]
    fn the_same_key_twice_counts_twice_even_at_one_timestamp_and_a_lost_start_still_counts() {
        let mut packets = press(1, 43_200, 0);
        packets.extend(press(1, 43_200, 0));
        assert_eq!(keys_of(&packets), "11", "SIPp's recordings reuse one timestamp");
        let mut lost_start = press(5, 100, 0);
        lost_start.extend(press(6, 900, 10).into_iter().skip(4));
        assert_eq!(keys_of(&lost_start), "56", "only the end packets of the 6 arrived");
    }

    #[test]
    fn other_packets_are_not_keys() {
        let audio = RtpPacketBuilder::new().payload_type(0).payload(&[0xff; 160]).build().unwrap();
        assert_eq!(TelephoneEvent::from_rtp(&audio, TELEPHONE_EVENT), None, "G.711 audio");
        let short =
            RtpPacketBuilder::new().payload_type(TELEPHONE_EVENT).payload(&[5, 0x8a]).build().unwrap();
        assert_eq!(TelephoneEvent::from_rtp(&short, TELEPHONE_EVENT), None, "a truncated event");
        assert_eq!(keys_of(&press(13, 0, 0)), "", "the D key is not on a phone");
        assert_eq!(TelephoneEvent::from_rtp(&[0x80, 101], TELEPHONE_EVENT), None);
    }

    #[test]
    fn sip_info_bodies_carry_one_key() {
        assert_eq!(info_key("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"), Some(Key::Digit(5)));
        assert_eq!(
            info_key("Application/DTMF-Relay; charset=utf-8", "signal = *\nDuration=100"),
            Some(Key::Star)
        );
        assert_eq!(info_key("application/dtmf-relay", "Signal=11\r\n"), Some(Key::Pound));
        assert_eq!(info_key("application/dtmf", "7\r\n"), Some(Key::Digit(7)));
        assert_eq!(info_key("application/dtmf", "77"), None);
        assert_eq!(info_key("application/sdp", "Signal=5"), None);
        assert_eq!(info_key("application/dtmf-relay", "Duration=160"), None);
    }

    /// SIPp's own recordings of RFC 4733 key presses (Debian `sip-tester`,
    /// `/usr/share/sip-tester/dtmf_2833_*.pcap`): an independent sender's packets, read from the
    /// capture's Ethernet, IPv4 and UDP headers.
    #[test]
    fn sipps_recorded_key_presses_read_as_their_keys() {
        let directory = std::path::Path::new("/usr/share/sip-tester");
        assert!(
            directory.join("dtmf_2833_0.pcap").exists(),
            "SIPp's DTMF captures are missing: install Debian's sip-tester (scripts/setup-debian.sh does)"
        );
        let mut keypad = Keypad::default();
        let mut typed = String::new();
        for name in ["4", "8", "8", "pound", "1", "star", "3", "0"] {
            let capture = std::fs::read(directory.join(format!("dtmf_2833_{name}.pcap"))).unwrap();
            for rtp in udp_payloads_of_pcap(&capture) {
                let event = TelephoneEvent::from_rtp(&rtp, TELEPHONE_EVENT).expect("each packet is an event");
                typed.extend(keypad.press(&event).map(Key::as_char));
            }
        }
        assert_eq!(typed, "488#1*30");
    }

    /// The UDP payloads in a classic pcap file of Ethernet frames.
    fn udp_payloads_of_pcap(capture: &[u8]) -> Vec<Vec<u8>> {
        assert_eq!(capture[..4], [0xd4, 0xc3, 0xb2, 0xa1], "a little-endian pcap file");
        assert_eq!(u32::from_le_bytes(capture[20..24].try_into().unwrap()), 1, "Ethernet frames");
        let mut at = 24;
        let mut payloads = Vec::new();
        while at + 16 <= capture.len() {
            let length = u32::from_le_bytes(capture[at + 8..at + 12].try_into().unwrap()) as usize;
            let frame = &capture[at + 16..at + 16 + length];
            let ip = &frame[14..];
            let udp = &ip[usize::from(ip[0] & 0x0f) * 4..];
            payloads.push(udp[8..].to_vec());
            at += 16 + length;
        }
        payloads
    }

    proptest! {
        #[test]
        fn any_bytes_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut keypad = Keypad::default();
            if let Some(event) = TelephoneEvent::from_rtp(&bytes, TELEPHONE_EVENT) {
                let _ = keypad.press(&event);
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = info_key("application/dtmf-relay", &text);
            let _ = info_key("application/dtmf", &text);
        }
    }
}
