//! Frames for QR scanning, from a live webcam or from a replay, behind one [`FrameSource`] trait,
//! and the scanning loop that feeds them to the core decoder until the first acceptable read.
//!
//! QR decoding needs only brightness, so every source yields luma (grey) frames: from a webcam's
//! YUYV, NV12 or grey output the luma plane is taken as it is (no colour conversion), and MJPEG is
//! decoded straight to grey. The replay source reads recorded or generated frames from a
//! directory, which is how the capture path is tested and measured on machines without a camera.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use nokhwa::utils::FrameFormat;
use nokhwa::utils::{CameraFormat, CameraIndex, RequestedFormat, RequestedFormatType, Resolution};
use tessera_core::error::{Classify, ErrorCode};
use tessera_core::qr::{self, LumaFrame};
use tessera_core::secret::SecretString;

/// The resolution asked of webcams: enough for an arm's-length QR code, cheap to decode.
pub const PREFERRED_SIZE: (u32, u32) = (1280, 720);
/// Largest frame side accepted from any source.
pub const MAX_FRAME_SIDE: u32 = 8192;

/// Why frames could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CameraError {
    /// The camera could not be opened or started.
    #[error("could not open camera {index}: {reason}")]
    Open {
        /// Which camera.
        index: u32,
        /// What the platform said.
        reason: String,
    },
    /// The camera stopped delivering frames.
    #[error("the camera stopped delivering frames: {0}")]
    Capture(String),
    /// A frame in a format that cannot be read.
    #[error("unreadable frame: {0}")]
    BadFrame(String),
    /// A replay directory or file could not be read.
    #[error("could not read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A replay directory without any image.
    #[error("{0} holds no frames (PNG, JPEG, WebP, GIF, BMP or PGM files)")]
    NoFrames(PathBuf),
}

impl Classify for CameraError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Open { .. } | Self::NoFrames(_) => ErrorCode::NotFound,
            Self::Capture(_) | Self::Io { .. } => ErrorCode::Storage,
            Self::BadFrame(_) => ErrorCode::InvalidInput,
        }
    }
}

/// One grey frame, owned.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    luma: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

impl Frame {
    /// A frame from its luma plane, checked against its size.
    pub fn new(width: u32, height: u32, luma: Vec<u8>) -> Result<Self, CameraError> {
        if width > MAX_FRAME_SIDE || height > MAX_FRAME_SIDE {
            return Err(CameraError::BadFrame(format!(
                "{width}x{height} is larger than {MAX_FRAME_SIDE} px"
            )));
        }
        LumaFrame::new(width, height, &luma).map_err(|e| CameraError::BadFrame(e.to_string()))?;
        Ok(Self { width, height, luma })
    }

    /// The luma plane of a camera buffer in `format`.
    pub fn from_camera(
        format: FrameFormat,
        width: u32,
        height: u32,
        data: &[u8],
    ) -> Result<Self, CameraError> {
        let pixels = usize::try_from(u64::from(width) * u64::from(height)).unwrap_or(usize::MAX);
        let short = || CameraError::BadFrame(format!("{format} buffer too short for {width}x{height}"));
        let luma = match format {
            FrameFormat::GRAY | FrameFormat::NV12 => data.get(..pixels).ok_or_else(short)?.to_vec(),
            FrameFormat::YUYV => {
                data.get(..pixels.saturating_mul(2)).ok_or_else(short)?.iter().step_by(2).copied().collect()
            }
            FrameFormat::RAWRGB => qr::luma_of_packed(data, pixels, 3, [0, 1, 2]).ok_or_else(short)?,
            FrameFormat::RAWBGR => qr::luma_of_packed(data, pixels, 3, [2, 1, 0]).ok_or_else(short)?,
            FrameFormat::MJPEG => return decode_image(data, None),
        };
        Self::new(width, height, luma)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The frame as the core decoder takes it.
    pub fn as_luma(&self) -> LumaFrame<'_> {
        LumaFrame { width: self.width, height: self.height, pixels: &self.luma }
    }
}

fn decode_image(bytes: &[u8], path: Option<&Path>) -> Result<Frame, CameraError> {
    let grey = qr::decode_grey(bytes).map_err(|e| {
        CameraError::BadFrame(path.map_or_else(|| e.to_string(), |p| format!("{}: {e}", p.display())))
    })?;
    let (width, height) = grey.dimensions();
    Frame::new(width, height, grey.into_raw())
}

impl Frame {
    /// The frame scaled down to at most `max_width` pixels wide, as a JPEG: a live preview that
    /// lets the user aim the camera.
    pub fn preview_jpeg(&self, max_width: u32) -> Result<Vec<u8>, CameraError> {
        let grey = image::GrayImage::from_raw(self.width, self.height, self.luma.clone())
            .ok_or_else(|| CameraError::BadFrame("frame size and pixels disagree".into()))?;
        let width = self.width.min(max_width.max(1));
        let height = (u64::from(self.height) * u64::from(width) / u64::from(self.width)).max(1) as u32;
        let small = image::imageops::resize(&grey, width, height, image::imageops::FilterType::Triangle);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 70)
            .encode_image(&small)
            .map_err(|e| CameraError::BadFrame(e.to_string()))?;
        Ok(jpeg)
    }
}

/// Anything that yields frames: a webcam, or a replay of files.
pub trait FrameSource {
    /// The next frame; `None` when the source has no more.
    fn next_frame(&mut self) -> Result<Option<Frame>, CameraError>;
}

/// A live webcam through nokhwa (V4L2 on Linux, AVFoundation on macOS, Media Foundation on Windows).
pub struct Camera {
    camera: nokhwa::Camera,
}

impl Camera {
    /// Opens camera `index`, asking for about [`PREFERRED_SIZE`] at the highest frame rate offered.
    pub fn open(index: u32) -> Result<Self, CameraError> {
        let open_error = |reason: String| CameraError::Open { index, reason };
        let wanted =
            CameraFormat::new(Resolution::new(PREFERRED_SIZE.0, PREFERRED_SIZE.1), FrameFormat::MJPEG, 30);
        let requested =
            RequestedFormat::new::<nokhwa::pixel_format::LumaFormat>(RequestedFormatType::Closest(wanted));
        let mut camera = nokhwa::Camera::new(CameraIndex::Index(index), requested)
            .map_err(|e| open_error(e.to_string()))?;
        camera.open_stream().map_err(|e| open_error(e.to_string()))?;
        Ok(Self { camera })
    }

    /// The cameras the platform lists, as `(index, name)`.
    pub fn list() -> Vec<(u32, String)> {
        nokhwa::query(nokhwa::utils::ApiBackend::Auto)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|info| match info.index() {
                CameraIndex::Index(index) => Some((*index, info.human_name())),
                CameraIndex::String(_) => None,
            })
            .collect()
    }
}

impl FrameSource for Camera {
    fn next_frame(&mut self) -> Result<Option<Frame>, CameraError> {
        let buffer = self.camera.frame().map_err(|e| CameraError::Capture(e.to_string()))?;
        let size = buffer.resolution();
        Frame::from_camera(buffer.source_frame_format(), size.width(), size.height(), buffer.buffer())
            .map(Some)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.camera.stop_stream();
    }
}

/// Recorded or generated frames: the image files of a directory, in name order.
pub struct Replay {
    files: std::vec::IntoIter<PathBuf>,
}

impl Replay {
    /// The frames in `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self, CameraError> {
        let io_error = |source| CameraError::Io { path: dir.to_path_buf(), source };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io_error)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    ["png", "jpg", "jpeg", "webp", "gif", "bmp", "pgm"]
                        .contains(&e.to_ascii_lowercase().as_str())
                })
            })
            .collect();
        if files.is_empty() {
            return Err(CameraError::NoFrames(dir.to_path_buf()));
        }
        files.sort();
        Ok(Self { files: files.into_iter() })
    }
}

impl FrameSource for Replay {
    fn next_frame(&mut self) -> Result<Option<Frame>, CameraError> {
        let Some(path) = self.files.next() else { return Ok(None) };
        let bytes = std::fs::read(&path).map_err(|source| CameraError::Io { path: path.clone(), source })?;
        decode_image(&bytes, Some(&path)).map(Some)
    }
}

/// The first acceptable code read.
#[derive(Debug)]
pub struct Read {
    /// The code's text.
    pub text: SecretString,
    /// Frames looked at, this one included.
    pub frames: u64,
    /// Time from the first frame to this read.
    pub elapsed: Duration,
    /// Frames that could not be decoded before it, and why.
    pub skipped: Vec<String>,
}

/// How a scan ended without an acceptable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NothingRead {
    /// Frames looked at.
    pub frames: u64,
    /// Codes seen but not accepted (another kind of QR code).
    pub refused: u64,
    /// The watcher stopped the scan (the user cancelled).
    pub stopped: bool,
    /// Frames that could not be decoded, and why (skipped: one damaged frame does not end a scan).
    pub skipped: Vec<String>,
}

/// At most this many skipped frames are kept with their reasons.
const MAX_SKIPPED_REPORTED: usize = 100;

/// Reads frames until one holds a code `accept` takes, the source runs out, or `timeout` passes.
pub fn scan(
    source: &mut dyn FrameSource,
    accept: impl FnMut(&str) -> bool,
    timeout: Option<Duration>,
) -> Result<Result<Read, NothingRead>, CameraError> {
    scan_watching(source, accept, timeout, |_| ControlFlow::Continue(()))
}

/// [`scan`], showing each frame to `watch` before it is decoded (for a live preview); `watch`
/// stops the scan by returning `Break`.
pub fn scan_watching(
    source: &mut dyn FrameSource,
    mut accept: impl FnMut(&str) -> bool,
    timeout: Option<Duration>,
    mut watch: impl FnMut(&Frame) -> ControlFlow<()>,
) -> Result<Result<Read, NothingRead>, CameraError> {
    let started = Instant::now();
    let mut nothing = NothingRead { frames: 0, refused: 0, stopped: false, skipped: Vec::new() };
    while timeout.is_none_or(|limit| started.elapsed() < limit) {
        let frame = match source.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(CameraError::BadFrame(reason)) => {
                if nothing.skipped.len() < MAX_SKIPPED_REPORTED {
                    nothing.skipped.push(reason);
                }
                continue;
            }
            Err(other) => return Err(other),
        };
        if watch(&frame).is_break() {
            nothing.stopped = true;
            break;
        }
        nothing.frames += 1;
        for text in qr::decode_luma(frame.as_luma()) {
            if accept(text.expose()) {
                let skipped = nothing.skipped;
                return Ok(Ok(Read { text, frames: nothing.frames, elapsed: started.elapsed(), skipped }));
            }
            nothing.refused += 1;
        }
    }
    Ok(Err(nothing))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "TESSERA-CAMERA-TEST";

    fn code_frame() -> Frame {
        let image = qr::render_image(TEXT, 4).unwrap();
        let (width, height) = image.dimensions();
        Frame::new(width, height, image.into_raw()).unwrap()
    }

    struct Frames(Vec<Frame>);

    impl FrameSource for Frames {
        fn next_frame(&mut self) -> Result<Option<Frame>, CameraError> {
            Ok(if self.0.is_empty() { None } else { Some(self.0.remove(0)) })
        }
    }

    #[test]
    fn camera_formats_give_their_luma_plane() {
        let yuyv = [10, 128, 20, 128, 30, 128, 40, 128];
        assert_eq!(Frame::from_camera(FrameFormat::YUYV, 2, 2, &yuyv).unwrap().luma, [10, 20, 30, 40]);
        let nv12 = [1, 2, 3, 4, 128, 128];
        assert_eq!(Frame::from_camera(FrameFormat::NV12, 2, 2, &nv12).unwrap().luma, [1, 2, 3, 4]);
        let rgb = [255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255];
        assert_eq!(Frame::from_camera(FrameFormat::RAWRGB, 2, 2, &rgb).unwrap().luma, [255, 0, 76, 29]);
        assert_eq!(Frame::from_camera(FrameFormat::RAWBGR, 2, 2, &rgb).unwrap().luma, [255, 0, 29, 76]);
        assert_eq!(Frame::from_camera(FrameFormat::GRAY, 2, 1, &[7, 8, 9]).unwrap().luma, [7, 8]);
    }

    #[test]
    fn mjpeg_frames_decode_to_grey() {
        let frame = code_frame();
        let mut jpeg = Vec::new();
        image::GrayImage::from_raw(frame.width, frame.height, frame.luma.clone())
            .unwrap()
            .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        let decoded = Frame::from_camera(FrameFormat::MJPEG, frame.width, frame.height, &jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (frame.width(), frame.height()));
    }

    #[test]
    fn short_and_broken_buffers_are_errors() {
        assert!(matches!(
            Frame::from_camera(FrameFormat::YUYV, 4, 4, &[0; 31]),
            Err(CameraError::BadFrame(_))
        ));
        assert!(matches!(
            Frame::from_camera(FrameFormat::MJPEG, 4, 4, b"not a jpeg"),
            Err(CameraError::BadFrame(_))
        ));
        assert!(matches!(Frame::new(MAX_FRAME_SIDE + 1, 1, vec![0; 8193]), Err(CameraError::BadFrame(_))));
    }

    #[test]
    fn scanning_stops_at_the_first_accepted_code() {
        let blank = Frame::new(64, 64, vec![255; 64 * 64]).unwrap();
        let mut source = Frames(vec![blank.clone(), code_frame(), blank]);
        let read = scan(&mut source, |text| text == TEXT, None).unwrap().unwrap();
        assert_eq!((read.text.expose(), read.frames), (TEXT, 2));
        assert_eq!(source.0.len(), 1, "the frame after the read is not taken");
    }

    #[test]
    fn codes_of_another_kind_are_counted_and_skipped() {
        let mut source = Frames(vec![code_frame(), code_frame()]);
        let nothing = scan(&mut source, |_| false, None).unwrap().unwrap_err();
        assert_eq!(nothing, NothingRead { frames: 2, refused: 2, stopped: false, skipped: Vec::new() });
    }

    #[test]
    fn a_watcher_sees_each_frame_and_can_stop_the_scan() {
        let blank = Frame::new(64, 64, vec![255; 64 * 64]).unwrap();
        let mut source = Frames(vec![blank.clone(), blank, code_frame()]);
        let mut seen = 0;
        let watch = |_: &Frame| {
            seen += 1;
            if seen == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        };
        let nothing = scan_watching(&mut source, |_| true, None, watch).unwrap().unwrap_err();
        assert_eq!(nothing, NothingRead { frames: 1, refused: 0, stopped: true, skipped: Vec::new() });
        assert_eq!(source.0.len(), 1, "the code after the stop is never read");
    }

    #[test]
    fn previews_are_small_jpegs_of_the_frame() {
        let frame = Frame::new(1280, 720, vec![128; 1280 * 720]).unwrap();
        let jpeg = frame.preview_jpeg(480).unwrap();
        let preview = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((preview.width(), preview.height()), (480, 270));
        let small = code_frame();
        let same = image::load_from_memory(&small.preview_jpeg(4096).unwrap()).unwrap();
        assert_eq!((same.width(), same.height()), (small.width(), small.height()), "never scaled up");
    }

    #[test]
    fn replay_reads_a_directory_in_name_order() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        let frame = code_frame();
        let image = image::GrayImage::from_raw(frame.width, frame.height, frame.luma.clone()).unwrap();
        image.save(dir.join("b.png")).unwrap();
        image::GrayImage::from_pixel(32, 32, image::Luma([255])).save(dir.join("a.png")).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a frame").unwrap();
        let mut replay = Replay::from_dir(&dir).unwrap();
        let read = scan(&mut replay, |_| true, None).unwrap().unwrap();
        assert_eq!((read.text.expose(), read.frames), (TEXT, 2));
        assert!(matches!(Replay::from_dir(&dir.join("missing")), Err(CameraError::Io { .. })));
        std::fs::remove_file(dir.join("a.png")).unwrap();
        std::fs::remove_file(dir.join("b.png")).unwrap();
        assert!(matches!(Replay::from_dir(&dir), Err(CameraError::NoFrames(_))));
    }

    #[test]
    fn pgm_frames_are_read_and_a_damaged_frame_is_skipped_and_reported() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        std::fs::write(dir.join("1-damaged.png"), b"\x89PNG\r\n\x1a\n cut short").unwrap();
        std::fs::write(dir.join("2-not-an-image.jpg"), b"plain text").unwrap();
        let frame = code_frame();
        let mut pgm = format!("P5\n{} {}\n255\n", frame.width, frame.height).into_bytes();
        pgm.extend_from_slice(&frame.luma);
        std::fs::write(dir.join("3-code.pgm"), pgm).unwrap();
        let read = scan(&mut Replay::from_dir(dir).unwrap(), |_| true, None).unwrap().unwrap();
        assert_eq!((read.text.expose(), read.frames), (TEXT, 1), "the PGM frame is read");
        assert_eq!(read.skipped.len(), 2, "{:?}", read.skipped);
        assert!(read.skipped[0].contains("1-damaged.png"), "{:?}", read.skipped);
        std::fs::remove_file(dir.join("3-code.pgm")).unwrap();
        let nothing = scan(&mut Replay::from_dir(dir).unwrap(), |_| true, None).unwrap().unwrap_err();
        assert_eq!((nothing.frames, nothing.skipped.len()), (0, 2), "damaged frames end nothing");
    }

    #[test]
    fn opening_a_missing_camera_is_an_error_not_a_panic() {
        assert!(matches!(Camera::open(4242), Err(CameraError::Open { index: 4242, .. })));
    }
}
