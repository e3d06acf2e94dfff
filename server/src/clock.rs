//! Unix time as the database stores it: seconds and milliseconds as `i64`, and the conversions
//! between the verifier's `u64` seconds and the columns' `i64` (saturating, never panicking).

use std::time::{SystemTime, UNIX_EPOCH};

pub use tessera_core::otp::unix_now;

/// Milliseconds since the Unix epoch (audit records are dated to the millisecond).
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch, as a column stores them.
pub fn now_i64() -> i64 {
    i64_of(unix_now())
}

/// Seconds for a column (saturating at `i64::MAX`).
pub fn i64_of(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Seconds from a column (a negative value reads as 0).
pub fn u64_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Unix seconds as people read them: "5 Dec 2026, 15:08 UTC".
pub fn readable_utc(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%-d %b %Y, %H:%M UTC").to_string())
        .unwrap_or_else(|_| "unknown".into())
}
