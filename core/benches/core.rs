//! Benchmarks of the core's hot paths: code generation and verification, URI parsing, vault
//! open/save with 1,000 tokens, passphrase unlock, and QR decoding.
//!
//! `cargo bench -p tessera-core`; docs/benchmarks.md quotes the figures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::otp::{Algorithm, Digits, OtpMethod, Period, TotpWindow, hotp, totp, verify_totp};
use tessera_core::otpauth::OtpAuth;
use tessera_core::qr;
use tessera_core::secret::{SecretBytes, SecretString};
use tessera_core::vault::{Credential, KdfParams, MemoryKeyStore, VaultError, VaultStore};

fn otp(c: &mut Criterion) {
    let secret = SecretBytes::from_slice(b"12345678901234567890");
    let mut group = c.benchmark_group("otp");
    group.bench_function("totp_generate_sha1_6", |b| {
        b.iter(|| {
            totp(&secret, Algorithm::Sha1, Digits::SIX, Period::THIRTY_SECONDS, black_box(1_700_000_000))
        })
    });
    group.bench_function("hotp_generate_sha1_6", |b| {
        b.iter(|| hotp(&secret, Algorithm::Sha1, Digits::SIX, black_box(42)))
    });
    group.bench_function("totp_verify_window_pm1_reject", |b| {
        b.iter(|| {
            verify_totp(
                &secret,
                Algorithm::Sha1,
                Digits::SIX,
                Period::THIRTY_SECONDS,
                black_box("000000"),
                black_box(1_700_000_000),
                TotpWindow::RFC_DEFAULT,
            )
        })
    });
    let current = totp(&secret, Algorithm::Sha1, Digits::SIX, Period::THIRTY_SECONDS, 1_700_000_000);
    group.bench_function("totp_verify_window_pm1_accept", |b| {
        b.iter(|| {
            verify_totp(
                &secret,
                Algorithm::Sha1,
                Digits::SIX,
                Period::THIRTY_SECONDS,
                black_box(current.expose()),
                black_box(1_700_000_000),
                TotpWindow::RFC_DEFAULT,
            )
        })
    });
    group.finish();
}

fn uri(c: &mut Criterion) {
    let text = "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30";
    c.bench_function("otpauth/parse", |b| b.iter(|| OtpAuth::parse(black_box(text)).unwrap()));
}

fn vault(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = VaultStore::new(dir.path().join("bench.tessera"));
    let keystore = MemoryKeyStore::new();
    let unlocked = store.create(Some(&keystore), None).unwrap();
    unlocked
        .update(|v| {
            for i in 0..1000u32 {
                let otp = OtpAuth::new(
                    Some(format!("Issuer {i}")),
                    format!("user{i}@example.com"),
                    SecretBytes::random(20).unwrap(),
                    OtpMethod::default_totp(),
                )
                .unwrap();
                v.add(otp, None, 1_700_000_000).map_err(VaultError::from)?;
            }
            Ok::<_, VaultError>(())
        })
        .unwrap();
    let size = std::fs::metadata(store.path()).unwrap().len();
    println!("1,000-token vault file: {size} bytes");

    let mut group = c.benchmark_group("vault_1000_tokens");
    group.bench_function("open_decrypt_parse", |b| b.iter(|| unlocked.read().unwrap()));
    group.bench_function("unlock_keystore_slot_then_open", |b| {
        b.iter(|| store.unlock(Credential::KeyStore(&keystore)).unwrap().read().unwrap())
    });
    group.bench_function("save_atomic_fsync", |b| {
        b.iter(|| unlocked.update(|_| Ok::<_, VaultError>(())).unwrap())
    });
    group.finish();

    let passphrase = SecretString::new("correct horse battery staple".into());
    let pass_store = VaultStore::new(dir.path().join("pass.tessera"));
    pass_store.create(None, Some((&passphrase, KdfParams::DEFAULT))).unwrap();
    let mut group = c.benchmark_group("vault");
    group.sample_size(10);
    group.bench_function("passphrase_unlock_argon2id_64MiB_t3", |b| {
        b.iter(|| pass_store.unlock(Credential::Passphrase(&passphrase)).unwrap())
    });
    group.finish();
}

fn qr_decode(c: &mut Criterion) {
    let uri = "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co";
    let code = qr::render_image(uri, 4).unwrap();
    let (w, h) = (1280u32, 720u32);
    let mut frame = image::GrayImage::from_fn(w, h, |x, y| image::Luma([(140 + (x * 7 + y * 3) % 50) as u8]));
    image::imageops::overlay(&mut frame, &code, 500, 150);
    let luma = qr::LumaFrame::new(w, h, frame.as_raw()).unwrap();
    let blank = vec![200u8; (w * h) as usize];
    let empty = qr::LumaFrame::new(w, h, &blank).unwrap();
    let mut group = c.benchmark_group("qr_decode_1280x720");
    group.bench_function("with_code", |b| b.iter(|| assert_eq!(qr::decode_luma(black_box(luma)).len(), 1)));
    group
        .bench_function("without_code", |b| b.iter(|| assert!(qr::decode_luma(black_box(empty)).is_empty())));
    group.bench_function("rxing_only_with_code", |b| b.iter(|| qr::decode_with_rxing(black_box(luma))));
    group.bench_function("rxing_only_without_code", |b| b.iter(|| qr::decode_with_rxing(black_box(empty))));
    group.bench_function("rqrr_only_with_code", |b| b.iter(|| qr::decode_with_rqrr(black_box(luma))));
    group.bench_function("rqrr_only_without_code", |b| b.iter(|| qr::decode_with_rqrr(black_box(empty))));
    group.finish();
}

criterion_group!(benches, otp, uri, vault, qr_decode);
criterion_main!(benches);
