// libFuzzer entry point for the analyzer-file parser, compiled by scripts/fuzz.sh into one module with the parser's
// own sources (Sources/FlowmeterApp/Analyzers, DurationSyntax.swift, Quoted.swift) over FlowmeterCore, Yams and
// CYaml, all built under `-sanitize=fuzzer,address`. Each input is one analyzer file's bytes, written to a file and
// loaded the way `flowmeter --analyzers FILE` loads it. Either a set loads or every problem comes back as an
// `AnalyzerError` naming the file; anything else (a crash, a trap, a broken invariant) stops the fuzzer.

import FlowmeterCore
import Foundation
import Yams

/// The file each input is written to (one per fuzzing process).
private let fuzzPath = FileManager.default.temporaryDirectory
    .appendingPathComponent("flowmeter-analyzer-fuzz-\(ProcessInfo.processInfo.processIdentifier).yaml").path

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAnalyzerFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    guard FileManager.default.createFile(atPath: fuzzPath, contents: bytes) else {
        fuzzFailure("cannot write \(fuzzPath)")
    }
    let text = String(data: bytes, encoding: .utf8)
    let outcome = Result { () throws(AnalyzerErrors) in try AnalyzerLoader.load(.file(path: fuzzPath)) }
    checkOutcome(outcome, files: [fuzzPath], text: text ?? "")
    if let text {
        if case .success(let loaded) = outcome {
            checkLoaded(loaded.set, text: text)
        }
    } else {
        // The loader stops at bytes that are not UTF-8; give the parser the repaired text too, so that every input
        // reaches Yams and the parser.
        guard case .failure(let errors) = outcome, errors.errors.count == 1,
            errors.errors[0].message == "expected UTF-8 text, got other bytes"
        else {
            fuzzFailure("bytes that are not UTF-8 were not reported as such: \(outcome)")
        }
        let repaired = String(decoding: bytes, as: UTF8.self)
        let file = "analyzers/repaired.yaml"
        let repairedOutcome = Result { () throws(AnalyzerErrors) in
            try AnalyzerLoader.load(yaml: repaired, file: file)
        }
        checkOutcome(repairedOutcome, files: [file], text: repaired)
        if case .success(let loaded) = repairedOutcome {
            checkLoaded(loaded.set, text: repaired)
        }
    }
    return 0
}

// MARK: - Invariants

private func fuzzFailure(_ message: String) -> Never {
    fatalError("analyzer-file fuzz invariant: \(message)")
}

/// A thrown error lists at least one problem; each names one of the files, has a message, a line inside the text
/// (or none) and a description that starts with its location; problems are in file and line order.
private func checkOutcome(_ outcome: Result<LoadedAnalyzers, AnalyzerErrors>, files: [String], text: String) {
    guard case .failure(let thrown) = outcome else {
        return
    }
    guard !thrown.errors.isEmpty else {
        fuzzFailure("AnalyzerErrors thrown with no error")
    }
    // A line break is \n, \r, \r\n, NEL, LS or PS for YAML; errors at the end of the text are one line further.
    let breaks = text.unicodeScalars.count { "\n\r\u{85}\u{2028}\u{2029}".unicodeScalars.contains($0) }
    var previous: (file: Int, line: Int) = (0, 0)
    for error in thrown.errors {
        guard let fileIndex = files.firstIndex(of: error.file) else {
            fuzzFailure("error names no loaded file: \(error)")
        }
        // Compared as UTF-8: a key starting with a combining mark joins the space before it into one Character.
        guard !error.message.isEmpty, error.description.utf8.starts(with: "\(error.location): ".utf8) else {
            fuzzFailure("error without a message or location: \(error)")
        }
        if let line = error.line, !(1...(breaks + 2)).contains(line) {
            fuzzFailure("line \(line) outside a text of \(breaks) line breaks: \(error)")
        }
        let position = (file: fileIndex, line: error.line ?? 0)
        guard previous <= position else {
            fuzzFailure("errors out of file and line order: \(thrown)")
        }
        previous = position
    }
}

/// A loaded set keeps the documented rules, loads again from its own YAML to the same set, and a second copy of the
/// file is rejected exactly when it defines something that may be defined only once.
private func checkLoaded(_ set: AnalyzerSet, text: String) {
    guard !set.topics.isEmpty else {
        fuzzFailure("a set loaded without topics")
    }
    let flowNames = set.flows.map(\.name)
    guard Set(flowNames).count == flowNames.count, Set(set.slos.map(\.name)).count == set.slos.count else {
        fuzzFailure("a flow or SLO name loaded twice: \(set)")
    }
    for flow in set.flows {
        guard set.isAnalyzed(topic: flow.from), set.isAnalyzed(topic: flow.to), flow.timeout > .zero else {
            fuzzFailure("flow with an unanalyzed topic or no timeout: \(flow)")
        }
    }
    for slo in set.slos {
        guard flowNames.contains(slo.flow), 0 < slo.quantile && 1 > slo.quantile, slo.threshold > .zero else {
            fuzzFailure("SLO with an unknown flow or out-of-range value: \(slo)")
        }
    }
    for group in set.groups {
        guard !group.topics.isEmpty, group.topics.allSatisfy(set.isAnalyzed(topic:)) else {
            fuzzFailure("group with no or unanalyzed topics: \(group)")
        }
    }
    for topic in set.deadLetterTopics {
        guard topic.sourceTopic.map(set.isAnalyzed(topic:)) ?? true else {
            fuzzFailure("dead-letter topic with an unanalyzed source: \(topic)")
        }
    }
    let limits = set.limits
    guard
        [
            limits.maxTypesPerTopic, limits.maxPendingFlowRequests, limits.duplicateWindow, limits.statusWindow,
            limits.maxDeadLetterTopicsPerTopic,
        ]
        .allSatisfy({ $0 > 0 }), limits.vanishedGroupRetention > .zero
    else {
        fuzzFailure("limits out of range: \(limits)")
    }

    // The set, written back as YAML, re-validates to itself.
    let written: String
    do {
        written = try Yams.serialize(node: yamlNode(set))
    } catch {
        fuzzFailure("cannot write the loaded set as YAML: \(error)")
    }
    do {
        let reloaded = try AnalyzerLoader.load(yaml: written, file: "analyzers/written.yaml").set
        guard reloaded == set else {
            fuzzFailure("the set written back loads differently:\n\(written)\n\(set)\n\(reloaded)")
        }
    } catch {
        fuzzFailure("the set written back does not load:\n\(written)\n\(error)")
    }

    // Two copies of the file: lists merge, but flows, SLOs, groups, listed dead-letter topics and limits may only be
    // defined once, and each duplicate names both files.
    let copies = [(file: "analyzers/a.yaml", yaml: text), (file: "analyzers/b.yaml", yaml: text)]
    let twice = Result { () throws(AnalyzerErrors) in try AnalyzerLoader.load(documents: copies) }
    checkOutcome(twice, files: copies.map(\.file), text: text)
    switch twice {
    case .success(let merged):
        guard merged.set == set, set.flows.isEmpty, set.slos.isEmpty, set.groups.isEmpty, set.deadLetterTopics.isEmpty
        else {
            fuzzFailure("two copies of a file merged into a different set or kept duplicates: \(merged.set)")
        }
    case .failure(let thrown):
        guard
            thrown.errors.allSatisfy({
                $0.file == "analyzers/b.yaml" && $0.message.contains("analyzers/a.yaml:")
            })
        else {
            fuzzFailure("two copies of a valid file failed without naming the first: \(thrown)")
        }
    }
}

// MARK: - Writing a set as YAML

private func yamlString(_ text: String) -> Node { Node(text, Tag(.str), .doubleQuoted) }

private func yamlMapping(_ pairs: [(Node, Node)]) -> Node { Node(pairs) }

private func yamlList(_ items: [Node]) -> Node { Node(items) }

private func yamlNode(_ set: AnalyzerSet) -> Node {
    let deadLetterTopics = set.deadLetterTopics.map { topic -> Node in
        var pairs: [(Node, Node)] = [("topic", yamlString(topic.topic))]
        if let source = topic.sourceTopic {
            pairs.append(("source", yamlString(source)))
        }
        if let subscriber = topic.subscriber {
            pairs.append(("subscriber", yamlString(subscriber)))
        }
        return yamlMapping(pairs)
    }
    let groups = set.groups.map { group -> Node in
        yamlMapping([
            ("group", yamlString(group.group.description)),
            ("topics", yamlList(group.topics.map(yamlString))),
        ])
    }
    let flows = set.flows.map { flow -> Node in
        var pairs: [(Node, Node)] = [
            ("name", yamlString(flow.name)), ("from", yamlString(flow.from)), ("to", yamlString(flow.to)),
        ]
        if let fromType = flow.fromType {
            pairs.append(("from_type", yamlString(fromType)))
        }
        if let toType = flow.toType {
            pairs.append(("to_type", yamlString(toType)))
        }
        let correlation =
            switch flow.correlation {
            case .traceID: "trace-id"
            case .dataPath(let path): "data." + path.joined(separator: ".")
            case .header(let name): "header:" + name
            }
        pairs.append(("correlation", yamlString(correlation)))
        pairs.append(("timeout", yamlString(DurationSyntax.format(flow.timeout))))
        return yamlMapping(pairs)
    }
    let slos = set.slos.map { slo -> Node in
        yamlMapping([
            ("name", yamlString(slo.name)), ("flow", yamlString(slo.flow)), ("quantile", Node("\(slo.quantile)")),
            ("threshold", yamlString(DurationSyntax.format(slo.threshold))),
        ])
    }
    let limits = set.limits
    return yamlMapping([
        ("topics", yamlList(set.topics.map { yamlString($0.description) })),
        (
            "dead_letters",
            yamlMapping([
                ("patterns", yamlList(set.deadLetterPatterns.map { yamlString($0.glob) })),
                ("topics", yamlList(deadLetterTopics)),
            ])
        ),
        ("groups", yamlList(groups)),
        ("flows", yamlList(flows)),
        ("slos", yamlList(slos)),
        (
            "limits",
            yamlMapping([
                ("max_types_per_topic", Node("\(limits.maxTypesPerTopic)")),
                ("max_pending_flow_requests", Node("\(limits.maxPendingFlowRequests)")),
                ("duplicate_window", Node("\(limits.duplicateWindow)")),
                ("status_window", Node("\(limits.statusWindow)")),
                ("vanished_group_retention", yamlString(DurationSyntax.format(limits.vanishedGroupRetention))),
                ("max_dead_letter_topics_per_topic", Node("\(limits.maxDeadLetterTopicsPerTopic)")),
            ])
        ),
    ])
}
