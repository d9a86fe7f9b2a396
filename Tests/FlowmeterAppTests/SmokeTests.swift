import Testing

@Suite struct FlowmeterAppSmokeTests {
    @Test func builds() {
        #expect(Bool(true))
    }
}
