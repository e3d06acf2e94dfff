//! Adding tokens every way the CLI offers, and checking the codes it shows against oathtool.

use std::io::Cursor;

use image::{GrayImage, ImageFormat, Luma};
use tessera_core::qr;

use crate::support::{Sandbox, oathtool, unix_now};

const SHA256_URI: &str = "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=45";
const SHA256_SECRET: &str = "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ";

fn oath_totp(secret: &str, algorithm: &str, digits: u8, period: u32, time: u64) -> String {
    oathtool(&[
        &format!("--totp={algorithm}"),
        "-b",
        &format!("--digits={digits}"),
        &format!("--time-step-size={period}s"),
        &format!("--now=@{time}"),
        secret,
    ])
}

/// Asserts that the vault's ACME token shows oathtool's code at `time`.
#[track_caller]
fn assert_acme_code_at(sandbox: &Sandbox, time: u64) {
    let shown = sandbox.run(&["code", "acme", "--at", &time.to_string()]).ok();
    assert_eq!(shown.trim(), oath_totp(SHA256_SECRET, "SHA256", 8, 45, time), "at {time}");
}

/// A photo-like JPEG: the QR small in a larger textured picture, as a screenshot or phone photo.
fn qr_in_a_picture(uri: &str) -> Vec<u8> {
    let code = qr::render_image(uri, 3).unwrap();
    let mut canvas = GrayImage::from_fn(1000, 760, |x, y| Luma([(150 + (x * 3 + y * 5) % 60) as u8]));
    image::imageops::overlay(&mut canvas, &code, 420, 200);
    let mut jpeg = Vec::new();
    canvas.write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg).unwrap();
    jpeg
}

#[test]
fn add_from_a_qr_image_and_read_codes_matching_oathtool() {
    let sandbox = Sandbox::with_keystore_vault();
    let png = sandbox.path("enroll.png");
    std::fs::write(&png, qr::render_png(SHA256_URI, 6).unwrap()).unwrap();
    let added = sandbox.run(&["add", "--qr", png.to_str().unwrap()]);
    assert!(added.stderr.contains("Added ACME Co:john.doe@email.com"), "{}", added.stderr);
    added.ok();

    for time in [59u64, 1_111_111_109, 1_700_000_000, 4_000_000_000] {
        assert_acme_code_at(&sandbox, time);
    }
    let before = unix_now();
    let shown = sandbox.run(&["code", "john.doe@email.com"]).ok();
    let after = unix_now();
    let expected =
        [oath_totp(SHA256_SECRET, "SHA256", 8, 45, before), oath_totp(SHA256_SECRET, "SHA256", 8, 45, after)];
    assert!(expected.contains(&shown.trim().to_owned()), "{shown} not in {expected:?}");
}

#[test]
fn add_from_a_jpeg_photo_of_a_qr() {
    let sandbox = Sandbox::with_keystore_vault();
    let jpeg = sandbox.path("photo.jpg");
    std::fs::write(&jpeg, qr_in_a_picture(SHA256_URI)).unwrap();
    sandbox.run(&["add", "--qr", jpeg.to_str().unwrap()]).ok();
    assert_acme_code_at(&sandbox, 1_234_567_890);
}

#[test]
fn add_by_uri_by_hand_and_from_stdin_and_list_without_secrets() {
    let sandbox = Sandbox::with_keystore_vault();
    sandbox.run(&["add", "otpauth://totp/GitHub:octocat?secret=JBSWY3DPEHPK3PXP&issuer=GitHub"]).ok();
    sandbox
        .run(&[
            "add",
            "--issuer",
            "Bank",
            "--label",
            "me",
            "--secret",
            "gezd gnbv gy3t qojq",
            "--digits",
            "7",
            "--period",
            "60",
            "--group",
            "money",
        ])
        .ok();
    sandbox.run_stdin(&["add", "-"], "otpauth://totp/Mail:me?secret=MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U\n").ok();
    sandbox.run_stdin(&["add", "--label", "piped", "--secret", "-"], "KRUGS4ZANFZSAYJAORSXG5A=\n").ok();

    let listing = sandbox.run(&["list"]).ok();
    let lines: Vec<_> = listing.lines().collect();
    assert_eq!(lines.len(), 5, "{listing}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("ISSUER") && lines[0].contains("LABEL"));
    assert!(
        lines[2].contains("Bank") && lines[2].contains("totp 60s 7 digits") && lines[2].contains("money")
    );

    let json = sandbox.list_json();
    let tokens = json.as_array().unwrap();
    assert_eq!(tokens.len(), 4);
    assert_eq!(tokens[1]["issuer"], "Bank");
    assert_eq!(tokens[1]["digits"], 7);
    assert_eq!(tokens[1]["period"], 60);
    assert_eq!(tokens[3]["issuer"], serde_json::Value::Null);

    let everything = format!("{listing}{json}");
    for secret in ["JBSWY3DPEHPK3PXP", "GEZDGNBVGY3TQOJQ", "MFRGGZDFMZTW", "KRUGS4ZANFZS"] {
        assert!(!everything.to_uppercase().contains(secret), "list shows a secret");
    }
    let code = sandbox.run(&["code", "bank", "--at", "1000000"]).ok();
    assert_eq!(code.trim(), oath_totp("GEZDGNBVGY3TQOJQ", "SHA1", 7, 60, 1_000_000));
}

#[test]
fn hotp_codes_advance_the_counter_durably() {
    let sandbox = Sandbox::with_keystore_vault();
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    sandbox.run(&["add", &format!("otpauth://hotp/Bank:me?secret={secret}&counter=5&digits=8")]).ok();
    for counter in 5..8 {
        let code = sandbox.run(&["code", "bank"]).ok();
        assert_eq!(code.trim(), oathtool(&["-b", "-d", "8", "-c", &counter.to_string(), secret]));
    }
    let json = sandbox.list_json();
    assert_eq!(json[0]["counter"], 8, "the next code to show is for counter 8");
    assert!(json[0]["last_used_at"].as_u64().unwrap() >= unix_now() - 60);
}

#[test]
fn steam_tokens_show_five_steam_characters() {
    let sandbox = Sandbox::with_keystore_vault();
    sandbox
        .run(&["add", "otpauth://steam/Steam:gaben?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Steam"])
        .ok();
    let code = sandbox.run(&["code", "steam"]).ok();
    let code = code.trim();
    assert_eq!(code.len(), 5);
    assert!(code.chars().all(|c| "23456789BCDFGHJKMNPQRTVWXY".contains(c)), "{code}");
}

#[test]
fn export_then_import_moves_every_token() {
    let source = Sandbox::with_keystore_vault();
    source.run(&["add", SHA256_URI]).ok();
    source.run(&["add", "otpauth://hotp/Bank:me?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=3"]).ok();
    let file = source.path("export.txt");
    let exported = source.run(&["export", "--otpauth", "--output", file.to_str().unwrap()]);
    assert!(exported.stderr.contains("clear text"), "the export warns: {}", exported.stderr);
    exported.ok();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let stdout_export = source.run(&["export", "--otpauth"]).ok();
    assert_eq!(stdout_export, std::fs::read_to_string(&file).unwrap());

    let target = Sandbox::with_keystore_vault();
    let imported = target.run(&["import", "--otpauth", file.to_str().unwrap()]);
    assert!(imported.stderr.contains("Imported 2 tokens (0 duplicates skipped)"), "{}", imported.stderr);
    let again = target.run(&["import", "--otpauth", file.to_str().unwrap()]);
    assert!(again.stderr.contains("Imported 0 tokens (2 duplicates skipped)"), "{}", again.stderr);

    for sandbox in [&source, &target] {
        assert_acme_code_at(sandbox, 1_700_000_000);
    }
    let code = target.run(&["code", "bank"]).ok();
    assert_eq!(code.trim(), oathtool(&["-b", "-c", "3", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"]));
}

#[test]
fn show_qr_moves_a_token_to_another_device() {
    let source = Sandbox::with_keystore_vault();
    source.run(&["add", SHA256_URI]).ok();
    let terminal = source.run(&["show-qr", "acme"]);
    assert!(terminal.stderr.contains("contains the token's secret"), "{}", terminal.stderr);
    let text = terminal.ok();
    assert!(text.contains('█') && text.contains("ACME Co:john.doe@email.com"));

    let png = source.path("moved.png");
    let svg = source.path("moved.svg");
    source.run(&["show-qr", "acme", "--png", png.to_str().unwrap(), "--svg", svg.to_str().unwrap()]).ok();
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    source.run(&["show-qr", "acme", "--png", png.to_str().unwrap()]).fails_with("File exists");

    let phone = Sandbox::with_keystore_vault();
    phone.run(&["add", "--qr", png.to_str().unwrap()]).ok();
    assert_acme_code_at(&phone, 1_700_000_000);
}

#[test]
fn rename_and_remove() {
    let sandbox = Sandbox::with_keystore_vault();
    sandbox.run(&["add", "otpauth://totp/GitHub:octocat?secret=JBSWY3DPEHPK3PXP&issuer=GitHub"]).ok();
    sandbox.run(&["add", "otpauth://totp/GitLab:octocat?secret=GEZDGNBVGY3TQOJQ&issuer=GitLab"]).ok();
    let renamed =
        sandbox.run(&["rename", "github", "mona", "--issuer", "GitHub Enterprise", "--group", "work"]);
    assert!(renamed.stderr.contains("Renamed to GitHub Enterprise:mona"), "{}", renamed.stderr);
    let json = sandbox.list_json();
    assert_eq!(
        (json[0]["issuer"].as_str(), json[0]["label"].as_str()),
        (Some("GitHub Enterprise"), Some("mona"))
    );
    assert_eq!(json[0]["group"], "work");
    sandbox.run(&["rename", "mona", "--issuer", ""]).ok();

    let before = sandbox.vault_bytes();
    sandbox.run_stdin(&["remove", "gitlab"], "y\n").fails_with("pass --yes");
    assert_eq!(sandbox.vault_bytes(), before, "nothing is removed without a confirmation");
    let removed = sandbox.run(&["remove", "gitlab", "--yes"]);
    assert!(removed.stderr.contains("Removed GitLab:octocat"), "{}", removed.stderr);
    let json = sandbox.list_json();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["issuer"], serde_json::Value::Null);
    sandbox.run(&["remove", "gitlab"]).fails_with("no token matches 'gitlab'");
}
