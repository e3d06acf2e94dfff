//! Scanning and showing QR codes: the apps hand camera frames to the core's decoder, ask what a
//! scanned text is (a token, a push enrollment link, or neither), and get QR images to show.

use tessera_core::otpauth;
use tessera_core::push::EnrollmentLink;
use tessera_core::qr::{self, LumaFrame};

use crate::TesseraError;

/// The QR codes' texts in a camera frame's luma (Y) plane: `height` rows of `row_stride` bytes,
/// of which the first `width` are pixels (CameraX and AVFoundation pad rows). Empty when there
/// is none.
#[uniffi::export]
pub fn decode_qr_luma(
    width: u32,
    height: u32,
    row_stride: u32,
    luma: Vec<u8>,
) -> Result<Vec<String>, TesseraError> {
    let invalid = || TesseraError::InvalidInput {
        reason: format!(
            "a {width}×{height} frame with {row_stride}-byte rows needs more than {} bytes",
            luma.len()
        ),
    };
    let (w, stride) = (width as usize, row_stride as usize);
    if width == 0 || height == 0 || stride < w {
        return Err(TesseraError::InvalidInput {
            reason: format!("a {width}×{height} frame with {row_stride}-byte rows is not a camera frame"),
        });
    }
    let needed = stride
        .checked_mul(height.saturating_sub(1) as usize)
        .and_then(|n| n.checked_add(w))
        .ok_or_else(invalid)?;
    if luma.len() < needed {
        return Err(invalid());
    }
    let pixels: Vec<u8> =
        luma.chunks(stride).take(height as usize).flat_map(|row| row.iter().take(w).copied()).collect();
    let frame = LumaFrame::new(width, height, &pixels)?;
    Ok(qr::decode_luma(frame).into_iter().map(|text| text.expose().to_owned()).collect())
}

/// What a scanned or pasted text is.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Scanned {
    /// A token to add with [`crate::Vault::add_uri`]: its name as the list will show it.
    Token {
        /// `issuer:label`.
        name: String,
    },
    /// A push enrollment link for [`crate::Vault::enroll`].
    Enrollment {
        /// The server's base URL.
        server: String,
        /// The organization, if the link names it.
        issuer: Option<String>,
        /// The account, if the link names it.
        account: Option<String>,
        /// Set when the server is reached over plain HTTP on another computer.
        warning: Option<String>,
    },
    /// Neither (a web address, some other QR code): keep scanning.
    Other,
}

/// What `text` is. A text meant as a token or enrollment link but malformed is an `InvalidInput`
/// error saying what is wrong.
#[uniffi::export]
pub fn parse_scanned(text: String) -> Result<Scanned, TesseraError> {
    let text = text.trim();
    if EnrollmentLink::is_meant(text) {
        let link = EnrollmentLink::parse(text)?;
        return Ok(Scanned::Enrollment {
            warning: link.cleartext_warning(),
            server: link.server,
            issuer: link.issuer,
            account: link.account,
        });
    }
    if otpauth::adds_to_vault(text) {
        let parsed = otpauth::OtpAuth::parse(text)?;
        return Ok(Scanned::Token { name: parsed.otp.display_name() });
    }
    Ok(Scanned::Other)
}

/// `text` as a PNG QR code with `module_px` pixels per module (for One Swipe and for moving a
/// token to another device).
#[uniffi::export]
pub fn qr_png(text: String, module_px: u32) -> Result<Vec<u8>, TesseraError> {
    Ok(qr::render_png(&text, module_px)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A QR code of `text` as a luma frame with `padding` extra bytes per row.
    fn padded_frame(text: &str, padding: usize) -> (u32, u32, u32, Vec<u8>) {
        let png = qr_png(text.into(), 4).unwrap();
        let image = image_of(&png);
        let (width, height) = (image.0, image.1);
        let stride = width as usize + padding;
        let mut luma = vec![0x80; stride * height as usize];
        for (y, row) in image.2.chunks(width as usize).enumerate() {
            luma[y * stride..y * stride + width as usize].copy_from_slice(row);
        }
        (width, height, stride as u32, luma)
    }

    fn image_of(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let grey = qr::decode_grey(png).unwrap();
        let (width, height) = grey.dimensions();
        (width, height, grey.into_raw())
    }

    #[test]
    fn padded_camera_rows_are_read_without_their_padding() {
        let uri = "otpauth://totp/ACME:ann?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        for padding in [0, 1, 64] {
            let (width, height, stride, luma) = padded_frame(uri, padding);
            assert_eq!(decode_qr_luma(width, height, stride, luma).unwrap(), vec![uri.to_owned()]);
        }
    }

    #[test]
    fn frames_too_short_for_their_size_are_refused_with_the_sizes() {
        let error = decode_qr_luma(640, 480, 640, vec![0; 640 * 479]).unwrap_err();
        assert!(
            matches!(error, TesseraError::InvalidInput { ref reason } if reason.contains("640×480")),
            "{error}"
        );
        assert!(decode_qr_luma(640, 480, 600, vec![0; 640 * 480]).is_err(), "rows shorter than the width");
        assert!(decode_qr_luma(640, 0, 640, Vec::new()).is_err());
        assert!(
            decode_qr_luma(0, 5, 0, Vec::new()).is_err(),
            "no width and no stride is refused, not a panic"
        );
        assert!(decode_qr_luma(2, 2, 3, vec![255; 5]).unwrap().is_empty(), "the last row needs no padding");
    }

    #[test]
    fn scanned_texts_are_told_apart() {
        assert_eq!(
            parse_scanned("otpauth://totp/ACME:ann?secret=GEZDGNBVGY3TQOJQ".into()).unwrap(),
            Scanned::Token { name: "ACME:ann".into() }
        );
        assert_eq!(parse_scanned("https://example.com".into()).unwrap(), Scanned::Other);
        assert!(matches!(
            parse_scanned("TESSERA://ENROLL?v=1".into()),
            Err(TesseraError::InvalidInput { .. })
        ));
    }
}
