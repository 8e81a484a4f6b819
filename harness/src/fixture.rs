//! Where every run keeps its store on the simulated disk.

/// The store's directory on the simulated disk.
pub const DB_DIR: &str = "/db";
/// The store's name.
pub const DB_NAME: &str = "db";
