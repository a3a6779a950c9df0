import Testing
@testable import OutliersService
