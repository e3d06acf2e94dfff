//! Bad input of every kind: a one-line reason, a non-zero exit, and a vault left exactly as it was.

use crate::support::{Sandbox, binary};

const GOOD: &str = "otpauth://totp/GitHub:octocat?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=GitHub";

fn vault_with_one_token() -> Sandbox {
    let sandbox = Sandbox::with_keystore_vault();
    sandbox.run(&["add", GOOD]).ok();
    sandbox
}

#[test]
fn malformed_uris_are_refused_with_the_reason() {
    let sandbox = vault_with_one_token();
    let before = sandbox.vault_bytes();
    let cases = [
        ("https://example.com/enroll", "not an otpauth URI"),
        ("otpauth://totp/x?issuer=A", "no secret parameter"),
        ("otpauth://totp/x?secret=JBSWY3DP1", "'1', which is not a base32 character"),
        ("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=12", "invalid digits parameter"),
        ("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=MD5", "unsupported algorithm 'MD5'"),
        ("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=0", "invalid period parameter"),
        ("otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=abc", "invalid counter parameter"),
        ("otpauth://yotp/x?secret=JBSWY3DPEHPK3PXP", "unknown token type 'yotp'"),
        ("otpauth://totp/%FF?secret=JBSWY3DPEHPK3PXP", "label is not valid percent-encoded UTF-8"),
        ("otpauth-migration://offline?data=CjEKCkhlbGxvId6tvu8", "otpauth-migration"),
        (GOOD, "already in the vault"),
    ];
    for (uri, reason) in cases {
        sandbox.run(&["add", uri]).fails_with(reason);
        assert_eq!(sandbox.vault_bytes(), before, "{uri} changed the vault");
    }
}

#[test]
fn secrets_never_appear_in_errors() {
    let sandbox = vault_with_one_token();
    let run = sandbox.run(&["add", "otpauth://totp/x?secret=SUPERSECRETSEED7SUPERSECRETSEED1"]);
    assert!(!run.stderr.contains("SUPERSECRET"), "{}", run.stderr);
    let run = sandbox.run(&["add", "--label", "x", "--secret", "SUPERSECRETSEED7SUPERSECRETSEED!"]);
    assert!(!run.stderr.contains("SUPERSECRET"), "{}", run.stderr);
    assert_ne!(run.status, 0);
}

#[test]
fn bad_manual_parameters() {
    let sandbox = vault_with_one_token();
    let before = sandbox.vault_bytes();
    sandbox
        .run(&["add", "--label", "x", "--secret", "JBSWY3DPEHPK3PXP", "--digits", "5"])
        .fails_with("invalid digits");
    sandbox
        .run(&["add", "--label", "x", "--secret", "JBSWY3DPEHPK3PXP", "--algorithm", "sha3"])
        .fails_with("unsupported algorithm");
    sandbox.run(&["add", "--label", "a:b", "--secret", "JBSWY3DPEHPK3PXP"]).fails_with("needs an issuer");
    sandbox.run(&["add", "--issuer", "I", "--secret", "JBSWY3DPEHPK3PXP"]).usage_error("--label");
    sandbox.run(&["add"]).fails_with("give an otpauth:// URI");
    assert_eq!(sandbox.vault_bytes(), before);
}

#[test]
fn unreadable_qr_images() {
    let sandbox = vault_with_one_token();
    let before = sandbox.vault_bytes();
    let text = sandbox.path("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    sandbox.run(&["add", "--qr", text.to_str().unwrap()]).fails_with("unsupported image format");

    let blank = sandbox.path("blank.png");
    image::GrayImage::from_pixel(300, 200, image::Luma([255])).save(&blank).unwrap();
    sandbox.run(&["add", "--qr", blank.to_str().unwrap()]).fails_with("no QR code found");

    let website = sandbox.path("website.png");
    std::fs::write(&website, tessera_core::qr::render_png("https://example.com", 4).unwrap()).unwrap();
    sandbox.run(&["add", "--qr", website.to_str().unwrap()]).fails_with("is not a token: not an otpauth URI");

    let truncated = sandbox.path("truncated.png");
    let png = tessera_core::qr::render_png(GOOD, 4).unwrap();
    std::fs::write(&truncated, &png[..png.len() / 3]).unwrap();
    sandbox.run(&["add", "--qr", truncated.to_str().unwrap()]).fails_with("could not read the image");
    sandbox.run(&["add", "--qr", "/nonexistent/qr.png"]).fails_with("could not read /nonexistent/qr.png");
    assert_eq!(sandbox.vault_bytes(), before);
}

#[test]
fn queries_that_match_several_or_none() {
    let sandbox = vault_with_one_token();
    sandbox.run(&["add", "otpauth://totp/GitLab:octocat?secret=GEZDGNBVGY3TQOJQ&issuer=GitLab"]).ok();
    let before = sandbox.vault_bytes();
    let run = sandbox.run(&["code", "octocat"]);
    assert!(run.stderr.contains("GitHub:octocat") && run.stderr.contains("GitLab:octocat"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "no code is printed for an ambiguous query");
    run.fails_with("'octocat' matches 2 tokens");
    sandbox.run(&["remove", "git", "--yes"]).fails_with("matches 2 tokens");
    sandbox.run(&["code", "bitbucket"]).fails_with("no token matches 'bitbucket'");
    assert_eq!(sandbox.vault_bytes(), before);
}

#[test]
fn at_is_refused_for_hotp_and_does_not_advance() {
    let sandbox = Sandbox::with_keystore_vault();
    sandbox.run(&["add", "otpauth://hotp/Bank:me?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=0"]).ok();
    let before = sandbox.vault_bytes();
    sandbox.run(&["code", "bank", "--at", "100"]).fails_with("--at applies to time-based tokens");
    assert_eq!(sandbox.vault_bytes(), before);
}

#[test]
fn import_with_one_bad_line_imports_nothing() {
    let sandbox = vault_with_one_token();
    let before = sandbox.vault_bytes();
    let file = sandbox.path("import.txt");
    std::fs::write(
        &file,
        "otpauth://totp/A:a?secret=GEZDGNBVGY3TQOJQ\n\n# comment\notpauth://totp/B:b?secret=GEZDGNBVGY3TQOJQ&digits=99\n",
    )
    .unwrap();
    sandbox
        .run(&["import", "--otpauth", file.to_str().unwrap()])
        .fails_with("line 4: invalid digits parameter");
    sandbox.run(&["import", "--otpauth", "/nonexistent"]).fails_with("could not read /nonexistent");
    assert_eq!(sandbox.vault_bytes(), before);
}

#[test]
fn tampered_truncated_and_foreign_vaults_are_reported_and_left_untouched() {
    let sandbox = vault_with_one_token();
    let good = sandbox.vault_bytes();

    let mut tampered = good.clone();
    let middle = tampered.len() - 30;
    tampered[middle] ^= 0x01;
    let truncated = good[..good.len() - 7].to_vec();
    let mut short_header = good[..40].to_vec();
    short_header.truncate(40);
    let cases: [(&[u8], &str); 5] = [
        (&tampered, "damaged or was modified"),
        (&truncated, "damaged or was modified"),
        (&short_header, "truncated"),
        (b"{\"tokens\": []}", "not a Tessera vault"),
        (b"", "truncated"),
    ];
    for (bytes, reason) in cases {
        std::fs::write(&sandbox.vault, bytes).unwrap();
        for args in
            [&["list"][..], &["code", "github"], &["add", "otpauth://totp/N:n?secret=GEZDGNBVGY3TQOJQ"]]
        {
            sandbox.run(args).fails_with(reason);
            assert_eq!(std::fs::read(&sandbox.vault).unwrap(), bytes, "{args:?} rewrote a bad vault");
        }
    }
    std::fs::write(&sandbox.vault, &good).unwrap();
    sandbox.run(&["list"]).ok();
}

#[test]
fn missing_vault_and_existing_vault() {
    let sandbox = Sandbox::new();
    sandbox.run(&["list"]).fails_with("create one with `tessera init`");
    assert!(!sandbox.vault.exists());
    let sandbox = vault_with_one_token();
    let before = sandbox.vault_bytes();
    sandbox.run(&["init"]).fails_with("a vault already exists");
    assert_eq!(sandbox.vault_bytes(), before);
}

#[test]
fn usage_errors_exit_with_status_2() {
    let status = std::process::Command::new(binary("tessera")).arg("frobnicate").output().unwrap().status;
    assert_eq!(status.code(), Some(2));
}

#[test]
fn the_exit_status_names_the_class_of_error() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.run(&["list"]).status, 5, "no vault: not_found");
    let sandbox = vault_with_one_token();
    assert_eq!(
        sandbox.run(&["add", "https://example.com/enroll"]).status,
        3,
        "a malformed URI: invalid_input"
    );
    assert_eq!(sandbox.run(&["add", GOOD]).status, 6, "a token already in the vault: conflict");
    assert_eq!(sandbox.run(&["code", "nothing-like-it"]).status, 5, "no such token: not_found");
    let missing = sandbox.path("missing.png");
    let run = sandbox.run(&["add", "--qr", missing.to_str().unwrap()]);
    assert_eq!(run.status, 13, "an unreadable file: storage ({})", run.stderr);
}

#[test]
fn scan_replays_pgm_frames_and_reports_and_skips_damaged_ones() {
    let sandbox = Sandbox::new();
    let frames = sandbox.path("frames");
    std::fs::create_dir_all(&frames).unwrap();
    std::fs::write(frames.join("1.png"), b"\x89PNG\r\n\x1a\n cut short").unwrap();
    let code = tessera_core::qr::render_image(GOOD, 4).unwrap();
    let mut pgm = format!("P5\n{} {}\n255\n", code.width(), code.height()).into_bytes();
    pgm.extend_from_slice(code.as_raw());
    std::fs::write(frames.join("2.pgm"), pgm).unwrap();
    let run = sandbox.run(&["scan", "--frames", frames.to_str().unwrap()]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), GOOD);
    assert!(
        run.stderr.contains("skipped a frame that could not be decoded") && run.stderr.contains("1.png"),
        "{}",
        run.stderr
    );
}
