import Foundation
import H2GRPC
import OutliersProto
import SwiftProtobuf

/// Server reflection from the embedded descriptors, under both
/// `grpc.reflection.v1.ServerReflection` (grpcurl tries it first) and
/// `grpc.reflection.v1alpha.ServerReflection` (what grpcio-reflection speaks).
/// The two versions' messages are identical on the wire, so one implementation
/// with the v1 types serves both paths.
public final class ReflectionService: Sendable {
    public static let v1ServiceName = "grpc.reflection.v1.ServerReflection"
    public static let v1alphaServiceName = "grpc.reflection.v1alpha.ServerReflection"

    private let services: [String]
    /// File name → serialized FileDescriptorProto.
    private let files: [String: Data]
    /// File name → its direct dependencies.
    private let dependencies: [String: [String]]
    /// Fully-qualified symbol (message, enum, service, method, field) → file name.
    private let symbols: [String: String]

    /// `services`: the names listed by list_services.
    public init(services: [String], fileDescriptorSet: Data) throws {
        self.services = services.sorted()
        let set = try Google_Protobuf_FileDescriptorSet(serializedBytes: fileDescriptorSet)
        var files: [String: Data] = [:]
        var dependencies: [String: [String]] = [:]
        var symbols: [String: String] = [:]
        for file in set.file {
            files[file.name] = try file.serializedData()
            dependencies[file.name] = file.dependency
            let prefix = file.package.isEmpty ? "" : file.package + "."
            func addMessages(_ messages: [Google_Protobuf_DescriptorProto], scope: String) {
                for message in messages {
                    let name = scope + message.name
                    symbols[name] = file.name
                    for field in message.field { symbols[name + "." + field.name] = file.name }
                    for e in message.enumType { symbols[name + "." + e.name] = file.name }
                    addMessages(message.nestedType, scope: name + ".")
                }
            }
            addMessages(file.messageType, scope: prefix)
            for e in file.enumType { symbols[prefix + e.name] = file.name }
            for service in file.service {
                symbols[prefix + service.name] = file.name
                for method in service.method { symbols[prefix + service.name + "." + method.name] = file.name }
            }
        }
        self.files = files
        self.dependencies = dependencies
        self.symbols = symbols
    }

    /// The embedded descriptors of this package's protos.
    public convenience init(services: [String]) throws {
        guard let data = Data(base64Encoded: EmbeddedDescriptors.fileDescriptorSetBase64) else {
            throw RPCError(code: .internalError, message: "embedded descriptors are not valid base64")
        }
        try self.init(services: services, fileDescriptorSet: data)
    }

    public var handlers: [String: RPCHandler] {
        let handler = RPCHandler.streaming { [self] _, writer in ReflectionObserver(reflection: self, writer: writer) }
        return [
            MethodPath.reflectionV1: handler,
            MethodPath.reflectionV1Alpha: handler,
        ]
    }

    /// Answers one request message.
    func answer(_ bytes: [UInt8]) throws(RPCError) -> [UInt8] {
        let request = try Grpc_Reflection_V1_ServerReflectionRequest.decodedRequest(bytes)
        var response = Grpc_Reflection_V1_ServerReflectionResponse()
        response.validHost = request.host
        response.originalRequest = request
        switch request.messageRequest {
        case .fileByFilename(let name):
            if files[name] != nil {
                response.fileDescriptorResponse = fileResponse(for: name)
            } else {
                response.errorResponse = notFound("file not found: \(name)")
            }
        case .fileContainingSymbol(let symbol):
            let name = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
            if let file = symbols[name] {
                response.fileDescriptorResponse = fileResponse(for: file)
            } else {
                response.errorResponse = notFound("symbol not found: \(symbol)")
            }
        case .fileContainingExtension(let request):
            response.errorResponse = notFound("extension not found: \(request.containingType) \(request.extensionNumber)")
        case .allExtensionNumbersOfType(let type):
            if symbols[type] != nil {
                var numbers = Grpc_Reflection_V1_ExtensionNumberResponse()
                numbers.baseTypeName = type
                response.allExtensionNumbersResponse = numbers
            } else {
                response.errorResponse = notFound("type not found: \(type)")
            }
        case .listServices:
            var list = Grpc_Reflection_V1_ListServiceResponse()
            list.service = services.map { name in
                var service = Grpc_Reflection_V1_ServiceResponse()
                service.name = name
                return service
            }
            response.listServicesResponse = list
        case nil:
            response.errorResponse = Grpc_Reflection_V1_ErrorResponse.with {
                $0.errorCode = Int32(Status.Code.invalidArgument.rawValue)
                $0.errorMessage = "empty reflection request"
            }
        }
        return try response.serializedAnswer("reflection response")
    }

    /// The file and everything it imports, transitively, the file itself first.
    private func fileResponse(for name: String) -> Grpc_Reflection_V1_FileDescriptorResponse {
        var ordered: [String] = []
        var seen = Set<String>()
        var pending = [name]
        while let next = pending.first {
            pending.removeFirst()
            guard seen.insert(next).inserted, files[next] != nil else { continue }
            ordered.append(next)
            pending.append(contentsOf: dependencies[next] ?? [])
        }
        var response = Grpc_Reflection_V1_FileDescriptorResponse()
        response.fileDescriptorProto = ordered.compactMap { files[$0] }
        return response
    }

    private func notFound(_ message: String) -> Grpc_Reflection_V1_ErrorResponse {
        var error = Grpc_Reflection_V1_ErrorResponse()
        error.errorCode = Int32(Status.Code.notFound.rawValue)
        error.errorMessage = message
        return error
    }
}

private final class ReflectionObserver: ServerStreamObserver {
    let reflection: ReflectionService
    let writer: ServerStreamWriter

    init(reflection: ReflectionService, writer: ServerStreamWriter) {
        self.reflection = reflection
        self.writer = writer
    }

    func received(_ message: [UInt8]) {
        writer.send { () throws(RPCError) in try reflection.answer(message) }
    }

    func inputEnded() { writer.finish(.ok) }
    func cancelled() {}
}
