/// Flowmeter's version, reported by `flowmeter --version` and `flowmeter_build_info`.
public let flowmeterVersion = "0.1.0"
