internal import CLibPQ

/// The libpq version this process is linked against, as `PQlibVersion()` reports it (e.g. 150018).
public var libpqVersion: Int { Int(PQlibVersion()) }
