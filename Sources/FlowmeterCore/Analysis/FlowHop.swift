/// One side of a flow (a request or a response) as it travels through the repartition topic: everything
/// correlation needs, without the record it came from.
///
/// When a replica is assigned fewer than all partitions of the flows' topics, its engine does not correlate the
/// flow events it reads; it hands them out as hops (``AnalysisEngine/takeFlowHops()``), which the replica writes to
/// the repartition topic keyed by ``shard(partitions:)``, and the owner of that shard correlates them
/// (``AnalysisEngine/correlate(_:)``) exactly as if it had read the records itself (DESIGN.md section 5).
public struct FlowHop: Sendable, Hashable, CustomStringConvertible {
    /// Whether the hop is a flow's request or its response.
    public enum Role: UInt8, Sendable, Hashable {
        case request = 1
        case response = 2
    }

    /// The flow's name.
    public var flow: String
    public var role: Role
    /// The correlation key.
    public var key: String
    /// The event time in milliseconds (the source record's timestamp, or its fallback).
    public var timeMs: Int64
    /// The source record's topic, partition and offset (its identity in the pending-flow store, and the
    /// de-duplication position of a replayed source partition).
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// The hop's place among the hops of its source record (one record can be a request or response of several
    /// flows): with the offset, the hop's position in its source partition.
    public var index: UInt16

    public init(
        flow: String,
        role: Role,
        key: String,
        timeMs: Int64,
        topic: String,
        partition: Int32,
        offset: Int64,
        index: UInt16 = 0
    ) {
        self.flow = flow
        self.role = role
        self.key = key
        self.timeMs = timeMs
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.index = index
    }

    /// The hop's position in its source partition: the order in which a shard takes the hops of one source
    /// partition, and the de-duplication mark of replays.
    public var position: HopPosition { HopPosition(offset: offset, index: index) }

    /// The shard (repartition-topic partition) of the hop: every hop of one flow and correlation key has the same.
    public func shard(partitions: Int32) -> Int32 {
        Self.shard(flow: flow, key: key, partitions: partitions)
    }

    /// The shard of a flow and correlation key: FNV-1a (64 bits) over the flow name, a zero byte and the key,
    /// modulo `partitions`. Stable across processes, versions and platforms (it is stored implicitly: pending
    /// requests are restored by it).
    public static func shard(flow: String, key: String, partitions: Int32) -> Int32 {
        guard partitions > 1 else { return 0 }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in flow.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        hash = (hash ^ 0) &* 0x0000_0100_0000_01b3
        for byte in key.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return Int32(truncatingIfNeeded: hash % UInt64(partitions))
    }

    public var description: String {
        "\(flow) \(role == .request ? "request" : "response") key=\(key) t=\(timeMs) from \(topic)[\(partition)]@\(offset)#\(index)"
    }
}

/// A hop's position in its source partition: the source record's offset, then the hop's index among the hops of
/// that record.
public struct HopPosition: Sendable, Hashable, Comparable {
    public var offset: Int64
    public var index: UInt16

    public init(offset: Int64, index: UInt16) {
        self.offset = offset
        self.index = index
    }

    public static func < (lhs: HopPosition, rhs: HopPosition) -> Bool {
        (lhs.offset, lhs.index) < (rhs.offset, rhs.index)
    }
}

/// Flow events already correlated through the repartition topic that a replica correlating in memory reads again:
/// after a replica that routed them died before storing its source offsets, the shard owner may have correlated
/// (and stored) their hops, while the records themselves are read again from the stored offsets. Per shard and
/// source partition, the position (offset, hop index) of the last hop the shard took; a flow event at or below it
/// is skipped (``AnalysisEngine/takenFlowHops``).
public struct TakenFlowHops: Sendable, Hashable {
    public struct Key: Sendable, Hashable {
        public var shard: Int32
        public var topic: String
        public var partition: Int32

        public init(shard: Int32, topic: String, partition: Int32) {
            self.shard = shard
            self.topic = topic
            self.partition = partition
        }
    }

    /// The repartition topic's partition count (the shard function's modulus).
    public var partitions: Int32
    public var positions: [Key: HopPosition]

    public init(partitions: Int32 = 1, positions: [Key: HopPosition] = [:]) {
        self.partitions = partitions
        self.positions = positions
    }

    public var isEmpty: Bool { positions.isEmpty }

    /// Whether the flow event at this position was taken by its shard already.
    public func contains(
        flow: String,
        key: String,
        topic: String,
        partition: Int32,
        offset: Int64,
        index: UInt16
    )
        -> Bool
    {
        let shard = FlowHop.shard(flow: flow, key: key, partitions: partitions)
        guard let taken = positions[Key(shard: shard, topic: topic, partition: partition)] else { return false }
        return HopPosition(offset: offset, index: index) <= taken
    }
}

/// What a replica that routes flows writes to each partition of the repartition topic at every flush: for each
/// source partition it owns, the event time up to which it has written that partition's hops (its watermark:
/// the latest timestamp read, or now once read to the end for a quiet while).
///
/// A marker follows, in the same repartition partition, every hop it covers (one producer, one partition,
/// in order), so the shard owner that has read a marker has read all those hops: the minimum over all source
/// partitions of the latest marker is a flow clock that cannot expire a request whose response is still on its
/// way from another replica.
public struct FlowProgressMarker: Sendable, Hashable {
    public struct Entry: Sendable, Hashable {
        public var topic: String
        public var partition: Int32
        public var watermarkMs: Int64

        public init(topic: String, partition: Int32, watermarkMs: Int64) {
            self.topic = topic
            self.partition = partition
            self.watermarkMs = watermarkMs
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) {
        self.entries = entries
    }
}

/// A repartition-topic record's value.
public enum RepartitionRecord: Sendable, Hashable {
    case hop(FlowHop)
    case progress(FlowProgressMarker)
}

/// The binary encoding of repartition-topic values (big-endian; one version byte first, so that a future format
/// can be told apart). Decoding never traps: anything malformed is `nil`.
///
/// - hop: `0x01`, role (u8), partition (i32), offset (i64), index (u16), time (i64), flow (u16 length + UTF-8), topic (u16 length +
///   UTF-8), key (u32 length + UTF-8)
/// - progress: `0x02`, count (u32), then per entry topic (u16 length + UTF-8), partition (i32), watermark (i64)
public enum RepartitionCodec {
    static let hopTag: UInt8 = 1
    static let progressTag: UInt8 = 2

    public static func encode(_ hop: FlowHop) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32 + hop.flow.utf8.count + hop.topic.utf8.count + hop.key.utf8.count)
        out.append(hopTag)
        out.append(hop.role.rawValue)
        append(UInt32(bitPattern: hop.partition), to: &out)
        append(UInt64(bitPattern: hop.offset), to: &out)
        append(hop.index, to: &out)
        append(UInt64(bitPattern: hop.timeMs), to: &out)
        appendString(hop.flow, lengthBytes: 2, to: &out)
        appendString(hop.topic, lengthBytes: 2, to: &out)
        appendString(hop.key, lengthBytes: 4, to: &out)
        return out
    }

    public static func encode(_ marker: FlowProgressMarker) -> [UInt8] {
        var out: [UInt8] = [progressTag]
        append(UInt32(marker.entries.count), to: &out)
        for entry in marker.entries {
            appendString(entry.topic, lengthBytes: 2, to: &out)
            append(UInt32(bitPattern: entry.partition), to: &out)
            append(UInt64(bitPattern: entry.watermarkMs), to: &out)
        }
        return out
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) -> RepartitionRecord? {
        var reader = Reader(bytes: bytes)
        guard let tag = reader.byte() else { return nil }
        switch tag {
        case hopTag:
            guard let roleByte = reader.byte(), let role = FlowHop.Role(rawValue: roleByte),
                let partition = reader.integer(UInt32.self), let offset = reader.integer(UInt64.self),
                let index = reader.integer(UInt16.self), let time = reader.integer(UInt64.self),
                let flow = reader.string(lengthBytes: 2),
                let topic = reader.string(lengthBytes: 2), let key = reader.string(lengthBytes: 4), reader.atEnd
            else { return nil }
            return .hop(
                FlowHop(
                    flow: flow,
                    role: role,
                    key: key,
                    timeMs: Int64(bitPattern: time),
                    topic: topic,
                    partition: Int32(bitPattern: partition),
                    offset: Int64(bitPattern: offset),
                    index: index
                )
            )
        case progressTag:
            guard let count = reader.integer(UInt32.self), Int(count) <= bytes.count / 14 else { return nil }
            var entries: [FlowProgressMarker.Entry] = []
            entries.reserveCapacity(Int(count))
            for _ in 0..<count {
                guard let topic = reader.string(lengthBytes: 2), let partition = reader.integer(UInt32.self),
                    let watermark = reader.integer(UInt64.self)
                else { return nil }
                entries.append(
                    .init(
                        topic: topic,
                        partition: Int32(bitPattern: partition),
                        watermarkMs: Int64(bitPattern: watermark)
                    )
                )
            }
            guard reader.atEnd else { return nil }
            return .progress(FlowProgressMarker(entries: entries))
        default:
            return nil
        }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }

    private static func appendString(_ string: String, lengthBytes: Int, to out: inout [UInt8]) {
        let utf8 = Array(string.utf8.prefix(lengthBytes == 2 ? Int(UInt16.max) : Int(Int32.max)))
        if lengthBytes == 2 {
            append(UInt16(utf8.count), to: &out)
        } else {
            append(UInt32(utf8.count), to: &out)
        }
        out.append(contentsOf: utf8)
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        var atEnd: Bool { index == bytes.count }

        mutating func byte() -> UInt8? {
            guard index < bytes.count else { return nil }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type) -> T? {
            let size = MemoryLayout<T>.size
            guard bytes.count - index >= size else { return nil }
            var value: T = 0
            for offset in 0..<size { value = value << 8 | T(bytes[index + offset]) }
            index += size
            return value
        }

        mutating func string(lengthBytes: Int) -> String? {
            let length: Int
            if lengthBytes == 2 {
                guard let value = integer(UInt16.self) else { return nil }
                length = Int(value)
            } else {
                guard let value = integer(UInt32.self) else { return nil }
                length = Int(value)
            }
            guard bytes.count - index >= length else { return nil }
            let slice = UnsafeRawBufferPointer(rebasing: bytes[index..<(index + length)])
            index += length
            guard let text = String(validating: slice, as: UTF8.self) else { return nil }
            return text
        }
    }
}
