# Sourced by the gpu-bench scripts: libtorch from the python that holds torch (ORACLE_PYTHON,
# else python3), for building with tch and for running the binaries.
python=${ORACLE_PYTHON:-python3}
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LIBTORCH_USE_PYTORCH=1 LD_LIBRARY_PATH="$torch_lib:${LD_LIBRARY_PATH:-}"
export PATH="$(dirname "$python"):$PATH"
