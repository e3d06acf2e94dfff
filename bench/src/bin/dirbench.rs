//! `tessera-dirbench`: logins whose password a company directory checks, against a real OpenLDAP
//! (`scripts/lib/slapd.sh`, Debian's slapd) and a real `tessera-server`, next to the same logins
//! with a password Tessera checks itself (Argon2id).
//!
//! Each login sends the right password and no code for a user without a token, so what is timed
//! is the password check and the answer (`reject`, reason `no_token`, audited). The directory's
//! check is a connection with StartTLS, the service account's bind, a search and the user's bind.
//!
//! 1. **Latency**: `--logins` one after another, p50/p99, directory and local.
//! 2. **Throughput**: `--concurrency` at a time for `--seconds`, logins per second.
//! 3. **A name nobody knows**, with directories configured: p50 next to a real user's wrong
//!    password, to show the answer does not tell which names exist.
//!
//! Every answer is checked; anything unexpected fails the run.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use tessera_bench::{Server, ServerOptions, free_port, histogram, percentiles, record};

/// Directory passwords against local ones: latency, throughput, unknown names.
#[derive(Parser)]
#[command(name = "tessera-dirbench", version, about)]
struct Args {
    /// Users in the directory and in Tessera
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Logins measured one after another, per kind of password
    #[arg(long, default_value_t = 500)]
    logins: usize,
    /// Logins in flight at once for the throughput
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds of load per kind of password
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// tessera-server binary [default: next to this program]
    #[arg(long)]
    server: Option<PathBuf>,
}

/// A slapd process for the run, stopped when dropped.
struct Slapd {
    process: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tessera_bench::main("tessera-dirbench", run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let http = tessera_bench::http_client(args.concurrency * 2)?;
    let slapd = start_slapd(args.users)?;
    let config = format!(
        "[[directory]]\nname = \"corp\"\nurl = \"{}\"\nstarttls = true\n\
         bind_dn = \"cn=tessera,ou=services,dc=example,dc=com\"\nbind_password_file = \"{}\"\n\
         base_dn = \"ou=people,dc=example,dc=com\"\nuser_filter = \"(&(objectClass=inetOrgPerson)(uid={{username}}))\"\n\
         ca_file = \"{}\"\n",
        slapd.url,
        slapd.dir.join("service.pw").display(),
        slapd.dir.join("cert.pem").display()
    );
    let server = Server::start(
        ServerOptions { database_url: None, binary: args.server.clone(), config: &config },
        &http,
    )
    .await?;
    for index in 0..args.users {
        let name = format!("dir{index}");
        check(&login(&http, &server.base, &name, "directory-pw").await?, "first_login", &name)?;
        let local = format!("local{index}");
        let user = json!({ "username": local, "password": "local-pw" });
        server.admin(&http, reqwest::Method::POST, "/api/v1/users", Some(&user)).await?;
    }
    println!("{} directory users (StartTLS to slapd on loopback) and {} local users", args.users, args.users);
    for (kind, prefix, password) in
        [("directory", "dir", "directory-pw"), ("local (Argon2id)", "local", "local-pw")]
    {
        let mut latency = histogram()?;
        for round in 0..args.logins {
            let name = format!("{prefix}{}", round % args.users);
            let started = Instant::now();
            let answer = login(&http, &server.base, &name, password).await?;
            record(&mut latency, started.elapsed());
            check(&answer, "invalid_credentials", &name)?;
        }
        println!("{kind} password, one at a time, {} logins: {}", args.logins, percentiles(&latency));
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let workers: Vec<_> = (0..args.concurrency)
            .map(|worker| {
                let (http, base, done) = (http.clone(), server.base.clone(), done.clone());
                let (users, stride) = (args.users, args.concurrency);
                let password = password.to_owned();
                let prefix = prefix.to_owned();
                tokio::spawn(async move {
                    let mut round = worker;
                    while Instant::now() < deadline {
                        let name = format!("{prefix}{}", round % users);
                        let answer = login(&http, &base, &name, &password).await?;
                        check(&answer, "invalid_credentials", &name)?;
                        done.fetch_add(1, Ordering::Relaxed);
                        round += stride;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for worker in workers {
            worker.await.map_err(|e| e.to_string())??;
        }
        let rate = done.load(Ordering::Relaxed) as f64 / args.seconds as f64;
        println!(
            "{kind} password, {} at a time for {} s: {rate:.0} logins/s",
            args.concurrency, args.seconds
        );
    }
    let mut unknown = histogram()?;
    let mut wrong = histogram()?;
    for round in 0..args.logins.min(200) {
        let started = Instant::now();
        let answer = login(&http, &server.base, &format!("nobody{round}"), "directory-pw").await?;
        record(&mut unknown, started.elapsed());
        check(&answer, "invalid_credentials", "an unknown name")?;
        let name = format!("dir{}", round % args.users);
        let started = Instant::now();
        let answer = login(&http, &server.base, &name, "not-the-password").await?;
        record(&mut wrong, started.elapsed());
        check(&answer, "invalid_credentials", &name)?;
        if round % 3 == 2 {
            unlock(&http, &server, &name).await?;
        }
    }
    println!("a name no directory knows: {}", percentiles(&unknown));
    println!("a directory user's wrong password: {}", percentiles(&wrong));
    drop(slapd);
    Ok(())
}

/// The right password, no code: the password is checked, then the login is refused for want of
/// a token (or a first login creates the user).
async fn login(http: &reqwest::Client, base: &str, username: &str, password: &str) -> Result<Value, String> {
    let response = http
        .post(format!("{base}/api/v1/validate"))
        .json(&json!({ "username": username, "password": password, "passcode": "123456" }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

fn check(answer: &Value, reason: &str, who: &str) -> Result<(), String> {
    let wanted = if reason == "first_login" { "invalid_credentials" } else { reason };
    if answer["result"] != "reject" || answer["reason"] != wanted {
        return Err(format!("{who}: unexpected answer {answer}"));
    }
    Ok(())
}

async fn unlock(http: &reqwest::Client, server: &Server, username: &str) -> Result<(), String> {
    server.admin(http, reqwest::Method::POST, &format!("/api/v1/users/{username}/unlock"), None).await?;
    Ok(())
}

/// A directory with `users` people (`dir0`…, password `directory-pw`), StartTLS with a fresh CA.
fn start_slapd(users: usize) -> Result<Slapd, String> {
    let dir = std::env::temp_dir().join(format!("tessera-dirbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let certificate =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("cert.pem"), certificate.cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("key.pem"), certificate.signing_key.serialize_pem())
        .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("service.pw"), "service-pw\n").map_err(|e| e.to_string())?;
    let (plain, secure) = (free_port()?, free_port()?);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib/slapd.sh");
    let process = Command::new(&script)
        .arg(&dir)
        .args([plain.to_string(), secure.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e} (Debian's slapd and ldap-utils)", script.display()))?;
    let slapd = Slapd { process, url: format!("ldap://127.0.0.1:{plain}"), dir };
    let mut people = String::new();
    for index in 0..users {
        people.push_str(&format!(
            "\ndn: uid=dir{index},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: dir{index}\n\
             cn: Directory User {index}\nsn: user\nuserPassword: directory-pw\n"
        ));
    }
    for _ in 0..200 {
        if let Ok(base) = std::fs::read_to_string(slapd.dir.join("base.ldif"))
            && ldapadd(&slapd.url, &format!("{base}{people}"))?
        {
            return Ok(slapd);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("slapd did not start".into())
}

/// `ldapadd` as the directory's administrator; false while slapd is not answering yet.
fn ldapadd(url: &str, ldif: &str) -> Result<bool, String> {
    use std::io::Write;
    let mut child = Command::new("/usr/bin/ldapadd")
        .args(["-x", "-H", url, "-D", "cn=admin,dc=example,dc=com", "-w", "admin-pw"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ldapadd: {e}"))?;
    child.stdin.take().ok_or("ldapadd's input")?.write_all(ldif.as_bytes()).map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        return Ok(true);
    }
    let error = String::from_utf8_lossy(&output.stderr);
    if error.contains("Can't contact LDAP server") {
        return Ok(false);
    }
    Err(format!("ldapadd: {error}"))
}
