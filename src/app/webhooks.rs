//! The webhook deliveries as an operator sees them: each endpoint's
//! backlog, the deliveries with their state and last error, and putting
//! failed ones back in line. Delivering is the daemon's
//! (`outbound::webhook`); this only reads and changes the store's record.

use super::{App, Error, Result};
use crate::clock::now_ms;
use crate::store::webhooks::{DeliveryFilter, DeliveryRow, EndpointBacklog};

/// The states a delivery can be in.
pub const STATES: &[&str] = &["pending", "delivered", "failed"];

impl App {
    /// Every endpoint the config or the store knows, with its backlog.
    /// An endpoint in the config that the daemon has not served yet shows
    /// with nothing pending.
    pub fn webhook_endpoints(&self) -> Result<Vec<EndpointBacklog>> {
        let mut known = if self.config.server.database.exists() {
            self.store()?.webhook_backlog()?
        } else {
            Vec::new()
        };
        for w in &self.config.webhooks {
            if !known.iter().any(|k| k.endpoint == w.id) {
                known.push(EndpointBacklog {
                    endpoint: w.id.clone(),
                    url: w.url.clone(),
                    configured: false,
                    pending: 0,
                    failed: 0,
                    delivered: 0,
                    oldest_pending_at: None,
                    last_error: None,
                });
            }
        }
        Ok(known)
    }

    /// Deliveries, newest first, of one endpoint and one state if given.
    pub fn webhook_deliveries(
        &self,
        endpoint: Option<&str>,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>> {
        if let Some(s) = state
            && !STATES.contains(&s)
        {
            return Err(Error::Invalid(format!(
                "{s:?} is not a delivery state ({})",
                STATES.join(", ")
            )));
        }
        Ok(self.store()?.webhook_deliveries(&DeliveryFilter {
            endpoint,
            state,
            limit,
        })?)
    }

    /// Puts the failed deliveries (of one endpoint, or all) back in line,
    /// due now; returns how many.
    pub fn retry_webhook_deliveries(&self, endpoint: Option<&str>) -> Result<usize> {
        if let Some(e) = endpoint
            && !self.config.webhooks.iter().any(|w| w.id == e)
        {
            return Err(Error::NotFound(format!(
                "no [[webhook]] {e:?} in the config"
            )));
        }
        let mut store = self.store()?;
        Ok(store.retry_webhook_deliveries(endpoint, now_ms())?)
    }
}
