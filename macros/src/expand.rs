//! Code generation: the user's function unchanged, a unit struct of the same name in the
//! type namespace, its static policy, compile-time assertions at the user's argument
//! types, and the `RouteFactory` impl whose handler enforces the policy.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned;

use crate::check::{AccessM, ArgKind, Model, Per};
use crate::parse::{AllowExpr, Args, RoleSpec};

pub(crate) fn expand(args: &Args, model: &Model<'_>, item: &ItemFn) -> TokenStream {
    let p = quote!(::shieldwall::__private);
    let name = &item.sig.ident;
    let vis = &item.vis;
    let name_str = name.to_string();
    let path = &args.path;
    let method = format_ident!("{}", model.method);

    // ---- the static policy ----
    let access = match &model.access {
        AccessM::Public => quote!(#p::Access::Public),
        AccessM::Authenticated {
            auth,
            roles,
            scopes,
            allow,
        } => {
            let auth = format_ident!("{}", auth);
            let roles = roles.iter().map(|r| role_ref(r));
            let allow = match allow {
                Some(e) => {
                    let e = allow_expr(e);
                    quote!(::core::option::Option::Some(&#e))
                }
                None => quote!(::core::option::Option::None),
            };
            quote! {
                #p::Access::Authenticated(#p::Requirements {
                    auth: #p::AuthKind::#auth,
                    roles: &[#(#roles),*],
                    scopes: &[#(#scopes),*],
                    allow: #allow,
                })
            }
        }
    };
    let rates = model.rates.iter().map(|r| {
        let count = r.count;
        let period = r.period_secs;
        let burst = r.burst;
        let text = &r.text;
        let per = format_ident!(
            "{}",
            match r.per {
                Per::User => "User",
                Per::Ip => "Ip",
                Per::Key => "Key",
                Per::Global => "Global",
            }
        );
        quote!(#p::Rate { count: #count, period_secs: #period, per: #p::Per::#per, burst: #burst, text: #text })
    });
    let body_limit = match model.body_limit {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let validate = model.validate;
    let login = model.login;
    let on_outage = match model.on_outage {
        Some(o) => {
            let o = format_ident!("{}", o);
            quote!(::core::option::Option::Some(#p::OnOutage::#o))
        }
        None => quote!(::core::option::Option::None),
    };

    // ---- compile-time assertions, spanned at the user's types ----
    let (check_generics, check_state) = match &model.state {
        Some(t) => (quote!(), quote!(#t)),
        None => (
            quote!(<__ShieldwallS: ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static>),
            quote!(__ShieldwallS),
        ),
    };
    let n = model.args.len();
    let mut asserts = Vec::new();
    for (i, a) in model.args.iter().enumerate() {
        let ty = &a.ty;
        let last = i + 1 == n;
        match &a.kind {
            // `Path<T>` is an extractor exactly when `T` deserializes: say that, at `T`.
            ArgKind::Json(t) | ArgKind::Form(t) | ArgKind::Query(t) | ArgKind::Path(Some(t)) => {
                let sp = private(t.span());
                asserts.push(quote_spanned!(t.span()=> #sp::assert_deserialize::<#t>();));
                if a.validated {
                    // By name: the content must validate, unless its type is plain.
                    asserts.push(quote_spanned!(t.span()=>
                        #sp::assert_validated((&&&#sp::Arg::<#t>::NEW).need());
                    ));
                }
            }
            ArgKind::Path(None) | ArgKind::Other => {
                let sp = private(ty.span());
                asserts.push(if last {
                    quote_spanned!(ty.span()=> #sp::assert_last::<#ty, #check_state, _>();)
                } else {
                    quote_spanned!(ty.span()=> #sp::assert_parts::<#ty, #check_state>();)
                });
                if a.validated {
                    // Any other spelling: the type decides whether it is a `Json`, `Form`,
                    // `Query` or `Path` (renamed, aliased, re-exported) that must validate,
                    // or an `Option`/`Result` of one that axum would read unvalidated. The
                    // call spans the whole type (first token to last), so the error
                    // underlines all of `J<NoValidate>`, not only `J`.
                    let end = ty
                        .to_token_stream()
                        .into_iter()
                        .last()
                        .map_or_else(|| ty.span(), |t| t.span());
                    let close = quote_spanned!(end=> ());
                    asserts.push(quote_spanned!(ty.span()=>
                        #sp::assert_validated((&&&&#sp::Probe::<#ty>::NEW).arg_need #close);
                        #sp::assert_read_by_secure((&&#sp::Probe::<#ty>::NEW).wrapped #close);
                    ));
                }
            }
        }
    }

    // ---- the handler body: extraction after enforcement, body last ----
    let mut bounds = Vec::new();
    let mut generic_m = false;
    let mut extract = Vec::new();
    let mut call_args = Vec::new();
    for (i, a) in model.args.iter().enumerate() {
        let ty = &a.ty;
        let last = i + 1 == n;
        let var = format_ident!("__shieldwall_arg{}", i);
        call_args.push(var.clone());
        // Reading and validating go through `__private::{Arg, Probe}` dispatch, so that a
        // type without `Deserialize`/`Validate` is reported once, by the assertions above,
        // and so that what is validated is decided by the type, not by its spelling.
        let check = |value: TokenStream, t: &syn::Type| {
            if a.validated {
                quote! {
                    {
                        #[allow(unused_imports)]
                        use #p::{PlainInner as _, UnvalidatedInner as _, ValidateInner as _};
                        if let ::core::result::Result::Err(rej) = (&&&#p::Arg::<#t>::NEW).check(#value) {
                            return __shieldwall_fin.reject(rej);
                        }
                    }
                }
            } else {
                quote!()
            }
        };
        let arg_check = if a.validated {
            quote! {
                {
                    #[allow(unused_imports)]
                    use #p::{OtherArg as _, PlainArg as _, UnvalidatedArg as _, ValidateArg as _};
                    if let ::core::result::Result::Err(rej) = (&&&&#p::Probe::<#ty>::NEW).arg_check(&__shieldwall_v) {
                        return __shieldwall_fin.reject(rej);
                    }
                }
            }
        } else {
            quote!()
        };
        let code = match &a.kind {
            ArgKind::Json(t) | ArgKind::Form(t) => {
                let (reader, wrap) = match &a.kind {
                    ArgKind::Json(_) => (quote!(json), quote!(#p::Json)),
                    _ => (quote!(form), quote!(#p::Form)),
                };
                let v = check(quote!(&__shieldwall_v), t);
                quote! {
                    let #var = {
                        #[allow(unused_imports)]
                        use #p::{Read as _, ReadFallback as _};
                        let __shieldwall_limit = __shieldwall_fin.body_limit();
                        let __shieldwall_req = #p::Request::from_parts(__shieldwall_parts, __shieldwall_body);
                        match (&#p::Arg::<#t>::NEW).#reader(__shieldwall_req, __shieldwall_limit).await {
                            ::core::result::Result::Ok(__shieldwall_v) => { #v #wrap(__shieldwall_v) }
                            ::core::result::Result::Err(rej) => return __shieldwall_fin.reject(rej),
                        }
                    };
                }
            }
            ArgKind::Query(t) => {
                let v = check(quote!(&__shieldwall_v), t);
                quote! {
                    let #var = {
                        #[allow(unused_imports)]
                        use #p::{Read as _, ReadFallback as _};
                        match (&#p::Arg::<#t>::NEW).query(&__shieldwall_parts) {
                            ::core::result::Result::Ok(__shieldwall_v) => { #v #p::Query(__shieldwall_v) }
                            ::core::result::Result::Err(rej) => return __shieldwall_fin.reject(rej),
                        }
                    };
                }
            }
            ArgKind::Path(Some(t)) => {
                bounds.push(quote!(#ty: #p::FromRequestParts<__ShieldwallS>));
                let v = check(quote!(&__shieldwall_v.0), t);
                quote! {
                    let #var = match <#ty as #p::FromRequestParts<__ShieldwallS>>::from_request_parts(&mut __shieldwall_parts, &__shieldwall_state).await {
                        ::core::result::Result::Ok(__shieldwall_v) => { #v __shieldwall_v }
                        ::core::result::Result::Err(e) => return __shieldwall_fin.reject_response(#p::IntoResponse::into_response(e)),
                    };
                }
            }
            ArgKind::Path(None) | ArgKind::Other if !last => {
                bounds.push(quote!(#ty: #p::FromRequestParts<__ShieldwallS>));
                quote! {
                    let #var = {
                        #[allow(unused_imports)]
                        use #p::{ReadAxumParts as _, ReadOwnParts as _};
                        match (&&#p::Probe::<#ty>::NEW).read_parts::<__ShieldwallS>(&mut __shieldwall_parts, &__shieldwall_state, &__shieldwall_fin).await {
                            ::core::result::Result::Ok(__shieldwall_v) => { #arg_check __shieldwall_v }
                            ::core::result::Result::Err(res) => return res,
                        }
                    };
                }
            }
            ArgKind::Path(None) | ArgKind::Other => {
                generic_m = true;
                bounds.push(quote!(#ty: #p::FromRequest<__ShieldwallS, __ShieldwallM>));
                quote! {
                    let #var = {
                        #[allow(unused_imports)]
                        use #p::{ReadAxumBody as _, ReadOwnBody as _};
                        match (&&#p::Probe::<#ty>::NEW).read_body::<__ShieldwallS, __ShieldwallM>(__shieldwall_parts, __shieldwall_body, &__shieldwall_state, &__shieldwall_fin).await {
                            ::core::result::Result::Ok(__shieldwall_v) => { #arg_check __shieldwall_v }
                            ::core::result::Result::Err(res) => return res,
                        }
                    };
                }
            }
        };
        extract.push(code);
    }
    let (impl_generics, m_ty) = if generic_m {
        (
            quote!(<__ShieldwallS, __ShieldwallM>),
            quote!(__ShieldwallM),
        )
    } else {
        (quote!(<__ShieldwallS>), quote!(()))
    };
    let ret_span = match &item.sig.output {
        syn::ReturnType::Default => item.sig.ident.span(),
        syn::ReturnType::Type(_, t) => t.span(),
    };
    let sp = private(ret_span);
    let mut callee = name.clone();
    callee.set_span(ret_span);
    let respond = quote_spanned! {ret_span=>
        #sp::respond(#sp::enforce_entry(#callee(#(#call_args),*)).await)
    };

    // ---- the user's function: unchanged, but it runs only inside its route ----
    //
    // Why a check in the body, armed by a task-local: the function must keep its name and
    // signature (it is the unit-testable handler, and `Principal`-less signatures are
    // common), so a plain `Router` can always mount it as an axum handler and nothing at
    // compile time can stop that. A wrapper type or an extra argument would change what
    // users call in tests. What the generated route can do is mark the one call it makes
    // after enforcing the policy: `enforce_entry` wraps the function's future so that a
    // flag is armed while it is polled (a task-local in effect: a thread-local `Cell<bool>`
    // set around each poll of that one future and restored after), and the first statement
    // of the body, `check_entry`, takes that mark. Request extensions would not do: the body
    // has no access to the request, and a parameterless handler has none at all. The cost is
    // two thread-local swaps per poll and one in the check, with no allocation (measured in
    // `benches/policy.rs`, `entry/*`; tokio's `task_local!` measured 25 ns, too much for
    // every request).
    //
    // Outside the scope the check logs why and panics: no value of the user's return type
    // can be built, and the body must not run. A plain `Router` then drops the connection
    // (no 2xx, no user code ran); under a catch-panic layer it is a 500.
    //
    // Each arming admits one entry (the check disarms it), so a `#[secure]` function that
    // calls another directly is refused at the callee: the callee's attribute promises who
    // reaches its body, and the caller's policy must not silently stand in for it. Shared
    // code goes in a plain function. Unit tests arm the call with
    // `shieldwall::testing::as_enforced(handler(..))`.
    let mut item = item.clone();
    let entry: syn::Stmt = syn::parse_quote! { #p::check_entry(#name_str); };
    item.block.stmts.insert(0, entry);
    let item = &item;

    let doc = format!(
        "The `#[secure]` route of [`{name_str}`](fn@{name_str}): `{} {}`.",
        args.method.to_string().to_uppercase(),
        path.value()
    );

    quote! {
        #item

        #[doc = #doc]
        #[allow(non_camel_case_types)]
        #vis struct #name {}

        const _: () = {
            #[allow(dead_code, clippy::all, clippy::pedantic)]
            fn __shieldwall_assertions #check_generics () {
                #[allow(unused_imports)]
                use #p::{
                    DirectArg as _, OtherArg as _, PlainArg as _, PlainInner as _,
                    UnvalidatedArg as _, UnvalidatedInner as _, ValidateArg as _,
                    ValidateInner as _, WrappedArg as _,
                };
                #(#asserts)*
            }

            static __SHIELDWALL_POLICY: #p::Policy = #p::Policy {
                method: #p::Method::#method,
                path: #path,
                handler: #name_str,
                access: #access,
                rates: &[#(#rates),*],
                body_limit: #body_limit,
                validate: #validate,
                login: #login,
                on_outage: #on_outage,
            };

            #[automatically_derived]
            impl #impl_generics #p::RouteFactory<__ShieldwallS, #m_ty> for #name
            where
                __ShieldwallS: ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static,
                #(#bounds,)*
            {
                const POLICY: &'static #p::Policy = &__SHIELDWALL_POLICY;

                #[allow(unused_variables, unused_mut, clippy::all, clippy::pedantic)]
                fn method_router(__shieldwall_guard: #p::Guard) -> #p::MethodRouter<__ShieldwallS> {
                    #p::on(
                        #p::Method::#method,
                        move |#p::State(__shieldwall_state): #p::State<__ShieldwallS>, __shieldwall_req: #p::Request| {
                            let __shieldwall_guard = ::core::clone::Clone::clone(&__shieldwall_guard);
                            async move {
                                let (mut __shieldwall_parts, __shieldwall_body, __shieldwall_fin) =
                                    match __shieldwall_guard.enter(#name_str, __shieldwall_req).await {
                                        ::core::result::Result::Ok(v) => v,
                                        ::core::result::Result::Err(res) => return res,
                                    };
                                #(#extract)*
                                __shieldwall_fin.finish(#respond)
                            }
                        },
                    )
                }
            }
        };
    }
}

/// The stand-in emitted next to a `compile_error!` when the attribute is wrong: the unit
/// struct and a `RouteFactory` impl, so `routes![name]` raises no second error. The build
/// fails on the `compile_error!`, so none of this ever runs.
pub(crate) fn fallback(item: &ItemFn) -> TokenStream {
    if item.sig.receiver().is_some() {
        // A method: an item here would be one more error, inside an `impl` block.
        return TokenStream::new();
    }
    let p = quote!(::shieldwall::__private);
    let name = &item.sig.ident;
    let vis = &item.vis;
    let name_str = name.to_string();
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #name {}

        const _: () = {
            static __SHIELDWALL_POLICY: #p::Policy = #p::Policy {
                method: #p::Method::Get,
                path: "/",
                handler: #name_str,
                access: #p::Access::Public,
                rates: &[],
                body_limit: ::core::option::Option::None,
                validate: true,
                login: false,
                on_outage: ::core::option::Option::None,
            };

            impl<__ShieldwallS> #p::RouteFactory<__ShieldwallS, ()> for #name {
                const POLICY: &'static #p::Policy = &__SHIELDWALL_POLICY;

                fn method_router(_: #p::Guard) -> #p::MethodRouter<__ShieldwallS> {
                    ::core::unreachable!("#[secure] attribute with errors")
                }
            }
        };
    }
}

/// `::shieldwall::__private` with every token at `span`, so that an error in a call made
/// through it underlines the user's tokens only, not the whole attribute.
fn private(span: Span) -> TokenStream {
    quote_spanned!(span=> ::shieldwall::__private)
}

fn role_ref(r: &RoleSpec) -> TokenStream {
    let p = quote!(::shieldwall::__private);
    match r {
        RoleSpec::Name(lit) => quote!(#p::RoleRef::Name(#lit)),
        RoleSpec::Typed(expr) => {
            let sp = private(expr.span());
            let call = quote_spanned!(expr.span()=> #sp::role_name(&#expr));
            quote! {
                #p::RoleRef::Typed({
                    fn __shieldwall_role() -> &'static str { #call }
                    __shieldwall_role
                })
            }
        }
    }
}

fn allow_expr(e: &AllowExpr) -> TokenStream {
    let p = quote!(::shieldwall::__private);
    match e {
        AllowExpr::Role(r) => {
            let r = role_ref(r);
            quote!(#p::Expr::Role(#r))
        }
        AllowExpr::Scope(s) => quote!(#p::Expr::Scope(#s)),
        AllowExpr::Owner(s) => quote!(#p::Expr::Owner(#s)),
        AllowExpr::Any(xs) => {
            let xs = xs.iter().map(allow_expr);
            quote!(#p::Expr::Any(&[#(#xs),*]))
        }
        AllowExpr::All(xs) => {
            let xs = xs.iter().map(allow_expr);
            quote!(#p::Expr::All(&[#(#xs),*]))
        }
        AllowExpr::Not(x) => {
            let x = allow_expr(x);
            quote!(#p::Expr::Not(&#x))
        }
        AllowExpr::Predicate(path) => {
            let sp = private(path.span());
            quote_spanned!(path.span()=> #sp::Expr::Predicate(#path))
        }
    }
}
