//! What the server allows each connection and each client: the `serve` flags
//! ([`expansa_commands::ServeLimits`], with their defaults and maximums) as the API uses them.

use expansa_commands::ServeLimits;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// The server's limits (docs/api.md, "Limits").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time to send a request's line and headers, from when the connection opens or its previous
    /// answer was sent (so also the keep-alive idle time), and to leave an answer unread; the
    /// connection is closed after.
    pub header_timeout: Duration,
    /// Time from a request's headers to its answer, reading its body included (408 after).
    pub request_timeout: Duration,
    /// Largest request body in bytes (413 above).
    pub max_body: usize,
    /// Connections open at once; more wait in the listen queue.
    pub max_connections: usize,
    /// Connections open at once from one IP address; more are closed at once.
    pub max_connections_per_client: usize,
    /// Requests per second from one IP address, sustained (429 above).
    pub rate_per_second: u32,
    /// Requests one IP address may send at once above the sustained rate.
    pub rate_burst: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::from(&ServeLimits::DEFAULT)
    }
}

impl From<&ServeLimits> for Limits {
    fn from(f: &ServeLimits) -> Limits {
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let small = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Limits {
            header_timeout: Duration::from_secs(f.header_timeout),
            request_timeout: Duration::from_secs(f.request_timeout),
            max_body: count(f.max_body),
            max_connections: count(f.max_connections),
            max_connections_per_client: count(f.max_connections_per_client),
            rate_per_second: small(f.rate_limit),
            rate_burst: small(f.rate_burst),
        }
    }
}

impl Limits {
    /// The per-client request limiter (governor's GCRA, keyed by the peer's IP address).
    pub(crate) fn limiter(&self) -> DefaultKeyedRateLimiter<IpAddr> {
        let rate = NonZeroU32::new(self.rate_per_second.max(1)).expect("at least 1");
        let burst = NonZeroU32::new(self.rate_burst.max(1)).expect("at least 1");
        RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
    }
}
