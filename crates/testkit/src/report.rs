//! [`ConformanceReport`]: which cases ran, which were not applicable, and
//! which failed.

use std::fmt;
use std::time::Duration;

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseOutcome {
    /// The case ran and held.
    Passed(Duration),
    /// The case ran and did not hold.
    Failed(String),
    /// An optional case the backend's capabilities rule out.
    NotApplicable(&'static str),
}

/// One case's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    /// Case name (the function name without `case_`).
    pub name: &'static str,
    /// Whether no capability may switch the case off.
    pub mandatory: bool,
    /// What happened.
    pub outcome: CaseOutcome,
}

/// The result of a conformance run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConformanceReport {
    /// Every case, in run order.
    pub cases: Vec<CaseRecord>,
}

impl ConformanceReport {
    /// Names of cases that ran (passed or failed).
    pub fn executed(&self) -> Vec<&'static str> {
        self.cases
            .iter()
            .filter(|c| !matches!(c.outcome, CaseOutcome::NotApplicable(_)))
            .map(|c| c.name)
            .collect()
    }

    /// Names of mandatory cases that ran.
    pub fn executed_mandatory(&self) -> Vec<&'static str> {
        self.cases
            .iter()
            .filter(|c| c.mandatory && !matches!(c.outcome, CaseOutcome::NotApplicable(_)))
            .map(|c| c.name)
            .collect()
    }

    /// Failed cases with their messages.
    pub fn failures(&self) -> Vec<(&'static str, &str)> {
        self.cases
            .iter()
            .filter_map(|c| match &c.outcome {
                CaseOutcome::Failed(message) => Some((c.name, message.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Panics unless every mandatory case of [`MANDATORY_CASES`](crate::MANDATORY_CASES)
    /// ran and nothing failed; prints the report either way. Returns the
    /// number of cases executed.
    pub fn assert_conformant(&self) -> usize {
        println!("{self}");
        let failures = self.failures();
        assert!(failures.is_empty(), "conformance failures: {failures:#?}");
        let executed = self.executed_mandatory();
        assert_eq!(
            executed,
            crate::MANDATORY_CASES.to_vec(),
            "every mandatory case must run, in order"
        );
        self.executed().len()
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for case in &self.cases {
            let kind = if case.mandatory {
                "mandatory"
            } else {
                "optional"
            };
            match &case.outcome {
                CaseOutcome::Passed(took) => writeln!(
                    f,
                    "conformance {kind} {} ... ok ({} ms)",
                    case.name,
                    took.as_millis()
                )?,
                CaseOutcome::Failed(message) => {
                    writeln!(f, "conformance {kind} {} ... FAILED: {message}", case.name)?
                }
                CaseOutcome::NotApplicable(why) => writeln!(
                    f,
                    "conformance {kind} {} ... not applicable ({why})",
                    case.name
                )?,
            }
        }
        write!(
            f,
            "conformance: {} executed ({} mandatory), {} failed",
            self.executed().len(),
            self.executed_mandatory().len(),
            self.failures().len()
        )
    }
}
