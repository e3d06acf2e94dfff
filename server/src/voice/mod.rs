//! Voice tokens' calls (issue 19, in progress): the parts of a SIP call the server places that no
//! crate provides ready: reading the keys the user presses ([`dtmf`]) and the spoken prompt's
//! audio as G.711 frames ([`prompt`]). The SIP user agent and the Twilio-compatible Calls API
//! that place the calls build on them.

pub mod dtmf;
pub mod prompt;
