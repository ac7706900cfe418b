#[monkit::task(level = "debug")]
fn handle() {}

fn main() {}
