//! Reading the names `std::any::type_name` prints, for function names and error kinds. Written
//! here because no crate parses them: they are Rust paths with generic arguments, not a grammar
//! a parser crate takes, and the output is only documented as "a best effort".

/// What is between `s`'s first `<` and the `>` that closes it, and what follows that.
pub(crate) fn bracketed(s: &str) -> (&str, &str) {
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

/// The comma-separated parts of a list (generic arguments, a tuple's elements), commas inside
/// brackets skipped, up to a `)` that closes the list: `a<b, c>, d)` is `a<b, c>` and `d`.
/// Read as they are asked for, without allocating: error kinds are named on the call's path.
pub(crate) fn parts(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(list);
    std::iter::from_fn(move || {
        let list = rest?;
        let mut depth = 0usize;
        for (i, c) in list.char_indices() {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' | ']' => depth = depth.saturating_sub(1),
                ')' if depth > 0 => depth -= 1,
                ',' if depth == 0 => {
                    rest = Some(&list[i + 1..]);
                    return Some(list[..i].trim());
                }
                ')' if depth == 0 => {
                    rest = None;
                    return Some(list[..i].trim());
                }
                _ => {}
            }
        }
        rest = None;
        Some(list.trim())
    })
}

/// A type name as a person writes it: paths cut to their last segment, and the arguments
/// `type_name` leaves unknown (`_`, `'_`) dropped: `alloc::sync::Arc<a::Queue>` is
/// `Arc<Queue>`, `a::Holder<'_>` is `Holder`, `Vec<_>` is `Vec`.
pub(crate) fn short_type(ty: &str) -> String {
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
pub(crate) fn short_args(inner: &str) -> String {
    let args: Vec<String> = parts(inner)
        .map(short_type)
        .filter(|a| a != "_" && !a.starts_with('\'') && !a.is_empty())
        .collect();
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
