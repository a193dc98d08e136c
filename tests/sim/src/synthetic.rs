//! Synthetic dispatch documents of any size, for soak tests and benchmarks.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// The walk a job takes on a good day.
pub const HAPPY_PATH: [doorstep_core::Transition; 5] = [
    doorstep_core::Transition::Accept,
    doorstep_core::Transition::ArriveAtPickup,
    doorstep_core::Transition::ConfirmPickup,
    doorstep_core::Transition::ArriveAtDropoff,
    doorstep_core::Transition::Deliver,
];

/// A valid `doorstep.dispatch/1` document with `jobs` fresh jobs (new random
/// ids and barcodes every call) spread over `stores` stores.
pub fn document(jobs: usize, stores: usize, day: DateTime<Utc>) -> String {
    let stores: Vec<Value> = (0..stores.max(1))
        .map(|s| {
            json!({
                "id": Uuid::new_v4(),
                "name": format!("Store {s}"),
                "address": format!("Unit {s}, Test Mall"),
                "location": {"lat": 37.79 + s as f64 * 0.001, "lon": -122.27},
                "time_zone": "America/Los_Angeles",
                "opening_hours": [{"weekday": "monday", "opens": "09:00", "closes": "21:00"}],
            })
        })
        .collect();
    let jobs: Vec<Value> = (0..jobs)
        .map(|j| {
            let start = day + Duration::minutes((j % 600) as i64);
            let window = |from: DateTime<Utc>| json!({"start": from, "end": from + Duration::hours(2)});
            json!({
                "id": Uuid::new_v4(),
                "reference": format!("SYN-{j}"),
                "pickup": {"store_id": stores[j % stores.len()]["id"], "window": window(start)},
                "dropoff": {
                    "recipient_name": format!("Recipient {j}"),
                    "address": format!("{} Test Street", j + 1),
                    "location": {"lat": 37.80 + (j % 100) as f64 * 0.0005, "lon": -122.26},
                    "window": window(start + Duration::hours(1)),
                },
                "packages": [{"id": Uuid::new_v4(), "barcode": format!("SYN{}", Uuid::new_v4().simple()), "description": "Parcel"}],
                "pod": {"min_photos": 1, "scan_all_packages": true, "allowed_methods": ["handed_to_recipient", "left_at_door"]},
            })
        })
        .collect();
    json!({"format": "doorstep.dispatch/1", "stores": stores, "jobs": jobs}).to_string()
}
