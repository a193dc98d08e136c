import Doorstep
import Foundation
import XCTest

private let building = "bldg-jackson-1180"

/// A GATT link written in Swift, as the iOS shell's CoreBluetooth one would
/// be, forwarding each ATT payload to the reference lock the core exports.
final class ForwardingLink: BleLink, @unchecked Sendable {
    private let lock: ReferenceLock
    private let mtu: UInt16
    private let notifications = Locked<[Data]>([])
    private let writeCount = Locked(0)

    init(_ lock: ReferenceLock, mtu: UInt16) {
        self.lock = lock
        self.mtu = mtu
    }

    var writes: Int { writeCount.current }

    func connect(doorId: UInt32, timeoutMs: UInt32) throws -> UInt16 {
        guard doorId == lock.doorTag() else { throw DoorstepError.LockOutOfRange(lockId: String(doorId)) }
        let challenge = try lock.gattSubscribe(mtu: mtu)
        notifications.withLock { $0.append(contentsOf: challenge) }
        return mtu
    }

    func write(payload: Data) throws {
        writeCount.withLock { $0 += 1 }
        let answer = try lock.gattWrite(payload: payload)
        notifications.withLock { $0.append(contentsOf: answer) }
    }

    func receive(timeoutMs: UInt32) throws -> Data {
        guard let next = notifications.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else {
            throw DoorstepError.LinkFailed(reason: "the lock sent nothing")
        }
        return next
    }

    func disconnect() {
        notifications.withLock { $0.removeAll() }
        lock.gattDisconnect()
    }
}

final class DoorUnlockTests: DoorstepTestCase {
    /// The sample day, a software device key and a grant for HPM-2401's lobby.
    func sessionWithGrant(_ issuer: GrantIssuer) async throws -> DriverSession {
        let (session, _) = try await sessionWithSample()
        let signer = try softwareDeviceSigner(secret: nil)
        session.setDeviceSigner(signer: signer)
        let job = try XCTUnwrap(try session.jobs().first { $0.reference == "HPM-2401" }).id
        let grant = try issuer.issue(
            devicePublicKey: try signer.publicKey(), jobId: job, buildingId: building, doorIds: ["lobby-main"],
            notBefore: Date().addingTimeInterval(-1800), validityMinutes: 120, epoch: 0, useLimit: 0)
        let cached = try session.addDoorGrant(jobId: job, encoded: grant)
        XCTAssertEqual(cached.doorTags, [doorTag(buildingId: building, doorId: "lobby-main")])
        return session
    }

    func testASwiftLinkCarriesTheExchangeAndTheDoorOpens() async throws {
        let issuer = try GrantIssuer(secret: nil)
        let session = try await sessionWithGrant(issuer)
        let lock = try ReferenceLock(
            issuerPublicKey: issuer.publicKey(), lockId: 7, buildingId: building, doorId: "lobby-main",
            auditKey: Data(repeating: 1, count: 32), now: nil)
        let link = ForwardingLink(lock, mtu: 185)
        let opened = try await session.unlockDoor(buildingId: building, doorId: "lobby-main", link: link)
        XCTAssertEqual(opened.lockId, 7)
        XCTAssertEqual(opened.messages, 3, "challenge, response and result at MTU 185")
        XCTAssertEqual(link.writes, 1)
        XCTAssertEqual(lock.timesOpened(), 1)
        XCTAssertEqual(try session.unlockHistory().map(\.outcome), ["opened"])
        XCTAssertEqual(lock.auditLog().map(\.authentic), [true])

        let small = ForwardingLink(lock, mtu: 23)
        let again = try await session.unlockDoor(buildingId: building, doorId: "lobby-main", link: small)
        XCTAssertEqual(again.mtu, 23)
        XCTAssertGreaterThanOrEqual(small.writes, 9)
        XCTAssertEqual(lock.timesOpened(), 2)
    }

    func testALockThatDoesNotTrustTheIssuerDeniesAndTheDenialIsRecorded() async throws {
        let issuer = try GrantIssuer(secret: nil)
        let session = try await sessionWithGrant(issuer)
        let lock = try ReferenceLock(
            issuerPublicKey: try GrantIssuer(secret: nil).publicKey(), lockId: 8, buildingId: building,
            doorId: "lobby-main", auditKey: Data(repeating: 2, count: 32), now: nil)
        let error = await doorstepError {
            try await session.unlockDoor(buildingId: building, doorId: "lobby-main", link: ForwardingLink(lock, mtu: 185))
        }
        guard case .Denied(let reason) = error else { return XCTFail("expected Denied, got \(String(describing: error))") }
        XCTAssertEqual(reason, "unknown_issuer")
        XCTAssertEqual(lock.timesOpened(), 0)
        XCTAssertEqual(lock.auditLog().map(\.outcome), ["unknown_issuer"])
        XCTAssertEqual(try session.unlockHistory().map(\.outcome), ["unknown_issuer"])
    }

    func testOutOfRangeAndMissingGrantsAreErrorsTheDriverCanActOn() async throws {
        let issuer = try GrantIssuer(secret: nil)
        let session = try await sessionWithGrant(issuer)
        let elsewhere = try ReferenceLock(
            issuerPublicKey: issuer.publicKey(), lockId: 9, buildingId: building, doorId: "garage",
            auditKey: Data(count: 32), now: nil)
        let away = await doorstepError {
            try await session.unlockDoor(buildingId: building, doorId: "lobby-main", link: ForwardingLink(elsewhere, mtu: 185))
        }
        guard case .LockOutOfRange = away else { return XCTFail("expected LockOutOfRange, got \(String(describing: away))") }
        let missing = await doorstepError {
            try await session.unlockDoor(buildingId: building, doorId: "garage", link: elsewhere.inMemoryLink(mtu: 185))
        }
        guard case .NoGrant(_, let reason) = missing else { return XCTFail("expected NoGrant, got \(String(describing: missing))") }
        XCTAssertTrue(reason.contains("sync"), reason)
        XCTAssertTrue(elsewhere.auditLog().isEmpty)
    }
}
