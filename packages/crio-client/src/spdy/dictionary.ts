// The zlib dictionary SPDY/3 header blocks are compressed with (draft-mbelshe-httpbis-spdy-00, section
// 2.6.10.1). The draft prints it as a byte table; read as text it is a run of words, each preceded by its
// length as a 32-bit big-endian integer (header names, methods, "200 OK", "HTTP/1.1"...), followed by one
// run of status codes, reason phrases, dates and media types with no length prefixes. It is built here
// from those words. Both ends must use exactly these 1423 bytes: zlib puts the dictionary's Adler-32 in
// the stream header, and a peer whose dictionary differs refuses the whole header stream.

const LENGTH_PREFIXED = [
  "options",
  "head",
  "post",
  "put",
  "delete",
  "trace",
  "accept",
  "accept-charset",
  "accept-encoding",
  "accept-language",
  "accept-ranges",
  "age",
  "allow",
  "authorization",
  "cache-control",
  "connection",
  "content-base",
  "content-encoding",
  "content-language",
  "content-length",
  "content-location",
  "content-md5",
  "content-range",
  "content-type",
  "date",
  "etag",
  "expect",
  "expires",
  "from",
  "host",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-range",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "pragma",
  "proxy-authenticate",
  "proxy-authorization",
  "range",
  "referer",
  "retry-after",
  "server",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "vary",
  "via",
  "warning",
  "www-authenticate",
  "method",
  "get",
  "status",
  "200 OK",
  "version",
  "HTTP/1.1",
  "url",
  "public",
  "set-cookie",
  "keep-alive",
  "origin",
];

const STATUS_CODES = [
  100, 101, 201, 202, 205, 206, 300, 302, 303, 304, 305, 306, 307, 402, 405, 406, 407, 408, 409, 410, 411,
  412, 413, 414, 415, 416, 417, 502, 504, 505,
];

const REASON_PHRASES = [
  "203 Non-Authoritative Information",
  "204 No Content",
  "301 Moved Permanently",
  "400 Bad Request",
  "401 Unauthorized",
  "403 Forbidden",
  "404 Not Found",
  "500 Internal Server Error",
  "501 Not Implemented",
  "503 Service Unavailable",
];

const DATE_PARTS =
  "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT";

const VALUES = [
  "chunked,",
  "text/html,",
  "image/png,",
  "image/jpg,",
  "image/gif,",
  "application/xml,",
  "application/xhtml+xml,",
  "text/plain,",
  "text/javascript,",
  "public",
  "private",
  "max-age=",
  "gzip,deflate,sdch",
  "charset=utf-8",
  "charset=iso-8859-1,",
  "utf-,",
  "*,",
  "enq=0.",
];

function build(): Buffer {
  const parts: Buffer[] = [];
  for (const word of LENGTH_PREFIXED) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(word.length);
    parts.push(length, Buffer.from(word, "latin1"));
  }
  const tail = STATUS_CODES.join("") + REASON_PHRASES.join("") + DATE_PARTS + VALUES.join("");
  parts.push(Buffer.from(tail, "latin1"));
  return Buffer.concat(parts);
}

/** The SPDY/3 header compression dictionary (1423 bytes). */
export const SPDY3_DICTIONARY: Buffer = build();
