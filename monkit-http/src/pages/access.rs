//! Who may read the pages: a bearer token, the `Host` names a loopback-bound server answers
//! (against DNS rebinding), and which pages are served at all.

use super::routes::Refusal;
use hyper::header::{AUTHORIZATION, HOST};
use hyper::{Request, StatusCode};
use subtle::ConstantTimeEq;

/// The page groups [`Access::pages`] names: `console` (`/` and its refreshes), `stats`,
/// `funcs`, `ps`, `trace` (captures and `/trace/sample`), `metrics`, `slo` (objectives and
/// their rules).
pub const PAGE_GROUPS: [&str; 7] = ["console", "stats", "funcs", "ps", "trace", "metrics", "slo"];

/// Who may read the pages. The default lets anyone who reaches the port read every page, as
/// before; a loopback-bound server ([`serve_with`](crate::serve_with)) always answers only
/// `Host` values that name loopback or are listed.
///
/// ```
/// let mut access = monkit_http::Access::default();
/// access.token = Some("s3cret".into());
/// access.pages = Some(vec!["metrics".into()]);
/// # let _ = access;
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Access {
    /// Every request must carry `Authorization: Bearer <token>` (`401` otherwise), compared
    /// in constant time. `MONKIT_HTTP_TOKEN`.
    pub token: Option<String>,
    /// Host names (with or without a port) a loopback-bound server answers besides
    /// `localhost` and loopback addresses (`421` otherwise). `MONKIT_HTTP_ALLOWED_HOSTS`.
    pub allowed_hosts: Vec<String>,
    /// The page groups served ([`PAGE_GROUPS`]); the rest are `404`. `None`: every page.
    /// `MONKIT_HTTP_PAGES=metrics,stats` makes a port for scraping that offers no capture.
    pub pages: Option<Vec<String>>,
    /// Whether the server listens on loopback only (set by the server).
    pub(crate) loopback: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: whether there is one, not what it is.
        f.debug_struct("Access")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("allowed_hosts", &self.allowed_hosts)
            .field("pages", &self.pages)
            .field("loopback", &self.loopback)
            .finish()
    }
}

/// Whether `host` (a `Host` header's value) names loopback: `localhost`, `127.x.y.z`, `[::1]`,
/// with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Access {
    /// Whether the group `group` is served.
    pub(super) fn serves(&self, group: &str) -> bool {
        self.pages
            .as_ref()
            .is_none_or(|p| p.iter().any(|g| g == group))
    }

    /// Why `req` may not be answered at all, if it may not.
    pub(super) fn refuse<B>(&self, req: &Request<B>) -> Option<Refusal> {
        if self.loopback {
            let host = req
                .headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()))
                .unwrap_or("");
            let listed = self.allowed_hosts.iter().any(|a| {
                a.eq_ignore_ascii_case(host)
                    || host
                        .rsplit_once(':')
                        .is_some_and(|(h, _)| a.eq_ignore_ascii_case(h))
            });
            if !loopback_host(host) && !listed {
                return Some(Refusal {
                    status: StatusCode::MISDIRECTED_REQUEST,
                    msg: format!(
                        "this server answers loopback host names only, not {host:?}; list others in MONKIT_HTTP_ALLOWED_HOSTS"
                    ),
                });
            }
        }
        if let Some(token) = &self.token {
            let given = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .and_then(|v| {
                    let (scheme, rest) = v.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
                })
                .unwrap_or("");
            if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
                return Some(Refusal {
                    status: StatusCode::UNAUTHORIZED,
                    msg: "a bearer token is required (Authorization: Bearer <token>)".into(),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_names() {
        for h in [
            "localhost",
            "localhost:9000",
            "127.0.0.1:9000",
            "127.1.2.3",
            "[::1]:9000",
            "LOCALHOST",
        ] {
            assert!(super::loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:9000",
            "10.0.0.1",
            "[::2]:80",
            "localhost.evil.example",
            "",
        ] {
            assert!(!super::loopback_host(h), "{h}");
        }
    }
}
