//! Meaning checks: everything the runtime would reject, caught at compile time with a
//! message that says what to write instead. Produces the [`Model`] that `expand` renders.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, LitStr, PathArguments, Type};

use crate::parse::{AllowExpr, Args, RoleSpec, suggest};
pub(crate) use crate::units::{Per, RateM, parse_rate, parse_size};

pub(crate) enum AccessM<'a> {
    Public,
    Authenticated {
        auth: &'static str,
        roles: Vec<&'a RoleSpec>,
        scopes: Vec<&'a LitStr>,
        allow: Option<&'a AllowExpr>,
    },
}

/// How generated code obtains one handler argument.
pub(crate) enum ArgKind {
    /// `Json<T>`: read and (maybe) validated by shieldwall; last only.
    Json(Type),
    /// `Form<T>`: last only.
    Form(Type),
    /// `Query<T>`.
    Query(Type),
    /// `Path<T>`: axum's extractor, then (maybe) validated.
    Path(Option<Type>),
    /// Any other extractor, a renamed or aliased `Json`, `Form`, `Query` or `Path`
    /// included: read and validated by dispatch on its type.
    Other,
}

pub(crate) struct ArgM {
    pub(crate) ty: Type,
    pub(crate) kind: ArgKind,
    /// Validation is on for this route: the argument's content must implement `Validate`
    /// unless its type says there is nothing to validate.
    pub(crate) validated: bool,
}

pub(crate) struct Model<'a> {
    pub(crate) method: &'static str,
    pub(crate) access: AccessM<'a>,
    pub(crate) rates: Vec<RateM>,
    pub(crate) body_limit: Option<u64>,
    pub(crate) validate: bool,
    pub(crate) login: bool,
    /// `Some("FailClosed" | "LocalFallback")` when `on_outage` is given.
    pub(crate) on_outage: Option<&'static str>,
    pub(crate) args: Vec<ArgM>,
    /// `State<T>` argument's `T`, if any: the router state the checks use.
    pub(crate) state: Option<Type>,
}

struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
    fn count(&self) -> usize {
        self.0.as_ref().map_or(0, |e| e.into_iter().count())
    }
    fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }
    /// An error covering all of `tokens` (a whole type, not only its first token).
    fn spanned(&mut self, tokens: impl quote::ToTokens, msg: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, msg));
    }
}

pub(crate) fn check<'a>(args: &'a Args, item: &ItemFn) -> syn::Result<Model<'a>> {
    let mut errs = Errors(None);

    let method = match args.method.to_string().as_str() {
        "get" => "Get",
        "post" => "Post",
        "put" => "Put",
        "patch" => "Patch",
        "delete" => "Delete",
        "head" => "Head",
        _ => "Options",
    };

    // `None` when the path itself is wrong: checks against its parameters would only cascade.
    let params = {
        let before = errs.count();
        let names = check_path(&args.path, &mut errs);
        (errs.count() == before).then_some(names)
    };

    // Who may call the route.
    let requirement_spans: Vec<(Span, &str)> = [
        args.auth.as_ref().map(|(k, _)| (k.span(), "auth")),
        args.role.as_ref().map(|(k, _)| (k.span(), "role")),
        args.roles.as_ref().map(|(k, _)| (k.span(), "roles")),
        args.scope.as_ref().map(|(k, _)| (k.span(), "scope")),
        args.scopes.as_ref().map(|(k, _)| (k.span(), "scopes")),
        args.allow.as_ref().map(|(k, _)| (k.span(), "allow")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(public) = &args.public {
        for (span, key) in &requirement_spans {
            errs.at(
                *span,
                format!(
                    "a `public` route cannot also require `{key}`: remove `public` to require authentication, or remove `{key}`"
                ),
            );
        }
        let _ = public;
    } else if requirement_spans.is_empty() {
        errs.at(
            args.path.span(),
            "say who may call this route: add `public`, or a requirement such as `auth`, `role = \"admin\"`, `scope = \"users:read\"` or `allow = ...`",
        );
    }
    if let (Some((k, _)), Some(_)) = (&args.role, &args.roles) {
        errs.at(
            k.span(),
            "give either `role` or `roles`, not both: `roles = [\"a\", \"b\"]` means any of them",
        );
    }
    if let (Some((k, _)), Some(_)) = (&args.scope, &args.scopes) {
        errs.at(k.span(), "give either `scope` or `scopes`, not both: `scopes = [\"a\", \"b\"]` means all of them");
    }
    let check_role = |r: &RoleSpec, errs: &mut Errors| {
        if let RoleSpec::Name(lit) = r {
            check_name(lit, "role", errs);
        }
    };
    if let Some((_, r)) = &args.role {
        check_role(r, &mut errs);
    }
    if let Some((k, rs)) = &args.roles {
        if rs.is_empty() {
            errs.at(
                k.span(),
                "`roles = []` names no role: list at least one, or use `auth`",
            );
        }
        rs.iter().for_each(|r| check_role(r, &mut errs));
    }
    if let Some((_, s)) = &args.scope {
        check_name(s, "scope", &mut errs);
    }
    if let Some((k, ss)) = &args.scopes {
        if ss.is_empty() {
            errs.at(
                k.span(),
                "`scopes = []` names no scope: list at least one, or use `auth`",
            );
        }
        ss.iter().for_each(|s| check_name(s, "scope", &mut errs));
    }
    if let (Some((_, e)), Some(params)) = (&args.allow, &params) {
        check_allow(e, params, &args.path, &mut errs);
    }

    let public = args.public.is_some();
    let access = if public {
        AccessM::Public
    } else {
        let auth = match args.auth.as_ref().and_then(|(_, v)| v.as_ref()) {
            Some(v) if v.value() == "jwt" => "Jwt",
            Some(v) if v.value() == "api_key" => "ApiKey",
            _ => "Any",
        };
        AccessM::Authenticated {
            auth,
            roles: args
                .role
                .iter()
                .map(|(_, r)| r)
                .chain(args.roles.iter().flat_map(|(_, rs)| rs.iter()))
                .collect(),
            scopes: args
                .scope
                .iter()
                .map(|(_, s)| s)
                .chain(args.scopes.iter().flat_map(|(_, ss)| ss.iter()))
                .collect(),
            allow: args.allow.as_ref().map(|(_, e)| e),
        }
    };

    let mut rates = Vec::new();
    if let Some((k, list)) = &args.rate {
        if list.is_empty() {
            errs.at(
                k.span(),
                "`rate = []` sets no limit: write `rate = \"5/min\"` or remove `rate`",
            );
        }
        for lit in list {
            match parse_rate(&lit.value(), public) {
                Ok(r) => rates.push(r),
                Err(msg) => errs.at(lit.span(), msg),
            }
        }
    }

    // A `login` route checks credentials itself: without a limit every guess is free. The
    // built-in token endpoint (`TOKEN_POLICY`) charges 20/min per ip before anything else.
    if let (Some(login), None) = (&args.login, &args.rate) {
        errs.at(
            login.span(),
            "a `login` route checks credentials, so without a rate limit brute force is free: add a per-client limit charged before authentication, such as `rate = \"20/min per ip\"` (the built-in token endpoint's limit)",
        );
    }

    let body_limit = args
        .body_limit
        .as_ref()
        .and_then(|(_, lit)| match parse_size(&lit.value()) {
            Ok(n) => Some(n),
            Err(msg) => {
                errs.at(lit.span(), msg);
                None
            }
        });
    let validate = args.validate.as_ref().is_none_or(|(_, b)| b.value);
    let on_outage = args.on_outage.as_ref().map(|(k, lit)| {
        if args.rate.is_none() {
            errs.at(
                k.span(),
                "`on_outage` says what a rate limit does while the shared rate store is down, and this route has no `rate`: add `rate = \"...\"` or remove `on_outage`",
            );
        }
        if lit.value() == "local" { "LocalFallback" } else { "FailClosed" }
    });

    // The function.
    let sig = &item.sig;
    if sig.asyncness.is_none() {
        errs.at(
            sig.fn_token.span(),
            "#[secure] handlers must be `async fn`: write `async fn` here",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errs.spanned(
            &sig.generics,
            "#[secure] handlers cannot be generic: axum mounts one concrete function per route; remove the generic parameters",
        );
    }
    if let Some(c) = &sig.constness {
        errs.at(c.span(), "#[secure] handlers cannot be `const fn`");
    }
    if let Some(v) = &sig.variadic {
        errs.at(v.span(), "#[secure] handlers cannot be variadic");
    }
    let n = sig.inputs.len();
    let mut out_args = Vec::new();
    let mut state = None;
    for (i, input) in sig.inputs.iter().enumerate() {
        let ty = match input {
            FnArg::Receiver(r) => {
                errs.spanned(
                    r,
                    "#[secure] handlers are free functions, not methods: remove `self`",
                );
                continue;
            }
            FnArg::Typed(pt) => (*pt.ty).clone(),
        };
        let last = i + 1 == n;
        let (name, inner) = extractor(&ty);
        if validate && matches!(name.as_deref(), Some("Option" | "Result")) {
            let wrapped = inner.as_ref().and_then(|t| extractor(t).0);
            if let Some(w @ ("Json" | "Form" | "Query" | "Path")) = wrapped.as_deref() {
                errs.spanned(
                    &ty,
                    format!(
                        "`{}<{w}<..>>` is read by axum itself, which skips #[secure]'s validation: take `{w}<..>` (bad input is answered 400/422), or opt out with `validate = false`",
                        name.as_deref().unwrap_or_default()
                    ),
                );
            }
        }
        let kind = match name.as_deref() {
            Some("Json") | Some("Form") => {
                let word = name.as_deref().unwrap_or_default();
                if !last {
                    errs.spanned(
                        &ty,
                        format!("`{word}<..>` reads the request body, so it must be the last argument: move it to the end"),
                    );
                }
                match inner {
                    Some(t) if word == "Json" => ArgKind::Json(t),
                    Some(t) => ArgKind::Form(t),
                    None => {
                        errs.spanned(&ty, format!("`{word}` needs its type: `{word}<MyInput>`"));
                        ArgKind::Other
                    }
                }
            }
            Some("Query") => match inner {
                Some(t) => ArgKind::Query(t),
                None => {
                    errs.spanned(&ty, "`Query` needs its type: `Query<MyParams>`");
                    ArgKind::Other
                }
            },
            Some("Path") => {
                if let (Some(t), Some(params)) = (&inner, &params) {
                    check_path_arity(&ty, t, params, &args.path, &mut errs);
                }
                ArgKind::Path(inner)
            }
            Some("State") => {
                state = inner;
                ArgKind::Other
            }
            Some("Principal") if public => {
                errs.spanned(
                    &ty,
                    "a `public` route has no authenticated principal: take `Option<Principal>`, or remove `public`",
                );
                ArgKind::Other
            }
            Some("Claims") if public => {
                errs.spanned(
                    &ty,
                    "a `public` route has no verified token, so no claims: take `Option<Principal>` and read `claims_as` from it, or remove `public`",
                );
                ArgKind::Other
            }
            _ => ArgKind::Other,
        };
        // Whether there is anything to validate is decided by the type in generated code
        // (`__private::Probe`), never by the name it is written with.
        out_args.push(ArgM {
            ty,
            kind,
            validated: validate,
        });
    }

    match errs.0 {
        Some(e) => Err(e),
        None => Ok(Model {
            method,
            access,
            rates,
            body_limit,
            validate,
            login: args.login.is_some(),
            on_outage,
            args: out_args,
            state,
        }),
    }
}

/// `(last segment name, first generic type argument)` of an argument type.
fn extractor(ty: &Type) -> (Option<String>, Option<Type>) {
    let Type::Path(tp) = ty else {
        return (None, None);
    };
    let Some(seg) = tp.path.segments.last() else {
        return (None, None);
    };
    let inner = match &seg.arguments {
        PathArguments::AngleBracketed(ab) => ab.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        }),
        _ => None,
    };
    (Some(seg.ident.to_string()), inner)
}

/// `Path<T>` must match the route's parameters where the count is visible in the type:
/// axum answers a mismatch with a 500 at run time.
fn check_path_arity(ty: &Type, inner: &Type, params: &[String], path: &LitStr, errs: &mut Errors) {
    let n = params.len();
    let list = || {
        params
            .iter()
            .map(|p| format!("{{{p}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if n == 0 {
        errs.spanned(
            ty,
            format!(
                "`Path<..>` reads path parameters, but {:?} has none: add a parameter such as `{{id}}` to the path, or remove this argument",
                path.value()
            ),
        );
        return;
    }
    match inner {
        Type::Tuple(t) if !t.elems.is_empty() && t.elems.len() != n => {
            let types = vec!["String"; n].join(", ");
            errs.spanned(
                inner,
                format!(
                    "this tuple has {} element{} but {:?} has {n} parameter{} ({}): write `Path<({types}{})>` with one type per parameter, in order",
                    t.elems.len(),
                    if t.elems.len() == 1 { "" } else { "s" },
                    path.value(),
                    if n == 1 { "" } else { "s" },
                    list(),
                    if n == 1 { "," } else { "" },
                ),
            );
        }
        _ if n > 1 && is_scalar(inner) => {
            let types = vec!["String"; n].join(", ");
            errs.spanned(
                inner,
                format!(
                    "{:?} has {n} parameters ({}), and one value cannot hold them: take a tuple, `Path<({types})>`, or a struct with one field per parameter",
                    path.value(),
                    list(),
                ),
            );
        }
        _ => {}
    }
}

/// A single value deserialized from one path segment.
fn is_scalar(ty: &Type) -> bool {
    let Type::Path(tp) = ty else {
        return false;
    };
    let Some(seg) = tp.path.segments.last() else {
        return false;
    };
    matches!(
        seg.ident.to_string().as_str(),
        "String"
            | "bool"
            | "char"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "u128"
            | "usize"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "i128"
            | "isize"
            | "f32"
            | "f64"
            | "Uuid"
            | "Ulid"
            | "NonZeroU32"
            | "NonZeroU64"
    )
}

fn check_name(lit: &LitStr, what: &str, errs: &mut Errors) {
    let v = lit.value();
    if v.is_empty()
        || v.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    {
        errs.at(
            lit.span(),
            format!("a {what} is a non-empty name without spaces or quotes, such as \"admin\" or \"users:write\""),
        );
    }
}

fn check_allow(e: &AllowExpr, params: &[String], path: &LitStr, errs: &mut Errors) {
    match e {
        AllowExpr::Role(RoleSpec::Name(lit)) => check_name(lit, "role", errs),
        AllowExpr::Role(RoleSpec::Typed(_)) | AllowExpr::Predicate(_) => {}
        AllowExpr::Scope(lit) => check_name(lit, "scope", errs),
        AllowExpr::Owner(lit) => {
            let name = lit.value();
            if !params.contains(&name) {
                let msg = match params.len() {
                    0 => format!(
                        "`owner({name:?})` compares a path parameter with the caller, but {:?} has no parameters: add `{{{name}}}` to the path",
                        path.value()
                    ),
                    _ => {
                        let names: Vec<&str> = params.iter().map(String::as_str).collect();
                        match suggest(&name, &names) {
                            Some(s) => format!(
                                "the path {:?} has no `{{{name}}}`; did you mean `owner({s:?})`?",
                                path.value()
                            ),
                            None => format!(
                                "the path {:?} has no `{{{name}}}`: name one of its parameters, {}, or add `{{{name}}}` to the path",
                                path.value(),
                                names
                                    .iter()
                                    .map(|n| format!("`owner({n:?})`"))
                                    .collect::<Vec<_>>()
                                    .join(" or ")
                            ),
                        }
                    }
                };
                errs.at(lit.span(), msg);
            }
        }
        AllowExpr::Any(xs) | AllowExpr::All(xs) => {
            xs.iter().for_each(|x| check_allow(x, params, path, errs));
        }
        AllowExpr::Not(x) => check_allow(x, params, path, errs),
    }
}

/// Check an axum 0.8 path and return its capture names.
fn check_path(lit: &LitStr, errs: &mut Errors) -> Vec<String> {
    let path = lit.value();
    let span = lit.span();
    let mut names = Vec::new();
    if !path.starts_with('/') {
        errs.at(
            span,
            format!("a route path starts with `/`: write \"/{path}\""),
        );
        return names;
    }
    if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
    {
        errs.at(
            span,
            "a route path has no spaces, control characters, `?` or `#`",
        );
        return names;
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let count = segments.len();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            if i + 1 < count {
                errs.at(span, "a route path has no empty segments (`//`)");
                return names;
            }
            continue;
        }
        if let Some(name) = seg.strip_prefix(':') {
            errs.at(
                span,
                format!("axum 0.8 writes path parameters as `{{{name}}}`, not `:{name}`: replace `:{name}` with `{{{name}}}`"),
            );
            continue;
        }
        if let Some(name) = seg.strip_prefix('*') {
            errs.at(
                span,
                format!("axum 0.8 writes wildcards as `{{*{name}}}`, not `*{name}`"),
            );
            continue;
        }
        if seg.contains('{') || seg.contains('}') {
            let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                errs.at(
                    span,
                    format!("`{seg}`: a path parameter is a whole segment, like `/users/{{id}}`"),
                );
                continue;
            };
            let (wild, name) = match inner.strip_prefix('*') {
                Some(n) => (true, n),
                None => (false, inner),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                errs.at(
                    span,
                    format!(
                        "`{seg}`: a parameter name is an identifier, like `{{id}}` or `{{*rest}}`"
                    ),
                );
                continue;
            }
            if wild && i + 1 != count {
                errs.at(
                    span,
                    format!("the wildcard `{seg}` must be the last segment"),
                );
            }
            if names.iter().any(|n| n == name) {
                errs.at(
                    span,
                    format!("the parameter `{{{name}}}` appears twice in the path"),
                );
            }
            names.push(name.to_string());
        }
    }
    names
}

#[cfg(test)]
#[path = "check_props.rs"]
mod props;
