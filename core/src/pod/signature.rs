//! The recipient's signature: vector strokes from the shell's signature pad,
//! checked, then rendered to SVG text and to a PNG (tiny-skia rasterizes
//! and encodes) for the record and the shell's preview.

use crate::error::{CoreError, Result};
use std::fmt::Write as _;

/// Largest pad the core renders, per side, in points.
pub const MAX_PAD_SIDE: f32 = 2048.0;
pub const MAX_STROKES: usize = 200;
/// Keeps a sealed record well under what dispatch accepts (256 KiB).
pub const MAX_POINTS: usize = 6_000;
/// Pen width in the PNG and the SVG, in pad points.
const PEN_WIDTH: f32 = 3.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrokePoint {
    pub x: f32,
    pub y: f32,
}

/// One pen-down to pen-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Stroke {
    pub points: Vec<StrokePoint>,
}

/// The signature, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureRendering {
    pub svg: String,
    pub png: Vec<u8>,
    pub stroke_count: u32,
}

/// Checks the strokes against a `width` × `height` pad and renders them.
/// `InvalidInput` for an empty signature, points off the pad or not finite,
/// or too many strokes or points.
pub fn render(width: f32, height: f32, strokes: &[Stroke]) -> Result<SignatureRendering> {
    check(width, height, strokes)?;
    Ok(SignatureRendering { svg: to_svg(width, height, strokes), png: to_png(width, height, strokes)?, stroke_count: strokes.len() as u32 })
}

fn check(width: f32, height: f32, strokes: &[Stroke]) -> Result<()> {
    for (field, side) in [("width", width), ("height", height)] {
        if !side.is_finite() || !(1.0..=MAX_PAD_SIDE).contains(&side) {
            return Err(CoreError::invalid(field, format!("the pad is 1 to {MAX_PAD_SIDE} points per side")));
        }
    }
    if strokes.is_empty() || strokes.iter().all(|s| s.points.is_empty()) {
        return Err(CoreError::invalid("strokes", "the signature is empty"));
    }
    if strokes.len() > MAX_STROKES {
        return Err(CoreError::invalid("strokes", format!("at most {MAX_STROKES} strokes")));
    }
    if strokes.iter().map(|s| s.points.len()).sum::<usize>() > MAX_POINTS {
        return Err(CoreError::invalid("strokes", format!("at most {MAX_POINTS} points in all")));
    }
    for (i, stroke) in strokes.iter().enumerate() {
        for point in &stroke.points {
            let on_pad = |v: f32, side: f32| v.is_finite() && (0.0..=side).contains(&v);
            if !on_pad(point.x, width) || !on_pad(point.y, height) {
                return Err(CoreError::invalid(format!("strokes[{i}]"), "a point lies off the pad or is not a number"));
            }
        }
    }
    Ok(())
}

/// One `<path>` per stroke, coordinates to 0.1 point; a single-point stroke
/// is a dot (a zero-length line with round caps).
fn to_svg(width: f32, height: f32, strokes: &[Stroke]) -> String {
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <g fill=\"none\" stroke=\"#000\" stroke-width=\"{PEN_WIDTH}\" stroke-linecap=\"round\" stroke-linejoin=\"round\">"
    );
    for stroke in strokes.iter().filter(|s| !s.points.is_empty()) {
        svg.push_str("<path d=\"");
        for (i, p) in stroke.points.iter().enumerate() {
            let _ = write!(svg, "{}{:.1} {:.1}", if i == 0 { "M" } else { " L" }, p.x, p.y);
        }
        if stroke.points.len() == 1 {
            svg.push_str(" l0 0");
        }
        svg.push_str("\"/>");
    }
    svg.push_str("</g></svg>");
    svg
}

fn to_png(width: f32, height: f32, strokes: &[Stroke]) -> Result<Vec<u8>> {
    use tiny_skia::{Color, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Stroke as Pen, Transform};
    let render_failed = |what: &str| CoreError::Internal { reason: format!("rendering the signature: {what}") };
    let mut pixmap = Pixmap::new(width.ceil() as u32, height.ceil() as u32).ok_or_else(|| render_failed("pixmap"))?;
    pixmap.fill(Color::WHITE);
    let mut paint = Paint::default();
    paint.set_color(Color::BLACK);
    paint.anti_alias = true;
    let pen = Pen { width: PEN_WIDTH, line_cap: LineCap::Round, line_join: LineJoin::Round, ..Pen::default() };
    for stroke in strokes.iter().filter(|s| !s.points.is_empty()) {
        let mut path = PathBuilder::new();
        let first = stroke.points[0];
        path.move_to(first.x, first.y);
        if stroke.points.len() == 1 {
            // A dot: tiny-skia drops zero-length segments, so draw a tiny one.
            path.line_to(first.x + 0.01, first.y);
        }
        for p in &stroke.points[1..] {
            path.line_to(p.x, p.y);
        }
        if let Some(path) = path.finish() {
            pixmap.stroke_path(&path, &paint, &pen, Transform::identity(), None);
        }
    }
    pixmap.encode_png().map_err(|e| render_failed(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stroke(points: &[(f32, f32)]) -> Stroke {
        Stroke { points: points.iter().map(|&(x, y)| StrokePoint { x, y }).collect() }
    }

    #[test]
    fn strokes_render_to_svg_and_a_png_with_ink_where_they_run() {
        let rendering = render(200.0, 80.0, &[stroke(&[(10.0, 40.0), (190.0, 40.0)]), stroke(&[(100.0, 10.0)])]).unwrap();
        assert_eq!(rendering.stroke_count, 2);
        assert!(rendering.svg.contains("M10.0 40.0 L190.0 40.0"));
        assert!(rendering.svg.contains("M100.0 10.0 l0 0"));
        let decoded = tiny_skia::Pixmap::decode_png(&rendering.png).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (200, 80));
        let dark = |x: u32, y: u32| decoded.pixel(x, y).unwrap().red() < 128;
        assert!(dark(100, 40), "ink on the line");
        assert!(!dark(100, 70), "paper below it");
        assert!(dark(100, 10), "the dot");
    }

    proptest::proptest! {
        #[test]
        fn any_strokes_render_or_are_refused_without_panicking(
            width in -10.0f32..3000.0,
            height in -10.0f32..3000.0,
            strokes in proptest::collection::vec(
                proptest::collection::vec((proptest::num::f32::ANY, proptest::num::f32::ANY), 0..6), 0..4),
        ) {
            let strokes: Vec<Stroke> = strokes.iter().map(|points| stroke(points)).collect();
            match render(width, height, &strokes) {
                Ok(rendering) => proptest::prop_assert!(rendering.png.starts_with(b"\x89PNG")),
                Err(err) => proptest::prop_assert!(matches!(err, CoreError::InvalidInput { .. }), "{err:?}"),
            }
        }
    }

    #[test]
    fn bad_strokes_are_refused() {
        assert!(render(200.0, 80.0, &[]).is_err());
        assert!(render(200.0, 80.0, &[stroke(&[])]).is_err());
        assert!(render(200.0, 80.0, &[stroke(&[(201.0, 1.0)])]).is_err());
        assert!(render(200.0, 80.0, &[stroke(&[(f32::NAN, 1.0)])]).is_err());
        assert!(render(0.0, 80.0, &[stroke(&[(0.0, 1.0)])]).is_err());
        assert!(render(5000.0, 80.0, &[stroke(&[(0.0, 1.0)])]).is_err());
    }
}
