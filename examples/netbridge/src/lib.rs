//! netbridge as a library: the driver ([`driver::Bridges`]), its netlink calls
//! ([`links::Links`]) and its state ([`state`]), for the binary (`main.rs`) and for
//! the tests that serve the driver in-process (`tests/harness.rs`, which runs it
//! under the SDK's harness).

pub mod driver;
pub mod links;
pub mod state;
