import Testing

@testable import FlowmeterCore

@Suite struct FlowCorrelatorTests {
    @Test func correlationKeysAreEqualExactlyWhenTheirTextsAre() {
        var generator = SystemRandomNumberGenerator()
        var texts = [
            "", "k", "4bf92f3577b34da6a3ce929d0e0e4736", "00000000000000000000000000000001",
            "4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f3577b34da6a3ce929d0e0e473", "4bf92f3577b34da6a3ce929d0e0e47360",
            "4bf92f3577b34da6a3ce929d0e0e473g", "4bf92f3577b34da6-3ce929d0e0e4736", "ü4bf92f3577b34da6a3ce929d0e0e47",
        ]
        for _ in 0..<200 {
            let high = UInt64.random(in: 0 ... .max, using: &generator)
            let low = UInt64.random(in: 0 ... .max, using: &generator)
            let key = CorrelationKey(traceHigh: high, traceLow: low)
            let spelled = String(high, radix: 16).leftPadded(16) + String(low, radix: 16).leftPadded(16)
            #expect(key.text == spelled)
            #expect(CorrelationKey(spelled) == key)
            #expect(CorrelationKey(spelled).hashValue == key.hashValue)
            texts.append(spelled)
        }
        for text in texts { #expect(CorrelationKey(text).text == text) }
        for a in texts {
            for b in texts.prefix(12) { #expect((CorrelationKey(a) == CorrelationKey(b)) == (a == b), "\(a) \(b)") }
        }
    }

    @Test func responsesTakeTheOldestRequestWithTheirKey() {
        var correlator = FlowCorrelator(timeoutsMs: [1_000], maxPending: 10)
        for (key, time) in [("k", 1), ("j", 2), ("k", 3)] as [(CorrelationKey, Int64)] {
            correlator.addRequest(flow: 0, key: key, timeMs: time) { _ in Issue.record("no eviction expected") }
        }
        #expect(correlator.takeRequest(flow: 0, key: "k")?.timeMs == 1)
        #expect(correlator.takeRequest(flow: 0, key: "k")?.timeMs == 3)
        #expect(correlator.takeRequest(flow: 0, key: "k") == nil)
        #expect(correlator.pendingCount == 1)
        #expect(correlator.keyCount == 1)
    }

    @Test func outOfOrderExpiryUnlinksTheMiddleAndTailOfAKeysQueue() {
        var correlator = FlowCorrelator(timeoutsMs: [10], maxPending: 10)
        for time in [50, 5, 30, 1] as [Int64] { correlator.addRequest(flow: 0, key: "k", timeMs: time) { _ in } }
        var expired: [Int64] = []
        // Deadlines 60, 15, 40 and 11: the tail (1) and a middle entry (5) go first.
        correlator.expire(clockMs: 20) { expired.append($0.timeMs) }
        #expect(expired == [1, 5])
        correlator.addRequest(flow: 0, key: "k", timeMs: 55) { _ in }
        #expect(correlator.takeRequest(flow: 0, key: "k")?.timeMs == 50)
        #expect(correlator.takeRequest(flow: 0, key: "k")?.timeMs == 30)
        #expect(correlator.takeRequest(flow: 0, key: "k")?.timeMs == 55)
        #expect(correlator.takeRequest(flow: 0, key: "k") == nil)
        #expect(correlator.keyCount == 0)
    }

    @Test func randomOperationsMatchAReferenceModel() {
        var generator = SeededGenerator(state: 11)
        var correlator = FlowCorrelator(timeoutsMs: [40, 90], maxPending: 25)
        // Reference: insertion-ordered list of (sequence, request).
        var model: [(sequence: Int, request: PendingRequest)] = []
        var sequence = 0
        var clock: Int64 = 0
        for _ in 0..<20_000 {
            let flow = Int.random(in: 0..<2, using: &generator)
            let key: CorrelationKey = "k\(Int.random(in: 0..<6, using: &generator))"
            switch Int.random(in: 0..<3, using: &generator) {
            case 0:
                let time = clock + Int64.random(in: -20...20, using: &generator)
                var evicted: [PendingRequest] = []
                correlator.addRequest(flow: flow, key: key, timeMs: time) { evicted.append($0) }
                model.append((sequence, PendingRequest(flow: flow, key: key, timeMs: time)))
                sequence += 1
                var expectedEvicted: [PendingRequest] = []
                while model.count > 25 { expectedEvicted.append(model.removeFirst().request) }
                #expect(evicted == expectedEvicted)
            case 1:
                let taken = correlator.takeRequest(flow: flow, key: key)
                let index = model.firstIndex { $0.request.flow == flow && $0.request.key == key }
                #expect(taken == index.map { model[$0].request })
                if let index { model.remove(at: index) }
            default:
                clock += Int64.random(in: 0...15, using: &generator)
                var expired: [PendingRequest] = []
                correlator.expire(clockMs: clock) { expired.append($0) }
                let timeouts: [Int64] = [40, 90]
                let due = model.filter { $0.request.timeMs + timeouts[$0.request.flow] <= clock }
                model.removeAll { $0.request.timeMs + timeouts[$0.request.flow] <= clock }
                #expect(Set(expired) == Set(due.map(\.request)))
                #expect(expired.count == due.count)
            }
            #expect(correlator.pendingCount == model.count)
        }
    }

    @Test func flowsHaveSeparateTables() {
        var correlator = FlowCorrelator(timeoutsMs: [1_000, 1_000], maxPending: 10)
        correlator.addRequest(flow: 0, key: "k", timeMs: 1) { _ in }
        #expect(correlator.takeRequest(flow: 1, key: "k") == nil)
        #expect(correlator.takeRequest(flow: 0, key: "k") != nil)
    }

    @Test func evictsTheOldestInsertionAcrossFlows() {
        var correlator = FlowCorrelator(timeoutsMs: [1_000, 5_000], maxPending: 2)
        var evicted: [PendingRequest] = []
        correlator.addRequest(flow: 1, key: "a", timeMs: 50) { evicted.append($0) }
        correlator.addRequest(flow: 0, key: "b", timeMs: 10) { evicted.append($0) }
        correlator.addRequest(flow: 0, key: "c", timeMs: 20) { evicted.append($0) }
        #expect(evicted == [PendingRequest(flow: 1, key: "a", timeMs: 50)])
        #expect(correlator.pendingCount == 2)
        #expect(correlator.keyCount == 2)
    }

    @Test func zeroBoundEvictsEveryRequest() {
        var correlator = FlowCorrelator(timeoutsMs: [1_000], maxPending: 0)
        var evicted = 0
        correlator.addRequest(flow: 0, key: "a", timeMs: 1) { _ in evicted += 1 }
        #expect(evicted == 1)
        #expect(correlator.pendingCount == 0)
    }

    @Test func expiresByDeadlineWithPerFlowTimeouts() {
        var correlator = FlowCorrelator(timeoutsMs: [100, 10], maxPending: 10)
        correlator.addRequest(flow: 0, key: "slow", timeMs: 0) { _ in }
        correlator.addRequest(flow: 1, key: "fast", timeMs: 50) { _ in }
        correlator.addRequest(flow: 1, key: "early", timeMs: 5) { _ in }
        var expired: [String] = []
        correlator.expire(clockMs: 59) { expired.append($0.key.text) }
        #expect(expired == ["early"])
        correlator.expire(clockMs: 100) { expired.append($0.key.text) }
        #expect(expired == ["early", "fast", "slow"])
        #expect(correlator.pendingCount == 0)
        #expect(correlator.keyCount == 0)
    }

    @Test func bookkeepingStaysBoundedWhenRequestsComplete() {
        var correlator = FlowCorrelator(timeoutsMs: [Int64.max], maxPending: 1_000)
        for index in 0..<100_000 {
            correlator.addRequest(flow: 0, key: "k\(index)", timeMs: Int64(index)) { _ in }
            if index >= 10 { _ = correlator.takeRequest(flow: 0, key: "k\(index - 10)") }
        }
        #expect(correlator.pendingCount == 10)
        #expect(correlator.bookkeepingEntries <= 2 * (2 * 10 + 64) + 2)
        // Deadlines that overflow saturate instead of wrapping into the past.
        correlator.expire(clockMs: Int64.max - 1) { _ in Issue.record("nothing expires") }
    }

    @Test func bookkeepingStaysBoundedUnderEviction() {
        var correlator = FlowCorrelator(timeoutsMs: [60_000], maxPending: 100)
        var evicted = 0
        for index in 0..<50_000 {
            correlator.addRequest(flow: 0, key: "k\(index % 3_000)", timeMs: Int64(index)) { _ in evicted += 1 }
        }
        #expect(evicted == 50_000 - 100)
        #expect(correlator.pendingCount == 100)
        #expect(correlator.keyCount == 100)
        #expect(correlator.bookkeepingEntries <= 2 * (2 * 100 + 64) + 2)
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
