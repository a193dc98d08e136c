//! Base45 (RFC 9285): binary to the 45 characters a QR code's alphanumeric
//! mode carries at 5.5 bits each, as the EU Digital COVID Certificate does.
//! Every character of the alphabet is in that mode's set, so a QR encoder
//! picks alphanumeric mode for the whole text.

const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Why a text is not Base45.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base45Error {
    #[error("character {position} is not in the Base45 alphabet")]
    BadCharacter { position: usize },
    /// A single trailing character cannot stand for any byte.
    #[error("a Base45 text cannot have length {length}")]
    BadLength { length: usize },
    #[error("the group at character {position} is out of range")]
    OutOfRange { position: usize },
}

pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(2) * 3);
    for pair in bytes.chunks(2) {
        let (mut value, digits) = match *pair {
            [a, b] => (u32::from(a) * 256 + u32::from(b), 3),
            [a] => (u32::from(a), 2),
            _ => unreachable!("chunks(2) yields one or two bytes"),
        };
        for _ in 0..digits {
            out.push(char::from(ALPHABET[(value % 45) as usize]));
            value /= 45;
        }
    }
    out
}

pub fn decode(text: &str) -> Result<Vec<u8>, Base45Error> {
    let digits = text
        .bytes()
        .enumerate()
        .map(|(position, c)| {
            ALPHABET.iter().position(|&a| a == c).map(|d| d as u32).ok_or(Base45Error::BadCharacter { position })
        })
        .collect::<Result<Vec<u32>, _>>()?;
    if digits.len() % 3 == 1 {
        return Err(Base45Error::BadLength { length: digits.len() });
    }
    let mut out = Vec::with_capacity(digits.len() / 3 * 2 + 1);
    for (group, chunk) in digits.chunks(3).enumerate() {
        let position = group * 3;
        match *chunk {
            [c, d, e] => {
                let value = c + d * 45 + e * 45 * 45;
                if value > 0xFFFF {
                    return Err(Base45Error::OutOfRange { position });
                }
                out.extend_from_slice(&(value as u16).to_be_bytes());
            }
            [c, d] => {
                let value = c + d * 45;
                if value > 0xFF {
                    return Err(Base45Error::OutOfRange { position });
                }
                out.push(value as u8);
            }
            _ => unreachable!("length checked above"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_rfc_9285_examples() {
        assert_eq!(encode(b"AB"), "BB8");
        assert_eq!(encode(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(encode(b"base-45"), "UJCLQE7W581");
        assert_eq!(encode(b"ietf!"), "QED8WEX0");
        assert_eq!(decode("QED8WEX0").unwrap(), b"ietf!");
        assert_eq!(decode("%69 VD92EX0").unwrap(), b"Hello!!");
        assert_eq!(decode("").unwrap(), b"");
    }

    #[test]
    fn malformed_texts_are_refused_by_kind() {
        assert_eq!(decode("GGW"), Err(Base45Error::OutOfRange { position: 0 }), "65535 + 1");
        assert_eq!(decode(":::"), Err(Base45Error::OutOfRange { position: 0 }));
        assert_eq!(decode("BB8A"), Err(Base45Error::BadLength { length: 4 }));
        assert_eq!(decode("BB8a"), Err(Base45Error::BadCharacter { position: 3 }));
        assert_eq!(decode("::"), Err(Base45Error::OutOfRange { position: 0 }));
    }

    proptest! {
        #[test]
        fn bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let text = encode(&bytes);
            prop_assert!(text.bytes().all(|c| ALPHABET.contains(&c)));
            prop_assert_eq!(decode(&text).unwrap(), bytes);
        }

        #[test]
        fn any_text_decodes_or_is_refused_without_panicking(text in "\\PC{0,80}") {
            let _ = decode(&text);
        }

        #[test]
        fn alphabet_texts_that_decode_encode_back_to_themselves(text in "[0-9A-Z $%*+./:-]{0,90}") {
            if let Ok(bytes) = decode(&text) {
                prop_assert_eq!(encode(&bytes), text);
            }
        }
    }
}
