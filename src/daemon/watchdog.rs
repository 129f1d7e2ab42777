//! systemd's watchdog (`WatchdogSec=`): when systemd asks for keep-alives
//! (`WATCHDOG_USEC`, read by sd-notify together with `WATCHDOG_PID`),
//! `WATCHDOG=1` every half interval, but only while the loops that keep
//! mail moving show they are alive: the store writer answers a ping (it
//! takes it off its queue between batches, so a commit that never returns
//! stops the keep-alives) and the relay's loop has turned within the
//! interval. A daemon wedged in either is then restarted by systemd
//! (`Restart=on-failure`), as one whose writer died is (exit 70).

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::store::Pinger;

/// Sends keep-alives until shutdown; returns at once without a watchdog.
pub async fn run(writer: Pinger, mut shutdown: watch::Receiver<bool>) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = interval / 2;
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "systemd watchdog: keep-alives while the store writer and the relay answer"
    );
    let since = Instant::now();
    let mut withheld: Option<&'static str> = None;
    loop {
        let tick = tokio::time::Instant::now();
        let problem = check(&writer, period, interval, since).await;
        match problem {
            None => {
                super::notify_systemd(&[sd_notify::NotifyState::Watchdog]);
                if withheld.take().is_some() {
                    tracing::info!("systemd watchdog: the loops answer again; keep-alives resumed");
                }
            }
            Some(why) if withheld != Some(why) => {
                tracing::error!(
                    "systemd watchdog: keep-alive withheld: {why}; systemd restarts jobmail if it lasts"
                );
                withheld = Some(why);
            }
            Some(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep_until(tick + period) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// What keeps the next keep-alive back, if anything. The relay gets one
/// interval from the start for its first turn.
async fn check(
    writer: &Pinger,
    wait: Duration,
    interval: Duration,
    since: Instant,
) -> Option<&'static str> {
    let answered = tokio::time::timeout(wait, writer.ping())
        .await
        .unwrap_or(false);
    if !answered {
        return Some("the store writer does not answer");
    }
    let relay = match crate::metrics::RELAY_HEARTBEAT.age() {
        Some(age) => age < interval,
        None => since.elapsed() < interval,
    };
    if !relay {
        return Some("the relay loop has not turned");
    }
    None
}
