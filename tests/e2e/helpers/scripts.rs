//! Python scripts that test projects run as ops.

/// Prints a line, a step and a scalar, and exits 0.
pub const OK_PY: &str = r#"print("hello from ok")
print("step: 1")
print("loss: 0.5")
"#;

/// Prints a line and exits 3.
pub const EXIT3_PY: &str = r#"import sys
print("about to exit 3")
sys.exit(3)
"#;

/// Prints `ready`, then sleeps in short naps for up to 60 s.
pub const SLEEPER_PY: &str = r#"import time
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.05)
print("slept 60 s without being stopped")
"#;

/// Waits until the file `--go` (relative to the project folder, the op's working
/// directory) exists, then prints and exits with `--code`.
pub const WAITER_PY: &str = r#"import argparse, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--go", default="go")
p.add_argument("--code", type=int, default=0)
a = p.parse_args()
print("waiting for " + a.go, flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(a.go):
    if time.monotonic() > deadline:
        print("gave up waiting")
        sys.exit(9)
    time.sleep(0.02)
print("exiting with %d" % a.code)
sys.exit(a.code)
"#;
