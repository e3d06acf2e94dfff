#!/usr/bin/env bash
# Builds TesseraCore.xcframework (device + simulator static libraries of tessera-ffi, with the
# generated C header and module map) and the Swift bindings, for the Xcode project. Run on a Mac
# with Xcode and rustup; the Swift toolchain and Apple SDKs are not on the Linux CI machine.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add aarch64-apple-ios aarch64-apple-ios-sim >/dev/null
for target in aarch64-apple-ios aarch64-apple-ios-sim; do
  cargo rustc --locked --release -p tessera-ffi --lib --target "$target" --crate-type staticlib
done
scripts/bindings.sh target/bindings
headers="$(mktemp -d)"
trap 'rm -rf "$headers"' EXIT
cp target/bindings/TesseraCoreFFI.h "$headers/"
# Xcode looks for module.modulemap inside the framework's headers.
cp target/bindings/TesseraCoreFFI.modulemap "$headers/module.modulemap"
rm -rf ios/TesseraCore.xcframework
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/release/libtessera_ffi.a -headers "$headers" \
  -library target/aarch64-apple-ios-sim/release/libtessera_ffi.a -headers "$headers" \
  -output ios/TesseraCore.xcframework
mkdir -p ios/Tessera/Generated
cp target/bindings/TesseraCore.swift ios/Tessera/Generated/
echo "ios: TesseraCore.xcframework and Tessera/Generated/TesseraCore.swift are ready; open the project (xcodegen generate)"
