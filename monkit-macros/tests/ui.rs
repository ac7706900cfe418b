//! Misuse of `#[monkit::task]` fails to compile with a clear message at the user's code.

#[test]
fn misuse() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
