//! `tessera scan`: reads a QR code from a webcam (or from recorded frames, which is how the capture
//! path is tested without a camera) and prints its text: a One Swipe code for the login side, an
//! enrollment QR for `tessera add -` or `tessera enroll -`.

use std::path::Path;
use std::time::Duration;

use tessera_camera::{Camera, FrameSource, Replay};
use tessera_core::oneswipe::OneSwipe;
use tessera_core::otpauth;

use crate::terminal::{Failure, note, output, warn};

/// How long a camera scan waits for a code unless told otherwise.
const DEFAULT_CAMERA_TIMEOUT: Duration = Duration::from_secs(60);

/// Where frames come from.
pub enum Source<'a> {
    /// Camera number N.
    Camera(u32),
    /// The image files of a directory.
    Frames(&'a Path),
}

/// Which codes end the scan.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Any QR code.
    Any,
    /// One Swipe codes.
    OneSwipe,
    /// `otpauth://` URIs and Tessera enrollment links.
    Enrollment,
}

impl Kind {
    /// Parses the `--kind` value.
    pub fn parse(name: &str) -> Self {
        match name {
            "oneswipe" => Self::OneSwipe,
            "enrollment" => Self::Enrollment,
            _ => Self::Any,
        }
    }

    fn accepts(self, text: &str) -> bool {
        match self {
            Self::Any => true,
            Self::OneSwipe => OneSwipe::parse(text).is_ok(),
            Self::Enrollment => otpauth::adds_to_vault(text),
        }
    }
}

/// Prints the cameras the platform lists.
pub fn list_cameras() -> Result<(), Failure> {
    let cameras = Camera::list();
    if cameras.is_empty() {
        note("no camera found");
    }
    for (index, name) in cameras {
        output(format!("{index}\t{name}"));
    }
    Ok(())
}

/// Scans until a code of `kind` is read; prints its text.
pub fn scan(source: Source<'_>, kind: Kind, timeout: Option<Duration>) -> Result<(), Failure> {
    let (mut frames, timeout): (Box<dyn FrameSource>, _) = match source {
        Source::Camera(index) => {
            note(format!("Hold the QR code to camera {index}…"));
            (Box::new(Camera::open(index)?), Some(timeout.unwrap_or(DEFAULT_CAMERA_TIMEOUT)))
        }
        Source::Frames(dir) => (Box::new(Replay::from_dir(dir)?), timeout),
    };
    let scanned = tessera_camera::scan(frames.as_mut(), |text| kind.accepts(text), timeout)?;
    let skipped = match &scanned {
        Ok(read) => &read.skipped,
        Err(nothing) => &nothing.skipped,
    };
    for reason in skipped {
        warn(format!("skipped a frame that could not be decoded: {reason}"));
    }
    match scanned {
        Ok(read) => {
            output(read.text.expose());
            note(format!("Read in frame {} after {} ms", read.frames, read.elapsed.as_millis()));
            Ok(())
        }
        Err(nothing) => Err(Failure::Usage(match nothing.refused {
            0 => format!("no QR code found in {} frames", nothing.frames),
            refused => format!(
                "no code of the kind asked for in {} frames ({refused} other codes seen)",
                nothing.frames
            ),
        })),
    }
}
