import Doorstep
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The sample dispatch document the Rust tests use too, read from the
/// repository (not copied) so the core and the shells test the same data.
enum Fixture {
    static let repoRoot = URL(fileURLWithPath: #filePath)  // ios/Tests/DoorstepTests/Support.swift
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static let mallPickupRunURL = repoRoot.appendingPathComponent("tests/scenarios/mall-pickup-run.json")

    /// 10 jobs from 3 stores, references HPM-2401 ... HPM-2410.
    static func mallPickupRun() throws -> String {
        try String(contentsOf: mallPickupRunURL, encoding: .utf8)
    }

    static let references = (2401...2410).map { "HPM-\($0)" }
}

/// Each test gets its own directory, so databases never leak between tests.
class DoorstepTestCase: XCTestCase {
    private(set) var directory: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("doorstep-swift-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
        try super.tearDownWithError()
    }

    func databaseURL(_ name: String = "driver.db") -> URL {
        directory.appendingPathComponent(name)
    }

    /// A session on a fresh database with the sample document imported.
    func sessionWithSample(file: StaticString = #filePath, line: UInt = #line) async throws -> (DriverSession, [UUID]) {
        let session = try DriverSession.open(at: databaseURL())
        let summary = try await session.importDocument(json: Fixture.mallPickupRun())
        XCTAssertEqual(summary.jobIds.count, 10, file: file, line: line)
        return (session, summary.jobIds)
    }
}

/// Runs `body` and returns the `DoorstepError` it threw; fails the test if it
/// returned normally or threw something else.
func doorstepError<T>(
    file: StaticString = #filePath, line: UInt = #line,
    _ body: () async throws -> T
) async -> DoorstepError? {
    do {
        let value = try await body()
        XCTFail("expected a DoorstepError, got \(value)", file: file, line: line)
    } catch let error as DoorstepError {
        return error
    } catch {
        XCTFail("expected a DoorstepError, got \(type(of: error)): \(error)", file: file, line: line)
    }
    return nil
}

/// The synchronous form of `doorstepError`, for tests that are not async.
func doorstepErrorSync<T>(file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T) -> DoorstepError? {
    do {
        let value = try body()
        XCTFail("expected a DoorstepError, got \(value)", file: file, line: line)
    } catch let error as DoorstepError {
        return error
    } catch {
        XCTFail("expected a DoorstepError, got \(type(of: error)): \(error)", file: file, line: line)
    }
    return nil
}

/// Polls `condition` until it holds or `timeout` passes; deliveries happen on
/// the core's thread, so tests wait for them rather than assume them.
@discardableResult
func eventually(
    timeout: TimeInterval = 10, file: StaticString = #filePath, line: UInt = #line,
    _ message: @autoclosure () -> String = "condition not met in time",
    _ condition: () throws -> Bool
) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        try? await Task.sleep(nanoseconds: 5_000_000)
    }
    if try condition() { return true }
    XCTFail(message(), file: file, line: line)
    return false
}

/// A thread-safe box for values written on the core's thread.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    var current: Value { withLock { $0 } }
}

/// Drains a stream on a background task so a test can wait for "n events"
/// (job events, sync statuses).
final class StreamRecorder<Element: Sendable>: Sendable {
    private let events = Locked<[Element]>([])
    private let finished = Locked(false)
    private let task = Locked<Task<Void, Never>?>(nil)

    init(_ stream: AsyncStream<Element>) {
        let events = self.events, finished = self.finished
        task.withLock {
            $0 = Task {
                for await event in stream { events.withLock { $0.append(event) } }
                finished.withLock { $0 = true }
            }
        }
    }

    var received: [Element] { events.current }
    var isFinished: Bool { finished.current }

    /// Waits until at least `count` events arrived and returns all received.
    func waitFor(_ count: Int, file: StaticString = #filePath, line: UInt = #line) async -> [Element] {
        await eventually(file: file, line: line, "expected \(count) events, got \(received.count)") {
            received.count >= count
        }
        return received
    }

    /// Waits until an element matching `condition` arrived and returns it
    /// (the first such), or nil after failing the test.
    func waitFor(
        _ what: String, timeout: TimeInterval = 10, file: StaticString = #filePath, line: UInt = #line,
        where condition: (Element) -> Bool
    ) async -> Element? {
        await eventually(timeout: timeout, file: file, line: line, "\(what); got \(received)") {
            received.contains(where: condition)
        }
        return received.first(where: condition)
    }

    /// Cancels the consuming task and waits until its loop has ended.
    func stop() async {
        guard let task = task.current else { return }
        task.cancel()
        await task.value
    }
}

/// A hand-written observer that records what it was called with and where,
/// and can be told to throw.
final class RecordingObserver: JobObserver, Sendable {
    struct Call {
        let event: JobEvent
        let thread: pthread_t
        let threadName: String
        let isMainThread: Bool
    }

    private let calls = Locked<[Call]>([])
    private let error: (any Error & Sendable)?

    init(throwing error: (any Error & Sendable)? = nil) {
        self.error = error
    }

    var received: [Call] { calls.current }

    func onJobChanged(event: JobEvent) throws {
        calls.withLock {
            $0.append(Call(event: event, thread: pthread_self(), threadName: currentThreadName(),
                           isMainThread: Thread.isMainThread))
        }
        if let error { throw error }
    }

    func waitFor(_ count: Int, file: StaticString = #filePath, line: UInt = #line) async -> [Call] {
        await eventually(file: file, line: line, "expected \(count) calls, got \(received.count)") {
            received.count >= count
        }
        return received
    }
}

/// For failure messages only: Foundation reports the OS thread name on Linux,
/// possibly nothing for threads it did not start on other platforms.
func currentThreadName() -> String {
    Thread.current.name ?? ""
}
