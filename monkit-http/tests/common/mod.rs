//! Helpers of the `/ps` tests: fetching a page and finding a span in the trees.
#![allow(dead_code)]

/// GET `url`; the body (the request must succeed).
pub fn get(url: &str) -> String {
    ureq::get(url).call().unwrap().into_string().unwrap()
}

/// The first span of function `name` in `/ps/json` trees, depth first.
pub fn find<'a>(nodes: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    for n in nodes {
        if n["func"]["name"] == name {
            return Some(n);
        }
        if let Some(f) = find(n["children"].as_array().unwrap(), name) {
            return Some(f);
        }
    }
    None
}
