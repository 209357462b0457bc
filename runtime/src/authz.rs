//! Authorization: roles (any of, with a hierarchy), scopes (all of) and `allow` expressions.
//!
//! Role names are resolved once, at build: every role any policy or the hierarchy names
//! gets a bit, and each role's mask includes every role it implies. Checking a route's role
//! requirement is then one AND of two `u64`s.
//!
//! ```
//! use shieldwall_runtime::authz::RoleHierarchy;
//!
//! // admin implies editor, editor implies viewer.
//! let h = RoleHierarchy::new().grant("admin", ["editor"]).grant("editor", ["viewer"]);
//! # let _ = h;
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::RawPathParams;
use axum::http::request::Parts;

use crate::policy::{Expr, Predicate, Role, RoleRef};
use crate::principal::Principal;

/// Most distinct role names an app may use.
pub const MAX_ROLES: usize = 64;

/// Role inheritance: `grant(a, [b, c])` means holders of `a` also hold `b` and `c`.
#[derive(Debug, Clone, Default)]
pub struct RoleHierarchy {
    edges: Vec<(String, Vec<String>)>,
}

impl RoleHierarchy {
    /// An empty hierarchy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Holders of `role` also hold each of `implies`.
    pub fn grant<I, T>(mut self, role: impl Into<String>, implies: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.edges
            .push((role.into(), implies.into_iter().map(Into::into).collect()));
        self
    }

    /// Typed form of [`RoleHierarchy::grant`].
    pub fn grant_typed<R: Role>(self, role: R, implies: impl IntoIterator<Item = R>) -> Self {
        self.grant(role.name(), implies.into_iter().map(|r| r.name()))
    }
}

/// Why the role configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoleError {
    /// The hierarchy has a cycle.
    #[error("the role hierarchy has a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// More than [`MAX_ROLES`] distinct roles.
    #[error("more than {MAX_ROLES} distinct roles are named by policies and the hierarchy")]
    TooMany,
}

/// Role names resolved to bits, with the hierarchy's closure.
#[derive(Debug, Default)]
pub(crate) struct RoleTable {
    /// Looked up on every authenticated request: ahash (randomly keyed), not SipHash.
    index: HashMap<Arc<str>, usize, ahash::RandomState>,
    implied: Vec<u64>,
}

impl RoleTable {
    pub(crate) fn build<'a>(
        hierarchy: &RoleHierarchy,
        referenced: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, RoleError> {
        let mut names: Vec<Arc<str>> = Vec::new();
        let mut index: HashMap<Arc<str>, usize, ahash::RandomState> = HashMap::default();
        let mut intern = |n: &str, names: &mut Vec<Arc<str>>| -> Result<usize, RoleError> {
            if let Some(i) = index.get(n) {
                return Ok(*i);
            }
            if names.len() == MAX_ROLES {
                return Err(RoleError::TooMany);
            }
            let a: Arc<str> = n.into();
            index.insert(a.clone(), names.len());
            names.push(a);
            Ok(names.len() - 1)
        };
        let mut edges: Vec<Vec<usize>> = Vec::new();
        for (role, implies) in &hierarchy.edges {
            let r = intern(role, &mut names)?;
            for i in implies {
                let i = intern(i, &mut names)?;
                edges.resize(names.len().max(edges.len()), Vec::new());
                edges[r].push(i);
            }
        }
        for n in referenced {
            intern(n, &mut names)?;
        }
        edges.resize(names.len(), Vec::new());
        // Cycle detection (DFS colours), reporting the cycle's path.
        let mut colour = vec![0u8; names.len()];
        fn dfs(
            v: usize,
            edges: &[Vec<usize>],
            colour: &mut [u8],
            stack: &mut Vec<usize>,
        ) -> Option<Vec<usize>> {
            colour[v] = 1;
            stack.push(v);
            for &w in &edges[v] {
                if colour[w] == 1 {
                    let start = stack.iter().position(|x| *x == w).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(w);
                    return Some(cycle);
                }
                if colour[w] == 0
                    && let Some(c) = dfs(w, edges, colour, stack)
                {
                    return Some(c);
                }
            }
            stack.pop();
            colour[v] = 2;
            None
        }
        for v in 0..names.len() {
            if colour[v] == 0
                && let Some(cycle) = dfs(v, &edges, &mut colour, &mut Vec::new())
            {
                return Err(RoleError::Cycle(
                    cycle.into_iter().map(|i| names[i].to_string()).collect(),
                ));
            }
        }
        // Transitive closure: acyclic, so a memoised DFS terminates.
        fn closure(v: usize, edges: &[Vec<usize>], memo: &mut [Option<u64>]) -> u64 {
            if let Some(m) = memo[v] {
                return m;
            }
            let mut m = 1u64 << v;
            for &w in &edges[v] {
                m |= closure(w, edges, memo);
            }
            memo[v] = Some(m);
            m
        }
        let mut memo = vec![None; names.len()];
        let implied = (0..names.len())
            .map(|v| closure(v, &edges, &mut memo))
            .collect();
        Ok(Self { index, implied })
    }

    /// Bit of a role named in a policy (always present: policies' roles are interned).
    pub(crate) fn bit(&self, name: &str) -> u64 {
        self.index.get(name).map_or(0, |i| 1u64 << i)
    }

    /// The mask a principal holding `roles` satisfies, hierarchy applied.
    pub(crate) fn mask(&self, roles: &[String]) -> u64 {
        roles
            .iter()
            .filter_map(|r| self.index.get(r.as_str()))
            .fold(0, |m, i| m | self.implied[*i])
    }
}

/// An `allow` expression with role names resolved to bits.
#[derive(Debug)]
pub(crate) enum Compiled {
    Roles(u64),
    Scope(&'static str),
    Owner(&'static str),
    Any(Vec<Compiled>),
    All(Vec<Compiled>),
    Not(Box<Compiled>),
    Predicate(PredicateFn),
}

pub(crate) struct PredicateFn(Predicate);

impl std::fmt::Debug for PredicateFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("predicate")
    }
}

impl Compiled {
    pub(crate) fn compile(expr: &Expr, roles: &RoleTable) -> Self {
        match expr {
            Expr::Role(r) => Self::Roles(roles.bit(r.name())),
            Expr::Scope(s) => Self::Scope(s),
            Expr::Owner(p) => Self::Owner(p),
            Expr::Any(xs) => Self::Any(xs.iter().map(|x| Self::compile(x, roles)).collect()),
            Expr::All(xs) => Self::All(xs.iter().map(|x| Self::compile(x, roles)).collect()),
            Expr::Not(x) => Self::Not(Box::new(Self::compile(x, roles))),
            Expr::Predicate(p) => Self::Predicate(PredicateFn(*p)),
        }
    }

    pub(crate) fn uses_owner(&self) -> bool {
        match self {
            Self::Owner(_) => true,
            Self::Any(xs) | Self::All(xs) => xs.iter().any(Self::uses_owner),
            Self::Not(x) => x.uses_owner(),
            _ => false,
        }
    }

    pub(crate) fn eval(
        &self,
        p: &Principal,
        parts: &Parts,
        params: Option<&RawPathParams>,
    ) -> bool {
        match self {
            Self::Roles(m) => p.role_mask & m != 0,
            Self::Scope(s) => p.has_scope(s),
            Self::Owner(name) => params
                .and_then(|ps| {
                    ps.iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v == p.subject())
                })
                .unwrap_or(false),
            Self::Any(xs) => xs.iter().any(|x| x.eval(p, parts, params)),
            Self::All(xs) => xs.iter().all(|x| x.eval(p, parts, params)),
            Self::Not(x) => !x.eval(p, parts, params),
            Self::Predicate(f) => (f.0)(p, parts),
        }
    }
}

/// Every role name an expression mentions.
pub(crate) fn expr_roles(expr: &Expr, out: &mut Vec<&'static str>) {
    match expr {
        Expr::Role(r) => out.push(r.name()),
        Expr::Any(xs) | Expr::All(xs) => xs.iter().for_each(|x| expr_roles(x, out)),
        Expr::Not(x) => expr_roles(x, out),
        _ => {}
    }
}

/// Every role name a list of role refs mentions.
pub(crate) fn ref_names(refs: &[RoleRef]) -> impl Iterator<Item = &'static str> + '_ {
    refs.iter().map(RoleRef::name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_closure() {
        let h = RoleHierarchy::new()
            .grant("admin", ["editor"])
            .grant("editor", ["viewer"]);
        let t = RoleTable::build(&h, ["viewer", "other"]).unwrap();
        let admin = t.mask(&["admin".into()]);
        assert_ne!(admin & t.bit("viewer"), 0);
        assert_ne!(admin & t.bit("editor"), 0);
        assert_eq!(admin & t.bit("other"), 0);
        let viewer = t.mask(&["viewer".into()]);
        assert_eq!(viewer & t.bit("admin"), 0);
        assert_eq!(t.mask(&["unknown".into()]), 0);
    }

    #[test]
    fn cycle_refused() {
        let h = RoleHierarchy::new()
            .grant("a", ["b"])
            .grant("b", ["c"])
            .grant("c", ["a"]);
        let e = RoleTable::build(&h, []).unwrap_err();
        assert_eq!(
            e,
            RoleError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        let self_loop = RoleHierarchy::new().grant("a", ["a"]);
        assert!(RoleTable::build(&self_loop, []).is_err());
    }
}

#[cfg(test)]
#[path = "authz_props.rs"]
mod props;
