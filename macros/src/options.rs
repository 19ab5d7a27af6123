//! `#[derive(DriverOptions)]`: reads the `#[opt(...)]` attributes of each field and
//! writes `DriverOptions::OPTIONS`, `from_options` (through the library's
//! `options::Parser`, which collects every problem) and `to_status`.
//!
//! Every error message a user can get says in words what a value must be: the
//! derive words the std types it knows, takes `expect = "…"` for the rest (and for a
//! `parse_with` parser), and refuses to compile rather than show a Rust type name.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, GenericArgument, LitStr, PathArguments, Type};

/// How a field gets its value when its key is absent.
enum Presence {
    Required,
    Optional,
    Default(LitStr),
    DefaultTrait,
}

struct FieldSpec {
    ident: syn::Ident,
    key: String,
    key_span: Span,
    presence: Presence,
    /// The type parsed from text: `T` of `Option<T>`, else the field type.
    parsed: Type,
    secret: bool,
    status: bool,
    doc: String,
    /// What the user reads after "must be": `expect = "…"`, or the type's wording.
    expected: String,
    /// `parse_with = path`: a `fn(&str) -> Result<T, E: Display>` used instead of
    /// `FromStr`.
    parse_with: Option<syn::Path>,
}

pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => &named.named,
            _ => {
                return Err(syn::Error::new(
                    input.ident.span(),
                    "DriverOptions can only be derived for structs with named fields: each field is one `-o key=value` option",
                ));
            }
        },
        _ => {
            return Err(syn::Error::new(
                input.ident.span(),
                "DriverOptions can only be derived for structs with named fields: each field is one `-o key=value` option",
            ));
        }
    };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            "DriverOptions cannot be derived for a generic struct",
        ));
    }
    let mut specs: Vec<FieldSpec> = Vec::new();
    for field in fields {
        let spec = field_spec(field)?;
        if let Some(other) = specs.iter().find(|s| s.key == spec.key) {
            return Err(syn::Error::new(
                spec.key_span,
                format!(
                    "two fields use the option key `{}` (`{}` and `{}`): rename one with #[opt(rename = \"...\")]",
                    spec.key, other.ident, spec.ident
                ),
            ));
        }
        specs.push(spec);
    }

    let name = &input.ident;
    let infos = specs.iter().map(|s| {
        let key = &s.key;
        let required = matches!(s.presence, Presence::Required);
        let default = match &s.presence {
            Presence::Default(lit) => quote!(::core::option::Option::Some(#lit)),
            _ => quote!(::core::option::Option::None),
        };
        let secret = s.secret;
        let doc = &s.doc;
        quote! {
            ::docker_plugin_sdk::options::OptionInfo {
                key: #key, required: #required, default: #default, secret: #secret, doc: #doc,
            }
        }
    });
    let parses = specs.iter().map(|s| {
        let ident = &s.ident;
        let key = &s.key;
        let ty = &s.parsed;
        let expected = &s.expected;
        if let Some(parse) = &s.parse_with {
            // Spanned at the parser, so a parser of the wrong type is pointed at.
            let span = parse.span();
            let call = match &s.presence {
                Presence::Required => quote_spanned!(span=> parse_required_with::<#ty, _>(#key, #expected, #parse)),
                Presence::Optional => quote_spanned!(span=> parse_optional_with::<#ty, _>(#key, #expected, #parse)),
                Presence::Default(lit) => quote_spanned!(span=> parse_or_with::<#ty, _>(#key, #expected, #lit, #parse)),
                Presence::DefaultTrait => quote_spanned!(span=> parse_or_default_with::<#ty, _>(#key, #expected, #parse)),
            };
            return quote!(let #ident = __parser.#call;);
        }
        // Spanned at the field's type, so "FromStr is not implemented" points there.
        let span = ty.span();
        match &s.presence {
            Presence::Required => {
                quote_spanned!(span=> let #ident = __parser.parse_required::<#ty>(#key, #expected);)
            }
            Presence::Optional => {
                quote_spanned!(span=> let #ident = __parser.parse_optional::<#ty>(#key, #expected);)
            }
            Presence::Default(lit) => {
                quote_spanned!(span=> let #ident = __parser.parse_or::<#ty>(#key, #expected, #lit);)
            }
            Presence::DefaultTrait => {
                quote_spanned!(span=> let #ident = __parser.parse_or_default::<#ty>(#key, #expected);)
            }
        }
    });
    let idents: Vec<&syn::Ident> = specs.iter().map(|s| &s.ident).collect();
    let statuses = specs.iter().filter(|s| s.status && !s.secret).map(|s| {
        let ident = &s.ident;
        let key = &s.key;
        let span = s.parsed.span();
        if matches!(s.presence, Presence::Optional) {
            quote_spanned! {span=>
                if let ::core::option::Option::Some(value) = &self.#ident {
                    status.push((#key, ::std::string::ToString::to_string(value)));
                }
            }
        } else {
            quote_spanned!(span=> status.push((#key, ::std::string::ToString::to_string(&self.#ident)));)
        }
    });

    let build = if idents.is_empty() {
        quote!(::core::result::Result::Ok(Self {}))
    } else {
        quote! {
            match (#(#idents,)*) {
                (#(::core::option::Option::Some(#idents),)*) => {
                    ::core::result::Result::Ok(Self { #(#idents),* })
                }
                _ => ::core::unreachable!("Parser::finish reports every missing or bad value"),
            }
        }
    };

    Ok(quote! {
        impl ::docker_plugin_sdk::options::DriverOptions for #name {
            const OPTIONS: &'static [::docker_plugin_sdk::options::OptionInfo] = &[#(#infos),*];

            fn from_options<'a>(
                options: impl ::core::iter::IntoIterator<Item = (&'a str, &'a str)>,
            ) -> ::core::result::Result<Self, ::docker_plugin_sdk::options::OptionsError> {
                let mut __parser = ::docker_plugin_sdk::options::Parser::new(Self::OPTIONS, options);
                #(#parses)*
                __parser.finish()?;
                #build
            }

            fn to_status(&self) -> ::std::vec::Vec<(&'static str, ::std::string::String)> {
                let mut status = ::std::vec::Vec::new();
                #(#statuses)*
                status
            }
        }
    })
}

fn field_spec(field: &syn::Field) -> syn::Result<FieldSpec> {
    let Some(ident) = field.ident.clone() else {
        return Err(syn::Error::new(field.span(), "expected a named field"));
    };
    let mut key = ident.to_string().trim_start_matches("r#").to_owned();
    let mut key_span = ident.span();
    let mut default: Option<Presence> = None;
    let mut secret = false;
    let mut status = true;
    let mut expect: Option<LitStr> = None;
    let mut parse_with: Option<syn::Path> = None;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("opt")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() || lit.value().contains('=') {
                    return Err(syn::Error::new(
                        lit.span(),
                        "an option key cannot be empty or contain `=`",
                    ));
                }
                key = lit.value();
                key_span = lit.span();
            } else if meta.path.is_ident("default") {
                default = Some(if meta.input.peek(syn::Token![=]) {
                    Presence::Default(meta.value()?.parse()?)
                } else {
                    Presence::DefaultTrait
                });
            } else if meta.path.is_ident("secret") {
                secret = true;
            } else if meta.path.is_ident("no_status") {
                status = false;
            } else if meta.path.is_ident("expect") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!(
                            "`expect` cannot be empty: it ends the sentence \"option `{key}` must be …\", \
                             e.g. expect = \"octal permissions such as 0750\""
                        ),
                    ));
                }
                expect = Some(lit);
            } else if meta.path.is_ident("parse_with") {
                parse_with = Some(meta.value()?.parse()?);
            } else {
                let name = meta
                    .path
                    .get_ident()
                    .map_or_else(|| "?".to_owned(), ToString::to_string);
                return Err(meta.error(format!(
                    "unknown `opt` attribute `{name}`; expected one of: rename = \"key\", default, default = \"value\", secret, no_status, \
                     parse_with = path::to::fn, expect = \"what the value must be\""
                )));
            }
            Ok(())
        })?;
    }
    let optional_inner = option_inner(&field.ty);
    let presence = match (optional_inner.is_some(), default) {
        (true, Some(_)) => {
            return Err(syn::Error::new(
                field.ty.span(),
                "an `Option` field is already optional: remove `default`, or make the field a plain type",
            ));
        }
        (true, None) => Presence::Optional,
        (false, Some(presence)) => presence,
        (false, None) => Presence::Required,
    };
    let parsed = optional_inner.cloned().unwrap_or_else(|| field.ty.clone());
    let secret_type = last_segment(&parsed).is_some_and(|s| s.ident == "Secret");
    // A `Secret<T>` field is secret with or without the attribute: its value must
    // never reach an error message or the volume's Status.
    let secret = secret || secret_type;
    if secret && !secret_type {
        return Err(syn::Error::new(
            field.ty.span(),
            "#[opt(secret)] needs the field type to be `Secret<T>` (or `Option<Secret<T>>`) so the value is never printed",
        ));
    }
    let expected = match (expect, &parse_with) {
        (Some(expect), _) => expect.value(),
        (None, Some(parse)) => {
            return Err(syn::Error::new(
                parse.span(),
                format!(
                    "#[opt(parse_with = …)] needs #[opt(expect = \"…\")] too: the words telling the \
                     user what the parser accepts, as in \"option `{key}` must be …\", \
                     e.g. expect = \"octal permissions such as 0750\""
                ),
            ));
        }
        (None, None) => match wording(&parsed) {
            Some(wording) => wording.to_owned(),
            None => {
                let name = last_segment(&parsed)
                    .map_or_else(|| quote!(#parsed).to_string(), |s| s.ident.to_string());
                return Err(syn::Error::new(
                    parsed.span(),
                    format!(
                        "add #[opt(expect = \"…\")] to say in the user's words what option `{key}` \
                         takes, e.g. expect = \"octal permissions such as 0750\": an error message \
                         never shows a Rust type name like `{name}`, and the derive words only \
                         numbers, bool, char, String, PathBuf and IP or socket addresses"
                    ),
                ));
            }
        },
    };
    Ok(FieldSpec {
        ident,
        key,
        key_span,
        presence,
        parsed,
        secret,
        status,
        doc: doc_line(&field.attrs),
        expected,
        parse_with,
    })
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

/// `T` of `Option<T>` (also written `std::option::Option<T>`).
fn option_inner(ty: &Type) -> Option<&Type> {
    let segment = last_segment(ty)?;
    if segment.ident != "Option" {
        return None;
    }
    match &segment.arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => match &args.args[0] {
            GenericArgument::Type(inner) => Some(inner),
            _ => None,
        },
        _ => None,
    }
}

/// What the error message says a value of a std type must be: "a number", "an IP
/// address", …; `None` for any other type (its field needs `expect = "…"`).
fn wording(ty: &Type) -> Option<&'static str> {
    let segment = last_segment(ty)?;
    let name = segment.ident.to_string();
    if name == "Secret"
        && let PathArguments::AngleBracketed(args) = &segment.arguments
        && let Some(GenericArgument::Type(inner)) = args.args.first()
    {
        return wording(inner);
    }
    Some(match name.as_str() {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative whole number",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "NonZeroU8" | "NonZeroU16" | "NonZeroU32" | "NonZeroU64" | "NonZeroU128"
        | "NonZeroUsize" => "a positive whole number",
        "f32" | "f64" => "a number",
        "bool" => "`true` or `false`",
        "String" | "OsString" => "a string",
        "char" => "a single character",
        "PathBuf" => "a path",
        "IpAddr" | "Ipv4Addr" | "Ipv6Addr" => "an IP address",
        "SocketAddr" | "SocketAddrV4" | "SocketAddrV6" => "an address like 127.0.0.1:22",
        _ => return None,
    })
}

fn doc_line(attrs: &[syn::Attribute]) -> String {
    for attr in attrs {
        if attr.path().is_ident("doc")
            && let syn::Meta::NameValue(nv) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(text),
                ..
            }) = &nv.value
        {
            let line = text.value().trim().to_owned();
            if !line.is_empty() {
                return line;
            }
        }
    }
    String::new()
}
