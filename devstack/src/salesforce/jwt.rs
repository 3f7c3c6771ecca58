//! The JWT bearer grant as Salesforce checks it: an RS256 assertion signed with the Connected
//! App's key, `iss` the app, `sub` its user, `aud` a login host (login.salesforce.com,
//! test.salesforce.com, or the org's own address), not expired.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::*;

/// The certificate a Connected App holds for a PKCS#8 PEM RSA private key: its RSAPublicKey, DER
/// (what [`Options::jwt_public_key`] takes); `None` when the text is not such a key.
pub fn certificate_of(private_key_pem: &str) -> Option<Vec<u8>> {
    let body: String = private_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).ok()?;
    Some(ring::signature::KeyPair::public_key(&key).as_ref().to_vec())
}

/// `Err` with Salesforce's `error_description` when the assertion does not hold.
pub(super) fn check(org: &Org, assertion: &str) -> Result<(), String> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("invalid assertion".into());
    };
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "invalid assertion".to_string())?;
        serde_json::from_slice(&bytes).map_err(|_| "invalid assertion".to_string())
    };
    if decode(header)?["alg"] != json!("RS256") {
        return Err("invalid assertion".into());
    }
    let Some(key) = &org.jwt_public_key else {
        return Err("invalid_app_access: no certificate is set for the app".into());
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "invalid assertion".to_string())?;
    let public =
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key);
    public
        .verify(format!("{header}.{claims}").as_bytes(), &signature)
        .map_err(|_| "invalid assertion".to_string())?;
    let claims = decode(claims)?;
    if claims["iss"] != json!(org.client_id) {
        return Err("invalid client credentials".into());
    }
    if claims["sub"] != json!(org.username) {
        return Err("user hasn't approved this consumer".into());
    }
    let audiences = [
        org.instance_url.as_str(),
        "https://login.salesforce.com",
        "https://test.salesforce.com",
    ];
    if !audiences.iter().any(|a| claims["aud"] == json!(a)) {
        return Err("audience is invalid".into());
    }
    let now_s = org.now() / 1000;
    // `exp` is a NumericDate; some clients send it as a string of digits.
    let exp = claims["exp"]
        .as_i64()
        .or_else(|| claims["exp"].as_str().and_then(|s| s.parse().ok()));
    if exp.is_none_or(|exp| exp <= now_s) {
        return Err("expired authorization code".into());
    }
    Ok(())
}
