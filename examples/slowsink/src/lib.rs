//! slowsink as a library: the forwarding driver ([`forward`]), the flags that choose
//! the SDK's overflow policy ([`policy`]) and a loopback receiver that can be paused
//! ([`receiver`]), for the binary (`main.rs`) and the tests.

pub mod forward;
pub mod policy;
pub mod receiver;
