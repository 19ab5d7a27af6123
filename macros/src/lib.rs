//! Procedural macros of `docker-plugin-sdk`; use them through the library's re-exports
//! (`docker_plugin_sdk::DriverOptions`, `#[docker_plugin_sdk::main]`, feature `macros`).
//!
//! - `options`: `#[derive(DriverOptions)]`, Docker's `-o key=value` map as a typed
//!   struct.
//! - `main`: `#[docker_plugin_sdk::main]`, the runtime, logging and exit code of a
//!   plugin binary.

mod main_attr;
mod options;

use proc_macro::TokenStream;

/// Derives `docker_plugin_sdk::options::DriverOptions` for a struct with named fields.
///
/// Each field is one option, its key the field name (or `#[opt(rename = "key")]`):
/// - a plain field is required; `#[opt(default = "text")]` gives a default (parsed like
///   a given value), `#[opt(default)]` uses `Default::default()`;
/// - an `Option<T>` field is optional;
/// - `#[opt(secret)]` marks a secret (a `Secret<T>` field is one anyway): its type must be `Secret<T>` (or
///   `Option<Secret<T>>`), it is left out of `to_status`, and a bad value is reported
///   without echoing it;
/// - `#[opt(no_status)]` leaves a field out of `to_status` (for types without
///   `Display`);
/// - `#[opt(parse_with = path::to::fn)]` parses the value with
///   `fn(&str) -> Result<T, E: Display>` instead of `FromStr` (`T` is the field type,
///   or `U` of `Option<U>`); it needs `expect`;
/// - `#[opt(expect = "octal permissions such as 0750")]` is what the user reads in
///   "option `mode` must be …, got `x`: …".
///
/// Field types implement `FromStr` unless `parse_with` is given (and `Display`, for
/// `to_status`). An error message never shows a Rust type name: the derive words the
/// std types (numbers, `bool`, `char`, `String`, `PathBuf`, IP and socket addresses)
/// and refuses to compile a field of any other type without `expect`. The first line
/// of a field's doc comment is its help text.
#[proc_macro_derive(DriverOptions, attributes(opt))]
pub fn derive_driver_options(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    options::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Turns `async fn main()` (returning `()` or `Result<(), E: Display>`) into a plugin's
/// `main`: `tracing` logs filtered by `RUST_LOG` (default `info`) the way dockerd shows
/// them (info and below on stdout, warnings and errors on stderr; timestamps and
/// colours only on a terminal), a multi-thread tokio runtime (at least two workers, so
/// that a call that blocks does not stall the others), and an error printed as
/// `error: …` with exit code 1.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::ItemFn);
    main_attr::expand(args.into(), item)
        .unwrap_or_else(|err| {
            // The error alone, plus an empty `main` so that rustc does not add
            // "`main` function not found" to it.
            let err = err.into_compile_error();
            quote::quote!(#err fn main() {})
        })
        .into()
}
