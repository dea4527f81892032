//! `make bench`: boots the real stack and prints one table of measured ratios (being written).
fn main() {}
