//! Reading a plugin's reply off a keep-alive connection with as little work as
//! possible: the status line, `Content-Length` (or a chunked body), and the body,
//! which is looked into only for an `Err` (dockerd's error key; keys match without
//! regard to case, as Go's decoder matches them).

use std::ops::Range;

use tokio::io::AsyncReadExt;

use super::target::Stream;

/// One reply: its status and where its body is in the buffer.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Range<usize>,
    /// Whether the server said it closes the connection after this reply.
    pub(crate) close: bool,
}

/// A connection and what was read from it.
pub(crate) struct Connection {
    pub(crate) stream: Stream,
    buf: Vec<u8>,
    /// The end of the last reply in `buf`; what follows belongs to the next one.
    consumed: usize,
}

impl Connection {
    pub(crate) fn new(stream: Stream) -> Self {
        Self {
            stream,
            buf: Vec::with_capacity(4096),
            consumed: 0,
        }
    }

    /// Reads the next reply.
    pub(crate) async fn read_reply(&mut self) -> Result<Reply, String> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        let reply = read_reply(&mut self.stream, &mut self.buf).await?;
        self.consumed = reply.body.end;
        Ok(reply)
    }

    /// A reply's body.
    pub(crate) fn body(&self, reply: &Reply) -> &[u8] {
        &self.buf[reply.body.clone()]
    }
}

/// Reads one reply that starts at the beginning of `buf` (which may hold some of it
/// already). A chunked body is gathered into `buf` after the head.
async fn read_reply(stream: &mut Stream, buf: &mut Vec<u8>) -> Result<Reply, String> {
    let mut scanned: usize = 0;
    let head_end = loop {
        let from = scanned.saturating_sub(3);
        if let Some(at) = find(&buf[from..], b"\r\n\r\n") {
            break from + at + 4;
        }
        scanned = buf.len();
        read_more(stream, buf).await?;
    };
    let head = &buf[..head_end];
    let status = parse_status(head)
        .ok_or_else(|| format!("not an HTTP reply: {}", String::from_utf8_lossy(head)))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = false;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        }
    }
    if chunked {
        return read_chunked(stream, buf, head_end).await.map(|body| Reply {
            status,
            body,
            close,
        });
    }
    let length = match length {
        Some(length) => length,
        // No length and not chunked: the body runs to the connection's end.
        None if status != 204 && status != 304 => {
            loop {
                match stream.read_buf(buf).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
            return Ok(Reply {
                status,
                body: head_end..buf.len(),
                close: true,
            });
        }
        None => 0,
    };
    while buf.len() < head_end + length {
        read_more(stream, buf).await?;
    }
    Ok(Reply {
        status,
        body: head_end..head_end + length,
        close,
    })
}

/// Gathers a chunked body: the chunks' data are moved to follow the head directly.
async fn read_chunked(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    head_end: usize,
) -> Result<Range<usize>, String> {
    let mut body_end = head_end;
    let mut at = head_end;
    loop {
        let line_end = loop {
            if let Some(i) = find(&buf[at..], b"\r\n") {
                break at + i;
            }
            read_more(stream, buf).await?;
        };
        let size_text = std::str::from_utf8(&buf[at..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        let data = line_end + 2;
        if size == 0 {
            // Trailers, then the final CRLF.
            let mut from = data;
            loop {
                if let Some(i) = find(&buf[from..], b"\r\n") {
                    from += i + 2;
                    if i == 0 {
                        break;
                    }
                    continue;
                }
                read_more(stream, buf).await?;
            }
            // What follows belongs to the next reply: it moves down behind the body.
            buf.copy_within(from.., body_end);
            buf.truncate(buf.len() - (from - body_end));
            return Ok(head_end..body_end);
        }
        while buf.len() < data + size + 2 {
            read_more(stream, buf).await?;
        }
        buf.copy_within(data..data + size, body_end);
        body_end += size;
        at = data + size + 2;
        // What was read past this chunk moves down too, so `buf` stays small.
        buf.copy_within(at.., body_end);
        let moved = at - body_end;
        buf.truncate(buf.len() - moved);
        at = body_end;
    }
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let rest = head.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

fn trim(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = value {
        value = rest;
    }
    value
}

async fn read_more(stream: &mut Stream, buf: &mut Vec<u8>) -> Result<(), String> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    match stream.read_buf(buf).await {
        Ok(0) => Err("the plugin closed the connection".to_owned()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("read: {e}")),
    }
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `Err` of a reply body, if it has a non-empty one (`null` and `""` are none).
pub(crate) fn err_message(body: &[u8]) -> Option<String> {
    // Cheap test first: most replies have no key spelled err in any case.
    if !body.windows(5).any(|w| w.eq_ignore_ascii_case(b"\"err\"")) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let message = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("err"))?
        .1
        .as_str()?;
    (!message.is_empty()).then(|| message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_is_found_in_any_case() {
        assert_eq!(err_message(br#"{"Err":"boom"}"#).as_deref(), Some("boom"));
        assert_eq!(err_message(br#"{"err":"x"}"#).as_deref(), Some("x"));
        assert_eq!(err_message(br#"{"Err":""}"#), None);
        assert_eq!(err_message(br#"{"Err":null,"Volume":{}}"#), None);
        assert_eq!(err_message(br#"{"Volume":{"Name":"v"}}"#), None);
    }

    #[tokio::test]
    async fn chunked_bodies_are_gathered() {
        let (a, mut b) = tokio::net::UnixStream::pair().unwrap();
        tokio::io::AsyncWriteExt::write_all(
            &mut b,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\nHTTP/1.1 500 Internal\r\nContent-Length: 2\r\n\r\n{}",
        )
        .await
        .unwrap();
        let mut conn = Connection::new(Stream::Unix(a));
        let reply = conn.read_reply().await.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(conn.body(&reply), b"{\"a\":1}");
        let reply = conn.read_reply().await.unwrap();
        assert_eq!(reply.status, 500);
        assert_eq!(conn.body(&reply), b"{}");
    }
}
