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
            func: OnceLock::new(),
        }
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

/// What is between `s`'s first `<` and the `>` that closes it, and what follows that.
fn bracketed(s: &str) -> (&str, &str) {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => {
                depth -= 1;
                if depth == 0 {
                    return (&s[1..i], &s[i + 1..]);
                }
            }
            _ => {}
        }
    }
    (&s[1..], "")
}

/// A type name as a person writes it: paths cut to their last segment, and the arguments
/// `type_name` leaves unknown (`_`, `'_`) dropped: `alloc::sync::Arc<a::Queue>` is
/// `Arc<Queue>`, `a::Holder<'_>` is `Holder`, `Vec<_>` is `Vec`.
fn short_type(ty: &str) -> String {
    let mut out = String::with_capacity(ty.len());
    let mut rest = ty;
    while let Some(open) = rest.find('<') {
        out.push_str(&short_paths(&rest[..open]));
        let (inner, after) = bracketed(&rest[open..]);
        out.push_str(&short_args(inner));
        rest = after;
    }
    out.push_str(&short_paths(rest));
    out
}

/// Generic arguments made short (see [`short_type`]), bracketed, or nothing when none is known.
fn short_args(inner: &str) -> String {
    let mut args = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in inner
        .char_indices()
        .chain(std::iter::once((inner.len(), ',')))
    {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                let arg = short_type(inner[start..i].trim());
                if arg != "_" && !arg.starts_with('\'') && !arg.is_empty() {
                    args.push(arg);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if args.is_empty() {
        String::new()
    } else {
        format!("<{}>", args.join(", "))
    }
}

/// Every path in a type name cut to its last segment: `alloc::sync::Arc<a::Queue>` is
/// `Arc<Queue>`.
fn short_paths(ty: &str) -> String {
    let mut out = String::with_capacity(ty.len());
    let mut path_start = 0;
    let mut chars = ty.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(path_start);
            continue;
        }
        out.push(c);
        if !(c.is_alphanumeric() || c == '_') {
            path_start = out.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{short_paths, short_type};

    #[test]
    fn type_names_keep_their_last_segments() {
        assert_eq!(
            short_paths("alloc::sync::Arc<tavern::worker::Queue>"),
            "Arc<Queue>"
        );
        assert_eq!(short_paths("&a::B"), "&B");
        assert_eq!(
            short_paths("std::collections::HashMap<u8, a::b::C<d::E>>"),
            "HashMap<u8, C<E>>"
        );
        assert_eq!(short_paths("Plain"), "Plain");
    }

    #[test]
    fn unknown_arguments_go_and_known_ones_stay() {
        assert_eq!(short_type("a::Holder<'_>"), "Holder");
        assert_eq!(short_type("alloc::vec::Vec<_>"), "Vec");
        assert_eq!(short_type("alloc::boxed::Box<a::Slow>"), "Box<Slow>");
        assert_eq!(
            short_type("std::collections::HashMap<_, alloc::vec::Vec<a::B<'_, u8>>>"),
            "HashMap<Vec<B<u8>>>"
        );
        assert_eq!(short_type("(a::B<_>, u8)"), "(B, u8)");
    }

    proptest::proptest! {
        /// Whatever `type_name` prints (closures, fn pointers' `->`, unbalanced brackets), a
        /// name comes out and nothing panics.
        #[test]
        fn any_type_name_makes_a_name(s in "[a-z:<>(), _&'\\[\\];-]{0,40}") {
            let _ = short_type(&s);
            let _ = super::short_args(&s);
            if s.starts_with('<') {
                let (inner, rest) = super::bracketed(&s);
                proptest::prop_assert!(inner.len() + rest.len() < s.len());
            }
        }
    }

    #[test]
    fn brackets_are_matched() {
        assert_eq!(super::bracketed("<a<b>>::m"), ("a<b>", "::m"));
        assert_eq!(super::bracketed("<unclosed"), ("unclosed", ""));
    }
}
