//! Prometheus metrics (`GET /metrics`, text exposition format): validations by result, their
//! latency, lockouts, pushes and voice calls by outcome, open device connections, notification channels held,
//! and FCM/APNs wake-ups.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WakeLabel {
    service: &'static str,
    result: &'static str,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    validations: Family<ResultLabel, Counter>,
    latency: Histogram,
    lockouts: Counter,
    pushes: Family<ResultLabel, Counter>,
    calls: Family<ResultLabel, Counter>,
    devices: Gauge,
    wakeups: Family<WakeLabel, Counter>,
    one_swipes: Family<ResultLabel, Counter>,
    hub_channels: Gauge,
}

impl Metrics {
    /// Registers the metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tessera");
        let validations = Family::<ResultLabel, Counter>::default();
        registry.register("validations", "Validation requests by result", validations.clone());
        let latency = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        registry.register(
            "validation_duration_seconds",
            "Validation latency inside the server",
            latency.clone(),
        );
        let lockouts = Counter::default();
        registry.register("lockouts", "Tokens locked by consecutive failures", lockouts.clone());
        let pushes = Family::<ResultLabel, Counter>::default();
        registry.register(
            "pushes",
            "Push requests by outcome (sent, refused, approved, denied)",
            pushes.clone(),
        );
        let devices = Gauge::default();
        registry.register(
            "push_device_connections",
            "Devices holding the push channel open",
            devices.clone(),
        );
        let wakeups = Family::<WakeLabel, Counter>::default();
        registry.register(
            "push_wakeups",
            "FCM and APNs wake-ups by service and result (sent, unregistered, failed, not_configured)",
            wakeups.clone(),
        );
        let one_swipes = Family::<ResultLabel, Counter>::default();
        registry.register(
            "oneswipe_redemptions",
            "One Swipe codes presented, by result (accept, or the reason for the reject)",
            one_swipes.clone(),
        );
        let calls = Family::<ResultLabel, Counter>::default();
        registry.register(
            "voice_calls",
            "Voice tokens' calls by how they ended the login (approved, or the reason it was denied)",
            calls.clone(),
        );
        let hub_channels = Gauge::default();
        registry.register(
            "push_hub_channels",
            "Notification channels held for waiting devices and login clients (bounded by the waiters)",
            hub_channels.clone(),
        );
        Self {
            registry,
            validations,
            latency,
            lockouts,
            pushes,
            devices,
            wakeups,
            one_swipes,
            calls,
            hub_channels,
        }
    }

    /// Sets the number of notification channels held now.
    pub fn hub_channels(&self, count: usize) {
        self.hub_channels.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Counts a validation and its latency.
    pub fn validation(&self, result: &'static str, seconds: f64) {
        self.validations.get_or_create(&ResultLabel { result }).inc();
        self.latency.observe(seconds);
    }

    /// Counts tokens that became locked.
    pub fn lockouts(&self, count: u64) {
        self.lockouts.inc_by(count);
    }

    /// Counts a One Swipe redemption by result.
    pub fn one_swipe(&self, result: &'static str) {
        self.one_swipes.get_or_create(&ResultLabel { result }).inc();
    }

    /// Counts a voice token's call by how it ended its login.
    pub fn call(&self, result: &'static str) {
        self.calls.get_or_create(&ResultLabel { result }).inc();
    }

    /// Counts a push event.
    pub fn push(&self, result: &'static str) {
        self.pushes.get_or_create(&ResultLabel { result }).inc();
    }

    /// A device connection opened (+1) or closed (-1).
    pub fn device_connections(&self, delta: i64) {
        self.devices.inc_by(delta);
    }

    /// Counts a wake-up through `service` (`fcm` or `apns`).
    pub fn wakeup(&self, service: &'static str, result: &'static str) {
        self.wakeups.get_or_create(&WakeLabel { service, result }).inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
