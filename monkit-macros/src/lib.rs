//! The `#[monkit::task]` attribute. Use it through the `monkit` crate.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{parse_macro_input, Item, ItemFn, LitStr, ReturnType};

/// What the attribute was asked for.
#[derive(Default)]
struct Options {
    name: Option<LitStr>,
    tags: Vec<(LitStr, LitStr)>,
    /// Record the arguments' `Debug` forms on the span.
    args: bool,
    skip: Vec<syn::Ident>,
    /// The objective (`monkit::slo`) the function counts toward.
    objective: Option<LitStr>,
}

/// Instruments a function with per-function stats and a span per call.
///
/// See the `monkit` crate for what is counted. Arguments: `name = "..."` overrides the
/// function's name within its scope; `tags(key = "value", ...)` makes it a tagged function;
/// `args` records the arguments' `Debug` forms on each span, less those in `skip(a, b)`;
/// `objective = "..."` counts its calls toward that `monkit::slo` objective.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut o = Options::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("tags") {
            meta.parse_nested_meta(|t| {
                let key = t
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .ok_or_else(|| t.error("expected `key = \"value\"`"))?;
                let v: LitStr = t.value()?.parse().map_err(|e| {
                    syn::Error::new(e.span(), "expected a string literal: `key = \"value\"`")
                })?;
                if o.tags.iter().any(|(k, _)| k.value() == key) {
                    return Err(t.error(format!("tag `{key}` given twice")));
                }
                o.tags.push((LitStr::new(&key, t.path.span()), v));
                Ok(())
            })
        } else if meta.path.is_ident("args") {
            o.args = true;
            Ok(())
        } else if meta.path.is_ident("skip") {
            meta.parse_nested_meta(|a| {
                let id = a
                    .path
                    .get_ident()
                    .cloned()
                    .ok_or_else(|| a.error("expected an argument name"))?;
                o.skip.push(id);
                Ok(())
            })
        } else if meta.path.is_ident("objective") {
            if o.objective.is_some() {
                return Err(meta.error("`objective` given twice"));
            }
            let lit: LitStr = meta.value()?.parse().map_err(|e| {
                syn::Error::new(e.span(), "expected a string literal: `objective = \"...\"`")
            })?;
            if lit.value().trim().is_empty() {
                return Err(syn::Error::new(lit.span(), "`objective` must not be empty"));
            }
            o.objective = Some(lit);
            Ok(())
        } else if meta.path.is_ident("name") {
            if o.name.is_some() {
                return Err(meta.error("`name` given twice"));
            }
            let lit: LitStr = meta.value()?.parse().map_err(|e| {
                syn::Error::new(e.span(), "expected a string literal: `name = \"...\"`")
            })?;
            if lit.value().is_empty() {
                return Err(syn::Error::new(lit.span(), "`name` must not be empty"));
            }
            o.name = Some(lit);
            Ok(())
        } else {
            let what = meta
                .path
                .get_ident()
                .map_or_else(|| "this".to_owned(), |i| format!("`{i}`"));
            Err(meta.error(format!(
                "unknown argument {what}; #[monkit::task] takes `name = \"...\"`, `tags(k = \"v\")`, `args`, `skip(a, b)` and `objective = \"...\"`"
            )))
        }
    });
    parse_macro_input!(args with parser);

    let item2: TokenStream2 = item.clone().into();
    let func = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(_) => return not_a_fn(item2).into(),
    };
    if !o.skip.is_empty() && !o.args {
        return syn::Error::new(
            o.skip[0].span(),
            "`skip(...)` only means something with `args`",
        )
        .to_compile_error()
        .into();
    }
    match expand(func, o) {
        Ok(ts) => ts.into(),
        // The function stays as written beside the error: no second error where it is used.
        Err(e) => {
            let err = e.to_compile_error();
            quote!(#err #item2).into()
        }
    }
}

fn not_a_fn(item: TokenStream2) -> TokenStream2 {
    let msg = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(_)) => unreachable!(),
        Ok(_) | Err(_) if item.to_string().trim_end().ends_with(';') => {
            "#[monkit::task] needs a function with a body; put it on the implementation, not on \
             a declaration"
        }
        _ => {
            "#[monkit::task] can only be applied to functions (sync or async, free functions or \
              methods)"
        }
    };
    let span = item
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span());
    let err = syn::Error::new(span, msg).to_compile_error();
    quote!(#err #item)
}

/// Whether an `async fn` may become a `fn` returning `impl Future` without changing what
/// compiles. On edition 2021 that future captures the type parameters in scope but no lifetime
/// the signature does not name. An `async fn` must write every lifetime of its arguments
/// (`Holder<'_>`, never `Holder`), so the ones left hidden are those of an `impl<'a>` block,
/// carried by `self` and `Self`, and whatever a macro in type position expands to.
fn captures_everything(sig: &syn::Signature) -> bool {
    let mut found = FindHidden(false);
    found.visit_signature(sig);
    sig.receiver().is_none() && !found.0
}

/// The future a non-async `fn` ends by returning: `async move { .. }` (under
/// `-> impl Future<Output = T> + Send + '_`, as traits declare futures), or
/// `Box::pin(async move { .. })` (what `#[async_trait]` makes of a method, or a `BoxFuture`).
/// With the statements before it (`let client = self.client.clone();`), the path that boxes
/// it, if any, and the `Output` the return type names, or `_` for inference to find.
#[allow(clippy::type_complexity)]
fn returned_future<'b>(
    block: &'b syn::Block,
    output: &ReturnType,
) -> Option<(
    &'b [syn::Stmt],
    Option<&'b syn::Expr>,
    &'b syn::ExprAsync,
    syn::Type,
)> {
    let (syn::Stmt::Expr(tail, None), before) = block.stmts.split_last()? else {
        return None;
    };
    let (pin, fut) = match tail {
        syn::Expr::Async(fut) => (None, fut),
        syn::Expr::Call(call) => {
            let syn::Expr::Path(f) = &*call.func else {
                return None;
            };
            let mut names = f.path.segments.iter().rev().map(|s| s.ident.to_string());
            if names.next()? != "pin" || names.next()? != "Box" || call.args.len() != 1 {
                return None;
            }
            let syn::Expr::Async(fut) = call.args.first()? else {
                return None;
            };
            (Some(&*call.func), fut)
        }
        _ => return None,
    };
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let mut found = FindOutput(None);
    found.visit_type(ty);
    Some((
        before,
        pin,
        fut,
        found.0.unwrap_or_else(|| syn::parse_quote!(_)),
    ))
}

/// The first `Output = T` in a type.
struct FindOutput(Option<syn::Type>);
impl<'a> Visit<'a> for FindOutput {
    fn visit_assoc_type(&mut self, a: &'a syn::AssocType) {
        if a.ident == "Output" && self.0.is_none() {
            self.0 = Some(a.ty.clone());
        }
    }
}

/// Whether an attribute means the same on a plain `fn`: the compiler's own. Another attribute
/// macro below `#[task]` (`#[tokio::main]`, `#[tokio::test]`) may need to see `async fn`.
fn inert(a: &syn::Attribute) -> bool {
    const INERT: &[&str] = &[
        "doc",
        "allow",
        "warn",
        "deny",
        "forbid",
        "expect",
        "inline",
        "cold",
        "must_use",
        "cfg",
        "deprecated",
        "rustfmt",
        "clippy",
        "diagnostic",
    ];
    let root = a.path().segments.first().map(|s| s.ident.to_string());
    root.is_some_and(|r| INERT.contains(&r.as_str()))
}

/// The arguments of an `async fn` made a plain `fn`, and the statements that move every one of
/// them into its future, as `async fn` does: an argument the body never names (`_permit`, `_`)
/// is dropped when the call ends, not when the future is made. A plain name keeps its name
/// (it is what the docs show); any other pattern is taken apart inside, at the first poll.
fn move_arguments_in(
    sig: &syn::Signature,
) -> (
    syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]>,
    TokenStream2,
) {
    let mut inputs = sig.inputs.clone();
    let mut moves = TokenStream2::new();
    for (i, arg) in inputs.iter_mut().enumerate() {
        let syn::FnArg::Typed(pt) = arg else { continue };
        match &mut *pt.pat {
            syn::Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                let (name, mutability) = (&pi.ident, pi.mutability.take());
                moves.extend(quote! {
                    #[allow(clippy::redundant_locals, clippy::used_underscore_binding)]
                    let #mutability #name = #name;
                });
            }
            pat => {
                let name = syn::Ident::new(&format!("__monkit_arg{i}"), pat.span());
                moves.extend(quote! {
                    let #name = #name;
                    let #pat = #name;
                });
                *pat = syn::parse_quote!(#name);
            }
        }
    }
    (inputs, moves)
}

/// Whether a signature names a lifetime, a reference, `Self` or a type made by a macro.
struct FindHidden(bool);
impl<'a> Visit<'a> for FindHidden {
    fn visit_lifetime(&mut self, _: &'a syn::Lifetime) {
        self.0 = true;
    }
    fn visit_type_reference(&mut self, _: &'a syn::TypeReference) {
        self.0 = true;
    }
    fn visit_type_macro(&mut self, _: &'a syn::TypeMacro) {
        self.0 = true;
    }
    fn visit_ident(&mut self, i: &'a syn::Ident) {
        if i == "Self" {
            self.0 = true;
        }
    }
}

/// Replaces every `impl Trait` in a type with `_`; `.0` says whether there was one.
struct InferImplTrait(bool);
impl VisitMut for InferImplTrait {
    fn visit_type_mut(&mut self, t: &mut syn::Type) {
        if let syn::Type::ImplTrait(_) = t {
            *t = syn::parse_quote!(_);
            self.0 = true;
        } else {
            syn::visit_mut::visit_type_mut(self, t);
        }
    }
}

/// The statement that records the arguments, or nothing.
fn record_args(sig: &syn::Signature, o: &Options) -> syn::Result<TokenStream2> {
    if !o.args {
        return Ok(quote!());
    }
    let mut names = Vec::new();
    let mut found = Vec::new();
    for input in &sig.inputs {
        // `self` is left out: a receiver is rarely worth printing per call, and often has no
        // `Debug`. Patterns other than a plain name have no one name to show.
        if let syn::FnArg::Typed(pt) = input {
            if let syn::Pat::Ident(pi) = &*pt.pat {
                found.push(pi.ident.clone());
                if !o.skip.contains(&pi.ident) {
                    names.push(pi.ident.clone());
                }
            }
        }
    }
    if let Some(s) = o.skip.iter().find(|s| !found.contains(s)) {
        return Err(syn::Error::new(
            s.span(),
            format!("`skip({s})`: the function has no argument named `{s}`"),
        ));
    }
    let keys: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    Ok(quote! {
        ::monkit::__private::record_args(&[
            #( (#keys, &#names as &dyn ::core::fmt::Debug) ),*
        ]);
    })
}

fn expand(func: ItemFn, o: Options) -> syn::Result<TokenStream2> {
    let name = o.name.clone();
    let sig = &func.sig;
    if let Some(c) = &sig.constness {
        return Err(syn::Error::new(
            c.span(),
            "#[monkit::task] cannot instrument a `const fn`: a call reads the clock",
        ));
    }
    if let Some(v) = &sig.variadic {
        return Err(syn::Error::new(
            v.span(),
            "#[monkit::task] cannot instrument a variadic function",
        ));
    }
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &func;
    let ident = &sig.ident;
    let fn_name = ident.to_string();
    let name = match &name {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let tag_keys = o.tags.iter().map(|t| &t.0);
    let tag_values = o.tags.iter().map(|t| &t.1);
    let tags = quote!(&[ #( (#tag_keys, #tag_values) ),* ]);
    let objective = match &o.objective {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let args = record_args(sig, &o)?;
    let span = ident.span();
    let line = quote_spanned!(span=> ::core::line!());
    let site = quote! {
        fn __monkit_path() -> &'static str {
            fn name_of<T>(_: T) -> &'static str {
                ::core::any::type_name::<T>()
            }
            name_of(__monkit_path)
        }
        static __MONKIT_SITE: ::monkit::__private::FuncSite = ::monkit::__private::FuncSite::new(
            ::core::module_path!(),
            #fn_name,
            #name,
            #tags,
            ::core::file!(),
            #line,
            __monkit_path,
        )
        .with_objective(#objective);
        ::monkit::__private::inventory::submit! {
            ::monkit::__private::SiteRef(&__MONKIT_SITE)
        }
    };
    // `-> !` cannot be named in a binding or a closure's argument (the type is unstable there):
    // such a call only ever ends by panicking, which the guard's drop counts.
    let never = matches!(&sig.output, ReturnType::Type(_, t) if matches!(**t, syn::Type::Never(_)));
    // The return type, with every `impl Trait` in it left to inference (`Result<_, E>`): what
    // pins the body's type and names the value the outcome is read from.
    let mut infer = InferImplTrait(false);
    let ret = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => {
            let mut t = (**t).clone();
            infer.visit_type_mut(&mut t);
            quote!(#t)
        }
    };
    let opaque = infer.0;
    let classify = |value: TokenStream2| {
        quote! {{
            #[allow(unused_imports)]
            use ::monkit::__private::{
                ViaAny as _, ViaDynError as _, ViaErrorKind as _, ViaStdError as _,
                ViaTypeName as _,
            };
            (&&&&&::monkit::__private::Classify(#value)).monkit_outcome()
        }}
    };
    // What an `Err` says, kept for recorded spans only (formatted at their end, not here).
    let describe = |value: TokenStream2| {
        quote! {{
            #[allow(unused_imports)]
            use ::monkit::__private::{ViaDisplay as _, ViaNoText as _};
            (&&::monkit::__private::Describe(#value)).monkit_error()
        }}
    };
    // The call's future around an `async` block, its outcome read from what it returns (of
    // type `ret`; `None` when nothing can be returned).
    let call_future = |fut: TokenStream2, ret: Option<&dyn quote::ToTokens>| match ret {
        Some(ret) => {
            let (outcome, text) = (
                classify(quote!(__monkit_ret)),
                describe(quote!(__monkit_ret)),
            );
            quote! {
                __MONKIT_SITE.future(
                    #fut,
                    |__monkit_ret: &#ret| #outcome,
                    |__monkit_ret: &#ret| #text,
                )
            }
        }
        None => quote! {
            __MONKIT_SITE.future(
                #fut,
                |_| ::monkit::__private::Outcome::Ok,
                ::monkit::__private::no_text,
            )
        },
    };

    // The body's statements, spliced where they run: a block after statements of ours would
    // draw the `unused_braces` lint on the user's braces.
    let stmts = &block.stmts;
    // An `async fn` whose future can hold no lifetime it does not name becomes a plain `fn`
    // returning the call's future itself: one generator fewer to go through on every poll.
    // Otherwise the `async fn` stays (its future captures every lifetime in scope) and awaits
    // the call's future.
    let direct = sig.asyncness.is_some()
        && !opaque
        && !never
        && captures_everything(sig)
        && attrs.iter().all(inert);
    let await_it = if direct { quote!() } else { quote!(.await) };
    let (inputs, moved_in) = if direct {
        move_arguments_in(sig)
    } else {
        (sig.inputs.clone(), quote!())
    };
    let body = if never && sig.asyncness.is_some() {
        let call = call_future(quote!(async move { #args #(#stmts)* }), None);
        quote!(#site #call.await)
    } else if never {
        quote! {
            #site
            let __monkit_guard = __MONKIT_SITE.enter();
            #args
            #(#stmts)*
        }
    } else if sig.asyncness.is_some() {
        let fut = quote! {
            async move {
                // Pins the block's output type so `?` and `return` infer as in a fn.
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                if false {
                    let __monkit_unreachable: #ret = loop {};
                    return __monkit_unreachable;
                }
                #moved_in
                #args
                #(#stmts)*
            }
        };
        let call = call_future(fut, Some(&ret));
        quote!(#site #call #await_it)
    } else if let Some((before, pin, fut, mut ret)) = returned_future(block, &sig.output) {
        // A `fn` that returns its future (an `#[async_trait]` method, already made a `fn` by
        // the macro on its `impl`, among them): the call is the future, not the making of it.
        // What comes before the future runs when the function is called, outside the call.
        if o.args && !before.is_empty() {
            return Err(syn::Error::new(
                before[0].span(),
                "#[monkit::task(args)] records the arguments inside the returned future, and \
                 these statements run before it: move them into the `async` block, or drop \
                 `args`",
            ));
        }
        InferImplTrait(false).visit_type_mut(&mut ret);
        let (attrs, capture, stmts) = (&fut.attrs, &fut.capture, &fut.block.stmts);
        let call = call_future(
            quote!(#(#attrs)* async #capture { #args #(#stmts)* }),
            Some(&ret),
        );
        match pin {
            Some(pin) => quote!(#site #(#before)* #pin(#call)),
            None => quote!(#site #(#before)* #call),
        }
    } else {
        let outcome = classify(quote!(&__monkit_ret));
        let text = describe(quote!(&__monkit_ret));
        quote! {
            #site
            let __monkit_guard = __MONKIT_SITE.enter();
            #args
            #[allow(clippy::redundant_closure_call)]
            let __monkit_ret: #ret = (|| -> #ret #block)();
            __monkit_guard.finish_with(#outcome, #text);
            __monkit_ret
        }
    };
    let sig = if direct {
        let mut plain = sig.clone();
        plain.asyncness = None;
        plain.inputs = inputs;
        plain.output = syn::parse_quote!(-> impl ::core::future::Future<Output = #ret>);
        plain
    } else {
        sig.clone()
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    })
}
