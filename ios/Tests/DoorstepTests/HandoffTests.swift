import Doorstep
import Foundation
import XCTest

/// A QR handoff between a driver's session and a store's session, each with
/// its own key and database; the code texts pass between them as the two
/// cameras would carry them.
final class HandoffTests: DoorstepTestCase {
    let store = UUID(uuidString: "775bf8b3-3b4a-5397-9d8f-453d5c4ef140")!
    let hpm2401 = UUID(uuidString: "f83adc5d-00a4-5760-b151-14243daf701b")!

    /// A driver who accepted HPM-2401 and stands at the store's counter.
    func driverAtCounter(_ name: String = "driver.db") async throws -> DriverSession {
        let driver = try DriverSession.open(at: databaseURL(name))
        _ = try await driver.importDocument(json: Fixture.mallPickupRun())
        driver.setDeviceSigner(signer: try softwareDeviceSigner(secret: nil))
        _ = try driver.applyBlocking(jobId: hpm2401, transition: .accept)
        _ = try driver.applyBlocking(jobId: hpm2401, transition: .arriveAtPickup)
        return driver
    }

    func storeDevice() throws -> StoreSession {
        let staff = try StoreSession.open(
            path: databaseURL("store.db").path, storeId: store, signer: try softwareDeviceSigner(secret: nil))
        XCTAssertEqual(try staff.importDocument(json: Fixture.mallPickupRun()), 4, "only this store's orders")
        return staff
    }

    func testAQrHandoffMovesTheJobAndLeavesOneReceiptOnBothDevices() async throws {
        let driver = try await driverAtCounter()
        let staff = try storeDevice()
        XCTAssertEqual(try staff.ordersAwaitingPickup().map(\.reference), ["HPM-2401", "HPM-2404", "HPM-2407", "HPM-2409"])

        let handoff = try staff.startHandoff(direction: .pickup, checkInCode: try driver.handoffCheckInCode(), jobIds: [hpm2401])
        let id = handoff.handoffId
        XCTAssertEqual(handoff.jobs.first?.expected, ["DS100000", "DS100001"])

        _ = try staff.scan(handoffId: id, barcode: "DS100000")
        guard case .DuplicateScan? = doorstepErrorSync({ try staff.scan(handoffId: id, barcode: "DS100000") }) else {
            return XCTFail("a second scan of the same box is refused")
        }
        guard case .UnknownBarcode? = doorstepErrorSync({ try staff.scan(handoffId: id, barcode: "NOT-A-PACKAGE") }) else {
            return XCTFail("an unknown barcode is refused")
        }
        guard case let .BarcodeOfOtherJob(_, reference)? = doorstepErrorSync({ try staff.scan(handoffId: id, barcode: "DS100300") }) else {
            return XCTFail("another job's box is refused")
        }
        XCTAssertEqual(reference, "HPM-2404")
        _ = try staff.scan(handoffId: id, barcode: "DS100001")
        _ = try staff.recordDiscrepancy(handoffId: id, kind: .damaged, barcode: "DS100001", note: "corner crushed")

        let offer = try await staff.offerCode(handoffId: id)
        XCTAssertTrue(try handoffCodeSvg(code: offer, modulePx: 4).contains("<svg"))
        XCTAssertEqual(Array(try handoffCodePng(code: offer, modulePx: 4).prefix(4)), [0x89, 0x50, 0x4E, 0x47])

        var tampered = Array(offer)
        tampered[40] = tampered[40] == "A" ? "B" : "A"
        let refusedTampered = await doorstepError { try await driver.acceptHandoffOffer(offerCode: String(tampered)) }
        XCTAssertNotNil(refusedTampered)
        XCTAssertEqual(try driver.job(jobId: hpm2401).state, .atPickup, "a refused code changes nothing")

        let accepted = try await driver.acceptHandoffOffer(offerCode: offer)
        XCTAssertEqual(accepted.jobs.map(\.state), [.pickedUp])
        XCTAssertEqual(try driver.job(jobId: hpm2401).state, .pickedUp)
        guard case .HandoffReplayed? = await doorstepError({ try await driver.acceptHandoffOffer(offerCode: offer) }) else {
            return XCTFail("an offer is good once")
        }

        let receiptHash = try await staff.completeHandoff(acceptanceCode: accepted.acceptanceCode)
        XCTAssertEqual(receiptHash, accepted.receiptHash)
        let custody = try driver.handoffCustody(jobId: hpm2401)
        XCTAssertEqual(custody.map(\.confirmed), [["DS100000", "DS100001"]])
        XCTAssertEqual(custody.first?.discrepancies.map(\.kind), [.damaged])
        XCTAssertEqual(try staff.custody(jobId: hpm2401), custody, "both devices hold the same record")
        XCTAssertEqual(try staff.receiptsToSend().count, 1)
        XCTAssertEqual(try staff.ordersAwaitingPickup().count, 3)
    }

    func testAPartialHandoffNeedsAReasonAndAnotherDeviceCannotAccept() async throws {
        let driver = try await driverAtCounter()
        let staff = try storeDevice()
        let id = try staff.startHandoff(direction: .pickup, checkInCode: try driver.handoffCheckInCode(), jobIds: [hpm2401]).handoffId
        let stray = try staff.startHandoff(direction: .pickup, checkInCode: try driver.handoffCheckInCode(), jobIds: [hpm2401]).handoffId
        XCTAssertEqual(Set(try staff.handoffsInProgress().map(\.handoffId)), [id, stray])
        try staff.cancelHandoff(handoffId: stray)
        XCTAssertEqual(try staff.handoffsInProgress().map(\.handoffId), [id])
        guard case .NotFound? = doorstepErrorSync({ try staff.cancelHandoff(handoffId: stray) }) else {
            return XCTFail("a cancelled handoff is gone")
        }
        _ = try staff.scan(handoffId: id, barcode: "DS100000")
        guard case let .RequirementsNotMet(missing)? = doorstepErrorSync({ try staff.offerCodeBlocking(handoffId: id) }) else {
            return XCTFail("a partial handoff needs a reason")
        }
        XCTAssertTrue(missing.first?.contains("HPM-2401") ?? false, "\(missing)")
        _ = try staff.setPartialReason(handoffId: id, jobId: hpm2401, reason: "second box not packed yet")
        let offer = try staff.offerCodeBlocking(handoffId: id)
        guard case .InvalidInput? = doorstepErrorSync({ try staff.cancelHandoff(handoffId: id) }) else {
            return XCTFail("a shown offer cannot be dropped")
        }

        let other = try await driverAtCounter("other.db")
        guard case .HandoffWrongDevice? = doorstepErrorSync({ try other.acceptHandoffOfferBlocking(offerCode: offer) }) else {
            return XCTFail("an offer names one driver's device")
        }

        let accepted = try driver.acceptHandoffOfferBlocking(offerCode: offer)
        _ = try staff.completeHandoffBlocking(acceptanceCode: accepted.acceptanceCode)
        let custody = try driver.handoffCustody(jobId: hpm2401)
        XCTAssertEqual(custody.first?.partialReason, "second box not packed yet")
        XCTAssertEqual(custody.first?.discrepancies.filter { $0.kind == .missing }.map(\.barcode), ["DS100001"])
    }
}
