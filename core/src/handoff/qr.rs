//! Handoff codes as pictures: the QR symbol (the `qrcode` crate does the
//! encoding, error correction and masking), drawn as SVG for the screens
//! and as PNG for printing, sharing and the standard-reader test.

use crate::error::{CoreError, Result};
use qrcode::{Color, EcLevel, QrCode, Version};

/// Level M restores about 15% of damaged modules: a scratched screen or a
/// glare spot, without growing the symbol the way Q or H would.
const EC_LEVEL: EcLevel = EcLevel::M;
/// The four-module light margin the QR standard requires around a symbol.
const QUIET_ZONE: usize = 4;

/// A QR symbol ready to draw.
pub struct QrSymbol {
    code: QrCode,
}

impl QrSymbol {
    /// Encodes a handoff code's text. The Base45 text is all in the
    /// alphanumeric set, so the encoder picks alphanumeric mode.
    pub fn new(text: &str) -> Result<QrSymbol> {
        QrCode::with_error_correction_level(text.as_bytes(), EC_LEVEL)
            .map(|code| QrSymbol { code })
            .map_err(|e| CoreError::invalid("handoff_code", format!("cannot be drawn as a QR code: {e}")))
    }

    /// The QR version, 1 (21×21 modules) to 40 (177×177).
    pub fn version(&self) -> i16 {
        match self.code.version() {
            Version::Normal(n) | Version::Micro(n) => n,
        }
    }

    /// Modules per side, without the quiet zone.
    pub fn width(&self) -> usize {
        self.code.width()
    }

    /// A scalable SVG; `module_px` sets the nominal size of one module.
    pub fn to_svg(&self, module_px: u32) -> String {
        self.code
            .render::<qrcode::render::svg::Color<'_>>()
            .quiet_zone(true)
            .module_dimensions(module_px.max(1), module_px.max(1))
            .build()
    }

    /// An 8-bit greyscale PNG, `module_px` pixels per module (at least 1,
    /// at most 32), with the quiet zone.
    pub fn to_png(&self, module_px: u32) -> Result<Vec<u8>> {
        let scale = module_px.clamp(1, 32) as usize;
        let modules = self.width();
        let side = (modules + 2 * QUIET_ZONE) * scale;
        let colors = self.code.to_colors();
        let mut pixels = vec![255u8; side * side];
        for (index, color) in colors.iter().enumerate() {
            if *color == Color::Dark {
                let (x, y) = (index % modules + QUIET_ZONE, index / modules + QUIET_ZONE);
                for row in y * scale..(y + 1) * scale {
                    pixels[row * side + x * scale..row * side + (x + 1) * scale].fill(0);
                }
            }
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let fail = |e: png::EncodingError| CoreError::Internal { reason: format!("PNG encoding failed: {e}") };
        let mut writer = encoder.write_header().map_err(fail)?;
        writer.write_image_data(&pixels).map_err(fail)?;
        writer.finish().map_err(fail)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_code_draws_as_svg_and_png() {
        let symbol = QrSymbol::new("DH1:ABC").unwrap();
        assert_eq!(symbol.version(), 1);
        assert_eq!(symbol.width(), 21);
        let svg = symbol.to_svg(4);
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        let png = symbol.to_png(3).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        assert_eq!(reader.info().width, (21 + 8) * 3);
    }

    #[test]
    fn the_largest_handoff_message_fits_the_version_the_codec_promises() {
        let largest = format!("{}{}", crate::handoff::codec::TEXT_PREFIX, crate::handoff::base45::encode(&[0xa5; crate::handoff::codec::MAX_MESSAGE_BYTES]));
        assert_eq!(QrSymbol::new(&largest).unwrap().version(), 25);
    }

    #[test]
    fn text_too_long_for_any_qr_code_is_refused() {
        assert!(QrSymbol::new(&"A".repeat(5000)).is_err());
    }
}
