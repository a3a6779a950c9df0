import Testing
@testable import OutliersJSON
