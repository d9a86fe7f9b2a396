public import FlowmeterCore

/// The options of `flowmeter simulate` (and the simulator inside `flowmeter demo`), validated.
public struct SimulationSettings: Sendable, Hashable {
    /// A subscriber group that processes slowly.
    public struct SlowGroup: Sendable, Hashable {
        /// The group (a LearnFlow app-id).
        public var name: String
        /// Deliveries per second it manages; `nil`: half of what its topics receive.
        public var rate: Double?
    }

    /// A subscriber group that stops processing and committing.
    public struct StalledGroup: Sendable, Hashable {
        /// The group (a LearnFlow app-id).
        public var name: String
        /// How long after the start it stalls.
        public var after: Duration
    }

    /// Concurrent learners.
    public var learners = 1000
    /// Records per second overall.
    public var rate = 200.0
    /// How long to run; `nil`: until SIGTERM or SIGINT.
    public var duration: Duration?
    /// The seed; `nil`: a random one (printed, so a run can be repeated).
    public var seed: UInt64?
    /// The fraction of deliveries that subscribers fail.
    public var failureRate = 0.01
    /// Slow groups.
    public var slowGroups: [SlowGroup] = []
    /// Stalling groups.
    public var stalledGroups: [StalledGroup] = []
    /// How often `simulate` prints what it produced.
    public var reportInterval: Duration = .seconds(5)

    /// The defaults: 1000 learners, 200 records/s, failure rate 0.01, no slow or stalled group, a report every 5 s.
    public init() {}

    /// The default stall delay of `--stall-group NAME`.
    public static let defaultStallAfter: Duration = .seconds(20)

    /// Parses and validates the options as given on the command line (`nil`: not given).
    ///
    /// - Throws: ``SimulationSettingsErrors`` with one message per problem, each naming its flag.
    public static func parse(
        learners: Int?,
        rate: String?,
        duration: String?,
        seed: String?,
        failureRate: String?,
        slowGroups: [String],
        stallGroups: [String],
        reportInterval: String?
    ) throws(SimulationSettingsErrors) -> SimulationSettings {
        var settings = SimulationSettings()
        var problems: [String] = []
        if let learners {
            if (1...1_000_000).contains(learners) {
                settings.learners = learners
            } else {
                problems.append("--learners: expected a whole number from 1 to 1000000, got \(learners)")
            }
        }
        if let rate {
            if let value = Double(rate), value > 0, value <= 100_000 {
                settings.rate = value
            } else {
                problems.append("--rate: expected records per second above 0 and at most 100000, got \"\(rate)\"")
            }
        }
        if let duration {
            if let value = DurationSyntax.parse(duration), value > .zero {
                settings.duration = value
            } else {
                problems.append("--duration: expected \(DurationSyntax.expectation), got \"\(duration)\"")
            }
        }
        if let seed {
            if let value = UInt64(seed) {
                settings.seed = value
            } else {
                problems.append("--seed: expected a whole number from 0 to \(UInt64.max), got \"\(seed)\"")
            }
        }
        if let failureRate {
            if let value = Double(failureRate), (0...1).contains(value) {
                settings.failureRate = value
            } else {
                problems.append("--failure-rate: expected a fraction from 0 to 1 such as 0.01, got \"\(failureRate)\"")
            }
        }
        if let reportInterval {
            if let value = DurationSyntax.parse(reportInterval), value >= .seconds(1) {
                settings.reportInterval = value
            } else {
                problems.append("--report-interval: expected a duration of at least 1s, got \"\(reportInterval)\"")
            }
        }
        let groups = LearnFlowCatalog.groupNames
        let known = "one of \(groups.joined(separator: ", "))"
        for text in slowGroups {
            let (name, suffix) = split(text)
            guard groups.contains(name) else {
                problems.append("--slow-group \"\(text)\": expected \(known), optionally :RATE (deliveries per second)")
                continue
            }
            var group = SlowGroup(name: name, rate: nil)
            if let suffix {
                guard let value = Double(suffix), value > 0 else {
                    problems.append("--slow-group \"\(text)\": RATE must be deliveries per second above 0")
                    continue
                }
                group.rate = value
            }
            settings.slowGroups.removeAll { $0.name == name }
            settings.slowGroups.append(group)
        }
        for text in stallGroups {
            let (name, suffix) = split(text)
            guard groups.contains(name) else {
                problems.append("--stall-group \"\(text)\": expected \(known), optionally :AFTER (a duration)")
                continue
            }
            var after = defaultStallAfter
            if let suffix {
                guard let value = DurationSyntax.parse(suffix) else {
                    problems.append("--stall-group \"\(text)\": AFTER must be \(DurationSyntax.expectation)")
                    continue
                }
                after = value
            }
            settings.stalledGroups.removeAll { $0.name == name }
            settings.stalledGroups.append(StalledGroup(name: name, after: after))
        }
        guard problems.isEmpty else { throw SimulationSettingsErrors(problems: problems) }
        return settings
    }

    private static func split(_ text: String) -> (String, String?) {
        guard let colon = text.firstIndex(of: ":") else { return (text, nil) }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// The generator's parameters for a seed: slow groups without a rate get half of their input rate.
    ///
    /// - Parameter estimate: ``TrafficGenerator/estimate(_:)`` of these settings, if already computed.
    public func parameters(seed: UInt64, estimate: TrafficGenerator.Estimate? = nil) -> SimulationParameters {
        var parameters = SimulationParameters(
            learners: learners,
            rate: rate,
            seed: seed,
            failureRate: failureRate
        )
        let estimate = estimate ?? TrafficGenerator.estimate(parameters)
        for group in slowGroups {
            parameters.slowGroups[group.name] =
                group.rate ?? max(0.1, estimate.inputRate(of: group.name, rate: rate) / 2)
        }
        for group in stalledGroups {
            let (seconds, attoseconds) = group.after.components
            parameters.stalledGroups[group.name] = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        }
        return parameters
    }
}

/// Problems with the simulator's options, one message per problem.
public struct SimulationSettingsErrors: Error, Sendable, CustomStringConvertible {
    /// The messages, each starting with its flag.
    public var problems: [String]

    public var description: String { problems.joined(separator: "\n") }
}
