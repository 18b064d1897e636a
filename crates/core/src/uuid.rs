//! UUID text from bytes Kiln already has (no random source): a name-based one for
//! things that must keep their identity (a BOM's serial number, a pipeline run), and
//! the layout for time-ordered ones.

use sha2::{Digest, Sha256};

/// `bytes` as a UUID of `version` (RFC 9562 layout: version nibble and variant bits
/// set), in the 8-4-4-4-12 hex text.
pub fn format(mut bytes: [u8; 16], version: u8) -> String {
    bytes[6] = (bytes[6] & 0x0f) | (version << 4);
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A stable UUID for a name (version 5 layout over the name's sha256): the same name
/// always gives the same id.
pub fn from_name(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    format(bytes, 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_stable_rfc_9562_uuids() {
        let a = from_name("x");
        assert_eq!(a, from_name("x"));
        assert_ne!(a, from_name("y"));
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('5'));
        assert!(matches!(
            groups[3].chars().next(),
            Some('8' | '9' | 'a' | 'b')
        ));
        assert!(format([0xff; 16], 7)[14..].starts_with('7'));
    }
}
