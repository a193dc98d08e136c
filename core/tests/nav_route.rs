//! The navigation route model through the public API: polyline legs
//! (precision 5 and 6), straight and open legs, validation, leg replacement.

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::nav::{Geofence, LegShape, Route, RouteStop, StopInput, StopKind, geometry};
use doorstep_core::{CoreError, GeoPoint, RouteGeometry, TimeWindow};
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

fn p(latitude: f64, longitude: f64) -> GeoPoint {
    GeoPoint { latitude, longitude }
}

fn stop(n: u128, location: GeoPoint, leg: Option<RouteGeometry>) -> StopInput {
    StopInput {
        job_id: Uuid::from_u128(n),
        kind: StopKind::Dropoff,
        location,
        geofence: Geofence::default(),
        window: TimeWindow { start: t0(), end: t0() + TimeDelta::hours(2) },
        service_time_s: 60.0,
        leg,
    }
}

fn field_of(err: CoreError) -> String {
    match err {
        CoreError::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

/// A wiggly line of `n` vertices starting at `start`, each coordinate
/// already rounded to `precision` decimals (what a polyline can carry).
fn wiggle(start: GeoPoint, n: usize, precision: i32) -> Vec<GeoPoint> {
    let scale = 10f64.powi(precision);
    (0..n)
        .map(|k| {
            let k = k as f64;
            let q = p(start.latitude + 0.0003 * (k / 3.0).sin() + 0.00001 * k, start.longitude + 0.00017 * k);
            p((q.latitude * scale).round() / scale, (q.longitude * scale).round() / scale)
        })
        .collect()
}

#[test]
fn polyline_legs_round_trip_at_precision_5_and_6() {
    for precision in [5u8, 6] {
        let points = wiggle(p(52.520008, 13.404954), 200, i32::from(precision));
        // Encoded by the `polyline` crate, as a router would send it.
        let encoded = polyline::encode_coordinates(
            points.iter().map(|q| geo::Coord { x: q.longitude, y: q.latitude }),
            u32::from(precision),
        )
        .unwrap();
        let geometry = RouteGeometry { polyline: encoded.clone(), precision };
        let route = Route::new(None, vec![stop(1, *points.last().unwrap(), Some(geometry.clone()))]).unwrap();
        assert_eq!(route.leg_shape(0), Some(LegShape::Polyline));

        let decoded = route.leg_vertices(0).unwrap();
        assert_eq!(decoded.len(), points.len());
        let tolerance = 0.5 / 10f64.powi(i32::from(precision));
        for (a, b) in decoded.iter().zip(&points) {
            assert!((a.latitude - b.latitude).abs() <= tolerance && (a.longitude - b.longitude).abs() <= tolerance);
        }
        // And back: the same string.
        assert_eq!(route.leg_polyline(0, precision).unwrap(), geometry);
        assert_eq!(geometry::encode_polyline(&decoded, precision).unwrap().polyline, encoded);

        // The leg's length is the sum of its segments' great-circle lengths.
        let expected: f64 = points.windows(2).map(|w| geometry::distance_m(w[0], w[1])).sum();
        assert!((route.leg_length_m(0).unwrap() - expected).abs() < 1e-6);
        assert!((route.total_length_m() - expected).abs() < 1e-6);
    }
}

#[test]
fn precision_matters_and_the_reference_vector_decodes() {
    // Google's reference example.
    let google = RouteGeometry { polyline: "_p~iF~ps|U_ulLnnqC_mqNvxq`@".into(), precision: 5 };
    let route = Route::new(None, vec![stop(1, p(43.252, -126.453), Some(google.clone()))]).unwrap();
    assert_eq!(route.leg_vertices(0).unwrap(), vec![p(38.5, -120.2), p(40.7, -120.95), p(43.252, -126.453)]);

    // The same points at precision 6 are a different string, and decoding
    // it at precision 6 gives the points back.
    let six = geometry::encode_polyline(&route.leg_vertices(0).unwrap(), 6).unwrap();
    assert_ne!(six.polyline, google.polyline);
    let route6 = Route::new(None, vec![stop(1, p(43.252, -126.453), Some(six.clone()))]).unwrap();
    assert_eq!(route6.leg_vertices(0).unwrap(), route.leg_vertices(0).unwrap());
    // Read at the wrong precision it is ten times off, hence out of range here.
    let wrong = RouteGeometry { precision: 5, ..six };
    assert_eq!(
        field_of(Route::new(None, vec![stop(1, p(43.0, -126.0), Some(wrong))]).unwrap_err()),
        "stops[0].leg.polyline"
    );
}

#[test]
fn straight_and_open_legs_when_no_geometry_is_given() {
    let (a, b, c) = (p(48.0, 11.0), p(48.01, 11.0), p(48.01, 11.02));
    let route = Route::new(None, vec![stop(1, a, None), stop(2, b, None)]).unwrap();
    assert_eq!(route.leg_shape(0), Some(LegShape::Open));
    assert_eq!(route.leg_length_m(0), Some(0.0));
    assert_eq!(route.leg_shape(1), Some(LegShape::Straight));
    assert_eq!(route.leg_vertices(1).unwrap(), vec![a, b]);
    assert!((route.leg_length_m(1).unwrap() - geometry::distance_m(a, b)).abs() < 1e-9);

    let from_origin = Route::new(Some(c), vec![stop(1, a, None)]).unwrap();
    assert_eq!(from_origin.leg_shape(0), Some(LegShape::Straight));
    assert_eq!(from_origin.leg_vertices(0).unwrap(), vec![c, a]);
}

#[test]
fn bad_routes_name_the_field() {
    let here = p(48.0, 11.0);
    let leg = |polyline: &str, precision| Some(RouteGeometry { polyline: polyline.into(), precision });
    let cases: Vec<(Vec<StopInput>, &str)> = vec![
        (vec![], "stops"),
        (vec![stop(1, here, None), stop(2, here, leg("!!!", 5))], "stops[1].leg.polyline"),
        (vec![stop(1, here, leg("", 6))], "stops[0].leg.polyline"),
        (vec![stop(1, here, leg("_p~iF", 5))], "stops[0].leg.polyline"),
        (vec![stop(1, here, leg("_p~iF~ps|U", 7))], "stops[0].leg.precision"),
        (vec![stop(1, p(f64::NAN, 11.0), None)], "stops[0].location.latitude"),
        (vec![stop(1, p(48.0, 181.0), None)], "stops[0].location.longitude"),
        (
            vec![StopInput { geofence: Geofence::Radius { radius_m: -5.0 }, ..stop(1, here, None) }],
            "stops[0].geofence.radius_m",
        ),
        (
            vec![StopInput {
                geofence: Geofence::Polygon { vertices: vec![here, p(48.0001, 11.0)] },
                ..stop(1, here, None)
            }],
            "stops[0].geofence.vertices",
        ),
        (
            vec![StopInput {
                geofence: Geofence::Polygon { vertices: vec![here, p(48.0001, 11.0), p(48.0001, f64::INFINITY)] },
                ..stop(1, here, None)
            }],
            "stops[0].geofence.vertices[2].longitude",
        ),
        (vec![StopInput { service_time_s: -1.0, ..stop(1, here, None) }], "stops[0].service_time_s"),
        (
            vec![StopInput {
                window: TimeWindow { start: t0(), end: t0() - TimeDelta::hours(1) },
                ..stop(1, here, None)
            }],
            "stops[0].window",
        ),
    ];
    for (stops, field) in cases {
        assert_eq!(field_of(Route::new(None, stops).unwrap_err()), field);
    }
    assert_eq!(field_of(Route::new(Some(p(95.0, 0.0)), vec![stop(1, here, None)]).unwrap_err()), "origin.latitude");
    assert_eq!(field_of(RouteStop::new(&stop(1, p(48.0, -190.0), None)).unwrap_err()), "stop.location.longitude");
}

#[test]
fn replacing_a_leg_changes_only_that_leg() {
    let (a, b) = (p(48.0, 11.0), p(48.0, 11.01));
    let route0 = Route::new(Some(p(47.99, 11.0)), vec![stop(1, a, None), stop(2, b, None)]).unwrap();
    let mut route = route0.clone();
    let detour = vec![a, p(48.002, 11.0), p(48.002, 11.01), b];
    route.replace_leg_geometry(1, Some(&geometry::encode_polyline(&detour, 6).unwrap())).unwrap();
    assert_eq!(route.leg_shape(1), Some(LegShape::Polyline));
    assert_eq!(route.leg_vertices(1).unwrap(), detour);
    assert_eq!(route.leg_vertices(0), route0.leg_vertices(0));
    assert!(route.total_length_m() > route0.total_length_m() + 400.0);
    // The stops are the same, so a navigation state carries over.
    assert_eq!(route.fingerprint(), route0.fingerprint());

    route.replace_leg_geometry(1, None).unwrap();
    assert_eq!(route.leg_vertices(1).unwrap(), vec![a, b]);
    let bad = RouteGeometry { polyline: "~".into(), precision: 5 };
    assert_eq!(field_of(route.replace_leg_geometry(1, Some(&bad)).unwrap_err()), "geometry.polyline");
    assert_eq!(field_of(route.replace_leg_geometry(2, None).unwrap_err()), "stop_index");
}

#[test]
fn the_fingerprint_follows_the_stop_list() {
    let (a, b) = (p(48.0, 11.0), p(48.0, 11.01));
    let one = Route::new(None, vec![stop(1, a, None), stop(2, b, None)]).unwrap();
    let same = Route::new(Some(a), vec![stop(1, a, None), stop(2, b, None)]).unwrap();
    let swapped = Route::new(None, vec![stop(2, b, None), stop(1, a, None)]).unwrap();
    assert_eq!(one.fingerprint(), same.fingerprint());
    assert_ne!(one.fingerprint(), swapped.fingerprint());
}
