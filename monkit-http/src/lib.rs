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
//! | `/metrics` | Prometheus text format 0.0.4 (OpenMetrics 1.0 when the scraper asks for it) |
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod console;
mod duration;
mod listen;
mod pages;
mod server;
mod shutdown;
mod traced;
mod trim;

pub use listen::{bind, serve_connections, ServeOptions, TraceBudget};
pub use pages::{Pages, RENDERS_AT_ONCE};
pub use server::{serve, serve_with, Server};
pub use shutdown::until_shutdown;
pub use traced::Traced;
