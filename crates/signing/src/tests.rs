use super::*;

fn p256_key(seed: u8) -> SigningKey {
    SigningKey::P256(p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).expect("key"))
}

fn keys() -> Vec<SigningKey> {
    vec![
        p256_key(7),
        SigningKey::P384(p384::ecdsa::SigningKey::from_bytes(&[9u8; 48].into()).expect("key")),
        SigningKey::P521({
            // A P-521 scalar is below the group order: its top byte is at most 1.
            let mut scalar = [3u8; 66];
            scalar[0] = 0;
            p521::ecdsa::SigningKey::from_slice(&scalar).expect("key")
        }),
    ]
}

fn files() -> Vec<(String, Bytes)> {
    vec![
        ("model.bin".into(), Bytes::from_static(b"weights")),
        ("metadata.json".into(), Bytes::from_static(b"{}")),
        ("sub/transform.json".into(), Bytes::from_static(b"[1,2]")),
        (".git/HEAD".into(), Bytes::from_static(b"ignored")),
    ]
}

#[test]
fn a_signature_verifies_on_every_curve_and_lists_every_file_but_the_ignored() {
    for key in keys() {
        let signed = sign("model", &files(), &key).expect("sign");
        let signature = signed.bytes;
        let verified = verify(&signature, &key.verifying_key(), &files()).expect("verify");
        assert_eq!(verified.root_digest, signed.root_digest);
        assert_eq!(
            verified.files,
            vec!["metadata.json", "model.bin", "sub/transform.json"]
        );
        assert_eq!(verified.method, Method::Key);
        assert_eq!(verified.curve, key.curve());
        // The signature file itself never counts as an added file.
        let mut with_sig = files();
        with_sig.push((SIGNATURE_FILE.into(), Bytes::from(signature.clone())));
        verify(&signature, &key.verifying_key(), &with_sig).expect("signature file ignored");
    }
}

#[test]
fn the_first_changed_added_or_removed_file_is_named() {
    let key = p256_key(7);
    let signature = sign("model", &files(), &key).expect("sign").bytes;
    let public = key.verifying_key();
    let mut changed = files();
    changed[0].1 = Bytes::from_static(b"weightz");
    let e = verify(&signature, &public, &changed).expect_err("changed");
    assert!(
        matches!(&e, SignatureError::Changed { file, .. } if file == "model.bin"),
        "{e}"
    );
    let mut added = files();
    added.push(("extra.json".into(), Bytes::new()));
    let e = verify(&signature, &public, &added).expect_err("added");
    assert!(
        matches!(&e, SignatureError::Added { file } if file == "extra.json"),
        "{e}"
    );
    let removed: Vec<_> = files().into_iter().skip(1).collect();
    let e = verify(&signature, &public, &removed).expect_err("removed");
    assert!(
        matches!(&e, SignatureError::Removed { file } if file == "model.bin"),
        "{e}"
    );
}

#[test]
fn another_key_or_an_edited_statement_is_refused() {
    let signature = sign("model", &files(), &p256_key(7)).expect("sign").bytes;
    let e = verify(&signature, &p256_key(8).verifying_key(), &files()).expect_err("other key");
    assert!(matches!(e, SignatureError::WrongKey { .. }), "{e}");
    // Rewrite the payload (a consistent manifest for other bytes): the DSSE
    // signature no longer matches.
    let mut doc: serde_json::Value = serde_json::from_slice(&signature).expect("JSON");
    let mut tampered = files();
    tampered[0].1 = Bytes::from_static(b"other weights");
    let forged = sign("model", &tampered, &p256_key(9)).expect("sign").bytes;
    let forged: serde_json::Value = serde_json::from_slice(&forged).expect("JSON");
    doc["dsseEnvelope"]["payload"] = forged["dsseEnvelope"]["payload"].clone();
    let bytes = serde_json::to_vec(&doc).expect("JSON");
    let e = verify(&bytes, &p256_key(7).verifying_key(), &tampered).expect_err("forged");
    assert!(matches!(e, SignatureError::BadSignature(_)), "{e}");
}

#[test]
fn shard_manifests_are_checked_range_by_range() {
    let key = p256_key(7);
    let bytes = Bytes::from_static(b"0123456789");
    let resources = vec![
        Resource {
            name: "w.bin:0:4".into(),
            digest: sha256_hex(b"0123"),
            algorithm: "sha256".into(),
        },
        Resource {
            name: "w.bin:4:8".into(),
            digest: sha256_hex(b"4567"),
            algorithm: "sha256".into(),
        },
        Resource {
            name: "w.bin:8:10".into(),
            digest: sha256_hex(b"89"),
            algorithm: "sha256".into(),
        },
    ];
    let statement = json!({
        "_type": bundle::STATEMENT_TYPE,
        "subject": [{"name": "m", "digest": {"sha256": bundle::root_digest(&resources).unwrap()}}],
        "predicateType": bundle::PREDICATE_TYPE,
        "predicate": {"resources": resources, "serialization": {
            "method": "shards", "hash_type": "sha256", "shard_size": 4, "allow_symlinks": false}},
    });
    let payload = serde_json::to_vec(&statement).unwrap();
    let sig = key.sign(&bundle::pae(bundle::PAYLOAD_TYPE, &payload));
    let doc = json!({
        "mediaType": bundle::MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.verifying_key().hint()}},
        "dsseEnvelope": {"payload": STANDARD.encode(&payload), "payloadType": bundle::PAYLOAD_TYPE,
            "signatures": [{"sig": STANDARD.encode(sig)}]},
    });
    let signature = serde_json::to_vec(&doc).unwrap();
    let ok = vec![("w.bin".to_string(), bytes.clone())];
    verify(&signature, &key.verifying_key(), &ok).expect("shards verify");
    let longer = vec![("w.bin".to_string(), Bytes::from_static(b"0123456789x"))];
    let e = verify(&signature, &key.verifying_key(), &longer).expect_err("grown");
    assert!(matches!(e, SignatureError::Changed { .. }), "{e}");
}

#[test]
fn keys_round_trip_through_pem_and_the_hint_is_the_pem_sha256() {
    for key in keys() {
        let public = key.verifying_key();
        let pem = public.to_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let back = VerifyingKey::from_pem(&pem, "test").expect("PEM");
        assert_eq!(back.hint(), public.hint());
        assert_eq!(public.hint(), sha256_hex(pem.as_bytes()));
    }
    let e = VerifyingKey::from_pem("not a key", "pub.pem").expect_err("garbage");
    assert!(e.to_string().starts_with("pub.pem: "), "{e}");
}
