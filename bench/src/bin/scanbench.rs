//! `tessera-scanbench`: how well and how fast QR decoders, and each look of the shipped one, read
//! One Swipe codes from webcam-like frames (see `tessera_bench::frames`) in four regimes (the
//! webcam scene at 640×480 and 1280×720, a large code held close to a 720p camera, a blurred VGA
//! camera): success rate on frames showing the code, false reads on frames without it, and decode
//! time per frame on one core. Then the desktop reader's whole path on 720p MJPEG frames (JPEG
//! decode to luma, then the shipped decoder), in frames per second.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use image::GrayImage;
use tessera_bench::frames::{Content, FrameGenerator, Scene};
use tessera_camera::{Frame, FrameFormat};
use tessera_core::oneswipe::{OneSwipe, Request};
use tessera_core::otp::OtpMethod;
use tessera_core::push::KeyPair;
use tessera_core::qr::{self, LumaFrame};
use tessera_core::secret::{SecretBytes, SecretString};

/// QR decoders on webcam-like frames.
#[derive(Parser)]
#[command(name = "tessera-scanbench", version, about)]
struct Args {
    /// Frames per size
    #[arg(long, default_value_t = 300)]
    frames: u32,
    /// Seed of the frame generator
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

type Decoder = fn(LumaFrame<'_>) -> Vec<SecretString>;

/// The shipped decoder, each of its looks alone (their order follows these figures; the look at
/// 1× is the second at 600 lines and more and the first below), two looks not shipped (1× without
/// zooming in, to show what zooming adds; the whole frame enlarged, which reads fewer blurred VGA
/// frames than the zoomed looks at three times their cost), the decoder before issue 20, and the
/// two libraries alone.
const DECODERS: [(&str, Decoder); 10] = [
    ("shipped: the looks below in order (qr::decode_luma)", qr::decode_luma),
    ("look at ⅓× (first at 600 lines and more)", |f| look(qr::LARGE_FRAME_LOOKS[0], f)),
    ("look at 1×, zoomed (second at 600 lines and more, first below)", |f| {
        look(qr::SMALL_FRAME_LOOKS[0], f)
    }),
    ("look at 1×, sharpened, zoomed (second below 600 lines)", |f| look(qr::SMALL_FRAME_LOOKS[1], f)),
    ("look at 1×, not zoomed (not shipped)", |f| look(qr::Look::DIRECT, f)),
    ("look at 2×, sharpened (not shipped)", |f| look(qr::Look::scaled(2, 1).sharpened(2, 56), f)),
    ("before issue 20: rxing, then rxing at 2× under 600 lines", before_issue_20),
    ("rxing 0.9 alone", qr::decode_with_rxing),
    ("rqrr 0.11", qr::decode_with_rqrr),
    ("rqrr 0.11 at ⅓× for 600 lines and more, else 1×", rqrr_third),
];

fn look(look: qr::Look, frame: LumaFrame<'_>) -> Vec<SecretString> {
    look.decode(frame).into_iter().collect()
}

/// The decoder as shipped before issue 20: rxing trying hard, and for frames under 600 lines a
/// quick rxing look at a bilinear 2× enlargement.
fn before_issue_20(frame: LumaFrame<'_>) -> Vec<SecretString> {
    let found = qr::decode_with_rxing(frame);
    if !found.is_empty() || frame.height >= qr::LARGE_FRAME_LINES {
        return found;
    }
    let Some((width, height, pixels)) = resized(frame, 2, 1) else { return Vec::new() };
    let mut hints = rxing::DecodeHints { TryHarder: Some(false), ..rxing::DecodeHints::default() };
    rxing::helpers::detect_in_luma_slice_with_hints(
        &pixels,
        width,
        height,
        Some(rxing::BarcodeFormat::QR_CODE),
        &mut hints,
    )
    .ok()
    .map(|result| SecretString::new(result.getText().to_owned()))
    .into_iter()
    .collect()
}

/// rqrr on the frame, at a third of its size when it has 600 lines or more.
fn rqrr_third(frame: LumaFrame<'_>) -> Vec<SecretString> {
    if frame.height < qr::LARGE_FRAME_LINES {
        return qr::decode_with_rqrr(frame);
    }
    let Some((width, height, pixels)) = resized(frame, 1, 3) else { return Vec::new() };
    qr::decode_with_rqrr(LumaFrame { width, height, pixels: &pixels })
}

/// The frame scaled by `numerator / denominator`, bilinear.
fn resized(frame: LumaFrame<'_>, numerator: u32, denominator: u32) -> Option<(u32, u32, Vec<u8>)> {
    use fast_image_resize as resize;
    let (width, height) = (frame.width * numerator / denominator, frame.height * numerator / denominator);
    let source =
        resize::images::ImageRef::new(frame.width, frame.height, frame.pixels, resize::PixelType::U8).ok()?;
    let mut target = resize::images::Image::new(width, height, resize::PixelType::U8);
    let options =
        resize::ResizeOptions::new().resize_alg(resize::ResizeAlg::Convolution(resize::FilterType::Bilinear));
    resize::Resizer::new().resize(&source, &mut target, &options).ok()?;
    Some((width, height, target.into_vec()))
}

struct Tally {
    read: u32,
    code_frames: u32,
    false_reads: u32,
    empty_frames: u32,
    times: Vec<Duration>,
}

fn main() -> ExitCode {
    tessera_bench::exit("tessera-scanbench", run(Args::parse()))
}

fn run(args: Args) -> Result<(), String> {
    let text = one_swipe_text(args.seed)?;
    let code = qr::render_image(text.expose(), 4).map_err(|e| e.to_string())?;
    println!(
        "One Swipe code: {} characters, QR version 6-M; {} frames per size, seed {}",
        text.expose().len(),
        args.frames,
        args.seed
    );
    println!();
    println!(
        "| decoder | frames | read (code frames) | false reads (no-code frames) | median ms/frame | p95 ms/frame |"
    );
    println!("|---|---|---|---|---|---|");
    let mut jpegs_720 = Vec::new();
    let regimes = [
        ("webcam", Scene::webcam(640, 480)),
        ("webcam", Scene::webcam(1280, 720)),
        ("large code", Scene::large_code()),
        ("blurred VGA", Scene::blurred_vga()),
    ];
    for (regime, scene) in regimes {
        let (width, height) = (scene.width, scene.height);
        let mut generator = FrameGenerator::new(scene, code.clone(), args.seed);
        let frames: Vec<(Vec<u8>, Content)> = (0..args.frames).map(|_| generator.next_jpeg()).collect();
        let grey: Vec<(GrayImage, Content)> = frames
            .iter()
            .map(|(jpeg, content)| {
                Ok((image::load_from_memory(jpeg).map_err(|e| e.to_string())?.into_luma8(), *content))
            })
            .collect::<Result<_, String>>()?;
        for (name, decoder) in DECODERS {
            let tally = measure(decoder, &grey, text.expose());
            println!(
                "| {name} | {regime} {width}×{height} | {}/{} = {:.1} % | {}/{} | {:.2} | {:.2} |",
                tally.read,
                tally.code_frames,
                100.0 * f64::from(tally.read) / f64::from(tally.code_frames.max(1)),
                tally.false_reads,
                tally.empty_frames,
                millis(percentile(&tally.times, 0.5)),
                millis(percentile(&tally.times, 0.95)),
            );
        }
        if regime == "webcam" && height == 720 {
            jpegs_720 = frames;
        }
    }
    let (fps, read) = reader_fps(&jpegs_720, text.expose())?;
    println!();
    println!(
        "Desktop reader, 1280×720 MJPEG frames (JPEG → luma → qr::decode_luma), one core: {fps:.0} frames/s ({read} reads in {} frames)",
        jpegs_720.len()
    );
    Ok(())
}

/// A real One Swipe code, from keys derived from `seed` (the nonce alone is random).
fn one_swipe_text(seed: u64) -> Result<SecretString, String> {
    let key = |salt: u8| {
        let mut bytes = [salt; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        KeyPair::from_seed(&SecretBytes::from_slice(&bytes)).map_err(|e| e.to_string())
    };
    let (device, server) = (key(1)?, key(2)?);
    let now = 1_800_000_000 + seed;
    let otp = OtpMethod::default_totp().code_at(&SecretBytes::from_slice(&seed.to_be_bytes()), now);
    let request = Request {
        serial: "PUSH-AAAAAAAA",
        server_key: &server.public(),
        otp: &otp,
        issued_at: now,
        lifetime_secs: 30,
    };
    Ok(OneSwipe::sign(&request, &device).map_err(|e| e.to_string())?.to_text())
}

fn measure(decoder: Decoder, frames: &[(GrayImage, Content)], expected: &str) -> Tally {
    let mut tally = Tally { read: 0, code_frames: 0, false_reads: 0, empty_frames: 0, times: Vec::new() };
    for (frame, content) in frames {
        let luma = LumaFrame { width: frame.width(), height: frame.height(), pixels: frame.as_raw() };
        let started = Instant::now();
        let texts = decoder(luma);
        tally.times.push(started.elapsed());
        let right = texts.iter().any(|t| t.expose() == expected);
        let wrong = texts.iter().any(|t| t.expose() != expected);
        match content {
            Content::Code => {
                tally.code_frames += 1;
                tally.read += u32::from(right);
                tally.false_reads += u32::from(wrong);
            }
            Content::NoCode => {
                tally.empty_frames += 1;
                tally.false_reads += u32::from(!texts.is_empty());
            }
        }
    }
    tally
}

fn reader_fps(jpegs: &[(Vec<u8>, Content)], expected: &str) -> Result<(f64, u32), String> {
    let started = Instant::now();
    let mut read = 0;
    for (jpeg, _) in jpegs {
        let frame = Frame::from_camera(FrameFormat::MJPEG, 1280, 720, jpeg).map_err(|e| e.to_string())?;
        read += u32::from(qr::decode_luma(frame.as_luma()).iter().any(|t| t.expose() == expected));
    }
    Ok((jpegs.len() as f64 / started.elapsed().as_secs_f64(), read))
}

fn percentile(times: &[Duration], quantile: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
