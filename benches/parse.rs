//! Parser benchmark (placeholder).
fn main() {}
