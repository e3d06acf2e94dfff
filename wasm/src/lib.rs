//! The browser's One Swipe reader: the same QR decoder and One Swipe parser as every other
//! Tessera edge, compiled to WebAssembly, so the login page needs no third-party JavaScript
//! decoder. The page hands over a video frame's RGBA pixels; the luma plane is taken here.

use std::sync::Mutex;

use tessera_core::oneswipe::OneSwipe;
use tessera_core::qr::{self, LumaFrame};
use wasm_bindgen::prelude::wasm_bindgen;

/// The last panic's message: in WebAssembly a panic aborts the call, and the page can show why.
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

/// Records panic messages for [`last_panic`]. Runs when the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = info.to_string();
        }
    }));
}

/// Why the last call failed, if it panicked.
#[wasm_bindgen]
pub fn last_panic() -> String {
    LAST_PANIC.lock().map(|last| last.clone()).unwrap_or_default()
}

/// The text of the QR code in an RGBA frame (`width * height * 4` bytes, as a canvas's
/// `ImageData` holds), or `undefined` when there is none.
#[wasm_bindgen]
pub fn decode_rgba(width: u32, height: u32, rgba: &[u8]) -> Option<String> {
    let pixels = usize::try_from(u64::from(width) * u64::from(height)).ok()?;
    if rgba.len() != pixels.checked_mul(4)? {
        return None;
    }
    let luma = qr::luma_of_packed(rgba, pixels, 4, [0, 1, 2])?;
    let frame = LumaFrame::new(width, height, &luma).ok()?;
    qr::decode_luma(frame).into_iter().next().map(|text| text.expose().to_owned())
}

/// True when `text` has the form of a One Swipe code (checked for real by the server).
#[wasm_bindgen]
pub fn is_one_swipe(text: &str) -> bool {
    OneSwipe::parse(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_code_from_rgba_pixels() {
        let image = qr::render_image("HELLO FROM THE CAMERA", 4).unwrap();
        let rgba: Vec<u8> = image.as_raw().iter().flat_map(|&v| [v, v, v, 255]).collect();
        assert_eq!(
            decode_rgba(image.width(), image.height(), &rgba).as_deref(),
            Some("HELLO FROM THE CAMERA")
        );
        assert_eq!(decode_rgba(image.width(), image.height(), &rgba[4..]), None, "wrong size");
        assert!(!is_one_swipe("HELLO FROM THE CAMERA"));
    }
}
