//! Settings: one reader, with one set of rules, for every variable of every monkit crate.
//!
//! [`Vars`] reads from the process environment ([`Vars::env`]) or from pairs a test or an
//! embedding program gives ([`Vars::from_pairs`]). Its typed getters answer `Ok(None)` for a
//! variable that is unset or blank, `Ok(Some(value))` for one that reads, and a
//! [`ConfigError`] naming the variable, its value and what was expected for one that is set but
//! unreadable. The rules are the same everywhere:
//!
//! | getter | takes |
//! |---|---|
//! | [`flag`](Vars::flag) | `1 true yes on` / `0 false no off`, any case |
//! | [`duration`](Vars::duration) | `250ms`, `10s`, `2m`, `1h`, or bare seconds (`1.5`) |
//! | [`millis`](Vars::millis) | a whole number of milliseconds (the OpenTelemetry variables' unit) |
//! | [`count`](Vars::count) | a positive whole number |
//! | [`ratio`](Vars::ratio) | a number in `0..=1` |
//! | [`address`](Vars::address) | `host:port` |
//! | [`url`](Vars::url) | an `http://` or `https://` URL |
//! | [`pairs`](Vars::pairs) | `key=value` pairs separated by commas, percent-decoded |
//! | [`choice`](Vars::choice) | one of the listed words, any case |
//! | [`numbers`](Vars::numbers) | numbers separated by commas |
//!
//! A `MONKIT_*` variable that cannot be read is an error the builder returns: a program stops,
//! naming it, rather than run with a setting other than the one written. The OpenTelemetry
//! specification asks the opposite of its `OTEL_*` variables (log, then ignore): [`lenient`]
//! does that. Every variable monkit's crates read is [`declare`]d once with its type, default
//! and meaning; [`declared`] lists them, and the README's table is checked against that list.

use super::percent::decode;
use std::time::Duration;

/// A setting, read from the environment or given to a builder, that could not be used.
///
/// ```
/// use monkit::settings::ConfigError;
/// let e = ConfigError::new("MONKIT_ZIPKIN_QUEUE", "-1", "a positive whole number");
/// assert_eq!(e.to_string(), r#"MONKIT_ZIPKIN_QUEUE="-1": expected a positive whole number"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    /// The setting: an environment variable (`MONKIT_ZIPKIN_QUEUE`) or what a builder was
    /// given (`zipkin endpoint`).
    pub setting: String,
    /// What it held.
    pub value: String,
    /// What it should hold.
    pub expected: String,
}

impl ConfigError {
    /// The setting `setting` held `value`, which is not `expected`.
    pub fn new(
        setting: impl Into<String>,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            setting: setting.into(),
            value: value.into(),
            expected: expected.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={:?}: expected {}",
            self.setting, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// A duration as people write it in a setting or a query: `250ms`, `10s`, `2m`, `1h`, or plain
/// seconds (`1.5`); zero or more. `None` for anything else. Each setting says what range it
/// takes on top of this.
///
/// ```
/// use std::time::Duration;
/// use monkit::settings::parse_duration;
/// assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
/// assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
/// assert_eq!(parse_duration("-1"), None);
/// ```
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (num, unit) = match v.find(|c: char| c.is_ascii_alphabetic() || c == 'µ') {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: f64 = num.trim().parse().ok()?;
    let secs = match unit.trim() {
        "us" | "µs" => n / 1e6,
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && (0.0..1e15).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// A flag's value in any of its spellings, any case: `1 true yes on`, `0 false no off`.
pub fn parse_flag(v: &str) -> Option<bool> {
    const ON: [&str; 4] = ["1", "true", "yes", "on"];
    const OFF: [&str; 4] = ["0", "false", "no", "off"];
    let v = v.trim();
    if ON.iter().any(|w| v.eq_ignore_ascii_case(w)) {
        Some(true)
    } else if OFF.iter().any(|w| v.eq_ignore_ascii_case(w)) {
        Some(false)
    } else {
        None
    }
}

/// `key=value` pairs separated by commas, each side trimmed and percent-decoded (W3C Baggage's
/// octets, as `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS` are written); empty
/// items are skipped. `None` when a pair has no `=`, an empty key, or a bad escape.
pub fn parse_pairs(v: &str) -> Option<Vec<(String, String)>> {
    v.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, val) = p.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then_some(())?;
            Some((decode(k)?, decode(val.trim())?))
        })
        .collect()
}

/// What a variable holds, for the table of every variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// [`Vars::flag`].
    Flag,
    /// [`Vars::duration`].
    Duration,
    /// [`Vars::millis`].
    Millis,
    /// [`Vars::count`].
    Count,
    /// [`Vars::ratio`].
    Ratio,
    /// [`Vars::address`].
    Address,
    /// [`Vars::url`].
    Url,
    /// [`Vars::pairs`].
    Pairs,
    /// [`Vars::choice`].
    Choice,
    /// [`Vars::numbers`].
    Numbers,
    /// [`Vars::string`]: any text (a name, a file's path).
    Text,
}

impl Kind {
    /// The word the README's table uses for it.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Flag => "flag",
            Kind::Duration => "duration",
            Kind::Millis => "milliseconds",
            Kind::Count => "count",
            Kind::Ratio => "ratio",
            Kind::Address => "address",
            Kind::Url => "URL",
            Kind::Pairs => "key=value list",
            Kind::Choice => "choice",
            Kind::Numbers => "number list",
            Kind::Text => "text",
        }
    }
}

/// One variable some monkit crate reads: its name, type, default and meaning. Declared once,
/// where it is read, with [`declare`]; [`declared`] lists them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    /// The variable (`MONKIT_ZIPKIN_GZIP`).
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// What applies when it is unset.
    pub default: &'static str,
    /// What it sets, in a few words.
    pub about: &'static str,
    /// The crate that reads it.
    pub krate: &'static str,
}

#[doc(hidden)]
#[derive(Debug)]
pub struct VarList(pub &'static [Var]);

inventory::collect!(VarList);

/// Declares the variables a crate reads, for [`declared`] and the README's table: one line
/// each, `NAME: Kind, "default", "what it sets";`.
///
/// ```
/// monkit::settings::declare! {
///     MYAPP_WORKERS: Count, "4", "worker threads";
/// }
/// assert!(monkit::settings::declared().iter().any(|v| v.name == "MYAPP_WORKERS"));
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! __declare_settings {
    ($($name:ident : $kind:ident, $default:literal, $about:literal;)*) => {
        $crate::__private::inventory::submit! {
            $crate::settings::VarList(&[$($crate::settings::Var {
                name: stringify!($name),
                kind: $crate::settings::Kind::$kind,
                default: $default,
                about: $about,
                krate: env!("CARGO_PKG_NAME"),
            }),*])
        }
    };
}
#[doc(inline)]
pub use crate::__declare_settings as declare;

/// Every declared variable of the crates linked in, sorted by name.
pub fn declared() -> Vec<Var> {
    let mut all: Vec<Var> = inventory::iter::<VarList>
        .into_iter()
        .flat_map(|l| l.0.iter().copied())
        .collect();
    all.sort_by_key(|v| v.name);
    all.dedup_by_key(|v| v.name);
    all
}

/// The OpenTelemetry rule for its own variables: a value that cannot be read is logged naming
/// the variable and then ignored, the default applying as if it were unset.
///
/// ```
/// use monkit::settings::{lenient, Vars};
/// let vars = Vars::from_pairs([("OTEL_EXPORTER_OTLP_INSECURE", "maybe")]);
/// assert_eq!(lenient(vars.flag("OTEL_EXPORTER_OTLP_INSECURE")), None);
/// ```
pub fn lenient<T>(read: Result<Option<T>, ConfigError>) -> Option<T> {
    read.unwrap_or_else(|e| {
        log::warn!("monkit: ignoring {e}, as OpenTelemetry's specification asks");
        None
    })
}

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where settings are read from, with typed getters that all follow the same rules (see the
/// module doc).
///
/// ```
/// use monkit::settings::Vars;
/// use std::time::Duration;
/// let vars = Vars::from_pairs([("MONKIT_HTTP_IDLE_TIMEOUT", "250ms"), ("MONKIT_TAGS", "novalue")]);
/// assert_eq!(vars.duration("MONKIT_HTTP_IDLE_TIMEOUT").unwrap(), Some(Duration::from_millis(250)));
/// assert_eq!(vars.duration("MONKIT_SHUTDOWN_TIMEOUT").unwrap(), None);
/// let e = vars.pairs("MONKIT_TAGS").unwrap_err();
/// assert_eq!(e.setting, "MONKIT_TAGS");
/// ```
#[derive(Clone)]
pub struct Vars {
    lookup: std::sync::Arc<Lookup>,
    from_env: bool,
}

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vars")
            .field("from_env", &self.from_env)
            .finish_non_exhaustive()
    }
}

impl Default for Vars {
    /// The process environment.
    fn default() -> Vars {
        Vars::env()
    }
}

impl Vars {
    /// The process environment.
    pub fn env() -> Vars {
        Vars {
            // The one place monkit reads the environment.
            lookup: std::sync::Arc::new(|k: &str| std::env::var(k).ok()),
            from_env: true,
        }
    }

    /// These pairs and nothing else (tests, or a program that keeps its settings elsewhere).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Vars {
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Vars::from_fn(move |k| pairs.iter().find(|p| p.0 == k).map(|p| p.1.clone()))
    }

    /// Whatever `lookup` answers for a name.
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Vars {
        Vars {
            lookup: std::sync::Arc::new(lookup),
            from_env: false,
        }
    }

    /// The value of `name` as written, when it is set and not blank.
    pub fn string(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// Reads `name` with `parse`; a set value it refuses is an error saying `expected`.
    fn read<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.string(name) {
            None => Ok(None),
            Some(v) => match parse(v.trim()) {
                Some(t) => Ok(Some(t)),
                None => Err(ConfigError::new(name, v, expected)),
            },
        }
    }

    /// A flag: `1 true yes on` or `0 false no off`, any case.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        self.read(
            name,
            "a flag: 1, true, yes, on, or 0, false, no, off",
            parse_flag,
        )
    }

    /// A duration of at most `max`: `250ms`, `10s`, `2m`, `1h`, or bare seconds.
    pub fn duration_max(&self, name: &str, max: Duration) -> Result<Option<Duration>, ConfigError> {
        let want = format!("a duration of at most {max:?}, such as 10s or 250ms");
        self.read(name, &want, |v| parse_duration(v).filter(|d| *d <= max))
    }

    /// A positive duration, of at most a day: `250ms`, `10s`, `2m`, `1h`, or bare seconds.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, ConfigError> {
        self.read(
            name,
            "a positive duration of at most a day, such as 10s or 250ms",
            |v| parse_duration(v).filter(|d| !d.is_zero() && *d <= Duration::from_secs(86_400)),
        )
    }

    /// A positive whole number of milliseconds, as the OpenTelemetry variables give durations.
    pub fn millis(&self, name: &str) -> Result<Option<Duration>, ConfigError> {
        self.read(name, "a positive whole number of milliseconds", |v| {
            v.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .map(Duration::from_millis)
        })
    }

    /// A positive whole number.
    pub fn count(&self, name: &str) -> Result<Option<u64>, ConfigError> {
        self.read(name, "a positive whole number", |v| {
            v.parse::<u64>().ok().filter(|&n| n > 0)
        })
    }

    /// A number in `0..=1`.
    pub fn ratio(&self, name: &str) -> Result<Option<f64>, ConfigError> {
        self.read(name, "a number in 0..=1", |v| {
            v.parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r))
        })
    }

    /// `host:port`, resolvable now.
    pub fn address(&self, name: &str) -> Result<Option<String>, ConfigError> {
        use std::net::ToSocketAddrs;
        self.read(name, "host:port", |v| {
            v.to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .map(|_| v.to_owned())
        })
    }

    /// An `http://` or `https://` URL with a host, and no spaces, quotes or angle brackets.
    pub fn url(&self, name: &str) -> Result<Option<String>, ConfigError> {
        self.read(name, "an http:// or https:// URL", |v| {
            let rest = v
                .strip_prefix("http://")
                .or_else(|| v.strip_prefix("https://"))?;
            let ok = !rest.is_empty()
                && !rest.starts_with('/')
                && !v.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '<' | '>'));
            ok.then(|| v.to_owned())
        })
    }

    /// `key=value` pairs separated by commas, percent-decoded ([`parse_pairs`]).
    pub fn pairs(&self, name: &str) -> Result<Option<Vec<(String, String)>>, ConfigError> {
        self.read(name, "key=value pairs separated by commas", parse_pairs)
    }

    /// One of `words`, any case; the answer is the word as listed.
    pub fn choice(
        &self,
        name: &str,
        words: &[&'static str],
    ) -> Result<Option<&'static str>, ConfigError> {
        let want = format!("one of {}", words.join(", "));
        self.read(name, &want, |v| {
            words.iter().copied().find(|w| v.eq_ignore_ascii_case(w))
        })
    }

    /// Finite numbers separated by commas.
    pub fn numbers(&self, name: &str) -> Result<Option<Vec<f64>>, ConfigError> {
        self.read(
            name,
            "numbers separated by commas, such as 0.01,0.1,1",
            |v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| p.parse::<f64>().ok().filter(|x| x.is_finite()))
                    .collect()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_getter_reads_its_form_and_names_the_variable_otherwise() {
        let v = Vars::from_pairs([
            ("F", "Yes"),
            ("D", "1.5"),
            ("M", "2500"),
            ("C", "12"),
            ("R", "0.25"),
            ("A", "127.0.0.1:2003"),
            ("U", "https://h:1/x"),
            ("P", "a=b%20c, d = e"),
            ("K", "Delta"),
            ("N", "0.1, 1"),
            ("BLANK", "  "),
        ]);
        assert_eq!(v.flag("F").unwrap(), Some(true));
        assert_eq!(v.duration("D").unwrap(), Some(Duration::from_millis(1500)));
        assert_eq!(v.millis("M").unwrap(), Some(Duration::from_millis(2500)));
        assert_eq!(v.count("C").unwrap(), Some(12));
        assert_eq!(v.ratio("R").unwrap(), Some(0.25));
        assert_eq!(v.address("A").unwrap().as_deref(), Some("127.0.0.1:2003"));
        assert_eq!(v.url("U").unwrap().as_deref(), Some("https://h:1/x"));
        assert_eq!(
            v.pairs("P").unwrap().unwrap(),
            vec![("a".into(), "b c".into()), ("d".into(), "e".into())]
        );
        assert_eq!(
            v.choice("K", &["cumulative", "delta"]).unwrap(),
            Some("delta")
        );
        assert_eq!(v.numbers("N").unwrap(), Some(vec![0.1, 1.0]));
        assert_eq!(v.flag("BLANK").unwrap(), None);
        assert_eq!(v.flag("UNSET").unwrap(), None);

        let bad = Vars::from_pairs([
            ("F", "maybe"),
            ("D", "later"),
            ("M", "5s"),
            ("C", "0"),
            ("R", "2"),
            ("A", "graphite"),
            ("U", "ftp://h"),
            ("P", "novalue"),
            ("K", "lowmemory"),
            ("N", "1,x"),
        ]);
        let errs = [
            bad.flag("F").map(|_| ()),
            bad.duration("D").map(|_| ()),
            bad.millis("M").map(|_| ()),
            bad.count("C").map(|_| ()),
            bad.ratio("R").map(|_| ()),
            bad.address("A").map(|_| ()),
            bad.url("U").map(|_| ()),
            bad.pairs("P").map(|_| ()),
            bad.choice("K", &["cumulative", "delta"]).map(|_| ()),
            bad.numbers("N").map(|_| ()),
        ];
        for (e, name) in errs
            .into_iter()
            .zip(["F", "D", "M", "C", "R", "A", "U", "P", "K", "N"])
        {
            let e = e.unwrap_err();
            assert_eq!(e.setting, name);
            assert!(!e.value.is_empty() && !e.expected.is_empty(), "{e}");
        }
    }

    #[test]
    fn durations_take_units_and_bare_seconds() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("250 ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5us"), Some(Duration::from_micros(5)));
        assert_eq!(parse_duration("1d"), None);
        assert_eq!(parse_duration("NaN"), None);
    }

    #[test]
    fn the_core_declares_what_it_reads() {
        let names: Vec<_> = declared().iter().map(|v| v.name).collect();
        for n in ["MONKIT_TAGS", "MONKIT_EXACT_HIGHWATER", "OTEL_PROPAGATORS"] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
    }
}
