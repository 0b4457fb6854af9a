//! Gives this crate's tests libtorch's rpath (and keeps libtorch_cuda), see `aml-torch-link`.

fn main() {
    aml_torch_link::link_libtorch();
}
