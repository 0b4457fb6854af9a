//! Called from the build script of every binary package that links libtorch (which must
//! depend on `torch-sys` directly, to receive its `DEP_TCH_LIBTORCH_LIB`):
//!
//! - records libtorch's folder as the binary's rpath, so it runs without `LD_LIBRARY_PATH`;
//! - keeps `libtorch_cuda.so` linked where it exists: with `--as-needed` the linker drops it
//!   (nothing references its symbols directly) and libtorch then sees no CUDA device.

/// Emits the link arguments; does nothing when libtorch's folder is unknown.
pub fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    if std::path::Path::new(&lib_dir)
        .join("libtorch_cuda.so")
        .exists()
    {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
