//! Cross-checks HOTP and TOTP codes against Debian's `oathtool` (OATH Toolkit), an independent
//! implementation, over random seeds, algorithms, digit counts, periods and times.
//!
//! oathtool supports 6–8 digits and HOTP with SHA-1 only; 9- and 10-digit codes are covered by the
//! RFC 4226 truncated values in the unit tests. Set `TESSERA_ORACLE_SEED` to vary the cases.

use std::process::Command;

use tessera_core::otp::{Algorithm, Digits, Period, TotpWindow, hotp, totp, verify_hotp, verify_totp};
use tessera_core::secret::SecretBytes;

const CASES: usize = 240;

/// SplitMix64: a small, reproducible generator; the failing case's parameters are printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn oathtool(args: &[String]) -> String {
    let output = Command::new("oathtool").args(args).output().expect(
        "oathtool must be installed (Debian package oathtool); the README's test command installs it",
    );
    assert!(output.status.success(), "oathtool {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn codes_match_oathtool() {
    let seed = std::env::var("TESSERA_ORACLE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_124);
    let mut rng = Rng(seed);
    let mut counts = [0usize; 2];
    for case in 0..CASES {
        let key_len = [10, 16, 20, 32, 64][rng.below(5) as usize] + rng.below(3) as usize;
        let key: Vec<u8> = (0..key_len).map(|_| rng.next() as u8).collect();
        let hex_key: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let secret = SecretBytes::new(key);
        let digits = Digits::new(6 + rng.below(3) as u8).unwrap();
        let is_totp = case % 3 != 0;
        let context = format!("case {case} (seed {seed}): key {key_len} bytes, {} digits", digits.get());
        if is_totp {
            let algorithm = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512][rng.below(3) as usize];
            let period =
                Period::new([30, 60, 15, 1, 45, 3600][rng.below(6) as usize] + rng.below(2) as u32).unwrap();
            let time = rng.below(4_000_000_000);
            let expected = oathtool(&[
                format!("--totp={algorithm}"),
                format!("--digits={}", digits.get()),
                format!("--time-step-size={}s", period.get()),
                format!("--now=@{time}"),
                hex_key,
            ]);
            let ours = totp(&secret, algorithm, digits, period, time);
            assert_eq!(
                ours.expose(),
                expected,
                "{context}, TOTP {algorithm}, period {}, time {time}",
                period.get()
            );
            let matched =
                verify_totp(&secret, algorithm, digits, period, &expected, time, TotpWindow::RFC_DEFAULT);
            assert_eq!(matched.map(|m| m.drift), Some(0), "{context}");
            counts[0] += 1;
        } else {
            let counter = if rng.below(2) == 0 { rng.below(1000) } else { rng.next() >> 1 };
            let expected =
                oathtool(&[format!("--digits={}", digits.get()), format!("--counter={counter}"), hex_key]);
            let ours = hotp(&secret, Algorithm::Sha1, digits, counter);
            assert_eq!(ours.expose(), expected, "{context}, HOTP counter {counter}");
            assert_eq!(verify_hotp(&secret, Algorithm::Sha1, digits, &expected, counter, 0), Some(counter));
            counts[1] += 1;
        }
    }
    assert!(counts[0] >= 150 && counts[1] >= 75, "both kinds are exercised: {counts:?}");
}
