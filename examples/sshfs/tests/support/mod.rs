//! Test helpers of the sshfs example: a real sshd ([`sshd`]) and the plugin's bundle
//! as `cargo docker-plugin package` writes it ([`bundle`]).
#![allow(dead_code)]

pub mod bundle;
pub mod sshd;
