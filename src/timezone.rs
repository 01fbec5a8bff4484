//! IANA time zone names, as Dust validates them.
//!
//! Dust refuses a message whose `context.timezone` is not an IANA name (400 "Invalid timezone"),
//! so a wrong `DUST_TIMEZONE` would fail every question. The server checks it at start against
//! this list, and the simulator validates messages with it.

use std::{collections::HashSet, sync::LazyLock};

/// IANA zone names and links from tzdata 2025b (`Z` and `L` lines of `tzdata.zi`).
static TIMEZONES: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("timezones.txt").lines().collect());

/// Whether `name` is an IANA time zone name (case-sensitive, as Dust checks it).
#[must_use]
pub fn is_iana_timezone(name: &str) -> bool {
    TIMEZONES.contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_and_links_pass_and_others_do_not() {
        for ok in [
            "UTC",
            "Europe/Paris",
            "America/New_York",
            "Asia/Kolkata",
            "Etc/GMT+2",
        ] {
            assert!(is_iana_timezone(ok), "{ok}");
        }
        for bad in ["", "utc", "Europe/Pariss", "CET ", "+02:00", "Paris"] {
            assert!(!is_iana_timezone(bad), "{bad}");
        }
    }
}
