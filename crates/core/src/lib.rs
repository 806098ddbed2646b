//! Shared kernel of ecap: configuration, the error envelope, auth, the database
//! layer and migrations, the HTTP foundation, and the ports services use to reach
//! each other.

pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod extract;
pub mod http;
pub mod lease;
pub mod migrate;
pub mod openapi;
pub mod ports;
pub mod revocation;
pub mod session;
pub mod streams;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ApiError, ApiResult};
