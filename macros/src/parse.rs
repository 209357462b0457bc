//! The attribute grammar: `METHOD "PATH" (, key [= value])*`.
//!
//! A hand-written parser: one branch per key, every token kept with its value so later
//! checks can point at it. Semantic mistakes (unknown or duplicate keys, bad values) are
//! collected and reported together; a syntax error stops parsing.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Ident, LitBool, LitStr, Token, bracketed, parenthesized};

pub(crate) use crate::units::suggest;

/// The parsed attribute.
pub(crate) struct Args {
    pub(crate) method: Ident,
    pub(crate) path: LitStr,
    pub(crate) public: Option<Ident>,
    pub(crate) auth: Option<(Ident, Option<LitStr>)>,
    pub(crate) role: Option<(Ident, RoleSpec)>,
    pub(crate) roles: Option<(Ident, Vec<RoleSpec>)>,
    pub(crate) scope: Option<(Ident, LitStr)>,
    pub(crate) scopes: Option<(Ident, Vec<LitStr>)>,
    pub(crate) allow: Option<(Ident, AllowExpr)>,
    pub(crate) rate: Option<(Ident, Vec<LitStr>)>,
    pub(crate) body_limit: Option<(Ident, LitStr)>,
    pub(crate) validate: Option<(Ident, LitBool)>,
    pub(crate) login: Option<Ident>,
    pub(crate) on_outage: Option<(Ident, LitStr)>,
}

/// A role: a string, or an expression of a type implementing `Role`.
pub(crate) enum RoleSpec {
    Name(LitStr),
    Typed(syn::Expr),
}

/// An `allow = …` expression.
pub(crate) enum AllowExpr {
    Role(RoleSpec),
    Scope(LitStr),
    Owner(LitStr),
    Any(Vec<AllowExpr>),
    All(Vec<AllowExpr>),
    Not(Box<AllowExpr>),
    Predicate(syn::Path),
}

pub(crate) const KEYS: &[&str] = &[
    "public",
    "auth",
    "role",
    "roles",
    "scope",
    "scopes",
    "allow",
    "rate",
    "body_limit",
    "validate",
    "login",
    "on_outage",
];

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

/// Parse the attribute's tokens. `Err` carries every error found.
pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
    let mut errors: Option<syn::Error> = None;
    let parser = |input: ParseStream<'_>| parse_args(input, &mut errors);
    let parsed = parser.parse2(tokens);
    match (parsed, errors) {
        (Ok(args), None) => Ok(args),
        (Ok(_), Some(e)) => Err(e),
        (Err(e), None) => Err(e),
        (Err(e), Some(mut all)) => {
            all.combine(e);
            Err(all)
        }
    }
}

fn push(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

fn parse_args(input: ParseStream<'_>, errors: &mut Option<syn::Error>) -> syn::Result<Args> {
    if input.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[secure] needs a method and a path: `#[secure(get \"/users/{id}\", role = \"admin\")]`",
        ));
    }
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "the HTTP method comes before the path: `#[secure(get {:?}, ...)]`",
                lit.value()
            ),
        ));
    }
    let method: Ident = input.call(syn::ext::IdentExt::parse_any).map_err(|e| {
        syn::Error::new(
            e.span(),
            "#[secure] starts with the HTTP method, lower-case, then the path: `#[secure(get \"/users\", ...)]`",
        )
    })?;
    if !input.peek(LitStr) {
        let lower = method.to_string().to_ascii_lowercase();
        let is_method = METHODS.contains(&lower.as_str()) || lower == "trace" || lower == "connect";
        if !is_method
            && (KEYS.contains(&lower.as_str())
                || input.is_empty()
                || input.peek(Token![,])
                || input.peek(Token![=]))
        {
            // `#[secure(public)]`, `#[secure(role = "admin")]`: the head is missing.
            return Err(syn::Error::new(
                method.span(),
                format!(
                    "#[secure] starts with the HTTP method and the path, then the keys: `#[secure(get \"/path\", {method}{})]`",
                    if input.peek(Token![=]) { " = ..." } else { "" }
                ),
            ));
        }
        check_method(&method, errors);
        let span = if input.is_empty() {
            method.span()
        } else {
            input.span()
        };
        return Err(syn::Error::new(
            span,
            format!(
                "expected the route path as a string after the method: `{lower} \"/users/{{id}}\"`"
            ),
        ));
    }
    check_method(&method, errors);
    let path: LitStr = input.parse()?;

    let mut args = Args {
        method,
        path,
        public: None,
        auth: None,
        role: None,
        roles: None,
        scope: None,
        scopes: None,
        allow: None,
        rate: None,
        body_limit: None,
        validate: None,
        login: None,
        on_outage: None,
    };

    while !input.is_empty() {
        input.parse::<Token![,]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected `,` here: keys are separated by commas, `#[secure(get \"/users\", auth, rate = \"5/min\")]`",
            )
        })?;
        if input.is_empty() {
            break;
        }
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        let name = key.to_string();
        macro_rules! set {
            ($field:ident, $value:expr) => {{
                let value = $value;
                if args.$field.is_some() {
                    push(
                        errors,
                        syn::Error::new(
                            key.span(),
                            format!("duplicate key `{name}`: give each key once"),
                        ),
                    );
                } else {
                    args.$field = Some((key.clone(), value));
                }
            }};
        }
        match name.as_str() {
            "public" => {
                if input.peek(Token![=]) {
                    return Err(syn::Error::new(
                        input.span(),
                        "`public` takes no value: write `public`",
                    ));
                }
                if args.public.is_some() {
                    push(
                        errors,
                        syn::Error::new(key.span(), "duplicate key `public`: give each key once"),
                    );
                }
                args.public = Some(key.clone());
            }
            "auth" => {
                let value = if input.peek(Token![=]) {
                    input.parse::<Token![=]>()?;
                    let lit: LitStr = input.parse().map_err(|e| {
                        syn::Error::new(
                            e.span(),
                            "expected `auth = \"jwt\"`, `\"api_key\"` or `\"any\"`",
                        )
                    })?;
                    if !matches!(lit.value().as_str(), "jwt" | "api_key" | "any") {
                        push(
                            errors,
                            syn::Error::new(
                                lit.span(),
                                format!(
                                    "unknown authenticator {:?}: write `auth = \"jwt\"`, `auth = \"api_key\"` or `auth = \"any\"`",
                                    lit.value()
                                ),
                            ),
                        );
                    }
                    Some(lit)
                } else {
                    None
                };
                set!(auth, value);
            }
            "role" => {
                eq(input, "role = \"admin\"")?;
                set!(role, parse_role(input)?);
            }
            "roles" => {
                eq(input, "roles = [\"admin\", \"editor\"]")?;
                let content;
                bracketed!(content in input);
                let list = Punctuated::<RoleSpecP, Token![,]>::parse_terminated(&content)?;
                set!(roles, list.into_iter().map(|r| r.0).collect::<Vec<_>>());
            }
            "scope" => {
                eq(input, "scope = \"users:write\"")?;
                set!(scope, lit_str(input, "scope = \"users:write\"")?);
            }
            "scopes" => {
                eq(input, "scopes = [\"users:read\", \"users:write\"]")?;
                let content;
                bracketed!(content in input);
                let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
                set!(scopes, list.into_iter().collect::<Vec<_>>());
            }
            "allow" => {
                eq(input, "allow = any(role(\"admin\"), owner(\"id\"))")?;
                set!(allow, parse_allow(input)?);
            }
            "rate" => {
                eq(input, "rate = \"5/min\"")?;
                let list = if input.peek(syn::token::Bracket) {
                    let content;
                    bracketed!(content in input);
                    Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?
                        .into_iter()
                        .collect()
                } else {
                    vec![lit_str(
                        input,
                        "rate = \"5/min\" or rate = [\"5/min\", \"1000/day\"]",
                    )?]
                };
                set!(rate, list);
            }
            "body_limit" => {
                eq(input, "body_limit = \"64KiB\"")?;
                set!(body_limit, lit_str(input, "body_limit = \"64KiB\"")?);
            }
            "login" => {
                if input.peek(Token![=]) {
                    return Err(syn::Error::new(
                        input.span(),
                        "`login` takes no value: write `login`",
                    ));
                }
                if args.login.is_some() {
                    push(
                        errors,
                        syn::Error::new(key.span(), "duplicate key `login`: give each key once"),
                    );
                }
                args.login = Some(key.clone());
            }
            "on_outage" => {
                eq(input, "on_outage = \"fail_closed\"")?;
                let lit = lit_str(
                    input,
                    "on_outage = \"fail_closed\" or on_outage = \"local\"",
                )?;
                if !matches!(lit.value().as_str(), "fail_closed" | "local") {
                    push(
                        errors,
                        syn::Error::new(
                            lit.span(),
                            format!(
                                "unknown outage policy {:?}: write `on_outage = \"fail_closed\"` (503 while the rate store is down) or `on_outage = \"local\"` (enforce the quota in this instance's memory)",
                                lit.value()
                            ),
                        ),
                    );
                }
                set!(on_outage, lit);
            }
            "validate" => {
                eq(input, "validate = false")?;
                let b: LitBool = input.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected `validate = false` (or `validate = true`)",
                    )
                })?;
                set!(validate, b);
            }
            _ => {
                let hint = match suggest(&name, KEYS) {
                    Some(s) => format!("unknown key `{name}`; did you mean `{s}`?"),
                    None => format!("unknown key `{name}`; expected one of: {}", KEYS.join(", ")),
                };
                push(errors, syn::Error::new(key.span(), hint));
                // Skip this item's value so the remaining keys are still checked.
                while !input.is_empty() && !input.peek(Token![,]) {
                    input.parse::<TokenTree>()?;
                }
            }
        }
    }
    Ok(args)
}

fn check_method(method: &Ident, errors: &mut Option<syn::Error>) {
    let m = method.to_string();
    if METHODS.contains(&m.as_str()) {
        return;
    }
    let lower = m.to_ascii_lowercase();
    let msg = if lower == "trace" {
        format!(
            "TRACE is refused: it echoes requests back, credentials included (cross-site tracing); use one of {}",
            METHODS.join(", ")
        )
    } else if lower == "connect" {
        format!(
            "CONNECT is refused: it opens a tunnel, not an API route; use one of {}",
            METHODS.join(", ")
        )
    } else if METHODS.contains(&lower.as_str()) {
        format!("write the method in lower case: `{lower}`")
    } else if let Some(s) = suggest(&lower, METHODS) {
        format!("unknown HTTP method `{m}`; did you mean `{s}`?")
    } else {
        format!(
            "unknown HTTP method `{m}`: use one of {} (lower-case)",
            METHODS.join(", ")
        )
    };
    push(errors, syn::Error::new(method.span(), msg));
}

fn eq(input: ParseStream<'_>, example: &str) -> syn::Result<()> {
    input
        .parse::<Token![=]>()
        .map(|_| ())
        .map_err(|e| syn::Error::new(e.span(), format!("expected `=` here: `{example}`")))
}

fn lit_str(input: ParseStream<'_>, example: &str) -> syn::Result<LitStr> {
    input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), format!("expected a string: `{example}`")))
}

struct RoleSpecP(RoleSpec);

impl syn::parse::Parse for RoleSpecP {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        parse_role(input).map(RoleSpecP)
    }
}

fn parse_role(input: ParseStream<'_>) -> syn::Result<RoleSpec> {
    if input.peek(LitStr) {
        return Ok(RoleSpec::Name(input.parse()?));
    }
    let path: syn::ExprPath = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a role: a string (`\"admin\"`) or a typed role (`Role::Admin`)",
        )
    })?;
    Ok(RoleSpec::Typed(syn::Expr::Path(path)))
}

fn parse_allow(input: ParseStream<'_>) -> syn::Result<AllowExpr> {
    let path: syn::Path = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a policy expression: role(..), scope(..), owner(\"param\"), any(..), all(..), not(..) or a path to a predicate fn",
        )
    })?;
    if !input.peek(syn::token::Paren) {
        return Ok(AllowExpr::Predicate(path));
    }
    let content;
    let paren = parenthesized!(content in input);
    let called = || {
        let text = quote::ToTokens::to_token_stream(&path)
            .to_string()
            .replace(' ', "");
        format!(
            "`{text}(..)` calls a function: name a predicate `fn(&Principal, &Parts) -> bool` without calling it, `allow = {text}`; the policy functions are role(..), scope(..), owner(..), any(..), all(..) and not(..)"
        )
    };
    let Some(ident) = path.get_ident() else {
        return Err(syn::Error::new_spanned(&path, called()));
    };
    let name = ident.to_string();
    let one_str = |what: &str| -> syn::Result<LitStr> {
        let lit: LitStr = content.parse().map_err(|e| {
            syn::Error::new(e.span(), format!("expected a string: `{what}(\"...\")`"))
        })?;
        if !content.is_empty() {
            return Err(content.error(format!("`{what}` takes one string")));
        }
        Ok(lit)
    };
    match name.as_str() {
        "role" => {
            let r = parse_role(&content)?;
            if !content.is_empty() {
                return Err(content.error("`role` takes one role"));
            }
            Ok(AllowExpr::Role(r))
        }
        "scope" => Ok(AllowExpr::Scope(one_str("scope")?)),
        "owner" => Ok(AllowExpr::Owner(one_str("owner")?)),
        "any" | "all" => {
            let list = Punctuated::<AllowP, Token![,]>::parse_terminated(&content)?;
            if list.is_empty() {
                return Err(syn::Error::new(
                    paren.span.join(),
                    format!("`{name}(..)` needs at least one expression"),
                ));
            }
            let xs = list.into_iter().map(|a| a.0).collect();
            Ok(if name == "any" {
                AllowExpr::Any(xs)
            } else {
                AllowExpr::All(xs)
            })
        }
        "not" => {
            let inner = parse_allow(&content)?;
            if !content.is_empty() {
                return Err(content.error("`not` takes one expression"));
            }
            Ok(AllowExpr::Not(Box::new(inner)))
        }
        other => {
            let hint = match suggest(other, &["role", "scope", "owner", "any", "all", "not"]) {
                Some(s) => format!("unknown policy function `{other}`; did you mean `{s}`?"),
                None => called(),
            };
            Err(syn::Error::new(ident.span(), hint))
        }
    }
}

struct AllowP(AllowExpr);

impl syn::parse::Parse for AllowP {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        parse_allow(input).map(AllowP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("rtae", KEYS), Some("rate"));
        assert_eq!(suggest("rol", KEYS), Some("role"));
        assert_eq!(suggest("bodylimit", KEYS), Some("body_limit"));
        assert_eq!(suggest("colour", KEYS), None);
        assert_eq!(suggest("fetch", METHODS), None);
        assert_eq!(suggest("pots", METHODS), Some("post"));
        assert_eq!(suggest("mni", &["s", "min", "h", "day"]), Some("min"));
    }
}
