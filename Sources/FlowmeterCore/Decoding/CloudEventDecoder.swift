import Synchronization

/// Decodes Kafka records written by Dapr (and others) into ``DecodedEvent`` values, following
/// WIRE-FORMAT.md §10 in full.
///
/// The hot path is one pass over the value bytes that validates RFC 8259 JSON and records the positions of the
/// top-level members; only the attributes the event exposes are materialized as strings. Random or truncated
/// bytes never crash it: they decode as malformed (or raw) records.
public struct CloudEventDecoder: Sendable {
    /// The options in use.
    public let options: DecoderOptions
    private let dlqPatterns: [TopicGlobMatcher]
    private let dlqTopics: TopicNameSet
    private let outboxTopics: TopicNameSet
    /// The classifications of recent topics, for the public entry point.
    private let topicClasses = TopicClassCache()

    /// Creates a decoder.
    public init(options: DecoderOptions = DecoderOptions()) {
        self.options = options
        self.dlqPatterns = options.dlqTopicGlobMatchers.map(TopicGlobMatcher.init)
        self.dlqTopics = TopicNameSet(options.dlqTopics)
        self.outboxTopics = TopicNameSet(options.outboxInternalTopics)
    }

    /// Decodes one record whose value is a byte array (a convenience over the zero-copy entry point).
    public func decode(
        topic: String,
        partition: Int32,
        offset: Int64,
        timestampMs: Int64,
        timestampType: TimestampType = .createTime,
        headers: [RecordHeader],
        key: [UInt8]?,
        value: [UInt8]?
    ) -> DecodedEvent {
        guard let value else {
            return decode(
                topic: topic,
                partition: partition,
                offset: offset,
                timestampMs: timestampMs,
                timestampType: timestampType,
                headers: headers,
                key: key,
                value: UnsafeRawBufferPointer?.none
            )
        }
        return value.withUnsafeBytes { buffer in
            decode(
                topic: topic,
                partition: partition,
                offset: offset,
                timestampMs: timestampMs,
                timestampType: timestampType,
                headers: headers,
                key: key,
                value: buffer
            )
        }
    }

    /// Decodes one record; the zero-copy entry point.
    ///
    /// - Parameters:
    ///   - topic: The Kafka topic of the record.
    ///   - partition: Its partition.
    ///   - offset: Its offset.
    ///   - timestampMs: The record timestamp in milliseconds.
    ///   - timestampType: The record timestamp type.
    ///   - headers: The record headers in wire order (names may repeat; the last wins).
    ///   - key: The key bytes, or `nil` for a null key.
    ///   - value: The value bytes, or `nil` for a tombstone. Only read during the call.
    /// - Returns: The decoded event. Byte ranges in it are relative to `value`.
    public func decode(
        topic: String,
        partition: Int32,
        offset: Int64,
        timestampMs: Int64,
        timestampType: TimestampType = .createTime,
        headers: [RecordHeader],
        key: [UInt8]?,
        value: UnsafeRawBufferPointer?
    ) -> DecodedEvent {
        // The body of the classified-topic `decode` (which the engine calls), written out: calling it cost more.
        let topicClass = cachedClass(of: topic)
        var event = DecodedEvent(
            recordTopic: topic,
            partition: partition,
            offset: offset,
            timestampMs: timestampMs,
            timestampType: timestampType,
            parserClass: .raw,
            role: .normal
        )
        fill(&event, topic: topic, topicClass: topicClass, headers: headers, keyBytes: key?.count, value: value)
        return event
    }

    /// ``classify(topic:)`` through the cache of recent topics.
    private func cachedClass(of topic: String) -> TopicClass {
        if let cached = topicClasses.cached(topic) { return cached }
        let topicClass = classify(topic: topic)
        topicClasses.insert(topic, topicClass)
        return topicClass
    }

    /// What the topic name alone says about its records; callers that decode many records of one topic (the
    /// engine) classify it once.
    func classify(topic: String) -> TopicClass {
        let plainTopic = stripNamespace(topic)
        let namespaced = plainTopic != topic
        let listedDLQ =
            !dlqTopics.isEmpty && (dlqTopics.contains(topic) || (namespaced && dlqTopics.contains(plainTopic)))
        let dlq = listedDLQ || matchesDLQPattern(topic) || (namespaced && matchesDLQPattern(plainTopic))
        let outbox =
            !outboxTopics.isEmpty && (outboxTopics.contains(topic) || (namespaced && outboxTopics.contains(plainTopic)))
        return TopicClass(plainTopic: plainTopic, deadLetterTopic: dlq, outboxInternal: outbox)
    }

    /// Decodes one record of a classified topic (see ``decode(topic:partition:offset:timestampMs:timestampType:headers:key:value:)``).
    /// `prescanned`, when given, is what ``PrescannedMembers/prescan(_:options:)`` found in `value` with these
    /// options: the decoder takes its members instead of scanning the value again.
    ///
    /// `deferredID`, when given (the engine's decode), receives the byte range in `value` of a structured
    /// CloudEvent's `id` that would need a string of its own (unescaped, longer than a small string's 15 bytes), and
    /// the event's `id` is then left `nil` (its flags are as if it were set): a caller that only hashes the id, or
    /// needs it rarely, builds it from those bytes. Otherwise it is set to `nil`. With it, the event also leaves out
    /// two strings the engine does not read, each a reference count taken and dropped per record: `recordTopic` is
    /// empty, and a normal record's `topic` attribute that spells the record's plain topic (which raises no flag) is
    /// left `nil`.
    func decode(
        topic: String,
        topicClass: TopicClass,
        partition: Int32,
        offset: Int64,
        timestampMs: Int64,
        timestampType: TimestampType,
        headers: [RecordHeader],
        keyBytes: Int?,
        value: UnsafeRawBufferPointer?,
        prescanned: UnsafePointer<PrescannedMembers>? = nil,
        deferredID: UnsafeMutablePointer<Range<Int>?>? = nil
    ) -> DecodedEvent {
        deferredID?.pointee = nil
        var event = DecodedEvent(
            recordTopic: deferredID == nil ? topic : "",
            partition: partition,
            offset: offset,
            timestampMs: timestampMs,
            timestampType: timestampType,
            parserClass: .raw,
            role: .normal
        )
        fill(
            &event,
            topic: topic,
            topicClass: topicClass,
            headers: headers,
            keyBytes: keyBytes,
            value: value,
            prescanned: prescanned,
            deferredID: deferredID
        )
        return event
    }

    /// The body of ``decode(topic:topicClass:partition:offset:timestampMs:timestampType:headers:keyBytes:value:)``:
    /// it fills in an `inout` event (returning a local from many exits made the compiler copy the whole event).
    @inline(__always) private func fill(
        _ event: inout DecodedEvent,
        topic: String,
        topicClass: TopicClass,
        headers: [RecordHeader],
        keyBytes: Int?,
        value: UnsafeRawBufferPointer?,
        prescanned: UnsafePointer<PrescannedMembers>? = nil,
        deferredID: UnsafeMutablePointer<Range<Int>?>? = nil
    ) {
        event.keyBytes = keyBytes
        let view = HeaderView(headers: headers)
        if view.hasDuplicates { event.flags.insert(.duplicateHeader) }
        let plainTopic = topicClass.plainTopic
        event.role = topicRole(topicClass, headers: view)

        // Step 2: tombstone.
        guard let value else {
            event.parserClass = .tombstone
            event.invalidReason = .tombstone
            finishDLQ(&event, headers: view)
            return
        }
        event.valueBytes = value.count
        // Step 3: oversize.
        let oversize = value.count > options.maxParseBytes
        if oversize { event.flags.insert(.oversize) }
        let rawPayload = view.rawPayload

        // Step 4: binary mode.
        if view.hasCESpecversion {
            let contentType = view.last("content-type", caseInsensitive: true)
            let structured = contentType.map { hasASCIIPrefix($0, "application/cloudevents") } ?? false
            if !structured {
                decodeBinary(&event, headers: view, value: value, oversize: oversize, plainTopic: plainTopic)
                return
            }
        }

        // Step 5: structured parse.
        guard let raw = value.baseAddress, value.count > 0 else {
            notJSON(&event, failure: JSONFailure(.unexpectedEnd, 0), rawPayload: rawPayload, headers: view)
            return
        }
        let base = raw.assumingMemoryBound(to: UInt8.self)
        var start = 0
        if startsWithUTF8BOM(base, value.count) {
            event.flags.insert(.bom)
            start = 3
        }
        // A constant, each branch initializing it once: reads of a variable copied the whole collector (360 bytes of
        // spans) each, and so did assigning a prescanned one to a variable.
        let members: AttributeCollector
        let kind: JSONValueKind
        if !oversize, start == 0, let prescanned, prescanned.pointee.maxDepth == options.maxNestingDepth {
            // Scanned ahead (the same fast scan, which found an object).
            members = AttributeCollector(prescanned)
            kind = .object
        } else {
            var collector = AttributeCollector()
            if !oversize,
                let fastKind = JSONDocument.scanFast(
                    base: base,
                    start: start,
                    end: value.count,
                    maxDepth: options.maxNestingDepth,
                    sink: &collector
                )
            {
                kind = fastKind
            } else {
                // Not valid, or not an object: the full scan gives the verdict and the error.
                collector = AttributeCollector()
                do {
                    kind = try JSONDocument.scan(
                        base: base,
                        start: start,
                        end: value.count,
                        validate: !oversize,
                        maxDepth: options.maxNestingDepth,
                        sink: &collector
                    )
                } catch {
                    notJSON(&event, failure: error, rawPayload: rawPayload, headers: view)
                    return
                }
            }
            members = collector
        }
        if members.duplicate { event.flags.insert(.duplicateMember) }
        guard kind == .object else {
            event.parserClass = .raw
            event.flags.insert(.nonObjectJSON)
            if rawPayload { event.flags.insert(.rawHeader) }
            event.invalidReason = .nonObjectJSON
            event.trace = headerTrace(view, flags: &event.flags)
            finishDLQ(&event, headers: view)
            return
        }
        guard let specversionSpan = members[.specversion] else {
            event.parserClass = .raw
            if rawPayload { event.flags.insert(.rawHeader) }
            event.invalidReason = .missingSpecversion
            event.trace = headerTrace(view, flags: &event.flags)
            finishDLQ(&event, headers: view)
            return
        }

        // Step 6: a CloudEvent.
        event.parserClass = .cloudEvent
        // Step 7, as `AttributeValues.apply(to:)` does it (by the same rules, without building the values).
        var flags = event.flags
        event.specversion = specversionAttribute(specversionSpan, base, &flags)
        let idSpan = members[.id]
        var idDeferred = false
        if let deferredID, let idSpan, idSpan.kind == .string, !idSpan.escaped,
            idSpan.contentEnd - idSpan.contentStart > smallStringCapacity
        {
            // Present, a string and not empty: no flag, as `requiredAttribute` would find.
            deferredID.pointee = idSpan.contentStart..<idSpan.contentEnd
            idDeferred = true
        } else {
            event.id = requiredAttribute(idSpan, base, .missingID, &flags)
        }
        event.source = requiredAttribute(members[.source], base, .missingSource, &flags)
        event.type = requiredAttribute(members[.type], base, .missingType, &flags) { commonValue(base, $0, $1) }
        event.subject = optionalAttribute(members[.subject], base, &flags)
        event.datacontenttype = optionalAttribute(members[.datacontenttype], base, &flags) {
            commonValue(base, $0, $1)
        }
        if deferredID != nil, event.role == .normal, let span = members[.topic], span.kind == .string, !span.escaped,
            bytesEqual(plainTopic, base, span.contentStart, span.contentEnd - span.contentStart)
        {
            // The engine's decode: the record's own topic, nothing to flag, and not read for a normal record.
        } else {
            event.topicAttribute = optionalAttribute(members[.topic], base, &flags) {
                bytesEqual(plainTopic, base, $0, $1) ? plainTopic : nil
            }
        }
        event.pubsubname = optionalAttribute(members[.pubsubname], base, &flags) {
            spells("pubsub", base, $0, $1) ? "pubsub" : nil
        }
        let time = timeValue(members[.time], base)
        AttributeValues.applyTime(time, to: &event, &flags)
        AttributeValues.applyExpiration(timeValue(members[.expiration], base), to: &event, &flags)
        event.flags = flags

        let pubsubPresent = members[.pubsubname] != nil
        let topicPresent = members[.topic] != nil
        // For a deferred (unescaped) id, the byte test is the whole test.
        let isOutbox = hasOutboxPrefix(idSpan, base) && (idDeferred || (event.id?.hasPrefix("outbox-") ?? false))
        let bothData = members[.data] != nil && members[.dataBase64] != nil
        if !pubsubPresent && !topicPresent {
            event.producerKind = .nonDapr
        } else if isOutbox {
            event.producerKind = .daprOutbox
        } else if members.unknownCount == 0 && !bothData, case .parsed(let t) = time, t.precision == .seconds,
            !t.lenient
        {
            event.producerKind = .daprWrapped
        } else {
            event.producerKind = .appCloudEvent
        }

        // Step 8: data.
        decodeData(&event, members: members, base: base, oversize: oversize)

        // Step 9: trace.
        if let trace = attributeTrace(members, base: base, flags: &event.flags) {
            event.trace = trace
        } else if !event.flags.contains(.badTraceparent) {
            event.trace = headerTrace(view, flags: &event.flags)
        }

        // Step 11: outbox.
        if isOutbox {
            let internalRecord = event.topicAttribute == ""
            event.outbox = OutboxInfo(isInternal: internalRecord, extraAttributeCount: members.unknownCount)
            if internalRecord && event.role == .normal { event.role = .outboxInternal }
        }
        finishCloudEvent(&event, plainTopic: plainTopic, headers: view)
    }

    // MARK: - Steps

    private func notJSON(_ event: inout DecodedEvent, failure: JSONFailure, rawPayload: Bool, headers: HeaderView) {
        event.parseError = failure.message
        if rawPayload {
            event.parserClass = .raw
            event.flags.insert(.rawHeader)
            event.invalidReason = .rawNonJSON
        } else {
            event.parserClass = .malformed
            event.invalidReason = .malformedJSON
        }
        event.trace = headerTrace(headers, flags: &event.flags)
        finishDLQ(&event, headers: headers)
    }

    private func decodeBinary(
        _ event: inout DecodedEvent,
        headers: HeaderView,
        value: UnsafeRawBufferPointer,
        oversize: Bool,
        plainTopic: String
    ) {
        event.parserClass = .binaryCloudEvent
        event.producerKind = .nonDapr
        var fields = AttributeValues()
        func header(_ name: String) -> AttributeValue {
            headers.lastString("ce_" + name, caseInsensitive: true).map { .string($0) } ?? .absent
        }
        fields.specversion = header("specversion")
        fields.id = header("id")
        fields.source = header("source")
        fields.type = header("type")
        fields.subject = header("subject")
        fields.topic = header("topic")
        fields.pubsubname = header("pubsubname")
        if let contentType = headers.lastString("content-type", caseInsensitive: true) {
            fields.datacontenttype = .string(contentType)
        } else {
            fields.datacontenttype = header("datacontenttype")
        }
        fields.time = headers.lastString("ce_time", caseInsensitive: true).map(TimeValue.init(text:)) ?? .absent
        fields.expiration =
            headers.lastString("ce_expiration", caseInsensitive: true).map(TimeValue.init(text:)) ?? .absent
        fields.apply(to: &event)

        // Data: the whole value.
        if value.count > 0, let raw = value.baseAddress {
            event.dataRange = 0..<value.count
            event.dataKind = .binary
            if !oversize, let contentType = event.datacontenttype, isJSONMediaType(contentType) {
                var sink = IgnoringMemberSink()
                do {
                    let kind = try JSONDocument.scan(
                        base: raw.assumingMemoryBound(to: UInt8.self),
                        start: 0,
                        end: value.count,
                        validate: true,
                        maxDepth: options.maxNestingDepth,
                        sink: &sink
                    )
                    event.dataKind = DataKind(kind)
                } catch {
                    event.flags.insert(.invalidJSONData)
                }
            }
        }

        // Trace: ce_traceparent, then ce_traceid, then the plain headers.
        if let tp = nonEmpty(headers.lastString("ce_traceparent", caseInsensitive: true)) {
            event.trace = parseTrace(tp, source: .ceTraceparent, flags: &event.flags)
        } else if let tid = nonEmpty(headers.lastString("ce_traceid", caseInsensitive: true)) {
            event.trace = parseTrace(tid, source: .attributeTraceid, flags: &event.flags)
        } else {
            event.trace = headerTrace(headers, flags: &event.flags)
        }
        if event.id?.hasPrefix("outbox-") ?? false {
            let internalRecord = event.topicAttribute == ""
            event.outbox = OutboxInfo(isInternal: internalRecord, extraAttributeCount: 0)
            if internalRecord && event.role == .normal { event.role = .outboxInternal }
        }
        finishCloudEvent(&event, plainTopic: plainTopic, headers: headers)
    }

    @inline(__always) private func decodeData(
        _ event: inout DecodedEvent,
        members: AttributeCollector,
        base: UnsafePointer<UInt8>,
        oversize: Bool
    ) {
        if let b64 = members[.dataBase64] {
            if members[.data] != nil { event.flags.insert(.bothData) }
            event.dataKind = .base64
            event.dataRange = b64.valueStart..<b64.valueEnd
            guard b64.kind == .string else {
                event.flags.insert(.badBase64)
                return
            }
            if oversize { return }
            let measurement: Base64.Measurement?
            if b64.escaped {
                let bytes = JSONString.unescapedBytes(base, b64.contentStart, b64.contentEnd)
                measurement = bytes.withUnsafeBufferPointer { buffer in
                    guard let p = buffer.baseAddress else { return Base64.Measurement(decodedCount: 0, urlSafe: false) }
                    return Base64.measure(p, 0, buffer.count)
                }
            } else {
                measurement = Base64.measure(base, b64.contentStart, b64.contentEnd)
            }
            if let measurement {
                event.decodedDataBytes = measurement.decodedCount
                if measurement.urlSafe { event.flags.insert(.urlSafeBase64) }
            } else {
                event.flags.insert(.badBase64)
            }
            return
        }
        guard let data = members[.data] else { return }
        event.dataKind = DataKind(data.kind)
        event.dataRange = data.valueStart..<data.valueEnd
        guard data.kind == .string, options.tryDoubleEncodedJSON, !oversize else { return }
        let mediaType = event.datacontenttype.map(plainMediaType) ?? ""
        guard mediaType == "text/plain" || mediaType.isEmpty else { return }
        if isDoubleEncodedJSON(base, data) { event.flags.insert(.doubleEncodedJSON) }
    }

    /// Whether a string member holds a JSON object or array (after trimming whitespace).
    private func isDoubleEncodedJSON(_ base: UnsafePointer<UInt8>, _ span: MemberSpan) -> Bool {
        // Cheap check on the raw text first: the first non-whitespace character must be `{` or `[`. JSON
        // whitespace inside a JSON string is escaped (`\n`, `\t`, `\r`) or a literal space.
        var i = span.contentStart
        while i < span.contentEnd {
            let c = base[i]
            if c == 0x20 {
                i += 1
            } else if c == ASCII.backslash && i + 1 < span.contentEnd
                && (base[i + 1] == 0x6E || base[i + 1] == 0x74 || base[i + 1] == 0x72)
            {
                i += 2
            } else {
                break
            }
        }
        guard i < span.contentEnd, base[i] == ASCII.openBrace || base[i] == ASCII.openBracket else { return false }
        return validJSON(base, span)
    }

    private func validJSON(_ base: UnsafePointer<UInt8>, _ span: MemberSpan) -> Bool {
        var sink = IgnoringMemberSink()
        if !span.escaped {
            return
                (try? JSONDocument.scan(
                    base: base,
                    start: span.contentStart,
                    end: span.contentEnd,
                    validate: true,
                    maxDepth: options.maxNestingDepth,
                    sink: &sink
                )) != nil
        }
        let bytes = JSONString.unescapedBytes(base, span.contentStart, span.contentEnd)
        return bytes.withUnsafeBufferPointer { buffer in
            guard let p = buffer.baseAddress else { return false }
            return
                (try? JSONDocument.scan(
                    base: p,
                    start: 0,
                    end: buffer.count,
                    validate: true,
                    maxDepth: options.maxNestingDepth,
                    sink: &sink
                )) != nil
        }
    }

    /// Steps 7 (topic, skew), 10 (DLQ) and the invalid reason, common to structured and binary events.
    private func finishCloudEvent(_ event: inout DecodedEvent, plainTopic: String, headers: HeaderView) {
        if event.role == .normal, let topicAttribute = event.topicAttribute, topicAttribute != plainTopic {
            event.flags.insert(.topicMismatch)
        }
        finishDLQ(&event, headers: headers)
        if event.producerKind == .daprWrapped, let ceTime = event.ceTime {
            let reference = event.role == .dlq ? (event.dlq?.originTimestampMs ?? 0) : event.timestampMs
            if reference > 0 && event.timestampType != .unknown {
                let (delta, overflow) = reference.subtractingReportingOverflow(ceTime.epochMilliseconds)
                if !overflow && delta < -2000 { event.flags.insert(.clockSkewOrForgedTime) }
                if !overflow && delta > 60_000 { event.flags.insert(.delayedPublish) }
            }
        }
        if event.flags.contains(.unsupportedSpecversion) {
            event.invalidReason = .unsupportedSpecversion
        } else if event.flags.contains(.missingID) {
            event.invalidReason = .missingID
        } else if event.flags.contains(.missingSource) {
            event.invalidReason = .missingSource
        } else if event.flags.contains(.missingType) {
            event.invalidReason = .missingType
        }
    }

    /// Step 10: DLQ origin from the `__*` headers.
    private func finishDLQ(_ event: inout DecodedEvent, headers: HeaderView) {
        guard event.role == .dlq else { return }
        var flags = event.flags
        func number(_ name: String) -> Int64? {
            guard let text = headers.lastString(name, caseInsensitive: false) else { return nil }
            if let n = Int64(text) { return n }
            if let decoded = percentDecoded(text), let n = Int64(decoded) {
                flags.insert(.escapedDLQHeaders)
                return n
            }
            flags.insert(.dlqHeadersInvalid)
            return nil
        }
        var origin = DLQOrigin(probableReason: .unknown)
        if let topic = headers.lastString("__topic", caseInsensitive: false) {
            if topic.utf8.contains(0x25), let decoded = percentDecoded(topic) {
                flags.insert(.escapedDLQHeaders)
                origin.originTopic = decoded
            } else {
                origin.originTopic = topic
            }
        } else {
            origin.originTopic = event.topicAttribute
        }
        if let partition = number("__partition") {
            if let p = Int32(exactly: partition) {
                origin.originPartition = p
            } else {
                flags.insert(.dlqHeadersInvalid)
            }
        }
        origin.originOffset = number("__offset")
        origin.originTimestampMs = number("__timestamp")
        if let originTimestamp = origin.originTimestampMs {
            let (delay, overflow) = event.timestampMs.subtractingReportingOverflow(originTimestamp)
            if !overflow { origin.dlqDelayMs = delay }
        }
        if let expiration = event.expiration, expiration.epochMilliseconds <= event.timestampMs {
            origin.probableReason = .expired
        }
        event.flags = flags
        event.dlq = origin
    }

    // MARK: - Topic role

    private func stripNamespace(_ topic: String) -> String {
        guard let prefix = options.namespacePrefix, !prefix.isEmpty, topic.hasPrefix(prefix) else { return topic }
        return String(topic.dropFirst(prefix.count))
    }

    private func topicRole(_ topicClass: TopicClass, headers: HeaderView) -> TopicRole {
        if topicClass.deadLetterTopic { return .dlq }
        if headers.hasDLQOrigin { return .dlq }
        return topicClass.outboxInternal ? .outboxInternal : .normal
    }

    private func matchesDLQPattern(_ topic: String) -> Bool {
        guard !dlqPatterns.isEmpty else { return false }
        var copy = topic
        return copy.withUTF8 { text in dlqPatterns.contains { $0.matches(text) } }
    }

    // MARK: - Trace

    /// Step 9 for structured events: the `traceparent` attribute if non-empty, else `traceid`.
    /// - Returns: `nil` if neither is a non-empty string, or if the chosen one is invalid (then flags it).
    @inline(__always) private func attributeTrace(
        _ members: AttributeCollector,
        base: UnsafePointer<UInt8>,
        flags: inout DecoderFlags
    ) -> TraceContext? {
        func nonEmptyString(_ span: MemberSpan?) -> MemberSpan? {
            guard let span, span.kind == .string, span.contentEnd > span.contentStart else { return nil }
            return span
        }
        let span: MemberSpan
        let source: TraceSource
        if let traceparent = nonEmptyString(members[.traceparent]) {
            span = traceparent
            source = .attributeTraceparent
        } else if let traceid = nonEmptyString(members[.traceid]) {
            span = traceid
            source = .attributeTraceid
        } else {
            return nil
        }
        let trace: TraceContext?
        if span.escaped {
            trace = parseTrace(
                JSONString.string(base, span.contentStart, span.contentEnd, escaped: true),
                source: source
            )
        } else {
            let bytes = UnsafeBufferPointer(start: base + span.contentStart, count: span.contentEnd - span.contentStart)
            trace = TraceContext.parse(bytes: bytes, source: source)
        }
        if trace == nil { flags.insert(.badTraceparent) }
        return trace
    }

    /// Trace from the plain `traceparent` or `traceid` headers.
    private func headerTrace(_ headers: HeaderView, flags: inout DecoderFlags) -> TraceContext? {
        if let tp = nonEmpty(headers.lastString("traceparent", caseInsensitive: true)) {
            return parseTrace(tp, source: .headerTraceparent, flags: &flags)
        }
        if let tid = nonEmpty(headers.lastString("traceid", caseInsensitive: true)) {
            return parseTrace(tid, source: .headerTraceid, flags: &flags)
        }
        return nil
    }

    private func parseTrace(_ text: String, source: TraceSource) -> TraceContext? {
        TraceContext.parse(text, source: source)
    }

    private func parseTrace(_ text: String, source: TraceSource, flags: inout DecoderFlags) -> TraceContext? {
        let trace = TraceContext.parse(text, source: source)
        if trace == nil { flags.insert(.badTraceparent) }
        return trace
    }
}

/// A set of topic names for the per-record lookup of the public entry point.
///
/// Hashing the topic for `Set<String>.contains` cost more than the rest of the classification. When every name
/// is ASCII and there are few, an ASCII topic is compared with them byte by byte instead: between ASCII strings
/// `String`'s equality (canonical equivalence) is byte equality. Any other topic goes to the `Set` (a non-ASCII
/// topic can equal an ASCII name, e.g. U+037E GREEK QUESTION MARK is canonically `;`).
struct TopicNameSet: Sendable {
    private let names: Set<String>
    /// The UTF-8 of the names, or `nil` to always use `names`.
    private let asciiNames: [[UInt8]]?

    init(_ names: Set<String>) {
        self.names = names
        let bytes = names.map { Array($0.utf8) }
        asciiNames = names.count <= 32 && bytes.allSatisfy { $0.allSatisfy { $0 < 0x80 } } ? bytes : nil
    }

    var isEmpty: Bool { names.isEmpty }

    func contains(_ topic: String) -> Bool {
        guard let asciiNames else { return names.contains(topic) }
        let found = topic.utf8.withContiguousStorageIfAvailable { text -> Bool? in
            var high: UInt8 = 0
            for c in text { high |= c }
            guard high < 0x80 else { return nil }
            for name in asciiNames where name.count == text.count {
                guard let start = text.baseAddress, !text.isEmpty else { return true }
                if name.withUnsafeBufferPointer({ memoryEquals($0.baseAddress!, start, text.count) }) {
                    return true
                }
            }
            return false
        }
        guard let found, let found else { return names.contains(topic) }
        return found
    }
}

/// The classifications of the last few topics the public entry point saw, keyed by the topic's UTF-8 bytes (a
/// topic's class depends only on its name, and consecutive records mostly share a handful of topics): comparing the
/// bytes with a few cached names costs a fraction of classifying the name again.
final class TopicClassCache: Sendable {
    private struct Entry {
        var bytes: [UInt8]
        var topicClass: TopicClass
    }

    private struct State {
        var entries: [Entry] = []
        /// The slot the next new topic replaces once the cache is full.
        var next = 0
    }

    /// How many topics it keeps.
    static let capacity = 16
    private let state = Mutex(State())

    /// The cached class of `topic`, if any.
    func cached(_ topic: String) -> TopicClass? {
        let found = topic.utf8.withContiguousStorageIfAvailable { text -> TopicClass? in
            guard let start = text.baseAddress else { return nil }
            return state.withLock { state in
                for entry in state.entries where entry.bytes.count == text.count {
                    let equal = entry.bytes.withUnsafeBufferPointer { memoryEquals($0.baseAddress!, start, text.count) }
                    if equal { return entry.topicClass }
                }
                return nil
            }
        }
        return found ?? nil
    }

    /// Caches the class of `topic`, replacing the oldest entry once the cache is full.
    func insert(_ topic: String, _ topicClass: TopicClass) {
        let entry = Entry(bytes: Array(topic.utf8), topicClass: topicClass)
        state.withLock { state in
            if state.entries.count < Self.capacity {
                state.entries.append(entry)
            } else {
                state.entries[state.next] = entry
                state.next = (state.next + 1) % Self.capacity
            }
        }
    }
}

// MARK: - Attribute values

/// What the topic name alone says about its records' role (WIRE-FORMAT.md §10 step 0).
struct TopicClass: Sendable, Hashable {
    /// The topic without the namespace prefix.
    var plainTopic: String
    /// A listed dead-letter topic, or one matching a dead-letter pattern.
    var deadLetterTopic: Bool
    /// A listed outbox internal topic.
    var outboxInternal: Bool
}

/// A string attribute as found in the record.
enum AttributeValue {
    case absent
    case null
    case other
    case string(String)
}

/// A time attribute as found in the record.
enum TimeValue {
    case absent
    case null
    case other
    case empty
    case parsed(ParsedTimestamp)
    case invalid

    init(text: String) {
        if text.isEmpty {
            self = .empty
        } else if let t = RFC3339.parse(text) {
            self = .parsed(t)
        } else {
            self = .invalid
        }
    }
}

/// The attributes step 7 validates, shared by structured and binary events.
struct AttributeValues {
    var specversion = AttributeValue.absent
    var id = AttributeValue.absent
    var source = AttributeValue.absent
    var type = AttributeValue.absent
    var subject = AttributeValue.absent
    var datacontenttype = AttributeValue.absent
    var topic = AttributeValue.absent
    var pubsubname = AttributeValue.absent
    var time = TimeValue.absent
    var expiration = TimeValue.absent

    /// Stores the attributes in `event` and raises the step 7 flags.
    func apply(to event: inout DecodedEvent) {
        var flags = event.flags
        event.specversion = Self.specversion(specversion, &flags)
        event.id = Self.required(id, .missingID, &flags)
        event.source = Self.required(source, .missingSource, &flags)
        event.type = Self.required(type, .missingType, &flags)
        event.subject = Self.optional(subject, &flags)
        event.datacontenttype = Self.optional(datacontenttype, &flags)
        event.topicAttribute = Self.optional(topic, &flags)
        event.pubsubname = Self.optional(pubsubname, &flags)
        Self.applyTime(time, to: &event, &flags)
        Self.applyExpiration(expiration, to: &event, &flags)
        event.flags = flags
    }

    // The step 7 rules one attribute at a time (the structured path applies them as it reads each member, so that
    // no `AttributeValues` is built).

    @inline(__always) static func specversion(_ value: AttributeValue, _ flags: inout DecoderFlags) -> String? {
        switch value {
        case .string(let s):
            if s != "1.0" { flags.insert(s.hasPrefix("1.0.") ? .specversionMinor : .unsupportedSpecversion) }
            return s
        case .other, .null, .absent:
            flags.insert(.unsupportedSpecversion)
            return nil
        }
    }

    @inline(__always) static func optional(_ value: AttributeValue, _ flags: inout DecoderFlags) -> String? {
        switch value {
        case .string(let s): return s
        case .other:
            flags.insert(.wrongType)
            return nil
        case .absent, .null: return nil
        }
    }

    @inline(__always) static func required(
        _ value: AttributeValue,
        _ missing: DecoderFlags,
        _ flags: inout DecoderFlags
    ) -> String? {
        switch value {
        case .string(let s):
            if s.isEmpty { flags.insert(missing) }
            return s
        case .other:
            flags.insert([missing, .wrongType])
            return nil
        case .absent, .null:
            flags.insert(missing)
            return nil
        }
    }

    @inline(__always) static func applyTime(
        _ time: TimeValue,
        to event: inout DecodedEvent,
        _ flags: inout DecoderFlags
    ) {
        switch time {
        case .absent: flags.insert(.missingTime)
        case .null: flags.insert(.nullTime)
        case .other, .empty, .invalid: flags.insert(.invalidTime)
        case .parsed(let t):
            event.ceTime = CETime(epochNanoseconds: t.epochNanoseconds, precision: t.precision)
            if t.lenient { flags.insert(.lenientTime) }
            if t.leapSecond { flags.insert(.leapSecond) }
        }
    }

    @inline(__always) static func applyExpiration(
        _ expiration: TimeValue,
        to event: inout DecodedEvent,
        _ flags: inout DecoderFlags
    ) {
        switch expiration {
        case .absent, .null: break
        case .other, .empty, .invalid: flags.insert(.invalidExpiration)
        case .parsed(let t):
            event.expiration = CETime(epochNanoseconds: t.epochNanoseconds, precision: t.precision)
            if t.epochMilliseconds < event.timestampMs { flags.insert(.expired) }
        }
    }
}

/// The most UTF-8 bytes a Swift string keeps inline (a longer one is a heap allocation): the engine's decode leaves
/// a longer `id` as its bytes.
private let smallStringCapacity = 15

/// Whether the `count` bytes at `base + start` spell `literal`.
@inline(__always) private func spells(
    _ literal: StaticString,
    _ base: UnsafePointer<UInt8>,
    _ start: Int,
    _ count: Int
) -> Bool {
    count == literal.utf8CodeUnitCount && memoryEquals(literal.utf8Start, base + start, count)
}

/// Whether the UTF-8 of `candidate` equals `base[start..<start + count]`.
@inline(__always) func bytesEqual(
    _ candidate: String,
    _ base: UnsafePointer<UInt8>,
    _ start: Int,
    _ count: Int
) -> Bool {
    guard candidate.utf8.count == count else { return false }
    return candidate.utf8.withContiguousStorageIfAvailable { c in
        memoryEquals(c.baseAddress!, base + start, count)
    } ?? candidate.utf8.elementsEqual(UnsafeBufferPointer(start: base + start, count: count))
}

/// The value among those that recur on almost every record (Dapr's `type` and the usual content types) that the
/// `count` bytes at `base + start` spell, if any. Returning the literal saves an allocation (or for short strings
/// the UTF-8 validation of a new one).
@inline(__always) private func commonValue(_ base: UnsafePointer<UInt8>, _ start: Int, _ count: Int) -> String? {
    switch count {
    case 10: return spells("text/plain", base, start, count) ? "text/plain" : nil
    case 16: return spells("application/json", base, start, count) ? "application/json" : nil
    case 19: return spells("com.dapr.event.sent", base, start, count) ? "com.dapr.event.sent" : nil
    case 24: return spells("application/octet-stream", base, start, count) ? "application/octet-stream" : nil
    case 28: return spells("application/cloudevents+json", base, start, count) ? "application/cloudevents+json" : nil
    default: return nil
    }
}

/// ``AttributeValues/specversion(_:_:)`` on the member `span` (a string member's value is its text).
@inline(__always) private func specversionAttribute(
    _ span: MemberSpan,
    _ base: UnsafePointer<UInt8>,
    _ flags: inout DecoderFlags
) -> String? {
    guard span.kind == .string else {
        flags.insert(.unsupportedSpecversion)
        return nil
    }
    let s = memberString(span, base) { spells("1.0", base, $0, $1) ? "1.0" : nil }
    if s != "1.0" { flags.insert(s.hasPrefix("1.0.") ? .specversionMinor : .unsupportedSpecversion) }
    return s
}

/// ``AttributeValues/required(_:_:_:)`` on the member `span` (a string member's value is its text).
@inline(__always) private func requiredAttribute(
    _ span: MemberSpan?,
    _ base: UnsafePointer<UInt8>,
    _ missing: DecoderFlags,
    _ flags: inout DecoderFlags,
    reuse: (_ start: Int, _ count: Int) -> String? = { _, _ in nil }
) -> String? {
    guard let span, span.kind != .null else {
        flags.insert(missing)
        return nil
    }
    guard span.kind == .string else {
        flags.insert([missing, .wrongType])
        return nil
    }
    let s = memberString(span, base, reuse: reuse)
    if s.isEmpty { flags.insert(missing) }
    return s
}

/// ``AttributeValues/optional(_:_:)`` on the member `span` (a string member's value is its text).
@inline(__always) private func optionalAttribute(
    _ span: MemberSpan?,
    _ base: UnsafePointer<UInt8>,
    _ flags: inout DecoderFlags,
    reuse: (_ start: Int, _ count: Int) -> String? = { _, _ in nil }
) -> String? {
    guard let span, span.kind != .null else { return nil }
    guard span.kind == .string else {
        flags.insert(.wrongType)
        return nil
    }
    return memberString(span, base, reuse: reuse)
}

/// The text of the string member `span`: `reuse`'s string for the unescaped text (by its start and byte count) if
/// it returns one, else a new string.
@inline(__always) private func memberString(
    _ span: MemberSpan,
    _ base: UnsafePointer<UInt8>,
    reuse: (_ start: Int, _ count: Int) -> String?
) -> String {
    if !span.escaped, let value = reuse(span.contentStart, span.contentEnd - span.contentStart) { return value }
    return JSONString.string(base, span.contentStart, span.contentEnd, escaped: span.escaped)
}

/// Whether the `id` member's raw text could start with `outbox-` (a cheap test before the exact one on the string:
/// an escaped id is left to that one).
private func hasOutboxPrefix(_ span: MemberSpan?, _ base: UnsafePointer<UInt8>) -> Bool {
    guard let span, span.kind == .string else { return false }
    if span.escaped { return true }
    let prefix: StaticString = "outbox-"
    let count = prefix.utf8CodeUnitCount
    return span.contentEnd - span.contentStart >= count
        && memoryEquals(prefix.utf8Start, base + span.contentStart, count)
}

private func timeValue(_ span: MemberSpan?, _ base: UnsafePointer<UInt8>) -> TimeValue {
    guard let span else { return .absent }
    switch span.kind {
    case .string:
        if span.contentEnd == span.contentStart { return .empty }
        if span.escaped {
            return TimeValue(text: JSONString.string(base, span.contentStart, span.contentEnd, escaped: true))
        }
        let bytes = UnsafeBufferPointer(start: base + span.contentStart, count: span.contentEnd - span.contentStart)
        return RFC3339.parse(bytes: bytes).map(TimeValue.parsed) ?? .invalid
    case .null: return .null
    default: return .other
    }
}

extension DataKind {
    init(_ kind: JSONValueKind) {
        switch kind {
        case .object: self = .jsonObject
        case .array: self = .jsonArray
        case .string: self = .jsonString
        case .number: self = .jsonNumber
        case .bool: self = .jsonBool
        case .null: self = .jsonNull
        }
    }
}

// MARK: - Headers

/// Read access to a record's headers: last value wins, lookups never depend on order.
struct HeaderView {
    let headers: [RecordHeader]
    /// The last index of each header that every record is asked about (-1 if absent), found in one pass over the
    /// headers by ``WellKnownHeader/match(_:)``.
    private var wellKnown: (dlqTopic: Int, dlqOffset: Int, rawPayload: Int, ceSpecversion: Int) = (-1, -1, -1, -1)

    init(headers: [RecordHeader]) {
        self.headers = headers
        for k in headers.indices {
            // Only names of their lengths can match (the length is stored; matching reads the bytes).
            let length = headers[k].name.utf8.count
            guard length < 64 && (UInt64(1) &<< UInt64(length)) & WellKnownHeader.lengths != 0 else { continue }
            switch WellKnownHeader.match(headers[k].name) {
            case .dlqTopic: wellKnown.dlqTopic = k
            case .dlqOffset: wellKnown.dlqOffset = k
            case .rawPayload: wellKnown.rawPayload = k
            case .ceSpecversion: wellKnown.ceSpecversion = k
            case nil: break
            }
        }
    }

    /// Whether both `__topic` and `__offset` are present (case-sensitive), as ``last(_:caseInsensitive:)`` finds
    /// them.
    var hasDLQOrigin: Bool { wellKnown.dlqTopic >= 0 && wellKnown.dlqOffset >= 0 }

    /// Whether `ce_specversion` is present (any case).
    var hasCESpecversion: Bool { wellKnown.ceSpecversion >= 0 }

    /// Whether the last `rawPayload` header (any case) parses as a true boolean the way Go's `strconv.ParseBool`
    /// does.
    @inline(__always) var rawPayload: Bool {
        let k = wellKnown.rawPayload
        guard k >= 0 else { return false }
        return Self.isTrue(headers[k].value ?? [])
    }

    /// Whether a header name repeats.
    var hasDuplicates: Bool {
        headers.count > 1 && Self.hasDuplicates(headers)
    }

    private static func hasDuplicates(_ headers: [RecordHeader]) -> Bool {
        for i in 1..<headers.count {
            for j in 0..<i where headers[j].name == headers[i].name { return true }
        }
        return false
    }

    /// The last value of the header `name`; a null value reads as empty. `nil` if absent.
    func last(_ name: String, caseInsensitive: Bool) -> [UInt8]? {
        for header in headers.reversed() where namesEqual(header.name, name, caseInsensitive: caseInsensitive) {
            return header.value ?? []
        }
        return nil
    }

    /// The last value as a string (lossy UTF-8).
    func lastString(_ name: String, caseInsensitive: Bool) -> String? {
        last(name, caseInsensitive: caseInsensitive).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether the header parses as a true boolean the way Go's `strconv.ParseBool` does.
    func isTrue(_ name: String) -> Bool {
        guard let value = last(name, caseInsensitive: true) else { return false }
        return Self.isTrue(value)
    }

    private static func isTrue(_ value: [UInt8]) -> Bool {
        switch String(decoding: value, as: UTF8.self) {
        case "1", "t", "T", "true", "TRUE", "True": return true
        default: return false
        }
    }
}

/// The header names that the decoder looks up on every record.
enum WellKnownHeader {
    /// `__topic`, matched case-sensitively.
    case dlqTopic
    /// `__offset`, matched case-sensitively.
    case dlqOffset
    /// `rawPayload`, matched in any ASCII case.
    case rawPayload
    /// `ce_specversion`, matched in any ASCII case.
    case ceSpecversion

    /// Bit `n` is set for each UTF-8 length `n` of the names (7, 8, 10 and 14).
    static let lengths: UInt64 = 1 << 7 | 1 << 8 | 1 << 10 | 1 << 14

    /// Which of the names `name` is, with the equality of ``HeaderView/last(_:caseInsensitive:)``: a switch on the
    /// UTF-8 length, then one or two words compared. The case-insensitive names are compared with the bit 0x20 set
    /// in the positions of their letters (a byte matches the lowercase letter `L` with that bit set exactly when it
    /// is `L` or its uppercase, as ``ASCII/lower(_:)`` maps them) and exactly elsewhere. The case-sensitive ones are
    /// compared byte for byte: no other string is canonically equivalent to them (the only scalars that decompose
    /// to ASCII are U+037E, U+1FEF and U+212A, to `;`, `` ` `` and `K`), so `String`'s `==` is byte equality there.
    static func match(_ name: String) -> WellKnownHeader? {
        let found = name.utf8.withContiguousStorageIfAvailable { bytes -> WellKnownHeader? in
            guard let base = bytes.baseAddress else { return nil }
            let p = UnsafeRawPointer(base)
            @inline(__always) func word64(_ offset: Int) -> UInt64 {
                UInt64(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            }
            @inline(__always) func word32(_ offset: Int) -> UInt32 {
                UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            }
            switch bytes.count {
            case 7:
                // "__to" "topic"
                return word32(0) == 0x6F74_5F5F && word32(3) == 0x6369_706F ? .dlqTopic : nil
            case 8:
                return word64(0) == 0x7465_7366_666F_5F5F ? .dlqOffset : nil  // "__offset"
            case 10:
                // "rawpaylo" "wpayload", every byte a letter
                let letters: UInt64 = 0x2020_2020_2020_2020
                return word64(0) | letters == 0x6F6C_7961_7077_6172 && word64(2) | letters == 0x6461_6F6C_7961_7077
                    ? .rawPayload : nil
            case 14:
                // "ce_specv" "cversion"; the `_` (byte 2) is compared exactly
                return word64(0) | 0x2020_2020_2000_2020 == 0x7663_6570_735F_6563
                    && word64(6) | 0x2020_2020_2020_2020 == 0x6E6F_6973_7265_7663 ? .ceSpecversion : nil
            default:
                return nil
            }
        }
        if let found { return found }
        // No contiguous UTF-8 (not a native string): the general comparison.
        if namesEqual(name, "__topic", caseInsensitive: false) { return .dlqTopic }
        if namesEqual(name, "__offset", caseInsensitive: false) { return .dlqOffset }
        if namesEqual(name, "rawPayload", caseInsensitive: true) { return .rawPayload }
        if namesEqual(name, "ce_specversion", caseInsensitive: true) { return .ceSpecversion }
        return nil
    }
}

func namesEqual(_ a: String, _ b: String, caseInsensitive: Bool) -> Bool {
    if !caseInsensitive { return a == b }
    guard a.utf8.count == b.utf8.count else { return false }
    for (x, y) in zip(a.utf8, b.utf8) where ASCII.lower(x) != ASCII.lower(y) { return false }
    return true
}

private func hasASCIIPrefix(_ bytes: [UInt8], _ prefix: String) -> Bool {
    guard bytes.count >= prefix.utf8.count else { return false }
    for (x, y) in zip(bytes, prefix.utf8) where ASCII.lower(x) != ASCII.lower(y) { return false }
    return true
}

private func nonEmpty(_ s: String?) -> String? {
    guard let s, !s.isEmpty else { return nil }
    return s
}

/// The media type without parameters, trimmed and lowercased.
func plainMediaType(_ contentType: String) -> String {
    let type = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    return String(
        decoding: type.utf8.filter { $0 != 0x20 && $0 != 0x09 }.map { ASCII.lower($0) },
        as: UTF8.self
    )
}

/// Whether a content type is JSON: `application/json`, `text/json` or a `+json` suffix.
func isJSONMediaType(_ contentType: String) -> Bool {
    let type = plainMediaType(contentType)
    return type == "application/json" || type == "text/json" || type.hasSuffix("+json")
}

/// Percent-decodes `%XX` sequences (and `+` as space, as Go's `url.QueryUnescape`); `nil` if malformed.
func percentDecoded(_ text: String) -> String? {
    var out: [UInt8] = []
    let bytes = Array(text.utf8)
    var i = 0
    while i < bytes.count {
        let c = bytes[i]
        if c == 0x25 {
            guard i + 2 < bytes.count, let h = ASCII.hexValue(bytes[i + 1]), let l = ASCII.hexValue(bytes[i + 2]) else {
                return nil
            }
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(c == ASCII.plus ? 0x20 : c)
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}
