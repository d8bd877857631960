//! User rules' conditions: what a `when` table tests, and how it reads from TOML.

use super::*;

/// A test on one field.
#[derive(Debug, Clone)]
pub(super) enum Test {
    Equals(String),
    OneOf(Vec<String>),
    Matches(Regex),
    Compare(Comparison, f64),
    Exists(bool),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

/// A condition over record fields.
#[derive(Debug, Clone)]
pub(super) enum Condition {
    Field(String, Test),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

impl Condition {
    pub(super) fn matches(&self, verdict: &Verdict<'_>) -> bool {
        match self {
            Condition::All(all) => all.iter().all(|c| c.matches(verdict)),
            Condition::Any(any) => any.iter().any(|c| c.matches(verdict)),
            Condition::Not(inner) => !inner.matches(verdict),
            Condition::Field(name, test) => {
                let value = verdict.field(name);
                match (test, value.as_deref()) {
                    (Test::Exists(expected), value) => {
                        value.is_some_and(|v| !v.is_empty()) == *expected
                    }
                    (_, None) => false,
                    (Test::Equals(expected), Some(v)) => v == expected,
                    (Test::OneOf(options), Some(v)) => options.iter().any(|o| o == v),
                    (Test::Matches(regex), Some(v)) => regex.is_match(v),
                    (Test::Compare(op, bound), Some(v)) => {
                        v.parse::<f64>().is_ok_and(|n| match op {
                            Comparison::Greater => n > *bound,
                            Comparison::GreaterOrEqual => n >= *bound,
                            Comparison::Less => n < *bound,
                            Comparison::LessOrEqual => n <= *bound,
                        })
                    }
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ConditionFile {
    pub(super) field: Option<String>,
    pub(super) equals: Option<toml::Value>,
    pub(super) one_of: Option<Vec<toml::Value>>,
    pub(super) regex: Option<String>,
    pub(super) gt: Option<f64>,
    pub(super) ge: Option<f64>,
    pub(super) lt: Option<f64>,
    pub(super) le: Option<f64>,
    pub(super) exists: Option<bool>,
    pub(super) all: Option<Vec<ConditionFile>>,
    pub(super) any: Option<Vec<ConditionFile>>,
    pub(super) not: Option<Box<ConditionFile>>,
}

pub(super) fn scalar_text(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!(
            "expected a string, number or boolean, found {}",
            other.type_str()
        )),
    }
}

impl ConditionFile {
    pub(super) fn compile(self) -> Result<Condition, String> {
        let groups = [self.all.is_some(), self.any.is_some(), self.not.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        let tests = [
            self.equals.is_some(),
            self.one_of.is_some(),
            self.regex.is_some(),
            self.gt.is_some(),
            self.ge.is_some(),
            self.lt.is_some(),
            self.le.is_some(),
            self.exists.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        match (self.field, groups, tests) {
            (None, 1, 0) => {
                if let Some(all) = self.all {
                    Ok(Condition::All(all.into_iter().map(ConditionFile::compile).collect::<Result<_, _>>()?))
                } else if let Some(any) = self.any {
                    Ok(Condition::Any(any.into_iter().map(ConditionFile::compile).collect::<Result<_, _>>()?))
                } else {
                    let inner = self.not.ok_or("a condition group is empty")?;
                    Ok(Condition::Not(Box::new(inner.compile()?)))
                }
            }
            (Some(field), 0, 1) => {
                if !is_condition_field(&field) {
                    let known: Vec<&str> = condition_fields().collect();
                    return Err(format!("unknown field {field:?}; fields are: {}", known.join(", ")));
                }
                let test = if let Some(value) = self.equals {
                    Test::Equals(scalar_text(&value)?)
                } else if let Some(values) = self.one_of {
                    Test::OneOf(values.iter().map(scalar_text).collect::<Result<_, _>>()?)
                } else if let Some(pattern) = self.regex {
                    let regex = RegexBuilder::new(&pattern)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|e| format!("invalid regex {pattern:?}: {e}"))?;
                    Test::Matches(regex)
                } else if let Some(n) = self.gt {
                    Test::Compare(Comparison::Greater, n)
                } else if let Some(n) = self.ge {
                    Test::Compare(Comparison::GreaterOrEqual, n)
                } else if let Some(n) = self.lt {
                    Test::Compare(Comparison::Less, n)
                } else if let Some(n) = self.le {
                    Test::Compare(Comparison::LessOrEqual, n)
                } else {
                    Test::Exists(self.exists.unwrap_or(true))
                };
                Ok(Condition::Field(field, test))
            }
            _ => Err("a condition is either {field = …, and one of equals, one_of, regex, gt, ge, lt, le, exists} or one of {all = […]}, {any = […]}, {not = {…}}".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Analyzer;
    use crate::rules::RuleSet;

    /// The rules a file's conditions make fire on `record`.
    fn fired(conditions: &[&str], record: &str) -> Vec<String> {
        let mut rules = RuleSet::builtin();
        let file: String = conditions
            .iter()
            .enumerate()
            .map(|(i, when)| {
                format!("[[rule]]\nid = \"t.r{i}\"\ntitle = \"t\"\nseverity = \"low\"\nwhen = {when}\n\n")
            })
            .collect();
        rules.load_str(&file, "t.toml".as_ref()).unwrap();
        let verdict = Analyzer::new(rules).analyze_str(record).unwrap();
        verdict
            .rules
            .iter()
            .filter(|r| r.starts_with("t."))
            .map(|r| r.to_string())
            .collect()
    }

    const RECORD: &str = r#"{"trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce","code":403,"user":{"name":"night-ops","type":"User"},"source_ip":"203.0.113.7"}"#;

    #[test]
    fn each_test_reads_the_field_it_names() {
        let conditions = [
            r#"{ field = "user", equals = "night-ops" }"#,
            r#"{ field = "user", equals = "day-ops" }"#,
            r#"{ field = "code", ge = 400 }"#,
            r#"{ field = "code", lt = 400 }"#,
            r#"{ field = "source_ip", regex = "^203\\.0\\.113\\." }"#,
            r#"{ field = "trace_name", one_of = ["payOrder", "bindCard"] }"#,
            r#"{ field = "resource_id", exists = false }"#,
            r#"{ not = { field = "failed", equals = true } }"#,
            r#"{ all = [{ field = "user", equals = "night-ops" }, { field = "code", equals = 403 }] }"#,
            r#"{ any = [{ field = "user", equals = "x" }, { field = "service_type", equals = "CBC" }] }"#,
        ];
        assert_eq!(
            fired(&conditions, RECORD),
            ["t.r0", "t.r2", "t.r4", "t.r5", "t.r6", "t.r8", "t.r9"]
        );
    }

    #[test]
    fn a_condition_on_an_unknown_field_or_a_bad_regex_is_refused_with_its_line() {
        for when in [
            r#"{ field = "colour", equals = "red" }"#,
            r#"{ field = "user", regex = "(unclosed" }"#,
            r#"{ field = "severity", equals = "high" }"#,
        ] {
            let file = format!(
                "\n[[rule]]\nid = \"t.bad\"\ntitle = \"t\"\nseverity = \"low\"\nwhen = {when}\n"
            );
            let err = RuleSet::builtin()
                .load_str(&file, "t.toml".as_ref())
                .unwrap_err();
            assert_eq!(err.line, Some(2), "{when}: {err}");
        }
    }
}
