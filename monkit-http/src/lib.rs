//! monkit's pages over HTTP.
//!
//! [`serve`] starts a monitoring server for a registry on its own thread, so a program with
//! no async runtime can use it; [`Pages`] is the same set of pages as a hyper service to mount
//! inside your own server.
//!
//! ```no_run
//! let server = monkit_http::serve(monkit::default_registry().clone(), "127.0.0.1:9000")
//!     .expect("bind");
//! println!("stats on http://{}/", server.local_addr());
//! ```
//!
//! | path | what |
//! |---|---|
//! | `/` | the console: a sortable, filterable, self-refreshing table of every function, the running spans as a tree, "trace next call" in place, and links to every page; a plain table without JavaScript |
//! | `/stats`, `/stats/text`, `/stats/json` | every stat, in the Go monkit line format or JSON |
//! | `/funcs`, `/funcs/text`, `/funcs/json`, `/funcs/dot` | every function, its callers and stats; the dot page is a Graphviz call graph |
//! | `/ps`, `/ps/text`, `/ps/json`, `/ps/dot` | the spans running now, as trees, with elapsed time and annotations; orphans marked |
//! | `/trace/svg`, `/trace/json` | the next matching call's whole span tree, as an SVG timeline or JSON (`regex`, `trace_id`, `min_duration`, `outcome`, `timeout`); `/trace/sample` marks the next matching trace as sampled |
//! | `/trace/recent`, `/trace/recent/svg`, `/trace/recent/json` | what the flight recorder holds: each function's slowest calls of the last two windows and its latest failure, listed (`format=json`), or one held call's whole tree at once (`regex`, `trace_id`, `min_duration` picks the slowest, `outcome` the latest; `404` when none matches) |
//! | `/metrics` | Prometheus text format 0.0.4 (OpenMetrics 1.0 or protobuf with native histograms when the scraper asks for it) |
//! | `/slo`, `/slo/json` | the objectives (`monkit::slo`): budget left, burn rates over 5m to 6h, alerts burning, the functions eating the budget |
//! | `/slo/rules` | the objectives as a Prometheus rule file: recording rules and multi-window, multi-burn-rate alerts (`scale=` multiplies the windows, `for=` sets the alerts' `for:`) |
//! | `/slo/dashboard` | the objectives as a Grafana dashboard |
//!
//! The crate is two parts, one folder each: `pages/` (the route table the router, the index
//! and this table are made from; content negotiation; the trace requests; the rendering
//! shared by clients asking at once; the console) and `server/` (a hardened HTTP/1 and HTTP/2
//! accept loop with connection limits, timeouts and HTTP/2 settings, [`serve`], shutdown on
//! a signal, and [`Traced`] for a program's own hyper services, which the examples serve
//! through the same loop).
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod pages;
mod server;

pub use pages::{Access, Pages, PAGE_GROUPS, RENDERS_AT_ONCE};
pub use server::{
    bind, serve, serve_connections, serve_with, until_shutdown, RequestBody, RequestBodyError,
    ServeOptions, Server, TraceBudget, Traced,
};
