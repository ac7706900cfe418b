#[monkit::task(name = "")]
fn handle() {}

fn main() {}
