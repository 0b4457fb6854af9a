#!/bin/sh
# Stages libtorch from the torch wheel, for the Dockerfile's builders.
#
#   stage-torch <index-url> <version> cpu|cuda
#
# Installs torch==<version> from <index-url> into /opt/venv, then:
# - /out/libtorch/torch/lib: the wheel's shared libraries, the only part the runtime images copy,
#   with the wheel's layout (torch/lib beside nvidia/*/lib, cuda only), which libtorch_cuda's
#   $ORIGIN/../../nvidia/... rpath expects; libtorch_python is left behind (nothing links it);
# - /opt/libtorch/{include,lib}: the layout tch's build script reads through LIBTORCH, so no
#   Python runs at build time.
# `cpu` takes the wheel without its dependencies and drops its CUDA libraries, so that a CUDA
# wheel (the only kind on PyPI, which answers where the PyTorch index does not) makes a CPU
# image too; the build then checks that every library left finds what it needs.
set -eu
index=$1 version=$2 variant=$3
case $variant in
  cpu) deps=--no-deps ;;
  cuda) deps= ;;
  *) echo "stage-torch: variant must be cpu or cuda, not '$variant'" >&2; exit 2 ;;
esac
python3 -m venv /opt/venv
# shellcheck disable=SC2086 # $deps is empty or one flag
/opt/venv/bin/pip install --no-cache-dir --retries 10 --timeout 60 $deps --index-url "$index" "torch==$version"
site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
lib=/out/libtorch/torch/lib
mkdir -p /out/libtorch/torch
cp -a "$site/torch/lib" "$lib"
rm -f "$lib/libtorch_python.so"
if [ "$variant" = cpu ] && [ -e "$lib/libtorch_cuda.so" ]; then
  # A CUDA wheel: keep its CPU part. libtorch_cpu links the CUDA runtime and CUPTI (the
  # profiler), small libraries that load without a GPU, so take those two from the wheel's own
  # pinned cuda-toolkit; libtorch.so is an empty umbrella over libtorch_cpu and libtorch_cuda,
  # so it becomes one over libtorch_cpu alone.
  toolkit=$(sed -n 's/^Requires-Dist: cuda-toolkit\[[^]]*\]\(==[^;]*\);.*/cuda-toolkit[cudart,cupti]\1/p' \
    "$site"/torch-*.dist-info/METADATA)
  [ -n "$toolkit" ] || { echo "stage-torch: torch $version names no cuda-toolkit to take the CUDA runtime from" >&2; exit 1; }
  /opt/venv/bin/pip install --no-cache-dir --retries 10 --timeout 60 --index-url "$index" "$toolkit"
  rm -f "$lib"/*cuda* "$lib"/*nvrtc* "$lib"/*nvshmem* "$lib"/libtorch_global_deps.so "$lib/libtorch.so"
  find "$site/nvidia" \( -name 'libcudart.so.*' -o -name 'libcupti.so.*' \) -exec cp -a {} "$lib/" \;
  echo | cc -shared -x c - -o "$lib/libtorch.so" -Wl,--no-as-needed -L"$lib" -ltorch_cpu
fi
if [ "$variant" = cpu ]; then
  missing=$(for so in "$lib"/*.so*; do
    readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
  done | sort -u | while read -r needed; do
    [ -e "$lib/$needed" ] || ldconfig -p | grep -q "^[[:space:]]*$needed " || echo "$needed"
  done)
  if [ -n "$missing" ]; then
    echo "stage-torch: the CPU libraries of torch $version need what the image lacks: $missing" >&2
    exit 1
  fi
else
  cp -a "$site/nvidia" /out/libtorch/nvidia
fi
mkdir -p /opt/libtorch
ln -s "$site/torch/include" /opt/libtorch/include
ln -s "$lib" /opt/libtorch/lib
echo "stage-torch: torch $(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$site/torch/version.py") ($variant), $(du -sh /out/libtorch | cut -f1) of libraries"
