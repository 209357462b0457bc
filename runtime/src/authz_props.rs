//! Property tests of authorization: the compiled `allow` evaluator (role bit masks, the
//! hierarchy's closure) against a reference evaluator that works on names, over random
//! expressions, hierarchies, principals and paths; and cycle detection against a reference
//! search.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use proptest::prelude::*;
use tower::ServiceExt;

use super::{Compiled, RoleError, RoleHierarchy, RoleTable, expr_roles};
use crate::policy::{Expr, RoleRef};
use crate::principal::Principal;

const ROLES: &[&str] = &["admin", "editor", "viewer", "billing", "support", "auditor"];
const SCOPES: &[&str] = &["users:read", "users:write", "notes:read", "admin"];
const PARAMS: &[&str] = &["id", "org", "missing"];
const SUBJECTS: &[&str] = &["alice", "bob", "usr_1", "", "a%2Fb", "ünï"];

/// An `allow` expression as the reference sees it: names, not bits.
#[derive(Debug, Clone)]
enum Model {
    Role(&'static str),
    Scope(&'static str),
    Owner(&'static str),
    Any(Vec<Model>),
    All(Vec<Model>),
    Not(Box<Model>),
    /// One of [`PREDICATES`].
    Predicate(usize),
}

fn p_true(_: &Principal, _: &Parts) -> bool {
    true
}
fn p_false(_: &Principal, _: &Parts) -> bool {
    false
}
fn p_alice_on_org(p: &Principal, parts: &Parts) -> bool {
    p.subject() == "alice" && parts.uri.path().contains("/acme")
}
const PREDICATES: &[fn(&Principal, &Parts) -> bool] = &[p_true, p_false, p_alice_on_org];

fn model() -> impl Strategy<Value = Model> {
    let leaf = prop_oneof![
        prop::sample::select(ROLES).prop_map(Model::Role),
        Just(Model::Role("ghost")),
        prop::sample::select(SCOPES).prop_map(Model::Scope),
        prop::sample::select(PARAMS).prop_map(Model::Owner),
        (0..PREDICATES.len()).prop_map(Model::Predicate),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Model::Any),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Model::All),
            inner.prop_map(|m| Model::Not(Box::new(m))),
        ]
    })
}

/// The runtime's `Expr` for a model (leaked: `Expr` holds `'static` slices, as generated
/// code does).
fn to_expr(m: &Model) -> Expr {
    match m {
        Model::Role(r) => Expr::Role(RoleRef::Name(r)),
        Model::Scope(s) => Expr::Scope(s),
        Model::Owner(p) => Expr::Owner(p),
        Model::Any(xs) => Expr::Any(Box::leak(xs.iter().map(to_expr).collect::<Vec<_>>().into())),
        Model::All(xs) => Expr::All(Box::leak(xs.iter().map(to_expr).collect::<Vec<_>>().into())),
        Model::Not(x) => Expr::Not(Box::leak(Box::new(to_expr(x)))),
        Model::Predicate(i) => Expr::Predicate(PREDICATES[*i]),
    }
}

/// Every role `held` implies, by a plain graph search over the named edges.
fn closure(edges: &[(usize, usize)], held: &[&str]) -> HashSet<String> {
    let mut out: HashSet<String> = held.iter().map(|s| s.to_string()).collect();
    let mut todo: Vec<String> = out.iter().cloned().collect();
    while let Some(r) = todo.pop() {
        for (from, to) in edges {
            if ROLES[*from] == r && out.insert(ROLES[*to].to_string()) {
                todo.push(ROLES[*to].to_string());
            }
        }
    }
    out
}

struct Case<'a> {
    roles: &'a HashSet<String>,
    scopes: &'a [&'static str],
    subject: &'a str,
    params: &'a HashMap<String, String>,
    parts: &'a Parts,
    principal: &'a Principal,
}

fn reference(m: &Model, c: &Case<'_>) -> bool {
    match m {
        Model::Role(r) => c.roles.contains(*r),
        Model::Scope(s) => c.scopes.contains(s),
        Model::Owner(p) => c.params.get(*p).is_some_and(|v| v == c.subject),
        Model::Any(xs) => xs.iter().any(|x| reference(x, c)),
        Model::All(xs) => xs.iter().all(|x| reference(x, c)),
        Model::Not(x) => !reference(x, c),
        Model::Predicate(i) => PREDICATES[*i](c.principal, c.parts),
    }
}

/// The request parts and path parameters axum's router produces for `/r/{id}/{org}`.
fn routed(id: &str, org: &str) -> (Parts, RawPathParams) {
    let seen: Arc<Mutex<Option<Parts>>> = Arc::default();
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/r/{id}/{org}",
        axum::routing::get(move |parts: Parts| {
            let keep = keep.clone();
            async move {
                *keep.lock().unwrap() = Some(parts);
            }
        }),
    );
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let uri = format!("/r/{}/{}", enc(id), enc(org));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let req = axum::http::Request::get(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        let mut parts = seen.lock().unwrap().take().expect("the route ran");
        let params = RawPathParams::from_request_parts(&mut parts, &())
            .await
            .expect("params");
        (parts, params)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn compiled_allow_agrees_with_the_reference(
        m in model(),
        // Acyclic by construction: edges only go from a lower to a higher index.
        raw_edges in prop::collection::vec((0..ROLES.len(), 0..ROLES.len()), 0..12),
        // Mostly roles high in the hierarchy, so that implied roles (chains) are exercised.
        held in prop::collection::vec(prop_oneof![3 => prop::sample::select(&ROLES[..2]), 2 => prop::sample::select(ROLES), 1 => Just("ghost"), 1 => Just("ADMIN")], 0..3),
        scopes in prop::collection::vec(prop::sample::select(SCOPES), 0..3),
        subject in prop::sample::select(SUBJECTS),
        // A path segment is never empty (axum would not route it).
        id in prop::sample::select(SUBJECTS).prop_filter("non-empty", |s| !s.is_empty()),
        org in prop_oneof![prop::sample::select(SUBJECTS), Just("acme")].prop_filter("non-empty", |s| !s.is_empty()),
        with_params: bool,
    ) {
        let edges: Vec<(usize, usize)> = raw_edges
            .into_iter()
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (a.min(b), a.max(b)))
            .collect();
        let mut hierarchy = RoleHierarchy::new();
        for (a, b) in &edges {
            hierarchy = hierarchy.grant(ROLES[*a], [ROLES[*b]]);
        }
        let expr = to_expr(&m);
        let mut referenced = Vec::new();
        expr_roles(&expr, &mut referenced);
        let table = RoleTable::build(&hierarchy, referenced).expect("acyclic");
        let compiled = Compiled::compile(&expr, &table);

        let mut principal = Principal::new(subject).with_roles(held.iter().copied()).with_scopes(scopes.iter().copied());
        principal.role_mask = table.mask(principal.roles());
        let (parts, raw) = routed(id, org);
        let params: HashMap<String, String> = if with_params {
            raw.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        } else {
            HashMap::new()
        };
        let roles = closure(&edges, &held);
        let case = Case { roles: &roles, scopes: &scopes, subject, params: &params, parts: &parts, principal: &principal };
        let want = reference(&m, &case);
        let got = compiled.eval(&principal, &parts, with_params.then_some(&raw));
        prop_assert_eq!(got, want, "{:?} for {} holding {:?} (hierarchy {:?})", m, subject, held, edges);
    }

    /// `role("r")` holds exactly when `r` is held or implied, for every role and every
    /// acyclic hierarchy.
    #[test]
    fn role_masks_are_the_hierarchys_closure(
        raw_edges in prop::collection::vec((0..ROLES.len(), 0..ROLES.len()), 0..12),
        held in prop::collection::vec(prop_oneof![prop::sample::select(ROLES), Just("ghost")], 0..3),
    ) {
        let edges: Vec<(usize, usize)> = raw_edges
            .into_iter()
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (a.min(b), a.max(b)))
            .collect();
        let mut hierarchy = RoleHierarchy::new();
        for (a, b) in &edges {
            hierarchy = hierarchy.grant(ROLES[*a], [ROLES[*b]]);
        }
        let table = RoleTable::build(&hierarchy, ROLES.iter().copied()).expect("acyclic");
        let held: Vec<String> = held.iter().map(|s| s.to_string()).collect();
        let mask = table.mask(&held);
        let refs: Vec<&str> = held.iter().map(String::as_str).collect();
        let want = closure(&edges, &refs);
        for r in ROLES {
            prop_assert_eq!(mask & table.bit(r) != 0, want.contains(*r), "{} for {:?} under {:?}", r, held, edges);
        }
        prop_assert_eq!(table.bit("ghost"), 0, "a role no policy names has no bit");
    }

    #[test]
    fn a_hierarchy_is_refused_exactly_when_it_has_a_cycle(
        edges in prop::collection::vec((0..ROLES.len(), 0..ROLES.len()), 0..10),
    ) {
        let mut hierarchy = RoleHierarchy::new();
        for (a, b) in &edges {
            hierarchy = hierarchy.grant(ROLES[*a], [ROLES[*b]]);
        }
        // Reference: a cycle exists iff some role reaches itself.
        let reaches_itself = (0..ROLES.len()).any(|r| {
            let mut seen = HashSet::new();
            let mut todo = vec![r];
            while let Some(v) = todo.pop() {
                for (a, b) in &edges {
                    if *a == v {
                        if *b == r {
                            return true;
                        }
                        if seen.insert(*b) {
                            todo.push(*b);
                        }
                    }
                }
            }
            false
        });
        match RoleTable::build(&hierarchy, []) {
            Ok(_) => prop_assert!(!reaches_itself),
            Err(RoleError::Cycle(path)) => {
                prop_assert!(reaches_itself);
                // The reported path is a real cycle of the declared edges.
                prop_assert!(path.len() >= 2);
                prop_assert_eq!(path.first(), path.last());
                for w in path.windows(2) {
                    prop_assert!(edges.iter().any(|(a, b)| ROLES[*a] == w[0] && ROLES[*b] == w[1]), "{:?} is not an edge", w);
                }
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}
