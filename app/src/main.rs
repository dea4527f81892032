//! Mounts the VaporForge app.
fn main() {}
