import Testing

@Suite struct FlowmeterCoreSmokeTests {
    @Test func builds() {
        #expect(Bool(true))
    }
}
