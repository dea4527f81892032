//! Harness for the end-to-end tests: boots the real stack (vf-sandbox + wrangler dev) on free loopback ports
//! with its own state, drives it over HTTP and through headless Chromium, and always stops it.

pub mod browser;
pub mod callback;
pub mod client;
pub mod events;
pub mod inspector;
pub mod process;
pub mod proxy;
pub mod runner;
pub mod stack;
pub mod wait;

pub use browser::{Browser, Page};
pub use client::{Client, EventStream, Login};
pub use runner::{Test, TestResult};
pub use stack::{Stack, StackOptions};
