//! The simulated disk, crash injection and failpoint coverage.
