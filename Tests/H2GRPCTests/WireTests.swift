import Testing
@testable import H2GRPC
