#[monkit::task(args, skip(password))]
fn login(user: &str, secret: &str) -> usize {
    user.len() + secret.len()
}

fn main() {
    login("a", "b");
}
