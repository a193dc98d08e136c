//! Door access through the session: grants arrive by sync for the device
//! key the session registers, doors open offline over a link to the
//! reference lock, the phone's clock may be wrong, revocation reaches locks
//! through phones, and every refusal tells the driver what to do.

mod common;

use chrono::{DateTime, Duration, DurationRound, Utc};
use common::*;
use doorstep_core::access::grant::{GrantIssuer, GrantTerms, door_tag, job_tag};
use doorstep_core::access::lock::{LockConfig, ReferenceLock};
use doorstep_core::access::protocol::build_response;
use doorstep_core::access::{InMemoryLink, Reason, unix_seconds};
use doorstep_core::keys::{SoftwareSigner, from_hex};
use doorstep_core::sync::SyncConfig;
use doorstep_core::*;
use doorstep_sim::server::client::DispatchClient;
use doorstep_sim::server::wire::DoorIssuer;
use doorstep_sim::server::{RunningServer, ServerConfig, spawn};
use std::sync::Arc;

const DRIVER: &str = "driver-ana";
const AUDIT_KEY: [u8; 32] = [0x33; 32];
const BUILDING: &str = "bldg-jackson-1180";

struct World {
    server: RunningServer,
    admin: DispatchClient,
    token: String,
    now: DateTime<Utc>,
}

fn real_now() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::seconds(1)).unwrap()
}

impl World {
    /// The sample day, with the door jobs' windows moved around the real
    /// time (the reference server issues grants by its own clock).
    fn new() -> World {
        let server = spawn(ServerConfig::ephemeral()).unwrap();
        let admin = DispatchClient::new(server.base_url());
        let token = admin.issue_token(DRIVER).unwrap();
        let now = real_now();
        let mut sample: serde_json::Value = serde_json::from_str(MALL_PICKUP_RUN).unwrap();
        for job in [0, 2] {
            let window = |from: Duration, to: Duration| serde_json::json!({ "start": now + from, "end": now + to });
            sample["jobs"][job]["pickup"]["window"] = window(Duration::hours(-2), Duration::hours(-1));
            sample["jobs"][job]["dropoff"]["window"] = window(Duration::minutes(-30), Duration::minutes(90));
        }
        admin.assign_jobs(DRIVER, sample).unwrap();
        World { server, admin, token, now }
    }

    fn issuer_key(&self) -> Vec<u8> {
        let issuer: DoorIssuer = self.admin.request(reqwest::Method::GET, "/admin/doors/issuer").send().unwrap().json().unwrap();
        from_hex(&issuer.public_key).unwrap()
    }

    fn lock(&self, door: &str, clock: Arc<ManualClock>) -> Arc<ReferenceLock> {
        let issuer = doorstep_core::access::grant::issuer_key(&self.issuer_key()).unwrap();
        let config = LockConfig::new(4711, door_tag(BUILDING, door), vec![issuer], AUDIT_KEY);
        Arc::new(ReferenceLock::new(config, clock).unwrap())
    }

    fn session(&self, fx: &Fixture, signer: Arc<SoftwareSigner>) -> DriverSession {
        let session = fx.open();
        session.set_device_signer(signer);
        let mut config = SyncConfig::new(self.server.base_url());
        config.automatic = false;
        session.start_sync(config, Arc::new(FixedToken(self.token.clone()))).unwrap();
        session
    }
}

#[test]
fn grants_arrive_by_sync_and_doors_open_offline_with_a_wrong_phone_clock() {
    let world = World::new();
    let fx = Fixture::new();
    // The phone is three hours behind; the offset learned at sync fixes it.
    fx.clock.set(world.now - Duration::hours(3));
    let signer = Arc::new(SoftwareSigner::generate().unwrap());
    let session = world.session(&fx, signer.clone());
    block_on(session.sync_now()).unwrap();
    let jobs = session.jobs().unwrap();
    let job_id = |reference: &str| jobs.iter().find(|j| j.reference == reference).unwrap().id;
    let grants = session.door_grants().unwrap();
    for reference in ["HPM-2401", "HPM-2403"] {
        assert_eq!(grants.iter().filter(|g| g.job_id == job_id(reference)).count(), 1, "one grant for {reference}");
    }
    assert!(grants.iter().all(|g| g.job_id != job_id("HPM-2402")), "no grant for a drop-off without doors");
    assert!(grants.iter().all(|g| g.grant.is_for_device(&signer.device_public_key())));
    let two_doors = grants.iter().find(|g| g.door_ids.len() == 2).unwrap();
    assert_eq!(two_doors.door_ids, vec![door_tag("bldg-broadway-2201", "lobby-north"), door_tag("bldg-broadway-2201", "lobby-south")]);
    assert_eq!(two_doors.grant.encoded().len(), 111);

    session.set_online(false);
    let lock_clock = Arc::new(ManualClock::starting_at(world.now));
    let lock = world.lock("lobby-main", lock_clock.clone());
    let link = InMemoryLink::new(lock.clone(), 185);
    let opened = session.unlock(BUILDING, "lobby-main", &link).unwrap();
    assert_eq!(opened.lock_id, 4711);
    assert_eq!(opened.audit_sequence, 1);
    assert_eq!(link.counters().messages(), 3, "challenge, response, result at MTU 185");
    assert_eq!(opened.stats.messages(), 3);
    assert_eq!(lock.times_opened(), 1);

    // The same at MTU 23, through the two-door grant of another building.
    let other = {
        let issuer = doorstep_core::access::grant::issuer_key(&world.issuer_key()).unwrap();
        let config = LockConfig::new(4712, door_tag("bldg-broadway-2201", "lobby-south"), vec![issuer], AUDIT_KEY);
        Arc::new(ReferenceLock::new(config, lock_clock.clone()).unwrap())
    };
    let small = InMemoryLink::new(other.clone(), 23);
    let opened = session.unlock("bldg-broadway-2201", "lobby-south", &small).unwrap();
    assert_eq!(opened.stats.mtu, 23);
    assert!(small.counters().writes >= 9, "a 185-byte response takes many 19-byte fragments");
    assert_eq!(other.times_opened(), 1);

    let history = session.unlock_history().unwrap();
    assert_eq!(history.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(), vec!["opened", "opened"]);
    let audit = doorstep_core::access::audit::AuditRecord::parse(&history[0].audit).unwrap();
    assert!(audit.verifies(&AUDIT_KEY), "the phone carries the lock's record unaltered");
    assert_eq!(audit, lock.audit_log()[0]);

    // Back online, the audit records reach dispatch with the jobs.
    session.set_online(true);
    block_on(session.sync_now()).unwrap();
    let kept = world.admin.job(job_id("HPM-2401")).unwrap().records;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].kind, "door_audit");
    assert_eq!(kept[0].body["outcome"], "opened");
    let carried = from_hex(kept[0].body["audit_record"].as_str().unwrap()).unwrap();
    assert_eq!(carried, lock.audit_log()[0].encode().to_vec());
}

/// Two door ids of one building whose 32-bit tags collide, found by a
/// birthday search (about 80,000 ids on average; the same pair every run).
fn colliding_doors(building: &str) -> (String, String) {
    let mut seen = std::collections::HashMap::new();
    for n in 0u32.. {
        let door = format!("door-{n}");
        if let Some(first) = seen.insert(door_tag(building, &door), door.clone()) {
            return (first, door);
        }
    }
    unreachable!("a 32-bit tag collides long before 2^32 ids")
}

#[test]
fn no_grant_names_a_door_whose_tag_another_door_already_holds() {
    const TAGGED: &str = "bldg-tag-collision";
    let (first_door, second_door) = colliding_doors(TAGGED);
    assert_ne!(first_door, second_door);
    let server = spawn(ServerConfig::ephemeral()).unwrap();
    let admin = DispatchClient::new(server.base_url());
    let token = admin.issue_token(DRIVER).unwrap();
    let world = World { server, admin, token, now: real_now() };
    let sample: serde_json::Value = serde_json::from_str(MALL_PICKUP_RUN).unwrap();
    let job_with_door = |index: usize, door: &str| {
        let mut job = sample["jobs"][index].clone();
        let window = |from: Duration, to: Duration| serde_json::json!({ "start": world.now + from, "end": world.now + to });
        job["pickup"]["window"] = window(Duration::hours(-2), Duration::hours(-1));
        job["dropoff"]["window"] = window(Duration::minutes(-30), Duration::minutes(90));
        job["dropoff"]["building_id"] = TAGGED.into();
        job["dropoff"]["door_ids"] = serde_json::json!([door]);
        let mut document = sample.clone();
        document["jobs"] = serde_json::json!([job]);
        document
    };
    let fx = Fixture::new();
    fx.clock.set(world.now);
    let session = world.session(&fx, Arc::new(SoftwareSigner::generate().unwrap()));
    let granted = |job: uuid::Uuid| -> Vec<Vec<u32>> {
        session.door_grants().unwrap().into_iter().filter(|g| g.job_id == job).map(|g| g.door_ids).collect()
    };
    let tag = door_tag(TAGGED, &first_door);

    let first = world.admin.assign_jobs(DRIVER, job_with_door(0, &first_door)).unwrap()[0];
    block_on(session.sync_now()).unwrap();
    assert_eq!(granted(first), [vec![tag]], "the first door to use the tag keeps it");

    let colliding = world.admin.assign_jobs(DRIVER, job_with_door(2, &second_door)).unwrap()[0];
    block_on(session.sync_now()).unwrap();
    assert!(session.jobs().unwrap().iter().any(|j| j.id == colliding), "the job itself arrives");
    assert!(granted(colliding).is_empty(), "a grant naming {second_door} would open {first_door} too");
    assert_eq!(granted(first), [vec![tag]], "the holder's grant stays");

    let same_door = world.admin.assign_jobs(DRIVER, job_with_door(1, &first_door)).unwrap()[0];
    block_on(session.sync_now()).unwrap();
    assert_eq!(granted(same_door), [vec![tag]], "another job at the holding door is granted");
}

#[test]
fn a_phone_clock_ten_minutes_off_either_way_still_unlocks() {
    for skew in [Duration::minutes(10), Duration::minutes(-10)] {
        let fx = Fixture::new();
        let lock_time: DateTime<Utc> = "2026-11-23T18:30:00Z".parse().unwrap();
        fx.clock.set(lock_time + skew);
        let issuer = GrantIssuer::generate().unwrap();
        let signer = Arc::new(SoftwareSigner::generate().unwrap());
        let session = fx.open();
        session.set_device_signer(signer.clone());
        let job = uuid::Uuid::new_v4();
        // Ends five minutes after the lock's now: on the phone's clock it
        // may look over already, and it must still be tried.
        let grant = issuer
            .issue(&GrantTerms {
                grant_id: [4; 8],
                job_id: job,
                device_key: signer.device_public_key(),
                door_ids: vec![door_tag(BUILDING, "lobby-main")],
                not_before: unix_seconds(lock_time - Duration::minutes(55)),
                validity_minutes: 60,
                epoch: 0,
                use_limit: 0,
            })
            .unwrap();
        session.add_door_grant(job, grant.encoded()).unwrap();
        let config = LockConfig::new(1, door_tag(BUILDING, "lobby-main"), vec![issuer.verifying_key()], AUDIT_KEY);
        let lock = Arc::new(ReferenceLock::new(config, Arc::new(ManualClock::starting_at(lock_time))).unwrap());
        let link = InMemoryLink::new(lock.clone(), 185);
        session.unlock(BUILDING, "lobby-main", &link).unwrap_or_else(|e| panic!("skew {skew}: {e}"));
        assert_eq!(lock.times_opened(), 1);
    }
}

#[test]
fn revocation_reaches_a_lock_through_a_synced_phone() {
    let world = World::new();
    let fx = Fixture::new();
    fx.clock.set(world.now);
    let signer = Arc::new(SoftwareSigner::generate().unwrap());
    let session = world.session(&fx, signer.clone());
    block_on(session.sync_now()).unwrap();
    let before = session.door_grants().unwrap().into_iter().find(|g| g.door_ids.len() == 1).unwrap();
    assert_eq!(before.epoch, 0);

    world.admin.request(reqwest::Method::POST, "/admin/doors/revoke").send().unwrap().error_for_status().unwrap();
    block_on(session.sync_now()).unwrap();
    let after = session.door_grants().unwrap().into_iter().find(|g| g.door_ids.len() == 1).unwrap();
    assert_eq!(after.epoch, 1);
    assert_ne!(after.grant_id, before.grant_id);

    let lock = world.lock("lobby-main", Arc::new(ManualClock::starting_at(world.now)));
    assert_eq!(lock.epoch(), 0);
    session.unlock(BUILDING, "lobby-main", &InMemoryLink::new(lock.clone(), 185)).unwrap();
    assert_eq!(lock.epoch(), 1, "the phone carried the issuer's notice");

    // A phone that kept the old grant is now refused, and it is audited.
    let challenge = lock.challenge().unwrap();
    let stale = build_response(&challenge, &before.grant, 1, signer.as_ref(), None).unwrap();
    let result = lock.respond(&stale.encode());
    assert_eq!(Reason::from_code(result.code), Some(Reason::Revoked));
    assert_eq!(lock.audit_log().last().unwrap().reason, Reason::Revoked.code());
}

/// A session holding the sample day and one grant, for HPM-2401's door,
/// from an issuer the test holds (no server).
fn local_rig(fx: &Fixture) -> (DriverSession, GrantIssuer, Arc<SoftwareSigner>, uuid::Uuid) {
    let issuer = GrantIssuer::generate().unwrap();
    let signer = Arc::new(SoftwareSigner::generate().unwrap());
    let session = fx.open_with_sample();
    session.set_device_signer(signer.clone());
    let job = session.jobs().unwrap().into_iter().find(|j| j.reference == "HPM-2401").unwrap().id;
    let grant = issuer
        .issue(&GrantTerms {
            grant_id: [8; 8],
            job_id: job,
            device_key: signer.device_public_key(),
            door_ids: vec![door_tag(BUILDING, "lobby-main")],
            not_before: unix_seconds(fx.clock.now() - Duration::minutes(30)),
            validity_minutes: 120,
            epoch: 0,
            use_limit: 0,
        })
        .unwrap();
    session.add_door_grant(job, grant.encoded()).unwrap();
    (session, issuer, signer, job)
}

fn lock_for(fx: &Fixture, issuer: &GrantIssuer, door: &str) -> Arc<ReferenceLock> {
    let config = LockConfig::new(9, door_tag(BUILDING, door), vec![issuer.verifying_key()], AUDIT_KEY);
    Arc::new(ReferenceLock::new(config, fx.clock.clone()).unwrap())
}

#[test]
fn a_lock_denial_is_recorded_and_returned_with_its_reason() {
    let fx = Fixture::new();
    let (session, _, _, job) = local_rig(&fx);
    // A lock that trusts another issuer.
    let lock = lock_for(&fx, &GrantIssuer::generate().unwrap(), "lobby-main");
    let err = session.unlock(BUILDING, "lobby-main", &InMemoryLink::new(lock.clone(), 185)).unwrap_err();
    assert_eq!(err, CoreError::Denied { reason: "unknown_issuer".into() });
    let history = session.unlock_history().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome, "unknown_issuer");
    assert_eq!(history[0].job_id, job);
    assert_eq!(lock.audit_log().len(), 1);
    assert_eq!(lock.times_opened(), 0);
    // The denial is queued for dispatch like an opening would be.
    let queued: Vec<_> = session
        .outbox()
        .unwrap()
        .into_iter()
        .filter_map(|m| match m.body {
            doorstep_core::store::MutationBody::Record(record) => Some(record),
            _ => None,
        })
        .collect();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, doorstep_core::store::RecordKind::DoorAudit);
    let body: serde_json::Value = serde_json::from_str(&queued[0].body).unwrap();
    assert_eq!(body["outcome"], "unknown_issuer");
    assert_eq!(body["audit_record"], doorstep_core::keys::hex(&lock.audit_log()[0].encode()));
}

#[test]
fn errors_tell_the_driver_what_to_do() {
    let fx = Fixture::new();
    let (session, issuer, _, _) = local_rig(&fx);
    let lock = lock_for(&fx, &issuer, "lobby-main");
    let link = InMemoryLink::new(lock.clone(), 185);

    link.set_in_range(false);
    assert_eq!(session.unlock(BUILDING, "lobby-main", &link).unwrap_err(), CoreError::LockOutOfRange { lock_id: door_tag(BUILDING, "lobby-main").to_string() });
    link.set_in_range(true);

    let no_grant = session.unlock(BUILDING, "garage", &link).unwrap_err();
    assert!(matches!(&no_grant, CoreError::NoGrant { reason, .. } if reason.contains("sync when online")), "{no_grant}");

    fx.clock.advance(Duration::hours(3));
    let expired = session.unlock(BUILDING, "lobby-main", &link).unwrap_err();
    assert!(matches!(&expired, CoreError::NoGrant { reason, .. } if reason.contains("expired")), "{expired}");
    assert_eq!(lock.audit_log().len(), 0, "nothing reached the lock");

    let keyless = fx.dir.path().join("keyless.db");
    let other = DriverSession::open_with(keyless, SessionOptions { clock: fx.clock.clone(), ..SessionOptions::default() }).unwrap();
    assert!(matches!(other.unlock(BUILDING, "lobby-main", &link), Err(CoreError::KeyUnavailable { .. })));
}

#[test]
fn grants_for_another_device_or_job_are_refused_at_the_door_of_the_cache() {
    let fx = Fixture::new();
    let (session, issuer, _, job) = local_rig(&fx);
    let stranger = SoftwareSigner::generate().unwrap();
    let terms = GrantTerms {
        grant_id: [1; 8],
        job_id: job,
        device_key: stranger.device_public_key(),
        door_ids: vec![1],
        not_before: unix_seconds(fx.clock.now()),
        validity_minutes: 60,
        epoch: 0,
        use_limit: 0,
    };
    let theirs = issuer.issue(&terms).unwrap();
    assert!(matches!(session.add_door_grant(job, theirs.encoded()), Err(CoreError::InvalidInput { .. })));
    assert!(matches!(session.add_door_grant(uuid::Uuid::new_v4(), session.door_grants().unwrap()[0].grant.encoded()), Err(CoreError::InvalidInput { .. })));
    assert!(matches!(session.add_door_grant(job, b"\x01junk"), Err(CoreError::InvalidInput { .. })));
    assert_eq!(session.door_grants().unwrap().len(), 1);
    assert_eq!(job_tag(job), session.door_grants().unwrap()[0].grant.job_tag);
}

#[test]
fn counters_survive_a_restart_so_the_lock_never_sees_one_twice() {
    let fx = Fixture::new();
    let (session, issuer, signer, _) = local_rig(&fx);
    let lock = lock_for(&fx, &issuer, "lobby-main");
    let link = InMemoryLink::new(lock.clone(), 185);
    session.unlock(BUILDING, "lobby-main", &link).unwrap();
    session.unlock(BUILDING, "lobby-main", &link).unwrap();
    drop(session);
    let again = fx.open();
    again.set_device_signer(signer);
    again.unlock(BUILDING, "lobby-main", &link).unwrap();
    assert_eq!(lock.times_opened(), 3);
    assert_eq!(lock.audit_log().iter().map(|r| r.counter).collect::<Vec<_>>(), vec![1, 2, 3]);
}
