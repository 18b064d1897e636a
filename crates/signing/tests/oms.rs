//! The OMS v1.0 test vectors (../shared/schemas/oms): the valid bundles pass Kiln's
//! structural checks with the method they use, each invalid one is refused with its
//! reason, and the key-method vector's signature is checked against a key that is not
//! its signer (the vectors ship no public key): refused as another key's.

use kiln_signing::{Method, SignatureError, VerifyingKey, bundle};

fn vector(name: &str) -> Vec<u8> {
    let path = kiln_testkit::manifests::schemas()
        .join("oms/test-vectors/v1.0")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_valid_vectors_pass_the_structural_checks_with_their_method() {
    for (file, method) in [
        ("valid/key.bundle.json", Method::Key),
        ("valid/certificate.bundle.json", Method::Certificate),
        ("valid/sigstore.bundle.json", Method::Sigstore),
    ] {
        let parsed = bundle::parse(&vector(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(parsed.method, method, "{file}");
        assert_eq!(parsed.statement.predicate_type, bundle::PREDICATE_TYPE);
        let names: Vec<&str> = parsed
            .statement
            .predicate
            .resources
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["signme-1", "signme-2"], "{file}");
        assert!(
            parsed
                .statement
                .predicate
                .serialization
                .ignore_paths
                .contains(&"ignore-me".to_string())
        );
    }
}

#[test]
fn each_invalid_vector_is_refused_with_its_reason() {
    for (file, reason) in [
        ("invalid/empty.bundle.json", "the file is empty"),
        ("invalid/missing-envelope.bundle.json", "no `dsseEnvelope`"),
        (
            "invalid/missing-verification-material.bundle.json",
            "no `verificationMaterial`",
        ),
        (
            "invalid/missing-tlog-entries.bundle.json",
            "the sigstore method needs at least one transparency-log entry",
        ),
        (
            "invalid-payload/wrong-predicate.bundle.json",
            "predicateType is \"https://example.com/wrong-predicate/v1.0\"",
        ),
    ] {
        let e = bundle::parse(&vector(file)).expect_err(file);
        assert!(matches!(e, SignatureError::Malformed(_)), "{file}: {e}");
        assert!(e.to_string().contains(reason), "{file}: {e}");
    }
}

#[test]
fn the_key_vector_is_refused_for_another_key_and_certificate_methods_as_unsupported() {
    // A P-256 key made with `openssl ecparam -name prime256v1 -genkey`.
    let other = VerifyingKey::from_pem(
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEg0jplr/I2OV1KqSir8mpe5qWglns\nXvQlMy1pxwpWGTHYfNumRgnVs7rwi7ytga8CPeUvAyqBXsEvg33QD0sBWg==\n-----END PUBLIC KEY-----\n",
        "test key",
    )
    .expect("a P-256 public key");
    let e = kiln_signing::verify(&vector("valid/key.bundle.json"), &other, &[])
        .expect_err("not its signer");
    assert!(matches!(e, SignatureError::WrongKey { .. }), "{e}");
    let e = kiln_signing::verify(&vector("valid/certificate.bundle.json"), &other, &[])
        .expect_err("certificate");
    assert!(e.to_string().contains("`certificate` method"), "{e}");
}
