import FlowmeterCore

/// How `flowmeter check` shows the analyzer definitions.
enum AnalyzerSummary {
    /// `analyzers: analyzers/learnflow.yaml — 6 topics, 7 dead-letter topics, 4 groups (+ flowmeter's own), 3 flows,
    /// 1 SLO`.
    static func line(_ loaded: LoadedAnalyzers) -> String {
        let set = loaded.set
        let counts = [
            counted(set.topics.count, "topic"),
            counted(set.deadLetterTopics.count, "dead-letter topic"),
            counted(set.groups.count, "group") + " (+ flowmeter's own)",
            counted(set.flows.count, "flow"),
            counted(set.slos.count, "SLO"),
        ]
        return "analyzers: \(loaded.files.joined(separator: ", ")) — \(counts.joined(separator: ", "))"
    }

    private static func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

    /// The `analyzers` object of `check --format json`.
    struct Document: Encodable {
        struct DeadLetter: Encodable {
            let topic: String
            let source: String?
            let subscriber: String?
        }

        struct Group: Encodable {
            let group: String
            let topics: [String]
        }

        struct Flow: Encodable {
            let name: String
            let from: String
            let to: String
            let fromType: String?
            let toType: String?
            let correlation: String
            let timeout: String

            enum CodingKeys: String, CodingKey {
                case name, from, to, correlation, timeout
                case fromType = "from_type"
                case toType = "to_type"
            }
        }

        struct SLO: Encodable {
            let name: String
            let flow: String
            let quantile: Double
            let threshold: String
        }

        struct Limits: Encodable {
            let maxTypesPerTopic: Int
            let maxPendingFlowRequests: Int
            let duplicateWindow: Int
            let statusWindow: Int
            let vanishedGroupRetention: String
            let maxDeadLetterTopicsPerTopic: Int

            enum CodingKeys: String, CodingKey {
                case maxTypesPerTopic = "max_types_per_topic"
                case maxPendingFlowRequests = "max_pending_flow_requests"
                case duplicateWindow = "duplicate_window"
                case statusWindow = "status_window"
                case vanishedGroupRetention = "vanished_group_retention"
                case maxDeadLetterTopicsPerTopic = "max_dead_letter_topics_per_topic"
            }
        }

        let files: [String]
        let topics: [String]
        let deadLetterPatterns: [String]
        let deadLetterTopics: [DeadLetter]
        let groups: [Group]
        let flows: [Flow]
        let slos: [SLO]
        let limits: Limits

        enum CodingKeys: String, CodingKey {
            case files, topics, groups, flows, slos, limits
            case deadLetterPatterns = "dead_letter_patterns"
            case deadLetterTopics = "dead_letter_topics"
        }

        init(_ loaded: LoadedAnalyzers) {
            let set = loaded.set
            files = loaded.files
            topics = set.topics.map(\.description)
            deadLetterPatterns = set.deadLetterPatterns.map(\.glob)
            deadLetterTopics = set.deadLetterTopics.map {
                DeadLetter(topic: $0.topic, source: $0.sourceTopic, subscriber: $0.subscriber)
            }
            groups = set.groups.map { Group(group: $0.group.description, topics: $0.topics) }
            flows = set.flows.map {
                Flow(
                    name: $0.name,
                    from: $0.from,
                    to: $0.to,
                    fromType: $0.fromType,
                    toType: $0.toType,
                    correlation: AnalyzerSummary.correlation($0.correlation),
                    timeout: DurationSyntax.format($0.timeout)
                )
            }
            slos = set.slos.map {
                SLO(name: $0.name, flow: $0.flow, quantile: $0.quantile, threshold: DurationSyntax.format($0.threshold))
            }
            limits = Limits(
                maxTypesPerTopic: set.limits.maxTypesPerTopic,
                maxPendingFlowRequests: set.limits.maxPendingFlowRequests,
                duplicateWindow: set.limits.duplicateWindow,
                statusWindow: set.limits.statusWindow,
                vanishedGroupRetention: DurationSyntax.format(set.limits.vanishedGroupRetention),
                maxDeadLetterTopicsPerTopic: set.limits.maxDeadLetterTopicsPerTopic
            )
        }
    }

    /// A correlation as written in the file: `trace-id`, `data.<path>` or `header:<name>`.
    static func correlation(_ correlation: Correlation) -> String {
        switch correlation {
        case .traceID: "trace-id"
        case .dataPath(let path): "data." + path.joined(separator: ".")
        case .header(let name): "header:\(name)"
        }
    }
}
