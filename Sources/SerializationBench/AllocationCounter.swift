import Glibc
import Foundation
import Synchronization

/// Counts heap allocations (calls of malloc, calloc, realloc, posix_memalign,
/// aligned_alloc and memalign) made by the calling thread while a block runs.
///
/// Linux has no allocation counter (glibc's `mallinfo2()` reports bytes in use, not
/// calls, and its malloc hooks are gone since 2.34), so this interposes at run time:
/// for the block's duration it points the relocation slots through which every
/// loaded object (the executable, libswiftCore, Foundation, ICU, libstdc++, jansson,
/// libc itself…) calls those functions at counting wrappers that forward to glibc,
/// and puts the original addresses back afterwards. Only calls from the thread that
/// runs the block are counted, so other threads neither disturb nor are disturbed.
/// C++ `operator new` is counted through the malloc it calls.
///
/// Where this cannot work (not Linux on x86_64 or arm64, a statically linked
/// binary, no slot found), `count` returns nil and the report prints "n/a".
public enum AllocationCounter {
    /// Allocation calls made by this thread while `body` ran, or nil when they cannot be counted.
    public static func count(_ body: () throws -> Void) rethrows -> Int? {
        #if os(Linux) && (arch(x86_64) || arch(arm64))
        lock.lock()
        defer { lock.unlock() }
        // Initialise the global before any malloc can reach a wrapper (no lazy initialisation there).
        countingThread.store(0, ordering: .relaxed)
        let slots = Interposer.install()
        guard !slots.isEmpty else {
            try body()
            return nil
        }
        state.pointee.count = 0
        countingThread.store(UInt(pthread_self()), ordering: .relaxed)
        do {
            try body()
        } catch {
            countingThread.store(0, ordering: .relaxed)
            Interposer.restore(slots)
            throw error
        }
        countingThread.store(0, ordering: .relaxed)
        Interposer.restore(slots)
        return state.pointee.count
        #else
        try body()
        return nil
        #endif
    }

    /// Whether counting works in this process (a quick probe: one array allocation).
    public static var isAvailable: Bool {
        let counted = count {
            let array = [Int](repeating: 7, count: 64 + Int(pthread_self() & 1))
            blackHole(array)
        }
        return (counted ?? 0) > 0
    }

    private static let lock = NSLock()
}

#if os(Linux) && (arch(x86_64) || arch(arm64))

/// The wrappers' shared state, at a fixed address (no lazy initialisation, no
/// exclusivity bookkeeping inside malloc).
private struct CounterState {
    /// Only the counting thread touches it (see `countingThread`).
    var count = 0
    var malloc: (@convention(c) (Int) -> UnsafeMutableRawPointer?)?
    var calloc: (@convention(c) (Int, Int) -> UnsafeMutableRawPointer?)?
    var realloc: (@convention(c) (UnsafeMutableRawPointer?, Int) -> UnsafeMutableRawPointer?)?
    var posixMemalign: (@convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int, Int) -> Int32)?
    var alignedAlloc: (@convention(c) (Int, Int) -> UnsafeMutableRawPointer?)?
    var memalign: (@convention(c) (Int, Int) -> UnsafeMutableRawPointer?)?
}

private nonisolated(unsafe) let state: UnsafeMutablePointer<CounterState> = {
    let pointer = UnsafeMutablePointer<CounterState>.allocate(capacity: 1)
    pointer.initialize(to: CounterState())
    func real<F>(_ name: String, as type: F.Type) -> F? {
        // RTLD_DEFAULT (a null handle): the definition every object binds to, glibc's.
        guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(address, to: type)
    }
    pointer.pointee.malloc = real("malloc", as: (@convention(c) (Int) -> UnsafeMutableRawPointer?).self)
    pointer.pointee.calloc = real("calloc", as: (@convention(c) (Int, Int) -> UnsafeMutableRawPointer?).self)
    pointer.pointee.realloc = real("realloc", as: (@convention(c) (UnsafeMutableRawPointer?, Int) -> UnsafeMutableRawPointer?).self)
    pointer.pointee.posixMemalign = real("posix_memalign",
                                         as: (@convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int, Int) -> Int32).self)
    pointer.pointee.alignedAlloc = real("aligned_alloc", as: (@convention(c) (Int, Int) -> UnsafeMutableRawPointer?).self)
    pointer.pointee.memalign = real("memalign", as: (@convention(c) (Int, Int) -> UnsafeMutableRawPointer?).self)
    return pointer
}()

/// The thread whose allocations are counted (its pthread_t), 0 when none. Every thread
/// that allocates while the slots are patched reads it, so it is an atomic: as two plain
/// fields (a flag and a thread) it was a data race, reported by ThreadSanitizer from every
/// malloc of every other thread. Relaxed ordering is enough: only the counting thread can
/// match its own id, and it also wrote it, so `count` never leaves that thread.
private let countingThread = Atomic<UInt>(0)

@inline(__always)
private func noteAllocation() {
    if countingThread.load(ordering: .relaxed) == UInt(pthread_self()) {
        state.pointee.count &+= 1
    }
}

private let countingMalloc: @convention(c) (Int) -> UnsafeMutableRawPointer? = { size in
    noteAllocation()
    return state.pointee.malloc!(size)
}
private let countingCalloc: @convention(c) (Int, Int) -> UnsafeMutableRawPointer? = { count, size in
    noteAllocation()
    return state.pointee.calloc!(count, size)
}
private let countingRealloc: @convention(c) (UnsafeMutableRawPointer?, Int) -> UnsafeMutableRawPointer? = { pointer, size in
    noteAllocation()
    return state.pointee.realloc!(pointer, size)
}
private let countingPosixMemalign: @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int, Int) -> Int32 = {
    result, alignment, size in
    noteAllocation()
    return state.pointee.posixMemalign!(result, alignment, size)
}
private let countingAlignedAlloc: @convention(c) (Int, Int) -> UnsafeMutableRawPointer? = { alignment, size in
    noteAllocation()
    return state.pointee.alignedAlloc!(alignment, size)
}
private let countingMemalign: @convention(c) (Int, Int) -> UnsafeMutableRawPointer? = { alignment, size in
    noteAllocation()
    return state.pointee.memalign!(alignment, size)
}

/// One relocation slot pointed at a wrapper: where, what it held, how to protect it again.
private struct PatchedSlot {
    var address: UInt
    var original: UInt
    var protection: Int32
}

/// Finds and rewrites the relocation slots of the allocation functions in every loaded object.
private enum Interposer {
    #if arch(x86_64)
    static let absolute: UInt32 = 1     // R_X86_64_64
    static let globalData: UInt32 = 6   // R_X86_64_GLOB_DAT
    static let jumpSlot: UInt32 = 7     // R_X86_64_JUMP_SLOT
    #else
    static let absolute: UInt32 = 257   // R_AARCH64_ABS64
    static let globalData: UInt32 = 1025 // R_AARCH64_GLOB_DAT
    static let jumpSlot: UInt32 = 1026  // R_AARCH64_JUMP_SLOT
    #endif

    /// Name → (glibc's address, the wrapper's address).
    static func targets() -> [String: (real: UInt, wrapper: UInt)] {
        let current = state.pointee
        var result: [String: (real: UInt, wrapper: UInt)] = [:]
        func add<F>(_ name: String, _ real: F?, _ wrapper: F) {
            guard let real else { return }
            result[name] = (unsafeBitCast(real, to: UInt.self), unsafeBitCast(wrapper, to: UInt.self))
        }
        add("malloc", current.malloc, countingMalloc)
        add("calloc", current.calloc, countingCalloc)
        add("realloc", current.realloc, countingRealloc)
        add("posix_memalign", current.posixMemalign, countingPosixMemalign)
        add("aligned_alloc", current.alignedAlloc, countingAlignedAlloc)
        add("memalign", current.memalign, countingMemalign)
        return result
    }

    /// The loaded objects: load bias and program headers.
    struct LoadedObject {
        var name: String
        var base: UInt
        var headers: UnsafePointer<Elf64_Phdr>
        var headerCount: Int
    }

    /// The leading fields of glibc's `struct dl_phdr_info` (<link.h>, which the Glibc module does not import).
    struct PhdrInfo {
        var address: UInt
        var name: UnsafePointer<CChar>?
        var headers: UnsafePointer<Elf64_Phdr>?
        var headerCount: UInt16
    }

    typealias PhdrCallback = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeMutableRawPointer?) -> Int32
    typealias IteratePhdr = @convention(c) (PhdrCallback, UnsafeMutableRawPointer?) -> Int32

    static func loadedObjects() -> [LoadedObject] {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "dl_iterate_phdr") else { return [] }
        let iterate = unsafeBitCast(symbol, to: IteratePhdr.self)
        final class Box { var objects: [LoadedObject] = [] }
        let box = Box()
        withExtendedLifetime(box) {
            _ = iterate({ raw, _, context in
                guard let raw, let context else { return 0 }
                let info = raw.assumingMemoryBound(to: PhdrInfo.self).pointee
                guard let headers = info.headers else { return 0 }
                let box = Unmanaged<Box>.fromOpaque(context).takeUnretainedValue()
                let name = info.name.map { String(cString: $0) } ?? ""
                box.objects.append(LoadedObject(name: name, base: info.address, headers: headers,
                                                headerCount: Int(info.headerCount)))
                return 0
            }, Unmanaged.passUnretained(box).toOpaque())
        }
        return box.objects
    }

    /// Points every slot at its wrapper; returns what to put back.
    static func install() -> [PatchedSlot] {
        let targets = targets()
        guard !targets.isEmpty else { return [] }
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let mappings = Mappings.current()
        var patched: [PatchedSlot] = []
        for object in loadedObjects() {
            // The dynamic loader is left alone; so is the vDSO (no allocations there).
            if object.name.contains("ld-linux") || object.name.contains("linux-vdso") || object.name.contains("ld64.so") { continue }
            for slot in slots(of: object, targets: targets, mappings: mappings) {
                let page = slot.address & ~(pageSize - 1)
                guard mprotect(UnsafeMutableRawPointer(bitPattern: page), Int(pageSize), PROT_READ | PROT_WRITE) == 0 else { continue }
                let pointer = UnsafeMutablePointer<UInt>(bitPattern: slot.address)!
                patched.append(PatchedSlot(address: slot.address, original: pointer.pointee, protection: slot.protection))
                pointer.pointee = slot.wrapper
                if slot.protection != PROT_READ | PROT_WRITE {
                    mprotect(UnsafeMutableRawPointer(bitPattern: page), Int(pageSize), slot.protection)
                }
            }
        }
        return patched
    }

    static func restore(_ slots: [PatchedSlot]) {
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        for slot in slots.reversed() {
            let page = slot.address & ~(pageSize - 1)
            guard mprotect(UnsafeMutableRawPointer(bitPattern: page), Int(pageSize), PROT_READ | PROT_WRITE) == 0 else { continue }
            UnsafeMutablePointer<UInt>(bitPattern: slot.address)!.pointee = slot.original
            if slot.protection != PROT_READ | PROT_WRITE {
                mprotect(UnsafeMutableRawPointer(bitPattern: page), Int(pageSize), slot.protection)
            }
        }
    }

    struct Slot {
        var address: UInt
        var wrapper: UInt
        var protection: Int32
    }

    /// The slots of `object` that hold (or will hold) one of the target functions.
    static func slots(of object: LoadedObject, targets: [String: (real: UInt, wrapper: UInt)], mappings: Mappings) -> [Slot] {
        let headers = UnsafeBufferPointer(start: object.headers, count: object.headerCount)
        guard let dynamicHeader = headers.first(where: { $0.p_type == UInt32(PT_DYNAMIC) }) else { return [] }
        // glibc rebases the d_ptr entries in place; others leave them as offsets.
        func address(_ value: UInt64) -> UInt {
            UInt(value) < object.base ? object.base + UInt(value) : UInt(value)
        }
        var symbols: UInt = 0, strings: UInt = 0, stringsSize = 0
        var tables: [(UInt, Int)] = []
        var rela: UInt = 0, relaSize = 0, jumps: UInt = 0, jumpsSize = 0, jumpsKind: UInt64 = 0
        var entry = UnsafePointer<Elf64_Dyn>(bitPattern: object.base + UInt(dynamicHeader.p_vaddr))!
        while entry.pointee.d_tag != Int64(DT_NULL) {
            let value = entry.pointee.d_un.d_val
            switch entry.pointee.d_tag {
            case Int64(DT_SYMTAB): symbols = address(value)
            case Int64(DT_STRTAB): strings = address(value)
            case Int64(DT_STRSZ): stringsSize = Int(value)
            case Int64(DT_RELA): rela = address(value)
            case Int64(DT_RELASZ): relaSize = Int(value)
            case Int64(DT_JMPREL): jumps = address(value)
            case Int64(DT_PLTRELSZ): jumpsSize = Int(value)
            case Int64(DT_PLTREL): jumpsKind = value
            default: break
            }
            entry += 1
        }
        guard symbols != 0, strings != 0, stringsSize > 0 else { return [] }
        if rela != 0 && relaSize > 0 { tables.append((rela, relaSize)) }
        if jumps != 0 && jumpsSize > 0 && jumpsKind == UInt64(DT_RELA) { tables.append((jumps, jumpsSize)) }

        let names = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: strings), count: stringsSize)
        let symbolTable = UnsafePointer<Elf64_Sym>(bitPattern: symbols)!
        var found: [Slot] = []
        for (start, size) in tables {
            let relocations = UnsafeBufferPointer(start: UnsafePointer<Elf64_Rela>(bitPattern: start),
                                                  count: size / MemoryLayout<Elf64_Rela>.stride)
            for relocation in relocations {
                let kind = UInt32(truncatingIfNeeded: relocation.r_info)
                guard kind == absolute || kind == globalData || kind == jumpSlot else { continue }
                let symbolIndex = Int(relocation.r_info >> 32)
                guard symbolIndex != 0 else { continue }
                let nameOffset = Int(symbolTable[symbolIndex].st_name)
                guard nameOffset < stringsSize, let name = cString(names, at: nameOffset),
                      let target = targets[name] else { continue }
                let slot = object.base + UInt(relocation.r_offset)
                guard slot % UInt(MemoryLayout<UInt>.alignment) == 0, let slotProtection = mappings.protection(of: slot) else { continue }
                let current = UnsafePointer<UInt>(bitPattern: slot)!.pointee
                // A data word (a library's default allocator pointer) only when it is
                // exactly the function; a GOT entry also when still lazily unbound.
                if kind == absolute && (relocation.r_addend != 0 || current != target.real) { continue }
                if current == target.wrapper { continue }
                found.append(Slot(address: slot, wrapper: target.wrapper, protection: slotProtection))
            }
        }
        return found
    }

    /// The process's memory map (/proc/self/maps): the protection each slot's page
    /// has now, to put back after writing (RELRO pages are read-only, but the last,
    /// partial page of a RELRO range stays writable, so the ELF headers alone would mislead).
    struct Mappings {
        var ranges: [(range: Range<UInt>, protection: Int32)]

        static func current() -> Mappings {
            let text = readTextFile("/proc/self/maps")
            var ranges: [(range: Range<UInt>, protection: Int32)] = []
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ", maxSplits: 2)
                guard fields.count >= 2 else { continue }
                let bounds = fields[0].split(separator: "-")
                guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16),
                      start < end else { continue }
                let permissions = Array(fields[1].utf8)
                guard permissions.count >= 3 else { continue }
                var protection: Int32 = 0
                if permissions[0] == UInt8(ascii: "r") { protection |= PROT_READ }
                if permissions[1] == UInt8(ascii: "w") { protection |= PROT_WRITE }
                if permissions[2] == UInt8(ascii: "x") { protection |= PROT_EXEC }
                ranges.append((start..<end, protection))
            }
            return Mappings(ranges: ranges)
        }

        /// The protection of the mapping holding `address`; nil when unmapped or unreadable.
        func protection(of address: UInt) -> Int32? {
            guard let mapping = ranges.first(where: { $0.range.contains(address) }),
                  mapping.protection & PROT_READ != 0 else { return nil }
            return mapping.protection
        }
    }

    /// The NUL-terminated name at `offset` in the string table, if it is short enough to be a target.
    static func cString(_ table: UnsafeRawBufferPointer, at offset: Int) -> String? {
        var end = offset
        while end < table.count && table[end] != 0 {
            end += 1
            if end - offset > 16 { return nil }
        }
        guard end < table.count, end > offset else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: table[offset..<end]), as: UTF8.self)
    }
}
#endif

/// Keeps a value alive and opaque to the optimizer, so timed work is not removed.
@inline(never) @_optimize(none)
public func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}
