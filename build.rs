//! The widget compiles only for wasm32: on the host (a plain `cargo test` or
//! `cargo build` at the root) it is empty, and this says so instead of
//! letting "0 tests" pass for "tested".

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.starts_with("wasm32") {
        println!(
            "cargo::warning=the optrail widget builds only for wasm32, so this host build holds \
             none of it: `make test` runs every check (the widget's in headless Chromium), \
             `make check` the fast ones"
        );
    }
}
