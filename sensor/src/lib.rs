//! dnsentry: a DNS tunneling and exfiltration sensor.
//!
//! The modules follow the data path: [`capture`] sources → [`decode`] (L2–L4) → [`dns`] (message
//! view) → [`features`] (compact [`record`]s) → [`aggregate`] shards over [`state`] → [`detect`]
//! (scoring) → [`output`]; [`reputation`] lists are looked up in the workers. [`pipeline`] wires the stages with threads and channels, the same for
//! [`replay`] (capture files) and [`live`] (AF_XDP sockets).

pub mod aggregate;
pub mod capture;
pub mod config;
pub mod decode;
pub mod detect;
pub mod dns;
pub mod domain;
pub mod eval;
pub mod features;
pub mod flow;
pub mod fuzzing;
pub mod hash;
pub mod live;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod privilege;
pub mod record;
pub mod reload;
pub mod replay;
pub mod reputation;
pub mod state;
pub mod tcp;
pub mod worker;
