//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side, as Kafka runs them over
//! SaslAuthenticate: client-first → server-first (nonce, salt, iterations) → client-final (proof)
//! → server-final (server signature). Every field of the client's messages is checked; bad input
//! is an [`AuthError`], never a panic. No channel binding (Kafka has none) and no delegation
//! tokens (`tokenauth` extension refused).
//!
//! Crypto comes from RustCrypto (`hmac`, `sha2`, `pbkdf2`); comparisons of secrets use `subtle`'s
//! constant-time equality.

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::users::{Users, UsersError, SCRAM_ITERATIONS};
use super::{AuthError, Mechanism, Principal};

/// The hash a SCRAM mechanism is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        match self {
            Hash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// RFC 5802's Hi(): PBKDF2 with HMAC of this hash, output as long as the hash.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            Hash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }

    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha512 => 64,
        }
    }
}

/// What the broker keeps of a password for one hash (RFC 5802 section 3): enough to verify a
/// client's proof and to prove itself, not enough to log in as the user.
pub(crate) struct ScramCredential {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl ScramCredential {
    /// Derives the credential of `password` with a fresh random salt.
    pub(crate) fn derive(hash: Hash, password: &str, iterations: u32) -> Result<Self, UsersError> {
        let mut salt = vec![0u8; 16];
        getrandom::getrandom(&mut salt).map_err(|e| UsersError::Random(e.to_string()))?;
        Ok(Self::from_salt(hash, password.as_bytes(), salt, iterations))
    }

    fn from_salt(hash: Hash, password: &[u8], salt: Vec<u8>, iterations: u32) -> Self {
        let salted = hash.salted_password(password, &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        ScramCredential {
            stored_key: hash.digest(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
            salt,
            iterations,
        }
    }

    /// Whether `password` is the one this credential was derived from (constant time in the
    /// comparison; the derivation itself costs the same for every password).
    pub(crate) fn matches(&self, hash: Hash, password: &[u8]) -> bool {
        let other = Self::from_salt(hash, password, self.salt.clone(), self.iterations);
        bool::from(other.stored_key.ct_eq(&self.stored_key))
    }
}

/// A per-process key for the salts of unknown users: they get a salt that is stable per name
/// and looks like a real one, so a server-first message does not tell who exists.
fn mock_salt(name: &str) -> Vec<u8> {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        // Without randomness the mock salts are merely predictable, which reveals nothing more
        // than an unknown user's failure would.
        let _ = getrandom::getrandom(&mut k);
        k
    });
    Hash::Sha256.hmac(key, name.as_bytes())[..16].to_vec()
}

/// Where one SCRAM exchange stands.
#[derive(Debug)]
enum State {
    /// Waiting for client-first.
    Start,
    /// Server-first sent; waiting for client-final.
    Challenged {
        user: String,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    /// Finished (either way): any further message is a protocol error.
    Over,
}

/// The server side of one SCRAM exchange.
#[derive(Debug)]
pub(crate) struct ScramServer {
    mechanism: Mechanism,
    hash: Hash,
    state: State,
}

/// The outcome of one step.
#[derive(Debug)]
pub(crate) enum ScramStep {
    /// Send this and wait for the client's next message.
    Challenge(Vec<u8>),
    /// Authenticated; send this (server-final) as the last reply.
    Done(Principal, Vec<u8>),
}

impl ScramServer {
    pub(crate) fn new(mechanism: Mechanism, hash: Hash) -> Self {
        ScramServer {
            mechanism,
            hash,
            state: State::Start,
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> AuthError {
        AuthError::Malformed {
            mechanism: self.mechanism.name(),
            reason: reason.into(),
        }
    }

    pub(crate) fn step(&mut self, users: &Users, input: &[u8]) -> Result<ScramStep, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Over);
        match state {
            State::Start => self.client_first(users, input),
            State::Challenged {
                user,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
            } => self.client_final(
                users,
                input,
                &user,
                &gs2_header,
                &client_first_bare,
                &server_first,
                &nonce,
            ),
            State::Over => Err(AuthError::IllegalState(
                "the SCRAM exchange is already over".into(),
            )),
        }
    }

    fn client_first(&mut self, users: &Users, input: &[u8]) -> Result<ScramStep, AuthError> {
        let text = std::str::from_utf8(input)
            .map_err(|_| self.malformed("client-first-message is not UTF-8"))?;
        // gs2-header = cbind-flag "," [authzid] ","
        let mut parts = text.splitn(3, ',');
        let cbind = parts.next().unwrap_or("");
        let authzid = parts
            .next()
            .ok_or_else(|| self.malformed("client-first-message has no gs2 header"))?;
        let bare = parts
            .next()
            .ok_or_else(|| self.malformed("client-first-message has no username"))?;
        match cbind {
            "n" | "y" => {}
            c if c.starts_with("p=") => {
                return Err(self.malformed("channel binding is not supported"))
            }
            _ => return Err(self.malformed("bad gs2 channel-binding flag")),
        }
        let authzid = match authzid {
            "" => None,
            a => Some(
                decode_saslname(
                    a.strip_prefix("a=")
                        .ok_or_else(|| self.malformed("bad authzid in gs2 header"))?,
                )
                .ok_or_else(|| self.malformed("bad escape in authzid"))?,
            ),
        };
        // `bare` is the suffix after the header's second comma.
        let gs2_header = text[..text.len() - bare.len()].to_string();
        let mut attrs = bare.split(',');
        let user = match attrs.next() {
            Some(a) if a.starts_with("m=") => {
                return Err(self.malformed("mandatory extensions are not supported"))
            }
            Some(a) => a
                .strip_prefix("n=")
                .ok_or_else(|| self.malformed("client-first-message must start with n=user"))?,
            None => return Err(self.malformed("empty client-first-message")),
        };
        let user =
            decode_saslname(user).ok_or_else(|| self.malformed("bad escape in the username"))?;
        if user.is_empty() {
            return Err(self.malformed("empty username"));
        }
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| self.malformed("client-first-message has no r=nonce"))?;
        if client_nonce.is_empty() || !client_nonce.bytes().all(is_nonce_char) {
            return Err(self.malformed("bad client nonce"));
        }
        for ext in attrs {
            if ext.starts_with("tokenauth=") {
                return Err(self.malformed("delegation tokens are not supported"));
            }
        }
        if authzid.as_deref().is_some_and(|a| a != user) {
            return Err(self.malformed("authorization id differs from the username"));
        }
        let mut server_nonce = [0u8; 24];
        getrandom::getrandom(&mut server_nonce)
            .map_err(|e| AuthError::Internal(format!("random generator: {e}")))?;
        let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
        let (salt, iterations) = match users.get(&user) {
            Some(u) => {
                let c = self.credential(u);
                (c.salt.clone(), c.iterations)
            }
            None => (mock_salt(&user), SCRAM_ITERATIONS),
        };
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
        self.state = State::Challenged {
            user,
            gs2_header,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(ScramStep::Challenge(server_first.into_bytes()))
    }

    fn credential<'a>(&self, u: &'a super::users::User) -> &'a ScramCredential {
        match self.hash {
            Hash::Sha256 => &u.sha256,
            Hash::Sha512 => &u.sha512,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn client_final(
        &mut self,
        users: &Users,
        input: &[u8],
        user: &str,
        gs2_header: &str,
        client_first_bare: &str,
        server_first: &str,
        nonce: &str,
    ) -> Result<ScramStep, AuthError> {
        let text = std::str::from_utf8(input)
            .map_err(|_| self.malformed("client-final-message is not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| self.malformed("client-final-message has no p=proof"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or_else(|| self.malformed("client-final-message must start with c="))?;
        let binding = B64
            .decode(binding)
            .map_err(|_| self.malformed("c= is not base64"))?;
        if binding != gs2_header.as_bytes() {
            return Err(self.malformed("channel binding does not match the gs2 header"));
        }
        let got_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| self.malformed("client-final-message has no r=nonce"))?;
        // RFC 5802 wants the nonce back unchanged; Kafka's ScramSaslServer only checks that it
        // ends with the server-first nonce, and librdkafka 2.0.2 (kcat on Debian bookworm)
        // relies on that: it sends its client nonce once more in front. The fresh server part
        // is still required, which is what stops replays.
        let got = got_nonce.as_bytes();
        let fresh = got.len() >= nonce.len()
            && bool::from(got[got.len() - nonce.len()..].ct_eq(nonce.as_bytes()));
        if !fresh {
            return Err(self.malformed("nonce does not match the server's"));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| self.malformed("p= is not base64"))?;
        if proof.len() != self.hash.len() {
            return Err(self.malformed("client proof has the wrong length"));
        }
        let invalid = AuthError::InvalidCredentials {
            mechanism: self.mechanism.name(),
        };
        let Some(u) = users.get(user) else {
            return Err(invalid);
        };
        let cred = self.credential(u);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = self.hash.hmac(&cred.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !bool::from(self.hash.digest(&client_key).ct_eq(&cred.stored_key)) {
            return Err(invalid);
        }
        let server_signature = self.hash.hmac(&cred.server_key, auth_message.as_bytes());
        let principal = Principal {
            name: user.to_string(),
            role: u.role,
        };
        Ok(ScramStep::Done(
            principal,
            format!("v={}", B64.encode(server_signature)).into_bytes(),
        ))
    }
}

/// RFC 5802 saslname: `=2C` is `,`, `=3D` is `=`, any other `=` is an error.
fn decode_saslname(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3)?;
        out.push(match esc {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// RFC 5802: a nonce is printable ASCII except `,`.
fn is_nonce_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::users::Role;

    /// A client, written from the RFC, to drive the server.
    fn client_final(
        hash: Hash,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let mut salt = None;
        let mut iters = 0;
        let mut nonce = "";
        for a in server_first.split(',') {
            if let Some(v) = a.strip_prefix("s=") {
                salt = Some(B64.decode(v).unwrap());
            } else if let Some(v) = a.strip_prefix("i=") {
                iters = v.parse().unwrap();
            } else if let Some(v) = a.strip_prefix("r=") {
                nonce = v;
            }
        }
        let salted = hash.salted_password(password.as_bytes(), &salt.unwrap(), iters);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored = hash.digest(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = hash.hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_sig = hash.hmac(&hash.hmac(&salted, b"Server Key"), auth.as_bytes());
        (
            format!("{without_proof},p={}", B64.encode(proof)),
            format!("v={}", B64.encode(server_sig)).into_bytes(),
        )
    }

    fn users() -> Users {
        let mut u = Users::empty();
        u.add_entries(["al=ice:admin:pencil", "bob:user:x"], "t")
            .unwrap();
        u
    }

    fn run(
        hash: Hash,
        mech: Mechanism,
        user: &str,
        password: &str,
    ) -> Result<ScramStep, AuthError> {
        let users = users();
        let mut s = ScramServer::new(mech, hash);
        let bare = format!("n={user},r=fyko+d2lbbFgONRv9qkxdawL");
        let ScramStep::Challenge(first) = s.step(&users, format!("n,,{bare}").as_bytes())? else {
            panic!("no challenge")
        };
        let first = String::from_utf8(first).unwrap();
        assert!(first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"));
        let (fin, expect_v) = client_final(hash, password, &bare, &first);
        let out = s.step(&users, fin.as_bytes())?;
        if let ScramStep::Done(_, v) = &out {
            assert_eq!(v, &expect_v, "server signature");
        }
        Ok(out)
    }

    #[test]
    fn right_password_authenticates_both_hashes() {
        for (h, m) in [
            (Hash::Sha256, Mechanism::ScramSha256),
            (Hash::Sha512, Mechanism::ScramSha512),
        ] {
            match run(h, m, "al=3Dice", "pencil").unwrap() {
                ScramStep::Done(p, _) => {
                    assert_eq!(p.name, "al=ice");
                    assert_eq!(p.role, Role::Admin);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_alike() {
        for (user, pw) in [("bob", "wrong"), ("nobody", "x")] {
            let e = run(Hash::Sha256, Mechanism::ScramSha256, user, pw).unwrap_err();
            assert!(matches!(e, AuthError::InvalidCredentials { .. }), "{e}");
        }
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let users = users();
        for bad in [
            &b""[..],
            b"n",
            b"n,,",
            b"x,,n=bob,r=abc",
            b"p=tls-unique,,n=bob,r=abc",
            b"n,,r=abc",
            b"n,,n=bob",
            b"n,,n=bob,r=",
            b"n,,n=bo=1b,r=abc",
            b"n,,m=ext,n=bob,r=abc",
            b"n,a=eve,n=bob,r=abc",
            b"n,,n=bob,r=ab,c",
            b"n,,n=bob,r=abc,tokenauth=true",
            b"\xff\xfe",
        ] {
            let mut s = ScramServer::new(Mechanism::ScramSha256, Hash::Sha256);
            // "r=ab,c" parses as nonce "ab" plus an extension "c": allowed.
            let r = s.step(&users, bad);
            if bad == b"n,,n=bob,r=ab,c" {
                assert!(r.is_ok());
                continue;
            }
            assert!(r.is_err(), "{:?} accepted", String::from_utf8_lossy(bad));
        }
        // A bad final message after a good first one.
        for bad in [
            &b"c=biws,r=wrong,p=AAAA"[..],
            b"c=eSws,r=x,p=AAAA",
            b"c=biws",
            b"c=!!,r=x,p=AAAA",
            b"\xff",
        ] {
            let mut s = ScramServer::new(Mechanism::ScramSha256, Hash::Sha256);
            s.step(&users, b"n,,n=bob,r=abc").unwrap();
            assert!(s.step(&users, bad).is_err());
            // And the exchange is over.
            assert!(matches!(
                s.step(&users, b"n,,n=bob,r=abc"),
                Err(AuthError::IllegalState(_))
            ));
        }
    }

    #[test]
    fn saslname_escapes() {
        assert_eq!(decode_saslname("a=2Cb=3D").as_deref(), Some("a,b="));
        assert_eq!(decode_saslname("a=").as_deref(), None);
        assert_eq!(decode_saslname("a=2").as_deref(), None);
        assert_eq!(decode_saslname("a=XY").as_deref(), None);
    }

    #[test]
    fn plain_check_uses_the_scram_credential() {
        let c = ScramCredential::derive(Hash::Sha256, "pw", 4096).unwrap();
        assert!(c.matches(Hash::Sha256, b"pw"));
        assert!(!c.matches(Hash::Sha256, b"pW"));
    }
}
