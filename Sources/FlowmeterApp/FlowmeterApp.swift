public import FlowmeterCore
