#!/usr/bin/env bash
# Build LLVM's OpenMP runtime (libomp) for macOS at the wheel's deployment target, for one architecture,
# into $LIBOMP_PREFIX (default /usr/local/opt/mfcore-libomp). cibuildwheel runs it once per macOS job
# (before-all); delocate then copies libomp.dylib into each wheel. Building it here, instead of taking
# Homebrew's, keeps the dylib's minimum macOS version at the wheel's (Homebrew builds for the runner's
# own macOS, and delocate refuses a library newer than the wheel's tag).
#
#   MACOSX_DEPLOYMENT_TARGET=11.0 LIBOMP_ARCH=arm64 tools/build_libomp_macos.sh
set -euo pipefail
version="${LLVM_VERSION:-19.1.7}"
arch="${LIBOMP_ARCH:-$(uname -m)}"
prefix="${LIBOMP_PREFIX:-/usr/local/opt/mfcore-libomp}"
: "${MACOSX_DEPLOYMENT_TARGET:?set the deployment target the wheels are tagged with}"

work="$(mktemp -d)"
base="https://github.com/llvm/llvm-project/releases/download/llvmorg-${version}"
for part in openmp cmake; do   # the runtime, and LLVM's shared CMake modules it needs since LLVM 15
  curl -fsSL --retry 3 -o "$work/$part.tar.xz" "$base/$part-$version.src.tar.xz"
  mkdir -p "$work/$part"
  tar -xJf "$work/$part.tar.xz" -C "$work/$part" --strip-components=1
done
if [ -n "${LLVM_OPENMP_SHA256:-}" ]; then   # pin once known: the workflow passes it
  echo "$LLVM_OPENMP_SHA256  $work/openmp.tar.xz" | shasum -a 256 -c -
fi

cmake -S "$work/openmp" -B "$work/build" -G "Unix Makefiles" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCMAKE_OSX_ARCHITECTURES="$arch" \
  -DCMAKE_OSX_DEPLOYMENT_TARGET="$MACOSX_DEPLOYMENT_TARGET" \
  -DCMAKE_INSTALL_NAME_DIR="$prefix/lib" \
  -DLIBOMP_INSTALL_ALIASES=OFF \
  -DLIBOMP_OMPT_SUPPORT=OFF \
  -DLIBOMP_OMPD_SUPPORT=OFF \
  -DOPENMP_ENABLE_LIBOMPTARGET=OFF \
  -DOPENMP_STANDALONE_BUILD=ON
cmake --build "$work/build" --parallel "$(sysctl -n hw.ncpu)"
cmake --install "$work/build"
otool -l "$prefix/lib/libomp.dylib" | grep -A4 -E "LC_BUILD_VERSION|LC_VERSION_MIN_MACOSX" | grep -E "minos|version"
echo "libomp $version for $arch (macOS >= $MACOSX_DEPLOYMENT_TARGET) in $prefix"
