//! VaporForge Worker entry point.
