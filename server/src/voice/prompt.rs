//! The spoken prompt a voice-token call plays ("Please key in the code shown on your screen"): a
//! WAV file of 8 kHz mono 16-bit samples, as Debian's `espeak-ng` and `sox` make it, encoded once
//! as G.711 (μ-law, RTP payload type 0, or A-law, 8: what every SIP phone and trunk takes) in 20 ms
//! frames ready to go out in RTP packets. An administrator may replace the file; one in another
//! format is refused at start-up with what it should be.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use audio_codec_algorithms::{encode_alaw, encode_ulaw};

/// Samples per second in G.711.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms RTP frame.
pub const FRAME_SAMPLES: usize = 160;
/// The longest prompt taken.
const MAX_DURATION: Duration = Duration::from_secs(60);

/// A G.711 codec, as SDP names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711 {
    /// `PCMU/8000`, payload type 0 (North America, Japan).
    MuLaw,
    /// `PCMA/8000`, payload type 8 (elsewhere).
    ALaw,
}

impl G711 {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            Self::MuLaw => 0,
            Self::ALaw => 8,
        }
    }

    /// The codec of a static payload type.
    pub fn of_payload_type(payload_type: u8) -> Option<Self> {
        match payload_type {
            0 => Some(Self::MuLaw),
            8 => Some(Self::ALaw),
            _ => None,
        }
    }

    /// One sample, encoded.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Self::MuLaw => encode_ulaw(sample),
            Self::ALaw => encode_alaw(sample),
        }
    }
}

/// Why a prompt cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file cannot be read or is not a WAV file.
    #[error("the voice prompt cannot be read: {0}")]
    Read(String),
    /// The WAV holds another kind of audio.
    #[error(
        "the voice prompt is {rate} Hz, {channels} channel(s), {bits}-bit: it must be 8000 Hz, mono, 16-bit PCM \
         (sox IN.wav -r 8000 -c 1 -b 16 OUT.wav converts one)"
    )]
    Format {
        /// Its sample rate.
        rate: u32,
        /// Its channels.
        channels: u16,
        /// Its bits per sample.
        bits: u16,
    },
    /// It holds no sound.
    #[error("the voice prompt holds no audio")]
    Empty,
    /// It is longer than a caller would listen to.
    #[error("the voice prompt lasts more than {} seconds", MAX_DURATION.as_secs())]
    TooLong,
}

/// A prompt in one codec, as 20 ms frames (the last one padded with silence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    codec: G711,
    frames: Vec<[u8; FRAME_SAMPLES]>,
}

impl Prompt {
    /// Reads a WAV file from `path`.
    pub fn from_file(path: &Path, codec: G711) -> Result<Self, PromptError> {
        let file =
            std::fs::File::open(path).map_err(|e| PromptError::Read(format!("{}: {e}", path.display())))?;
        Self::from_wav(std::io::BufReader::new(file), codec)
    }

    /// Reads a WAV file.
    pub fn from_wav(wav: impl Read, codec: G711) -> Result<Self, PromptError> {
        let reader = hound::WavReader::new(wav).map_err(|e| PromptError::Read(e.to_string()))?;
        let spec = reader.spec();
        if spec.sample_rate != SAMPLE_RATE
            || spec.channels != 1
            || spec.bits_per_sample != 16
            || spec.sample_format != hound::SampleFormat::Int
        {
            return Err(PromptError::Format {
                rate: spec.sample_rate,
                channels: spec.channels,
                bits: spec.bits_per_sample,
            });
        }
        let max_samples = MAX_DURATION.as_secs() * u64::from(SAMPLE_RATE);
        if u64::from(reader.duration()) > max_samples {
            return Err(PromptError::TooLong);
        }
        let samples = reader
            .into_samples::<i16>()
            .collect::<Result<Vec<i16>, _>>()
            .map_err(|e| PromptError::Read(e.to_string()))?;
        if samples.is_empty() {
            return Err(PromptError::Empty);
        }
        Ok(Self::from_samples(&samples, codec))
    }

    /// Tones one after another (`(hertz, milliseconds)`; 0 Hz is silence), at a comfortable
    /// level: the short signals a call plays around the spoken prompt.
    pub fn tones(tones: &[(u32, u32)], codec: G711) -> Self {
        let samples: Vec<i16> = tones
            .iter()
            .flat_map(|&(hertz, millis)| {
                let count = usize::try_from(millis * SAMPLE_RATE / 1000).unwrap_or(0);
                (0..count).map(move |n| {
                    let phase = std::f64::consts::TAU * f64::from(hertz) * n as f64 / f64::from(SAMPLE_RATE);
                    (phase.sin() * 8000.0) as i16
                })
            })
            .collect();
        Self::from_samples(&samples, codec)
    }

    /// This prompt, then `next`.
    pub fn then(mut self, next: &Self) -> Self {
        self.frames.extend_from_slice(&next.frames);
        self
    }

    fn from_samples(samples: &[i16], codec: G711) -> Self {
        let silence = codec.encode(0);
        let frames = samples
            .chunks(FRAME_SAMPLES)
            .map(|chunk| {
                let mut frame = [silence; FRAME_SAMPLES];
                for (out, sample) in frame.iter_mut().zip(chunk) {
                    *out = codec.encode(*sample);
                }
                frame
            })
            .collect();
        Self { codec, frames }
    }

    /// The codec its frames are in.
    pub fn codec(&self) -> G711 {
        self.codec
    }

    /// Its 20 ms frames, in order.
    pub fn frames(&self) -> &[[u8; FRAME_SAMPLES]] {
        &self.frames
    }

    /// How long it plays.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(20 * u64::try_from(self.frames.len()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use audio_codec_algorithms::{decode_alaw, decode_ulaw};

    use super::*;

    fn wav(spec: hound::WavSpec, samples: &[i16]) -> Vec<u8> {
        let mut bytes = std::io::Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut bytes, spec).unwrap();
        for sample in samples {
            writer.write_sample(*sample).unwrap();
        }
        writer.finalize().unwrap();
        bytes.into_inner()
    }

    const TELEPHONE: hound::WavSpec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };

    /// Half a second of a 1 kHz tone and a little more.
    fn tone() -> Vec<i16> {
        (0..4100).map(|i| (8000.0 * (f64::from(i) * 2.0 * std::f64::consts::PI / 8.0).sin()) as i16).collect()
    }

    #[test]
    fn a_prompt_becomes_20_ms_frames_in_either_codec_and_decodes_back_closely() {
        let samples = tone();
        for (codec, decode) in [(G711::MuLaw, decode_ulaw as fn(u8) -> i16), (G711::ALaw, decode_alaw)] {
            let prompt = Prompt::from_wav(wav(TELEPHONE, &samples).as_slice(), codec).unwrap();
            assert_eq!(prompt.frames().len(), 26, "4,100 samples: 25 frames and a padded one");
            assert_eq!(prompt.duration(), Duration::from_millis(520));
            let decoded: Vec<i16> = prompt.frames().iter().flatten().map(|b| decode(*b)).collect();
            for (original, back) in samples.iter().zip(&decoded) {
                assert!(
                    (i32::from(*original) - i32::from(*back)).abs() <= 260,
                    "{original} came back as {back}"
                );
            }
            assert!(decoded[4100..].iter().all(|s| s.abs() <= 8), "the padding is silence");
            assert_eq!(G711::of_payload_type(codec.payload_type()), Some(codec));
        }
        assert_eq!(G711::MuLaw.encode(0), 0xff, "μ-law silence");
        assert_eq!(G711::ALaw.encode(0), 0xd5, "A-law silence");
    }

    #[test]
    fn a_prompt_in_another_format_is_refused_with_what_it_should_be() {
        let cd = hound::WavSpec { sample_rate: 44_100, channels: 2, ..TELEPHONE };
        let error = Prompt::from_wav(wav(cd, &tone()).as_slice(), G711::MuLaw).unwrap_err().to_string();
        assert!(
            error.contains("44100 Hz, 2 channel(s)") && error.contains("8000 Hz, mono, 16-bit"),
            "{error}"
        );
        let empty = Prompt::from_wav(wav(TELEPHONE, &[]).as_slice(), G711::MuLaw).unwrap_err();
        assert!(matches!(empty, PromptError::Empty), "{empty}");
        let long = vec![0i16; 61 * 8000];
        assert!(matches!(
            Prompt::from_wav(wav(TELEPHONE, &long).as_slice(), G711::MuLaw),
            Err(PromptError::TooLong)
        ));
        let whole = wav(TELEPHONE, &tone());
        for cut in [0, 10, 43, whole.len() / 2] {
            let error = Prompt::from_wav(&whole[..cut], G711::MuLaw).unwrap_err();
            assert!(matches!(error, PromptError::Read(_)), "cut at {cut}: {error}");
        }
        let missing = Prompt::from_file(Path::new("/nonexistent/enter-code.wav"), G711::ALaw).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/enter-code.wav"), "{missing}");
    }
}
