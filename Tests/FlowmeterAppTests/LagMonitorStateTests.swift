import FlowmeterCore
import Foundation
import Kafka
import Testing

@testable import FlowmeterApp

@Suite struct LagMonitorStateTests {
    private let p0 = TopicPartition("orders", 0)
    private let p1 = TopicPartition("orders", 1)

    private func update(_ partitions: [TopicPartition], lag: Int64 = 5) -> GroupUpdate {
        var update = GroupUpdate(partitions: Set(partitions))
        for partition in partitions {
            let offsets = PartitionOffsets(committed: 10, logStart: 0, end: 10 + lag)
            update.fresh[partition] = FreshPartition(
                offsets: offsets,
                lag: LagMath.lag(
                    offsets: offsets,
                    firstWaiting: WaitingRecord(offset: 10, timestampMs: 0),
                    nowMs: 1000
                ),
                at: Date()
            )
        }
        return update
    }

    @Test func vanishedGroupsAreKeptForTheGracePeriodThenDropped() {
        var state = MonitorState()
        let start = ContinuousClock.now
        let retention = Duration.seconds(300)
        state.apply(["pattern-group": update([p0])], noMembers: [], window: 3, retention: retention, now: start)
        #expect(state.groups["pattern-group"] != nil)
        // The group is no longer resolved: its series stay for the grace period...
        state.apply([:], noMembers: [], window: 3, retention: retention, now: start + .seconds(299))
        #expect(state.groups["pattern-group"]?.partitions.count == 1)
        // ...and go after it.
        state.apply([:], noMembers: [], window: 3, retention: retention, now: start + .seconds(301))
        #expect(state.groups["pattern-group"] == nil)
    }

    @Test func partitionsThatLeftTheAssignmentAreDroppedAtOnce() {
        var state = MonitorState()
        let now = ContinuousClock.now
        state.apply(["graders": update([p0, p1])], noMembers: [], window: 3, retention: .seconds(300), now: now)
        #expect(state.groups["graders"]?.partitions.count == 2)
        state.apply(["graders": update([p1])], noMembers: [], window: 3, retention: .seconds(300), now: now)
        #expect(state.groups["graders"]?.partitions.keys.sorted() == [p1])
        // Nothing of the group assigned here: the group's series are not this replica's to report.
        state.apply(
            ["graders": GroupUpdate(partitions: [])],
            noMembers: [],
            window: 3,
            retention: .seconds(300),
            now: now
        )
        #expect(state.groups["graders"] == nil)
    }

    @Test func aStaleCycleKeepsValuesAndStatus() {
        var state = MonitorState()
        let now = ContinuousClock.now
        state.apply(["graders": update([p0], lag: 7)], noMembers: [], window: 3, retention: .seconds(300), now: now)
        var stale = GroupUpdate(partitions: [p0])
        stale.stale = true
        state.apply(["graders": stale], noMembers: [], window: 3, retention: .seconds(300), now: now)
        #expect(state.groups["graders"]?.stale == true)
        #expect(state.groups["graders"]?.partitions[p0]?.lag.messages == 7)
        #expect(state.groups["graders"]?.partitions[p0]?.tracker.samples.count == 1)
        #expect(state.groups["graders"]?.status == .ok)
    }

    @Test func aBrokerErrorOnAGroupIsAnErrorStatus() {
        var state = MonitorState()
        let now = ContinuousClock.now
        state.apply(["graders": update([p0])], noMembers: [], window: 3, retention: .seconds(300), now: now)
        var failed = GroupUpdate(partitions: [p0])
        failed.stale = true
        failed.groupError = true
        state.apply(["graders": failed], noMembers: [], window: 3, retention: .seconds(300), now: now)
        #expect(state.groups["graders"]?.status == .error)
        var partitionError = GroupUpdate(partitions: [p0])
        partitionError.brokerErrors = [p0]
        state.apply(["graders": partitionError], noMembers: [], window: 3, retention: .seconds(300), now: now)
        #expect(state.groups["graders"]?.partitions[p0]?.tracker.status == .error)
        #expect(state.groups["graders"]?.status == .error)
    }

    /// Every change of a group's status is returned once, in the cycle it happens (`pollOnce` logs it), so the
    /// log holds each transition even when no scrape saw it.
    @Test func statusChangesAreReportedOncePerTransition() {
        var state = MonitorState()
        let now = ContinuousClock.now
        var reported: [[String]] = []
        func cycle(lag: Int64) {
            let changes = state.apply(
                ["graders": update([p0, p1], lag: lag)],
                noMembers: [],
                window: 3,
                retention: .seconds(300),
                now: now
            )
            reported.append(changes.map { "\($0.group) \($0.from)→\($0.to) \($0.lagMessages)" })
        }
        // The commit stays at 10 with 5 records waiting on each partition: stalled at 3 samples, stopped past 6.
        for _ in 0..<8 { cycle(lag: 5) }
        cycle(lag: 0)
        cycle(lag: 0)
        #expect(
            reported == [
                [], [], ["graders ok→stalled 10"], [], [], [], ["graders stalled→stopped 10"], [],
                ["graders stopped→ok 0"], [],
            ]
        )
    }
}
