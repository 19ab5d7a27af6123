//! filelog as a library: the options ([`options`]), the stored line ([`record`]), the
//! rotated files ([`store`]), reading them back ([`read`]) and the log driver
//! ([`driver`]), for the binary (`main.rs`) and the tests.

pub mod driver;
pub mod options;
pub mod read;
pub mod record;
pub mod store;
