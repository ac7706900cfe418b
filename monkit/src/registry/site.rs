//! The process-wide registry and the `#[monkit::task]` functions linked into it.
//!
//! Call sites are recorded at compile time and collected at link time (through `inventory`);
//! the default registry registers all of them when it is first touched, so every annotated
//! function is listed before its first call. These functions are process-wide: they always
//! live in [`default_registry`]; private registries hold only what is made through them.

use crate::call::func::{FuncInner, Location};
use crate::call::lifecycle::SyncCall;
use crate::call::task::{TaskFuture, TaskGuard};
use crate::registry::registry::{default_registry, Registry};
use crate::stats::outcome::Outcome;
use crate::util::type_name::{bracketed, short_args, short_type};
use std::future::Future;
use std::sync::OnceLock;

/// Where a `#[monkit::task]` function is, recorded at compile time and registered at link time
/// (through `inventory`), so the registry lists it before its first call. Made by the macro.
#[doc(hidden)]
pub struct FuncSite {
    module: &'static str,
    fn_name: &'static str,
    name: Option<&'static str>,
    tags: &'static [(&'static str, &'static str)],
    file: &'static str,
    line: u32,
    path: fn() -> &'static str,
    /// The objective (`#[task(objective = "..")]`) its calls count toward.
    objective: Option<&'static str>,
    func: OnceLock<&'static FuncInner>,
}

impl std::fmt::Debug for FuncSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuncSite")
            .field("module", &self.module)
            .field("fn_name", &self.fn_name)
            .finish_non_exhaustive()
    }
}

#[doc(hidden)]
pub struct SiteRef(pub &'static FuncSite);
impl std::fmt::Debug for SiteRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SiteRef").field(self.0).finish()
    }
}

inventory::collect!(SiteRef);

impl FuncSite {
    #[doc(hidden)]
    pub const fn new(
        module: &'static str,
        fn_name: &'static str,
        name: Option<&'static str>,
        tags: &'static [(&'static str, &'static str)],
        file: &'static str,
        line: u32,
        path: fn() -> &'static str,
    ) -> Self {
        FuncSite {
            module,
            fn_name,
            name,
            tags,
            file,
            line,
            path,
            objective: None,
            func: OnceLock::new(),
        }
    }

    /// The same site, its calls counting toward `objective`.
    #[doc(hidden)]
    pub const fn with_objective(mut self, objective: Option<&'static str>) -> Self {
        self.objective = objective;
        self
    }

    /// The objective its calls count toward.
    pub(crate) fn objective(&self) -> Option<&'static str> {
        self.objective
    }

    /// Its function, if it was ever called (or registered).
    pub(crate) fn func_if_made(&self) -> Option<&'static FuncInner> {
        self.func.get().copied()
    }

    /// Starts one sync call of the function: what a sync `#[task]` body runs inside.
    #[inline(always)]
    pub fn enter(&'static self) -> TaskGuard {
        SyncCall::start(self.func())
    }

    /// Wraps an async `#[task]` body as one call of the function, its outcome decided by
    /// `classify`.
    #[inline(always)]
    pub fn future<F, C, D>(&'static self, inner: F, classify: C, describe: D) -> TaskFuture<F, C, D>
    where
        F: Future,
        C: Fn(&F::Output) -> Outcome,
        D: Fn(&F::Output) -> Option<&dyn std::fmt::Display>,
    {
        TaskFuture::new(self.func(), inner, classify, describe)
    }

    /// The function's stats, registered in the default registry on first use.
    #[inline(always)]
    pub(crate) fn func(&'static self) -> &'static FuncInner {
        match self.func.get() {
            Some(f) => f,
            None => self.register(),
        }
    }

    #[cold]
    fn register(&'static self) -> &'static FuncInner {
        self.register_in(default_registry())
    }

    pub(crate) fn register_in(&'static self, registry: &Registry) -> &'static FuncInner {
        self.func.get_or_init(|| {
            let name = self.name.map_or_else(|| self.derive_name(), str::to_owned);
            registry.scope_named(self.module).func_inner(
                &name,
                crate::stats::series::Tags::new(self.tags),
                Some(Location {
                    module: self.module,
                    file: self.file,
                    line: self.line,
                }),
            )
        })
    }

    /// `Type::method` for methods, `fn` for free functions: the function's path (read from a
    /// nested item's type name, which includes the impl's self type) less the module path, the
    /// self type's paths made short and its generic arguments kept (`Arc<Queue>::complete`,
    /// `Gen<T>::get`).
    fn derive_name(&self) -> String {
        let path = (self.path)();
        let path = path.strip_suffix("::__monkit_path").unwrap_or(path);
        let path = path.replace("::{{closure}}", "");
        let mut out = String::with_capacity(path.len());
        let mut rest = path.as_str();
        while let Some(c) = rest.chars().next() {
            if c != '<' {
                out.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let (inner, after) = bracketed(rest);
            if out.is_empty() || out.ends_with("::") {
                // A qualified self type: `<a::T as b::Tr>`, or rustc's `<impl b::Tr for a::T>`
                // when the type is not a local path.
                let ty = match inner.strip_prefix("impl ") {
                    Some(imp) => imp.split_once(" for ").map_or(imp, |(_, ty)| ty),
                    None => inner.split_once(" as ").map_or(inner, |(ty, _)| ty),
                };
                out.push_str(&short_type(ty));
            } else {
                out.push_str(&short_args(inner));
            }
            rest = after;
        }
        let rest = out
            .strip_prefix(self.module)
            .and_then(|r| r.strip_prefix("::"))
            .unwrap_or(&out);
        if rest.is_empty() {
            self.fn_name.to_owned()
        } else {
            rest.to_owned()
        }
    }
}
