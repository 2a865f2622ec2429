//! Base64url (no padding) as used on every wire of the contract: state vectors in `?sv=`,
//! durability markers in `/durable`, and the two halves of a user token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url; tolerates trailing `=` padding so standard encoders interoperate.
pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('='))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_padding() {
        let bytes = [0u8, 1, 2, 250, 251, 252, 253];
        let text = super::encode(&bytes);
        assert!(!text.contains('=') && !text.contains('+') && !text.contains('/'));
        assert_eq!(super::decode(&text).unwrap(), bytes);
        assert_eq!(super::decode("AAE=").unwrap(), vec![0, 1]);
        assert!(super::decode("not base64!").is_err());
    }
}
