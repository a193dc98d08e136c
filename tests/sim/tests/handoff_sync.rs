//! The store staff device sending its handoff receipts to the reference
//! dispatch server: once, beside the driver's copy, through network
//! trouble, and never a receipt that is not the store's or not intact.

mod common;

use common::{FixedToken, Fixture, MALL_PICKUP_RUN, block_on};
use doorstep_core::handoff::{Direction, HandoffReceipt, ReceiptSendStatus, StoreSession};
use doorstep_core::keys::SoftwareSigner;
use doorstep_core::sync::SyncConfig;
use doorstep_core::{CoreError, DriverSession, Transition};
use doorstep_sim::faults::{Fault, FaultProxy};
use doorstep_sim::server::client::DispatchClient;
use doorstep_sim::server::{RunningServer, ServerConfig, spawn};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const DRIVER: &str = "driver-ana";
const STORE: &str = "775bf8b3-3b4a-5397-9d8f-453d5c4ef140";
const HPM_2401: &str = "f83adc5d-00a4-5760-b151-14243daf701b"; // DS100000, DS100001

fn id(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

fn config(base_url: &str) -> SyncConfig {
    let mut config = SyncConfig::new(base_url);
    config.automatic = false;
    config.connect_timeout = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(5);
    config
}

/// A dispatch server with the sample day assigned, a driver who accepted
/// HPM-2401 and stands at the counter, and the store's device.
struct Counter {
    server: RunningServer,
    admin: DispatchClient,
    fixture: Fixture,
    driver: DriverSession,
    store: StoreSession,
    store_token: Arc<FixedToken>,
}

impl Counter {
    fn new() -> Counter {
        let server = spawn(ServerConfig::ephemeral()).expect("start the reference server");
        let admin = DispatchClient::new(server.base_url());
        let driver_token = admin.issue_token(DRIVER).unwrap();
        admin.assign_jobs(DRIVER, serde_json::from_str(MALL_PICKUP_RUN).unwrap()).unwrap();
        let store_token = Arc::new(FixedToken(admin.issue_store_token(id(STORE)).unwrap()));

        let fixture = Fixture::new();
        let driver = fixture.open_with_sample();
        driver.set_device_signer(Arc::new(SoftwareSigner::generate().unwrap()));
        driver.start_sync(config(&server.base_url()), Arc::new(FixedToken(driver_token))).unwrap();
        driver.apply(id(HPM_2401), Transition::Accept).unwrap();
        driver.apply(id(HPM_2401), Transition::ArriveAtPickup).unwrap();
        let store = open_store(&fixture, id(STORE));
        assert_eq!(store.import_document(MALL_PICKUP_RUN.as_bytes()).unwrap(), 4);
        Counter { server, admin, fixture, driver, store, store_token }
    }

    /// Hands HPM-2401 over; returns the receipt's hash (hex).
    fn hand_over(&self) -> String {
        let check_in = self.driver.handoff_check_in_code().unwrap();
        let handoff = self.store.start_handoff(Direction::Pickup, &check_in, &[id(HPM_2401)]).unwrap().handoff_id;
        for barcode in ["DS100000", "DS100001"] {
            self.store.scan(handoff, barcode).unwrap();
        }
        let accepted = self.driver.accept_handoff_offer(&self.store.offer_code(handoff).unwrap()).unwrap();
        self.store.complete_handoff(&accepted.acceptance_code).unwrap();
        accepted.receipt_hash
    }

    fn sync_store(&self, base_url: &str) -> doorstep_core::Result<doorstep_core::handoff::ReceiptSyncReport> {
        block_on(self.store.sync_receipts(&config(base_url), self.store_token.clone()))
    }

    fn held_by_dispatch(&self) -> Vec<String> {
        self.admin.store_receipts(id(STORE)).unwrap().receipts.into_iter().map(|r| r.receipt_hash).collect()
    }
}

fn open_store(fixture: &Fixture, store_id: Uuid) -> StoreSession {
    fixture.open_store("store.db", store_id)
}

fn post_receipt(base_url: &str, store_id: Uuid, token: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{base_url}/v1/stores/{store_id}/receipts"))
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

#[test]
fn the_stores_receipt_reaches_dispatch_once_beside_the_drivers_copy() {
    let counter = Counter::new();
    let receipt_hash = counter.hand_over();
    let body = counter.store.receipts_to_send().unwrap().remove(0);
    assert_eq!(counter.store.pending_receipts().unwrap()[0].status, ReceiptSendStatus::Queued);

    let report = counter.sync_store(&counter.server.base_url()).unwrap();
    assert_eq!((report.sent, report.refused, report.pending), (1, 0, 0));
    assert!(counter.store.pending_receipts().unwrap().is_empty());
    assert!(counter.store.receipts_to_send().unwrap().is_empty());

    let held = counter.admin.store_receipts(id(STORE)).unwrap().receipts;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].receipt_hash, receipt_hash);
    assert_eq!(held[0].job_ids, [id(HPM_2401)]);
    let verified = HandoffReceipt::from_record_body(&held[0].body).unwrap();
    assert_eq!(doorstep_core::keys::hex(&verified.hash().unwrap()), receipt_hash, "dispatch holds a receipt that verifies");

    // The driver's copy arrives with the pickup; both name the same receipt.
    block_on(counter.driver.sync_now()).unwrap();
    let records = counter.admin.job(id(HPM_2401)).unwrap().records;
    let drivers: Vec<&serde_json::Value> = records.iter().filter(|r| r.kind == "handoff_receipt").map(|r| &r.body).collect();
    assert_eq!(drivers.len(), 1);
    assert_eq!(drivers[0]["receipt_hash"], receipt_hash.as_str());
    assert_eq!(drivers[0], &held[0].body, "the store's copy and the driver's are the same receipt");

    // Nothing is sent twice, and a resend is a duplicate, not a second copy.
    assert_eq!(counter.sync_store(&counter.server.base_url()).unwrap().sent, 0);
    let (status, ack) = post_receipt(&counter.server.base_url(), id(STORE), &counter.store_token.0, &body);
    assert_eq!((status, ack["outcome"].as_str()), (200, Some("duplicate")));
    assert_eq!(counter.held_by_dispatch(), [receipt_hash]);
}

#[test]
fn a_lost_answer_or_no_network_keeps_the_receipt_queued_and_it_arrives_once() {
    let counter = Counter::new();
    let receipt_hash = counter.hand_over();
    let proxy = FaultProxy::start(&counter.server.base_url()).unwrap();

    // No dispatch at all: queued, with the reason.
    assert!(matches!(counter.sync_store("http://127.0.0.1:1"), Err(CoreError::Network { .. })));
    let pending = counter.store.pending_receipts().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].status, pending[0].receipt_hash.as_str()), (ReceiptSendStatus::Queued, receipt_hash.as_str()));
    assert!(pending[0].last_error.is_some());

    // The connection drops, then dispatch is overloaded: still queued.
    proxy.script("/v1/stores", [Fault::Drop, Fault::Status { status: 503, retry_after: Some(0) }]);
    assert!(matches!(counter.sync_store(&proxy.url()), Err(CoreError::Network { .. })));
    assert!(matches!(counter.sync_store(&proxy.url()), Err(CoreError::Network { .. })));
    assert!(counter.held_by_dispatch().is_empty());
    assert_eq!(counter.store.pending_receipts().unwrap()[0].status, ReceiptSendStatus::Queued);

    // Dispatch keeps it but the answer is lost: the device cannot know, so
    // it sends again, and dispatch still holds one.
    proxy.script("/v1/stores", [Fault::ResetAfterForward]);
    assert!(counter.sync_store(&proxy.url()).is_err());
    assert_eq!(counter.held_by_dispatch(), std::slice::from_ref(&receipt_hash));
    assert_eq!(counter.store.pending_receipts().unwrap().len(), 1, "unacknowledged, so still queued");

    let report = counter.sync_store(&proxy.url()).unwrap();
    assert_eq!((report.sent, report.pending), (1, 0));
    assert!(counter.store.pending_receipts().unwrap().is_empty());
    assert_eq!(counter.held_by_dispatch(), [receipt_hash]);
}

#[test]
fn a_token_for_another_store_leaves_the_receipt_queued_not_refused() {
    let counter = Counter::new();
    counter.hand_over();
    let other_store = Uuid::new_v4();
    let wrong = Arc::new(FixedToken(counter.admin.issue_store_token(other_store).unwrap()));
    let outcome = block_on(counter.store.sync_receipts(&config(&counter.server.base_url()), wrong));
    assert!(matches!(outcome, Err(CoreError::Rejected { status: 403, .. })), "{outcome:?}");
    assert_eq!(counter.store.pending_receipts().unwrap()[0].status, ReceiptSendStatus::Queued);
    let revoked = Arc::new(FixedToken("not-a-token".into()));
    let outcome = block_on(counter.store.sync_receipts(&config(&counter.server.base_url()), revoked));
    assert!(matches!(outcome, Err(CoreError::Unauthorized { .. })), "{outcome:?}");
    assert_eq!(counter.sync_store(&counter.server.base_url()).unwrap().sent, 1);
}

#[test]
fn a_receipt_of_another_store_is_refused_for_good_and_stays_visible() {
    let counter = Counter::new();
    let receipt_hash = counter.hand_over();
    // A device set up for another store on the same database holds a
    // receipt that is not its store's.
    let other_store = Uuid::new_v4();
    let other = open_store(&counter.fixture, other_store);
    let other_token = Arc::new(FixedToken(counter.admin.issue_store_token(other_store).unwrap()));
    let sync_other = || block_on(other.sync_receipts(&config(&counter.server.base_url()), other_token.clone()));

    let report = sync_other().unwrap();
    assert_eq!((report.sent, report.refused, report.pending), (0, 1, 0));
    let pending = other.pending_receipts().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].status, pending[0].receipt_hash.as_str()), (ReceiptSendStatus::Refused, receipt_hash.as_str()));
    let reason = pending[0].last_error.clone().unwrap();
    assert!(reason.starts_with("422") && reason.contains(STORE), "{reason}");
    assert_eq!(sync_other().unwrap(), Default::default(), "a refused receipt is not sent again");
    assert!(other.receipts_to_send().unwrap().is_empty());
    assert!(counter.admin.store_receipts(other_store).unwrap().receipts.is_empty());
}

#[test]
fn dispatch_refuses_a_tampered_receipt_and_the_device_never_sends_one() {
    let counter = Counter::new();
    let receipt_hash = counter.hand_over();
    let base_url = counter.server.base_url();

    // Straight to dispatch: a summary that no longer says what was signed.
    let mut body = counter.store.receipts_to_send().unwrap().remove(0);
    body["jobs"][0]["confirmed"] = serde_json::json!(["DS100000"]);
    let (status, problem) = post_receipt(&base_url, id(STORE), &counter.store_token.0, &body);
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["field"], "body");
    let (status, _) = post_receipt(&base_url, id(STORE), &counter.store_token.0, &serde_json::json!({"format": "x"}));
    assert_eq!(status, 422);
    assert!(counter.held_by_dispatch().is_empty());

    // On the device: the stored offer edited after the fact.
    tamper_offer(&counter.fixture.dir.path().join("store.db"));
    let report = counter.sync_store(&base_url).unwrap();
    assert_eq!((report.sent, report.refused), (0, 1));
    let pending = counter.store.pending_receipts().unwrap();
    assert_eq!((pending[0].status, pending[0].receipt_hash.as_str()), (ReceiptSendStatus::Refused, receipt_hash.as_str()));
    assert!(pending[0].last_error.as_deref().unwrap().contains("damaged on this device"));
    assert!(counter.held_by_dispatch().is_empty());
}

fn tamper_offer(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut offer: Vec<u8> = conn.query_row("SELECT offer FROM handoff_receipts", [], |row| row.get(0)).unwrap();
    let last = offer.len() - 1;
    offer[last] ^= 0x01;
    conn.execute("UPDATE handoff_receipts SET offer = ?1", [offer]).unwrap();
}
