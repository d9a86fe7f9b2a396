import Kafka
import Synchronization

/// What `/readyz` and the self-metrics report: Kafka reachability, the consumer's assignment, draining.
final class RunStatus: Sendable {
    struct State {
        var kafkaUp: Bool?
        var kafkaProblem: String? = "not checked yet"
        var assignment: Set<TopicPartition> = []
        var assignmentReceived = false
        var draining = false
        var intakeFailure: String?
    }

    let state = Mutex(State())

    func kafka(up: Bool, problem: String?) {
        state.withLock {
            $0.kafkaUp = up
            $0.kafkaProblem = up ? nil : problem
        }
    }

    func assigned(_ partitions: [TopicPartition]) {
        state.withLock {
            $0.assignment.formUnion(partitions)
            $0.assignmentReceived = true
        }
    }

    func revoked(_ partitions: [TopicPartition]) {
        state.withLock { $0.assignment.subtract(partitions) }
    }

    func draining() {
        state.withLock { $0.draining = true }
    }

    func intakeFailed(_ reason: String) {
        state.withLock { $0.intakeFailure = reason }
    }

    /// Why the process is not ready; empty when it is.
    func notReadyReasons() -> [String] {
        state.withLock { state in
            var reasons: [String] = []
            if state.draining { reasons.append("shutting down") }
            if let failure = state.intakeFailure { reasons.append("intake stopped: \(failure)") }
            if state.kafkaUp != true {
                reasons.append("Kafka not reachable: \(state.kafkaProblem ?? "unknown")")
            }
            if !state.assignmentReceived {
                reasons.append("no partition assignment received yet from the consumer group")
            } else if state.assignment.isEmpty {
                reasons.append("the consumer group assigned no partitions to this replica (do the topics exist?)")
            }
            return reasons
        }
    }

    var kafkaUp: Bool? { state.withLock { $0.kafkaUp } }
    var assignedPartitions: Int { state.withLock { $0.assignment.count } }
}
