import Doorstep
import Foundation
import XCTest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Sync with the reference dispatch server that tests/swift.sh started
/// (`DOORSTEP_DISPATCH_URL`), through the generated bindings and the Swift
/// shell, with a token provider written in Swift.
///
/// One server serves every test, so each test makes its own driver and its
/// own copy of the sample day (fresh job ids), and steps sync with
/// `syncNow()` except where the background loop is the point.
final class SyncTests: DoorstepTestCase {
    /// A driver with a token and the sample day assigned on the server.
    struct World {
        let driverId: String
        let token: String
        /// The day's jobs as dispatch created them, in document order.
        let jobIds: [UUID]
    }

    func makeWorld(file: StaticString = #filePath, line: UInt = #line) async throws -> World {
        let driverId = "swift-" + UUID().uuidString.prefix(13).lowercased()
        let token = try await Dispatch.issueToken(driverId: driverId)
        let jobIds = try await Dispatch.assignJobs(driverId: driverId, document: Fixture.freshMallPickupRun())
        XCTAssertEqual(jobIds.count, 10, file: file, line: line)
        return World(driverId: driverId, token: token, jobIds: jobIds)
    }

    private var opened = 0

    /// A session on a fresh database, syncing with the server.
    func syncingSession(_ tokens: TokenProvider, automatic: Bool = false) throws -> DriverSession {
        opened += 1
        let session = try DriverSession.open(at: databaseURL("driver-\(opened).db"))
        var config = defaultSyncConfig(baseUrl: try Dispatch.baseURL())
        config.automatic = automatic
        config.backoffBase = 0.02
        config.backoffMax = 1
        config.requestTimeout = 5
        try session.startSync(config: config, tokens: tokens)
        return session
    }

    func testAFirstSyncBringsTheDaysJobs() async throws {
        let world = try await makeWorld()
        let session = try syncingSession(ServerTokens(driverId: world.driverId, token: world.token))
        defer { session.stopSync() }
        XCTAssertEqual(try session.jobs(), [])

        let report = try await session.syncNow()
        XCTAssertEqual(report.jobsReceived, 10)
        XCTAssertEqual(report.sent, 0)
        XCTAssertEqual(report.pending, 0)
        let jobs = try session.jobs()
        XCTAssertEqual(Set(jobs.map(\.id)), Set(world.jobIds))
        XCTAssertEqual(Set(jobs.map(\.reference)), Set(Fixture.references))
        XCTAssertTrue(jobs.allSatisfy { $0.state == .assigned })
        let status = try session.syncStatus()
        XCTAssertNotNil(status.lastSuccessAt)
        XCTAssertNil(status.lastError)

        // Nothing changed on the server: the next pull brings nothing.
        let again = try await session.syncNow()
        XCTAssertEqual(again.jobsReceived, 0)
    }

    func testAnActionReachesDispatchExactlyOnceAndIsAcknowledged() async throws {
        let world = try await makeWorld()
        let session = try syncingSession(ServerTokens(driverId: world.driverId, token: world.token))
        defer { session.stopSync() }
        _ = try await session.syncNow()
        let job = world.jobIds[0]
        _ = try await session.apply(jobId: job, transition: .accept)
        _ = try await session.apply(jobId: job, transition: .arriveAtPickup)
        _ = try await session.apply(jobId: job, transition: .confirmPickup)
        let queued = try session.outbox()
        XCTAssertEqual(queued.count, 3)
        XCTAssertTrue(queued.allSatisfy { $0.jobId == job && $0.status == .pending })
        let before = try await Dispatch.job(job).state
        XCTAssertEqual(before, "assigned", "nothing is sent before a sync")

        let report = try await session.syncNow()
        XCTAssertEqual(report, SyncReport(sent: 3, acknowledged: 3, conflicts: 0, rejected: 0, jobsReceived: report.jobsReceived,
                                          pending: 0, wedged: 0))
        XCTAssertEqual(try session.outbox(), [])

        let after = try await Dispatch.job(job).state
        XCTAssertEqual(after, "picked_up")
        let processed = try await Dispatch.processed(clientId: session.clientId())
        XCTAssertEqual(processed.map(\.mutationId), queued.map(\.mutationId))
        XCTAssertEqual(processed.map(\.action), ["accept", "arrive_at_pickup", "confirm_pickup"])
        XCTAssertEqual(processed.map(\.outcome), ["applied", "applied", "applied"])
        XCTAssertEqual(processed.map(\.jobId), [job, job, job])

        // Another round sends nothing again.
        let again = try await session.syncNow()
        XCTAssertEqual(again.sent, 0)
        let processedAgain = try await Dispatch.processed(clientId: session.clientId())
        XCTAssertEqual(processedAgain.count, 3)
    }

    func testOfflineActionsWaitAndGoByThemselvesWhenTheNetworkReturns() async throws {
        let world = try await makeWorld()
        let session = try syncingSession(ServerTokens(driverId: world.driverId, token: world.token), automatic: true)
        defer { session.stopSync() }
        // The background loop brings the day without being asked.
        try await eventually("the first automatic sync") { try session.jobs().count == 10 }
        let job = world.jobIds[1]

        session.setOnline(online: false)
        XCTAssertFalse(try session.syncStatus().online)
        let accepted = try await session.apply(jobId: job, transition: .accept)
        XCTAssertEqual(accepted.state, .accepted, "the driver sees the action at once")
        let error = await doorstepError { try await session.syncNow() }
        XCTAssertEqual(error, .Offline)
        let queued = try session.outbox()
        XCTAssertEqual(queued.count, 1)
        XCTAssertEqual(queued.first?.status, .pending)
        XCTAssertEqual(queued.first?.body, .action(transition: .accept, record: nil))
        XCTAssertEqual(try session.syncStatus().pending, 1)
        let offlineState = try await Dispatch.job(job).state
        XCTAssertEqual(offlineState, "assigned")

        // Back online: no syncNow, the loop sends it.
        let statuses = StreamRecorder(session.syncStatusUpdates())
        defer { Task { await statuses.stop() } }
        session.setOnline(online: true)
        let drained = await statuses.waitFor("a drained queue", timeout: 15) { $0.online && $0.pending == 0 && !$0.syncing }
        XCTAssertNil(drained?.lastError)
        XCTAssertEqual(try session.outbox(), [])
        let onlineState = try await Dispatch.job(job).state
        XCTAssertEqual(onlineState, "accepted")
        let processed = try await Dispatch.processed(clientId: session.clientId())
        XCTAssertEqual(processed.map(\.action), ["accept"])
    }

    func testSyncStatusUpdatesReportTheQueueAndTheLastSuccess() async throws {
        let world = try await makeWorld()
        let session = try syncingSession(ServerTokens(driverId: world.driverId, token: world.token))
        defer { session.stopSync() }
        _ = try await session.syncNow()
        let firstSuccess = try XCTUnwrap(try session.syncStatus().lastSuccessAt)
        _ = try await session.apply(jobId: world.jobIds[2], transition: .accept)

        let statuses = StreamRecorder(session.syncStatusUpdates())
        defer { Task { await statuses.stop() } }
        // The current status comes first; wait for it before changing anything.
        let current = await statuses.waitFor(1)
        XCTAssertEqual(current.first?.pending, 1)
        XCTAssertEqual(current.first?.lastSuccessAt, firstSuccess)

        let report = try await session.syncNow()
        XCTAssertEqual(report.acknowledged, 1)
        let after = await statuses.waitFor("a status after the sync") {
            $0.pending == 0 && ($0.lastSuccessAt.map { $0 > firstSuccess } ?? false)
        }
        XCTAssertNotNil(after)
        // The newest status is always delivered: it is the session's status now.
        try await eventually("the stream catches up") { try statuses.received.last == session.syncStatus() }
        let last = try XCTUnwrap(statuses.received.last)
        XCTAssertEqual(last.pending, 0)
        XCTAssertEqual(last.wedged, 0)
        XCTAssertTrue(last.online)
        XCTAssertFalse(last.syncing)
        XCTAssertNil(last.lastError)

        // The stream ends with its consumer; the session keeps working.
        await statuses.stop()
        XCTAssertEqual(try session.syncStatus().pending, 0)
    }

    func testARevokedTokenIsRefreshedOnceByTheSwiftTokenProvider() async throws {
        let world = try await makeWorld()
        let tokens = ServerTokens(driverId: world.driverId, token: world.token)
        let session = try syncingSession(tokens)
        defer { session.stopSync() }
        _ = try await session.syncNow()
        XCTAssertEqual(tokens.refreshes, 0)

        _ = try await session.apply(jobId: world.jobIds[3], transition: .accept)
        try await Dispatch.revokeToken(world.token)
        // Both requests of the round (push, then pull) need the new token.
        let report = try await session.syncNow()
        XCTAssertEqual(report.acknowledged, 1)
        XCTAssertEqual(tokens.refreshes, 1)
        XCTAssertNotEqual(tokens.current, world.token)
        let state = try await Dispatch.job(world.jobIds[3]).state
        XCTAssertEqual(state, "accepted")

        // The fresh token keeps working.
        _ = try await session.syncNow()
        XCTAssertEqual(tokens.refreshes, 1)
    }

    func testARefreshThatThrowsIsUnauthorizedAndTheActionWaits() async throws {
        let world = try await makeWorld()
        let tokens = FailingRefresh(token: world.token)
        let session = try syncingSession(tokens)
        defer { session.stopSync() }
        _ = try await session.syncNow()
        _ = try await session.apply(jobId: world.jobIds[4], transition: .accept)
        try await Dispatch.revokeToken(world.token)

        let error = await doorstepError { try await session.syncNow() }
        guard case let .Unauthorized(reason)? = error else {
            return XCTFail("expected Unauthorized, got \(String(describing: error))")
        }
        XCTAssertTrue(reason.contains("refresh token expired"), reason)
        XCTAssertEqual(tokens.refreshes, 1)
        let queued = try session.outbox()
        XCTAssertEqual(queued.map(\.status), [.pending], "an auth failure must not wedge the action")
        XCTAssertNotNil(try session.syncStatus().lastError)
        let state = try await Dispatch.job(world.jobIds[4]).state
        XCTAssertEqual(state, "assigned")

        // The driver signs in again: the action goes.
        tokens.current = try await Dispatch.issueToken(driverId: world.driverId)
        let report = try await session.syncNow()
        XCTAssertEqual(report.acknowledged, 1)
        let stateAfter = try await Dispatch.job(world.jobIds[4]).state
        XCTAssertEqual(stateAfter, "accepted")
        XCTAssertNil(try session.syncStatus().lastError)
    }

    func testARefreshedTokenThatDispatchRefusesTooIsUnauthorized() async throws {
        let world = try await makeWorld()
        let stale = try await Dispatch.issueToken(driverId: world.driverId)
        try await Dispatch.revokeToken(stale)
        let tokens = FixedTokens(stale)
        let session = try syncingSession(tokens)
        defer { session.stopSync() }

        let error = await doorstepError { try await session.syncNow() }
        guard case let .Unauthorized(reason)? = error else {
            return XCTFail("expected Unauthorized, got \(String(describing: error))")
        }
        XCTAssertTrue(reason.hasPrefix("401"), reason)
        XCTAssertEqual(tokens.refreshes, 1, "one refresh per request, not a loop")
        XCTAssertEqual(try session.jobs(), [])
    }

    func testAJobCancelledAfterAnOfflinePickupShowsAConflict() async throws {
        let world = try await makeWorld()
        let session = try syncingSession(ServerTokens(driverId: world.driverId, token: world.token))
        defer { session.stopSync() }
        _ = try await session.syncNow()
        let job = world.jobIds[5]
        _ = try await session.apply(jobId: job, transition: .accept)
        let accepted = try await session.syncNow()
        XCTAssertEqual(accepted.acknowledged, 1)

        session.setOnline(online: false)
        _ = try await session.apply(jobId: job, transition: .arriveAtPickup)
        _ = try await session.apply(jobId: job, transition: .confirmPickup)
        try await Dispatch.cancelJob(job)
        session.setOnline(online: true)
        let report = try await session.syncNow()
        XCTAssertEqual(report.sent, 2)
        XCTAssertEqual(report.conflicts, 2)
        XCTAssertEqual(report.pending, 0)

        let local = try session.job(jobId: job)
        XCTAssertEqual(local.state, .pickedUp, "the driver's facts stay")
        let conflict = try XCTUnwrap(local.conflict, "the job shows no conflict")
        XCTAssertEqual(conflict.kind, .cancelled)
        XCTAssertEqual(conflict.nextStep, .returnToStore)
        let server = try await Dispatch.job(job)
        XCTAssertEqual(server.status, "cancelled")
        XCTAssertEqual(server.conflicts.count, 2, "recorded on the server too")

        // The next step: the packages go back, and dispatch hears of it.
        _ = try await session.apply(jobId: job, transition: .startReturn)
        _ = try await session.apply(jobId: job, transition: .completeReturn)
        _ = try await session.syncNow()
        XCTAssertEqual(try session.job(jobId: job).state, .returned)
        XCTAssertEqual(try session.syncStatus().pending, 0)
        let serverAfter = try await Dispatch.job(job)
        XCTAssertEqual(serverAfter.conflicts.count, 4)
    }
}

// MARK: - Token providers, as a shell writes them

/// The driver's token as an app keeps it: the current one, and a refresh that
/// asks dispatch for a new one (here, the reference server's admin API). The
/// core calls it on its own background threads, where blocking is allowed.
final class ServerTokens: TokenProvider {
    private let driverId: String
    private let state: Locked<(current: String, refreshes: Int)>

    init(driverId: String, token: String) {
        self.driverId = driverId
        self.state = Locked((current: token, refreshes: 0))
    }

    var current: String { state.current.current }
    var refreshes: Int { state.current.refreshes }

    func accessToken() throws -> String { current }

    func refreshToken() throws -> String {
        let fresh = try Dispatch.issueTokenBlocking(driverId: driverId)
        state.withLock { $0 = (current: fresh, refreshes: $0.refreshes + 1) }
        return fresh
    }
}

/// A provider whose refresh fails: the driver's sign-in has expired.
final class FailingRefresh: TokenProvider {
    private let token: Locked<String>
    private let count = Locked(0)

    init(token: String) { self.token = Locked(token) }

    var current: String {
        get { token.current }
        set { token.withLock { $0 = newValue } }
    }
    var refreshes: Int { count.current }

    func accessToken() throws -> String { current }

    func refreshToken() throws -> String {
        count.withLock { $0 += 1 }
        throw DoorstepError.Unauthorized(reason: "refresh token expired; the driver must sign in")
    }
}

/// A provider that always hands out the same token, refreshed or not.
final class FixedTokens: TokenProvider {
    private let token: String
    private let count = Locked(0)

    init(_ token: String) { self.token = token }

    var refreshes: Int { count.current }

    func accessToken() throws -> String { token }

    func refreshToken() throws -> String {
        count.withLock { $0 += 1 }
        return token
    }
}

// MARK: - The reference server's admin API

/// `/admin` of the reference dispatch server (docs/dispatch-api.yaml).
enum Dispatch {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct AdminJob: Decodable, Sendable {
        struct Conflict: Decodable, Sendable {
            let mutationId: UInt64
            let action: String
            let serverStatus: String
        }
        let driverId: String
        let status: String
        let state: String
        let revision: UInt64
        let conflicts: [Conflict]
    }

    struct Processed: Decodable, Sendable {
        let mutationId: UInt64
        let jobId: UUID
        let action: String
        let outcome: String
    }

    private struct AdminClient: Decodable { let processed: [Processed] }
    private struct IssuedToken: Decodable { let token: String }
    private struct AssignedJobs: Decodable { let jobIds: [UUID] }

    static func baseURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["DOORSTEP_DISPATCH_URL"], !url.isEmpty else {
            throw Failure(description: "DOORSTEP_DISPATCH_URL is not set; run the tests through tests/swift.sh")
        }
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    static func issueToken(driverId: String) async throws -> String {
        try decode(IssuedToken.self, await call("POST", "/admin/drivers/\(driverId)/tokens", expect: 201)).token
    }

    /// For token providers: the core calls them on its own threads, synchronously.
    static func issueTokenBlocking(driverId: String) throws -> String {
        try decode(IssuedToken.self, callBlocking("POST", "/admin/drivers/\(driverId)/tokens", expect: 201)).token
    }

    static func revokeToken(_ token: String) async throws {
        _ = try await call("DELETE", "/admin/tokens/\(token)", expect: 204)
    }

    /// Creates the document's jobs for the driver; their ids, in document order.
    static func assignJobs(driverId: String, document: String) async throws -> [UUID] {
        let body = Data(#"{"driver_id":"\#(driverId)","document":\#(document)}"#.utf8)
        return try decode(AssignedJobs.self, await call("POST", "/admin/jobs", body: body, expect: 201)).jobIds
    }

    static func cancelJob(_ jobId: UUID) async throws {
        _ = try await call("POST", "/admin/jobs/\(jobId.uuidString.lowercased())/cancel", expect: 200)
    }

    static func job(_ jobId: UUID) async throws -> AdminJob {
        try decode(AdminJob.self, await call("GET", "/admin/jobs/\(jobId.uuidString.lowercased())", expect: 200))
    }

    static func processed(clientId: UUID) async throws -> [Processed] {
        try decode(AdminClient.self, await call("GET", "/admin/clients/\(clientId.uuidString.lowercased())", expect: 200))
            .processed
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(type, from: data)
    }

    private static func request(_ method: String, _ path: String, body: Data?) throws -> URLRequest {
        guard let url = URL(string: try baseURL() + path) else { throw Failure(description: "bad URL for \(path)") }
        var request = URLRequest(url: url, timeoutInterval: 10)
        request.httpMethod = method
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        return request
    }

    private static func check(
        _ method: String, _ path: String, expect: Int, data: Data?, response: URLResponse?, error: Error?
    ) -> Result<Data, Error> {
        if let error { return .failure(Failure(description: "\(method) \(path): \(error)")) }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let data = data ?? Data()
        guard status == expect else {
            let text = String(decoding: data, as: UTF8.self)
            return .failure(Failure(description: "\(method) \(path): expected HTTP \(expect), got \(status): \(text)"))
        }
        return .success(data)
    }

    static func call(_ method: String, _ path: String, body: Data? = nil, expect: Int) async throws -> Data {
        let request = try request(method, path, body: body)
        return try await withCheckedThrowingContinuation { continuation in
            URLSession.shared.dataTask(with: request) { data, response, error in
                continuation.resume(with: check(method, path, expect: expect, data: data, response: response, error: error))
            }.resume()
        }
    }

    static func callBlocking(_ method: String, _ path: String, body: Data? = nil, expect: Int) throws -> Data {
        let request = try request(method, path, body: body)
        let outcome = Locked<Result<Data, Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            outcome.withLock { $0 = check(method, path, expect: expect, data: data, response: response, error: error) }
            done.signal()
        }.resume()
        guard done.wait(timeout: .now() + 15) == .success, let result = outcome.current else {
            throw Failure(description: "\(method) \(path): no answer in 15 s")
        }
        return try result.get()
    }
}

extension Fixture {
    /// The sample day with every UUID and barcode replaced, consistently, by
    /// fresh ones: the server refuses job ids it has seen, and every test
    /// gets a day of its own.
    static func freshMallPickupRun() throws -> String {
        var ids: [String: String] = [:]
        let tag = UUID().uuidString.prefix(8).lowercased()
        let uuid = #/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/#
        let barcode = #/"barcode"\s*:\s*"([^"]*)"/#
        return try mallPickupRun()
            .replacing(uuid) { match -> String in
                let old = match.output.lowercased()
                if let new = ids[old] { return new }
                let new = UUID().uuidString.lowercased()
                ids[old] = new
                return new
            }
            .replacing(barcode) { match -> String in "\"barcode\": \"\(match.output.1)-\(tag)\"" }
    }
}
