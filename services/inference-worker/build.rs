//! Links libtorch with an rpath (and libtorch_cuda kept), see `aml-torch-link`.

fn main() {
    aml_torch_link::link_libtorch();
}
