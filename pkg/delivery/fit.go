package delivery

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"smtp-bs/pkg/downgrade"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/spool"
)

// has says whether the server offered the extension.
func (cn *conn) has(ext string) bool {
	ok, _ := cn.c.Extension(ext)
	return ok
}

// fit makes the message fit a server that offers no 8BITMIME or no
// SMTPUTF8 (RFC 6152 3, RFC 6531 3.2): 8-bit content is converted to 7
// bit where that is safe, and a message that cannot be converted fails
// with the reason (5.6.3, or 5.6.7 for UTF-8 in the header section). A
// server that offers both gets the message as it is, unread. A converted
// DKIM-signed message is delivered, and the log and the reply say its
// signature no longer verifies (docs: README, "8-bit and UTF-8 onward").
func (t *Transport) fit(cn *conn, host string, env *spool.Envelope, data io.Reader) (io.Reader, int64, string) {
	eight, utf8 := cn.has("8BITMIME"), cn.has("SMTPUTF8")
	if eight && utf8 {
		return data, env.Size, ""
	}
	var msg []byte
	if rs, ok := data.(io.ReadSeeker); ok && eight {
		// Only the header section can be in the way: read just that.
		hdr := headerBytes(rs)
		rs.Seek(0, io.SeekStart)
		if !downgrade.Scan(hdr).UTF8Headers {
			return data, env.Size, ""
		}
	}
	msg, err := io.ReadAll(data)
	if err != nil {
		return bytes.NewReader(nil), 0, "" // sendData will fail on it and defer
	}
	need := downgrade.Scan(msg)
	if !need.EightBit || (eight && !need.UTF8Headers) {
		return bytes.NewReader(msg), int64(len(msg)), ""
	}
	out, err := downgrade.Convert(msg)
	if err != nil {
		if need.UTF8Headers && !utf8 {
			return nil, 0, fmt.Sprintf("5.6.7 %s does not support SMTPUTF8, which this message's header section needs, and it %v", host, err)
		}
		return nil, 0, fmt.Sprintf("5.6.3 %s does not support 8BITMIME, and this message %v", host, err)
	}
	what := "8BITMIME"
	if !utf8 && need.UTF8Headers {
		what = "SMTPUTF8"
	}
	cn.converted = "converted to 7 bit: " + host + " offers no " + what
	if need.DKIM {
		cn.converted += "; its DKIM signature no longer verifies"
	}
	t.log().Event(maillog.Info, "converted", "id", env.ID, "host", host, "to", "7bit", "dkim_signed", need.DKIM, "reason", "no "+what)
	return bytes.NewReader(out), int64(len(out)), ""
}

// headerBytes reads the header section, at most 64 KiB of it.
func headerBytes(r io.Reader) []byte {
	br := bufio.NewReader(io.LimitReader(r, 64<<10))
	var b bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if strings.TrimRight(line, "\r\n") == "" || err != nil {
			return b.Bytes()
		}
	}
}
