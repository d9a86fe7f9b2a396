#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// LearnFlow's pub/sub topology as the simulator plays it: which app publishes each topic, which apps (consumer
/// groups) subscribe to it, and the per-subscriber dead-letter topics.
///
/// - Important: Mirrors `analyzers/learnflow.yaml` (topics, `dead_letters`, `groups`); a test keeps the two equal.
public enum LearnFlowCatalog {
    /// The Dapr pub/sub component name (`pubsubname` in envelopes, `pubsubName` in dead-letter headers).
    public static let pubsubName = "pubsub"

    /// The six LearnFlow topics.
    public static let learningRequested = "learning.requested"
    public static let lessonGenerated = "lesson.generated"
    public static let exerciseSubmitted = "exercise.submitted"
    public static let exerciseGraded = "exercise.graded"
    public static let progressUpdated = "progress.updated"
    public static let courseCompleted = "course.completed"

    /// The apps (Dapr app-ids; each one's consumer group has its name).
    public static let frontend = "frontend"
    public static let courseAgent = "course-agent"
    public static let exerciseAgent = "exercise-agent"
    public static let progressAgent = "progress-agent"

    /// The topics in the order of `analyzers/learnflow.yaml`.
    public static let topics = [
        learningRequested, lessonGenerated, exerciseSubmitted, exerciseGraded, progressUpdated, courseCompleted,
    ]

    /// The app that publishes each topic (the CloudEvent `source`).
    public static let publisher: [String: String] = [
        learningRequested: frontend,
        lessonGenerated: courseAgent,
        exerciseSubmitted: frontend,
        exerciseGraded: exerciseAgent,
        progressUpdated: progressAgent,
        courseCompleted: progressAgent,
    ]

    /// The subscriber groups and the topics each consumes, in the order of `analyzers/learnflow.yaml`.
    public static let groups: [(group: String, topics: [String])] = [
        (courseAgent, [learningRequested, courseCompleted]),
        (frontend, [lessonGenerated, exerciseGraded, progressUpdated]),
        (exerciseAgent, [exerciseSubmitted]),
        (progressAgent, [exerciseGraded]),
    ]

    /// The group names.
    public static var groupNames: [String] { groups.map(\.group) }

    /// The subscribers of a topic.
    public static func subscribers(of topic: String) -> [String] {
        subscribersByTopic[topic] ?? []
    }

    private static let subscribersByTopic: [String: [String]] = Dictionary(
        uniqueKeysWithValues: topics.map { topic in (topic, groups.filter { $0.topics.contains(topic) }.map(\.group)) }
    )

    /// The dead-letter topic of one subscriber of a topic, as LearnFlow's Subscriptions name them.
    public static func deadLetterTopic(_ topic: String, subscriber: String) -> String {
        "\(topic).dlq.\(subscriber)"
    }

    /// Every dead-letter topic with its source topic and subscriber, in the order of `analyzers/learnflow.yaml`.
    public static var deadLetterTopics: [(topic: String, source: String, subscriber: String)] {
        topics.flatMap { topic in
            subscribers(of: topic).sorted { lhs, rhs in
                // learnflow.yaml lists exercise.graded's progress-agent before its frontend.
                (lhs == frontend ? 1 : 0, lhs) < (rhs == frontend ? 1 : 0, rhs)
            }.map { (deadLetterTopic(topic, subscriber: $0), topic, $0) }
        }
    }

    /// Every topic the simulator writes: the six LearnFlow topics, then the dead-letter topics.
    public static var allTopics: [String] { topics + deadLetterTopics.map(\.topic) }
}

/// A log-normal latency distribution in milliseconds: `median · e^(sigma · Z)`.
public struct LogNormalLatency: Sendable, Hashable {
    /// The median in milliseconds.
    public var medianMs: Double
    /// The shape: the standard deviation of the logarithm.
    public var sigma: Double

    /// Creates a distribution.
    public init(medianMs: Double, sigma: Double) {
        self.medianMs = medianMs
        self.sigma = sigma
    }

    /// The probability of a draw above `thresholdMs`.
    public func tailProbability(aboveMs thresholdMs: Double) -> Double {
        0.5 * erfc(log(thresholdMs / medianMs) / (sigma * 2.0.squareRoot()))
    }

    /// One draw in whole milliseconds, at least 1.
    public func draw(_ random: inout SimulationRandom) -> Int64 {
        max(1, Int64(random.logNormal(median: medianMs, sigma: sigma).rounded()))
    }
}

/// How long each LearnFlow service takes, and how long Dapr takes to dead-letter a failed delivery.
public struct ServiceLatencies: Sendable, Hashable {
    /// course-agent: `learning.requested` → `lesson.generated` (an LLM writes the lesson).
    public var lessonGeneration = LogNormalLatency(medianMs: 1400, sigma: 0.45)
    /// exercise-agent: `exercise.submitted` → `exercise.graded`; median 180 ms, about 3.9 % above 500 ms.
    public var grading = LogNormalLatency(medianMs: 180, sigma: 0.58)
    /// progress-agent: `exercise.graded` → `progress.updated`.
    public var progressUpdate = LogNormalLatency(medianMs: 35, sigma: 0.5)
    /// progress-agent: `progress.updated` → `course.completed` (its second publish in the same handler).
    public var completion = LogNormalLatency(medianMs: 12, sigma: 0.4)
    /// A subscriber answering DROP (or HTTP 404): Dapr dead-letters at once.
    public var drop = LogNormalLatency(medianMs: 40, sigma: 0.6)
    /// A subscriber failing until the resiliency policy's retries are exhausted (exponential back-off, 6 retries,
    /// about 10 s), then Dapr dead-letters.
    public var retriesExhausted = LogNormalLatency(medianMs: 11_000, sigma: 0.15)
    /// The share of failed deliveries that are DROP answers rather than exhausted retries.
    public var dropShare = 0.4

    /// The defaults above.
    public init() {}
}
