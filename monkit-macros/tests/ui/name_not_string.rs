#[monkit::task(name = 42)]
fn handle() {}

fn main() {}
