import Testing

@testable import FlowmeterApp

/// `check` with librdkafka's own property validation (the production validator, not a fake).
@Suite struct LibrdkafkaValidationTests {
    @Test func rejectsUnknownAndInvalidPropertiesAndAcceptsTLSAndSASLSettings() {
        let errors = resolutionErrors(
            CommandLineValues(
                [:],
                kafkaProperties: [
                    "security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512", "sasl.username=flowmeter",
                    "sasl.password=Zq9-librdkafka-secret", "ssl.ca.location=/etc/ssl/certs/ca.pem",
                    "ssl.bogus=1", "socket.timeout.ms=soon",
                ]
            ),
            validator: librdkafkaPropertyValidator
        )
        let text = errors.map(\.description)
        #expect(errors.count == 2)
        #expect(text.contains { $0.contains("ssl.bogus") && $0.contains("No such configuration property") })
        #expect(text.contains { $0.contains("socket.timeout.ms") })
        #expect(!text.joined().contains("Zq9-librdkafka-secret"))
    }
}
