//! End-to-end tests: run the real `guild` and `guildd` binaries.
