//! `GET /v1/jobs/delta` over HTTP: a driver's job changes since a cursor,
//! paged, including jobs reassigned away and admin changes.

mod server_support;

use chrono::{Duration, Utc};
use doorstep_sim::server::wire::{JobStatus, JobUpdate, Window};
use reqwest::StatusCode;
use server_support::{assign, batch, mutation, start};
use std::collections::HashSet;
use uuid::Uuid;

#[test]
fn without_a_cursor_the_driver_gets_every_job_they_hold_with_its_stores() {
    let (_server, admin) = start();
    let mine = assign(&admin, "driver-a", 3);
    assign(&admin, "driver-b", 2);
    let device = admin.driver("driver-a").unwrap();

    let delta = device.delta(None, None).unwrap();
    assert_eq!(delta.format, "doorstep.delta/1");
    assert!(!delta.has_more);
    assert_eq!(delta.jobs.iter().map(|j| j.job.id).collect::<HashSet<_>>(), mine.iter().copied().collect());
    for job in &delta.jobs {
        assert_eq!((job.revision, job.status, job.state.as_str()), (1, JobStatus::Active, "assigned"));
        assert!(delta.stores.iter().any(|store| store.id == job.job.pickup.store_id), "the job's store comes along");
    }
    assert!(delta.server_time <= Utc::now());

    // Driver B's jobs are later changes, none of driver A's business: the
    // cursor moves past them, and stays put once nothing changes.
    let nothing_new = device.delta(Some(&delta.cursor), None).unwrap();
    assert!(nothing_new.jobs.is_empty() && !nothing_new.has_more);
    assert!(nothing_new.cursor.parse::<u64>().unwrap() > delta.cursor.parse::<u64>().unwrap());
    let still_nothing = device.delta(Some(&nothing_new.cursor), None).unwrap();
    assert_eq!(still_nothing.cursor, nothing_new.cursor);
    let ahead = device.delta(Some("9999999999999999999"), None).unwrap();
    assert_eq!(ahead.cursor, "9999999999999999999", "a cursor never moves back");
}

#[test]
fn pages_follow_the_cursor_until_has_more_is_false() {
    let (_server, admin) = start();
    let mine: HashSet<Uuid> = assign(&admin, "driver-a", 7).into_iter().collect();
    let device = admin.driver("driver-a").unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = Some("0".to_owned());
    let mut pages = 0;
    loop {
        let page = device.delta(cursor.as_deref(), Some(3)).unwrap();
        assert!(page.jobs.len() <= 3);
        seen.extend(page.jobs.iter().map(|j| j.job.id));
        cursor = Some(page.cursor.clone());
        pages += 1;
        if !page.has_more {
            break;
        }
        assert!(pages < 10, "paging must end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 7, "no job twice");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), mine);

    // A change after the last page is the only thing the next call returns.
    let changed = *mine.iter().next().unwrap();
    device.post_mutations(&batch(Uuid::new_v4(), vec![mutation(1, changed, "accept")])).unwrap();
    let next = device.delta(cursor.as_deref(), Some(3)).unwrap();
    assert_eq!(
        next.jobs.iter().map(|j| (j.job.id, j.state.as_str(), j.revision)).collect::<Vec<_>>(),
        [(changed, "accepted", 2)]
    );
    assert!(next.cursor.parse::<u64>().unwrap() > cursor.unwrap().parse::<u64>().unwrap());
}

#[test]
fn a_job_reassigned_away_shows_up_for_the_old_driver_as_reassigned() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 2);
    let old_driver = admin.driver("driver-a").unwrap();
    let new_driver = admin.driver("driver-b").unwrap();
    let cursor = old_driver.delta(None, None).unwrap().cursor;

    admin.reassign_job(jobs[0], "driver-b").unwrap();

    let old_view = old_driver.delta(Some(&cursor), None).unwrap();
    assert_eq!(old_view.jobs.len(), 1);
    assert_eq!((old_view.jobs[0].job.id, old_view.jobs[0].status), (jobs[0], JobStatus::Reassigned));
    let new_view = new_driver.delta(None, None).unwrap();
    assert_eq!(
        new_view.jobs.iter().map(|j| (j.job.id, j.status, j.state.as_str())).collect::<Vec<_>>(),
        [(jobs[0], JobStatus::Active, "assigned")]
    );
    let old_full = old_driver.delta(None, None).unwrap();
    assert_eq!(
        old_full.jobs.iter().map(|j| j.job.id).collect::<Vec<_>>(),
        [jobs[1]],
        "a full sync lists only jobs held now"
    );
}

#[test]
fn a_job_picked_up_cannot_be_reassigned() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let device = admin.driver("driver-a").unwrap();
    let steps = ["accept", "arrive_at_pickup", "confirm_pickup"];
    let mutations = steps.iter().enumerate().map(|(i, action)| mutation(i as u64 + 1, jobs[0], action)).collect();
    device.post_mutations(&batch(Uuid::new_v4(), mutations)).unwrap();

    let err = admin.reassign_job(jobs[0], "driver-b").unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(admin.job(jobs[0]).unwrap().driver_id, "driver-a");
}

#[test]
fn a_declined_job_goes_to_the_next_driver_as_assigned() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    admin
        .driver("driver-a")
        .unwrap()
        .post_mutations(&batch(Uuid::new_v4(), vec![mutation(1, jobs[0], "decline")]))
        .unwrap();
    let job = admin.reassign_job(jobs[0], "driver-b").unwrap();
    assert_eq!((job.driver_id.as_str(), job.state.as_str(), job.status), ("driver-b", "assigned", JobStatus::Active));
}

#[test]
fn an_admin_update_bumps_the_revision_and_reaches_the_driver() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 2);
    let device = admin.driver("driver-a").unwrap();
    let cursor = device.delta(None, None).unwrap().cursor;
    let before = admin.job(jobs[1]).unwrap();

    let start = Utc::now() + Duration::hours(3);
    let update = JobUpdate {
        address: Some("  42 New Street  ".to_owned()),
        access_notes: Some("Code 1234, lift to 5".to_owned()),
        dropoff_window: Some(Window { start, end: start + Duration::hours(1) }),
        pickup_window: None,
    };
    let after = admin.update_job(jobs[1], &update).unwrap();
    assert_eq!(after.revision, before.revision + 1);
    assert_eq!(after.job.dropoff.address, "42 New Street", "the core's canonical form");
    assert_eq!(after.job.dropoff.access_notes.as_deref(), Some("Code 1234, lift to 5"));
    assert_eq!(after.job.pickup, before.job.pickup, "untouched fields stay");

    let delta = device.delta(Some(&cursor), None).unwrap();
    assert_eq!(delta.jobs.len(), 1);
    let job = &delta.jobs[0];
    assert_eq!((job.job.id, job.revision), (jobs[1], after.revision));
    assert_eq!(job.job.dropoff.window, Window { start, end: start + Duration::hours(1) });

    let cleared =
        admin.update_job(jobs[1], &JobUpdate { access_notes: Some(String::new()), ..JobUpdate::default() }).unwrap();
    assert_eq!(cleared.job.dropoff.access_notes, None, "empty notes remove them");
}

#[test]
fn an_invalid_update_names_its_field_and_changes_nothing() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let before = admin.job(jobs[0]).unwrap();
    let start = Utc::now();

    let backwards =
        JobUpdate { pickup_window: Some(Window { start, end: start - Duration::hours(1) }), ..JobUpdate::default() };
    let err = admin.update_job(jobs[0], &backwards).unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(err.problem().and_then(|p| p.field.as_deref()), Some("pickup_window.end"));

    let too_long = JobUpdate { address: Some("x".repeat(501)), ..JobUpdate::default() };
    let err = admin.update_job(jobs[0], &too_long).unwrap_err();
    assert_eq!(err.problem().and_then(|p| p.field.as_deref()), Some("address"));

    let empty = admin.update_job(jobs[0], &JobUpdate::default()).unwrap_err();
    assert_eq!(empty.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(admin.job(jobs[0]).unwrap(), before);
}

#[test]
fn bad_cursors_and_limits_are_400_problems() {
    let (_server, admin) = start();
    let device = admin.driver("driver-a").unwrap();
    for (since, limit) in
        [(Some("-1"), None), (Some("12345678901234567890"), None), (None, Some(0)), (None, Some(1001))]
    {
        let err = device.delta(since, limit).unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST), "{since:?} {limit:?}");
    }
}
