import Doorstep
import Foundation
import XCTest

/// A store's token from the reference server's admin API.
final class StoreTokens: TokenProvider {
    let token: String

    init(storeId: UUID) async throws {
        let data = try await Dispatch.call("POST", "/admin/stores/\(storeId.uuidString.lowercased())/tokens", expect: 201)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any], let token = object["token"] as? String else {
            throw Dispatch.Failure(description: "no token in the answer")
        }
        self.token = token
    }

    func accessToken() throws -> String { token }
    func refreshToken() throws -> String { token }
}

/// The store staff device sending its handoff receipt to the reference
/// dispatch server through the Swift bindings.
final class HandoffSyncTests: DoorstepTestCase {
    let store = UUID(uuidString: "775bf8b3-3b4a-5397-9d8f-453d5c4ef140")!
    let hpm2401 = UUID(uuidString: "f83adc5d-00a4-5760-b151-14243daf701b")!

    func config(_ baseUrl: String) -> SyncConfig {
        var config = defaultSyncConfig(baseUrl: baseUrl)
        config.automatic = false
        config.connectTimeout = 2
        config.requestTimeout = 5
        return config
    }

    func storeReceiptHashes() async throws -> [String] {
        let data = try await Dispatch.call("GET", "/admin/stores/\(store.uuidString.lowercased())/receipts", expect: 200)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let receipts = object?["receipts"] as? [[String: Any]] ?? []
        return receipts.compactMap { $0["receipt_hash"] as? String }
    }

    func testTheStoresReceiptStaysQueuedOfflineAndReachesDispatchOnce() async throws {
        let driver = try DriverSession.open(at: databaseURL("driver.db"))
        _ = try await driver.importDocument(json: Fixture.mallPickupRun())
        driver.setDeviceSigner(signer: try softwareDeviceSigner(secret: nil))
        _ = try driver.applyBlocking(jobId: hpm2401, transition: .accept)
        let staff = try StoreSession.open(
            path: databaseURL("store.db").path, storeId: store, signer: try softwareDeviceSigner(secret: nil))
        _ = try staff.importDocument(json: Fixture.mallPickupRun())
        let id = try staff.startHandoff(direction: .pickup, checkInCode: try driver.handoffCheckInCode(), jobIds: [hpm2401]).handoffId
        _ = try staff.scan(handoffId: id, barcode: "DS100000")
        _ = try staff.scan(handoffId: id, barcode: "DS100001")
        let accepted = try await driver.acceptHandoffOffer(offerCode: try await staff.offerCode(handoffId: id))
        let receiptHash = try await staff.completeHandoff(acceptanceCode: accepted.acceptanceCode)
        let tokens = try await StoreTokens(storeId: store)

        guard case .Network? = await doorstepError({ try await staff.syncReceipts(config: self.config("http://127.0.0.1:1"), tokens: tokens) }) else {
            return XCTFail("no dispatch is a network error")
        }
        let queued = try staff.pendingReceipts()
        XCTAssertEqual(queued.map(\.receiptHash), [receiptHash])
        XCTAssertEqual(queued.first?.status, .queued)
        XCTAssertNotNil(queued.first?.lastError)
        let heldBefore = try await storeReceiptHashes()
        XCTAssertFalse(heldBefore.contains(receiptHash))

        let report = try await staff.syncReceipts(config: config(try Dispatch.baseURL()), tokens: tokens)
        XCTAssertEqual(report.sent, 1)
        XCTAssertEqual(report.pending, 0)
        XCTAssertEqual(try staff.pendingReceipts(), [])
        let held = try await storeReceiptHashes()
        XCTAssertEqual(held.filter { $0 == receiptHash }.count, 1)
        let again = try await staff.syncReceipts(config: config(try Dispatch.baseURL()), tokens: tokens)
        XCTAssertEqual(again.sent, 0)
    }
}
