//! Whole request frames off a connection's socket: a 4-byte big-endian size, then the request.
//! The bytes read stay in the reader's buffer between calls, so waiting for the next frame is
//! cancel-safe and the connection can wait for a request and for a pending answer at once
//! (`connection.rs`). Several small requests arrive in one read; a size outside
//! `1..=max_frame_bytes` is refused before anything is allocated for it.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Whole request frames from the socket. Cancel-safe: what was read stays in the buffer, so the
/// connection can wait for the next request and for a pending answer at the same time.
#[derive(Default)]
pub(super) struct Frames {
    buf: BytesMut,
}

/// Why no frame came.
pub(super) enum FrameEnd {
    /// The client closed, or the socket failed; `mid_frame` if part of a request was read.
    Closed { mid_frame: bool },
    /// A size prefix outside `1..=max_frame_bytes`.
    BadSize(i32),
}

impl Frames {
    /// Bytes the buffer holds room for (what reading costs the connection in memory).
    #[cfg(feature = "harness")]
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Nothing of a next request read yet.
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) async fn next<S: AsyncRead + Unpin>(
        &mut self,
        socket: &mut S,
        max: usize,
    ) -> Result<Bytes, FrameEnd> {
        loop {
            if let Some(prefix) = self.buf.get(..4) {
                let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                if size <= 0 || size as usize > max {
                    return Err(FrameEnd::BadSize(size));
                }
                let whole = 4 + size as usize;
                if self.buf.len() >= whole {
                    self.buf.advance(4);
                    let frame = self.buf.split_to(size as usize).freeze();
                    // The frame shares the buffer's allocation; a buffer grown for a large
                    // request would keep it alive for the connection's life, so let it go.
                    if self.buf.is_empty() && self.buf.capacity() > READ_CHUNK {
                        self.buf = BytesMut::new();
                    }
                    return Ok(frame);
                }
                self.buf.reserve(whole - self.buf.len());
            } else if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            match socket.read_buf(&mut self.buf).await {
                Ok(n) if n > 0 => {}
                _ => {
                    return Err(FrameEnd::Closed {
                        mid_frame: !self.buf.is_empty(),
                    })
                }
            }
        }
    }
}

/// Room made for a read when no frame is under way: small requests arrive several per read.
const READ_CHUNK: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair: (the client's end, the server's end).
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (client, server)
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    #[tokio::test]
    async fn frames_in_one_read_and_split_across_reads_come_out_whole() {
        let (mut client, mut server) = pair().await;
        let mut frames = Frames::default();
        // Two frames in one write, then a third in three pieces.
        let mut two = frame(b"first");
        two.extend(frame(b"second"));
        client.write_all(&two).await.unwrap();
        assert_eq!(
            &frames.next(&mut server, 100).await.ok().unwrap()[..],
            b"first"
        );
        assert_eq!(
            &frames.next(&mut server, 100).await.ok().unwrap()[..],
            b"second"
        );
        assert!(frames.is_empty());
        let third = frame(b"third, in pieces");
        let reader = tokio::spawn(async move {
            let f = frames.next(&mut server, 100).await.ok().unwrap();
            (f, frames)
        });
        for piece in [&third[..2], &third[2..7], &third[7..]] {
            client.write_all(piece).await.unwrap();
            client.flush().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let (f, frames) = reader.await.unwrap();
        assert_eq!(&f[..], b"third, in pieces");
        assert!(frames.is_empty());
    }

    #[tokio::test]
    async fn a_size_out_of_bounds_and_a_close_mid_frame_end_the_frames() {
        let (mut client, mut server) = pair().await;
        let mut frames = Frames::default();
        client.write_all(&frame(&[0; 101])).await.unwrap();
        assert!(matches!(
            frames.next(&mut server, 100).await,
            Err(FrameEnd::BadSize(101))
        ));
        let (mut client, mut server) = pair().await;
        let mut frames = Frames::default();
        client.write_all(&frame(b"cut")[..5]).await.unwrap();
        drop(client);
        assert!(matches!(
            frames.next(&mut server, 100).await,
            Err(FrameEnd::Closed { mid_frame: true })
        ));
        let (client, mut server) = pair().await;
        drop(client);
        assert!(matches!(
            Frames::default().next(&mut server, 100).await,
            Err(FrameEnd::Closed { mid_frame: false })
        ));
    }
}
