//! The 5,000-pod churn run.
