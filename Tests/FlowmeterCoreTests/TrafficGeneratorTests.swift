import Testing

@testable import FlowmeterCore

@Suite struct TrafficGeneratorTests {
    static let epoch: Int64 = 1_795_000_000_000

    static func records(_ parameters: SimulationParameters, count: Int, epoch: Int64 = epoch) -> [SimulatedRecord] {
        var generator = TrafficGenerator(parameters: parameters, epochMs: epoch)
        return (0..<count).map { _ in generator.next() }
    }

    static func records(_ parameters: SimulationParameters, untilMs end: Int64) -> [SimulatedRecord] {
        var generator = TrafficGenerator(parameters: parameters, epochMs: epoch)
        var result: [SimulatedRecord] = []
        while generator.peekOffsetMs() < end { result.append(generator.next()) }
        return result
    }

    @Test func sameSeedSameRecordsAndAnotherEpochOnlyShiftsTime() {
        let parameters = SimulationParameters(learners: 200, rate: 300, seed: 42, failureRate: 0.05)
        let first = Self.records(parameters, count: 3000)
        let second = Self.records(parameters, count: 3000)
        #expect(first == second)

        let later = Self.records(parameters, count: 3000, epoch: Self.epoch + 86_400_123)
        #expect(later.map(\.eventID) == first.map(\.eventID))
        #expect(later.map(\.topic) == first.map(\.topic))
        #expect(later.map(\.type) == first.map(\.type))
        #expect(later.map(\.offsetMs) == first.map(\.offsetMs))
        #expect(zip(later, first).allSatisfy { $0.timestampMs == $1.timestampMs + 86_400_123 })

        var other = parameters
        other.seed = 43
        let different = Self.records(other, count: 3000)
        #expect(Set(different.map(\.eventID)).isDisjoint(with: first.map(\.eventID)))
    }

    @Test func recordsAreInTimestampOrderAndCoverEveryTopic() {
        let records = Self.records(
            SimulationParameters(learners: 100, rate: 400, seed: 7, failureRate: 0.05),
            untilMs: 60_000
        )
        #expect(zip(records, records.dropFirst()).allSatisfy { $0.timestampMs <= $1.timestampMs })
        #expect(records.enumerated().allSatisfy { $0.offset == $0.element.sequence })
        let topics = Set(records.map(\.topic))
        #expect(
            topics == Set(LearnFlowCatalog.allTopics),
            "missing: \(Set(LearnFlowCatalog.allTopics).subtracting(topics))"
        )
        #expect(Set(records.map(\.eventID)).count == records.count - records.filter { $0.deadLetter != nil }.count)
    }

    @Test func everyRecordIsAValidDaprEnvelopeForTheDecoder() throws {
        let records = Self.records(
            SimulationParameters(learners: 50, rate: 200, seed: 3, failureRate: 0.1),
            count: 4000
        )
        let decoder = CloudEventDecoder()
        var originals: [UInt64: SimulatedRecord] = [:]
        var deadLetters = 0
        for record in records {
            let (partition, offset) = (Int32(record.sequence % 6), Int64(record.sequence))
            let original = record.deadLetter.map { originals[$0.originalPlanID]! }
            let headers =
                original.map {
                    record.headers(originalPartition: Int32($0.sequence % 6), originalOffset: Int64($0.sequence))
                }
                ?? record.headers
            let event = decoder.decode(
                topic: record.topic,
                partition: partition,
                offset: offset,
                timestampMs: record.timestampMs,
                headers: headers,
                key: record.key,
                value: record.value
            )
            #expect(event.parserClass == .cloudEvent)
            #expect(event.producerKind == .daprWrapped)
            #expect(event.invalidReason == nil)
            #expect(event.flags.isEmpty, "\(event.flags) on \(record.topic)")
            #expect(event.id == record.eventID)
            #expect(event.type == record.type)
            #expect(event.source == record.source)
            #expect(event.pubsubname == "pubsub")
            #expect(event.trace?.traceID == record.traceID)
            #expect(event.trace?.sampled == true)
            let key = String(decoding: try #require(record.key), as: UTF8.self)
            #expect(headers.first == RecordHeader(name: "partitionKey", string: key))
            if let original {
                deadLetters += 1
                #expect(event.role == .dlq)
                #expect(record.value == original.value)
                #expect(record.key == original.key)
                #expect(record.topic == "\(original.topic).dlq.\(record.deadLetter!.subscriber)")
                #expect(event.topicAttribute == original.topic)
                #expect(event.dlq?.originTopic == original.topic)
                #expect(event.dlq?.originPartition == Int32(original.sequence % 6))
                #expect(event.dlq?.originOffset == Int64(original.sequence))
                #expect(event.dlq?.originTimestampMs == original.timestampMs)
                #expect((event.dlq?.dlqDelayMs ?? 0) > 0)
                let names = Set(headers.map(\.name))
                #expect(
                    names.isSuperset(of: ["__key", "__offset", "__partition", "__timestamp", "__topic", "pubsubName"])
                )
            } else {
                #expect(event.role == .normal)
                #expect(event.topicAttribute == record.topic)
                #expect(LearnFlowCatalog.publisher[record.topic] == record.source)
                let ceTime = try #require(event.ceTime)
                #expect(record.timestampMs - ceTime.epochMilliseconds >= 0)
                #expect(record.timestampMs - ceTime.epochMilliseconds < 1000 + 2)
            }
            if record.deadLetterCopies > 0 { originals[record.planID] = record }
        }
        #expect(deadLetters > 0)
    }

    @Test func responsesShareTheRequestsTraceIDAndComeAfterThem() throws {
        let records = Self.records(
            SimulationParameters(learners: 500, rate: 500, seed: 11, failureRate: 0),
            untilMs: 50_000
        )
        var requests: [String: SimulatedRecord] = [:]
        var latencies: [String: [Int64]] = [:]
        for record in records {
            switch record.topic {
            case LearnFlowCatalog.learningRequested, LearnFlowCatalog.exerciseSubmitted:
                #expect(requests[record.traceID] == nil, "a new trace per request")
                requests[record.traceID] = record
            case LearnFlowCatalog.lessonGenerated, LearnFlowCatalog.exerciseGraded, LearnFlowCatalog.progressUpdated,
                LearnFlowCatalog.courseCompleted:
                let request = try #require(requests[record.traceID], "\(record.topic) without its request")
                #expect(record.timestampMs > request.timestampMs)
                latencies[record.topic, default: []].append(record.timestampMs - request.timestampMs)
                if record.topic == LearnFlowCatalog.lessonGenerated {
                    #expect(request.topic == LearnFlowCatalog.learningRequested)
                } else {
                    #expect(request.topic == LearnFlowCatalog.exerciseSubmitted)
                }
            default:
                Issue.record("no dead letters without failures: \(record.topic)")
            }
        }
        // Grading: median about 180 ms, 3–5 % above 500 ms.
        let grading = try #require(latencies[LearnFlowCatalog.exerciseGraded]).sorted()
        #expect(grading.count > 5000)
        let median = grading[grading.count / 2]
        #expect((165...195).contains(median), "median \(median)")
        let tail = Double(grading.filter { $0 > 500 }.count) / Double(grading.count)
        #expect((0.03...0.05).contains(tail), "tail \(tail)")
        // Lessons take longer; progress comes after grading.
        let lessons = try #require(latencies[LearnFlowCatalog.lessonGenerated]).sorted()
        #expect((1200...1600).contains(lessons[lessons.count / 2]))
        let progress = try #require(latencies[LearnFlowCatalog.progressUpdated]).sorted()
        #expect(progress[progress.count / 2] > median)
        #expect(try #require(latencies[LearnFlowCatalog.courseCompleted]).count > 10)
    }

    @Test func rateAndDeadLetterShareFollowTheParameters() {
        let parameters = SimulationParameters(learners: 1000, rate: 200, seed: 5, failureRate: 0.02)
        let records = Self.records(parameters, untilMs: 120_000)
        let perSecond = Double(records.count) / 120
        #expect(abs(perSecond - 200) < 20, "\(perSecond)/s")
        // Deliveries: one per record and subscriber; 2 % of them dead-lettered.
        let originals = records.filter { $0.deadLetter == nil }
        let deliveries = originals.reduce(0) { $0 + LearnFlowCatalog.subscribers(of: $1.topic).count }
        let copies = records.filter { $0.deadLetter != nil }.count
        let share = Double(copies) / Double(deliveries)
        #expect(abs(share - 0.02) < 0.006, "dead-letter share \(share)")
        // Both kinds of failure: DROP (fast) and exhausted retries (about 11 s).
        let delays = records.compactMap { record in record.deadLetter.map { record.timestampMs - $0.timestampMs } }
        #expect(delays.contains { $0 < 500 })
        #expect(delays.contains { $0 > 8000 })
    }

    @Test func aStalledGroupAnswersNothingAfterTheStall() {
        let parameters = SimulationParameters(
            learners: 200,
            rate: 300,
            seed: 9,
            failureRate: 0.05,
            stalledGroups: [LearnFlowCatalog.exerciseAgent: 10_000]
        )
        let records = Self.records(parameters, untilMs: 40_000)
        var submitted: [String: Int64] = [:]
        for record in records where record.topic == LearnFlowCatalog.exerciseSubmitted {
            submitted[record.traceID] = record.offsetMs
        }
        let graded = records.filter { $0.topic == LearnFlowCatalog.exerciseGraded }
        #expect(!graded.isEmpty)
        #expect(graded.allSatisfy { submitted[$0.traceID]! < 10_000 })
        #expect(submitted.values.contains { $0 > 30_000 })
        let deadLetters = records.filter { $0.topic == "exercise.submitted.dlq.exercise-agent" }
        #expect(deadLetters.allSatisfy { $0.offsetMs < 10_000 })
    }

    @Test func aSlowGroupQueuesItsDeliveries() throws {
        let fast = SimulationParameters(learners: 500, rate: 300, seed: 13, failureRate: 0)
        var slow = fast
        let estimate = TrafficGenerator.estimate(fast)
        let input = estimate.inputRate(of: LearnFlowCatalog.exerciseAgent, rate: 300)
        #expect(input > 50 && input < 150, "\(input)/s")
        slow.slowGroups = [LearnFlowCatalog.exerciseAgent: input / 2]
        func gradingLatencies(_ parameters: SimulationParameters) -> [Int64] {
            var submitted: [String: Int64] = [:]
            var result: [Int64] = []
            for record in Self.records(parameters, untilMs: 60_000) {
                if record.topic == LearnFlowCatalog.exerciseSubmitted { submitted[record.traceID] = record.offsetMs }
                if record.topic == LearnFlowCatalog.exerciseGraded {
                    result.append(record.offsetMs - submitted[record.traceID]!)
                }
            }
            return result
        }
        let normal = gradingLatencies(fast)
        let queued = gradingLatencies(slow)
        // The queue grows: late deliveries wait many seconds; the normal group never does.
        #expect(normal.max()! < 10_000)
        #expect(queued.suffix(50).allSatisfy { $0 > 10_000 })
    }

    @Test func randomDrawsAreStableAndWellFormed() {
        var random = SimulationRandom(seed: 1)
        let firstValues = (0..<3).map { _ in random.next() }
        var again = SimulationRandom(seed: 1)
        #expect((0..<3).map { _ in again.next() } == firstValues)
        for _ in 0..<1000 {
            let uuid = random.uuidV4()
            let parts = uuid.split(separator: "-").map(\.count)
            #expect(parts == [8, 4, 4, 4, 12])
            #expect(uuid[uuid.index(uuid.startIndex, offsetBy: 14)] == "4")
            #expect("89ab".contains(uuid[uuid.index(uuid.startIndex, offsetBy: 19)]))
            let bound = 1 + random.below(50)
            #expect((0..<bound).contains(random.below(bound)))
        }
        #expect(random.nonZeroHex(32).count == 32)
        var counts = [Int](repeating: 0, count: 4)
        for _ in 0..<40_000 { counts[random.below(4)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 400 })
        let latency = LogNormalLatency(medianMs: 180, sigma: 0.58)
        #expect(abs(latency.tailProbability(aboveMs: 500) - 0.039) < 0.002)
    }

    @Test func goJSONMatchesGoEncodingAndTimesAreRFC3339Seconds() {
        let value: GoJSON = .object([
            "type": .string("x"), "data": .object(["b": .int(1), "a": .number("1.50")]), "B": .bool(true),
            "code": .string("if a < b && c > d {\n\t\"q\" \\ \u{2028}}"), "n": .null,
            "list": .array([.int(-3), .string("é")]),
        ])
        #expect(
            String(decoding: value.bytes, as: UTF8.self)
                == #"{"B":true,"code":"if a \u003c b \u0026\u0026 c \u003e d {\n\t\"q\" \\ \u2028}","data":{"a":1.50,"b":1},"list":[-3,"é"],"n":null,"type":"x"}"#
        )
        #expect(formatRFC3339Seconds(epochMilliseconds: 0) == "1970-01-01T00:00:00Z")
        #expect(formatRFC3339Seconds(epochMilliseconds: 1_762_161_124_318) == "2025-11-03T09:12:04Z")
        #expect(formatRFC3339Seconds(epochMilliseconds: 951_782_400_999) == "2000-02-29T00:00:00Z")
        #expect(formatRFC3339Seconds(epochMilliseconds: -1) == "1969-12-31T23:59:59Z")
    }

    @Test func catalogNamesEveryDeadLetterTopicPerSubscriber() {
        #expect(
            LearnFlowCatalog.deadLetterTopics.map(\.topic) == [
                "learning.requested.dlq.course-agent", "lesson.generated.dlq.frontend",
                "exercise.submitted.dlq.exercise-agent", "exercise.graded.dlq.progress-agent",
                "exercise.graded.dlq.frontend", "progress.updated.dlq.frontend", "course.completed.dlq.course-agent",
            ]
        )
        #expect(LearnFlowCatalog.subscribers(of: "exercise.graded") == ["frontend", "progress-agent"])
    }
}
