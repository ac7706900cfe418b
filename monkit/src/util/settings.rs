//! A setting that could not be used: which setting, what it held, and what it should hold.
//! Every `from_env` and builder of the project says it the same way, with this one type.

/// A setting, read from the environment or given to a builder, that could not be used.
///
/// ```
/// let e = monkit::ConfigError::new("MONKIT_ZIPKIN_QUEUE", "-1", "a positive number of spans");
/// assert_eq!(e.to_string(), r#"MONKIT_ZIPKIN_QUEUE="-1": expected a positive number of spans"#);
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
/// assert_eq!(monkit::export::parse_duration("250ms"), Some(Duration::from_millis(250)));
/// assert_eq!(monkit::export::parse_duration("2m"), Some(Duration::from_secs(120)));
/// assert_eq!(monkit::export::parse_duration("-1"), None);
/// ```
pub fn parse_duration(v: &str) -> Option<std::time::Duration> {
    let v = v.trim();
    let (num, unit) = match v.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: f64 = num.trim().parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && (0.0..1e15).contains(&secs))
        .then(|| std::time::Duration::from_secs_f64(secs))
}

/// The former name of [`ConfigError`] for settings read from the environment.
#[deprecated(note = "one error type for every setting: use `ConfigError`")]
pub type EnvError = ConfigError;
