//! `#[docker_plugin_sdk::main]`: the body of `async fn main` run on the SDK's
//! runtime, with logging set up and errors turned into an exit code.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;

pub(crate) fn expand(args: TokenStream, item: syn::ItemFn) -> syn::Result<TokenStream> {
    if !args.is_empty() {
        return Err(syn::Error::new(
            args.span(),
            "#[docker_plugin_sdk::main] takes no arguments (the log level comes from RUST_LOG)",
        ));
    }
    let sig = &item.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "#[docker_plugin_sdk::main] goes on an `async fn main`: add `async`",
        ));
    }
    if sig.ident != "main" {
        return Err(syn::Error::new(
            sig.ident.span(),
            "#[docker_plugin_sdk::main] goes on the `main` function only",
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            "`main` takes no arguments: read them with std::env::args()",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "`main` cannot be generic",
        ));
    }
    let attrs = &item.attrs;
    let vis = &item.vis;
    let body = &item.block;
    let output = match &sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    Ok(quote! {
        #(#attrs)*
        #vis fn main() -> ::std::process::ExitCode {
            async fn __docker_plugin_main() -> #output #body
            ::docker_plugin_sdk::__private::run_main(__docker_plugin_main())
        }
    })
}
