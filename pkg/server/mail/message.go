// Package mail sends v2m's notifications: SMTP delivers them to a mail server, Outbox writes
// them as .eml files to a directory (development, or a deployment without a mail server).
// Both build the message with the same function, so what lands in the outbox is exactly what
// SMTP would have sent.
package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// maxSubject bounds the subject line; notifications are short.
const maxSubject = 500

// message is one formatted mail and its envelope.
type message struct {
	From string // bare address, for MAIL FROM
	To   string // bare address, for RCPT TO
	Data []byte // RFC 5322 message, CRLF line endings
}

// validHeader rejects values that could end a header line and start another one.
func validHeader(name, v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return server.Permanent(server.Errorf(server.EINVALID, "mail %s contains a line break", name))
	}
	return nil
}

// parseAddress checks a header value that must be one address, and returns it parsed.
func parseAddress(name, v string) (*mail.Address, error) {
	if err := validHeader(name, v); err != nil {
		return nil, err
	}
	a, err := mail.ParseAddress(v)
	if err != nil {
		return nil, server.Permanent(server.Errorf(server.EINVALID, "mail %s %q is not an address: %v", name, v, err))
	}
	return a, nil
}

// formatMessage builds the RFC 5322 message for m from from, dated date: UTF-8 plain text,
// quoted-printable, a subject encoded as RFC 2047 words when it is not ASCII. Header values
// with line breaks are rejected, so a message cannot carry headers of the caller's making.
func formatMessage(from string, m server.Mail, date time.Time) (*message, error) {
	fromAddr, err := parseAddress("from", from)
	if err != nil {
		return nil, err
	}
	toAddr, err := parseAddress("to", m.To)
	if err != nil {
		return nil, err
	}
	if err := validHeader("subject", m.Subject); err != nil {
		return nil, err
	}
	if len(m.Subject) > maxSubject {
		return nil, server.Permanent(server.Errorf(server.EINVALID, "mail subject is longer than %d bytes", maxSubject))
	}
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("Date", date.Format(time.RFC1123Z))
	header("From", fromAddr.String())
	header("To", toAddr.String())
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Message-ID", messageID(fromAddr.Address))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	body := strings.ReplaceAll(m.Body, "\r\n", "\n")
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, fmt.Errorf("encode mail body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("encode mail body: %w", err)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return &message{From: fromAddr.Address, To: toAddr.Address, Data: b.Bytes()}, nil
}

// messageID returns a new Message-ID in the domain of the sender's address.
func messageID(from string) string {
	domain := "v2m.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		domain = from[i+1:]
	}
	return fmt.Sprintf("<%d.%s@%s>", time.Now().UnixNano(), randomHex(8), domain)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
