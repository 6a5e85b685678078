//! The shared fetch layer, between the controllers and the providers:
//! - one provider client and one set of credentials per store identity, shared by every
//!   ExternalSecret that uses the store ([`ClientCache`]);
//! - reads of the same secret coalesced, and distinct reads batched, per identity ([`Reader`]);
//! - a budget of calls per store that slows down when the provider throttles ([`Budget`]);
//! - two lanes, so ExternalSecrets that were never synced go before periodic refreshes.
mod budget;
mod clients;
mod reader;

pub use budget::Budget;
pub use clients::{CacheKey, ClientCache};
pub use reader::{BATCH, FIRST_WINDOW, REFRESH_WINDOW, Reader};

/// Who is waiting for a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// An ExternalSecret that was never synced, or whose spec changed: someone is waiting for it.
    First = 0,
    /// A periodic refresh: nothing changed but time.
    Refresh = 1,
}
