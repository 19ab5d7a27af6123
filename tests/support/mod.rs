//! Helpers shared by the integration tests: a private dockerd ([`dockerd`]) and real
//! plugin processes built from the examples ([`process`]).
#![allow(dead_code)]

pub mod bundle;
pub mod dockerd;
pub mod process;
pub mod shared_dockerd;
