trait Store {
    #[monkit::task]
    fn get(&self, key: &str) -> Option<u64>;
}

fn main() {}
