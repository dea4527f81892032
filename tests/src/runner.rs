//! A small test runner for tests that share one running stack: runs each test, catches its panic, prints a
//! libtest-like report and fails the process if any test failed. The stack is dropped (and stopped) at the end
//! whatever happened, which a `#[test]` harness with a global stack cannot guarantee.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use futures::FutureExt;

pub type TestFuture<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// A named test over a shared context.
pub struct Test<C> {
    pub name: &'static str,
    pub run: for<'a> fn(&'a C) -> TestFuture<'a>,
}

pub struct TestResult {
    pub name: &'static str,
    pub passed: bool,
}

/// Whether the command line selects `name`: its first argument is a filter on test names (all when absent).
pub fn selected(name: &str) -> bool {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .is_none_or(|filter| name.contains(&filter))
}

/// Runs the selected tests, one after the other.
pub async fn run_all<C>(context: &C, tests: &[Test<C>]) -> Vec<TestResult> {
    let mut results = Vec::new();
    for test in tests {
        if !selected(test.name) {
            continue;
        }
        let started = Instant::now();
        let outcome = std::panic::AssertUnwindSafe((test.run)(context))
            .catch_unwind()
            .await;
        let passed = outcome.is_ok();
        println!(
            "test {} ... {} ({:.1} s)",
            test.name,
            if passed { "ok" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        results.push(TestResult {
            name: test.name,
            passed,
        });
    }
    results
}

/// Prints the summary; returns whether every test passed.
pub fn report(results: &[TestResult]) -> bool {
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.name)
        .collect();
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        results.len() - failed.len(),
        failed.len()
    );
    for name in &failed {
        println!("    failed: {name}");
    }
    failed.is_empty()
}
