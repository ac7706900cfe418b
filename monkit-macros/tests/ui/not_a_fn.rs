#[monkit::task]
struct Config {
    port: u16,
}

fn main() {}
