//! NetFlow v9 / IPFIX export of DNS transactions (docs/netflow.md).

pub mod encode;
pub mod exporter;
pub mod record;
