//! sshfs as a library: the volume driver ([`driver::SshfsDriver`]), the options of
//! `docker volume create` ([`options`]), sshfs's command line and mount
//! ([`sshfs`]), the supervised child ([`process`]), the kernel's view of mounts
//! ([`mountinfo`]), the container checks ([`checks`]) and the errors users read
//! ([`error`]); for the binary (`main.rs`) and for the tests, which serve the driver
//! in-process and package it for the SDK's harness and a real dockerd.

pub mod checks;
pub mod driver;
pub mod error;
pub mod mountinfo;
pub mod options;
pub mod process;
pub mod sshfs;
