import Testing

@Suite struct KafkaSmokeTests {
    @Test func builds() {
        #expect(Bool(true))
    }
}
