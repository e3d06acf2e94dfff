//! QR codes: rendered for people (PNG, SVG, terminal) and read from images and camera frames.
//!
//! Camera frames go through one function, [`decode_luma`], fed with the luma (grey) plane that
//! cameras produce; it takes a short ladder of [`Look`]s (scaled, sharpened) searched with
//! `rxing`'s port of zxing-cpp's detector, which reads far more webcam-like frames than `rqrr`
//! and is several times faster on the frames that hold no code, the common case in a video
//! stream (figures in docs/cli.md). Image files, decoded once, go through [`decode_image`], which
//! adds the inverted image and `rqrr` as second opinions, trading milliseconds for recall. Both
//! decoders parse untrusted pixels, so they run behind `catch_unwind`: a decoder bug becomes
//! "no code found", never a crash. Decoded text is returned as [`SecretString`] because enrollment
//! QR codes carry seeds.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use image::{GrayImage, ImageFormat, ImageReader, Limits, Luma};
use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};
use rxing::{BarcodeFormat, DecodeHints};

use crate::secret::SecretString;

mod look;
pub use look::{Look, Sharpen};

/// Largest image side accepted when decoding a file, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Largest image file read, in bytes.
pub const MAX_IMAGE_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most memory an image decoder may allocate, in bytes.
pub const MAX_IMAGE_ALLOC: u64 = 512 * 1024 * 1024;

/// A grey image borrowed from a camera or a decoded file: one byte per pixel, row by row.
#[derive(Debug, Clone, Copy)]
pub struct LumaFrame<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` bytes, 0 = black, 255 = white.
    pub pixels: &'a [u8],
}

impl<'a> LumaFrame<'a> {
    /// A frame, checked: the pixel buffer must hold exactly `width * height` bytes.
    pub fn new(width: u32, height: u32, pixels: &'a [u8]) -> Result<Self, QrError> {
        let expected = u64::from(width) * u64::from(height);
        if width == 0 || height == 0 || pixels.len() as u64 != expected {
            return Err(QrError::InvalidFrame { width, height, bytes: pixels.len() });
        }
        Ok(Self { width, height, pixels })
    }
}

/// The brightness of a colour pixel (ITU-R BT.601 weights, integer arithmetic), for turning
/// colour camera or canvas frames into the luma frames the decoder reads.
pub fn luma_of_rgb(r: u8, g: u8, b: u8) -> u8 {
    let weighted = 299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b);
    u8::try_from((weighted + 500) / 1000).unwrap_or(u8::MAX)
}

/// The luma plane of `pixels` packed colour pixels of `bytes_per_pixel` bytes each (RGB, BGR,
/// RGBA...), whose red, green and blue bytes sit at the offsets `rgb`; `None` when `data` is short.
pub fn luma_of_packed(
    data: &[u8],
    pixels: usize,
    bytes_per_pixel: usize,
    rgb: [usize; 3],
) -> Option<Vec<u8>> {
    let [r, g, b] = rgb;
    data.get(..pixels.checked_mul(bytes_per_pixel)?)?
        .chunks_exact(bytes_per_pixel)
        .map(|pixel| Some(luma_of_rgb(*pixel.get(r)?, *pixel.get(g)?, *pixel.get(b)?)))
        .collect()
}

/// Why a QR code could not be rendered or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    /// The text does not fit in a QR code.
    #[error("the text is too long for a QR code")]
    TooLong,
    /// A frame whose buffer does not match its dimensions.
    #[error("invalid frame: {width}x{height} needs {} bytes, got {bytes}", u64::from(*width) * u64::from(*height))]
    InvalidFrame {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Buffer length.
        bytes: usize,
    },
    /// The image format is not one of PNG, JPEG, WebP, GIF, BMP, PGM.
    #[error("unsupported image format (expected PNG, JPEG, WebP, GIF, BMP or PGM)")]
    UnsupportedImage,
    /// The image is damaged or too large.
    #[error("could not read the image: {0}")]
    UnreadableImage(String),
    /// The image file could not be read.
    #[error("could not read {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Rendering failed.
    #[error("could not render the QR code: {0}")]
    Render(String),
}

impl crate::error::Classify for QrError {
    fn code(&self) -> crate::error::ErrorCode {
        match self {
            Self::Io { .. } => crate::error::ErrorCode::Storage,
            Self::Render(_) => crate::error::ErrorCode::Internal,
            _ => crate::error::ErrorCode::InvalidInput,
        }
    }
}

fn encode(text: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|_| QrError::TooLong)
}

/// The QR code as a grey image with a 4-module quiet zone, `module_px` pixels per module.
pub fn render_image(text: &str, module_px: u32) -> Result<GrayImage, QrError> {
    let module_px = module_px.clamp(1, 64);
    Ok(encode(text)?.render::<Luma<u8>>().module_dimensions(module_px, module_px).quiet_zone(true).build())
}

/// The QR code as PNG bytes.
pub fn render_png(text: &str, module_px: u32) -> Result<Vec<u8>, QrError> {
    let image = render_image(text, module_px)?;
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|e| QrError::Render(e.to_string()))?;
    Ok(png)
}

/// The QR code as a standalone SVG document.
pub fn render_svg(text: &str) -> Result<String, QrError> {
    Ok(encode(text)?
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build())
}

/// The QR code as text for a terminal: two modules per character cell with half blocks, light
/// modules drawn as blocks so it scans on the usual dark terminal background.
pub fn render_terminal(text: &str) -> Result<String, QrError> {
    Ok(encode(text)?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// Frames with at least this many lines take the large-frame looks ([`LARGE_FRAME_LOOKS`]), the
/// others the small-frame looks ([`SMALL_FRAME_LOOKS`]).
pub const LARGE_FRAME_LINES: u32 = 600;

/// The looks at a frame of 600 lines or more, in order: at a third of its size first (a code held
/// close, 12–15 pixels per module at 720p, still has 4–5 there, and the look costs about 0.5 ms),
/// then as it is, zooming in where it finds finder patterns but reads no code ([`Look::zoomed`]).
/// Figures in docs/cli.md.
pub const LARGE_FRAME_LOOKS: [Look; 2] = [Look::scaled(1, 3), Look::DIRECT.zoomed()];

/// The looks at a smaller frame, in order: as it is, then sharpened (an unsharp mask over 5×5
/// pixels, 3.5 times the difference); each zooms in where it finds finder patterns but reads no
/// code ([`Look::zoomed`]), which reads the codes a blurred VGA camera shows at 2.5–3 pixels per
/// module. Figures in docs/cli.md.
pub const SMALL_FRAME_LOOKS: [Look; 2] = [Look::DIRECT.zoomed(), Look::DIRECT.sharpened(2, 56).zoomed()];

/// The QR code found in a camera frame (empty when there is none): the frame's looks in order
/// ([`LARGE_FRAME_LOOKS`] or [`SMALL_FRAME_LOOKS`]), stopping at the first that reads a code.
pub fn decode_luma(frame: LumaFrame<'_>) -> Vec<SecretString> {
    let looks: &[Look] =
        if frame.height >= LARGE_FRAME_LINES { &LARGE_FRAME_LOOKS } else { &SMALL_FRAME_LOOKS };
    looks.iter().find_map(|look| look.decode(frame)).into_iter().collect()
}

/// Decodes with `rxing` alone, trying hard (exposed for benchmarks comparing decoders).
pub fn decode_with_rxing(frame: LumaFrame<'_>) -> Vec<SecretString> {
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        let mut hints = DecodeHints { TryHarder: Some(true), ..DecodeHints::default() };
        rxing::helpers::detect_in_luma_slice_with_hints(
            frame.pixels,
            frame.width,
            frame.height,
            Some(BarcodeFormat::QR_CODE),
            &mut hints,
        )
        .ok()
        .map(|result| result.getText().to_owned())
    }));
    decoded.ok().flatten().map(SecretString::new).into_iter().collect()
}

/// Decodes with `rqrr` (exposed for benchmarks comparing decoders).
pub fn decode_with_rqrr(frame: LumaFrame<'_>) -> Vec<SecretString> {
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        let width = frame.width as usize;
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(width, frame.height as usize, |x, y| {
                frame.pixels.get(y * width + x).copied().unwrap_or(255)
            });
        let mut texts = Vec::new();
        for grid in prepared.detect_grids() {
            if let Ok((_, text)) = grid.decode() {
                texts.push(SecretString::new(text));
            }
        }
        texts
    }));
    let mut unique: Vec<SecretString> = Vec::new();
    for text in decoded.unwrap_or_default() {
        if !unique.contains(&text) {
            unique.push(text);
        }
    }
    unique
}

/// Every QR code in an encoded image (PNG, JPEG, WebP, GIF, BMP, PGM/PNM). When `rxing` finds nothing it
/// also tries the inverted image (a screenshot of a light-on-dark terminal QR) and then `rqrr`.
pub fn decode_image(bytes: &[u8]) -> Result<Vec<SecretString>, QrError> {
    let mut luma = decode_grey(bytes)?;
    let (width, height) = luma.dimensions();
    let decoders: [fn(LumaFrame<'_>) -> Vec<SecretString>; 2] = [decode_with_rxing, decode_with_rqrr];
    for decoder in decoders {
        // Upright, then inverted; the second inversion restores the image for the next decoder.
        for _ in 0..2 {
            let found = decoder(LumaFrame::new(width, height, luma.as_raw())?);
            if !found.is_empty() {
                return Ok(found);
            }
            image::imageops::invert(&mut luma);
        }
    }
    Ok(Vec::new())
}

/// An encoded image (PNG, JPEG, WebP, GIF, BMP, PGM/PNM) as grey pixels, decoded within the size and
/// allocation limits and behind `catch_unwind`: files and camera JPEGs are untrusted input.
pub fn decode_grey(bytes: &[u8]) -> Result<GrayImage, QrError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| QrError::UnreadableImage(e.to_string()))?;
    if reader.format().is_none() {
        return Err(QrError::UnsupportedImage);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    let image = catch_unwind(AssertUnwindSafe(|| reader.decode()))
        .map_err(|_| QrError::UnreadableImage("the image decoder failed on this file".into()))?
        .map_err(|e| match e {
            image::ImageError::Unsupported(_) => QrError::UnsupportedImage,
            other => QrError::UnreadableImage(other.to_string()),
        })?;
    Ok(image.into_luma8())
}

/// Every QR code in an image file.
pub fn decode_image_file(path: &Path) -> Result<Vec<SecretString>, QrError> {
    use std::io::Read;
    let io_error = |source| QrError::Io { path: path.to_path_buf(), source };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_IMAGE_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_IMAGE_FILE_BYTES {
        return Err(QrError::UnreadableImage(format!(
            "the file is larger than {} MiB",
            MAX_IMAGE_FILE_BYTES >> 20
        )));
    }
    decode_image(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30";

    fn texts(found: Vec<SecretString>) -> Vec<String> {
        found.iter().map(|t| t.expose().to_owned()).collect()
    }

    #[test]
    fn png_round_trip() {
        let png = render_png(URI, 6).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        assert_eq!(texts(decode_image(&png).unwrap()), [URI]);
    }

    #[test]
    fn a_large_code_near_the_edge_of_a_720p_frame_reads_in_the_look_at_a_third() {
        // As long as a One Swipe code (version 6-M), at 13 pixels per module.
        let text = "TESSERA ONE SWIPE TEST CODE ".repeat(5);
        let code = render_image(&text, 13).unwrap();
        let mut frame = GrayImage::from_pixel(1280, 720, Luma([128]));
        let left = i64::from(1280 - code.width()) - 4;
        image::imageops::overlay(&mut frame, &code, left, 4);
        let luma = LumaFrame::new(1280, 720, frame.as_raw()).unwrap();
        assert_eq!(
            texts(Look::scaled(1, 3).decode(luma).into_iter().collect()),
            std::slice::from_ref(&text),
            "{} px side",
            code.width()
        );
        assert_eq!(texts(decode_luma(luma)), [text]);
    }

    /// A One Swipe-sized code (version 6) at `tenths` tenths of a pixel per module in a VGA
    /// frame, blurred with σ 1.1 px.
    fn blurred_code_in_a_vga_frame(tenths: u32) -> (String, GrayImage) {
        let text = "TESSERA ONE SWIPE TEST CODE ".repeat(5);
        let code = render_image(&text, 13).unwrap();
        let side = code.width() * tenths / 130;
        let small = image::imageops::resize(&code, side, side, image::imageops::FilterType::Triangle);
        let mut frame = GrayImage::from_pixel(640, 480, Luma([150]));
        image::imageops::overlay(&mut frame, &small, 200, 120);
        (text, image::imageops::blur(&frame, 1.1))
    }

    #[test]
    fn a_blurred_code_at_under_three_pixels_a_module_reads_in_the_sharpened_look() {
        let (text, frame) = blurred_code_in_a_vga_frame(27);
        let luma = LumaFrame::new(640, 480, frame.as_raw()).unwrap();
        assert_eq!(
            texts(SMALL_FRAME_LOOKS[1].decode(luma).into_iter().collect()),
            std::slice::from_ref(&text)
        );
        assert_eq!(texts(decode_luma(luma)), [text]);
    }

    #[test]
    fn a_blurred_code_the_direct_look_samples_wrong_reads_when_it_zooms_in() {
        let (text, frame) = blurred_code_in_a_vga_frame(25);
        let luma = LumaFrame::new(640, 480, frame.as_raw()).unwrap();
        assert_eq!(Look::DIRECT.decode(luma), None);
        assert_eq!(
            texts(Look::DIRECT.zoomed().decode(luma).into_iter().collect()),
            std::slice::from_ref(&text)
        );
        assert_eq!(texts(decode_luma(luma)), [text]);
    }

    #[test]
    fn both_decoders_read_a_clean_render() {
        let image = render_image(URI, 4).unwrap();
        let frame = LumaFrame::new(image.width(), image.height(), image.as_raw()).unwrap();
        assert_eq!(texts(decode_with_rxing(frame)), [URI]);
        assert_eq!(texts(decode_with_rqrr(frame)), [URI]);
    }

    #[test]
    fn jpeg_and_inverted_images_decode() {
        let mut image = render_image(URI, 5).unwrap();
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageLuma8(image.clone())
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        assert_eq!(texts(decode_image(&jpeg).unwrap()), [URI]);

        image::imageops::invert(&mut image);
        let mut png = Vec::new();
        image.write_to(&mut Cursor::new(&mut png), ImageFormat::Png).unwrap();
        assert_eq!(texts(decode_image(&png).unwrap()), [URI]);
    }

    #[test]
    fn a_qr_inside_a_larger_noisy_picture() {
        let code = render_image(URI, 3).unwrap();
        let (w, h) = (900u32, 700u32);
        let mut canvas = GrayImage::from_fn(w, h, |x, y| Luma([(((x * 7 + y * 13) % 97) + 120) as u8]));
        image::imageops::overlay(&mut canvas, &code, 310, 180);
        let frame = LumaFrame::new(w, h, canvas.as_raw()).unwrap();
        assert_eq!(texts(decode_luma(frame)), [URI]);
    }

    #[test]
    fn blank_and_noise_frames_find_nothing() {
        let blank = vec![255u8; 640 * 480];
        assert!(decode_luma(LumaFrame::new(640, 480, &blank).unwrap()).is_empty());
        let mut state = 0x2545_f491_u32;
        let noise: Vec<u8> = (0..640 * 480)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        assert!(decode_luma(LumaFrame::new(640, 480, &noise).unwrap()).is_empty());
    }

    #[test]
    fn bad_frames_and_images_are_errors() {
        assert!(matches!(LumaFrame::new(10, 10, &[0; 99]), Err(QrError::InvalidFrame { .. })));
        assert!(matches!(LumaFrame::new(0, 10, &[]), Err(QrError::InvalidFrame { .. })));
        assert!(matches!(decode_image(b"plain text, not an image"), Err(QrError::UnsupportedImage)));
        let png = render_png(URI, 2).unwrap();
        assert!(matches!(decode_image(&png[..png.len() / 2]), Err(QrError::UnreadableImage(_))));
        assert!(matches!(decode_image_file(Path::new("/nonexistent/qr.png")), Err(QrError::Io { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn endless_files_are_refused_after_the_size_limit() {
        let error = decode_image_file(Path::new("/dev/zero")).unwrap_err();
        assert!(error.to_string().contains("larger than 64 MiB"), "{error}");
    }

    #[test]
    fn svg_and_terminal_renderings() {
        let svg = render_svg(URI).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
        let terminal = render_terminal("hello").unwrap();
        let lines: Vec<_> = terminal.lines().collect();
        assert!(lines.len() > 10 && lines.iter().all(|l| l.chars().count() == lines[0].chars().count()));
        assert!(terminal.contains('█') || terminal.contains('▀'));
    }

    #[test]
    fn luma_follows_bt601() {
        assert_eq!([luma_of_rgb(255, 255, 255), luma_of_rgb(0, 0, 0)], [255, 0]);
        assert_eq!([luma_of_rgb(255, 0, 0), luma_of_rgb(0, 255, 0), luma_of_rgb(0, 0, 255)], [76, 150, 29]);
        let rgba = [255, 0, 0, 9, 0, 0, 255, 9];
        assert_eq!(luma_of_packed(&rgba, 2, 4, [0, 1, 2]), Some(vec![76, 29]));
        assert_eq!(luma_of_packed(&rgba, 2, 4, [2, 1, 0]), Some(vec![29, 76]));
        assert_eq!(luma_of_packed(&rgba, 3, 4, [0, 1, 2]), None, "too short");
    }

    #[test]
    fn too_long_text_is_an_error() {
        assert!(matches!(render_png(&"x".repeat(5000), 1), Err(QrError::TooLong)));
    }
}
