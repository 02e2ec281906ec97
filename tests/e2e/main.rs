//! End-to-end suite (placeholder).
