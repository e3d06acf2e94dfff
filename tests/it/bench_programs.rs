//! The benchmark programs stay runnable: each runs briefly against a real server and must check
//! every answer and print its figures (the figures themselves come from `scripts/bench.sh`).

use std::process::Command;
use std::time::Duration;

use crate::support::{binary, output_within};

fn run(program: &str, args: &[&str]) -> String {
    let output = output_within(Command::new(binary(program)).args(args), Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn radiusbench_checks_every_signed_answer_beside_http() {
    let server = binary("tessera-server");
    let args = ["--seconds", "1", "--users", "8", "--concurrency", "2", "--server", server.to_str().unwrap()];
    let out = run("tessera-radiusbench", &args);
    assert!(
        out.contains("HTTP /api/v1/validate: ") && out.contains("RADIUS Access-Request (PAP, one round): "),
        "{out}"
    );
    assert_eq!(out.matches("0 wrong answers, 0 unanswered").count(), 2, "{out}");
}

#[test]
fn loadgen_checks_every_answer_and_reports_throughput() {
    let server = binary("tessera-server");
    let server = server.to_str().unwrap();
    let args = ["--seconds", "1", "--users", "8", "--concurrency", "2", "--server", server];
    let out = run("tessera-loadgen", &args);
    assert!(out.contains("validations/s") && out.contains("p99"), "{out}");
    assert!(out.contains("0 wrong answers, 0 HTTP errors"), "{out}");
    let out = run("tessera-loadgen", &[&args[..], &["--application-key"]].concat());
    assert!(out.contains("with 2 connections and an application key"), "{out}");
    assert!(out.contains("0 wrong answers, 0 HTTP errors"), "{out}");
}

#[test]
fn pushbench_measures_both_legs_with_every_device_connected() {
    let server = binary("tessera-server");
    let server = server.to_str().unwrap();
    let out = run("tessera-pushbench", &["--devices", "40", "--round-trips", "20", "--server", server]);
    assert!(out.contains("40 idle device channels (SSE) held by one server"), "{out}");
    assert!(out.contains("KiB per connection"), "{out}");
    assert!(out.contains("20 push logins"), "{out}");
    for leg in ["trigger -> device holds", "approval -> waiting login client sees approved"] {
        assert!(out.lines().any(|line| line.contains(leg) && line.contains("p99")), "{leg}: {out}");
    }
}

#[test]
fn smsbench_measures_latency_throughput_and_the_simulation() {
    let server = binary("tessera-server");
    let server = server.to_str().unwrap();
    let args =
        ["--logins", "10", "--messages", "60", "--concurrency", "8", "--users", "200", "--server", server];
    let out = run("tessera-smsbench", &args);
    assert!(
        out.contains("message at the gateway (SQLite, 1 replica(s), 10 logins one at a time): p50"),
        "{out}"
    );
    assert!(out.contains("each message arrived exactly once"), "{out}");
    assert!(out.contains("simulation (200 users") && out.contains("pre-loaded codes"), "{out}");
}

#[test]
fn dirbench_compares_directory_and_local_passwords() {
    let server = binary("tessera-server");
    let args = ["--users", "3", "--logins", "6", "--concurrency", "2", "--seconds", "1", "--server"];
    let out = run("tessera-dirbench", &[&args[..], &[server.to_str().unwrap()]].concat());
    for line in [
        "directory password, one at a time, 6 logins: p50",
        "local (Argon2id) password, one at a time, 6 logins: p50",
        "directory password, 2 at a time for 1 s:",
        "a name no directory knows: p50",
        "a directory user's wrong password: p50",
    ] {
        assert!(out.contains(line), "{line:?} missing: {out}");
    }
}

#[test]
fn portalbench_times_and_weighs_the_portal_pages() {
    let server = binary("tessera-server");
    let out = run(
        "tessera-portalbench",
        &["--requests", "20", "--devices", "2", "--server", server.to_str().unwrap()],
    );
    for line in [
        "style sheet ",
        "sign-in form: ",
        "devices page: ",
        "20 requests: p50",
        "a refused sign-in (a whole validation, Argon2id included), 20 requests: p50",
    ] {
        assert!(out.contains(line), "{line:?} missing: {out}");
    }
}

#[test]
fn scanbench_reports_every_decoder_in_every_regime() {
    let out = run("tessera-scanbench", &["--frames", "12"]);
    for regime in ["webcam 640×480", "webcam 1280×720", "large code 1280×720", "blurred VGA 640×480"] {
        for decoder in [
            "shipped: the looks below in order",
            "look at ⅓×",
            "look at 1×, zoomed",
            "look at 1×, sharpened, zoomed",
            "look at 1×, not zoomed (not shipped)",
            "look at 2×, sharpened (not shipped)",
            "before issue 20",
            "rxing 0.9 alone",
            "rqrr 0.11 |",
        ] {
            let row = out.lines().find(|line| line.contains(decoder) && line.contains(regime));
            let row = row.unwrap_or_else(|| panic!("no {decoder} row for {regime}: {out}"));
            assert!(row.contains("/10 = ") && row.contains("/2 |"), "10 code frames, 2 without: {row}");
        }
    }
    assert!(out.contains("frames/s"), "{out}");
}

#[test]
fn desktopbench_times_the_first_code_and_reads_the_apps_memory() {
    crate::support::require_secret_service();
    binary("tessera-desktop");
    let out = run("tessera-desktopbench", &["--runs", "2", "--tokens", "3", "--idle", "1"]);
    let start = out.lines().find(|line| line.starts_with("start to first code on screen (3 tokens, 2 runs"));
    assert!(start.is_some_and(|line| line.contains("median")), "{out}");
    let memory = out.lines().find(|line| line.starts_with("idle memory after 1 s: RSS")).unwrap_or_default();
    assert!(memory.contains("tessera-desktop") && memory.contains("WebKitWebProces"), "{out}");
}

#[test]
fn voicebench_answers_each_call_keys_the_code_and_times_both_legs() {
    let server = binary("tessera-server");
    let out = run("tessera-voicebench", &["--logins", "5", "--server", server.to_str().unwrap()]);
    assert!(out.contains("SQLite: 5 voice logins, one at a time"), "{out}");
    for leg in [
        "login -> validate answers the voice challenge: p50",
        "login -> phone rings (INVITE received): p50",
        "last digit keyed -> waiting login client sees approved: p50",
    ] {
        let line = out.lines().find(|line| line.contains(leg)).unwrap_or_else(|| panic!("{leg}: {out}"));
        assert!(line.contains("p95") && line.contains("p99") && line.contains("max"), "{line}");
    }
}
