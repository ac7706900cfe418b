//! Span names of requests: a capped table per scope, so names made from what clients send
//! (paths, hosts, gRPC methods) cannot grow the function table without bound.

use monkit::{Func, Registry};
use parking_lot::RwLock;
use rustc_hash::FxHashMap as HashMap;

/// Most distinct span names one scope of request spans holds, however many layers feed it (a
/// server often builds one service per connection); past this, names become `<METHOD> other`.
/// Each refusal is counted (`cardinality_refused` in scope `monkit`), the folded span is
/// annotated with the name it stands for (`http.route.folded`), and the last quarter of the
/// room goes only to names asked for repeatedly (see `monkit::Scope::func_within`), so junk
/// sent first does not keep real routes out. Route templates (axum's `MatchedPath`) are the
/// real fix.
pub const MAX_NAMES: usize = 256;

/// The methods that name their own spans; any other method is `OTHER`, so a client inventing
/// methods cannot grow the function table either.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The method as a span name part: a standard method, or `OTHER`.
///
/// ```
/// assert_eq!(monkit_tower::method_name("GET"), "GET");
/// assert_eq!(monkit_tower::method_name("BREW"), "OTHER");
/// ```
pub fn method_name(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

/// The default route of a path: segments that look like ids (numbers, long hex, UUIDs) become
/// `{id}`, so `/users/42` and `/users/43` are one span name.
///
/// ```
/// assert_eq!(monkit_tower::default_route("/users/42/orders"), "/users/{id}/orders");
/// ```
pub fn default_route(path: &str) -> String {
    let idish = |s: &str| {
        !s.is_empty()
            && (s.bytes().all(|b| b.is_ascii_digit())
                || (s.len() >= 8 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')))
    };
    let segs: Vec<&str> = path
        .split('/')
        .map(|s| if idish(s) { "{id}" } else { s })
        .collect();
    let r = segs.join("/");
    if r.is_empty() {
        "/".into()
    } else {
        r
    }
}

/// Functions by span name: a layer's own cache in front of its scope, with the cap kept by
/// the scope's function count (shared by every layer of that scope). Keyed by prefix, then by
/// the rest, so a hit looks both up as they came, building no string. Fx hashing: the table
/// is capped, so colliding names chosen by a client cost at most a scan of a bounded bucket.
pub(crate) struct Names {
    registry: Registry,
    scope: monkit::Scope,
    funcs: RwLock<HashMap<String, HashMap<String, Func>>>,
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl Names {
    pub(crate) fn new(registry: &Registry, scope: &str) -> Names {
        Names {
            registry: registry.clone(),
            scope: registry.scope(scope),
            funcs: RwLock::new(HashMap::default()),
        }
    }

    /// A table of the same registry's scope `scope`.
    pub(crate) fn in_scope(&self, scope: &str) -> Names {
        Names::new(&self.registry, scope)
    }

    /// The function of `prefix what` (`GET /users/{id}`; just `what` when `prefix` is
    /// empty), and whether it is the scope's stand-in `<prefix> other` (the name table was
    /// full): the caller then says on the span which name it holds.
    pub(crate) fn func(&self, prefix: &str, what: &str) -> (Func, bool) {
        if let Some(f) = self.funcs.read().get(prefix).and_then(|m| m.get(what)) {
            return (*f, false);
        }
        let join = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_owned()
            } else {
                format!("{a} {b}")
            }
        };
        let (name, fallback) = (join(prefix, what), join(prefix, "other"));
        let f = self.scope.func_within(&name, MAX_NAMES, &fallback);
        let folded = f.name() == fallback && name != fallback;
        if !folded {
            let mut cache = self.funcs.write();
            let cached: usize = cache.values().map(HashMap::len).sum();
            if cached < MAX_NAMES {
                cache
                    .entry(prefix.to_owned())
                    .or_default()
                    .insert(what.to_owned(), f);
            }
        }
        (f, folded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fold_ids() {
        assert_eq!(
            default_route("/users/42/orders/9f8e7d6c5b4a"),
            "/users/{id}/orders/{id}"
        );
        assert_eq!(default_route(""), "/");
    }

    #[test]
    fn names_stay_within_the_cap() {
        let reg = Registry::new();
        let names = Names::new(&reg, "capped");
        for i in 0..(MAX_NAMES * 3) {
            let _ = names.func("GET", &format!("/junk{i}"));
        }
        let count = reg.funcs().iter().filter(|f| f.scope() == "capped").count();
        assert!(count <= MAX_NAMES, "{count} functions");
        let (f, folded) = names.func("GET", "/another");
        assert!(folded);
        assert_eq!(f.name(), "GET other");
    }
}
