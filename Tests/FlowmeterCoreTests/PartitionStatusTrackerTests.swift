import FlowmeterCore
import Testing

@Suite struct PartitionStatusTrackerTests {
    /// A hand-made sequence: (committed, lag) per sample, and the status expected after each one.
    struct Sequence: Sendable, CustomTestStringConvertible {
        var name: String
        var window: Int
        var samples: [(committed: Int64?, lag: Int64)]
        var expected: [LagStatus]
        var testDescription: String { name }
    }

    static let sequences: [Sequence] = [
        Sequence(
            name: "keeping up with noisy lag (1, 3, 2): ok",
            window: 3,
            samples: [(10, 2), (12, 1), (14, 3), (16, 2), (18, 0), (20, 1), (22, 3), (24, 2)],
            expected: [.ok, .ok, .ok, .ok, .ok, .ok, .ok, .ok]
        ),
        Sequence(
            name: "idle and caught up with a commit that never moves: ok, never stalled",
            window: 3,
            samples: Array(repeating: (500, 0), count: 10),
            expected: Array(repeating: .ok, count: 10)
        ),
        Sequence(
            name: "growing lag with a moving commit: warning once the window is full",
            window: 3,
            samples: [(10, 5), (11, 8), (12, 12), (13, 15)],
            expected: [.ok, .ok, .warning, .warning]
        ),
        Sequence(
            name: "saw-tooth lag of a batch committer that keeps up: no warning",
            window: 3,
            samples: [(10, 5), (20, 9), (30, 4), (40, 8), (50, 5), (60, 9)],
            expected: [.ok, .ok, .ok, .ok, .ok, .ok]
        ),
        Sequence(
            name: "saw-tooth that climbs: not growing by the documented rule (lag fell between samples)",
            window: 3,
            samples: [(10, 5), (20, 9), (30, 7), (40, 12)],
            expected: [.ok, .ok, .ok, .ok]
        ),
        Sequence(
            name: "lag that touched 0 in the window: ok (not growing)",
            window: 3,
            samples: [(10, 0), (11, 4), (12, 9)],
            expected: [.ok, .ok, .ok]
        ),
        Sequence(
            name: "steady non-zero lag with a moving commit: ok",
            window: 3,
            samples: [(10, 5), (15, 5), (20, 5), (25, 5)],
            expected: [.ok, .ok, .ok, .ok]
        ),
        Sequence(
            name: "commit frozen while records wait: stalled at a full window, stopped after more than 2 windows",
            window: 3,
            samples: Array(repeating: (7, 4), count: 8),
            expected: [.ok, .ok, .stalled, .stalled, .stalled, .stalled, .stopped, .stopped]
        ),
        Sequence(
            name: "frozen commit with lag, then the topic drains to it (lag 0): ok at once",
            window: 3,
            samples: [(7, 4), (7, 4), (7, 4), (7, 0)],
            expected: [.ok, .ok, .stalled, .ok]
        ),
        Sequence(
            name: "ok -> warning -> stalled -> stopped -> ok",
            window: 3,
            samples: [
                (10, 0), (11, 5), (12, 8), (13, 12),  // falling behind
                (13, 15), (13, 15),  // commit freezes
                (13, 15), (13, 15), (13, 15), (13, 15),  // still frozen
                (40, 0),  // caught up
            ],
            expected: [.ok, .ok, .ok, .warning, .warning, .stalled, .stalled, .stalled, .stalled, .stopped, .ok]
        ),
        Sequence(
            name: "a commit that moves backwards (reset) ends a frozen run",
            window: 2,
            samples: [(7, 4), (7, 4), (3, 8), (3, 8)],
            expected: [.ok, .stalled, .warning, .stalled]
        ),
        Sequence(
            name: "no commit is ok",
            window: 2,
            samples: [(nil, 0), (nil, 0), (nil, 0)],
            expected: [.ok, .ok, .ok]
        ),
    ]

    @Test(arguments: sequences)
    func statusSequence(_ sequence: Sequence) {
        var tracker = PartitionStatusTracker(window: sequence.window)
        var seen: [LagStatus] = []
        for sample in sequence.samples {
            seen.append(tracker.record(LagStatusSample(committed: sample.committed, lagMessages: sample.lag)))
        }
        #expect(seen == sequence.expected)
        #expect(tracker.status == sequence.expected.last)
    }

    @Test func outOfRangeAndBrokerErrorsAreErrors() {
        var tracker = PartitionStatusTracker(window: 3)
        #expect(tracker.record(LagStatusSample(committed: 0, lagMessages: 10, outOfRange: true)) == .error)
        #expect(tracker.record(LagStatusSample(committed: 60, lagMessages: 10)) == .ok)
        #expect(tracker.record(LagStatusSample(committed: 61, lagMessages: 9, brokerError: true)) == .error)
        #expect(tracker.record(LagStatusSample(committed: 62, lagMessages: 8)) == .ok)
    }

    @Test func aGroupWithoutMembersIsStoppedOnlyWhereRecordsWait() {
        var tracker = PartitionStatusTracker(window: 3)
        #expect(tracker.record(LagStatusSample(committed: 5, lagMessages: 3), groupHasNoMembers: true) == .stopped)
        #expect(tracker.record(LagStatusSample(committed: 8, lagMessages: 0), groupHasNoMembers: true) == .ok)
        #expect(tracker.record(LagStatusSample(committed: 8, lagMessages: 2), groupHasNoMembers: nil) == .ok)
    }

    @Test func theWindowHasAtLeastTwoSamples() {
        #expect(PartitionStatusTracker(window: 0).window == 2)
        #expect(PartitionStatusTracker(window: 10).window == 10)
    }

    @Test func groupStatusIsTheWorstPartition() {
        #expect(GroupStatus.worst([]) == .ok)
        #expect(GroupStatus.worst([.ok, .warning, .ok]) == .warning)
        #expect(GroupStatus.worst([.stalled, .warning]) == .stalled)
        #expect(GroupStatus.worst([.stalled, .stopped, .ok]) == .stopped)
        #expect(GroupStatus.worst([.stopped, .error]) == .error)
        #expect(GroupStatus.worst([.ok], groupError: true) == .error)
        #expect(LagStatus.allCases.map(\.description) == ["ok", "warning", "stalled", "stopped", "error"])
    }
}
