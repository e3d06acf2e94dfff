//! Webcam-like frames of a phone showing a QR code in a room, for measuring QR decoders and for
//! feeding the scanning path (replayed frames, a fake browser camera) in tests.
//!
//! Each frame: a cluttered room background; a phone (dark bezel, bright screen) whose screen shows
//! the code with its quiet zone, the code's side 25–40 % of the frame height; the phone rotated
//! 5–15° either way with perspective jitter of its corners; screen glare; defocus blur; exposure
//! and contrast changes; sensor noise; and a JPEG round trip, as MJPEG webcams deliver. Some frames
//! show the phone with an app screen and no code, to count false positives. Everything is drawn
//! from a seeded generator, so a seed gives the same frames on every machine.

use image::imageops::FilterType;
use image::{GrayImage, Luma, LumaA};
use imageproc::geometric_transformations::{Interpolation, Projection, warp_into};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What a generated frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// The phone shows the code.
    Code,
    /// The phone shows an app screen without a code.
    NoCode,
}

/// The knobs of the generator, with the ranges the figures in docs/benchmarks.md use.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// The code's side as a fraction of the frame height: low and high ends.
    pub code_side: (f32, f32),
    /// Rotation in degrees (either way).
    pub rotation_deg: (f32, f32),
    /// Perspective jitter of each phone corner, as a fraction of the phone's width.
    pub perspective: f32,
    /// Gaussian blur sigma in pixels at 720 lines (scaled with the frame height).
    pub blur_sigma: (f32, f32),
    /// Sensor noise standard deviation, in grey levels.
    pub noise_sigma: (f32, f32),
    /// JPEG quality.
    pub jpeg_quality: (u8, u8),
    /// One frame in this many shows no code.
    pub no_code_every: u32,
    /// Where the phone goes: wholly in the frame, or held close, its code anywhere it is whole.
    pub placement: Placement,
}

/// Where the phone is placed in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The whole phone is in the frame.
    WholePhone,
    /// The phone is held close: its body may leave the frame, the code is wholly in it, often near
    /// an edge.
    WholeCode,
}

impl Scene {
    /// The benchmark's scene at `width`×`height`.
    pub fn webcam(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            code_side: (0.25, 0.40),
            rotation_deg: (5.0, 15.0),
            perspective: 0.06,
            blur_sigma: (0.5, 1.4),
            noise_sigma: (2.0, 7.0),
            jpeg_quality: (60, 85),
            no_code_every: 6,
            placement: Placement::WholePhone,
        }
    }

    /// A code held close to a 1280×720 camera: it fills 25–40 % of the frame (12–15 pixels per
    /// module for a version-6 code), anywhere it is whole, blurred with σ 0.9–1.7 px.
    pub fn large_code() -> Self {
        let area = |fraction: f32| (fraction * 1280.0 * 720.0).sqrt() / 720.0;
        Self {
            code_side: (area(0.25), area(0.40)),
            blur_sigma: (0.9, 1.7),
            placement: Placement::WholeCode,
            ..Self::webcam(1280, 720)
        }
    }

    /// A cheap VGA webcam at arm's length: 2.5–2.9 pixels per module of a version-6 code (49
    /// modules with the quiet zone), blurred with σ 0.93–1.2 px.
    pub fn blurred_vga() -> Self {
        let at_720 = 720.0 / 480.0;
        Self {
            code_side: (49.0 * 2.5 / 480.0, 49.0 * 2.9 / 480.0),
            blur_sigma: (0.93 * at_720, 1.2 * at_720),
            ..Self::webcam(640, 480)
        }
    }
}

/// A seeded stream of frames of one code.
pub struct FrameGenerator {
    scene: Scene,
    code: GrayImage,
    rng: StdRng,
    index: u32,
}

impl FrameGenerator {
    /// Frames of `code` (a rendered QR code, quiet zone included; any scale).
    pub fn new(scene: Scene, code: GrayImage, seed: u64) -> Self {
        Self { scene, code, rng: StdRng::seed_from_u64(seed), index: 0 }
    }

    /// The next frame as the JPEG bytes a webcam would send, and what it holds.
    pub fn next_jpeg(&mut self) -> (Vec<u8>, Content) {
        let every = self.scene.no_code_every;
        let content =
            if every > 0 && self.index % every == every - 1 { Content::NoCode } else { Content::Code };
        self.index += 1;
        (self.render_jpeg(content), content)
    }

    fn render_jpeg(&mut self, content: Content) -> Vec<u8> {
        let scene = self.scene.clone();
        let rng = &mut self.rng;
        let mut frame = room(&scene, rng);
        let (screen, side) = match content {
            Content::Code => screen_with_code(&self.code, &scene, rng),
            Content::NoCode => app_screen(&scene, rng),
        };
        place_phone(&mut frame, &phone(&screen, rng), side, &scene, rng);
        glare(&mut frame, rng);
        let scale = scene.height as f32 / 720.0;
        let sigma = rng.random_range(scene.blur_sigma.0..=scene.blur_sigma.1) * scale;
        let mut frame = imageproc::filter::gaussian_blur_f32(&frame, sigma.max(0.1));
        expose_and_add_noise(&mut frame, &scene, rng);
        let quality = rng.random_range(scene.jpeg_quality.0..=scene.jpeg_quality.1);
        let mut jpeg = Vec::new();
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality);
        let _ = frame.write_with_encoder(encoder);
        jpeg
    }
}

fn room(scene: &Scene, rng: &mut StdRng) -> GrayImage {
    let (w, h) = (scene.width, scene.height);
    let (light_x, light_y) = (rng.random_range(0.0..w as f32), rng.random_range(0.0..h as f32 * 0.5));
    let base: f32 = rng.random_range(90.0..170.0);
    let mut frame = GrayImage::from_fn(w, h, |x, y| {
        let distance = ((x as f32 - light_x).hypot(y as f32 - light_y)) / w as f32;
        Luma([(base + 60.0 * (1.0 - distance)).clamp(0.0, 255.0) as u8])
    });
    for _ in 0..rng.random_range(6..14) {
        let (rw, rh) = (rng.random_range(w / 20..w / 3), rng.random_range(h / 20..h / 2));
        let (x0, y0) = (rng.random_range(0..w), rng.random_range(0..h));
        let level: u8 = rng.random_range(20..235);
        let stripes = rng.random_bool(0.3).then(|| rng.random_range(3..12));
        for y in y0..(y0 + rh).min(h) {
            for x in x0..(x0 + rw).min(w) {
                let stripe_dark = stripes.is_some_and(|period| (x / period) % 2 == 0);
                let value = if stripe_dark { level / 2 } else { level };
                frame.put_pixel(x, y, Luma([value]));
            }
        }
    }
    frame
}

/// The screen: near-white, the code centred with a margin; and the code's side.
fn screen_with_code(code: &GrayImage, scene: &Scene, rng: &mut StdRng) -> (GrayImage, u32) {
    let side = (rng.random_range(scene.code_side.0..=scene.code_side.1) * scene.height as f32).round() as u32;
    let code = image::imageops::resize(code, side.max(16), side.max(16), FilterType::Nearest);
    let white: u8 = rng.random_range(215..=250);
    let (screen_w, screen_h) = (side + side / 8, side * 2);
    let mut screen = GrayImage::from_pixel(screen_w, screen_h, Luma([white]));
    let top = i64::from((screen_h - side) / 2);
    let left = i64::from((screen_w - side) / 2);
    let mut shaded = code;
    for pixel in shaded.pixels_mut() {
        pixel.0[0] = if pixel.0[0] < 128 { rng.random_range(10..40) } else { white };
    }
    image::imageops::overlay(&mut screen, &shaded, left, top);
    (screen, side)
}

/// An app screen without a code: text-like rows and buttons; and the side a code would have.
fn app_screen(scene: &Scene, rng: &mut StdRng) -> (GrayImage, u32) {
    let side = (rng.random_range(scene.code_side.0..=scene.code_side.1) * scene.height as f32).round() as u32;
    let (w, h) = (side + side / 8, side * 2);
    let mut screen = GrayImage::from_pixel(w, h, Luma([rng.random_range(215..=250)]));
    let row = (h / 24).max(2);
    for line in 1..22 {
        let y0 = line * row;
        let mut x = w / 12;
        while x < w - w / 12 {
            let word = rng.random_range(row..row * 4);
            for y in y0..(y0 + row * 2 / 3).min(h) {
                for dx in 0..word.min(w - w / 12 - x) {
                    screen.put_pixel(x + dx, y, Luma([rng.random_range(20..80)]));
                }
            }
            x += word + row;
        }
    }
    (screen, side)
}

/// The phone: a dark bezel around the screen.
fn phone(screen: &GrayImage, rng: &mut StdRng) -> GrayImage {
    let bezel = (screen.width() / 14).max(3);
    let dark: u8 = rng.random_range(15..45);
    let mut body =
        GrayImage::from_pixel(screen.width() + 2 * bezel, screen.height() + 3 * bezel, Luma([dark]));
    image::imageops::overlay(&mut body, screen, i64::from(bezel), i64::from(bezel * 3 / 2));
    body
}

/// Rotates, tilts and places the phone (its screen, and so its code of side `side`, at its
/// centre) where the scene's placement wants it; the code and a module of light around it are
/// wholly in the frame (a placement whose tilt pushes a corner out is drawn again, up to 100 times).
fn place_phone(frame: &mut GrayImage, phone: &GrayImage, side: u32, scene: &Scene, rng: &mut StdRng) {
    let (pw, ph) = (phone.width() as f32, phone.height() as f32);
    // The symbol (41 of the 49 modules across a version-6 code with its quiet zone) and one
    // module of light around it.
    let half = side as f32 / 2.0 * 43.0 / 49.0;
    let code_corners = [(-half, -half), (half, -half), (half, half), (-half, half)]
        .map(|(x, y)| (pw / 2.0 + x, ph / 2.0 + y));
    let inside =
        |(x, y): (f32, f32)| x >= 0.0 && y >= 0.0 && x < scene.width as f32 && y < scene.height as f32;
    let mut projection = draw_placement(phone, side, scene, rng);
    for _ in 0..100 {
        match projection {
            Some(p) if code_corners.iter().all(|&corner| inside(p * corner)) => break,
            _ => projection = draw_placement(phone, side, scene, rng),
        }
    }
    let Some(projection) = projection else { return };
    let source: image::ImageBuffer<LumaA<u8>, Vec<u8>> =
        image::ImageBuffer::from_fn(phone.width(), phone.height(), |x, y| {
            LumaA([phone.get_pixel(x, y).0[0], 255])
        });
    let mut layer = image::ImageBuffer::from_pixel(scene.width, scene.height, LumaA([0u8, 0]));
    warp_into(&source, &projection, Interpolation::Bilinear, LumaA([0, 0]), &mut layer);
    for (pixel, over) in frame.pixels_mut().zip(layer.pixels()) {
        let [value, alpha] = over.0;
        let alpha = u32::from(alpha);
        pixel.0[0] = ((u32::from(pixel.0[0]) * (255 - alpha) + u32::from(value) * alpha) / 255) as u8;
    }
}

/// A random rotation, tilt and position of the phone in the frame, as a projection from the
/// phone's pixels to the frame's.
fn draw_placement(phone: &GrayImage, side: u32, scene: &Scene, rng: &mut StdRng) -> Option<Projection> {
    let (pw, ph) = (phone.width() as f32, phone.height() as f32);
    let angle = rng.random_range(scene.rotation_deg.0..=scene.rotation_deg.1).to_radians()
        * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let (sin, cos) = angle.sin_cos();
    let jitter = scene.perspective * pw;
    let (margin_x, margin_y) = match scene.placement {
        Placement::WholePhone => (pw * 0.45, ph * 0.36),
        Placement::WholeCode => {
            // The rotated code's half extent, its corners' jitter, and a little quiet zone.
            let half = side as f32 / 2.0 * (cos.abs() + sin.abs()) + jitter + 2.0;
            (half, half)
        }
    };
    let range = |margin: f32, size: u32| margin..(size as f32 - margin).max(margin + 1.0);
    let centre_x = rng.random_range(range(margin_x, scene.width));
    let centre_y = rng.random_range(range(margin_y, scene.height));
    let corners = [(0.0, 0.0), (pw, 0.0), (pw, ph), (0.0, ph)];
    let to = corners.map(|(x, y)| {
        let (dx, dy) = (x - pw / 2.0, y - ph / 2.0);
        (
            centre_x + dx * cos - dy * sin + rng.random_range(-jitter..=jitter),
            centre_y + dx * sin + dy * cos + rng.random_range(-jitter..=jitter),
        )
    });
    Projection::from_control_points(corners, to)
}

/// A soft bright reflection somewhere on the frame (often on the screen).
fn glare(frame: &mut GrayImage, rng: &mut StdRng) {
    if rng.random_bool(0.4) {
        return;
    }
    let (w, h) = (frame.width() as f32, frame.height() as f32);
    let (cx, cy) = (rng.random_range(w * 0.2..w * 0.8), rng.random_range(h * 0.2..h * 0.8));
    let (rx, ry) = (rng.random_range(w * 0.04..w * 0.15), rng.random_range(h * 0.04..h * 0.2));
    let strength = rng.random_range(40.0..110.0_f32);
    for (x, y, pixel) in frame.enumerate_pixels_mut() {
        let d = ((x as f32 - cx) / rx).powi(2) + ((y as f32 - cy) / ry).powi(2);
        if d < 4.0 {
            let lift = strength * (-d).exp();
            pixel.0[0] = (f32::from(pixel.0[0]) + lift).min(255.0) as u8;
        }
    }
}

fn expose_and_add_noise(frame: &mut GrayImage, scene: &Scene, rng: &mut StdRng) {
    let contrast = rng.random_range(0.7..1.0_f32);
    let brightness = rng.random_range(-25.0..25.0_f32);
    let sigma = rng.random_range(scene.noise_sigma.0..=scene.noise_sigma.1);
    for pixel in frame.pixels_mut() {
        // Sum of uniforms: a cheap, bounded approximation of Gaussian sensor noise.
        let noise = (rng.random::<f32>() + rng.random::<f32>() + rng.random::<f32>() - 1.5) * 2.0 * sigma;
        let value = (f32::from(pixel.0[0]) - 128.0) * contrast + 128.0 + brightness + noise;
        pixel.0[0] = value.clamp(0.0, 255.0) as u8;
    }
}

/// Writes frames as a YUV4MPEG2 (`.y4m`) video, 4:2:0 with neutral chroma: what Chromium's fake
/// camera (`--use-file-for-fake-video-capture`) plays.
pub fn write_y4m(out: &mut impl std::io::Write, frames: &[GrayImage], fps: u32) -> std::io::Result<()> {
    let Some(first) = frames.first() else { return Ok(()) };
    let (w, h) = (first.width(), first.height());
    writeln!(out, "YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg")?;
    let chroma = vec![128u8; (w.div_ceil(2) * h.div_ceil(2)) as usize];
    for frame in frames {
        let frame = if frame.dimensions() == (w, h) {
            frame.clone()
        } else {
            image::imageops::resize(frame, w, h, FilterType::Triangle)
        };
        out.write_all(b"FRAME\n")?;
        out.write_all(frame.as_raw())?;
        out.write_all(&chroma)?;
        out.write_all(&chroma)?;
    }
    Ok(())
}
