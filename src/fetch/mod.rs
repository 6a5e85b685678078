//! The shared fetch layer: one provider client and one set of credentials per store identity,
//! shared by every ExternalSecret that uses the store.
mod clients;

pub use clients::{CacheKey, ClientCache};
