//! Windowed state per registered domain and per (client, domain), in bounded tables.

pub mod budget;
pub mod domain;
pub mod kmv;
pub mod lru;
pub mod partial;
pub mod transactions;
pub mod window;
