#[monkit::task(tags(kind = "a", kind = "b"))]
fn f() {}

fn main() {
    f();
}
