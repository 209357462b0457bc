//! Meaning checks: everything the runtime would reject, caught at compile time with a
//! message that says what to write instead. Produces the [`Model`] that `expand` renders.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, LitStr, PathArguments, Type};

use crate::parse::{AllowExpr, Args, RoleSpec, suggest};

/// Whose budget a limit charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Per {
    User,
    Ip,
    Key,
    Global,
}

pub(crate) struct RateM {
    pub(crate) count: u32,
    pub(crate) period_secs: u64,
    pub(crate) per: Per,
    pub(crate) burst: u32,
    pub(crate) text: String,
}

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

/// Parse `N/unit`, `N/Kunit`, optionally followed by `per who` and `burst N`.
pub(crate) fn parse_rate(text: &str, public: bool) -> Result<RateM, String> {
    const FORM: &str = "write a rate as \"COUNT/UNIT [per user|ip|key|global] [burst N]\", e.g. \"5/min\", \"100/10s per ip\", \"1000/day burst 50\"";
    let mut words = text.split_whitespace();
    let Some(head) = words.next() else {
        return Err(format!("empty rate: {FORM}"));
    };
    let Some((count, period)) = head.split_once('/') else {
        // "5 per min", "5 min", "5min": say the rate the user most likely meant.
        let rest: Vec<&str> = words
            .filter(|w| *w != "per" && *w != "a" && *w != "every")
            .collect();
        let digits = head.chars().take_while(|c| c.is_ascii_digit()).count();
        let (n, unit) = head.split_at(digits);
        let unit = if unit.is_empty() {
            rest.first().copied().unwrap_or("")
        } else {
            unit
        };
        return Err(if !n.is_empty() && !unit.is_empty() {
            format!("{text:?} is not a rate: write \"{n}/{unit}\" (COUNT/UNIT, with a slash)")
        } else {
            format!("{text:?} has no `/`: {FORM}")
        });
    };
    let count: u32 = match count.parse() {
        Ok(0) => return Err("a rate admits at least 1 request: write \"1/min\" or more".into()),
        Ok(n) => n,
        Err(_) => return Err(format!("{count:?} is not a request count: {FORM}")),
    };
    let digits = period.chars().take_while(|c| c.is_ascii_digit()).count();
    let (mult, unit) = period.split_at(digits);
    let mult: u64 = if mult.is_empty() {
        1
    } else {
        match mult.parse() {
            Ok(0) => {
                return Err(
                    "a rate's period must be at least 1 second: write \"5/1s\" or \"5/min\"".into(),
                );
            }
            Ok(n) => n,
            Err(_) => return Err(format!("{mult:?} is not a period length: {FORM}")),
        }
    };
    const UNITS: &[(&str, u64)] = &[
        ("s", 1),
        ("sec", 1),
        ("secs", 1),
        ("second", 1),
        ("seconds", 1),
        ("m", 60),
        ("min", 60),
        ("mins", 60),
        ("minute", 60),
        ("minutes", 60),
        ("h", 3600),
        ("hour", 3600),
        ("hours", 3600),
        ("d", 86_400),
        ("day", 86_400),
        ("days", 86_400),
    ];
    let Some(secs) = UNITS.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s) else {
        let names: Vec<&str> = UNITS.iter().map(|(u, _)| *u).collect();
        return Err(
            match suggest(
                unit,
                &["s", "min", "h", "day", "sec", "hour", "minute", "second"],
            )
            .filter(|_| !unit.is_empty())
            .or_else(|| suggest(unit, &names))
            {
                Some(s) => format!(
                    "unknown time unit `{unit}` in {text:?}; did you mean `{s}`? (units: s, min, h, day)"
                ),
                None => format!(
                    "unknown time unit `{unit}` in {text:?}: use s, min, h or day, e.g. \"5/min\""
                ),
            },
        );
    };
    let period_secs = mult.checked_mul(secs).ok_or("the period is too long")?;
    if period_secs > 366 * 86_400 {
        return Err("a rate's period is at most one year".into());
    }
    let mut per = if public { Per::Ip } else { Per::User };
    let mut burst = count;
    let mut seen_per = false;
    let mut seen_burst = false;
    while let Some(w) = words.next() {
        match w {
            "per" => {
                if seen_per {
                    return Err("`per` appears twice in the rate".into());
                }
                seen_per = true;
                per = match words.next() {
                    Some("user") => Per::User,
                    Some("ip") => Per::Ip,
                    Some("key") => Per::Key,
                    Some("global") => Per::Global,
                    Some(other) => {
                        return Err(match suggest(other, &["user", "ip", "key", "global"]) {
                            Some(s) => format!("`per {other}`: did you mean `per {s}`?"),
                            None => format!(
                                "`per {other}`: charge a rate `per user`, `per ip`, `per key` or `global`"
                            ),
                        });
                    }
                    None => {
                        return Err("`per` needs whom to charge: `per user`, `per ip`, `per key` or `global`".into());
                    }
                };
            }
            "global" => {
                if seen_per {
                    return Err("`per` appears twice in the rate".into());
                }
                seen_per = true;
                per = Per::Global;
            }
            "burst" => {
                if seen_burst {
                    return Err("`burst` appears twice in the rate".into());
                }
                seen_burst = true;
                burst = match words.next().map(str::parse::<u32>) {
                    Some(Ok(0)) => {
                        return Err("`burst 0` admits nothing: burst is at least 1".into());
                    }
                    Some(Ok(n)) => n,
                    _ => return Err("`burst` takes a number: \"5/min burst 10\"".into()),
                };
            }
            other => {
                return Err(match suggest(other, &["per", "burst", "global"]) {
                    Some(s) => {
                        format!("unexpected `{other}` in the rate; did you mean `{s}`? {FORM}")
                    }
                    None => format!("unexpected `{other}` in the rate: {FORM}"),
                });
            }
        }
    }
    if public && matches!(per, Per::User | Per::Key) {
        return Err(format!(
            "a `public` route has no authenticated caller to charge `per {}`: use `per ip` or `global`",
            if per == Per::User { "user" } else { "key" }
        ));
    }
    Ok(RateM {
        count,
        period_secs,
        per,
        burst,
        text: text.split_whitespace().collect::<Vec<_>>().join(" "),
    })
}

/// Parse a byte size: `64KiB`, `1 MiB`, `512B`, `10KB`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    const FORM: &str = "write a size as a number and a unit: \"64KiB\", \"1MiB\", \"512B\"";
    let t = text.trim();
    let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
    let (num, unit) = t.split_at(digits);
    let unit = unit.trim();
    if num.is_empty() {
        return Err(format!("{text:?} does not start with a number: {FORM}"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{num:?} is too large: {FORM}"))?;
    let mult: u64 = match unit {
        "B" | "" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1024,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        other => {
            let units = ["B", "KB", "KiB", "MB", "MiB", "GB", "GiB"];
            return Err(match units.iter().find(|u| u.eq_ignore_ascii_case(other)) {
                Some(u) => format!("write the unit as `{u}`, not `{other}`"),
                None => format!("unknown size unit `{other}`: {FORM}"),
            });
        }
    };
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| "the size is too large".to_string())?;
    if bytes == 0 {
        return Err(
            "a body limit of 0 refuses every body: give at least 1 byte, e.g. \"1KiB\"".into(),
        );
    }
    if bytes > 1 << 30 {
        return Err(
            "a body limit above 1GiB is not supported: stream large uploads instead".into(),
        );
    }
    Ok(bytes)
}

#[cfg(test)]
#[path = "check_props.rs"]
mod props;
