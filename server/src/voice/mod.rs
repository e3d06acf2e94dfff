//! Voice tokens' calls: [`sip`] places a call as a SIP user agent (rsipstack), plays the spoken
//! prompt and collects the keys pressed; [`dtmf`] reads those keys from RFC 4733 telephone-events
//! and SIP INFO bodies, and [`prompt`] turns the prompt's WAV file into G.711 frames: the parts
//! of a call no crate provides ready. Delivery owns the configured account and prompt.

pub mod dtmf;
pub mod prompt;
pub mod sip;
