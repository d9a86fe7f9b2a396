import Testing

@Suite struct PostgresSmokeTests {
    @Test func builds() {
        #expect(Bool(true))
    }
}
