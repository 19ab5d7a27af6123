//! slowsink as a library.

pub mod receiver;
