import Testing

@testable import FlowmeterApp

@Suite struct KafkaPropertyTests {
    private func resolve(environment: String?, flags: [String]) throws -> [KafkaProperty] {
        let environment = environment.map { ["FLOWMETER_KAFKA_PROPERTIES": $0] } ?? [:]
        return try makeResolver(environment: environment)
            .resolve(CommandLineValues(kafkaProperties: flags), for: .run)
            .kafkaProperties
    }

    @Test func environmentFirstThenFlagsAndTheLastWins() throws {
        let properties = try resolve(environment: "a=1;b=2", flags: ["b=3", "c=4", "a=5"])
        #expect(
            properties == [
                KafkaProperty(key: "a", value: "5", source: .flag("--kafka-property", occurrence: 3)),
                KafkaProperty(key: "b", value: "3", source: .flag("--kafka-property", occurrence: 1)),
                KafkaProperty(key: "c", value: "4", source: .flag("--kafka-property", occurrence: 2)),
            ]
        )
    }

    @Test func laterEnvironmentEntriesWin() throws {
        let properties = try resolve(environment: "a=1;a=2", flags: [])
        #expect(
            properties == [
                KafkaProperty(key: "a", value: "2", source: .environment("FLOWMETER_KAFKA_PROPERTIES", entry: 2))
            ]
        )
    }

    @Test(arguments: [
        (
            "security.protocol=SASL_SSL; sasl.mechanism = PLAIN ;",
            [("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN")]
        ),
        ("sasl.oauthbearer.config=principal=me scope=x", [("sasl.oauthbearer.config", "principal=me scope=x")]),
        ("client.id=", [("client.id", "")]),
        (";;", []),
    ])
    func environmentSyntax(_ text: String, _ expected: [(String, String)]) throws {
        let properties = try resolve(environment: text, flags: [])
        #expect(properties.map(\.key) == expected.map(\.0))
        #expect(properties.map(\.value) == expected.map(\.1))
    }

    @Test func entriesAreNumberedByPosition() throws {
        let properties = try resolve(environment: "a=1;;b=2", flags: [])
        #expect(properties.map(\.source) == [1, 3].map { .environment("FLOWMETER_KAFKA_PROPERTIES", entry: $0) })
    }

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        let environment: String?
        let flags: [String]
        let message: String
        var testDescription: String { message }
    }

    static let errorCases: [ErrorCase] = [
        .init(
            environment: "a=1;oops",
            flags: [],
            message:
                #"environment variable FLOWMETER_KAFKA_PROPERTIES entry 2: expected key=value such as security.protocol=SASL_SSL, got "oops" (no =)"#
        ),
        .init(
            environment: nil,
            flags: ["a=1", "=x"],
            message: "--kafka-property #2: expected key=value such as security.protocol=SASL_SSL (empty key)"
        ),
        .init(
            environment: nil,
            flags: ["Bad Key=1"],
            message:
                #"--kafka-property #1: expected a librdkafka property name (lowercase letters, digits, . _ -) such as ssl.ca.location, got "Bad Key""#
        ),
        .init(
            environment: "bootstrap.servers=x:1",
            flags: [],
            message:
                "environment variable FLOWMETER_KAFKA_PROPERTIES entry 1: bootstrap.servers is set with --brokers or FLOWMETER_BROKERS, not as a Kafka property"
        ),
        .init(
            environment: nil,
            flags: ["group.id=x"],
            message: "--kafka-property #1: group.id is set with --group or FLOWMETER_GROUP, not as a Kafka property"
        ),
    ]

    @Test(arguments: errorCases)
    func malformedEntriesNameWhereTheyCameFrom(_ testCase: ErrorCase) {
        let environment = testCase.environment.map { ["FLOWMETER_KAFKA_PROPERTIES": $0] } ?? [:]
        let errors = resolutionErrors(CommandLineValues(kafkaProperties: testCase.flags), environment: environment)
        #expect(errors.map(\.description) == [testCase.message])
    }

    @Test func theValidatorSeesEveryResolvedPropertyAndItsProblemsAreReported() {
        let validator: ConfigurationResolver.KafkaPropertyValidator = { key, value in
            key == "ssl.ca.location" ? "Invalid value \"\(value)\" for configuration property \"\(key)\"" : nil
        }
        let errors = resolutionErrors(
            CommandLineValues(kafkaProperties: ["ssl.ca.location=/nope", "client.id=x"]),
            validator: validator
        )
        #expect(
            errors.map(\.description) == [
                #"--kafka-property #1: librdkafka rejects ssl.ca.location: Invalid value "/nope" for configuration property "ssl.ca.location""#
            ]
        )
    }

    @Test(arguments: [
        "sasl.password", "SASL.PASSWORD", "ssl.key.password", "ssl.keystore.password", "ssl.truststore.password",
        "ssl.key.pem", "ssl_key", "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config",
        "sasl.oauthbearer.assertion.private.key.pem", "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.jaas.config",
    ])
    func secretKeys(_ key: String) {
        #expect(Redaction.isSecretKafkaProperty(key))
        #expect(KafkaProperty(key: key, value: "v", source: .default).description == "\(key)=***")
    }

    @Test(arguments: [
        "ssl.certificate.pem", "ssl.ca.pem", "ssl.ca.location", "ssl.key.location", "sasl.username",
        "security.protocol",
        "sasl.mechanism", "client.id",
    ])
    func nonSecretKeys(_ key: String) {
        #expect(!Redaction.isSecretKafkaProperty(key))
        #expect(KafkaProperty(key: key, value: "v", source: .default).description == "\(key)=v")
    }
}
