//! `[relay]`: retry timing and the queue lifetime of outgoing mail.

#[allow(unused_imports)]
use super::*;

/// Retry policy of the relay (`[relay]`).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The first wait after a temporary failure; doubled each time …
    pub retry_initial: Duration,
    /// … up to this.
    pub retry_max: Duration,
    /// After this long in the queue, a mail that still fails temporarily has failed.
    pub queue_lifetime: Duration,
    /// How often the relay looks for due mail.
    pub poll_interval: Duration,
}

/// `[relay]`, or its defaults.
pub(super) fn read_relay(ctx: &mut Ctx, root: &mut Section) -> RelayConfig {
    let secs = Duration::from_secs;
    let mut relay = RelayConfig {
        retry_initial: secs(300),
        retry_max: secs(3600),
        queue_lifetime: secs(5 * 86_400),
        poll_interval: secs(1),
    };
    if let Some(mut section) = table_section(ctx, root, "relay") {
        relay.retry_initial = section.duration(
            ctx,
            "retry_initial",
            relay.retry_initial,
            Duration::from_millis(100)..secs(86_401),
        );
        relay.retry_max = section.duration(
            ctx,
            "retry_max",
            relay.retry_max,
            Duration::from_millis(100)..secs(7 * 86_400 + 1),
        );
        relay.queue_lifetime = section.duration(
            ctx,
            "queue_lifetime",
            relay.queue_lifetime,
            secs(1)..secs(60 * 86_400 + 1),
        );
        relay.poll_interval = section.duration(
            ctx,
            "poll_interval",
            relay.poll_interval,
            Duration::from_millis(10)..secs(61),
        );
        section.finish(ctx);
    }
    relay
}
