//! A real FreeRADIUS server (Debian `freeradius`) for the suite, set up as the proxy a company
//! puts in front of its second-factor server: it takes the VPN's Access-Requests on its own port
//! and secret, proxies every one to a home server (the Tessera listener a test starts on
//! [`FreeRadius::home_port`], with [`FreeRadius::home_secret`]), and relays the answers back, so
//! `State`, `Reply-Message` and reply attributes cross a real hop. Started once per test binary
//! in a temporary directory; a test holds [`FreeRadius::lease`] while its Tessera owns the home
//! port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::server_support::free_port;
use crate::support::watchdog;

/// The running proxy.
pub struct FreeRadius {
    /// Where the VPN sends its requests (UDP, 127.0.0.1).
    pub port: u16,
    /// The secret the VPN shares with FreeRADIUS.
    pub secret: &'static str,
    /// Where FreeRADIUS proxies to: the Tessera listener's port.
    pub home_port: u16,
    /// The secret FreeRADIUS shares with Tessera.
    pub home_secret: &'static str,
    log: PathBuf,
    lease: Mutex<()>,
    _process: Child,
    _watchdog: Child,
    _dir: tempfile::TempDir,
}

/// The suite's FreeRADIUS, started on first use.
pub fn freeradius() -> &'static FreeRadius {
    static FREERADIUS: OnceLock<FreeRadius> = OnceLock::new();
    FREERADIUS.get_or_init(start)
}

const SECRET: &str = "vpn-to-freeradius-secret-0123";
const HOME_SECRET: &str = "freeradius-to-tessera-secret-4567";

fn start() -> FreeRadius {
    assert!(
        std::path::Path::new("/usr/sbin/freeradius").exists(),
        "/usr/sbin/freeradius is missing: install Debian's freeradius (scripts/setup-debian.sh does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let home_port = free_port();
    let path = dir.path().display();
    let config = format!(
        r#"prefix = /usr
exec_prefix = /usr
sysconfdir = {path}
localstatedir = {path}
sbindir = /usr/sbin
logdir = {path}
raddbdir = {path}
radacctdir = {path}
name = freeradius
confdir = {path}
modconfdir = {path}
run_dir = {path}
db_dir = {path}
libdir = /usr/lib/freeradius
pidfile = {path}/freeradius.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {{
    auth = yes
}}
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}}
proxy_requests = yes
proxy server {{
    default_fallback = no
}}
home_server tessera {{
    type = auth
    ipaddr = 127.0.0.1
    port = {home_port}
    secret = {HOME_SECRET}
    response_window = 30
    zombie_period = 40
    revive_interval = 10
    status_check = none
}}
home_server_pool tessera {{
    type = fail-over
    home_server = tessera
}}
realm tessera {{
    auth_pool = tessera
    nostrip
}}
client vpn {{
    ipaddr = 127.0.0.1
    secret = {SECRET}
    require_message_authenticator = yes
}}
thread pool {{
    start_servers = 2
    max_servers = 4
    min_spare_servers = 1
    max_spare_servers = 4
}}
modules {{
}}
server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {port}
    }}
    authorize {{
        update control {{
            &Proxy-To-Realm := "tessera"
        }}
    }}
    authenticate {{
    }}
}}
"#
    );
    std::fs::write(dir.path().join("radiusd.conf"), config).unwrap();
    let log = dir.path().join("freeradius.log");
    let process = Command::new("/usr/sbin/freeradius")
        .args(["-f", "-x", "-d"])
        .arg(dir.path())
        .arg("-l")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let watchdog = watchdog(&[process.id()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let printed = std::fs::read_to_string(&log).unwrap_or_default();
        if printed.contains("Ready to process requests") {
            break;
        }
        assert!(Instant::now() < deadline, "FreeRADIUS did not start within 20 s:\n{printed}");
        std::thread::sleep(Duration::from_millis(50));
    }
    FreeRadius {
        port,
        secret: SECRET,
        home_port,
        home_secret: HOME_SECRET,
        log,
        lease: Mutex::new(()),
        _process: process,
        _watchdog: watchdog,
        _dir: dir,
    }
}

impl FreeRadius {
    /// The home port is this test's until the guard is dropped.
    pub fn lease(&self) -> MutexGuard<'_, ()> {
        self.lease.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What FreeRADIUS logged so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
