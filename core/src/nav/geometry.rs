//! Geometry for navigation, on top of `geo`.
//!
//! Distances between points are great-circle distances (`geo::Haversine`,
//! the GRS80 mean Earth radius). Projecting a fix onto a route segment, and
//! measuring a fix against a building footprint, happens in a *local
//! equirectangular frame*: x east and y north in metres around an origin
//! close to the geometry involved (the fix itself, or the stop). Over the few
//! hundred metres a segment or a footprint spans, that frame's error is far
//! below GPS noise (under 0.1 % within 10 km of the origin away from the
//! poles), and it lets `geo`'s planar algorithms (closest point on a line,
//! point-to-polygon distance) do the work. Reported distances from a fix to
//! the route are then measured again with Haversine.

use crate::error::CoreError;
use crate::jobs::GeoPoint;
use geo::{Bearing, Coord, Destination, Distance, Haversine, Point};

/// The sphere radius all navigation distances use (geo's Haversine default).
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

const METRES_PER_DEGREE: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// Great-circle distance in metres.
pub fn distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    Haversine.distance(point(a), point(b))
}

/// Initial great-circle bearing from `from` to `to`, degrees clockwise from
/// north in `[0, 360)`.
pub fn bearing_deg(from: GeoPoint, to: GeoPoint) -> f64 {
    Haversine.bearing(point(from), point(to))
}

/// The point `distance_m` metres from `from` along the great circle leaving
/// at `bearing_deg` (clockwise from north).
pub fn destination(from: GeoPoint, bearing_deg: f64, distance_m: f64) -> GeoPoint {
    geo_point(Haversine.destination(point(from), bearing_deg, distance_m))
}

/// Whether a coordinate is finite and on the globe.
pub fn is_valid(p: GeoPoint) -> bool {
    p.latitude.is_finite()
        && p.longitude.is_finite()
        && (-90.0..=90.0).contains(&p.latitude)
        && (-180.0..=180.0).contains(&p.longitude)
}

/// `InvalidInput` naming `field` unless `p` is a valid coordinate.
pub(crate) fn check_point(field: &str, p: GeoPoint) -> Result<(), CoreError> {
    if !p.latitude.is_finite() || !(-90.0..=90.0).contains(&p.latitude) {
        return Err(CoreError::invalid(
            format!("{field}.latitude"),
            format!("{} is not a latitude in [-90, 90]", p.latitude),
        ));
    }
    if !p.longitude.is_finite() || !(-180.0..=180.0).contains(&p.longitude) {
        return Err(CoreError::invalid(
            format!("{field}.longitude"),
            format!("{} is not a longitude in [-180, 180]", p.longitude),
        ));
    }
    Ok(())
}

pub(crate) fn point(p: GeoPoint) -> Point<f64> {
    Point::new(p.longitude, p.latitude)
}

pub(crate) fn coord(p: GeoPoint) -> Coord<f64> {
    Coord { x: p.longitude, y: p.latitude }
}

pub(crate) fn geo_point(p: Point<f64>) -> GeoPoint {
    GeoPoint { latitude: p.y(), longitude: p.x() }
}

pub(crate) fn from_coord(c: Coord<f64>) -> GeoPoint {
    GeoPoint { latitude: c.y, longitude: c.x }
}

/// A local equirectangular frame: x east and y north, in metres, from an
/// origin. Cheap enough to project every vertex of a search window on each
/// fix (two subtractions and two multiplications).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalFrame {
    origin: Coord<f64>,
    metres_per_lon_degree: f64,
}

impl LocalFrame {
    pub(crate) fn new(origin: GeoPoint) -> Self {
        LocalFrame {
            origin: coord(origin),
            metres_per_lon_degree: METRES_PER_DEGREE * origin.latitude.to_radians().cos(),
        }
    }

    /// A lon/lat coordinate in this frame (the shorter way round across the
    /// antimeridian).
    pub(crate) fn project(&self, c: Coord<f64>) -> Coord<f64> {
        let mut dlon = c.x - self.origin.x;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        Coord { x: dlon * self.metres_per_lon_degree, y: (c.y - self.origin.y) * METRES_PER_DEGREE }
    }
}

/// FNV-1a, for fingerprints that must stay the same across builds and
/// releases (persisted navigation state compares them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fingerprint(u64);

impl Fingerprint {
    pub(crate) fn new() -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn bytes(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    pub(crate) fn u64(self, v: u64) -> Self {
        self.bytes(&v.to_le_bytes())
    }

    pub(crate) fn f64(self, v: f64) -> Self {
        self.u64(v.to_bits())
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

/// Encodes `points` as a Google encoded polyline at `precision` 5 or 6 (the
/// `polyline` crate's encoder), e.g. to send a leg to a shell's map or to
/// build test routes.
pub fn encode_polyline(points: &[GeoPoint], precision: u8) -> Result<crate::jobs::RouteGeometry, CoreError> {
    if !matches!(precision, 5 | 6) {
        return Err(CoreError::invalid("precision", format!("{precision} is not 5 or 6")));
    }
    for (i, p) in points.iter().enumerate() {
        check_point(&format!("points[{i}]"), *p)?;
    }
    let polyline = polyline::encode_coordinates(points.iter().map(|p| coord(*p)), u32::from(precision))
        .map_err(|e| CoreError::invalid("points", e.to_string()))?;
    Ok(crate::jobs::RouteGeometry { polyline, precision })
}

/// Decodes an encoded polyline (the `polyline` crate's decoder).
pub fn decode_polyline(geometry: &crate::jobs::RouteGeometry) -> Result<Vec<GeoPoint>, CoreError> {
    if !matches!(geometry.precision, 5 | 6) {
        return Err(CoreError::invalid("precision", format!("{} is not 5 or 6", geometry.precision)));
    }
    let line = polyline::decode_polyline(&geometry.polyline, u32::from(geometry.precision))
        .map_err(|e| CoreError::invalid("polyline", e.to_string()))?;
    Ok(line.0.into_iter().map(from_coord).collect())
}
