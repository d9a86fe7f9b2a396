internal import CRdKafka

typealias PartitionListPointer = UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

/// librdkafka's "no offset" sentinel (`RD_KAFKA_OFFSET_INVALID`).
let invalidOffset: Int64 = -1001

/// Creates a partition list; the caller destroys it with `rd_kafka_topic_partition_list_destroy`.
func makePartitionList(_ entries: [(TopicPartition, Int64)]) -> PartitionListPointer {
    let list = rd_kafka_topic_partition_list_new(Int32(max(entries.count, 1)))!
    for (tp, offset) in entries {
        let element = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)!
        element.pointee.offset = offset
    }
    return list
}

/// One element of a partition list, copied out.
struct PartitionListEntry {
    var topicPartition: TopicPartition
    var offset: Int64
    var error: rd_kafka_resp_err_t
}

func readPartitionList(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [PartitionListEntry] {
    var entries: [PartitionListEntry] = []
    entries.reserveCapacity(Int(list.pointee.cnt))
    for index in 0..<Int(list.pointee.cnt) {
        let element = list.pointee.elems[index]
        entries.append(
            PartitionListEntry(
                topicPartition: TopicPartition(String(cString: element.topic), element.partition),
                offset: element.offset,
                error: element.err
            )
        )
    }
    return entries
}
