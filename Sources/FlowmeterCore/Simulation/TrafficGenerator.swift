/// What the simulated LearnFlow platform does: how many learners, how fast, how often subscribers fail, and
/// which subscriber groups are slow or stall.
public struct SimulationParameters: Sendable, Hashable {
    /// Concurrent learners (default 1000).
    public var learners: Int
    /// Records per second overall: requests, responses and dead-letter copies (default 200).
    public var rate: Double
    /// The seed: equal parameters and seeds give equal sequences of records.
    public var seed: UInt64
    /// The fraction of deliveries (record × subscriber) that the subscriber fails, so Dapr dead-letters them.
    public var failureRate: Double
    /// Groups that process at most this many deliveries per second; their deliveries queue behind each other.
    public var slowGroups: [String: Double]
    /// Groups that stop processing this many milliseconds after the start (a poison message in an infinite
    /// retry); deliveries from then on get no response and no dead-letter copy.
    public var stalledGroups: [String: Int64]
    /// The services' latency distributions.
    public var latencies: ServiceLatencies

    /// Creates parameters.
    public init(
        learners: Int = 1000,
        rate: Double = 200,
        seed: UInt64 = 1,
        failureRate: Double = 0.01,
        slowGroups: [String: Double] = [:],
        stalledGroups: [String: Int64] = [:],
        latencies: ServiceLatencies = ServiceLatencies()
    ) {
        self.learners = learners
        self.rate = rate
        self.seed = seed
        self.failureRate = failureRate
        self.slowGroups = slowGroups
        self.stalledGroups = stalledGroups
        self.latencies = latencies
    }
}

/// A dead-letter copy's link to the record it copies.
public struct DeadLetterOrigin: Sendable, Hashable {
    /// The ``SimulatedRecord/planID`` of the original.
    public var originalPlanID: UInt64
    /// The original topic (`__topic`).
    public var topic: String
    /// The subscriber whose delivery failed.
    public var subscriber: String
    /// The original record timestamp (`__timestamp`).
    public var timestampMs: Int64
}

/// One Kafka record as a Dapr sidecar of a LearnFlow app writes it.
public struct SimulatedRecord: Sendable, Hashable {
    /// The position in the generator's output, from 0.
    public var sequence: Int
    /// A unique id of the record within the simulation (dead-letter copies refer to their original by it).
    public var planID: UInt64
    /// Milliseconds since the start of the simulation.
    public var offsetMs: Int64
    /// The record timestamp (CreateTime): the generator's epoch plus ``offsetMs``.
    public var timestampMs: Int64
    /// The topic.
    public var topic: String
    /// The key: the `partitionKey` metadata (the learner id), as Dapr sets it.
    public var key: [UInt8]?
    /// The headers. For a dead-letter copy, without `__partition` and `__offset`, which only the broker's
    /// answer for the original gives: see ``headers(originalPartition:originalOffset:)``.
    public var headers: [RecordHeader]
    /// The value: the CloudEvent envelope (a dead-letter copy's is byte-identical to its original's).
    public var value: [UInt8]
    /// The CloudEvent `id`.
    public var eventID: String
    /// The CloudEvent `type`.
    public var type: String
    /// The CloudEvent `source` (the publishing app-id).
    public var source: String
    /// The W3C trace-id shared by a request and its responses.
    public var traceID: String
    /// For a dead-letter copy: the original.
    public var deadLetter: DeadLetterOrigin?
    /// For an original: how many dead-letter copies of it follow.
    public var deadLetterCopies: Int

    /// A dead-letter copy's complete headers, as Dapr writes them: the original's headers, then `__key`,
    /// `__timestamp`, `__topic`, `pubsubName`, `__offset` and `__partition`. (Dapr's order is Go's random map
    /// order; the simulator's is fixed.) For an original, just ``headers``.
    public func headers(originalPartition: Int32, originalOffset: Int64) -> [RecordHeader] {
        guard deadLetter != nil else { return headers }
        return headers + [
            RecordHeader(name: "__offset", string: String(originalOffset)),
            RecordHeader(name: "__partition", string: String(originalPartition)),
        ]
    }
}

/// Produces an endless, deterministic stream of LearnFlow traffic as Dapr sidecars write it, in record
/// timestamp order.
///
/// Learners act as a Poisson process (rate chosen so that all records together come to
/// ``SimulationParameters/rate`` per second). A learner without a lesson asks for one (`learning.requested`,
/// frontend); course-agent answers with `lesson.generated`. With a lesson, the learner submits exercises
/// (`exercise.submitted`); exercise-agent grades them (`exercise.graded`), progress-agent records the progress
/// (`progress.updated`), and after the last exercise of the last lesson announces `course.completed`. Every
/// response carries its request's trace-id and is stamped the request's timestamp plus a latency drawn from
/// the service's log-normal distribution (after any queueing in a slow group). Every delivery to a subscriber
/// fails with probability ``SimulationParameters/failureRate``; Dapr then writes a dead-letter copy to
/// `<topic>.dlq.<subscriber>` and a request gets no response.
///
/// Pure: the same parameters, seed and epoch give the same records; with another epoch only the timestamps and
/// the CloudEvent `time` differ.
public struct TrafficGenerator: Sendable {
    /// The parameters.
    public let parameters: SimulationParameters
    /// The wall-clock time (epoch milliseconds) that offset 0 maps to.
    public let epochMs: Int64
    /// Mean milliseconds between two learner actions.
    public let meanActionGapMs: Double

    private var random: SimulationRandom
    private var learners: [Learner]
    private var heap = PlanHeap()
    private var nextPlanID: UInt64 = 0
    private var nextActionMs: Double
    private var groupFreeAtMs: [String: Double] = [:]
    private var pendingCopies: [UInt64: Int] = [:]
    private var emittedOriginals: [UInt64: EmittedOriginal] = [:]
    private var emitted = 0
    /// Learner actions performed so far.
    public private(set) var actions = 0
    /// Records scheduled so far, per topic (including ones not yet emitted).
    public private(set) var scheduledByTopic: [String: Int] = [:]

    /// Creates a generator.
    ///
    /// - Parameters:
    ///   - parameters: The simulated platform.
    ///   - epochMs: The wall-clock time of offset 0, in epoch milliseconds.
    ///   - recordsPerAction: Records per learner action, to pace the actions; by default estimated with
    ///     ``estimate(_:)``.
    public init(parameters: SimulationParameters, epochMs: Int64, recordsPerAction: Double? = nil) {
        precondition(parameters.learners >= 1, "at least one learner")
        precondition(parameters.rate > 0, "a positive rate")
        self.parameters = parameters
        self.epochMs = epochMs
        let perAction = recordsPerAction ?? Self.estimate(parameters).recordsPerAction
        self.meanActionGapMs = 1000 * perAction / parameters.rate
        var random = SimulationRandom(seed: parameters.seed)
        var ids: Set<String> = []
        var learners: [Learner] = []
        learners.reserveCapacity(parameters.learners)
        for _ in 0..<parameters.learners {
            var id = "learner-" + random.hex(6)
            while !ids.insert(id).inserted { id = "learner-" + random.hex(6) }
            var learner = Learner(
                id: id,
                level: random.pick(levels),
                locale: random.pick(locales),
                course: random.below(courses.count),
                sessionID: "sess-" + random.hex(6)
            )
            // Learners are somewhere in their course already (most of them in the middle of a lesson), so the
            // traffic has its steady mix from the start and some courses complete within the first minutes.
            learner.lesson = random.below(courses[learner.course].lessons)
            if random.chance(0.7) { learner.exercisesLeft = 1 + random.below(4) }
            learners.append(learner)
        }
        self.learners = learners
        self.nextActionMs = random.exponential(mean: meanActionGapMs)
        self.random = random
    }

    /// What a run with these parameters produces on average.
    public struct Estimate: Sendable, Hashable {
        /// Records per learner action.
        public var recordsPerAction: Double
        /// Each topic's share of all records (dead-letter topics included).
        public var topicShares: [String: Double]

        /// Records per second that a group's topics receive at the given overall rate.
        public func inputRate(of group: String, rate: Double) -> Double {
            let topics = LearnFlowCatalog.groups.first { $0.group == group }?.topics ?? []
            return rate * topics.reduce(0) { $0 + (topicShares[$1] ?? 0) }
        }
    }

    /// Estimates records per action and the topic mix by running the model (without slow or stalled groups) for
    /// 20,000 actions. Deterministic.
    public static func estimate(_ parameters: SimulationParameters) -> Estimate {
        var probe = parameters
        probe.slowGroups = [:]
        probe.stalledGroups = [:]
        probe.seed = parameters.seed ^ 0x5EED_E571_3A7E
        var generator = TrafficGenerator(parameters: probe, epochMs: 0, recordsPerAction: 3)
        let actions = 20_000
        for _ in 0..<actions {
            let at = Int64(generator.nextActionMs)
            generator.performAction(atMs: at)
            generator.nextActionMs += generator.random.exponential(mean: generator.meanActionGapMs)
        }
        let total = generator.scheduledByTopic.values.reduce(0, +)
        return Estimate(
            recordsPerAction: Double(total) / Double(actions),
            topicShares: generator.scheduledByTopic.mapValues { Double($0) / Double(total) }
        )
    }

    /// The next record in timestamp order (ties in plan order).
    public mutating func next() -> SimulatedRecord {
        while heap.isEmpty || Double(heap.minimumTimeMs) > nextActionMs {
            performAction(atMs: Int64(nextActionMs))
            nextActionMs += random.exponential(mean: meanActionGapMs)
        }
        let entry = heap.pop()
        defer { emitted += 1 }
        switch entry.item {
        case .event(let event):
            return emit(event, entry: entry)
        case .deadLetter(let plan):
            return emitDeadLetter(plan, entry: entry)
        }
    }

    /// The offset (milliseconds since the start) of the next record, without taking it.
    public mutating func peekOffsetMs() -> Int64 {
        while heap.isEmpty || Double(heap.minimumTimeMs) > nextActionMs {
            performAction(atMs: Int64(nextActionMs))
            nextActionMs += random.exponential(mean: meanActionGapMs)
        }
        return heap.minimumTimeMs
    }

    // MARK: - Emission

    private mutating func emit(_ event: PlannedEvent, entry: PlanEntry) -> SimulatedRecord {
        let timestampMs = epochMs + entry.timeMs
        let traceparent = "00-\(event.traceID)-\(event.parentID)-01"
        let type = event.typeOverride ?? "com.dapr.event.sent"
        let envelope: GoJSON = .object([
            "data": event.data,
            "datacontenttype": .string("application/json"),
            "id": .string(event.id),
            "pubsubname": .string(LearnFlowCatalog.pubsubName),
            "source": .string(event.source),
            "specversion": .string("1.0"),
            // daprd builds the envelope a moment before sarama stamps the record; whole seconds, UTC.
            "time": .string(formatRFC3339Seconds(epochMilliseconds: timestampMs - 2)),
            "topic": .string(event.topic),
            "traceid": .string(traceparent),
            "traceparent": .string(traceparent),
            "tracestate": .string(""),
            "type": .string(type),
        ])
        // Kafka headers are the publish metadata: partitionKey (also the key) and any cloudevent.* override.
        var headers = [RecordHeader(name: "partitionKey", string: event.learnerID)]
        if let override = event.typeOverride { headers.append(RecordHeader(name: "cloudevent.type", string: override)) }
        let record = SimulatedRecord(
            sequence: emitted,
            planID: entry.planID,
            offsetMs: entry.timeMs,
            timestampMs: timestampMs,
            topic: event.topic,
            key: Array(event.learnerID.utf8),
            headers: headers,
            value: envelope.bytes,
            eventID: event.id,
            type: type,
            source: event.source,
            traceID: event.traceID,
            deadLetter: nil,
            deadLetterCopies: pendingCopies.removeValue(forKey: entry.planID) ?? 0
        )
        if record.deadLetterCopies > 0 {
            emittedOriginals[entry.planID] = EmittedOriginal(record: record, remaining: record.deadLetterCopies)
        }
        return record
    }

    private mutating func emitDeadLetter(_ plan: DeadLetterPlan, entry: PlanEntry) -> SimulatedRecord {
        guard var original = emittedOriginals[plan.originalPlanID] else {
            preconditionFailure("a dead-letter copy is always scheduled after its original")
        }
        original.remaining -= 1
        emittedOriginals[plan.originalPlanID] = original.remaining > 0 ? original : nil
        let source = original.record
        var headers = source.headers
        if let key = source.key { headers.append(RecordHeader(name: "__key", value: key)) }
        headers += [
            RecordHeader(name: "__timestamp", string: String(source.timestampMs)),
            RecordHeader(name: "__topic", string: source.topic),
            RecordHeader(name: "pubsubName", string: LearnFlowCatalog.pubsubName),
        ]
        return SimulatedRecord(
            sequence: emitted,
            planID: entry.planID,
            offsetMs: entry.timeMs,
            timestampMs: epochMs + entry.timeMs,
            topic: LearnFlowCatalog.deadLetterTopic(source.topic, subscriber: plan.subscriber),
            key: source.key,
            headers: headers,
            value: source.value,
            eventID: source.eventID,
            type: source.type,
            source: source.source,
            traceID: source.traceID,
            deadLetter: DeadLetterOrigin(
                originalPlanID: plan.originalPlanID,
                topic: source.topic,
                subscriber: plan.subscriber,
                timestampMs: source.timestampMs
            ),
            deadLetterCopies: 0
        )
    }

    // MARK: - The model

    private mutating func performAction(atMs now: Int64) {
        actions += 1
        var index = random.below(learners.count)
        // Prefer a learner who is not waiting for an answer (a few tries; with few learners someone waits).
        for _ in 0..<3 where learners[index].busyUntilMs > now {
            index = random.below(learners.count)
        }
        if learners[index].exercisesLeft == 0 {
            requestLesson(learner: index, atMs: now)
        } else {
            submitExercise(learner: index, atMs: now)
        }
    }

    private mutating func requestLesson(learner index: Int, atMs now: Int64) {
        var learner = learners[index]
        let course = courses[learner.course]
        let traceID = random.nonZeroHex(32)
        let request = makeEvent(
            topic: LearnFlowCatalog.learningRequested,
            traceID: traceID,
            learner: learner,
            data: [
                "courseId": .string(course.id),
                "goal": .string(course.goals[learner.lesson % course.goals.count]),
                "learnerId": .string(learner.id),
                "lesson": .int(Int64(learner.lesson + 1)),
                "level": .string(learner.level),
                "locale": .string(learner.locale),
                "sessionId": .string(learner.sessionID),
            ]
        )
        // The learner waits for the lesson up to 30 s, then asks again.
        learner.busyUntilMs = now + 30_000
        let outcomes = publish(request, atMs: now)
        if case .processed(let start) = outcomes[LearnFlowCatalog.courseAgent] {
            let lessonAt = start + parameters.latencies.lessonGeneration.draw(&random)
            let lesson = makeEvent(
                topic: LearnFlowCatalog.lessonGenerated,
                traceID: traceID,
                learner: learner,
                data: [
                    "causationId": .string(request.id),
                    "courseId": .string(course.id),
                    "estimatedMinutes": .int(Int64(8 + random.below(15))),
                    "learnerId": .string(learner.id),
                    "lessonId": .string("\(course.id)-l\(learner.lesson + 1)"),
                    "sections": .int(Int64(3 + random.below(4))),
                    "title": .string(course.goals[learner.lesson % course.goals.count]),
                ]
            )
            learner.busyUntilMs = lessonAt
            if case .processed(let seen) = publish(lesson, atMs: lessonAt)[LearnFlowCatalog.frontend] {
                learner.exercisesLeft = 2 + random.below(3)
                learner.exercise = 0
                learner.attempt = 1
                learner.busyUntilMs = seen
            }
        } else if case .failed(let deadLetteredAt) = outcomes[LearnFlowCatalog.courseAgent] {
            learner.busyUntilMs = deadLetteredAt
        }
        learners[index] = learner
    }

    private mutating func submitExercise(learner index: Int, atMs now: Int64) {
        var learner = learners[index]
        let course = courses[learner.course]
        let traceID = random.nonZeroHex(32)
        let exerciseID = "ex-\(course.id)-l\(learner.lesson + 1)-\(learner.exercise + 1)"
        let submitted = makeEvent(
            topic: LearnFlowCatalog.exerciseSubmitted,
            traceID: traceID,
            learner: learner,
            data: [
                "attempt": .int(Int64(learner.attempt)),
                "code": .string(random.pick(course.snippets)),
                "exerciseId": .string(exerciseID),
                "language": .string(course.language),
                "learnerId": .string(learner.id),
            ]
        )
        learner.busyUntilMs = now + 30_000
        let outcome = publish(submitted, atMs: now)[LearnFlowCatalog.exerciseAgent]
        guard case .processed(let start) = outcome else {
            if case .failed(let deadLetteredAt) = outcome { learner.busyUntilMs = deadLetteredAt }
            learners[index] = learner
            return
        }
        let gradedAt = start + parameters.latencies.grading.draw(&random)
        let passed = random.chance(learner.attempt >= 3 ? 0.95 : 0.75)
        let score = passed ? 70 + random.below(31) : 15 + random.below(55)
        let graded = makeEvent(
            topic: LearnFlowCatalog.exerciseGraded,
            traceID: traceID,
            learner: learner,
            data: [
                "causationId": .string(submitted.id),
                "exerciseId": .string(exerciseID),
                "feedback": .string(passed ? random.pick(praise) : random.pick(hints)),
                "learnerId": .string(learner.id),
                "passed": .bool(passed),
                "score": .number(score == 100 ? "1.00" : "0.\(score < 10 ? "0" : "")\(score)"),
            ]
        )
        learner.busyUntilMs = gradedAt
        let gradedOutcomes = publish(graded, atMs: gradedAt)
        if passed {
            learner.exercisesLeft -= 1
            learner.exercise += 1
            learner.attempt = 1
            if learner.exercisesLeft == 0 { learner.lesson += 1 }
        } else {
            learner.attempt += 1
        }
        let courseDone = passed && learner.exercisesLeft == 0 && learner.lesson >= course.lessons
        if case .processed(let progressStart) = gradedOutcomes[LearnFlowCatalog.progressAgent] {
            let progressAt = progressStart + parameters.latencies.progressUpdate.draw(&random)
            let progress = makeEvent(
                topic: LearnFlowCatalog.progressUpdated,
                traceID: traceID,
                learner: learner,
                typeOverride: "io.learnflow.progress.updated",
                data: [
                    "causationId": .string(graded.id),
                    "completedLessons": .int(Int64(learner.lesson)),
                    "courseId": .string(course.id),
                    "exerciseId": .string(exerciseID),
                    "learnerId": .string(learner.id),
                    "percent": .int(Int64(min(100, learner.lesson * 100 / course.lessons))),
                ]
            )
            publish(progress, atMs: progressAt)
            if courseDone {
                let completedAt = progressAt + parameters.latencies.completion.draw(&random)
                let completed = makeEvent(
                    topic: LearnFlowCatalog.courseCompleted,
                    traceID: traceID,
                    learner: learner,
                    typeOverride: "io.learnflow.course.completed",
                    data: [
                        "courseId": .string(course.id),
                        "learnerId": .string(learner.id),
                        "lessons": .int(Int64(course.lessons)),
                        "sessionId": .string(learner.sessionID),
                    ]
                )
                publish(completed, atMs: completedAt)
            }
        }
        if courseDone {
            learner.course = (learner.course + 1 + random.below(courses.count - 1)) % courses.count
            learner.lesson = 0
            learner.exercisesLeft = 0
            learner.sessionID = "sess-" + random.hex(6)
        }
        learners[index] = learner
    }

    private mutating func makeEvent(
        topic: String,
        traceID: String,
        learner: Learner,
        typeOverride: String? = nil,
        data: [String: GoJSON]
    ) -> PlannedEvent {
        PlannedEvent(
            topic: topic,
            id: random.uuidV4(),
            source: LearnFlowCatalog.publisher[topic] ?? "dapr",
            typeOverride: typeOverride,
            traceID: traceID,
            // Each sidecar's publish span is a new parent-id under the same trace.
            parentID: random.nonZeroHex(16),
            learnerID: learner.id,
            data: .object(data)
        )
    }

    /// Schedules an event at `timeMs`, delivers it to each subscriber of its topic, and schedules a dead-letter
    /// copy for each failed delivery. Returns each subscriber's outcome.
    @discardableResult
    private mutating func publish(_ event: PlannedEvent, atMs timeMs: Int64) -> [String: DeliveryOutcome] {
        let planID = schedule(.event(event), atMs: timeMs, topic: event.topic)
        var outcomes: [String: DeliveryOutcome] = [:]
        for subscriber in LearnFlowCatalog.subscribers(of: event.topic) {
            let outcome = deliver(to: subscriber, arrivalMs: timeMs)
            outcomes[subscriber] = outcome
            if case .failed(let deadLetteredAt) = outcome {
                pendingCopies[planID, default: 0] += 1
                schedule(
                    .deadLetter(DeadLetterPlan(originalPlanID: planID, subscriber: subscriber)),
                    atMs: deadLetteredAt,
                    topic: LearnFlowCatalog.deadLetterTopic(event.topic, subscriber: subscriber)
                )
            }
        }
        return outcomes
    }

    /// One delivery: when the subscriber gets to it (after any queue in a slow group), and whether it fails.
    private mutating func deliver(to group: String, arrivalMs: Int64) -> DeliveryOutcome {
        var start = arrivalMs
        if let rate = parameters.slowGroups[group], rate > 0 {
            // One worker: each delivery waits for the previous one (in the order the model hands them over).
            let free = groupFreeAtMs[group] ?? 0
            start = max(arrivalMs, Int64(free.rounded(.up)))
            groupFreeAtMs[group] = Double(start) + 1000 / rate
        }
        let stallAt = parameters.stalledGroups[group]
        if let stallAt, start >= stallAt { return .notProcessed }
        guard random.chance(parameters.failureRate) else { return .processed(startMs: start) }
        let latencies = parameters.latencies
        let delay =
            random.chance(latencies.dropShare)
            ? latencies.drop.draw(&random) : latencies.retriesExhausted.draw(&random)
        if let stallAt, start + delay >= stallAt { return .notProcessed }
        return .failed(deadLetteredAtMs: start + delay)
    }

    @discardableResult
    private mutating func schedule(_ item: PlanItem, atMs timeMs: Int64, topic: String) -> UInt64 {
        let planID = nextPlanID
        nextPlanID += 1
        heap.push(PlanEntry(timeMs: timeMs, planID: planID, item: item))
        scheduledByTopic[topic, default: 0] += 1
        return planID
    }
}

// MARK: - Model state

private enum DeliveryOutcome {
    case processed(startMs: Int64)
    case failed(deadLetteredAtMs: Int64)
    case notProcessed
}

private struct Learner: Sendable {
    var id: String
    var level: String
    var locale: String
    var course: Int
    var sessionID: String
    var lesson = 0
    var exercisesLeft = 0
    var exercise = 0
    var attempt = 1
    var busyUntilMs: Int64 = 0

    init(id: String, level: String, locale: String, course: Int, sessionID: String) {
        self.id = id
        self.level = level
        self.locale = locale
        self.course = course
        self.sessionID = sessionID
    }
}

private struct PlannedEvent: Sendable {
    var topic: String
    var id: String
    var source: String
    var typeOverride: String?
    var traceID: String
    var parentID: String
    var learnerID: String
    var data: GoJSON
}

private struct DeadLetterPlan: Sendable {
    var originalPlanID: UInt64
    var subscriber: String
}

private enum PlanItem: Sendable {
    case event(PlannedEvent)
    case deadLetter(DeadLetterPlan)
}

private struct PlanEntry: Sendable {
    var timeMs: Int64
    var planID: UInt64
    var item: PlanItem

    func precedes(_ other: PlanEntry) -> Bool {
        timeMs < other.timeMs || (timeMs == other.timeMs && planID < other.planID)
    }
}

private struct EmittedOriginal: Sendable {
    var record: SimulatedRecord
    var remaining: Int
}

/// A binary min-heap of plan entries by (time, plan id).
private struct PlanHeap: Sendable {
    private var entries: [PlanEntry] = []

    var isEmpty: Bool { entries.isEmpty }
    var minimumTimeMs: Int64 { entries[0].timeMs }

    mutating func push(_ entry: PlanEntry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].precedes(entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> PlanEntry {
        let top = entries[0]
        let last = entries.removeLast()
        guard !entries.isEmpty else { return top }
        entries[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < entries.count, entries[left].precedes(entries[smallest]) { smallest = left }
            if right < entries.count, entries[right].precedes(entries[smallest]) { smallest = right }
            guard smallest != parent else { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}

// MARK: - Content

private struct Course: Sendable {
    var id: String
    var language: String
    var lessons: Int
    var goals: [String]
    var snippets: [String]
}

private let courses: [Course] = [
    Course(
        id: "py-fundamentals",
        language: "python",
        lessons: 5,
        goals: [
            "Understand list comprehensions", "Write functions with default arguments", "Read and write files",
            "Handle exceptions", "Work with dictionaries",
        ],
        snippets: [
            "for i in range(3):\n    print(i < 2 and \"small\" or \"big\")\n",
            "squares = [n * n for n in range(10) if n % 2 == 0]\nprint(squares)\n",
            "def greet(name, greeting=\"Hello\"):\n    return f\"{greeting}, {name}!\"\n",
        ]
    ),
    Course(
        id: "js-async",
        language: "javascript",
        lessons: 4,
        goals: ["Promises vs async/await", "Handle rejected promises", "Run tasks in parallel", "Cancel a fetch"],
        snippets: [
            "const r = await fetch(url);\nif (r.status >= 400 && r.status < 500) throw new Error(\"client\");\n",
            "await Promise.all([a(), b()]).then(([x, y]) => x + y);\n",
        ]
    ),
    Course(
        id: "sql-basics",
        language: "sql",
        lessons: 4,
        goals: ["Filter rows with WHERE", "Join two tables", "Group and aggregate", "Use window functions"],
        snippets: [
            "SELECT name FROM learners WHERE score >= 80 AND level <> 'advanced';\n",
            "SELECT course_id, count(*) FROM enrolments GROUP BY course_id HAVING count(*) > 10;\n",
        ]
    ),
    Course(
        id: "rust-ownership",
        language: "rust",
        lessons: 6,
        goals: [
            "Move and copy semantics", "Borrow immutably", "Borrow mutably", "Lifetimes in functions",
            "Smart pointers", "Interior mutability",
        ],
        snippets: [
            "fn longest<'a>(x: &'a str, y: &'a str) -> &'a str {\n    if x.len() > y.len() { x } else { y }\n}\n",
            "let v: Vec<i32> = (0..5).collect();\nlet total: i32 = v.iter().sum();\n",
        ]
    ),
    Course(
        id: "go-concurrency",
        language: "go",
        lessons: 5,
        goals: ["Goroutines", "Channels", "Select", "Mutexes and WaitGroups", "Context cancellation"],
        snippets: [
            "ch := make(chan int)\ngo func() { ch <- 42 }()\nfmt.Println(<-ch)\n",
            "if err != nil && !errors.Is(err, io.EOF) {\n    return err\n}\n",
        ]
    ),
]

private let levels = ["beginner", "intermediate", "advanced"]
private let locales = ["en-US", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP"]
private let praise = ["Correct, well done.", "All tests pass.", "Nice & tidy solution."]
private let hints = [
    "Check the loop bounds: < vs <=.", "One test fails: the empty input.", "Compare with == instead of =.",
]
