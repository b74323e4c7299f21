import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if !os(Windows)
/// A small key-value store over TCP for rendezvous (`torch.distributed.TCPStore`): one
/// process (usually rank 0) serves, every process is a client. Ranks exchange what they
/// need before a communicator exists (NCCL's unique id, addresses, "I have joined").
/// Every blocking call honours the store's timeout and then throws.
///
///     let store = try TCPStore(host: "127.0.0.1", port: 29500, isServer: rank == 0, timeout: 30)
///     try store.set("id", bytes)
///     let id = try store.get("id")              // waits until some rank sets it
///     let joined = try store.add("joined", 1)   // atomic counter
public final class TCPStore: @unchecked Sendable {
    public let host: String
    public private(set) var port: Int
    public var timeout: Double
    private var server: Server?
    private let fd: Int32
    private let lock = NSLock()

    /// Connects to the store at `host:port`, first starting it in this process when
    /// `isServer` (port 0 picks a free port; read `port` afterwards).
    public init(host: String = "127.0.0.1", port: Int, isServer: Bool, timeout: Double = 300) throws {
        self.host = host
        self.port = port
        self.timeout = timeout
        if isServer {
            let s = try Server(port: port)
            server = s
            self.port = s.port
        }
        fd = try TCPStore.connect(host: host, port: self.port, timeout: timeout)
    }

    /// The store described by `MASTER_ADDR` / `MASTER_PORT`; rank `RANK` 0 serves it.
    public static func fromEnvironment(timeout: Double = 300) throws -> TCPStore {
        let env = ProcessInfo.processInfo.environment
        guard let portText = env["MASTER_PORT"], let port = Int(portText) else {
            throw DistributedError.rendezvous("MASTER_PORT is not set (and MASTER_ADDR, RANK, WORLD_SIZE): set them or start the job with ember launch")
        }
        let rank = env["RANK"].flatMap(Int.init) ?? 0
        return try TCPStore(host: env["MASTER_ADDR"] ?? "127.0.0.1", port: port, isServer: rank == 0, timeout: timeout)
    }

    deinit {
        close(fd)
        server?.stop()
    }

    // MARK: - Operations

    public func set(_ key: String, _ value: [UInt8]) throws {
        _ = try request(.set, key, value)
    }

    /// The value of `key`, waiting until some process sets it (at most `timeout`).
    public func get(_ key: String) throws -> [UInt8] {
        try request(.get, key, [])
    }

    /// Adds `amount` to the integer at `key` (0 when absent) and returns the new value.
    @discardableResult
    public func add(_ key: String, _ amount: Int64) throws -> Int64 {
        var a = amount.littleEndian
        let r = try request(.add, key, withUnsafeBytes(of: &a) { Array($0) })
        return r.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
    }

    /// Waits until every key exists (at most `timeout`).
    public func wait(_ keys: [String]) throws {
        for k in keys { _ = try get(k) }
    }

    /// Whether `key` exists now (no waiting).
    public func check(_ key: String) throws -> Bool {
        try request(.check, key, []) == [1]
    }

    /// Removes `key`; returns whether it existed.
    @discardableResult
    public func delete(_ key: String) throws -> Bool {
        try request(.delete, key, []) == [1]
    }

    /// Every process calls it with the same `worldSize`: returns when all have arrived, or
    /// throws naming how many did (`timeout`).
    public func barrier(_ name: String = "barrier", worldSize: Int) throws {
        let arrived = try add("\(name)/count", 1)
        if arrived == Int64(worldSize) { try set("\(name)/done", [1]) }
        do {
            _ = try get("\(name)/done")
        } catch DistributedError.timeout {
            let n = (try? add("\(name)/count", 0)) ?? -1
            throw DistributedError.timeout("store barrier '\(name)': \(n) of \(worldSize) processes arrived within \(timeout) s")
        }
    }

    // MARK: - Wire protocol: [op u8][key len u32][key][value len u32][value] → [status u8][len u32][bytes]

    enum Op: UInt8 { case set = 1, get, add, check, delete }

    private func request(_ op: Op, _ key: String, _ value: [UInt8]) throws -> [UInt8] {
        lock.lock(); defer { lock.unlock() }
        var msg: [UInt8] = [op.rawValue]
        let k = Array(key.utf8)
        TCPStore.append(&msg, UInt32(k.count)); msg += k
        TCPStore.append(&msg, UInt32(value.count)); msg += value
        // The wait limit travels with a get, so that the server answers "timeout" itself.
        TCPStore.append(&msg, UInt32(min(timeout * 1000, Double(UInt32.max))))
        try TCPStore.sendAll(fd, msg, what: "store \(op) '\(key)'")
        let head = try TCPStore.recvAll(fd, 5, deadline: Date().addingTimeInterval(timeout + 5), what: "store \(op) '\(key)'")
        let n = Int(UInt32(head[1]) | UInt32(head[2]) << 8 | UInt32(head[3]) << 16 | UInt32(head[4]) << 24)
        let body = try TCPStore.recvAll(fd, n, deadline: Date().addingTimeInterval(timeout + 5), what: "store \(op) '\(key)'")
        switch head[0] {
        case 0: return body
        case 2: throw DistributedError.timeout("store \(op) '\(key)': the key was not set within \(timeout) s")
        default: throw DistributedError.rendezvous("store \(op) '\(key)': \(String(decoding: body, as: UTF8.self))")
        }
    }

    static func append(_ a: inout [UInt8], _ v: UInt32) {
        a += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff), UInt8((v >> 16) & 0xff), UInt8(v >> 24)]
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8], what: String) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { p in
                #if canImport(Darwin)
                Darwin.send(fd, p.baseAddress! + sent, p.count - sent, 0)
                #else
                Glibc.send(fd, p.baseAddress! + sent, p.count - sent, Int32(MSG_NOSIGNAL))
                #endif
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw DistributedError.rendezvous("\(what): the store connection failed (\(String(cString: strerror(errno))))") }
            sent += n
        }
    }

    static func recvAll(_ fd: Int32, _ count: Int, deadline: Date?, what: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            if let deadline {
                let ms = Int32(max(0, min(deadline.timeIntervalSinceNow * 1000, 60_000)))
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let r = poll(&pfd, 1, ms)
                if r < 0 && errno == EINTR { continue }
                if r == 0 {
                    if Date() >= deadline { throw DistributedError.timeout("\(what): no answer from the store before the deadline") }
                    continue
                }
            }
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw DistributedError.rendezvous("\(what): the store closed the connection") }
            got += n
        }
        return out
    }

    static func connect(host: String, port: Int, timeout: Double) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        var lastError = ""
        repeat {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            #if canImport(Darwin)
            hints.ai_socktype = SOCK_STREAM
            #else
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            #endif
            var res: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &res)
            if rc != 0 {
                lastError = String(cString: gai_strerror(rc))
            } else {
                defer { freeaddrinfo(res) }
                var ai = res
                while let a = ai {
                    let s = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
                    if s >= 0 {
                        if Glibc_connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 {
                            var one: Int32 = 1
                            setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                            return s
                        }
                        lastError = String(cString: strerror(errno))
                        close(s)
                    }
                    ai = a.pointee.ai_next
                }
            }
            usleep(100_000)  // the server may not be up yet
        } while Date() < deadline
        throw DistributedError.rendezvous("could not reach the store at \(host):\(port) within \(timeout) s (\(lastError)); is MASTER_ADDR/MASTER_PORT right and rank 0 running?")
    }

    // MARK: - Server

    final class Server: @unchecked Sendable {
        let listenFD: Int32
        let port: Int
        private let cond = NSCondition()
        private var data: [String: [UInt8]] = [:]
        private var stopped = false

        init(port: Int) throws {
            let s = socket(AF_INET, Int32(SOCK_STREAM_VALUE), 0)
            guard s >= 0 else { throw DistributedError.rendezvous("store: socket() failed: \(String(cString: strerror(errno)))") }
            var one: Int32 = 1
            setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = INADDR_ANY
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard rc == 0, listen(s, 128) == 0 else {
                let e = String(cString: strerror(errno))
                close(s)
                throw DistributedError.rendezvous("store: cannot listen on port \(port): \(e) (another job may be using MASTER_PORT)")
            }
            var bound = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
            listenFD = s
            self.port = Int(UInt16(bigEndian: bound.sin_port))
            let t = Thread { [self] in self.acceptLoop() }  // the thread keeps the server until accept fails after stop()
            t.name = "ember-store"
            t.start()
        }

        func stop() {
            cond.lock(); stopped = true; cond.broadcast(); cond.unlock()
            shutdown(listenFD, Int32(SHUT_RDWR_VALUE))
            close(listenFD)
        }

        private func acceptLoop() {
            while true {
                let c = accept(listenFD, nil, nil)
                if c < 0 {
                    if errno == EINTR { continue }
                    return
                }
                var one: Int32 = 1
                setsockopt(c, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                let t = Thread { [self] in self.serve(c) }
                t.start()
            }
        }

        private func u32(_ b: [UInt8]) -> Int {
            Int(UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24)
        }

        private func serve(_ c: Int32) {
            defer { close(c) }
            while true {
                guard let op = try? TCPStore.recvAll(c, 1, deadline: nil, what: "store"),
                      let kl = try? TCPStore.recvAll(c, 4, deadline: nil, what: "store"),
                      let key = try? TCPStore.recvAll(c, u32(kl), deadline: nil, what: "store"),
                      let vl = try? TCPStore.recvAll(c, 4, deadline: nil, what: "store"),
                      let value = try? TCPStore.recvAll(c, u32(vl), deadline: nil, what: "store"),
                      let wait = try? TCPStore.recvAll(c, 4, deadline: nil, what: "store") else { return }
                let k = String(decoding: key, as: UTF8.self)
                var status: UInt8 = 0
                var reply: [UInt8] = []
                cond.lock()
                switch Op(rawValue: op[0]) {
                case .set?:
                    data[k] = value
                    cond.broadcast()
                case .get?:
                    let deadline = Date().addingTimeInterval(Double(u32(wait)) / 1000)
                    while data[k] == nil && !stopped && cond.wait(until: deadline) {}
                    if let v = data[k] { reply = v } else { status = 2 }
                case .add?:
                    let old = data[k].map { $0.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) } } ?? 0
                    let inc = value.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
                    var new = (old &+ inc).littleEndian
                    reply = withUnsafeBytes(of: &new) { Array($0) }
                    data[k] = reply
                    cond.broadcast()
                case .check?:
                    reply = [data[k] == nil ? 0 : 1]
                case .delete?:
                    reply = [data.removeValue(forKey: k) == nil ? 0 : 1]
                case nil:
                    status = 1
                    reply = Array("unknown operation \(op[0])".utf8)
                }
                cond.unlock()
                var msg: [UInt8] = [status]
                TCPStore.append(&msg, UInt32(reply.count))
                msg += reply
                guard (try? TCPStore.sendAll(c, msg, what: "store")) != nil else { return }
            }
        }
    }
}

#if canImport(Darwin)
private let SOCK_STREAM_VALUE = SOCK_STREAM
private let SHUT_RDWR_VALUE = SHUT_RDWR
private func Glibc_connect(_ s: Int32, _ a: UnsafeMutablePointer<sockaddr>!, _ l: socklen_t) -> Int32 { Darwin.connect(s, a, l) }
#else
private let SOCK_STREAM_VALUE = SOCK_STREAM.rawValue
private let SHUT_RDWR_VALUE = SHUT_RDWR
private func Glibc_connect(_ s: Int32, _ a: UnsafeMutablePointer<sockaddr>!, _ l: socklen_t) -> Int32 { Glibc.connect(s, a, l) }
#endif
#endif
