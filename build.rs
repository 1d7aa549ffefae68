//! Turns on `cfg(realdata)` when the shared real-world test data sits beside
//! the repository (`../shared/realdata`, as on CI), so the tests that read it
//! run there and are reported as ignored anywhere else.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(realdata)");
    println!("cargo::rerun-if-changed=../shared/realdata");
    let present = Path::new("../shared/realdata").is_dir();
    if present {
        println!("cargo::rustc-cfg=realdata");
    } else if std::env::var("PROFILE").is_ok_and(|p| p == "debug") {
        println!("cargo::warning=../shared/realdata not found: the real-data tests will be reported as ignored");
    }
}
