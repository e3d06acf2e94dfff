//! Adding a token with the webcam: frames from nokhwa go to the core's QR decoder until one holds
//! a token or an enrollment link, and a small preview of each goes to the window so the user can
//! aim. Machines without a camera (tests, demos) replay image files instead: the directory named
//! by [`REPLAY_ENV`] stands in for camera 0.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use data_encoding::BASE64;
use serde::Serialize;
use tessera_camera::{Camera, CameraError, FrameSource, Replay};
use tessera_core::error::ErrorCode;
use tessera_core::otpauth;
use tessera_core::secret::SecretString;

use crate::error::{CommandError, CommandResult};

/// Environment variable naming a directory of frames (image files, in name order) to use instead
/// of a camera.
pub const REPLAY_ENV: &str = "TESSERA_CAMERA_REPLAY";
/// Width of the preview frames sent to the window.
const PREVIEW_WIDTH: u32 = 480;
/// At most this many frames a second are looked at (a webcam gives 30; decoding each takes a
/// good part of a frame's time on a laptop, and the preview needs no more).
const FRAME_INTERVAL: Duration = Duration::from_millis(66);
/// A scan gives up after this long without a code.
const SCAN_TIMEOUT: Duration = Duration::from_secs(120);

/// A camera the user can choose.
#[derive(Debug, Serialize)]
pub struct CameraChoice {
    /// Its number.
    index: u32,
    /// Its name.
    name: String,
}

/// Whether a scan runs, and the user's wish to stop it.
#[derive(Default)]
pub struct CameraControl {
    running: AtomicBool,
    stop: AtomicBool,
}

impl CameraControl {
    /// Asks the running scan to stop after the current frame, or the next one to stop at once (the
    /// page may stop a scan whose command has not reached this side yet).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Marks a scan as running until dropped, even if the scan panics.
struct Running<'a>(&'a CameraControl);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.stop.store(false, Ordering::SeqCst);
        self.0.running.store(false, Ordering::SeqCst);
    }
}

fn replay_dir() -> Option<PathBuf> {
    std::env::var_os(REPLAY_ENV).filter(|dir| !dir.is_empty()).map(PathBuf::from)
}

/// The cameras to choose from.
pub fn choices() -> Vec<CameraChoice> {
    if let Some(dir) = replay_dir() {
        return vec![CameraChoice { index: 0, name: format!("Recorded frames ({})", dir.display()) }];
    }
    Camera::list().into_iter().map(|(index, name)| CameraChoice { index, name }).collect()
}

fn open(index: u32) -> Result<Box<dyn FrameSource>, CameraError> {
    match replay_dir() {
        Some(dir) => Ok(Box::new(Replay::from_dir(&dir)?)),
        None => Ok(Box::new(Camera::open(index)?)),
    }
}

/// Scans camera `index` until a frame holds a token or enrollment QR code (its text is returned),
/// the user stops (`None`), or nothing turns up in time (an error). `preview` gets each frame as
/// a JPEG `data:` URL. Blocking: run it off the async runtime.
pub fn scan(
    index: u32,
    control: &CameraControl,
    mut preview: impl FnMut(String),
) -> CommandResult<Option<SecretString>> {
    if control.running.swap(true, Ordering::SeqCst) {
        return Err(CommandError::new(ErrorCode::Conflict, "the camera is already scanning"));
    }
    let _running = Running(control);
    let result = open(index).and_then(|mut source| {
        let mut last = Instant::now() - FRAME_INTERVAL;
        let watch = |frame: &tessera_camera::Frame| {
            std::thread::sleep(FRAME_INTERVAL.saturating_sub(last.elapsed()));
            last = Instant::now();
            if control.stop.load(Ordering::SeqCst) {
                return ControlFlow::Break(());
            }
            if let Ok(jpeg) = frame.preview_jpeg(PREVIEW_WIDTH) {
                preview(format!("data:image/jpeg;base64,{}", BASE64.encode(&jpeg)));
            }
            ControlFlow::Continue(())
        };
        tessera_camera::scan_watching(source.as_mut(), otpauth::adds_to_vault, Some(SCAN_TIMEOUT), watch)
    });
    match result? {
        Ok(read) => Ok(Some(read.text)),
        Err(nothing) if nothing.stopped => Ok(None),
        Err(nothing) => Err(CommandError::new(
            ErrorCode::NotFound,
            match nothing.refused {
                0 => format!("no QR code found in {} frames", nothing.frames),
                _ => "the camera saw QR codes, but none that adds a token or a push device".to_owned(),
            },
        )),
    }
}
