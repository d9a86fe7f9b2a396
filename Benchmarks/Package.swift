// swift-tools-version:6.2
import PackageDescription

// Flowmeter's benchmarks: a package of its own so that the root package never builds ordo-one/benchmark.
//
//   cd Benchmarks && swift package --scratch-path .build-perf benchmark
//
// `flowmeter-profile` runs the same corpus through the decoder or the engine in a plain loop, for callgrind.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

let package = Package(
    name: "FlowmeterBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "flowmeter", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Realistic LearnFlow Dapr records, shared by the benchmarks and the profiling loop.
        .target(
            name: "BenchmarkCorpus",
            dependencies: [.product(name: "FlowmeterCore", package: "flowmeter")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FlowmeterBenchmarks",
            dependencies: [
                "BenchmarkCorpus",
                .product(name: "FlowmeterCore", package: "flowmeter"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/FlowmeterBenchmarks",
            swiftSettings: swiftSettings,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "flowmeter-profile",
            dependencies: ["BenchmarkCorpus", .product(name: "FlowmeterCore", package: "flowmeter")],
            swiftSettings: swiftSettings
        ),
    ]
)
