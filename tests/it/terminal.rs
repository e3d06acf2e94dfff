//! A terminal (a tmux session) running a program a person would use at a prompt (pamtester,
//! baresip), read from its screen and typed into key by key, as that person would.

use std::process::Command;
use std::time::Duration;

/// A terminal session (tmux) running `command`, typed into as a person would.
pub struct Terminal {
    name: String,
}

impl Terminal {
    /// Starts `command` in a new 160×40 terminal; the screen stays after it exits (with
    /// `EXIT=<status>`).
    pub fn start(command: &str) -> Self {
        static TERMINALS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let number = TERMINALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tessera-e2e-{}-{number}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "40",
                "-s",
                &name,
                &format!("{command}; echo EXIT=$?; sleep 60"),
            ])
            .status()
            .expect("tmux (Debian tmux): run scripts/setup-debian.sh");
        assert!(status.success());
        Self { name }
    }

    /// What the screen shows now.
    pub fn screen(&self) -> String {
        let output = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.name]).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the screen shows `text`; the screen.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(std::time::Instant::now() < deadline, "waited for {text:?}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `text` has appeared `times` times since the terminal started (its scrollback
    /// too); everything it printed.
    pub fn wait_for_times(&self, text: &str, times: usize) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let output = Command::new("tmux")
                .args(["capture-pane", "-p", "-S", "-", "-t", &self.name])
                .output()
                .unwrap();
            let printed = String::from_utf8_lossy(&output.stdout).into_owned();
            if printed.matches(text).count() >= times {
                return printed;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited for {text:?} ×{times}; the terminal:\n{printed}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `text` key by key, without Enter.
    pub fn type_keys(&self, text: &str) {
        let typed = Command::new("tmux").args(["send-keys", "-t", &self.name, "-l", text]).status().unwrap();
        assert!(typed.success());
    }

    /// Types `text`, then Enter.
    pub fn type_line(&self, text: &str) {
        if !text.is_empty() {
            let typed =
                Command::new("tmux").args(["send-keys", "-t", &self.name, "-l", text]).status().unwrap();
            assert!(typed.success());
        }
        let entered = Command::new("tmux").args(["send-keys", "-t", &self.name, "Enter"]).status().unwrap();
        assert!(entered.success());
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.name]).status();
    }
}
