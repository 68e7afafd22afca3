//! Human-readable reports (issue 5).
