//! Benchmarks of otp-core against the plain-tokio floor (the benchmarks issue fills this in).
