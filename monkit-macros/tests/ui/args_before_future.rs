use std::future::Future;

struct Client {
    base: String,
}

impl Client {
    #[monkit::task(args)]
    fn get(&self, key: u64) -> impl Future<Output = String> {
        let base = self.base.clone();
        async move { format!("{base}/{key}") }
    }
}

fn main() {}
