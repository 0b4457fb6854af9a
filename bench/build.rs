//! Keeps `libtorch_cuda.so` linked: with `--as-needed` the linker drops it (nothing
//! references its symbols directly) and libtorch then sees no CUDA device.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB")
        && std::path::Path::new(&lib_dir)
            .join("libtorch_cuda.so")
            .exists()
    {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
