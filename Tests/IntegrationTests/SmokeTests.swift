import Testing

@Suite struct IntegrationSmokeTests {
    @Test func builds() {
        #expect(Bool(true))
    }
}
