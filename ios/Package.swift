// swift-tools-version:6.0
//
// The iOS shell of Doorstep. Three layers, lowest first:
//
//   doorstep_ffiFFI  C declarations of libdoorstep_ffi (generated header) plus
//                    a hand-written module map that links the library.
//   DoorstepCore     The UniFFI-generated Swift bindings, used as generated.
//   Doorstep         Hand-written Swift idioms over the bindings; what app code
//                    imports (it re-exports DoorstepCore).
//
// The generated files are not committed: tests/swift.sh builds the Rust
// library, generates them into Sources/ and runs `swift test` with the linker
// pointed at the library (-Xlinker -L<dir> -Xlinker -rpath -Xlinker <dir>).
import PackageDescription

let package = Package(
    name: "Doorstep",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "Doorstep", targets: ["Doorstep"]),
    ],
    targets: [
        .systemLibrary(name: "doorstep_ffiFFI", path: "Sources/doorstep_ffiFFI"),
        .target(name: "DoorstepCore", dependencies: ["doorstep_ffiFFI"]),
        .target(name: "Doorstep", dependencies: ["DoorstepCore"]),
        .testTarget(name: "DoorstepTests", dependencies: ["Doorstep"]),
    ]
)
