//! `tessera-portalbench`: how fast the self-service portal's pages come back from a real
//! `tessera-server` (SQLite) on loopback, and how much each weighs with its style sheet and script.
//!
//! The user signs in once (the one Argon2id check is not timed), then each page is fetched
//! `--requests` times one after another: the sign-in form, the devices page of a user with
//! `--devices` devices and a full list of recent sign-ins, and the sign-in form's answer to a
//! wrong passcode (which runs a whole validation, Argon2id included, and is shown for scale). The
//! times are what the client saw, so they bound the server's own time from above.
//!
//! Every answer is checked; anything unexpected fails the run.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use serde_json::json;
use tessera_bench::{Server, ServerOptions, histogram, percentiles, record};
use tessera_core::otpauth::OtpAuth;

/// Portal page times and weights.
#[derive(Parser)]
#[command(name = "tessera-portalbench", version, about)]
struct Args {
    /// Requests per page
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Devices of the signed-in user
    #[arg(long, default_value_t = 5)]
    devices: usize,
    /// tessera-server binary [default: next to this program]
    #[arg(long)]
    server: Option<PathBuf>,
}

/// A visitor's cookies, kept by hand (the portal's are `Secure`, which the client would not send
/// over plain loopback HTTP).
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn header(&self) -> String {
        self.0.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all("set-cookie") {
            let Some((name, value)) = set.to_str().ok().and_then(|s| s.split(';').next()?.split_once('='))
            else {
                continue;
            };
            self.0.retain(|(kept, _)| kept != name);
            if !value.is_empty() {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tessera_bench::main("tessera-portalbench", run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let server = Server::start(
        ServerOptions {
            database_url: None,
            binary: args.server.clone(),
            config: "[portal]\nenabled = true\nmax_devices = 50\n",
        },
        &http,
    )
    .await?;
    let user = json!({ "username": "ann", "password": "2580" });
    server.admin(&http, reqwest::Method::POST, "/api/v1/users", Some(&user)).await?;
    let mut uri = String::new();
    for index in 0..args.devices.max(1) {
        let token = json!({ "kind": "hotp", "description": format!("device {index}") });
        let enrolled =
            server.admin(&http, reqwest::Method::POST, "/api/v1/users/ann/tokens", Some(&token)).await?;
        if index == 0 {
            uri = enrolled.get("otpauth_uri").and_then(|u| u.as_str()).ok_or("no otpauth_uri")?.to_owned();
        }
    }
    let otp = OtpAuth::parse(&uri).map_err(|e| e.to_string())?.otp;
    let code = |counter: u64| -> Result<String, String> {
        let method = match *otp.method() {
            tessera_core::otp::OtpMethod::Hotp { algorithm, digits, .. } => {
                tessera_core::otp::OtpMethod::Hotp { algorithm, digits, counter }
            }
            _ => return Err("not an HOTP token".into()),
        };
        Ok(method.code_at(otp.secret(), 0).expose().to_owned())
    };
    let base = server.base.clone();
    let mut jar = Jar::default();
    let form = sign_in_form(&http, &base, &mut jar).await?;
    for round in 0..8 {
        let wrong = [
            ("form_token", form.as_str()),
            ("username", "ann"),
            ("password", "2580"),
            ("passcode", "000000"),
        ];
        post(&http, &base, &jar, &wrong).await?;
        if round % 3 == 2 {
            server.admin(&http, reqwest::Method::POST, "/api/v1/users/ann/unlock", None).await?;
        }
    }
    let signed =
        [("form_token", form.as_str()), ("username", "ann"), ("password", "2580"), ("passcode", &code(0)?)];
    let answer = post(&http, &base, &jar, &signed).await?;
    if answer.status() != reqwest::StatusCode::SEE_OTHER {
        return Err(format!("signing in answered {}", answer.status()));
    }
    jar.keep(&answer);
    let css = fetch(&http, &format!("{base}/portal/portal.css"), "").await?.len();
    let js = fetch(&http, &format!("{base}/portal/portal.js"), "").await?.len();
    println!("style sheet {css} bytes, script {js} bytes (the script only on pages that wait)");

    let signed_in = jar.header();
    let anonymous = Jar::default().header();
    for (page, cookies, expect) in [
        ("sign-in form", &anonymous, "<h1 id=\"heading\">Sign in</h1>"),
        ("devices page", &signed_in, "Your devices"),
    ] {
        let mut latency = histogram()?;
        let mut bytes = 0;
        for _ in 0..args.requests {
            let started = Instant::now();
            let body = fetch(&http, &format!("{base}/portal"), cookies).await?;
            record(&mut latency, started.elapsed());
            if !body.contains(expect) {
                return Err(format!("{page}: unexpected page {body}"));
            }
            bytes = body.len();
        }
        println!(
            "{page}: {bytes} bytes of HTML, {} bytes with its style sheet; {} requests: {}",
            bytes + css,
            args.requests,
            percentiles(&latency)
        );
    }
    let mut refused = histogram()?;
    let rounds = args.requests.min(100);
    let mut fresh = Jar::default();
    let form = sign_in_form(&http, &base, &mut fresh).await?;
    for round in 0..rounds {
        let wrong = [
            ("form_token", form.as_str()),
            ("username", "ann"),
            ("password", "2580"),
            ("passcode", "000000"),
        ];
        let started = Instant::now();
        let answer = post(&http, &base, &fresh, &wrong).await?;
        record(&mut refused, started.elapsed());
        if answer.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Err(format!("a wrong passcode answered {}", answer.status()));
        }
        if round % 5 == 4 {
            server.admin(&http, reqwest::Method::POST, "/api/v1/users/ann/unlock", None).await?;
        }
    }
    println!(
        "a refused sign-in (a whole validation, Argon2id included), {rounds} requests: {}",
        percentiles(&refused)
    );
    Ok(())
}

/// Opens the sign-in form: its token (its cookie goes into `jar`).
async fn sign_in_form(http: &reqwest::Client, base: &str, jar: &mut Jar) -> Result<String, String> {
    let response = http.get(format!("{base}/portal")).send().await.map_err(|e| e.to_string())?;
    jar.keep(&response);
    let body = response.text().await.map_err(|e| e.to_string())?;
    let token = body.split("name=\"form_token\" value=\"").nth(1).and_then(|rest| rest.split('"').next());
    token.map(str::to_owned).ok_or_else(|| format!("no form token in {body}"))
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    jar: &Jar,
    form: &[(&str, &str)],
) -> Result<reqwest::Response, String> {
    http.post(format!("{base}/portal/sign-in"))
        .header("cookie", jar.header())
        .header("origin", base)
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await
        .map_err(|e| e.to_string())
}

async fn fetch(http: &reqwest::Client, url: &str, cookies: &str) -> Result<String, String> {
    let mut request = http.get(url);
    if !cookies.is_empty() {
        request = request.header("cookie", cookies);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()));
    }
    response.text().await.map_err(|e| e.to_string())
}
