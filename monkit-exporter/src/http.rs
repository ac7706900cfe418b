//! The HTTP transport: one POST per body with ureq (blocking, on the exporter's own thread),
//! gzip as `Content-Encoding`, the statuses the OTLP specification says to retry (`429`,
//! `502`, `503`, `504`, with their `Retry-After`) and connection errors retried, every other
//! status and every TLS failure refused for good.

use crate::send::{Delivery, Transport};
use crate::{ConfigError, Pipeline, MAX_RESPONSE_BODY, MAX_RETRY_AFTER};
use std::io::Write;
use std::time::Duration;

/// POSTs bodies to a pipeline's endpoint with its timeout, headers, compression and TLS.
pub struct Http {
    agent: ureq::Agent,
    endpoint: String,
    content_type: &'static str,
    gzip: bool,
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("endpoint", &self.endpoint)
            .field("content_type", &self.content_type)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl Http {
    /// The transport for `pipeline`'s endpoint (`http://` or, with the feature `tls`,
    /// `https://`), sending bodies of `content_type`. TLS files are read here: a missing or
    /// malformed one is an error naming it.
    pub fn new(pipeline: &Pipeline, content_type: &'static str) -> Result<Http, ConfigError> {
        let endpoint = pipeline.endpoint();
        let bad = |want: &str| {
            ConfigError::new(
                format!("{} endpoint", pipeline.name()),
                endpoint,
                want.to_owned(),
            )
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(bad("an http:// or https:// URL"));
        }
        let agent = ureq::AgentBuilder::new().timeout(pipeline.request_timeout());
        #[cfg(feature = "tls")]
        let agent = agent.tls_config(pipeline.tls_config()?);
        #[cfg(not(feature = "tls"))]
        if endpoint.starts_with("https://") {
            return Err(bad(
                "an http:// URL (https needs the feature `tls` of monkit-exporter)",
            ));
        }
        Ok(Http {
            agent: agent.build(),
            endpoint: endpoint.to_owned(),
            content_type,
            gzip: pipeline.is_gzip(),
            headers: pipeline.headers().to_vec(),
        })
    }
}

impl Transport for Http {
    fn prepare(&self, body: Vec<u8>) -> Vec<u8> {
        if self.gzip {
            gzip(&body)
        } else {
            body
        }
    }

    fn deliver(&mut self, body: &[u8]) -> Delivery {
        let mut req = self
            .agent
            .post(&self.endpoint)
            .set("Content-Type", self.content_type);
        for (k, v) in &self.headers {
            req = req.set(k, v);
        }
        if self.gzip {
            req = req.set("Content-Encoding", "gzip");
        }
        match req.send_bytes(body) {
            Ok(r) => {
                // Read (a bounded part of) the body, so the connection can be used again.
                let _ = read_bounded(r);
                Delivery::Sent
            }
            Err(ureq::Error::Status(code, r)) => {
                let after = r
                    .header("retry-after")
                    .and_then(|v| retry_after(v, std::time::SystemTime::now()));
                let text = read_bounded(r);
                let why = format!("HTTP {code}: {}", text.trim());
                if retryable(code) {
                    Delivery::Retry { why, after }
                } else {
                    Delivery::Refused(why)
                }
            }
            Err(e) => {
                // A certificate the collector's name or our roots refuse stays refused.
                #[cfg(feature = "tls")]
                if let Some(why) = crate::tls::tls_failure(&e) {
                    return Delivery::Refused(why);
                }
                Delivery::Retry {
                    why: e.to_string(),
                    after: None,
                }
            }
        }
    }
}

/// `body` gzip-compressed (fast level: the exporter's thread has a whole batch to do).
pub(crate) fn gzip(body: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = z.write_all(body);
    z.finish().unwrap_or_default()
}

/// The statuses the OTLP specification says to retry; every other one is permanent.
fn retryable(code: u16) -> bool {
    matches!(code, 429 | 502 | 503 | 504)
}

/// At most [`MAX_RESPONSE_BODY`] bytes of a response, as text; a longer body is left unread
/// and its connection dropped with the response.
fn read_bounded(r: ureq::Response) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let _ = r
        .into_reader()
        .take(MAX_RESPONSE_BODY)
        .read_to_end(&mut buf);
    buf.truncate(4096);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The wait a `Retry-After` value asks for (RFC 9110 section 10.2.3): whole seconds, or an
/// HTTP date, from `now`; at most [`MAX_RETRY_AFTER`]. `None` when it is neither.
pub fn retry_after(v: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = v.trim();
    let wait = if let Ok(s) = v.parse::<u64>() {
        Duration::from_secs(s)
    } else {
        let at = httpdate::parse_http_date(v).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(retry_after("5", now), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        // Capped, and a date in the past is now.
        assert_eq!(retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-1", "soon", "1.5"] {
            assert_eq!(retry_after(bad, SystemTime::now()), None, "{bad}");
        }
    }

    #[test]
    fn only_pushback_is_retried() {
        for code in [429, 502, 503, 504] {
            assert!(retryable(code), "{code}");
        }
        for code in [400, 401, 403, 404, 413, 500, 501] {
            assert!(!retryable(code), "{code}");
        }
    }
}
