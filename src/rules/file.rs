//! Rules files: their TOML shape, the user rules read from them, and the errors that name a file, a line and a reason.

use super::*;

/// A problem in a rules file, with its line.
///
/// ```
/// use cts_audit::rules::RuleSet;
/// let err = RuleSet::builtin()
///     .load_str("[[rule]]\nid = \"a.b\"\ntitle = \"t\"\nseverity = \"severe\"\nwhen = { field = \"user\", exists = true }\n", "acme.toml".as_ref())
///     .unwrap_err();
/// assert_eq!(err.line, Some(1));
/// assert!(err.to_string().starts_with("acme.toml:1: rule a.b: unknown severity"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleFileError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for RuleFileError {}

/// A counting threshold on a user rule.
#[derive(Debug, Clone)]
pub(super) struct Threshold {
    pub(super) count: u32,
    pub(super) window_ms: i64,
    pub(super) group_by: Vec<String>,
}

/// A rule from a rules file.
#[derive(Debug, Clone)]
pub(super) struct UserRule {
    pub(super) id: String,
    pub(super) title: String,
    pub(super) severity: Severity,
    pub(super) when: Condition,
    pub(super) threshold: Option<Threshold>,
    pub(super) origin: String,
}

/// The rules file, as written (TOML).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesFile {
    #[serde(default)]
    pub(super) allow: Option<AllowFile>,
    #[serde(default)]
    pub(super) rule: Vec<toml::Spanned<RuleFileEntry>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AllowFile {
    #[serde(default)]
    pub(super) users: Vec<String>,
    #[serde(default)]
    pub(super) source_ips: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleFileEntry {
    pub(super) id: String,
    pub(super) title: String,
    pub(super) severity: String,
    pub(super) when: ConditionFile,
    #[serde(default)]
    pub(super) threshold: Option<ThresholdFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ThresholdFile {
    pub(super) count: u32,
    pub(super) window: String,
    #[serde(default)]
    pub(super) group_by: Vec<String>,
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}
