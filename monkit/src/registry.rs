//! The registry: scopes by name, and the walk over every stat they hold.

use crate::func::register_all_sites;
use crate::scope::{Scope, ScopeInner};
use crate::series::SeriesKey;
use crate::Func;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Once};

pub(crate) struct RegistryInner {
    scopes: RwLock<BTreeMap<String, Arc<ScopeInner>>>,
    is_default: bool,
}

/// A set of scopes. Most programs use the process-wide [`default_registry`], where
/// `#[monkit::task]` functions and [`scope!`](crate::scope!) scopes live.
#[derive(Clone)]
pub struct Registry(pub(crate) Arc<RegistryInner>);

static DEFAULT: LazyLock<Registry> = LazyLock::new(|| Registry::make(true));

/// The process-wide registry.
pub fn default_registry() -> &'static Registry {
    &DEFAULT
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A new, empty registry (for tests and embedding; most code wants [`default_registry`]).
    pub fn new() -> Registry {
        Registry::make(false)
    }

    fn make(is_default: bool) -> Registry {
        Registry(Arc::new(RegistryInner {
            scopes: RwLock::new(BTreeMap::new()),
            is_default,
        }))
    }

    /// The scope called `name`, created on first use.
    pub fn scope(&self, name: &str) -> Scope {
        Scope::resolved(self.scope_named(name))
    }

    pub(crate) fn scope_named(&self, name: &str) -> Arc<ScopeInner> {
        if let Some(s) = self.0.scopes.read().get(name) {
            return s.clone();
        }
        self.0
            .scopes
            .write()
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(ScopeInner::new(name)))
            .clone()
    }

    /// Makes sure every `#[task]` function linked into the program is listed (default
    /// registry only): they register at link time and are known before their first call.
    fn ensure_sites(&self) {
        static ONCE: Once = Once::new();
        if self.0.is_default {
            ONCE.call_once(register_all_sites);
        }
    }

    /// Every scope, sorted by name.
    pub fn scopes(&self) -> Vec<Scope> {
        self.ensure_sites();
        self.0
            .scopes
            .read()
            .values()
            .map(|s| Scope::resolved(s.clone()))
            .collect()
    }

    /// Every function, sorted by full name.
    pub fn funcs(&self) -> Vec<Func> {
        let mut v: Vec<Func> = self.scopes().iter().flat_map(|s| s.funcs()).collect();
        v.sort_by(|a, b| a.full_name().cmp(b.full_name()));
        v
    }

    /// The function with this full name (`scope.name`).
    pub fn func_by_name(&self, full_name: &str) -> Option<Func> {
        self.funcs()
            .into_iter()
            .find(|f| f.full_name() == full_name)
    }

    /// Calls `cb` with every stat: series key, field and value. Series come out sorted by
    /// scope, then by key text; a series' fields in the order its source defines.
    pub fn stats(&self, mut cb: impl FnMut(&SeriesKey, &str, f64)) {
        for scope in self.scopes() {
            scope.stats(&mut cb);
        }
    }
}
