//! The DNS message view: zero-copy parsing and name decompression.

mod error;
pub mod name;
pub mod view;

pub use error::DnsError;
pub use name::{read_name, skip_name, NameBuf};
pub use view::{Edns, Header, Message, Question, Record, Section};
