//! Cross-binary tests live under e2e/; this library is empty on purpose.
