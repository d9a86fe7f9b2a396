import Foundation
import Testing

@testable import FlowmeterApp

@Suite struct ConfigurationResolverTests {
    struct PrecedenceCase: Sendable, CustomTestStringConvertible {
        let key: ConfigKey
        let flag: String
        let flagShown: String
        let environment: String
        let environmentShown: String
        let defaultShown: String

        var testDescription: String { key.rawValue }
    }

    static let paths: [String: PathKind] = ["/flag.yaml": .file, "/env-analyzers": .directory]

    static let precedenceCases: [PrecedenceCase] = [
        .init(
            key: .brokers,
            flag: "f:1",
            flagShown: "f:1",
            environment: "e:2,e:3",
            environmentShown: "e:2,e:3",
            defaultShown: "localhost:9092"
        ),
        .init(
            key: .postgres,
            flag: "postgres://flag@h/db",
            flagShown: "postgres://flag@h/db",
            environment: "host=env dbname=d",
            environmentShown: "host=env dbname=d",
            defaultShown: "(none)"
        ),
        .init(
            key: .analyzers,
            flag: "/flag.yaml",
            flagShown: "file /flag.yaml",
            environment: "/env-analyzers",
            environmentShown: "folder /env-analyzers",
            defaultShown: "built-in LearnFlow set"
        ),
        .init(
            key: .http,
            flag: "127.0.0.1:1",
            flagShown: "127.0.0.1:1",
            environment: "[::1]:2",
            environmentShown: "[::1]:2",
            defaultShown: "0.0.0.0:9464"
        ),
        .init(
            key: .group,
            flag: "g-flag",
            flagShown: "g-flag",
            environment: "g.env_1",
            environmentShown: "g.env_1",
            defaultShown: "flowmeter"
        ),
        .init(
            key: .from,
            flag: "earliest",
            flagShown: "earliest",
            environment: "2026-01-02T03:04:05Z",
            environmentShown: "2026-01-02T03:04:05Z",
            defaultShown: "latest"
        ),
        .init(
            key: .flushInterval,
            flag: "1s",
            flagShown: "1s",
            environment: "120s",
            environmentShown: "2m",
            defaultShown: "5s"
        ),
        .init(
            key: .lagInterval,
            flag: "500ms",
            flagShown: "500ms",
            environment: "1h",
            environmentShown: "1h",
            defaultShown: "5s"
        ),
        .init(
            key: .retention,
            flag: "1h30m",
            flagShown: "1h30m",
            environment: "7d",
            environmentShown: "7d",
            defaultShown: "30d"
        ),
    ]

    @Test(arguments: precedenceCases)
    func flagBeatsEnvironmentBeatsDefault(_ testCase: PrecedenceCase) throws {
        let key = testCase.key
        let both = try makeResolver(environment: [key.environmentVariable: testCase.environment], paths: Self.paths)
            .resolve(CommandLineValues([key: testCase.flag]), for: .run)
        #expect(both.entry(key)?.value == testCase.flagShown)
        #expect(both.source(of: key) == .flag(key.flag))

        let environmentOnly = try makeResolver(
            environment: [key.environmentVariable: testCase.environment],
            paths: Self.paths
        )
        .resolve(CommandLineValues(), for: .run)
        #expect(environmentOnly.entry(key)?.value == testCase.environmentShown)
        #expect(environmentOnly.source(of: key) == .environment(key.environmentVariable))
        #expect(environmentOnly.entry(key)?.sourceDescription == "environment \(key.environmentVariable)")

        let neither = try makeResolver(paths: Self.paths).resolve(CommandLineValues(), for: .run)
        #expect(neither.entry(key)?.value == testCase.defaultShown)
        #expect(neither.source(of: key) == .default)
    }

    @Test func everyKeyHasAPrecedenceCase() {
        let covered = Set(Self.precedenceCases.map(\.key))
        #expect(covered == Set(ConfigKey.allCases).subtracting([.kafkaProperty]))
    }

    @Test func defaults() throws {
        let configuration = try makeResolver().resolve(CommandLineValues(), for: .run)
        #expect(configuration.brokers == ["localhost:9092"])
        #expect(configuration.bootstrapServers == "localhost:9092")
        #expect(configuration.postgresURL == nil)
        #expect(configuration.analyzers == .builtIn)
        #expect(configuration.httpAddress == HTTPAddress(host: "0.0.0.0", port: 9464))
        #expect(configuration.group == "flowmeter")
        #expect(configuration.from == .latest)
        #expect(configuration.flushInterval == .seconds(5))
        #expect(configuration.lagInterval == .seconds(5))
        #expect(configuration.retention == .seconds(30 * 86_400))
        #expect(configuration.kafkaProperties.isEmpty)
        for key in ConfigKey.allCases {
            #expect(configuration.source(of: key) == .default)
        }
    }

    @Test(arguments: [
        (PathKind.directory, AnalyzerSource.directory(path: "./analyzers")),
        (PathKind.file, AnalyzerSource.builtIn),
        (PathKind.missing, AnalyzerSource.builtIn),
    ])
    func analyzersDefaultToTheLocalFolderIfItExists(_ kind: PathKind, _ expected: AnalyzerSource) throws {
        let configuration = try makeResolver(paths: ["./analyzers": kind]).resolve(CommandLineValues(), for: .run)
        #expect(configuration.analyzers == expected)
    }

    @Test func missingAnalyzerPathIsAnError() throws {
        let errors = resolutionErrors(CommandLineValues([.analyzers: "/nowhere.yaml"]))
        let error = try #require(errors.first)
        #expect(errors.count == 1)
        #expect(
            error.description == #"--analyzers: expected an analyzer file or folder, got "/nowhere.yaml" (not found)"#
        )
    }

    @Test(arguments: CommandKind.allCases)
    func fromDefaultsPerCommand(_ command: CommandKind) throws {
        let configuration = try makeResolver().resolve(CommandLineValues(), for: command)
        #expect(configuration.from == (command == .backfill ? .earliest : .latest))
    }

    @Test(arguments: CommandKind.allCases)
    func flushIntervalDefaultsPerCommand(_ command: CommandKind) throws {
        let configuration = try makeResolver().resolve(CommandLineValues(), for: command)
        #expect(configuration.flushInterval == (command == .backfill ? .seconds(30) : .seconds(5)))
        let given = try makeResolver().resolve(CommandLineValues([.flushInterval: "2s"]), for: command)
        #expect(given.flushInterval == .seconds(2))
    }

    @Test func fromGivenOverridesTheCommandDefault() throws {
        let configuration = try makeResolver(environment: ["FLOWMETER_FROM": "LATEST"])
            .resolve(CommandLineValues(), for: .backfill)
        #expect(configuration.from == .latest)
    }

    @Test(arguments: [
        ("2026-11-29T03:00:00Z", 1_795_921_200.0),
        ("2026-11-29T05:00:00+02:00", 1_795_921_200.0),
        ("2026-11-29t03:00:00z", 1_795_921_200.0),
        ("2026-11-29T03:00:00.250Z", 1_795_921_200.25),
    ])
    func fromAcceptsRFC3339(_ text: String, _ seconds: Double) throws {
        let configuration = try makeResolver().resolve(CommandLineValues([.from: text]), for: .run)
        #expect(configuration.from == .time(Date(timeIntervalSince1970: seconds)))
    }

    @Test(arguments: ["yesterday", "2026-11-29", "2026-11-29T03:00:00", "2026-11-29 03:00:00Z", "first", ""])
    func fromRejectsOtherText(_ text: String) {
        let errors = resolutionErrors(CommandLineValues([.from: text]))
        #expect(errors.map(\.key) == [.from])
        #expect(errors.first?.description.hasPrefix("--from: expected earliest, latest or an RFC 3339 time") == true)
    }

    @Test(arguments: [
        ("localhost:9092", ["localhost:9092"]),
        ("a:1, b:2", ["a:1", "b:2"]),
        ("[::1]:9092", ["[::1]:9092"]),
        ("[fe80::1%eth0]:9092,10.0.0.1:65535", ["[fe80::1%eth0]:9092", "10.0.0.1:65535"]),
        ("kafka_1.internal:1", ["kafka_1.internal:1"]),
    ])
    func validBrokerLists(_ text: String, _ expected: [String]) throws {
        let configuration = try makeResolver().resolve(CommandLineValues([.brokers: text]), for: .run)
        #expect(configuration.brokers == expected)
    }

    @Test(arguments: [
        "", "localhost", "a:0", "a:65536", "a:1,", ",", "::1:9092", "[::1]", "[::1]9092", "a b:1", "a:port", ":9092",
        "a:-1", "a:1,,b:2", "[host]:1",
    ])
    func invalidBrokerLists(_ text: String) throws {
        let errors = resolutionErrors(
            CommandLineValues(),
            environment: ["FLOWMETER_BROKERS": text.isEmpty ? "x" : text]
        )
        let error = try #require(errors.first)
        #expect(errors.count == 1)
        #expect(error.key == .brokers)
        #expect(
            error.description.hasPrefix("environment variable FLOWMETER_BROKERS: expected comma-separated host:port")
        )
    }

    @Test func brokerErrorsNameEachBadEntry() throws {
        let error = try #require(resolutionErrors(CommandLineValues([.brokers: "a:1,b,c:99999"])).first)
        #expect(error.description.contains(#""b": no port"#))
        #expect(error.description.contains(#""c:99999": the port must be a number from 1 to 65535"#))
    }

    @Test(arguments: [":9464", "0.0.0.0:9464"])
    func httpAcceptsAPortAlone(_ text: String) throws {
        let configuration = try makeResolver().resolve(CommandLineValues([.http: text]), for: .run)
        #expect(configuration.httpAddress == HTTPAddress(host: "0.0.0.0", port: 9464))
    }

    @Test(arguments: ["9464", "localhost", "host:0", "host:70000", "::1:80", ""])
    func httpRejectsBadAddresses(_ text: String) {
        let errors = resolutionErrors(CommandLineValues([.http: text]))
        #expect(errors.map(\.key) == [.http])
    }

    @Test(arguments: ["", "has space", "ümlaut", String(repeating: "g", count: 250), "a/b"])
    func groupRejectsBadIDs(_ text: String) {
        #expect(resolutionErrors(CommandLineValues([.group: text])).map(\.key) == [.group])
    }

    @Test(arguments: [
        (ConfigKey.flushInterval, "100ms", true), (.flushInterval, "99ms", false), (.flushInterval, "1h", true),
        (.flushInterval, "1h1ms", false), (.lagInterval, "0s", false), (.lagInterval, "100ms", true),
        (.retention, "59m", false), (.retention, "1h", true), (.retention, "3650d", true), (.retention, "3651d", false),
    ])
    func durationBounds(_ key: ConfigKey, _ text: String, _ valid: Bool) {
        let errors = resolutionErrors(CommandLineValues([key: text]))
        #expect(errors.isEmpty == valid)
        if !valid {
            #expect(errors.first?.description.hasPrefix("\(key.flag): expected a duration from ") == true)
        }
    }

    @Test func emptyEnvironmentVariablesCountAsUnset() throws {
        let environment = Dictionary(uniqueKeysWithValues: ConfigKey.allCases.map { ($0.environmentVariable, " ") })
        let configuration = try makeResolver(environment: environment).resolve(CommandLineValues(), for: .run)
        #expect(configuration == (try makeResolver().resolve(CommandLineValues(), for: .run)))
    }

    @Test func valuesAreTrimmed() throws {
        let configuration = try makeResolver(environment: ["FLOWMETER_GROUP": " g \n"])
            .resolve(CommandLineValues([.brokers: " a:1 "]), for: .run)
        #expect(configuration.group == "g")
        #expect(configuration.brokers == ["a:1"])
    }

    struct BadValue: Sendable, CustomTestStringConvertible {
        let key: ConfigKey
        let value: String
        var testDescription: String { "\(key.rawValue)=\(value)" }
    }

    static let badValues: [BadValue] = [
        .init(key: .brokers, value: "nohost"), .init(key: .analyzers, value: "/missing"),
        .init(key: .http, value: "nowhere"), .init(key: .group, value: "bad group"),
        .init(key: .from, value: "tomorrow"), .init(key: .flushInterval, value: "fast"),
        .init(key: .lagInterval, value: "slow"), .init(key: .retention, value: "forever"),
    ]

    @Test(arguments: badValues)
    func errorsNameTheFlagOrVariableAndTheValue(_ bad: BadValue) throws {
        let fromFlag = try #require(resolutionErrors(CommandLineValues([bad.key: bad.value])).first)
        #expect(fromFlag.key == bad.key)
        #expect(fromFlag.source == .flag(bad.key.flag))
        #expect(fromFlag.description.hasPrefix("\(bad.key.flag): expected "))
        #expect(fromFlag.description.contains("got \"\(bad.value)\""))

        let fromEnvironment = try #require(
            resolutionErrors(CommandLineValues(), environment: [bad.key.environmentVariable: bad.value]).first
        )
        #expect(fromEnvironment.description.hasPrefix("environment variable \(bad.key.environmentVariable): expected "))
        #expect(fromEnvironment.description.contains("got \"\(bad.value)\""))
    }

    @Test func flushIntervalMessage() throws {
        let error = try #require(resolutionErrors(CommandLineValues([.flushInterval: "fast"])).first)
        #expect(
            error.description == #"--flush-interval: expected a duration such as 500ms, 5s, 1m or 1h30m, got "fast""#
        )
    }

    @Test func allProblemsAreCollectedInOptionOrder() {
        var values: [ConfigKey: String] = [:]
        for bad in Self.badValues {
            values[bad.key] = bad.value
        }
        values[.postgres] = "not-a-connection-string"
        let errors = resolutionErrors(
            CommandLineValues(values, kafkaProperties: ["novalue", "=x"]),
            environment: ["FLOWMETER_KAFKA_PROPERTIES": "ok=1;bad"]
        )
        #expect(
            errors.map(\.key) == [
                .brokers, .postgres, .analyzers, .http, .group, .from, .flushInterval, .lagInterval, .retention,
                .kafkaProperty, .kafkaProperty, .kafkaProperty,
            ]
        )
        #expect(
            errors.suffix(3).map(\.source) == [
                .environment("FLOWMETER_KAFKA_PROPERTIES", entry: 2), .flag("--kafka-property", occurrence: 1),
                .flag("--kafka-property", occurrence: 2),
            ]
        )
    }

    @Test func configurationErrorsDescribeOneProblemPerLine() {
        let errors = ConfigurationErrors([
            .invalid(.group, from: .flag("--group"), shownValue: "a b", expected: "an id"),
            .invalid(.retention, from: .environment("FLOWMETER_RETENTION"), shownValue: "x", expected: "a duration"),
        ])
        #expect(
            errors.description == """
                --group: expected an id, got "a b"
                environment variable FLOWMETER_RETENTION: expected a duration, got "x"
                """
        )
    }
}
