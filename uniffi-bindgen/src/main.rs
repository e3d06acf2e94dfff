//! uniffi's `uniffi-bindgen` command at the version tessera-ffi is built with (the bindings and
//! the library must come from the same uniffi). `scripts/bindings.sh` runs it with the
//! repository's `uniffi.toml`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
