import Foundation
import Testing

@testable import FlowmeterApp

@Suite struct CheckRunnerTests {
    static let postgresSecret = "pg-S3CRET-xyzzy"
    static let saslSecret = "sasl-S3CRET-plugh"
    static let pemSecret = "pem-S3CRET-frotz"
    static let clientSecret = "client-S3CRET-gnusto"
    static let secrets = [postgresSecret, saslSecret, pemSecret, clientSecret]

    static let environment = [
        "FLOWMETER_POSTGRES_URL": "postgres://flowmeter:\(postgresSecret)@db:5432/flowmeter?sslmode=require",
        "FLOWMETER_KAFKA_PROPERTIES": "security.protocol=SASL_SSL;sasl.password=\(saslSecret)",
    ]
    static let flags = CommandLineValues(
        [.brokers: "kafka-1:9092,[::1]:9093"],
        kafkaProperties: ["ssl.key.pem=\(pemSecret)", "sasl.oauthbearer.client.secret=\(clientSecret)"]
    )

    private func expectNoSecret(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for secret in Self.secrets {
            #expect(!text.contains(secret), "secret leaked into: \(text)", sourceLocation: sourceLocation)
        }
    }

    @Test func textHasOneAlignedLinePerKey() throws {
        let result = CheckRunner(resolver: makeResolver(environment: Self.environment)).run(Self.flags, format: .text)
        #expect(result.exitCode == 0)
        #expect(result.problems.isEmpty)
        let allLines = result.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // The configuration, a blank line, the analyzer summary and the final newline.
        #expect(allLines.count == 9 + 4 + 3)
        #expect(allLines.suffix(3) == ["", AnalyzerSummaryTests.builtInSummary, ""])
        let lines = Array(allLines.prefix(9 + 4))
        #expect(lines[0].hasPrefix("brokers         kafka-1:9092,[::1]:9093"))
        #expect(lines[0].hasSuffix("  flag --brokers"))
        #expect(lines[1].hasPrefix("postgres        postgres://flowmeter:***@db:5432/flowmeter?sslmode=require"))
        #expect(lines[1].hasSuffix("  environment FLOWMETER_POSTGRES_URL"))
        #expect(lines[10].contains("sasl.password=***"))
        #expect(lines[10].hasSuffix("environment FLOWMETER_KAFKA_PROPERTIES entry 2"))
        #expect(lines[11].contains("ssl.key.pem=***"))
        #expect(lines[11].hasSuffix("flag --kafka-property #1"))
        // The source column starts at the same offset on every line.
        let sourceColumns = Set(
            lines.map { line in
                line.count - ["flag", "environment", "default"].compactMap {
                    line.firstRange(of: "  \($0)")?.lowerBound
                }
                .map { line.distance(from: $0, to: line.endIndex) }.max()!
            }
        )
        #expect(sourceColumns.count == 1)
        expectNoSecret(result.output)
    }

    @Test func jsonListsEverySettingRedacted() throws {
        let result = CheckRunner(resolver: makeResolver(environment: Self.environment)).run(Self.flags, format: .json)
        #expect(result.exitCode == 0)
        expectNoSecret(result.output)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        let settings = try #require(object["settings"] as? [[String: String]])
        let analyzers = try #require(object["analyzers"] as? [String: Any])
        #expect(analyzers["files"] as? [String] == [AnalyzerLoader.builtInFileName])
        #expect((analyzers["flows"] as? [Any])?.count == 3)
        #expect(settings.count == 9 + 4)
        #expect(settings[0] == ["key": "brokers", "value": "kafka-1:9092,[::1]:9093", "source": "flag --brokers"])
        #expect(settings[1]["value"] == "postgres://flowmeter:***@db:5432/flowmeter?sslmode=require")
        #expect(settings.map(\.["key"]).contains("flush-interval"))
    }

    @Test func descriptionsAndMirrorsAreRedacted() throws {
        let configuration = try makeResolver(environment: Self.environment).resolve(Self.flags, for: .run)
        #expect(configuration.postgresURL?.contains(Self.postgresSecret) == true)
        expectNoSecret(String(describing: configuration))
        expectNoSecret(String(reflecting: configuration))
        var dumped = ""
        dump(configuration, to: &dumped)
        expectNoSecret(dumped)
        for property in configuration.kafkaProperties {
            expectNoSecret("\(property) \(String(reflecting: property))")
            var dumpedProperty = ""
            dump(property, to: &dumpedProperty)
            expectNoSecret(dumpedProperty)
        }
    }

    @Test func problemsNeverShowSecrets() {
        let validator: ConfigurationResolver.KafkaPropertyValidator = { key, value in
            "Invalid value \"\(value)\" for configuration property \"\(key)\""
        }
        let flags = CommandLineValues(
            [.postgres: Self.postgresSecret, .flushInterval: "fast"],
            kafkaProperties: [
                "sasl.password:\(Self.saslSecret)", "=\(Self.pemSecret)",
                "sasl.oauthbearer.client.secret=\(Self.clientSecret)",
            ]
        )
        let environment = ["FLOWMETER_KAFKA_PROPERTIES": "sasl.password=\(Self.saslSecret)"]
        let result = CheckRunner(resolver: makeResolver(environment: environment, validator: validator))
            .run(flags, format: .text)
        #expect(result.exitCode == 2)
        #expect(result.output.isEmpty)
        #expect(result.problems.count == 6)
        for problem in result.problems {
            expectNoSecret(problem)
        }
        #expect(
            result.problems.contains {
                $0.hasPrefix(#"--postgres: expected a libpq connection string"#) && $0.hasSuffix(#"got "***""#)
            }
        )
        #expect(
            result.problems.contains(
                #"--flush-interval: expected a duration such as 500ms, 5s, 1m or 1h30m, got "fast""#
            )
        )
    }

    @Test func postgresErrorsShowTheRedactedURL() throws {
        let errors = resolutionErrors(
            CommandLineValues(),
            environment: ["FLOWMETER_POSTGRES_URL": "pg://u:\(Self.postgresSecret)@h/db"]
        )
        let error = try #require(errors.first)
        #expect(error.key == .postgres)
        expectNoSecret(error.description)
    }
}
