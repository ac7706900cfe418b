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

/// The former name of [`ConfigError`] for settings read from the environment.
#[deprecated(note = "one error type for every setting: use `ConfigError`")]
pub type EnvError = ConfigError;
