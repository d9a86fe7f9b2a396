import FlowmeterCore
import Testing

@Suite struct LagMathTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var offsets: PartitionOffsets
        var firstWaiting: WaitingRecord?
        var expected: PartitionLag
        var testDescription: String { name }
    }

    static let now: Int64 = 1_700_000_100_000

    static let cases: [Case] = [
        Case(
            name: "caught up on a plain partition",
            offsets: PartitionOffsets(committed: 10, logStart: 0, end: 10),
            firstWaiting: nil,
            expected: PartitionLag(messages: 0, seconds: 0, lostMessages: 0, noCommit: false, outOfRange: false)
        ),
        Case(
            name: "records waiting: offset lag and exact time lag of the record at the commit",
            offsets: PartitionOffsets(committed: 4, logStart: 0, end: 10),
            firstWaiting: WaitingRecord(offset: 4, timestampMs: now - 42_500),
            expected: PartitionLag(messages: 6, seconds: 42.5, lostMessages: 0, noCommit: false, outOfRange: false)
        ),
        Case(
            name: "caught up where the log ends in a transaction commit marker: 0, not 1",
            offsets: PartitionOffsets(committed: 3, logStart: 0, end: 4),
            firstWaiting: nil,
            expected: PartitionLag(messages: 0, seconds: 0, lostMessages: 0, noCommit: false, outOfRange: false)
        ),
        Case(
            name: "markers before the first waiting record are not lag",
            offsets: PartitionOffsets(committed: 3, logStart: 0, end: 8),
            firstWaiting: WaitingRecord(offset: 4, timestampMs: now - 1_000),
            expected: PartitionLag(messages: 4, seconds: 1, lostMessages: 0, noCommit: false, outOfRange: false)
        ),
        Case(
            name: "commit below the log start: lost records, lag counted from the log start",
            offsets: PartitionOffsets(committed: 0, logStart: 60, end: 70),
            firstWaiting: WaitingRecord(offset: 60, timestampMs: now - 5_000),
            expected: PartitionLag(messages: 10, seconds: 5, lostMessages: 60, noCommit: false, outOfRange: true)
        ),
        Case(
            name: "commit below the log start of an emptied log: lost, no lag",
            offsets: PartitionOffsets(committed: 5, logStart: 70, end: 70),
            firstWaiting: nil,
            expected: PartitionLag(messages: 0, seconds: 0, lostMessages: 65, noCommit: false, outOfRange: true)
        ),
        Case(
            name: "no commit: no lag values, flagged",
            offsets: PartitionOffsets(committed: nil, logStart: 0, end: 10),
            firstWaiting: WaitingRecord(offset: 0, timestampMs: now),
            expected: PartitionLag(messages: nil, seconds: nil, lostMessages: 0, noCommit: true, outOfRange: false)
        ),
        Case(
            name: "idle topic, caught-up group with an old commit: time lag 0",
            offsets: PartitionOffsets(committed: 500, logStart: 0, end: 500),
            firstWaiting: nil,
            expected: PartitionLag(messages: 0, seconds: 0, lostMessages: 0, noCommit: false, outOfRange: false)
        ),
        Case(
            name: "reprocessing from the beginning: the true age of the position",
            offsets: PartitionOffsets(committed: 0, logStart: 0, end: 1_000),
            firstWaiting: WaitingRecord(offset: 0, timestampMs: now - 86_400_000),
            expected: PartitionLag(
                messages: 1_000,
                seconds: 86_400,
                lostMessages: 0,
                noCommit: false,
                outOfRange: false
            )
        ),
        Case(
            name: "commit past the end: out of range, no lag",
            offsets: PartitionOffsets(committed: 12, logStart: 0, end: 10),
            firstWaiting: nil,
            expected: PartitionLag(messages: 0, seconds: 0, lostMessages: 0, noCommit: false, outOfRange: true)
        ),
        Case(
            name: "a record stamped in the future gives 0 seconds, not negative",
            offsets: PartitionOffsets(committed: 1, logStart: 0, end: 2),
            firstWaiting: WaitingRecord(offset: 1, timestampMs: now + 3_000),
            expected: PartitionLag(messages: 1, seconds: 0, lostMessages: 0, noCommit: false, outOfRange: false)
        ),
        Case(
            name: "a record without timestamp: offset lag, no time lag",
            offsets: PartitionOffsets(committed: 1, logStart: 0, end: 3),
            firstWaiting: WaitingRecord(offset: 1, timestampMs: -1),
            expected: PartitionLag(messages: 2, seconds: nil, lostMessages: 0, noCommit: false, outOfRange: false)
        ),
        Case(
            name: "a waiting record found at or past the end arrived later: caught up",
            offsets: PartitionOffsets(committed: 5, logStart: 0, end: 6),
            firstWaiting: WaitingRecord(offset: 6, timestampMs: now - 1_000),
            expected: PartitionLag(messages: 0, seconds: 0, lostMessages: 0, noCommit: false, outOfRange: false)
        ),
    ]

    @Test(arguments: cases)
    func lag(_ testCase: Case) {
        #expect(
            LagMath.lag(offsets: testCase.offsets, firstWaiting: testCase.firstWaiting, nowMs: Self.now)
                == testCase.expected
        )
    }

    @Test func positionAndRange() {
        #expect(PartitionOffsets(committed: 3, logStart: 5, end: 9).position == 5)
        #expect(PartitionOffsets(committed: 7, logStart: 5, end: 9).position == 7)
        #expect(PartitionOffsets(committed: nil, logStart: 5, end: 9).position == nil)
        #expect(PartitionOffsets(committed: 9, logStart: 5, end: 9).mayHaveWaitingRecords == false)
        #expect(PartitionOffsets(committed: 8, logStart: 5, end: 9).mayHaveWaitingRecords)
        #expect(PartitionOffsets(committed: 9, logStart: 5, end: 9).isOutOfRange == false)
        #expect(PartitionOffsets(committed: 5, logStart: 5, end: 9).isOutOfRange == false)
    }
}
