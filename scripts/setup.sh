#!/usr/bin/env bash
# Install what microgen's commands and tests need, skipping what is already there.
#   scripts/setup.sh python      pip packages (microgen itself, editable, with the test oracles)
#   scripts/setup.sh toolchains  Debian cross compilers and QEMU (apt-get; needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

python_deps() {
    if ! "$PY" -c "import microgen, tflite, onnx, onnxruntime, tflite_micro, hypothesis, pytest" 2>/dev/null \
       || [ pyproject.toml -nt .setup-python.stamp ]; then
        echo "setup: installing python packages (pip install -e '.[test]')"
        "$PY" -m pip install -q --disable-pip-version-check -e '.[test]'
        touch .setup-python.stamp
    fi
}

toolchains() {
    local need=()
    command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi libnewlib-arm-none-eabi picolibc-arm-none-eabi)
    command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
    command -v qemu-system-riscv32 >/dev/null || need+=(qemu-system-misc)
    command -v riscv64-unknown-elf-gcc >/dev/null || need+=(gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)
    command -v gcc >/dev/null || need+=(gcc)
    if [ ${#need[@]} -gt 0 ]; then
        echo "setup: installing ${need[*]} (apt-get)"
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}

case "${1:-all}" in
    python) python_deps ;;
    toolchains) toolchains ;;
    all) python_deps; toolchains ;;
    *) echo "usage: $0 [python|toolchains|all]" >&2; exit 2 ;;
esac
