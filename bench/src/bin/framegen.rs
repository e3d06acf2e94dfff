//! `tessera-framegen`: writes webcam-like frames of a QR code (a phone held to a camera), as the
//! JPEG files a webcam would send and optionally as a `.y4m` video for Chromium's fake camera.
//! Tests replay them through `tessera scan --frames` and the browser login page.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tessera_bench::frames::{Content, FrameGenerator, Scene, write_y4m};

/// Webcam-like frames of a QR code.
#[derive(Parser)]
#[command(name = "tessera-framegen", version, about)]
struct Args {
    /// An image of the QR code (e.g. from `tessera oneswipe --png`)
    #[arg(long, value_name = "FILE", required_unless_present = "text", conflicts_with = "text")]
    qr: Option<PathBuf>,
    /// Text to render as the QR code instead
    #[arg(long)]
    text: Option<String>,
    /// Directory for the JPEG frames (frame-0000.jpg, ...)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// A .y4m video of the same frames
    #[arg(long, value_name = "FILE")]
    y4m: Option<PathBuf>,
    /// Frames per second of the video
    #[arg(long, default_value_t = 10)]
    fps: u32,
    /// Number of frames
    #[arg(long, default_value_t = 24)]
    count: u32,
    /// Frame size, WIDTHxHEIGHT
    #[arg(long, default_value = "1280x720")]
    size: String,
    /// Seed of the generator (the same seed gives the same frames)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// One frame in this many shows no code (0: every frame shows it)
    #[arg(long, default_value_t = 6)]
    no_code_every: u32,
}

fn main() -> ExitCode {
    tessera_bench::exit("tessera-framegen", run(Args::parse()))
}

fn run(args: Args) -> Result<(), String> {
    let (width, height) = args
        .size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|&(w, h)| (64..=4096).contains(&w) && (64..=4096).contains(&h))
        .ok_or("--size must be WIDTHxHEIGHT, 64 to 4096 pixels each")?;
    if args.out.is_none() && args.y4m.is_none() {
        return Err("give --out DIR, --y4m FILE, or both".into());
    }
    let code = match (&args.qr, &args.text) {
        (Some(path), _) => image::open(path).map_err(|e| format!("{}: {e}", path.display()))?.into_luma8(),
        (None, Some(text)) => tessera_core::qr::render_image(text, 4).map_err(|e| e.to_string())?,
        (None, None) => return Err("give --qr FILE or --text TEXT".into()),
    };
    let scene = Scene { no_code_every: args.no_code_every, ..Scene::webcam(width, height) };
    let mut generator = FrameGenerator::new(scene, code, args.seed);
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut video = Vec::new();
    let mut with_code = 0;
    for index in 0..args.count {
        let (jpeg, content) = generator.next_jpeg();
        with_code += u32::from(content == Content::Code);
        if let Some(dir) = &args.out {
            let path = dir.join(format!("frame-{index:04}.jpg"));
            std::fs::write(&path, &jpeg).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if args.y4m.is_some() {
            let frame = image::load_from_memory(&jpeg).map_err(|e| e.to_string())?.into_luma8();
            video.push(frame);
        }
    }
    if let Some(path) = &args.y4m {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
        );
        write_y4m(&mut file, &video, args.fps).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    eprintln!("{} frames of {width}x{height}, {with_code} showing the code", args.count);
    Ok(())
}
