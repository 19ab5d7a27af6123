//! Test helpers of the sshfs example: a real sshd ([`sshd`]), the plugin's bundle
//! as `cargo docker-plugin package` writes it ([`bundle`]), and one test's world of
//! both under the SDK's harness ([`world`]).
#![allow(dead_code)]

pub mod bundle;
pub mod sshd;
pub mod world;
