//! The looks the camera-frame decoder takes at a frame: each scales it (larger for small codes,
//! smaller for codes held close), may sharpen it first (blurred low-resolution cameras), turns it
//! into black and white, and searches it with `rxing`'s port of zxing-cpp's QR detector. A look
//! may zoom: where it finds finder patterns but reads no code, it enlarges and sharpens only the
//! part of the frame around them and searches that, at a fraction of the cost of enlarging the
//! whole frame.
//!
//! Two pieces are written here rather than taken from a library, for speed measured in
//! `tessera-scanbench` (docs/cli.md): the binarizer is `rxing`'s `HybridBinarizer` algorithm
//! (8×8 blocks, each thresholded at the mean of the 5×5 blocks around it) writing whole words
//! instead of one bit at a time (0.9 ms instead of 4.1 ms on a 720p frame, where the library's
//! spent 60 % of the decode time); and the unsharp mask is a box blur by running sums, where the
//! `image` crate's Gaussian `unsharpen` took 15 ms and more on a VGA frame.

// Pixel loops index rows and blocks whose bounds `Look::decode` checks before it starts, and
// everything runs behind `catch_unwind`: an indexing slip would be "no code", not a crash.
#![allow(clippy::indexing_slicing)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use rxing::Point;
use rxing::common::cpp_essentials::ConcentricPattern;
use rxing::common::{BitArray, BitMatrix, DetectorRXingResult};
use rxing::qrcode::cpp_port::decoder::Decode;
use rxing::qrcode::cpp_port::detector::{
    FindFinderPatterns, FinderPatternSet, FinderPatternSets, FinderPatterns, GenerateFinderPatternSets,
    SampleQR,
};

use super::LumaFrame;
use crate::secret::SecretString;

/// One look at a frame: optionally sharpened at the frame's own resolution, then scaled by
/// `numerator / denominator`, binarized, and searched for a QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// Scale numerator.
    pub numerator: u32,
    /// Scale denominator.
    pub denominator: u32,
    /// The unsharp mask applied before scaling, if any.
    pub sharpen: Option<Sharpen>,
    /// Whether the look zooms in where it finds finder patterns but reads no code (see
    /// [`Look::zoomed`]).
    pub zoom: bool,
}

/// An unsharp mask: each pixel moves away from the mean of the square around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharpen {
    /// Half the side of the square, in pixels: the square is `2 * radius + 1` pixels wide.
    pub radius: u8,
    /// How far the pixel moves, in sixteenths of its difference from the mean.
    pub amount_sixteenths: u8,
}

impl Look {
    /// The frame as it is.
    pub const DIRECT: Self = Self { numerator: 1, denominator: 1, sharpen: None, zoom: false };

    /// The frame scaled by `numerator / denominator`, not sharpened.
    pub const fn scaled(numerator: u32, denominator: u32) -> Self {
        Self { numerator, denominator, sharpen: None, zoom: false }
    }

    /// This look, then, where it finds finder patterns but reads no code, a second search of the
    /// frame around them: around each of the first two sets of three the detector ranks (or,
    /// with fewer than three patterns, around each of the first two patterns), the frame as it
    /// came is cropped, sharpened and enlarged twice (Catmull-Rom). A blurred code at 2.5–3
    /// pixels per module whose modules the look samples wrong reads there.
    pub const fn zoomed(self) -> Self {
        Self { zoom: true, ..self }
    }

    /// This look with an unsharp mask of `radius` and `amount_sixteenths` applied first.
    pub const fn sharpened(self, radius: u8, amount_sixteenths: u8) -> Self {
        Self { sharpen: Some(Sharpen { radius, amount_sixteenths }), ..self }
    }

    /// The text of the QR code this look finds in `frame`, if any.
    pub fn decode(self, frame: LumaFrame<'_>) -> Option<SecretString> {
        let frame = LumaFrame::new(frame.width, frame.height, frame.pixels).ok()?;
        if self.denominator == 0 {
            return None;
        }
        catch_unwind(AssertUnwindSafe(|| self.prepare_and_search(frame))).ok().flatten()
    }

    fn prepare_and_search(self, original: LumaFrame<'_>) -> Option<SecretString> {
        let sharpened;
        let frame = match self.sharpen {
            Some(sharpen) => {
                sharpened = unsharp_mask(original, sharpen);
                LumaFrame { pixels: &sharpened, ..original }
            }
            None => original,
        };
        let scaled;
        let frame = if self.numerator == self.denominator {
            frame
        } else {
            let (width, height, pixels) = resize(frame, self.numerator, self.denominator)?;
            scaled = pixels;
            LumaFrame { width, height, pixels: &scaled }
        };
        let unread = match search(frame)? {
            Found::Code(text) => return Some(text),
            Found::Unread(unread) if self.zoom => unread,
            Found::Unread(_) => return None,
        };
        let to_original = self.denominator as f32 / self.numerator as f32;
        unread.areas().into_iter().find_map(|area| {
            zoom_into(original, area.scaled(to_original).within(original.width, original.height)?)
        })
    }
}

/// The most regions a zoomed look searches again.
const MAX_ZOOMS: usize = 2;

/// The unsharp masks a zoomed-in region is searched with, in order; the next is tried only
/// where the one before found a set of finder patterns but read no code.
const ZOOM_SHARPENINGS: [Sharpen; 2] =
    [Sharpen { radius: 2, amount_sixteenths: 96 }, Sharpen { radius: 2, amount_sixteenths: 56 }];

/// How far around a lone finder pattern a code may reach, in its modules: a version-8 code (49
/// modules) with its quiet zone, whichever corner the pattern is.
const LONE_PATTERN_REACH_MODULES: f32 = 50.0;

/// The code in `region` of `frame`, cropped, sharpened and enlarged twice.
fn zoom_into(frame: LumaFrame<'_>, region: Region) -> Option<SecretString> {
    let mut crop = Vec::with_capacity(region.width as usize * region.height as usize);
    for row in
        frame.pixels.chunks_exact(frame.width as usize).skip(region.top as usize).take(region.height as usize)
    {
        crop.extend_from_slice(&row[region.left as usize..(region.left + region.width) as usize]);
    }
    let crop = LumaFrame { width: region.width, height: region.height, pixels: &crop };
    for sharpen in ZOOM_SHARPENINGS {
        let sharpened = unsharp_mask(crop, sharpen);
        let (width, height, pixels) = resize(LumaFrame { pixels: &sharpened, ..crop }, 2, 1)?;
        match search(LumaFrame { width, height, pixels: &pixels })? {
            Found::Code(text) => return Some(text),
            Found::Unread(unread) if unread.sets.is_empty() => return None,
            Found::Unread(_) => {}
        }
    }
    None
}

/// What a search found: a code, or the finder patterns it could not read.
enum Found {
    Code(SecretString),
    Unread(Unread),
}

/// Finder patterns a search found and could not read: the sets of three the detector made of
/// them, most plausible first, and all of them, largest first.
struct Unread {
    sets: FinderPatternSets,
    patterns: FinderPatterns,
}

impl Unread {
    /// Where a code may be, the first [`MAX_ZOOMS`] places: around each set of three, or, if
    /// there are none, around each pattern.
    fn areas(&self) -> Vec<Area> {
        if self.sets.is_empty() {
            self.patterns.iter().take(MAX_ZOOMS).map(Area::around_pattern).collect()
        } else {
            self.sets.iter().take(MAX_ZOOMS).map(Area::around_set).collect()
        }
    }
}

/// A rectangle of a frame, in fractional pixels (finder patterns are located to a fraction of one).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Area {
    left: f32,
    top: f32,
    right: f32,
    bottom: f32,
}

impl Area {
    /// The code three finder patterns make, with a margin of a pattern's width (its quiet zone
    /// and then some, for perspective).
    fn around_set(set: &FinderPatternSet) -> Self {
        let (tl, tr, bl) = (set.tl.p, set.tr.p, set.bl.p);
        let margin = set.tl.size.max(set.tr.size).max(set.bl.size) as f32;
        let corners = [tl, tr, bl, tr + bl - tl];
        let mut area = Self { left: f32::MAX, top: f32::MAX, right: f32::MIN, bottom: f32::MIN };
        for corner in corners {
            area.left = area.left.min(corner.x - margin);
            area.top = area.top.min(corner.y - margin);
            area.right = area.right.max(corner.x + margin);
            area.bottom = area.bottom.max(corner.y + margin);
        }
        area
    }

    /// Everywhere a code with `pattern` as one of its corners may reach.
    fn around_pattern(pattern: &ConcentricPattern) -> Self {
        let reach = LONE_PATTERN_REACH_MODULES * pattern.size as f32 / 7.0;
        let Point { x, y } = pattern.p;
        Self { left: x - reach, top: y - reach, right: x + reach, bottom: y + reach }
    }

    /// This area in a frame `factor` times the size.
    fn scaled(self, factor: f32) -> Self {
        Self {
            left: self.left * factor,
            top: self.top * factor,
            right: self.right * factor,
            bottom: self.bottom * factor,
        }
    }

    /// The whole pixels of this area inside a `width`×`height` frame, if enough to search.
    fn within(self, width: u32, height: u32) -> Option<Region> {
        let clamp = |value: f32, limit: u32| value.clamp(0.0, limit as f32) as u32;
        let (left, right) = (clamp(self.left, width), clamp(self.right, width));
        let (top, bottom) = (clamp(self.top, height), clamp(self.bottom, height));
        (right >= left + MIN_REGION_SIDE && bottom >= top + MIN_REGION_SIDE).then_some(Region {
            left,
            top,
            width: right - left,
            height: bottom - top,
        })
    }
}

/// The smallest side of a region worth searching: a version-1 code's.
const MIN_REGION_SIDE: u32 = 21;

/// A rectangle of whole pixels inside a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    left: u32,
    top: u32,
    width: u32,
    height: u32,
}

/// `frame` scaled by `numerator / denominator`: Catmull-Rom when enlarging (it keeps edges
/// steep), an area average when shrinking.
fn resize(frame: LumaFrame<'_>, numerator: u32, denominator: u32) -> Option<(u32, u32, Vec<u8>)> {
    use fast_image_resize as resize;
    let width = (frame.width * numerator / denominator).max(1);
    let height = (frame.height * numerator / denominator).max(1);
    let source =
        resize::images::ImageRef::new(frame.width, frame.height, frame.pixels, resize::PixelType::U8).ok()?;
    let mut target = resize::images::Image::new(width, height, resize::PixelType::U8);
    let filter =
        if numerator > denominator { resize::FilterType::CatmullRom } else { resize::FilterType::Box };
    let options = resize::ResizeOptions::new().resize_alg(resize::ResizeAlg::Convolution(filter));
    resize::Resizer::new().resize(&source, &mut target, &options).ok()?;
    Some((width, height, target.into_vec()))
}

/// The frame with an unsharp mask over a box blur (edges repeated outwards).
fn unsharp_mask(frame: LumaFrame<'_>, sharpen: Sharpen) -> Vec<u8> {
    let (width, height) = (frame.width as usize, frame.height as usize);
    // Row sums stay within 16 bits up to a 201-pixel window.
    let radius = usize::from(sharpen.radius.min(100));
    let window = 2 * radius + 1;
    let mut row_sums = vec![0u16; width * height];
    let mut prefix = vec![0u16; width + window];
    for (row, sums) in frame.pixels.chunks_exact(width).zip(row_sums.chunks_exact_mut(width)) {
        let mut running = 0u16;
        for i in 0..width + window - 1 {
            running = running.wrapping_add(u16::from(row[i.saturating_sub(radius).min(width - 1)]));
            prefix[i + 1] = running;
        }
        for (x, sum) in sums.iter_mut().enumerate() {
            *sum = prefix[x + window].wrapping_sub(prefix[x]);
        }
    }
    let mut column = vec![0u32; width];
    let clamp_row = |y: isize| y.clamp(0, height as isize - 1) as usize * width;
    for dy in -(radius as isize)..=radius as isize {
        let start = clamp_row(dy);
        for (total, sum) in column.iter_mut().zip(&row_sums[start..start + width]) {
            *total += u32::from(*sum);
        }
    }
    let mut out = vec![0u8; width * height];
    let amount = f32::from(sharpen.amount_sixteenths) / 16.0;
    let per_area = 1.0 / (window * window) as f32;
    for y in 0..height {
        let row = &frame.pixels[y * width..(y + 1) * width];
        for ((pixel, total), value) in out[y * width..(y + 1) * width].iter_mut().zip(&column).zip(row) {
            let value = f32::from(*value);
            let sharpened = value + amount * (value - *total as f32 * per_area);
            *pixel = sharpened.clamp(0.0, 255.0) as u8;
        }
        let (enter, leave) =
            (clamp_row(y as isize + radius as isize + 1), clamp_row(y as isize - radius as isize));
        for ((total, add), sub) in
            column.iter_mut().zip(&row_sums[enter..enter + width]).zip(&row_sums[leave..leave + width])
        {
            *total = *total + u32::from(*add) - u32::from(*sub);
        }
    }
    out
}

const BLOCK: usize = 8;
/// Blocks whose pixels differ by no more than this are taken as all light or all dark.
const MIN_DYNAMIC_RANGE: u8 = 24;

/// Black (dark) and white pixels as `rxing`'s `HybridBinarizer` computes them: a threshold per
/// 8×8 block from the mean of the 5×5 blocks around it; frames under 40 pixels a side get one
/// global threshold, the mean.
fn binarize(frame: LumaFrame<'_>) -> Option<BitMatrix> {
    /// Spreads the low bits of eight bytes (each 0 or 1) into the top byte of the product, in order.
    const GATHER_LOW_BITS: u64 = 0x0102_0408_1020_4080;
    let (width, height) = (frame.width as usize, frame.height as usize);
    let (wide, high) = (width.div_ceil(BLOCK), height.div_ceil(BLOCK));
    let thresholds = if width >= 5 * BLOCK && height >= 5 * BLOCK {
        block_thresholds(frame)
    } else {
        let mean = frame.pixels.iter().map(|&p| u64::from(p)).sum::<u64>() / frame.pixels.len() as u64;
        vec![u8::try_from(mean).unwrap_or(u8::MAX); wide * high]
    };
    let mut matrix = BitMatrix::new(frame.width, frame.height).ok()?;
    let word_bits = usize::BITS as usize;
    let mut bits = BitArray::with_size(width);
    let mut row_thresholds = vec![0u8; width];
    let mut black = vec![0u8; width.next_multiple_of(word_bits)];
    for (y, row) in frame.pixels.chunks_exact(width).enumerate() {
        if y % BLOCK == 0 {
            let block_row = &thresholds[(y / BLOCK) * wide..][..wide];
            for (pixels, &threshold) in row_thresholds.chunks_mut(BLOCK).zip(block_row) {
                pixels.fill(threshold);
            }
        }
        for ((black, &pixel), &threshold) in black.iter_mut().zip(row).zip(&row_thresholds) {
            *black = u8::from(pixel <= threshold);
        }
        for (index, bytes) in black.chunks_exact(word_bits).enumerate() {
            let mut word = 0u64;
            for (byte, eight) in bytes.chunks_exact(8).enumerate() {
                let lanes = u64::from_le_bytes(eight.try_into().unwrap_or_default());
                word |= (lanes.wrapping_mul(GATHER_LOW_BITS) >> 56) << (8 * byte);
            }
            bits.setBulk(index * word_bits, usize::try_from(word).unwrap_or_default());
        }
        matrix.setRow(y as u32, &bits);
    }
    Some(matrix)
}

/// Each block's threshold: the mean of the black points of the 5×5 blocks around it.
fn block_thresholds(frame: LumaFrame<'_>) -> Vec<u8> {
    let (width, height) = (frame.width as usize, frame.height as usize);
    let (wide, high) = (width.div_ceil(BLOCK), height.div_ceil(BLOCK));
    let mut black_points = vec![0u32; wide * high];
    let (mut sums, mut mins, mut maxes) = (vec![0u16; width], vec![0u8; width], vec![0u8; width]);
    for block_y in 0..high {
        let top = (block_y * BLOCK).min(height - BLOCK);
        sums.fill(0);
        mins.fill(u8::MAX);
        maxes.fill(u8::MIN);
        for row in frame.pixels[top * width..].chunks_exact(width).take(BLOCK) {
            for (((sum, min), max), &pixel) in sums.iter_mut().zip(&mut mins).zip(&mut maxes).zip(row) {
                *sum += u16::from(pixel);
                *min = (*min).min(pixel);
                *max = (*max).max(pixel);
            }
        }
        for block_x in 0..wide {
            let columns = (block_x * BLOCK).min(width - BLOCK)..(block_x * BLOCK).min(width - BLOCK) + BLOCK;
            let sum: u32 = sums[columns.clone()].iter().map(|&s| u32::from(s)).sum();
            let min = mins[columns.clone()].iter().copied().min().unwrap_or(u8::MAX);
            let max = maxes[columns].iter().copied().max().unwrap_or(u8::MIN);
            let mut black_point = sum / (BLOCK * BLOCK) as u32;
            if max - min <= MIN_DYNAMIC_RANGE {
                black_point = u32::from(min) / 2;
                if block_y > 0 && block_x > 0 {
                    let above = black_points[(block_y - 1) * wide + block_x];
                    let before = black_points[block_y * wide + block_x - 1];
                    let diagonal = black_points[(block_y - 1) * wide + block_x - 1];
                    let neighbours = (above + 2 * before + diagonal) / 4;
                    if u32::from(min) < neighbours {
                        black_point = neighbours;
                    }
                }
            }
            black_points[block_y * wide + block_x] = black_point;
        }
    }
    let mut thresholds = vec![0u8; wide * high];
    for block_y in 0..high {
        let top = block_y.clamp(2, high.saturating_sub(3).max(2));
        for block_x in 0..wide {
            let left = block_x.clamp(2, wide.saturating_sub(3).max(2));
            let mut sum = 0;
            for y in top - 2..=top + 2 {
                sum += black_points[y * wide + left - 2..=y * wide + left + 2].iter().sum::<u32>();
            }
            thresholds[block_y * wide + block_x] = u8::try_from(sum / 25).unwrap_or(u8::MAX);
        }
    }
    thresholds
}

/// The first QR code `rxing`'s zxing-cpp detector finds in the binarized frame, trying hard
/// (finder patterns of any size, searched for on every third row), or the finder patterns it
/// found.
fn search(frame: LumaFrame<'_>) -> Option<Found> {
    let bits = binarize(frame)?;
    let mut patterns = FindFinderPatterns(&bits, true, 0);
    let sets = GenerateFinderPatternSets(&mut patterns);
    let code = sets.iter().find_map(|set| {
        let detected = SampleQR(&bits, set).ok()?;
        let decoded = Decode(detected.getBits()).ok()?;
        decoded.isValid().then(|| SecretString::new(decoded.text()))
    });
    Some(code.map_or(Found::Unread(Unread { sets, patterns }), Found::Code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binarizer_agrees_with_rxings_hybrid_binarizer() {
        use rxing::common::HybridBinarizer;
        use rxing::{Binarizer, Luma8Source};
        let (width, height) = (200u32, 120u32);
        let pixels: Vec<u8> = (0..width * height)
            .map(|i| {
                let (x, y) = (i % width, i / width);
                (((x / 7 + y / 5) % 2) * 150 + (x * 3 + y) % 60 + (y * 255 / height) / 4) as u8
            })
            .collect();
        let frame = LumaFrame { width, height, pixels: &pixels };
        let ours = binarize(frame).unwrap();
        let source = Luma8Source::new_with_slice(&pixels, width, height).unwrap();
        let binarizer = HybridBinarizer::new(source);
        let theirs = binarizer.get_black_matrix().unwrap();
        assert_eq!(ours, *theirs);
    }

    #[test]
    fn a_frame_whose_buffer_does_not_match_its_size_finds_nothing() {
        let pixels = vec![255u8; 100];
        for look in
            [Look::DIRECT, Look::scaled(2, 1).sharpened(2, 56), Look::scaled(1, 0), Look::DIRECT.zoomed()]
        {
            assert_eq!(look.decode(LumaFrame { width: 640, height: 480, pixels: &pixels }), None);
        }
    }

    #[test]
    fn an_area_is_cut_to_the_frame_and_too_small_a_one_is_dropped() {
        let area = Area { left: -30.5, top: 10.2, right: 90.0, bottom: 700.0 };
        assert_eq!(area.within(640, 480), Some(Region { left: 0, top: 10, width: 90, height: 470 }));
        assert_eq!(
            area.scaled(2.0).within(640, 480),
            Some(Region { left: 0, top: 20, width: 180, height: 460 })
        );
        let outside = Area { left: 700.0, top: 0.0, right: 800.0, bottom: 100.0 };
        assert_eq!(outside.within(640, 480), None);
        let sliver = Area { left: 10.0, top: 10.0, right: 20.0, bottom: 300.0 };
        assert_eq!(sliver.within(640, 480), None);
    }

    #[test]
    fn a_lone_finder_pattern_is_zoomed_into_as_far_as_a_code_reaches_from_it() {
        let pattern = ConcentricPattern { p: Point { x: 100.0, y: 200.0 }, size: 14 };
        let area = Area::around_pattern(&pattern);
        let reach = 2.0 * LONE_PATTERN_REACH_MODULES;
        assert_eq!(
            area,
            Area { left: 100.0 - reach, top: 200.0 - reach, right: 100.0 + reach, bottom: 200.0 + reach }
        );
    }

    #[test]
    fn a_set_is_zoomed_into_with_its_fourth_corner_and_a_margin() {
        let pattern = |x, y| ConcentricPattern { p: Point { x, y }, size: 21 };
        let set = FinderPatternSet {
            tl: pattern(100.0, 100.0),
            tr: pattern(200.0, 120.0),
            bl: pattern(80.0, 200.0),
        };
        let area = Area::around_set(&set);
        assert_eq!(area, Area { left: 59.0, top: 79.0, right: 221.0, bottom: 241.0 });
    }

    #[test]
    fn sharpening_steepens_an_edge_and_keeps_flat_areas() {
        let (width, height) = (16u32, 4u32);
        let pixels: Vec<u8> = (0..width * height).map(|i| if i % width < 8 { 60 } else { 180 }).collect();
        let frame = LumaFrame { width, height, pixels: &pixels };
        let out = unsharp_mask(frame, Sharpen { radius: 2, amount_sixteenths: 32 });
        assert_eq!(out[0], 60, "flat dark area unchanged");
        assert_eq!(out[15], 180, "flat light area unchanged");
        assert!(out[7] < 60 && out[8] > 180, "edge pushed apart: {:?}", &out[..16]);
    }
}
