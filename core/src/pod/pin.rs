//! The recipient's PIN, checked against the salted SHA-256 the server sent
//! (`PinCheck`): the device never learns the PIN itself.

use crate::error::{CoreError, Result};
use crate::jobs::PinCheck;
use crate::keys::{from_hex, sha256};

/// Longest PIN accepted as input; anything longer is a typing accident.
pub const MAX_PIN_CHARS: usize = 16;

/// Whether `entered` is the PIN behind `check`: SHA-256(salt || PIN) against
/// the server's digest. Both sides are digests of the same length, so the
/// comparison leaks nothing about the PIN.
pub fn pin_matches(check: &PinCheck, entered: &str) -> Result<bool> {
    let entered = entered.trim();
    if entered.is_empty() || entered.len() > MAX_PIN_CHARS || !entered.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CoreError::invalid("pin", format!("must be 1 to {MAX_PIN_CHARS} letters or digits")));
    }
    let salt = from_hex(&check.salt_hex).ok_or_else(|| CoreError::invalid("pin.salt_hex", "not hex"))?;
    let expected = from_hex(&check.sha256_hex).ok_or_else(|| CoreError::invalid("pin.sha256_hex", "not hex"))?;
    let mut salted = salt;
    salted.extend_from_slice(entered.as_bytes());
    let actual = sha256(&salted);
    Ok(actual.len() == expected.len() && actual.iter().zip(&expected).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PinCheck {
        PinCheck {
            salt_hex: "9f2c4e1a7b3d5f60".into(),
            sha256_hex: "66831b15b4efb5180680d1b83d3bb3d2a8ace52077b7c287ba14509ee55b124f".into(),
            max_attempts: 3,
        }
    }

    #[test]
    fn the_right_pin_matches_and_others_do_not() {
        assert!(pin_matches(&sample(), "4711").unwrap());
        assert!(pin_matches(&sample(), " 4711 ").unwrap());
        assert!(!pin_matches(&sample(), "4712").unwrap());
        assert!(!pin_matches(&sample(), "47110").unwrap());
        assert!(pin_matches(&sample(), "").is_err());
        assert!(pin_matches(&sample(), "47-11").is_err());
    }
}
