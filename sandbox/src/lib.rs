//! VaporForge container side.
